//! The server with real clients on loopback (real tokio only: it binds real sockets).
#![cfg(not(madsim))]

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use wsreg::Position;
use wsreg_server::client::Client;
use wsreg_server::protocol::{ClientMessage, ServerMessage};
use wsreg_server::{auth, Server, ServerConfig};

mod support;
use support::*;

struct Running {
    addr: String,
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(agent_step_ms: u64) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut config = ServerConfig::new(SECRET, clock);
    config.agent_step = Duration::from_millis(agent_step_ms);
    config.max_frame_bytes = 1024;
    let server = Server::new(config);
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    Running { addr, stop, done }
}

#[tokio::test]
async fn two_users_each_receive_only_their_own_events() {
    let s = start(1).await;
    let mut alice = login(&s.addr, "alice").await;
    let mut bob = login(&s.addr, "bob").await;
    alice
        .send(&ClientMessage::StartRun { tools: 2 })
        .await
        .unwrap();
    bob.send(&ClientMessage::StartRun { tools: 1 })
        .await
        .unwrap();
    let a = events(&mut alice, 7).await;
    let b = events(&mut bob, 5).await;
    assert!(
        a.iter().all(|(_, _, run)| run.starts_with("alice/")),
        "{a:?}"
    );
    assert!(b.iter().all(|(_, _, run)| run.starts_with("bob/")), "{b:?}");
    assert_eq!(a.last().unwrap().1, "agent_completed");
    assert_eq!(b.last().unwrap().1, "agent_completed");
    assert!(a.windows(2).all(|w| w[0].0 < w[1].0));
    s.stop.send(()).unwrap();
    s.done.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_reconnect_resumes_after_its_last_position_in_order_before_new_events() {
    let s = start(40).await; // slow agent: the run outlives the first socket
    let (mut first, welcome) = login_after(&s.addr, "carol", None).await;
    let ServerMessage::Welcome {
        epoch, recovered, ..
    } = welcome
    else {
        unreachable!()
    };
    assert!(!recovered, "a fresh connect recovers nothing");
    first
        .send(&ClientMessage::StartRun { tools: 3 })
        .await
        .unwrap();
    let before = events(&mut first, 2).await;
    first.close().await;
    tokio::time::sleep(Duration::from_millis(150)).await; // the run goes on meanwhile
    let last = Position::new(epoch, before.last().unwrap().0);
    let (mut second, welcome) = login_after(&s.addr, "carol", Some(last)).await;
    assert!(
        matches!(welcome, ServerMessage::Welcome { recovered: true, seq, .. } if seq == last.seq),
        "{welcome:?}"
    );
    let rest = events(&mut second, 9 - 2).await;
    let seqs: Vec<u64> = before.iter().chain(&rest).map(|e| e.0).collect();
    assert_eq!(
        seqs,
        (1..=9).collect::<Vec<_>>(),
        "lost, duplicated or reordered"
    );
    assert_eq!(rest.last().unwrap().1, "agent_completed");
    second
        .send(&ClientMessage::StartRun { tools: 0 })
        .await
        .unwrap();
    let newer = events(&mut second, 3).await;
    assert!(newer[0].0 > 9 && newer[0].1 == "agent_started");
    // A position from another epoch (another process, or a reaped manager) is answered with
    // an epoch_changed gap first; one the stream never reached is refused.
    let (mut third, _) = login_after(
        &s.addr,
        "carol",
        Some(Position::new("999.9".parse().unwrap(), 4)),
    )
    .await;
    let gap = tokio::time::timeout(Duration::from_secs(5), third.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            gap,
            ServerMessage::Gap {
                reason: wsreg::GapReason::EpochChanged,
                ..
            }
        ),
        "{gap:?}"
    );
    let token = auth::issue(SECRET, "carol", 2_000_000);
    let ahead = Position::new(epoch, 10_000);
    let mut refused = Client::resume(&s.addr, &token, None, Some(ahead))
        .await
        .unwrap();
    let frame = refused.next().await.unwrap().unwrap();
    assert!(
        matches!(&frame, ServerMessage::Error { code, .. } if code == "resume_ahead"),
        "{frame:?}"
    );
    for bad in ["since=3", "since=x&epoch=1.1", "since=3&epoch=banana"] {
        let url = format!("ws://{}/?token={token}&{bad}", s.addr);
        let stream = tokio::net::TcpStream::connect(&s.addr).await.unwrap();
        let err = tokio_tungstenite::client_async(url, stream)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("400"), "{bad}: {err}");
    }
    s.stop.send(()).unwrap();
    s.done.await.unwrap().unwrap();
}

