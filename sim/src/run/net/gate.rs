//! [`Gate`]: an observer that can be shut when the server process dies, so a dead registry's
//! late timers never reach the checker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use wsreg::{Observation, Observer};

/// Passes observations on while open.
pub(crate) struct Gate {
    pub(crate) open: AtomicBool,
    pub(crate) inner: Arc<dyn Observer>,
}

impl Observer for Gate {
    fn observe(&self, observation: &Observation<'_>) {
        if self.open.load(Ordering::Relaxed) {
            self.inner.observe(observation);
        }
    }
}
