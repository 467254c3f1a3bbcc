//! A bystander's timed runs and percentiles, shared by the server benches.
// Each bench that includes this file uses a part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use wsreg_server::client::Client;
use wsreg_server::protocol::{ClientMessage, ServerMessage};

/// Times `n` runs of `client`'s, one after the other, starting one every 25 ms at most (the
/// server takes 50 frames a second from a socket).
pub async fn timed_runs(client: &mut Client, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let sent = Instant::now();
        client
            .send(&ClientMessage::StartRun { tools: 2 })
            .await
            .expect("send");
        loop {
            match client.next().await {
                Some(Ok(ServerMessage::Event { event, .. }))
                    if event.kind() == "agent_completed" =>
                {
                    break
                }
                Some(Ok(ServerMessage::Error { code, message })) => {
                    panic!("a timed run was refused: {code}: {message}")
                }
                Some(Ok(_)) => {}
                other => panic!("the socket ended: {other:?}"),
            }
        }
        out.push(sent.elapsed());
        tokio::time::sleep_until((sent + Duration::from_millis(25)).into()).await;
    }
    out
}

/// The `p` quantile (0..=1) of `sorted`, in milliseconds; 0 when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}
