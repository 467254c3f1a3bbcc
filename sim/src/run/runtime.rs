//! The one place that knows about madsim's runtime: each run gets a fresh OS thread and a fresh
//! seeded runtime on it, with nothing built on that thread before the runtime.
//! A build without `--cfg madsim` refuses to run anything.

use std::sync::Arc;

use crate::check::coverage::Coverage;
use crate::check::outcome::Outcome;
use crate::generate::plan::Plan;
use crate::run::backend::Factory;
use crate::run::recorder::Keep;
use crate::run::recorder::{Recording, Stats};
use crate::run::world::RunReport;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// This binary was built without `--cfg madsim`.
    #[error("this build of wsreg-sim was compiled without `--cfg madsim`, so it would run on real tokio and nothing would replay. Build it with `cargo sim ...` (see the README); a RUSTFLAGS variable in the environment replaces the alias's flags, so unset it or add `--cfg madsim` to it")]
    NotSimulated,
    /// The OS refused a thread.
    #[error("could not start a simulation thread: {0}")]
    Thread(#[from] std::io::Error),
    /// A worker process could not be started or answered nonsense.
    #[error("{0}")]
    Worker(String),
    /// The target cannot run this plan (a bug of many nodes, on a plan of one).
    #[error("{0}")]
    Mismatch(String),
}

/// Whether this build simulates.
pub const SIMULATED: bool = cfg!(madsim);

/// The simulated network's shape: one-way latency `[min, max]` in ms and percent of packets lost.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// One-way packet latency, `[min, max]` milliseconds.
    pub latency_ms: [u64; 2],
    /// Percent of packets lost.
    pub loss_percent: u8,
}

/// A run that panicked: the message, and who raised it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panicked {
    /// The panic message.
    pub message: String,
    /// `the system under test`, `the harness` or `a dependency`.
    pub by: &'static str,
    /// Where it was raised (`file:line`), if the panic hook saw it.
    pub at: Option<String>,
}

std::thread_local! {
    /// Where the last panic on this thread was raised, as the panic hook saw it.
    static RAISED_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Installs (once) a panic hook that notes where each panic was raised, then runs the hook
/// that was there before (which prints it).
fn note_panic_locations() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()));
            RAISED_AT.with(|r| *r.borrow_mut() = at);
            previous(info);
        }));
    });
}

/// Who raised a panic at `file`: the simulator's own code (but for its planted bugs) is the
/// harness; the toolchain's and the registry's crates are dependencies; everything else (the
/// core, the server, a planted bug, a team's own backend) is the system under test.
pub fn culprit(file: &str) -> &'static str {
    let file = file.replace('\\', "/");
    let in_sim = file.starts_with("sim/src/") || file.contains("/sim/src/");
    let in_zoo = file.starts_with("sim/src/zoo/") || file.contains("/sim/src/zoo/");
    if file.contains("/.cargo/registry/") || file.starts_with("/rustc/") {
        "a dependency"
    } else if in_sim && !in_zoo {
        "the harness"
    } else {
        "the system under test"
    }
}

fn panicked(payload: Box<dyn std::any::Any + Send>) -> Panicked {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with no message".to_owned());
    let at = RAISED_AT.with(|r| r.borrow_mut().take());
    Panicked {
        message,
        by: at.as_deref().map_or("the system under test", culprit),
        at,
    }
}

