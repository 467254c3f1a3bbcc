//! A per-user WebSocket registry written from scratch, the way a team might write its own: a
//! map from user id to that user's state, its own manager and connection numbers, an offline
//! queue per user that a returning tab resumes from, one writer task per socket, and a reaper
//! that drops users left idle. It uses nothing of `wsreg::Registry`: only wsreg's plain data
//! types (ids, positions, envelopes) to speak the stream contract, and the observer hook to
//! report itself.
//!
//! [`Variant::CheckThenAct`] carries the classic race: a first connect looks the user up,
//! loads a profile (an await), then files a fresh user, replacing one that a concurrent
//! connect filed in the meantime, and splitting that user's tabs across two streams.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use tokio::time::Instant;
use wsreg::{
    AgentEvent, CloseReason, ConnectionId, ConnectionView, Envelope, Epoch, Error, GapReason,
    ManagerId, ManagerView, Mode, Observation, Observer, Payload, Position, RegistryConfig,
    RegistryView, RemoveReason, Sink, UserContext, UserKey,
};
use wsreg_sim::run::backend::{Backend, BoxFuture, Capabilities, Connected, Handle};

/// Which registry: the correct one, or one with a planted race.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Looks up and files a user in one critical section.
    Correct,
    /// Looks a new user up, awaits, then files a fresh one regardless.
    CheckThenAct,
    /// Correct, but reuses the numbers of closed connections (the lowest free one first), as
    /// a slot table would, and says so: its ids are not unique.
    RecycledIds,
}

/// The registry.
pub struct Scratch {
    variant: Variant,
    config: RegistryConfig,
    observer: Option<Arc<dyn Observer>>,
    state: Arc<Mutex<State>>,
}

/// Everything, behind one lock that is never held across an await.
#[derive(Default)]
struct State {
    users: BTreeMap<String, User>,
    managers_made: u64,
    conns_made: u64,
    /// Numbers of closed connections, for [`Variant::RecycledIds`] to hand out again.
    free_conns: BTreeSet<u64>,
    open: usize,
}

/// One user's state (its "manager").
struct User {
    key: UserKey,
    manager: u64,
    epoch: Epoch,
    mode: Mode,
    /// The last position handed out.
    head: u64,
    /// The offline queue: the newest messages, for tabs that resume.
    queue: VecDeque<Envelope>,
    /// Open tabs: each one's writer queue.
    tabs: BTreeMap<u64, mpsc::UnboundedSender<Envelope>>,
    /// Since when the user has had no tab.
    idle_since: Instant,
}

impl User {
    /// The first position the offline queue still holds.
    fn first(&self) -> u64 {
        self.queue.front().map_or(self.head + 1, Envelope::seq)
    }
}

