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
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(not(madsim))]
fn main() {
    real::main();
}

#[cfg(not(madsim))]
#[path = "../sim/src/measure/core_workload.rs"]
mod workload;

#[cfg(not(madsim))]
#[path = "support/table.rs"]
mod table;

#[cfg(not(madsim))]
mod real {
    use std::time::Instant;

    use super::table::{self, Col};
    use super::workload::workload;

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
        let col = |title, measured| Col {
            title,
            number: true,
            measured,
        };
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|(users, rate)| {
                let ratio = rate / rows[0].1;
                vec![
                    users.to_string(),
                    format!("{rate:.0}"),
                    format!("{ratio:.2}"),
                ]
            })
            .collect();
        table::emit(
            "core",
            "cargo bench --bench core",
            &[
                col("users", false),
                col("ops/s (best of 3)", true),
                col("ratio to 10 users", true),
            ],
            &rows,
            &[],
        );
    }
}
