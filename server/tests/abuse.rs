//! The abuse suite: hostile and unlucky clients on loopback. Each case runs a bystander whose
//! agent runs are in flight during the abuse, and asserts that the server stayed up and the
//! bystander received every event, in order, with no gap, and that a new user is still served.
//! Loops and waits are bounded; the whole file runs in a few seconds. The cases a team's axum app
//! must survive as well run twice, against the server's own listener (`native`) and against the
//! axum path served through `HandshakeListener` (`axum`).
#![cfg(not(madsim))]

use std::time::Duration;

use tokio::net::TcpListener;
use wsreg::AgentEvent;
use wsreg_server::client::Client;
use wsreg_server::protocol::{ClientMessage, ServerMessage};
use wsreg_server::{auth, Server, ServerConfig};

mod support;
use support::*;

/// A server whose demo runs take about 140 ms (20 ms a step), so a bystander's runs are in
/// flight while the abuse happens.
fn config() -> ServerConfig {
    let mut config = ServerConfig::new(SECRET, clock);
    config.agent_step = Duration::from_millis(20);
    config.max_frame_bytes = 1024;
    config
}

async fn silent_and_half_finished_handshakes_are_dropped(front: Front) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = config();
    config.handshake_timeout = Duration::from_millis(300);
    let (addr, _stop) = start_on(front, config).await;
    let bystander = Bystander::start(&addr, 3).await;
    let mut held = Vec::new();
    for i in 0..200 {
        let mut s = tokio::net::TcpStream::connect(host_and_path(&addr).0)
            .await
            .unwrap();
        if i % 2 == 0 {
            // Half a request, then silence.
            s.write_all(b"GET /?token=x HTTP/1.1\r\nHost: a\r\n")
                .await
                .unwrap();
        }
        held.push(s);
    }
    bystander.received_everything(&addr).await;
    for s in &mut held {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a silent connection is still held: {read:?}"
        );
    }
}