/// A tab, as its holder names it to [`Backend::close`].
pub struct Tab {
    user: String,
    conn: u64,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Scratch {
    /// A registry with these limits, reporting to `observer`.
    pub fn new(
        variant: Variant,
        config: RegistryConfig,
        observer: Option<Arc<dyn Observer>>,
    ) -> Self {
        Self {
            variant,
            config,
            observer,
            state: Arc::default(),
        }
    }

    fn report(&self, o: Observation<'_>) {
        if let Some(observer) = &self.observer {
            observer.observe(&o);
        }
    }

    /// Files a new user, making room by evicting the user idle longest when at the limit.
    fn file_user(&self, st: &mut State, id: &str) -> Result<(), Error> {
        if st.users.len() >= self.config.max_managers {
            let idle = st
                .users
                .iter()
                .filter(|(_, u)| u.tabs.is_empty())
                .min_by_key(|(_, u)| u.idle_since)
                .map(|(id, _)| id.clone());
            let Some(victim) = idle else {
                return Err(Error::ManagerLimit {
                    max: self.config.max_managers,
                });
            };
            let gone = st.users.remove(&victim).expect("just found");
            self.report(Observation::ManagerRemoved {
                user: &gone.key,
                manager: ManagerId::new(gone.manager),
                reason: RemoveReason::Evicted,
            });
        }
        st.managers_made += 1;
        let user = User {
            key: UserKey::new(id)?,
            manager: st.managers_made,
            epoch: Epoch::new(self.config.boot.unwrap_or(0), st.managers_made),
            mode: Mode::Unified,
            head: 0,
            queue: VecDeque::new(),
            tabs: BTreeMap::new(),
            idle_since: Instant::now(),
        };
        self.report(Observation::ManagerCreated {
            user: &user.key,
            manager: ManagerId::new(user.manager),
            epoch: user.epoch,
        });
        st.users.insert(id.to_owned(), user);
        Ok(())
    }

    /// Opens a tab on the user's stream, queueing its catch-up before any live message.
    fn attach(
        &self,
        st: &mut State,
        id: &str,
        writer: mpsc::UnboundedSender<Envelope>,
        resume: Option<Position>,
    ) -> Result<Connected, Error> {
        if st.open >= self.config.max_connections {
            return Err(Error::ConnectionLimit {
                max: self.config.max_connections,
            });
        }
        if !st.users.contains_key(id) {
            self.file_user(st, id)?;
        }
        let recycles = self.variant == Variant::RecycledIds;
        if !recycles {
            st.conns_made += 1;
        }
        if st.users[id].tabs.len() >= self.config.max_connections_per_user {
            return Err(Error::UserConnectionLimit {
                user: id.to_owned(),
                max: self.config.max_connections_per_user,
            });
        }
        let reused = if recycles {
            st.free_conns.pop_first()
        } else {
            None
        };
        let conn = match reused {
            Some(reused) => reused,
            None if recycles => {
                st.conns_made += 1;
                st.conns_made
            }
            None => st.conns_made,
        };
        let user = st.users.get_mut(id).expect("filed");
        let (epoch, head, first) = (user.epoch, user.head, user.first());
        let (from, next, recovered) = match resume {
            Some(p) if p.epoch == epoch && p.seq > head => {
                return Err(Error::ResumeAhead {
                    user: id.to_owned(),
                    asked: p,
                    head: Position::new(epoch, head),
                })
            }
            Some(p) if p.epoch == epoch => (p, p.seq + 1, p.seq + 1 >= first),
            Some(_) => {
                // Another stream: say so, then replay what the queue holds of this one.
                let gap = Payload::Gap {
                    from: 1,
                    to: first - 1,
                    reason: GapReason::EpochChanged,
                };
                let marker = Envelope::new(user.key.clone(), Position::new(epoch, first - 1), gap);
                let _ = writer.send(marker);
                (Position::new(epoch, 0), first, false)
            }
            None => (Position::new(epoch, head), head + 1, false),
        };
        if next < first {
            let gap = Payload::Gap {
                from: next,
                to: first - 1,
                reason: GapReason::Trimmed,
            };
            let _ = writer.send(Envelope::new(
                user.key.clone(),
                Position::new(epoch, first - 1),
                gap,
            ));
        }
        for env in user.queue.iter().filter(|e| e.seq() >= next) {
            let _ = writer.send(env.clone());
        }
        user.tabs.insert(conn, writer);
        let (key, manager, live) = (user.key.clone(), user.manager, user.tabs.len());
        st.open += 1;
        self.report(Observation::ConnectionAdded {
            user: &key,
            manager: ManagerId::new(manager),
            conn: ConnectionId::new(conn),
            live,
            from,
        });
        Ok(Connected {
            key,
            manager,
            conn,
            handle: Handle::new(Tab {
                user: id.to_owned(),
                conn,
            }),
            from,
            recovered,
        })
    }

    /// Numbers a message, keeps it in the offline queue and hands it to every open tab.
    fn accept(&self, ctx: &UserContext, payload: Payload) -> Result<Position, Error> {
        let mut st = lock(&self.state);
        let unknown = || Error::UnknownUser {
            user: ctx.user_id().to_owned(),
        };
        let user = st.users.get_mut(ctx.user_id()).ok_or_else(unknown)?;
        user.head += 1;
        let at = Position::new(user.epoch, user.head);
        let env = Envelope::new(user.key.clone(), at, payload);
        self.report(Observation::Accepted {
            user: &user.key,
            manager: ManagerId::new(user.manager),
            at,
            payload: env.payload(),
        });
        user.queue.push_back(env.clone());
        while user.queue.len() > self.config.history_capacity {
            user.queue.pop_front();
        }
        for writer in user.tabs.values() {
            let _ = writer.send(env.clone());
        }
        Ok(at)
    }

    /// Drops the user once it has stayed without a tab for the idle TTL.
    fn reap_later(&self, id: String, manager: u64) {
        let state = Arc::clone(&self.state);
        let ttl = self.config.idle_ttl;
        let observer = self.observer.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            let mut st = lock(&state);
            let idle = st.users.get(&id).is_some_and(|u| {
                u.manager == manager && u.tabs.is_empty() && u.idle_since.elapsed() >= ttl
            });
            if idle {
                let gone = st.users.remove(&id).expect("checked");
                if let Some(o) = &observer {
                    o.observe(&Observation::ManagerRemoved {
                        user: &gone.key,
                        manager: ManagerId::new(gone.manager),
                        reason: RemoveReason::Idle,
                    });
                }
            }
        });
    }
}

