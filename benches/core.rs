//! Bare-core throughput: connect + send + emit + disconnect on a current-thread tokio runtime.
//!
//! `cargo bench --bench core` prints one table: operations per second for 10 users and for 10,000
//! users, measured side by side in one run. One operation is one connect, one text send, one
//! agent event emitted or one disconnect; every message is drained from the user's inbox before
//! the disconnect, so delivery is inside the measurement. This is the ceiling the simulator is
//! measured against.

#[cfg(madsim)]
fn main() {
    eprintln!("the core benchmark measures real tokio: run `cargo bench --bench core` without --cfg madsim");
}

#[cfg(not(madsim))]
fn main() {
    real::main();
}

#[cfg(not(madsim))]
mod real {
    use std::time::Instant;

    use wsreg::{channel_sink, AgentEvent, Registry, RegistryConfig, UserContext};

    fn lifecycle(run: &str) -> [AgentEvent; 7] {
        let exec = |t: &str| AgentEvent::ToolExecuting {
            run_id: run.into(),
            tool_name: t.into(),
            parameters: "{}".into(),
        };
        let done = |t: &str| AgentEvent::ToolCompleted {
            run_id: run.into(),
            tool_name: t.into(),
            results: "{}".into(),
            duration_ms: 1,
            success: true,
        };
        [
            AgentEvent::AgentStarted { run_id: run.into() },
            AgentEvent::AgentThinking {
                run_id: run.into(),
                reasoning: "plan".into(),
            },
            exec("search"),
            exec("fetch"),
            done("fetch"),
            done("search"),
            AgentEvent::AgentCompleted {
                run_id: run.into(),
                status: "ok".into(),
                final_response: "done".into(),
            },
        ]
    }

    /// Runs `rounds` rounds over `users` users; returns operations done.
    async fn workload(users: usize, rounds: usize) -> u64 {
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
                for event in lifecycle(&run) {
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

    fn measure(users: usize, rounds: usize) -> f64 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let start = Instant::now();
        let ops = rt.block_on(workload(users, rounds));
        ops as f64 / start.elapsed().as_secs_f64()
    }

    pub fn main() {
        const TOTAL_USER_ROUNDS: usize = 100_000;
        measure(10, 100); // warm-up
        let mut rows = Vec::new();
        for users in [10usize, 10_000] {
            let mut best = 0f64;
            for _ in 0..3 {
                best = best.max(measure(users, TOTAL_USER_ROUNDS / users));
            }
            rows.push((users, best));
        }
        println!("| users | ops/s (best of 3) | ratio to 10 users |");
        println!("|---:|---:|---:|");
        for (users, rate) in &rows {
            println!("| {users} | {rate:.0} | {:.2} |", rate / rows[0].1);
        }
    }
}