#[tokio::test]
async fn forged_expired_and_missing_tokens_are_refused_and_others_are_still_served() {
    let s = start(1).await;
    let forged = auth::issue(b"not-the-secret", "mallory", 2_000_000);
    let expired = auth::issue(SECRET, "mallory", 999_999);
    for token in [forged.as_str(), expired.as_str(), "", "garbage"] {
        let refused = Client::connect(&s.addr, token).await;
        assert!(
            matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
            "token {token:?} was not refused with 401"
        );
    }
    let mut dave = login(&s.addr, "dave").await;
    dave.send(&ClientMessage::StartRun { tools: 0 })
        .await
        .unwrap();
    assert_eq!(events(&mut dave, 3).await.len(), 3);
    s.stop.send(()).unwrap();
    s.done.await.unwrap().unwrap();
}

#[tokio::test]
async fn bad_frames_get_error_frames_or_a_close_and_never_affect_others() {
    let s = start(1).await;
    let mut erin = login(&s.addr, "erin").await;
    let mut frank = login(&s.addr, "frank").await;
    let error_code = |f: ServerMessage| match f {
        ServerMessage::Error { code, .. } => code,
        other => panic!("expected an error frame, got {other:?}"),
    };
    erin.send_raw("{oops".into()).await.unwrap();
    assert_eq!(error_code(erin.next().await.unwrap().unwrap()), "bad_json");
    erin.send_raw(r#"{"type":"rm_rf"}"#.into()).await.unwrap();
    assert_eq!(
        error_code(erin.next().await.unwrap().unwrap()),
        "unknown_type"
    );
    erin.send(&ClientMessage::StartRun { tools: 99 })
        .await
        .unwrap();
    assert_eq!(
        error_code(erin.next().await.unwrap().unwrap()),
        "bad_request"
    );
    erin.send(&ClientMessage::Ping {}).await.unwrap();
    assert_eq!(erin.next().await.unwrap().unwrap(), ServerMessage::Pong);
    // Oversize: the server closes this socket (1009) and only this one.
    let _ = erin.send_raw("x".repeat(4096)).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match erin.next().await {
                None | Some(Err(_)) => return true,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true));
    frank
        .send(&ClientMessage::StartRun { tools: 1 })
        .await
        .unwrap();
    assert_eq!(events(&mut frank, 5).await.len(), 5);
    s.stop.send(()).unwrap();
    s.done.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_drains_the_queues_then_closes_every_socket() {
    let s = start(0).await;
    let mut gina = login(&s.addr, "gina").await;
    gina.send(&ClientMessage::StartRun { tools: 8 })
        .await
        .unwrap();
    let first = events(&mut gina, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await; // the run is emitted, not yet read
    s.stop.send(()).unwrap();
    let mut seen = first.len();
    while let Some(Ok(frame)) = gina.next().await {
        if matches!(frame, ServerMessage::Event { .. }) {
            seen += 1;
        }
    }
    s.done.await.unwrap().unwrap();
    assert_eq!(seen, 1 + 1 + 16 + 1, "events lost in the shutdown");
}

#[tokio::test]
async fn leaving_with_close_gets_what_was_already_sent_then_the_socket_closes() {
    let s = start(0).await;
    let token = auth::issue(SECRET, "hana", 2_000_000);
    let mut hana = Client::connect_in_thread(&s.addr, &token, Some("chat 1/ü"))
        .await
        .unwrap();
    let welcome = hana.next().await.unwrap().unwrap();
    let ServerMessage::Welcome { boot, .. } = welcome else {
        panic!("{welcome:?}")
    };
    assert_eq!(boot, clock(), "the boot id comes from the server's clock");
    hana.send(&ClientMessage::StartRun { tools: 8 })
        .await
        .unwrap();
    let first = events(&mut hana, 1).await;
    hana.send(&ClientMessage::Close {}).await.unwrap();
    let mut seqs = vec![first[0].0];
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(frame)) = hana.next().await {
            if let ServerMessage::Event { seq, .. } = frame {
                seqs.push(seq);
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the server did not close the socket");
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "a gap: something the server had sent was lost on the way out"
    );
    // A thread id the core refuses is refused at the handshake.
    let bad = Client::connect_in_thread(&s.addr, &token, Some("a\u{7}b")).await;
    assert!(
        matches!(&bad, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 400),
        "{:?}",
        bad.err()
    );
    s.stop.send(()).unwrap();
    s.done.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed_and_a_live_one_is_kept() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut config = ServerConfig::new(SECRET, clock);
    config.heartbeat = Duration::from_millis(50);
    config.idle_timeout = Duration::from_millis(200);
    let server = Server::new(config);
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(std::sync::Arc::clone(&server).serve(listener, async {
        let _ = stopped.await;
    }));
    let mut live = login(&addr, "ivy").await;
    // A half-open client: it completed the handshake, then never reads again (so never pongs).
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let url = format!(
        "ws://{addr}/?token={}",
        auth::issue(SECRET, "jay", 2_000_000)
    );
    let (_silent, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(
        server
            .registry()
            .expect("its own registry")
            .inspect()
            .connections,
        2
    );
    // ivy keeps reading (answering pings) well past the idle timeout.
    let read = tokio::time::timeout(Duration::from_millis(600), live.next()).await;
    assert!(
        read.is_err(),
        "ivy got a frame or lost her socket: {read:?}"
    );
    let left: Vec<String> = server
        .registry()
        .expect("its own registry")
        .inspect()
        .managers
        .iter()
        .filter(|m| !m.connections.is_empty())
        .map(|m| m.user.as_str().to_owned())
        .collect();
    assert_eq!(
        left,
        vec!["ivy".to_owned()],
        "jay's dead socket is still registered"
    );
    stop.send(()).unwrap();
    done.await.unwrap().unwrap();
}

/// Starts a server with `config`'s clock and handshake timeout; returns its address.
#[tokio::test]
async fn a_connection_that_never_finishes_its_handshake_is_dropped() {
    use tokio::io::AsyncReadExt;
    let mut config = ServerConfig::new(SECRET, clock);
    config.handshake_timeout = Duration::from_millis(200);
    let (addr, _stop) = start_with(config).await;
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the server should have closed the silent connection: {read:?}"
    );
    // Everyone else is served as before.
    let mut bystander = login(&addr, "bystander").await;
    bystander.send(&ClientMessage::Ping {}).await.unwrap();
    assert_eq!(
        bystander.next().await.unwrap().unwrap(),
        ServerMessage::Pong
    );
}

static UPGRADE_CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_000);

fn upgrade_clock() -> u64 {
    UPGRADE_CLOCK.load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test]
async fn a_token_that_expires_between_accept_and_upgrade_is_refused() {
    let (addr, _stop) = start_with(ServerConfig::new(SECRET, upgrade_clock)).await;
    let token = auth::issue(SECRET, "slowpoke", 1_500);
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await; // accepted, waiting for the request
    UPGRADE_CLOCK.store(2_000, std::sync::atomic::Ordering::SeqCst);
    send_upgrade(&mut slow, &addr, &format!("/?token={token}")).await;
    let response = answer(&mut slow).await;
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
}

#[tokio::test]
async fn a_shutdown_tells_every_socket_1001_before_serve_returns() {
    // The server on a runtime of its own that is dropped as soon as serve returns, as the
    // binary's is: whatever serve did not wait for is cut off.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            let server = Server::new(ServerConfig::new(SECRET, clock));
            let shutdown = async move {
                while stopped.try_recv().is_err() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            server.serve(listener, shutdown).await.unwrap();
        });
        drop(rt);
    });
    let mut sockets = Vec::new();
    for i in 0..20 {
        sockets.push(raw_upgrade(&addr, &format!("user{i}")).await);
    }
    stop.send(()).unwrap();
    tokio::task::spawn_blocking(move || server.join().unwrap())
        .await
        .unwrap();
    for s in &mut sockets {
        assert_eq!(try_close_code(s).await, Some(1001));
    }
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007_and_a_protocol_violation_with_1002() {
    use tokio::io::AsyncWriteExt;
    let running = start(5).await;
    // A masked text frame whose payload is not UTF-8.
    let mut bad_text = raw_upgrade(&running.addr, "mallory").await;
    let mask = [1u8, 2, 3, 4];
    let payload: Vec<u8> = [0xffu8, 0xfe, 0xfd]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend(mask);
    frame.extend(payload);
    bad_text.write_all(&frame).await.unwrap();
    assert_eq!(close_code(&mut bad_text).await, 1007);
    // An unmasked frame from a client is a protocol violation.
    let mut unmasked = raw_upgrade(&running.addr, "mallory").await;
    unmasked.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
    assert_eq!(close_code(&mut unmasked).await, 1002);
    // Others are served as before.
    let mut bystander = login(&running.addr, "bystander").await;
    bystander.send(&ClientMessage::Ping {}).await.unwrap();
    assert_eq!(
        bystander.next().await.unwrap().unwrap(),
        ServerMessage::Pong
    );
}