/// One tab's writer: its queue, in order, to its socket.
async fn write(mut queue: mpsc::UnboundedReceiver<Envelope>, mut sink: Box<dyn Sink>) {
    while let Some(env) = queue.recv().await {
        if sink.send(env).await.is_err() {
            return;
        }
    }
}

impl Scratch {
    /// Closes a tab this registry opened.
    fn close_tab(&self, handle: &Handle) -> Result<(), Error> {
        let tab = handle.own::<Tab>()?;
        let mut st = lock(&self.state);

        let unknown = || Error::UnknownConnection {
            user: tab.user.clone(),
            conn: format!("c{}", tab.conn),
        };
        let user = st.users.get_mut(&tab.user).ok_or_else(unknown)?;
        user.tabs.remove(&tab.conn).ok_or_else(unknown)?;
        let (key, manager, live) = (user.key.clone(), user.manager, user.tabs.len());
        if live == 0 {
            user.idle_since = Instant::now();
        }
        if self.variant == Variant::RecycledIds {
            st.free_conns.insert(tab.conn);
        }
        st.open -= 1;
        self.report(Observation::ConnectionRemoved {
            user: &key,
            manager: ManagerId::new(manager),
            conn: ConnectionId::new(tab.conn),
            reason: CloseReason::Closed,
            live,
        });
        drop(st);
        if live == 0 {
            self.reap_later(tab.user.clone(), manager);
        }
        Ok(())
    }
}

impl Backend for Scratch {
    fn connect<'a>(
        &'a self,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            let id = ctx.user_id();
            if self.variant == Variant::CheckThenAct && !lock(&self.state).users.contains_key(id) {
                tokio::task::yield_now().await; // loading the user's profile
                let mut st = lock(&self.state);
                // The race: a concurrent connect may have filed the user meanwhile; this one
                // files a fresh user over it, and that connect's tab is left on a stream nobody
                // sends to.
                st.users.remove(id);
                self.file_user(&mut st, id)?;
            }
            let (writer, queue) = mpsc::unbounded_channel();
            let connected = self.attach(&mut lock(&self.state), id, writer, resume)?;
            tokio::spawn(write(queue, sink));
            Ok(connected)
        })
    }

    fn close<'a>(&'a self, handle: &'a Handle) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { self.close_tab(handle) })
    }

    fn emit<'a>(
        &'a self,
        ctx: &'a UserContext,
        event: AgentEvent,
    ) -> BoxFuture<'a, Result<Position, Error>> {
        Box::pin(std::future::ready(self.accept(ctx, Payload::Agent(event))))
    }

    fn send_text<'a>(
        &'a self,
        ctx: &'a UserContext,
        text: &'a str,
    ) -> BoxFuture<'a, Result<Position, Error>> {
        Box::pin(std::future::ready(self.accept(
            ctx,
            Payload::Text {
                text: text.to_owned(),
            },
        )))
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        let mut st = lock(&self.state);
        let user = st
            .users
            .get_mut(ctx.user_id())
            .ok_or_else(|| Error::UnknownUser {
                user: ctx.user_id().to_owned(),
            })?;
        // This registry has no pause modes: it keeps the mode for its UI and delivers anyway.
        user.mode = mode;
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            observes: self.observer.is_some(),
            probes: false,
            unique_ids: self.variant != Variant::RecycledIds,
            accepts_once: true,
        }
    }

    fn inspect(&self) -> Option<RegistryView> {
        let st = lock(&self.state);
        let managers = st
            .users
            .values()
            .map(|u| ManagerView {
                user: u.key.clone(),
                manager: ManagerId::new(u.manager),
                epoch: u.epoch,
                mode: u.mode,
                connections: u
                    .tabs
                    .keys()
                    .map(|&c| ConnectionView {
                        id: ConnectionId::new(c),
                        backlog: 0,
                        paused: false,
                    })
                    .collect(),
                history: u.queue.len(),
                open_runs: 0,
                accepted: u.head,
            })
            .collect();
        Some(RegistryView {
            managers,
            connections: st.open,
        })
    }
}
