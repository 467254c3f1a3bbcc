//! [`Core`]: what a registry and all its managers share — the configuration, the observer, the
//! global counters (connections, retained messages) and the id mints. Its fields are private:
//! a counter changes only through the method that names why.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::config::RegistryConfig;
use crate::connection::ConnectionId;
use crate::observer::{Observation, Observer};

/// Numbers registry instances, so connection ids are unique across registries in one process.
/// Never displayed, so it never reaches a trace.
static REGISTRY_INSTANCES: AtomicU64 = AtomicU64::new(0);

pub(crate) struct Core {
    config: RegistryConfig,
    observer: Option<Arc<dyn Observer>>,
    total_connections: AtomicUsize,
    /// Messages retained over every user's history.
    history_total: AtomicUsize,
    /// This registry's boot id, the first half of every epoch it hands out.
    boot: u64,
    instance: u64,
    next_connection: AtomicU64,
    /// Orders the moments managers became idle, for eviction (a counter, not a clock).
    idle_clock: AtomicU64,
    /// Whether the managers mirror streams a shared store keeps (a [`Node`](crate::Node)'s
    /// registry) rather than keep their own.
    mirror: bool,
}

impl Core {
    pub(crate) fn new(
        config: RegistryConfig,
        observer: Option<Arc<dyn Observer>>,
        mirror: bool,
    ) -> Self {
        // From 1: instance 0 is what `ConnectionId::new` tags, for registries of other makes.
        let instance = REGISTRY_INSTANCES.fetch_add(1, Ordering::Relaxed) + 1;
        Self {
            boot: config.boot.unwrap_or_else(|| random_boot(instance)),
            config,
            observer,
            total_connections: AtomicUsize::new(0),
            history_total: AtomicUsize::new(0),
            instance,
            next_connection: AtomicU64::new(0),
            idle_clock: AtomicU64::new(0),
            mirror,
        }
    }

    /// Whether the managers mirror a shared store's streams.
    pub(crate) fn mirror(&self) -> bool {
        self.mirror
    }

    pub(crate) fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// The first half of every epoch this registry hands out.
    pub(crate) fn boot(&self) -> u64 {
        self.boot
    }

    /// Tells the observer, if there is one; builds nothing otherwise.
    #[inline]
    pub(crate) fn report(&self, observation: Observation<'_>) {
        if let Some(observer) = &self.observer {
            observer.observe(&observation);
        }
    }

    /// A connection id never handed out before by any registry of this process.
    pub(crate) fn mint_connection(&self) -> ConnectionId {
        ConnectionId {
            registry: self.instance,
            n: self.next_connection.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    /// A stamp later than every earlier one: when a manager became idle.
    pub(crate) fn idle_stamp(&self) -> u64 {
        self.idle_clock.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes one of the global connection slots; `false` (and nothing taken) when all are in use.
    pub(crate) fn take_connection_slot(&self) -> bool {
        let max = self.config.max_connections;
        self.total_connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back a slot taken by [`Core::take_connection_slot`].
    pub(crate) fn release_connection_slot(&self) {
        self.total_connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether every history together holds as many messages as the global bound allows.
    pub(crate) fn histories_full(&self) -> bool {
        self.history_total.load(Ordering::Acquire) >= self.config.max_history_messages
    }

    /// Counts a message a history started to hold.
    pub(crate) fn message_retained(&self) {
        self.history_total.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a message a history let go of.
    pub(crate) fn message_released(&self) {
        self.history_total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A boot id nobody chose: drawn from the standard library's per-instance hash keys, which are
/// random per process (and, under a deterministic simulator, a function of its seed).
fn random_boot(instance: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(instance);
    // Keep it short enough to read in logs and URLs.
    h.finish() >> 16
}
