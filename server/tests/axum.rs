//! The axum path with real clients: the example app (`examples/axum_app.rs`), which mounts the
//! same endpoint beside a route of its own, and the ops routes (`/metrics`, `/healthz`) that
//! `serve --metrics-addr` serves too.
#![cfg(not(madsim))]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wsreg_server::client::Client;
use wsreg_server::protocol::{ClientMessage, ServerMessage};
use wsreg_server::{auth, Server, ServerConfig};

mod support;
use support::*;

#[path = "../examples/axum_app.rs"]
mod example;

/// The example's axum app on loopback; returns its address.
async fn app(server: std::sync::Arc<Server>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = example::app(server);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A plain HTTP GET; returns the status code and the body.
async fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test]
async fn an_axum_app_serves_the_same_protocol_resume_included() {
    let mut config = ServerConfig::new(SECRET, clock);
    config.agent_step = Duration::from_millis(1);
    let addr = app(Server::new(config)).await;
    assert_eq!(get(&addr, "/").await, (200, "the team's app\n".to_owned()));
    let ws = format!("{addr}/ws");
    // A run, through the axum endpoint.
    let (mut alice, welcome) = login_after(&ws, "alice", None).await;
    let ServerMessage::Welcome { epoch, .. } = welcome else {
        panic!("{welcome:?}")
    };
    alice
        .send(&ClientMessage::StartRun { tools: 1 })
        .await
        .unwrap();
    let got = events(&mut alice, 5).await;
    assert_eq!(got.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(got[4].1, "agent_completed");
    // Resuming after seq 3 gets 4 and 5 again, recovered.
    let (mut again, welcome) =
        login_after(&ws, "alice", Some(wsreg::Position::new(epoch, 3))).await;
    assert!(
        matches!(
            welcome,
            ServerMessage::Welcome {
                seq: 3,
                recovered: true,
                ..
            }
        ),
        "{welcome:?}"
    );
    let replay = events(&mut again, 2).await;
    assert_eq!(replay.iter().map(|e| e.0).collect::<Vec<_>>(), [4, 5]);
    // The same refusals as the server's own listener.
    let forged = auth::issue(b"another secret", "alice", 2_000_000);
    let refused = Client::connect(&ws, &forged).await;
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("401")),
        "{:?}",
        refused.err()
    );
    let token = auth::issue(SECRET, "alice", 2_000_000);
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    send_upgrade(&mut s, &addr, &format!("/ws?token={token}&since=3")).await;
    let response = answer(&mut s).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(
        response.contains("since and epoch go together"),
        "{response}"
    );
}

#[tokio::test]
async fn metrics_and_healthz_answer_and_count_what_happened() {
    let server = Server::new(ServerConfig::new(SECRET, clock));
    let addr = app(server.clone()).await;
    assert_eq!(get(&addr, "/healthz").await, (200, "ok\n".to_owned()));
    let ws = format!("{addr}/ws");
    let mut bob = login(&ws, "bob").await;
    bob.send(&ClientMessage::StartRun { tools: 2 })
        .await
        .unwrap();
    events(&mut bob, 7).await;
    let forged = auth::issue(b"another secret", "bob", 2_000_000);
    assert!(Client::connect(&ws, &forged).await.is_err());
    let (status, text) = get(&addr, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(metric(&text, "wsreg_managers "), 1);
    assert_eq!(metric(&text, "wsreg_connections "), 1);
    assert_eq!(metric(&text, "wsreg_sockets "), 1);
    assert_eq!(
        metric(&text, "wsreg_messages_total{outcome=\"accepted\"}"),
        7
    );
    assert_eq!(
        metric(&text, "wsreg_messages_total{outcome=\"delivered\"}"),
        7
    );
    assert_eq!(
        metric(
            &text,
            "wsreg_handshake_refusals_total{reason=\"unauthorized\"}"
        ),
        1
    );
    // A shutting-down server says so, so a load balancer stops sending it users.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let serving = tokio::spawn(server.clone().serve(listener, async {}));
    serving.await.unwrap().unwrap();
    assert_eq!(get(&addr, "/healthz").await.0, 503);
}