/// Runs `make()`'s future to completion on a fresh thread, in a fresh madsim runtime seeded
/// with `seed` (and shaped by `link`, for runs with a network). `Ok(Err(_))` is a panic, with
/// who raised it.
pub fn simulate<T, F, Fut>(
    seed: u64,
    link: Option<Link>,
    make: F,
) -> Result<Result<T, Panicked>, RuntimeError>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    #[cfg(madsim)]
    {
        note_panic_locations();
        let thread = std::thread::Builder::new()
            .name(format!("sim-{seed:#x}"))
            .spawn(move || {
                let mut config = madsim::Config::default();
                if let Some(link) = link {
                    let [lo, hi] = link.latency_ms.map(std::time::Duration::from_millis);
                    // A range must not be empty, so the upper end gets one more microsecond; a
                    // fixed latency gets one nanosecond, below the clock's resolution, so
                    // packets sent together arrive in the same virtual instant.
                    let above = if lo == hi {
                        std::time::Duration::from_nanos(1)
                    } else {
                        std::time::Duration::from_micros(1)
                    };
                    config.net.send_latency = lo..hi + above;
                    config.net.packet_loss_rate = f64::from(link.loss_percent) / 100.0;
                }
                let mut rt = madsim::runtime::Runtime::with_seed_and_config(seed, config);
                rt.set_time_limit(std::time::Duration::from_secs(6 * 3600));
                // Caught on this thread, where the hook noted the panic's location.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(make())))
                    .map_err(panicked)
            })?;
        Ok(thread
            .join()
            .unwrap_or_else(|payload| Err(panicked(payload))))
    }
    #[cfg(not(madsim))]
    {
        let _ = (
            seed,
            link,
            make,
            note_panic_locations,
            panicked as fn(_) -> _,
        );
        Err(RuntimeError::NotSimulated)
    }
}

/// Runs `plan` with `runtime_seed` on a fresh thread; a panic becomes [`Outcome::Panic`](crate::check::outcome::Outcome)
/// with the trace up to it.
/// A plan with a `net` section runs `B` behind the real WebSocket server, over the simulated
/// network (see `net::NetBackend`).
pub fn run_plan(
    factory: Factory,
    plan: Arc<Plan>,
    runtime_seed: u64,
    keep: Keep,
) -> Result<RunReport, RuntimeError> {
    run_plan_over(factory, None, plan, runtime_seed, keep)
}

/// [`run_plan`], with each server node's store handle wrapped by `plant` when the plan runs
/// over many nodes (a planted bug of many nodes).
pub fn run_plan_over(
    factory: Factory,
    plant: Option<crate::run::backend::StorePlant>,
    plan: Arc<Plan>,
    runtime_seed: u64,
    keep: Keep,
) -> Result<RunReport, RuntimeError> {
    let link = plan.net.as_ref().map(|net| Link {
        latency_ms: net.latency_ms,
        loss_percent: net.loss_percent,
    });
    let black_box = Arc::new(std::sync::OnceLock::new());
    let recorder = Arc::clone(&black_box);
    let ran = simulate(runtime_seed, link, move || async move {
        crate::run::world::execute_over(factory, plant, plan, keep, recorder).await
    })?;
    Ok(ran.unwrap_or_else(|panic| {
        let kept = black_box
            .get()
            .map(|r: &Arc<crate::run::recorder::Recorder>| r.finish(false));
        report_of_panic(panic, kept)
    }))
}

/// The report of a run that panicked, with what its recorder had kept up to the panic.
pub fn report_of_panic(panic: Panicked, kept: Option<Recording>) -> RunReport {
    let outcome = Outcome::Panic {
        message: panic.message,
        by: panic.by.to_owned(),
        at: panic.at,
    };
    match kept {
        Some(rec) => RunReport {
            outcome,
            steps: rec.steps,
            hash: rec.hash,
            virtual_us: 0,
            trace: rec.trace,
            confirms: rec.confirms,
            learned: rec.learned,
            coverage: rec.coverage,
            stats: rec.stats,
        },
        None => RunReport {
            outcome,
            steps: 0,
            hash: 0,
            virtual_us: 0,
            trace: Vec::new(),
            confirms: Vec::new(),
            learned: Vec::new(),
            coverage: Coverage::default(),
            stats: Stats::default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::culprit;

    #[test]
    fn a_panic_is_laid_at_the_right_door() {
        assert_eq!(culprit("src/manager.rs"), "the system under test");
        assert_eq!(culprit("server/src/server.rs"), "the system under test");
        assert_eq!(culprit("sim/src/zoo/stream.rs"), "the system under test");
        assert_eq!(culprit("my-team/src/registry.rs"), "the system under test");
        assert_eq!(culprit("sim/src/run/world.rs"), "the harness");
        assert_eq!(
            culprit("/work/x/sim/src/check/invariant/mod.rs"),
            "the harness"
        );
        assert_eq!(
            culprit("/root/.cargo/registry/src/index/tokio-1/src/a.rs"),
            "a dependency"
        );
    }
}
