//! What the stream contract costs in memory: heap bytes per idle user (its manager and the
//! history it keeps for a client to resume from) and per live connection (its cursor and writer
//! task), counted by a global allocator that tallies live bytes.
//!
//! `cargo bench --bench memory` prints one table. Each row builds 10,000 users on a
//! current-thread tokio runtime and divides the growth of live heap bytes by 10,000. Messages are
//! agent events of a typical size (a thinking step's text of 64 bytes, tool parameters and
//! results of similar size). Connections write to a sink that discards, so the rows count the
//! core alone, not a socket's buffers. The last row fills the global history bound (1,000,000
//! messages) in a fresh process of this benchmark and reports its heap beside the growth of the
//! process's resident memory (`VmRSS`), which is what the machine pays: the allocator's own
//! overhead and fragmentation on top of the heap bytes.

#[cfg(madsim)]
fn main() {
    eprintln!("the memory benchmark measures real tokio: run `cargo bench --bench memory` without --cfg madsim");
}

#[cfg(not(madsim))]
fn main() {
    real::main();
}

#[cfg(not(madsim))]
#[path = "support/table.rs"]
mod table;

#[cfg(not(madsim))]
mod real {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicIsize, Ordering};

    use crate::table::{self, Col};
    use wsreg::{
        AgentEvent, ConnectionHandle, Envelope, Registry, RegistryConfig, SendFuture, Sink,
        UserContext,
    };

    /// The system allocator, keeping a count of live bytes.
    struct Counting;

    static LIVE: AtomicIsize = AtomicIsize::new(0);

    // SAFETY: every call is passed to the system allocator unchanged; only a counter is kept.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
            // SAFETY: the caller's contract is System's.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
            // SAFETY: the caller's contract is System's.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
            // SAFETY: the caller's contract is System's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOC: Counting = Counting;

    const USERS: usize = 10_000;

    /// A socket that takes everything and keeps nothing.
    struct Discard;

    impl Sink for Discard {
        fn send(&mut self, _: Envelope) -> SendFuture<'_> {
            Box::pin(std::future::ready(Ok(())))
        }
    }

    fn live() -> isize {
        LIVE.load(Ordering::Relaxed)
    }

    /// Agent events of a typical size, `n` of them, as whole runs.
    fn events(n: usize) -> Vec<AgentEvent> {
        let mut out = Vec::with_capacity(n);
        let mut run = 0;
        while out.len() < n {
            let id = format!("run-{run:08}");
            for e in AgentEvent::example_run(&id, 1, 1) {
                out.push(match e {
                    AgentEvent::AgentThinking { run_id, .. } => AgentEvent::AgentThinking {
                        run_id,
                        reasoning: "x".repeat(64),
                    },
                    other => other,
                });
            }
            run += 1;
        }
        out.truncate(n);
        out
    }

    fn contexts() -> Vec<UserContext> {
        (0..USERS)
            .map(|i| UserContext::new(&format!("user-{i:06}")).expect("valid id"))
            .collect()
    }

    /// Gives every user the `batch` through one connection, then closes it, and lets the
    /// writers settle: what leaves each user idle with its history.
    async fn fill(registry: &Registry, contexts: &[UserContext], batch: &[AgentEvent]) {
        for ctx in contexts {
            let conn = registry.connect(ctx, Discard).expect("under limits");
            for e in batch {
                registry.emit(ctx.key(), e.clone()).expect("in order");
            }
            tokio::task::yield_now().await;
            conn.close().expect("open");
        }
        settle().await;
    }

    /// Bytes per user of a registry whose users each got `messages` messages through one
    /// connection that then closed: what an idle user costs until it is reaped.
    async fn idle(messages: usize, history: usize) -> f64 {
        let registry = Registry::new(RegistryConfig {
            max_managers: USERS,
            history_capacity: history,
            // Room for every message: the default global bound (1,000,000) would trim the
            // fullest row to 100 messages a user.
            max_history_messages: USERS * history,
            ..Default::default()
        });
        let (contexts, batch) = (contexts(), events(messages));
        let before = live();
        fill(&registry, &contexts, &batch).await;
        let per_user = (live() - before) as f64 / USERS as f64;
        drop(registry);
        per_user
    }

    /// Bytes per connection opened on users that already have a manager.
    async fn connection() -> f64 {
        let registry = Registry::new(RegistryConfig {
            max_managers: USERS,
            max_connections: USERS * 2,
            ..Default::default()
        });
        let contexts = contexts();
        let mut first: Vec<ConnectionHandle> = contexts
            .iter()
            .map(|ctx| registry.connect(ctx, Discard).expect("under limits"))
            .collect();
        settle().await;
        let before = live();
        let second: Vec<ConnectionHandle> = contexts
            .iter()
            .map(|ctx| registry.connect(ctx, Discard).expect("under limits"))
            .collect();
        settle().await;
        let per_conn = (live() - before) as f64 / USERS as f64;
        first.extend(second);
        for c in first {
            c.close().expect("open");
        }
        per_conn
    }

    /// The process's resident memory (`VmRSS`), in bytes.
    fn rss() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .map_or(0, |kib| kib * 1024)
    }

    /// The environment variable under which this benchmark runs the global-bound row alone.
    const GLOBAL_BOUND_ROW: &str = "WSREG_MEMORY_GLOBAL_BOUND_ROW";

    /// Heap and resident bytes a registry adds with its histories at the global bound: 10,000
    /// users, 100 messages each, every connection closed (run in a fresh process).
    async fn global_bound() -> (isize, u64) {
        let registry = Registry::new(RegistryConfig {
            max_managers: USERS,
            ..Default::default()
        });
        let per_user = registry.config().max_history_messages / USERS;
        let (contexts, batch) = (contexts(), events(per_user));
        let (heap, resident) = (live(), rss());
        fill(&registry, &contexts, &batch).await;
        let grown = (live() - heap, rss().saturating_sub(resident));
        drop(registry);
        grown
    }

    /// The global-bound row, from a fresh process of this benchmark (so no earlier row's freed
    /// memory is counted as resident): (heap bytes, resident bytes).
    fn global_bound_in_a_fresh_process() -> Option<(f64, f64)> {
        let out = std::process::Command::new(std::env::current_exe().ok()?)
            .env(GLOBAL_BOUND_ROW, "1")
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut numbers = text.split_whitespace().map(|n| n.parse::<f64>().ok());
        Some((numbers.next()??, numbers.next()??))
    }

    /// Lets every writer task run until it waits, and closed ones finish.
    async fn settle() {
        for _ in 0..4 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    pub fn main() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        if std::env::var_os(GLOBAL_BOUND_ROW).is_some() {
            let (heap, resident) = rt.block_on(global_bound());
            println!("{heap} {resident}");
            return;
        }
        let envelope = std::mem::size_of::<Envelope>();
        let empty = rt.block_on(idle(0, 256));
        let mut rows = vec![vec![
            "an idle user (manager + history)".to_owned(),
            "0".to_owned(),
            format!("{empty:.0}"),
        ]];
        for messages in [16, 256] {
            let b = rt.block_on(idle(messages, 256));
            rows.push(vec![
                "an idle user (manager + history)".to_owned(),
                messages.to_string(),
                format!("{b:.0} ({:.0} a message)", (b - empty) / messages as f64),
            ]);
        }
        let c = rt.block_on(connection());
        rows.push(vec![
            "a live connection (cursor + writer task)".to_owned(),
            "-".to_owned(),
            format!("{c:.0}"),
        ]);
        if let Some((heap, resident)) = global_bound_in_a_fresh_process() {
            let mb = |b: f64| b / 1e6;
            rows.push(vec![
                "every history at the global bound (heap; resident)".to_owned(),
                "1000000".to_owned(),
                format!(
                    "{:.0} MB; {:.0} MB resident ({:.2}x)",
                    mb(heap),
                    mb(resident),
                    resident / heap
                ),
            ]);
        }
        let col = |title, number| Col {
            title,
            number,
            measured: false,
        };
        table::emit(
            "memory",
            "cargo bench --bench memory",
            &[
                col("what", false),
                col("messages held", true),
                col("bytes", true),
            ],
            &rows,
            &[format!(
                "{USERS} users a row; an envelope is {envelope} bytes before its payload's strings"
            )],
        );
    }
}
