//! The one place that knows about madsim's runtime: each run gets a fresh OS thread and a fresh
//! seeded runtime on it, with nothing built on that thread before the runtime (DESIGN section 4).
//! A build without `--cfg madsim` refuses to run anything.

use std::sync::Arc;

use crate::backend::Backend;
use crate::plan::Plan;
use crate::recorder::Keep;
use crate::world::RunReport;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// This binary was built without `--cfg madsim`.
    #[error("this build of wsreg-sim was compiled without `--cfg madsim`, so it would run on real tokio and nothing would replay. Build it with `cargo sim ...` (see the README); a RUSTFLAGS variable in the environment replaces the alias's flags, so unset it or add `--cfg madsim` to it")]
    NotSimulated,
    /// The OS refused a thread.
    #[error("could not start a simulation thread: {0}")]
    Thread(#[from] std::io::Error),
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

/// Runs `make()`'s future to completion on a fresh thread, in a fresh madsim runtime seeded
/// with `seed` (and shaped by `link`, for runs with a network). `Ok(Err(message))` is a panic.
pub fn simulate<T, F, Fut>(
    seed: u64,
    link: Option<Link>,
    make: F,
) -> Result<Result<T, String>, RuntimeError>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    #[cfg(madsim)]
    {
        let thread = std::thread::Builder::new()
            .name(format!("sim-{seed:#x}"))
            .spawn(move || {
                let mut config = madsim::Config::default();
                if let Some(link) = link {
                    let [lo, hi] = link.latency_ms.map(std::time::Duration::from_millis);
                    // A range must not be empty, so the upper end gets one more microsecond.
                    config.net.send_latency = lo..hi + std::time::Duration::from_micros(1);
                    config.net.packet_loss_rate = f64::from(link.loss_percent) / 100.0;
                }
                let mut rt = madsim::runtime::Runtime::with_seed_and_config(seed, config);
                rt.set_time_limit(std::time::Duration::from_secs(6 * 3600));
                rt.block_on(make())
            })?;
        Ok(thread.join().map_err(|panic| {
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with no message".to_owned())
        }))
    }
    #[cfg(not(madsim))]
    {
        let _ = (seed, link, make);
        Err(RuntimeError::NotSimulated)
    }
}

/// Runs `plan` with `runtime_seed` on a fresh thread; a panic becomes [`Outcome::Panic`](crate::Outcome).
/// A plan with a `net` section runs `B` behind the real WebSocket server, over the simulated
/// network (see `net::NetBackend`).
pub fn run_plan<B: Backend>(
    plan: Arc<Plan>,
    runtime_seed: u64,
    keep: Keep,
) -> Result<RunReport, RuntimeError> {
    let link = plan.net.as_ref().map(|net| Link {
        latency_ms: net.latency_ms,
        loss_percent: net.loss_percent,
    });
    let ran = simulate(runtime_seed, link, move || async move {
        #[cfg(madsim)]
        if plan.net.is_some() {
            return crate::world::execute::<crate::net::NetBackend<B>>(plan, keep).await;
        }
        crate::world::execute::<B>(plan, keep).await
    })?;
    Ok(ran.unwrap_or_else(RunReport::panicked))
}
