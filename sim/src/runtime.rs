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

/// Runs `plan` with `runtime_seed` on a fresh thread; a panic becomes [`Outcome::Panic`](crate::Outcome).
/// A plan with a `net` section runs `B` behind the real WebSocket server, over the simulated
/// network (see `net::NetBackend`).
pub fn run_plan<B: Backend>(
    plan: Arc<Plan>,
    runtime_seed: u64,
    keep: Keep,
) -> Result<RunReport, RuntimeError> {
    #[cfg(madsim)]
    {
        let thread = std::thread::Builder::new()
            .name(format!("sim-{runtime_seed:#x}"))
            .spawn(move || {
                let mut config = madsim::Config::default();
                if let Some(net) = &plan.net {
                    let [lo, hi] = net.latency_ms.map(std::time::Duration::from_millis);
                    // A range must not be empty, so the upper end gets one more microsecond.
                    config.net.send_latency = lo..hi + std::time::Duration::from_micros(1);
                    config.net.packet_loss_rate = f64::from(net.loss_percent) / 100.0;
                }
                let mut rt = madsim::runtime::Runtime::with_seed_and_config(runtime_seed, config);
                rt.set_time_limit(std::time::Duration::from_secs(6 * 3600));
                if plan.net.is_some() {
                    rt.block_on(crate::world::execute::<crate::net::NetBackend<B>>(
                        plan, keep,
                    ))
                } else {
                    rt.block_on(crate::world::execute::<B>(plan, keep))
                }
            })?;
        Ok(thread.join().unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with no message".to_owned());
            RunReport::panicked(message)
        }))
    }
    #[cfg(not(madsim))]
    {
        let _ = (plan, runtime_seed, keep);
        Err(RuntimeError::NotSimulated)
    }
}