async fn a_message_flood_is_told_once_then_closed_with_1008(front: Front) {
    let mut config = config();
    config.max_messages_per_second = 20;
    let (addr, _stop) = start_on(front, config).await;
    let bystander = Bystander::start(&addr, 3).await;
    let mut mallory = raw_upgrade(&addr, "mallory").await;
    for _ in 0..500 {
        write_frame(&mut mallory, 0x81, br#"{"type":"ping"}"#).await;
    }
    let (texts, code) = read_until_close(&mut mallory).await;
    let pongs = texts
        .iter()
        .filter(|t| t.contains(r#""type":"pong""#))
        .count();
    let limited = texts.iter().filter(|t| t.contains("rate_limited")).count();
    assert_eq!(pongs, 20, "a burst of one second's budget is served");
    assert_eq!(limited, 1, "the client is told once: {texts:?}");
    assert_eq!(code, Some(1008));
    bystander.received_everything(&addr).await;
}

async fn a_flood_of_unsolicited_pongs_is_limited_like_any_frame(front: Front) {
    let mut config = config();
    config.max_messages_per_second = 20;
    let (addr, _stop) = start_on(front, config).await;
    let bystander = Bystander::start(&addr, 3).await;
    let mut mallory = raw_upgrade(&addr, "mallory").await;
    for _ in 0..500 {
        write_frame(&mut mallory, 0x8A, b"").await;
    }
    let (_, code) = read_until_close(&mut mallory).await;
    assert_eq!(code, Some(1008), "500 pongs in a burst go past the budget");
    bystander.received_everything(&addr).await;
}

#[tokio::test]
async fn only_the_endpoint_paths_are_upgraded() {
    let (addr, _stop) = start_with(config()).await;
    let token = auth::issue(SECRET, "mallory", 2_000_000);
    for path in ["/ws/../ws", "/admin", "/ws/", "//", "/metrics"] {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        send_upgrade(&mut s, &addr, &format!("{path}?token={token}")).await;
        let response = answer(&mut s).await;
        assert!(response.starts_with("HTTP/1.1 404"), "{path}: {response}");
    }
    for path in ["/", "/ws"] {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        send_upgrade(&mut s, &addr, &format!("{path}?token={token}")).await;
        let response = answer(&mut s).await;
        assert!(response.starts_with("HTTP/1.1 101"), "{path}: {response}");
    }
}

async fn a_steady_client_within_its_budget_is_never_limited(front: Front) {
    let mut config = config();
    config.max_messages_per_second = 20;
    let (addr, _stop) = start_on(front, config).await;
    let mut polite = login(&addr, "polite").await;
    for _ in 0..30 {
        polite.send(&ClientMessage::Ping {}).await.unwrap();
        assert_eq!(polite.next().await.unwrap().unwrap(), ServerMessage::Pong);
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
}

#[tokio::test]
async fn oversize_binary_and_fragmented_frames() {
    let (addr, _stop) = start_with(config()).await;
    let bystander = Bystander::start(&addr, 3).await;
    // Over max_frame_bytes: 1009, for that socket only.
    let mut big = raw_upgrade(&addr, "mallory").await;
    write_frame(&mut big, 0x81, &[b'x'; 2048]).await;
    assert_eq!(try_close_code(&mut big).await, Some(1009));
    // A message split into fragments that together exceed it: 1009 as well.
    let mut pieces = raw_upgrade(&addr, "mallory").await;
    write_frame(&mut pieces, 0x01, &[b' '; 600]).await;
    write_frame(&mut pieces, 0x80, &[b' '; 600]).await;
    assert_eq!(try_close_code(&mut pieces).await, Some(1009));
    // A legal fragmented message is reassembled and answered; a binary frame gets an error
    // frame and the socket stays open.
    let mut ok = raw_upgrade(&addr, "trent").await;
    write_frame(&mut ok, 0x01, br#"{"type":"#).await;
    write_frame(&mut ok, 0x80, br#""ping"}"#).await;
    write_frame(&mut ok, 0x82, &[0, 1, 2]).await;
    // A new data frame while a fragmented message is unfinished violates the protocol: 1002.
    write_frame(&mut ok, 0x01, b"{").await;
    write_frame(&mut ok, 0x81, b"{}").await;
    let (texts, code) = read_until_close(&mut ok).await;
    assert!(
        texts.iter().any(|t| t.contains(r#""type":"pong""#)),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("binary frames")),
        "{texts:?}"
    );
    assert_eq!(code, Some(1002));
    bystander.received_everything(&addr).await;
}

async fn after_a_wave_of_logins_new_users_are_served_not_refused(front: Front) {
    let mut config = config();
    config.registry.max_managers = 3;
    let (addr, _stop) = start_on(front, config).await;
    // A wave: twenty users log in and leave.
    for i in 0..20 {
        let c = login(&addr, &format!("wave{i}")).await;
        c.close().await;
    }
    let bystander = Bystander::start(&addr, 2).await;
    // A newcomer is welcomed: an idle manager of the wave made room.
    let token = auth::issue(SECRET, "late", 2_000_000);
    let mut late = Client::connect(&addr, &token).await.unwrap();
    let welcome = late.next().await.unwrap().unwrap();
    assert!(
        matches!(welcome, ServerMessage::Welcome { .. }),
        "{welcome:?}"
    );
    // With every manager busy (bystander, late, busy), the next is refused with
    // manager_limit, and nobody else is touched.
    let _busy = login(&addr, "busy").await;
    let token = auth::issue(SECRET, "refused", 2_000_000);
    let mut refused = Client::connect(&addr, &token).await.unwrap();
    let frame = refused.next().await.unwrap().unwrap();
    assert!(
        matches!(&frame, ServerMessage::Error { code, .. } if code == "manager_limit"),
        "{frame:?}"
    );
    drop(late);
    bystander.received_everything(&addr).await;
}

#[tokio::test]
async fn ctrl_c_during_runs_lets_them_finish_then_tells_every_socket_1001() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = Server::new(config());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    let mut sockets = Vec::new();
    for i in 0..10 {
        let mut s = raw_upgrade(&addr, &format!("user{i}")).await;
        for _ in 0..4 {
            write_frame(&mut s, 0x81, br#"{"type":"start_run","tools":2}"#).await;
        }
        sockets.push(s);
    }
    tokio::time::sleep(Duration::from_millis(50)).await; // runs are in flight
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("serve returns within the drain timeouts")
        .unwrap()
        .unwrap();
    for s in &mut sockets {
        let (texts, code) = read_until_close(s).await;
        assert_eq!(
            code,
            Some(1001),
            "every socket is told the server is going away"
        );
        // What arrived is the stream from its start, with no hole: a client that resumes
        // elsewhere after the last position it read misses nothing it was not told about.
        let events: Vec<(u64, String)> = texts
            .iter()
            .filter_map(|t| serde_json::from_str::<ServerMessage>(t).ok())
            .filter_map(|m| match m {
                ServerMessage::Event { seq, event, .. } => Some((seq, event.kind().to_owned())),
                _ => None,
            })
            .collect();
        let seqs: Vec<u64> = events.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
        // The drain lets runs in flight finish: every run that started, completed.
        let count = |kind: &str| events.iter().filter(|(_, k)| k == kind).count();
        assert!(count("agent_started") > 0, "{texts:?}");
        assert_eq!(
            count("agent_started"),
            count("agent_completed"),
            "a run in flight was cut by the shutdown: {texts:?}"
        );
    }
}

#[tokio::test]
async fn at_the_open_files_limit_the_server_stays_up_and_serves_again() {
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 40 && exec {} --secret test-secret serve --addr {addr}",
            env!("CARGO_BIN_EXE_wsreg-server")
        ))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sh runs");
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server never listened");
    // More raw connections than the process has file descriptors: its accepts start failing.
    let mut hogs = Vec::new();
    for _ in 0..80 {
        hogs.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server exited at the open-files limit"
    );
    drop(hogs);
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 3_600_000;
    let token = auth::issue(SECRET, "after", expires);
    let mut welcomed = false;
    for _ in 0..50 {
        if let Ok(mut c) = Client::connect(&addr, &token).await {
            if let Some(Ok(ServerMessage::Welcome { .. })) = c.next().await {
                welcomed = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        welcomed,
        "the server did not serve again once sockets closed"
    );
}

async fn a_start_run_flood_is_refused_past_the_runs_in_flight_limit(front: Front) {
    let mut config = config();
    config.agent_step = Duration::from_millis(50);
    let (addr, _stop) = start_on(front, config).await;
    let bystander = Bystander::start(&addr, 3).await;
    let mut ivan = login(&addr, "ivan").await;
    for _ in 0..10 {
        ivan.send(&ClientMessage::StartRun { tools: 1 })
            .await
            .unwrap();
    }
    let mut refused = 0;
    let mut completed = 0;
    while completed < 4 {
        match ivan.next().await.unwrap().unwrap() {
            ServerMessage::Error { code, .. } if code == "run_limit" => refused += 1,
            ServerMessage::Event {
                event: AgentEvent::AgentCompleted { .. },
                ..
            } => completed += 1,
            _ => {}
        }
    }
    assert_eq!(refused, 6, "four runs in flight at most");
    // Once they finish, the user may start runs again.
    ivan.send(&ClientMessage::StartRun { tools: 0 })
        .await
        .unwrap();
    loop {
        match ivan.next().await.unwrap().unwrap() {
            ServerMessage::Error { code, .. } => panic!("refused again: {code}"),
            ServerMessage::Event {
                event: AgentEvent::AgentStarted { .. },
                ..
            } => break,
            _ => {}
        }
    }
    bystander.received_everything(&addr).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_its_slot_freed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut config = ServerConfig::new(SECRET, clock);
    config.heartbeat = Duration::from_millis(100);
    config.idle_timeout = Duration::from_millis(500);
    config.write_timeout = Duration::from_millis(300);
    config.agent_step = Duration::from_millis(20);
    let server = Server::new(config);
    let registry = std::sync::Arc::clone(&server);
    tokio::spawn(server.serve(listener, std::future::pending()));
    let bystander = Bystander::start(&addr, 3).await;
    let _stuck = raw_upgrade(&addr, "judy").await; // never read from again
    let judy = wsreg::UserContext::new("judy").unwrap();
    let big = "x".repeat(32 * 1024);
    let live = || {
        registry
            .registry()
            .expect("its own registry")
            .get(judy.key())
            .map_or(0, |m| m.connection_count())
    };
    for _ in 0..60 {
        if live() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(live(), 1);
    for _ in 0..2_000 {
        registry
            .registry()
            .expect("its own registry")
            .send_text(judy.key(), &big)
            .unwrap();
    }
    let mut freed = false;
    for _ in 0..100 {
        if live() == 0 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "the stuck socket still holds its connection slot");
    bystander.received_everything(&addr).await;
}

async fn a_reconnect_storm_is_refused_past_the_connect_budget(front: Front) {
    let mut config = config();
    config.max_connects_per_user_per_second = 10;
    let (addr, _stop) = start_on(front, config).await;
    let bystander = Bystander::start(&addr, 3).await;
    let (host, path) = host_and_path(&addr);
    let token = auth::issue(SECRET, "mallory", 2_000_000);
    let attempt = || async {
        let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
        send_upgrade(
            &mut s,
            host,
            &format!("{path}?token={token}&since=0&epoch=1.1"),
        )
        .await;
        answer(&mut s).await
    };
    let mut served = 0;
    let mut too_many = 0;
    for _ in 0..60 {
        let response = attempt().await;
        if response.starts_with("HTTP/1.1 101") {
            served += 1;
        } else if response.starts_with("HTTP/1.1 429") {
            too_many += 1;
        } else {
            panic!("{response}");
        }
    }
    assert!(
        (10..=13).contains(&served),
        "{served} of 60 connects served in a storm, with a budget of 10 a second"
    );
    assert_eq!(served + too_many, 60);
    bystander.received_everything(&addr).await;
    // The budget refills: a second later the user is served again.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(attempt().await.starts_with("HTTP/1.1 101"));
}

async fn an_oversized_request_head_gets_431_on_either_path(front: Front) {
    let (addr, _stop) = start_on(front, config()).await;
    let bystander = Bystander::start(&addr, 2).await;
    let (host, path) = host_and_path(&addr);
    // A forged token of 10 KB is refused for what it is; one of 64 KB, for its size.
    for (len, status) in [(10_000, "401"), (64 * 1024, "431")] {
        let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
        let token = "x".repeat(len);
        send_upgrade(&mut s, host, &format!("{path}?token={token}")).await;
        let response = answer(&mut s).await;
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}")),
            "a {len}-byte token: {response}"
        );
    }
    bystander.received_everything(&addr).await;
}

/// Each case, against the server's own listener and against the axum path.
macro_rules! on_both_fronts {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                use super::support::Front;

                #[tokio::test]
                async fn native() {
                    super::$case(Front::Native).await
                }

                #[tokio::test]
                async fn axum() {
                    super::$case(Front::Axum).await
                }
            }
        )*
    };
}

on_both_fronts!(
    silent_and_half_finished_handshakes_are_dropped,
    a_message_flood_is_told_once_then_closed_with_1008,
    a_flood_of_unsolicited_pongs_is_limited_like_any_frame,
    a_steady_client_within_its_budget_is_never_limited,
    after_a_wave_of_logins_new_users_are_served_not_refused,
    a_start_run_flood_is_refused_past_the_runs_in_flight_limit,
    a_reconnect_storm_is_refused_past_the_connect_budget,
    an_oversized_request_head_gets_431_on_either_path,
);