/// Two servers over one store: a socket whose stream the store lost is closed with 1012 (its
/// client is to resume), never left open and silent, and the resume is told what was lost.
#[tokio::test]
async fn a_socket_whose_stream_the_store_lost_is_closed_1012_and_its_resume_is_told() {
    use std::sync::Arc;
    let config = ServerConfig::new(SECRET, clock);
    let store = wsreg::store::MemoryStore::new(wsreg::NodeConfig::default().bounds());
    let mut addrs = Vec::new();
    let mut servers = Vec::new();
    for name in ["a", "b"] {
        let (handle, live) = store.attach();
        let server = Server::with_store(config.clone(), name, Arc::new(handle), live);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap().to_string());
        tokio::spawn(Arc::clone(&server).serve(listener, std::future::pending()));
        servers.push(server);
    }
    let mut on_b = raw_upgrade(&addrs[1], "alice").await;
    let alice = wsreg::UserContext::new("alice").unwrap();
    // Node B subscribes before it welcomes the socket: what node A sends now crosses over.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent = servers[0].backend().send_text(&alice, "one").await.unwrap();
    store.restart();
    let after = servers[0].backend().send_text(&alice, "two").await.unwrap();
    assert_ne!(
        after.epoch, sent.epoch,
        "a store restarted empty starts a new epoch"
    );
    let (texts, code) = tokio::time::timeout(Duration::from_secs(5), read_until_close(&mut on_b))
        .await
        .expect("closed in time");
    assert_eq!(code, Some(1012), "{texts:?}");
    assert!(texts[0].contains("\"welcome\""), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("\"one\"")), "{texts:?}");
    assert!(!texts.iter().any(|t| t.contains("\"two\"")), "{texts:?}");
    let epoch = sent.epoch;
    let token = auth::issue(SECRET, "alice", clock() + 60_000);
    let resume = Position::new(epoch, sent.seq);
    let mut again = Client::resume(&addrs[1], &token, None, Some(resume))
        .await
        .unwrap();
    let Some(Ok(ServerMessage::Welcome { recovered, .. })) = again.next().await else {
        panic!("no welcome")
    };
    assert!(!recovered);
    let Some(Ok(ServerMessage::Gap { reason, .. })) = again.next().await else {
        panic!("no gap")
    };
    assert_eq!(reason, wsreg::GapReason::EpochChanged);
}

