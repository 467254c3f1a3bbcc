//! The bare-core workload, shared by `wsreg-sim bench` (madsim) and the core's `benches/core.rs`
//! (real tokio): per round, every user connects, gets one text and one full agent run (7 events),
//! drains its inbox and disconnects. One operation is one connect, send, emit or disconnect.

use wsreg::{channel_sink, AgentEvent, Registry, RegistryConfig, UserContext};

/// Runs `rounds` rounds over `users` users; returns operations done.
pub async fn workload(users: usize, rounds: usize) -> u64 {
    let registry = Registry::new(RegistryConfig {
        max_managers: users + 1,
        max_connections: users + 1,
        ..Default::default()
    });
    let contexts: Vec<UserContext> = (0..users)
        .map(|i| UserContext::new(&format!("user-{i}")).expect("valid id"))
        .collect();
    let mut ops = 0u64;
    for round in 0..rounds {
        let mut open = Vec::with_capacity(users);
        for ctx in &contexts {
            let (sink, inbox) = channel_sink(16);
            open.push((registry.connect(ctx, sink).expect("under limits"), inbox));
        }
        let run = format!("run-{round}");
        for ctx in &contexts {
            registry.send_text(ctx.key(), "hello").expect("live user");
            for event in AgentEvent::example_run(&run, 2, 1) {
                registry.emit(ctx.key(), event).expect("in order");
            }
        }
        for (conn, mut inbox) in open {
            for _ in 0..8 {
                inbox.recv().await.expect("delivered");
            }
            conn.close().expect("open");
        }
        ops += users as u64 * 10;
    }
    ops
}
