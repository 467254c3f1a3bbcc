//! Simulated clients: one task per user playing its ops, one reader task per open tab, one task
//! per agent run, and the server's deferred cleanup of crashed tabs.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use wsreg::{channel_sink, AgentEvent, ChannelSink, Envelope, SendFuture, Sink};

use super::World;
use crate::check::invariant::holding::Learned;
use crate::check::trace::What;
use crate::generate::plan::{Op, OpKind, Plan};
use crate::generate::sites::Site;
use crate::run::backend::{Handle, Network};
use crate::run::buggify::maybe_yield;
use crate::run::recorder::tag;
use crate::run::recorder::Recorder;

/// Capacity of a simulated socket's buffer.
const SOCKET_BUFFER: usize = 4;
/// How long a slow reader takes per message.
const SLOW_READ: Duration = Duration::from_millis(5);
/// How long the server takes to notice a crashed tab.
const CRASH_DETECT: Duration = Duration::from_millis(20);

/// An open tab, as its user holds it.
pub(crate) struct Tab {
    handle: Handle,
    /// The client's own number for the tab.
    id: u64,
    conn: u64,
    stop: oneshot::Sender<Stop>,
}

/// Tells a tab's reader its socket is gone: it records what sat unread in its buffer (as lost
/// when the client crashed, as read when the server died under a live client), then says done.
struct Stop {
    crashed: bool,
    done: oneshot::Sender<()>,
}

/// The socket end the core writes to: a channel, with buggify's extra yield before each send.
struct SimSink {
    inner: ChannelSink,
    plan: Arc<Plan>,
    recorder: Arc<Recorder>,
}

impl Sink for SimSink {
    fn send(&mut self, envelope: Envelope) -> SendFuture<'_> {
        Box::pin(async move {
            maybe_yield(&self.plan, &self.recorder, Site::Send).await;
            self.inner.send(envelope).await
        })
    }
}

/// Plays one user's ops at their virtual times.
pub(crate) async fn user_task(world: Arc<World>, u: usize, ops: Vec<Op>) {
    let mut runs = 0u32;
    let mut texts = 0u32;
    for op in ops {
        let at = world.start + Duration::from_millis(op.at_ms);
        let now = tokio::time::Instant::now();
        if at > now {
            tokio::time::sleep(at - now).await;
        }
        if world.recorder.failed() {
            return;
        }
        world.probe(u);
        world.doing(u, Some(op.kind.name()));
        world.maybe_yield(Site::Op).await;
        match op.kind {
            OpKind::Connect { slow, fresh } => {
                let tab = TabKind { slow, fresh };
                open_tab(Arc::clone(&world), u, tab).await
            }
            OpKind::Burst { n } => {
                for _ in 0..n {
                    let task = tokio::spawn(open_tab(Arc::clone(&world), u, TabKind::default()));
                    world.track(task);
                }
            }
            OpKind::Close { tab } => close_tab(&world, u, tab).await,
            OpKind::Crash { tab } => crash_tab(&world, u, tab),
            OpKind::Reconnect { tab } => {
                close_tab(&world, u, tab).await;
                open_tab(Arc::clone(&world), u, TabKind::default()).await;
            }
            OpKind::Send {} => {
                texts += 1;
                let text = format!("{}/m{texts}", world.users[u].name);
                let msg = tag(&wsreg::Payload::Text { text: text.clone() });
                world.step(u, None, What::Send { msg: msg.clone() });
                match world.backend.send_text(&world.users[u].ctx, &text).await {
                    Ok(at) => world.recorder.confirm(&world.users[u].name, &msg, at),
                    Err(e) => world.refused(u, "send", &e),
                }
            }
            OpKind::Run {
                tools,
                thinking,
                step_ms,
            } => {
                runs += 1;
                let run_id = format!("{}/r{runs}", world.users[u].name);
                let events = AgentEvent::example_run(&run_id, tools, thinking);
                let task = tokio::spawn(agent(Arc::clone(&world), u, events, step_ms));
                world.track(task);
            }
            OpKind::Mode { mode } => {
                world.step(u, None, What::SetMode(mode));
                match world.backend.set_mode(&world.users[u].ctx, mode) {
                    Ok(()) => world.modes.lock().expect("modes")[u] = mode,
                    Err(e) => world.refused(u, "mode", &e),
                }
            }
        }
        world.doing(u, None);
    }
}

/// An agent emitting one run's events, `step_ms` apart. A refusal (the user is gone) ends it.
async fn agent(world: Arc<World>, u: usize, events: Vec<AgentEvent>, step_ms: u64) {
    for event in events {
        if world.recorder.failed() {
            return;
        }
        world.maybe_yield(Site::Emit).await;
        let msg = tag(&wsreg::Payload::Agent(event.clone()));
        world.step(u, None, What::Emit { msg: msg.clone() });
        match world.backend.emit(&world.users[u].ctx, event).await {
            Ok(at) => world.recorder.confirm(&world.users[u].name, &msg, at),
            Err(e) => {
                world.refused(u, "emit", &e);
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(step_ms)).await;
    }
}

/// How a tab reads and where it starts.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TabKind {
    /// Reads 5 ms per message until the liveness phase heals it.
    slow: bool,
    /// Starts without a position rather than resuming after the user's last one.
    fresh: bool,
}