/// The real core behind a connect that never answers for one user (a store that stalled).
struct StalledFor {
    user: &'static str,
    core: wsreg::Registry,
}

impl wsreg::Backend for StalledFor {
    fn connect<'a>(
        &'a self,
        ctx: &'a wsreg::UserContext,
        sink: Box<dyn wsreg::Sink>,
        resume: Option<Position>,
    ) -> wsreg::backend::BoxFuture<'a, Result<wsreg::backend::Connected, wsreg::Error>> {
        if ctx.user_id() == self.user {
            return Box::pin(std::future::pending());
        }
        wsreg::Backend::connect(&self.core, ctx, sink, resume)
    }
    fn close<'a>(
        &'a self,
        handle: &'a wsreg::backend::Handle,
    ) -> wsreg::backend::BoxFuture<'a, Result<(), wsreg::Error>> {
        wsreg::Backend::close(&self.core, handle)
    }
    fn emit<'a>(
        &'a self,
        ctx: &'a wsreg::UserContext,
        event: wsreg::AgentEvent,
    ) -> wsreg::backend::BoxFuture<'a, Result<Position, wsreg::Error>> {
        wsreg::Backend::emit(&self.core, ctx, event)
    }
    fn send_text<'a>(
        &'a self,
        ctx: &'a wsreg::UserContext,
        text: &'a str,
    ) -> wsreg::backend::BoxFuture<'a, Result<Position, wsreg::Error>> {
        wsreg::Backend::send_text(&self.core, ctx, text)
    }
    fn set_mode(&self, ctx: &wsreg::UserContext, mode: wsreg::Mode) -> Result<(), wsreg::Error> {
        wsreg::Backend::set_mode(&self.core, ctx, mode)
    }
}

#[tokio::test]
async fn a_connect_the_core_does_not_accept_in_time_is_refused_and_comes_back() {
    let mut config = ServerConfig::new(SECRET, clock);
    config.connect_timeout = Some(Duration::from_millis(200));
    let backend = std::sync::Arc::new(StalledFor {
        user: "stuck",
        core: wsreg::Registry::default(),
    });
    let server = Server::with_backend(config, backend);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(Arc::clone(&server).serve(listener, async {
        let _ = stopped.await;
    }));
    let mut stuck = raw_upgrade(&addr, "stuck").await;
    let (texts, code) = tokio::time::timeout(Duration::from_secs(10), read_until_close(&mut stuck))
        .await
        .expect("the server answers within its connect timeout");
    assert_eq!(code, Some(1013), "come back later: {texts:?}");
    assert!(
        texts.len() == 1 && texts[0].contains(r#""code":"connect_timeout""#),
        "{texts:?}"
    );
    assert!(
        server
            .render_metrics()
            .contains(r#"wsreg_handshake_refusals_total{reason="connect_timeout"} 1"#),
        "{}",
        server.render_metrics()
    );
    // Everyone else is served as before.
    let mut bystander = login(&addr, "bystander").await;
    bystander.send(&ClientMessage::Ping {}).await.unwrap();
    assert_eq!(
        bystander.next().await.unwrap().unwrap(),
        ServerMessage::Pong
    );
}