/// Opens a tab: starts its reader, connects (resuming after the last position the user's tabs
/// saw, unless `fresh`), and files the tab under the user. A client with a connect timeout gives
/// up on a connect that takes longer, and tries once more, as a real one would.
pub(crate) async fn open_tab(world: Arc<World>, u: usize, kind: TabKind) {
    for _ in 0..2 {
        if !attempt_tab(&world, u, kind).await {
            return;
        }
    }
}

/// One connect attempt; true when its client gave up on it.
async fn attempt_tab(world: &Arc<World>, u: usize, kind: TabKind) -> bool {
    let TabKind { slow, fresh } = kind;
    let resume = if fresh { None } else { world.last_seen(u) };
    let tab = world.next_tab();
    world.record_attempt(u, tab, What::Connect { slow, resume });
    let (sink, inbox) = channel_sink(SOCKET_BUFFER);
    let (id_tx, id_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let reader = tokio::spawn(read_tab(
        Arc::clone(world),
        u,
        tab,
        inbox,
        id_rx,
        stop_rx,
        slow,
    ));
    world
        .maybe_yield(if resume.is_some() {
            Site::Resume
        } else {
            Site::Connect
        })
        .await;
    let sink = SimSink {
        inner: sink,
        plan: Arc::clone(&world.plan),
        recorder: Arc::clone(&world.recorder),
    };
    let connecting = world
        .backend
        .connect(&world.users[u].ctx, Box::new(sink), resume);
    let answer = match world.plan.connect_timeout_ms {
        Some(ms) => tokio::time::timeout(Duration::from_millis(ms), connecting)
            .await
            .map_err(|_| ms),
        None => Ok(connecting.await),
    };
    match answer {
        Ok(Ok(c)) => {
            world.track_reader(reader);
            world.record_tab(
                u,
                tab,
                c.conn,
                Some(c.manager),
                What::Connected {
                    key: c.key.to_shared(),
                    asked: resume,
                    from: c.from,
                    recovered: c.recovered,
                },
            );
            let _ = id_tx.send(Opened::Held(c.conn));
            world.tabs[u].lock().expect("tabs").push(Tab {
                handle: c.handle,
                id: tab,
                conn: c.conn,
                stop: stop_tx,
            });
            false
        }
        Ok(Err(e)) => {
            world.track_reader(reader);
            world.refused_tab(u, Some(tab), "connect", &e);
            false
        }
        Err(after_ms) => {
            // The attempt is dropped; its socket is still watched: a backend that registered
            // it anyway holds a tab nobody holds.
            world.record_attempt(u, tab, What::GaveUp { after_ms });
            let _ = id_tx.send(Opened::Abandoned);
            world.watch_abandoned(u, tab, reader);
            true
        }
    }
}

/// What became of a connect attempt, as its reader is told.
enum Opened {
    /// The client holds it, as the backend's connection `conn`.
    Held(u64),
    /// The client gave up on it.
    Abandoned,
}

fn take_tab(world: &World, u: usize, tab: usize) -> Option<Tab> {
    let mut tabs = world.tabs[u].lock().expect("tabs");
    if tabs.is_empty() {
        return None;
    }
    let i = tab % tabs.len();
    Some(tabs.remove(i))
}

/// Closes a tab cleanly; its reader reads on until the server closes the socket.
pub(crate) async fn close_tab(world: &World, u: usize, tab: usize) {
    if let Some(t) = take_tab(world, u, tab) {
        close_handle(world, u, t).await;
    }
}

pub(crate) async fn close_handle(world: &World, u: usize, t: Tab) {
    world.record_tab(u, t.id, t.conn, None, What::Close);
    world.maybe_yield(Site::Close).await;
    match world.backend.close(&t.handle).await {
        Ok(()) => world.learned(u, Some(t.id), &Learned::Released),
        Err(e) => world.refused_tab(u, Some(t.id), "close", &e),
    }
}

/// Stops a tab's reader and waits until it recorded what sat in its buffer.
async fn stop_reader(stop: oneshot::Sender<Stop>, crashed: bool) {
    let (done, stopped) = oneshot::channel();
    if stop.send(Stop { crashed, done }).is_ok() {
        let _ = stopped.await;
    }
}

/// The server died: every tab's socket is gone. Each reader records what it had already
/// received, then the tabs are forgotten (their users open new ones as their ops go on).
pub(crate) async fn drop_all_tabs(world: &World) {
    for tabs in &world.tabs {
        let gone = std::mem::take(&mut *tabs.lock().expect("tabs"));
        for t in gone {
            stop_reader(t.stop, false).await;
        }
    }
}

/// Many nodes: every tab on server node `node` drops with it, as its client sees it: the
/// socket is gone without a goodbye (to the client, a crash).
pub(crate) fn drop_tabs_on(world: &World, net: &dyn Network, node: u32) {
    for (u, tabs) in world.tabs.iter().enumerate() {
        let gone: Vec<Tab> = {
            let mut tabs = tabs.lock().expect("tabs");
            let (on, off): (Vec<Tab>, Vec<Tab>) = std::mem::take(&mut *tabs)
                .into_iter()
                .partition(|t| net.node_of(&t.handle) == node);
            *tabs = off;
            on
        };
        for t in gone {
            world.shaken(u, super::Shaken::Dropped);
            world.record_tab(u, t.id, t.conn, None, What::Dropped { node });
            let (done, _) = oneshot::channel();
            let _ = t.stop.send(Stop {
                crashed: true,
                done,
            });
            net.crash(&t.handle);
        }
    }
}

/// Crashes a tab: its reader drops the socket at once; the server notices by itself (a real
/// socket) or, in process, cleans up a little later.
fn crash_tab(world: &Arc<World>, u: usize, tab: usize) {
    let Some(t) = take_tab(world, u, tab) else {
        return;
    };
    world.record_tab(u, t.id, t.conn, None, What::Crash);
    let (done, _) = oneshot::channel();
    let _ = t.stop.send(Stop {
        crashed: true,
        done,
    });
    if let Some(net) = &world.network {
        net.crash(&t.handle);
        return;
    }
    let world2 = Arc::clone(world);
    let cleanup = tokio::spawn(async move {
        tokio::time::sleep(CRASH_DETECT).await;
        world2.maybe_yield(Site::Cleanup).await;
        world2.record_tab(u, t.id, t.conn, None, What::Cleanup);
        if let Err(e) = world2.backend.close(&t.handle).await {
            world2.refused_tab(u, Some(t.id), "cleanup", &e);
        }
        // Either way the crashed tab is let go: closed now, or already by the core itself.
        world2.learned(u, Some(t.id), &Learned::Released);
    });
    world.track(cleanup);
}

/// Reads one tab until the server closes it, or until the tab crashes (then whatever sat unread
/// in its buffer is recorded as lost with it).
async fn read_tab(
    world: Arc<World>,
    u: usize,
    tab: u64,
    inbox: mpsc::Receiver<Envelope>,
    id: oneshot::Receiver<Opened>,
    stop: oneshot::Receiver<Stop>,
    slow: bool,
) {
    let conn = match id.await {
        Ok(Opened::Held(conn)) => conn,
        Ok(Opened::Abandoned) => return watch_abandoned(&world, u, tab, inbox).await,
        Err(_) => return,
    };
    world.reading.lock().expect("reading").insert((u, conn));
    read_until_closed(&world, u, (tab, conn), inbox, stop, slow).await;
    world.reading.lock().expect("reading").remove(&(u, conn));
}

/// Watches the socket of a connect its client gave up on: everything that reaches it is
/// recorded (the checker calls it a finding), until the backend lets the socket go.
async fn watch_abandoned(world: &World, u: usize, tab: u64, mut inbox: mpsc::Receiver<Envelope>) {
    while let Some(env) = inbox.recv().await {
        world.received(u, tab, None, &env, false);
    }
    world.let_go(tab);
}

/// Reads until the socket ends. A stop (the tab crashed, or the server died under it) is taken
/// before anything more is read: a crashed client reads nothing after its crash, and what sat
/// in its buffer is lost with it.
async fn read_until_closed(
    world: &World,
    u: usize,
    (tab, conn): (u64, u64),
    mut inbox: mpsc::Receiver<Envelope>,
    stop: oneshot::Receiver<Stop>,
    slow: bool,
) {
    let life = world.life();
    let mut stop = Some(stop);
    loop {
        let next = match stop.as_mut() {
            Some(signal) => tokio::select! {
                biased;
                r = signal => {
                    if let Ok(s) = r {
                        inbox.close();
                        while let Ok(env) = inbox.try_recv() {
                            world.received(u, tab, Some(conn), &env, s.crashed);
                        }
                        let _ = s.done.send(());
                        return;
                    }
                    stop = None;
                    continue;
                }
                m = inbox.recv() => m,
            },
            None => inbox.recv().await,
        };
        let Some(env) = next else {
            if world.life() != life {
                return; // the server died: the checker knows
            }
            // The backend ended the socket: the client did not ask (a close of its own takes the
            // tab out of its hands first, and the checker knows).
            world.learned(u, Some(tab), &Learned::Ended);
            return;
        };
        if world.life() != life {
            return; // the server this tab was connected to has died, and its history with it
        }
        world.received(u, tab, Some(conn), &env, false);
        if slow && !world.healed() {
            tokio::time::sleep(SLOW_READ).await;
        }
    }
}
