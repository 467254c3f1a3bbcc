//! [`Registry`]: the one place that hands out managers, one per user.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::RegistryConfig;
use crate::connection::ConnectionHandle;
use crate::core::Core;
use crate::error::Error;
use crate::event::AgentEvent;
use crate::identity::{UserContext, UserKey};
use crate::lock_order;
use crate::manager::UserManager;
use crate::mode::Mode;
use crate::observer::{ManagerId, Observation, Observer, RemoveReason};
use crate::stream::{Epoch, Position};
use crate::transport::Sink;
use crate::view::RegistryView;

/// The registry's state: the shared core and the map of managers, behind the registry's lock
/// (taken first, see [`lock_order`]).
pub(crate) struct RegistryInner {
    core: Arc<Core>,
    map: Mutex<Managers>,
}

#[derive(Default)]
struct Managers {
    by_key: BTreeMap<UserKey, UserManager>,
    next_manager: u64,
    shutting_down: bool,
}

/// The registry of per-user managers: the only way to obtain one.
///
/// - [`Registry::get_or_create`] is atomic: every caller asking for one user, under any
///   interleaving, gets the same live manager, and it is the one the registry holds.
/// - Limits on managers and connections are checked and applied under one lock; hitting one is a
///   typed [`Error`] that changes nothing. At the manager limit, the manager idle longest (no
///   connection) is evicted to make room for a new user; only when every manager has a
///   connection is the new user refused.
/// - A manager whose last connection closed is reaped after [`RegistryConfig::idle_ttl`]
///   (`tokio::time`, so virtual under a simulator) unless a connection arrives first; a reaped
///   manager is never handed out again.
///
/// Lock order is registry, then manager; a manager never takes the registry lock while holding
/// its own (checked on every acquisition in debug builds). The registry spawns tasks, so it must be used inside a tokio runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), wsreg::Error> {
/// use wsreg::{channel_sink, AgentEvent, Registry, UserContext};
///
/// let registry = Registry::default();
/// let alice = UserContext::new("alice")?.with_thread_id("t1")?;
/// let (sink, mut inbox) = channel_sink(16);
/// let conn = registry.connect(&alice, sink)?;
///
/// registry.emit(alice.key(), AgentEvent::AgentStarted { run_id: "r1".into() })?;
/// let msg = inbox.recv().await.unwrap();
/// assert_eq!(msg.to().as_str(), "alice");
///
/// // Out of lifecycle order: refused at the sender.
/// assert!(registry.emit(alice.key(), AgentEvent::AgentStarted { run_id: "r1".into() }).is_err());
/// conn.close()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Registry {
    inner: Arc<RegistryInner>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new(RegistryConfig::default())
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("config", &self.inner.core.config())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry with no observer.
    pub fn new(config: RegistryConfig) -> Self {
        Self::build(config, None)
    }

    /// A registry that reports every state change to `observer`.
    pub fn with_observer(config: RegistryConfig, observer: Arc<dyn Observer>) -> Self {
        Self::build(config, Some(observer))
    }

    fn build(config: RegistryConfig, observer: Option<Arc<dyn Observer>>) -> Self {
        Self::build_with(config, observer, false)
    }

    /// A registry whose managers mirror the streams of a shared store (a [`Node`](crate::Node)'s).
    pub(crate) fn mirroring(config: RegistryConfig, observer: Option<Arc<dyn Observer>>) -> Self {
        Self::build_with(config, observer, true)
    }

    fn build_with(
        config: RegistryConfig,
        observer: Option<Arc<dyn Observer>>,
        mirror: bool,
    ) -> Self {
        Self {
            inner: Arc::new(RegistryInner {
                core: Arc::new(Core::new(config, observer, mirror)),
                map: Mutex::new(Managers::default()),
            }),
        }
    }

    /// The boot id every epoch of this registry starts with.
    pub(crate) fn boot(&self) -> u64 {
        self.inner.core.boot()
    }

    /// The configuration.
    pub fn config(&self) -> &RegistryConfig {
        self.inner.core.config()
    }

    /// The user's manager, created if it has none. A new manager with no connection is reaped
    /// after the idle TTL like any other.
    pub fn get_or_create(&self, ctx: &UserContext) -> Result<UserManager, Error> {
        let mut map = self.inner.lock();
        self.inner.get_or_create_locked(&mut map, ctx.key())
    }

    /// The user's manager, if the registry holds one.
    pub fn get(&self, key: &UserKey) -> Option<UserManager> {
        self.inner.lock().by_key.get(key).cloned()
    }

    /// Opens a fresh connection for the user: finds or creates its manager and adds the
    /// connection, atomically (a reaper cannot slip in between). See
    /// [`UserManager::add_connection`] for where its stream starts.
    pub fn connect(&self, ctx: &UserContext, sink: impl Sink) -> Result<ConnectionHandle, Error> {
        self.resume(ctx, sink, None)
    }

    /// Opens a connection for the user that resumes after `from`, the last position its client
    /// saw (`None`: a fresh connect). The handle says where the stream continues and whether
    /// the history still held everything after `from`; what it no longer held comes first as
    /// a gap marker.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), wsreg::Error> {
    /// use wsreg::{channel_sink, Payload, Registry, UserContext};
    /// let registry = Registry::default();
    /// let alice = UserContext::new("alice")?;
    /// let (sink, mut tab) = channel_sink(16);
    /// let first = registry.connect(&alice, sink)?;
    /// let seen = registry.send_text(alice.key(), "one")?;
    /// assert_eq!(tab.recv().await.unwrap().position(), seen);
    /// first.close()?;
    /// registry.send_text(alice.key(), "two")?; // nobody is connected
    /// let (sink, mut again) = channel_sink(16);
    /// let resumed = registry.resume(&alice, sink, Some(seen))?;
    /// assert!(resumed.recovered());
    /// let missed = again.recv().await.unwrap();
    /// assert_eq!(missed.payload(), &Payload::Text { text: "two".into() });
    /// # Ok(()) }
    /// ```
    pub fn resume(
        &self,
        ctx: &UserContext,
        sink: impl Sink,
        from: Option<Position>,
    ) -> Result<ConnectionHandle, Error> {
        let mut map = self.inner.lock();
        let manager = self.inner.get_or_create_locked(&mut map, ctx.key())?;
        // A manager created here for a refused connection is reaped by the timer its creation
        // started, like any idle manager.
        manager.add_connection(sink, from)
    }

    /// Emits an agent event to a user (see [`UserManager::emit`]).
    pub fn emit(&self, key: &UserKey, event: AgentEvent) -> Result<Position, Error> {
        self.existing(key)?.emit(event)
    }

    /// Sends a text message to a user (see [`UserManager::send_text`]).
    pub fn send_text(&self, key: &UserKey, text: &str) -> Result<Position, Error> {
        self.existing(key)?.send_text(text)
    }

    /// Sets one user's mode (see [`UserManager::set_mode`]).
    pub fn set_mode(&self, key: &UserKey, mode: Mode) -> Result<(), Error> {
        self.existing(key)?.set_mode(mode)
    }

    /// Removes `manager` whatever it holds, if it is still the one the registry holds for its
    /// user (its connections are closed as at a shutdown, so their clients resume elsewhere or
    /// later); the user's next connection gets a new manager.
    pub(crate) fn remove_manager(&self, manager: &UserManager) {
        let mut map = self.inner.lock();
        if map
            .by_key
            .get(manager.key())
            .is_some_and(|m| m.same(manager))
        {
            map.by_key.remove(manager.key());
            manager.inner().remove(RemoveReason::Shutdown);
        }
    }

    fn existing(&self, key: &UserKey) -> Result<UserManager, Error> {
        self.get(key).ok_or_else(|| Error::UnknownUser {
            user: key.to_string(),
        })
    }

    /// A read-only picture of every manager, in key order.
    pub fn inspect(&self) -> RegistryView {
        let map = self.inner.lock();
        let managers: Vec<_> = map.by_key.values().map(UserManager::view).collect();
        RegistryView {
            connections: managers.iter().map(|m| m.connections.len()).sum(),
            managers,
        }
    }

    /// Closes every connection, drops every held message (reported), removes every manager and
    /// refuses new ones from now on.
    pub fn shutdown(&self) {
        let mut map = self.inner.lock();
        map.shutting_down = true;
        for manager in std::mem::take(&mut map.by_key).into_values() {
            manager.inner().remove(RemoveReason::Shutdown);
        }
    }
}

impl RegistryInner {
    fn lock(&self) -> MutexGuard<'_, Managers> {
        lock_order::registry(&self.map)
    }

    fn get_or_create_locked(
        self: &Arc<Self>,
        map: &mut Managers,
        key: &UserKey,
    ) -> Result<UserManager, Error> {
        if map.shutting_down {
            return Err(Error::ShuttingDown);
        }
        if let Some(existing) = map.by_key.get(key) {
            return Ok(existing.clone());
        }
        let max = self.core.config().max_managers;
        if map.by_key.len() >= max && !self.evict_longest_idle(map) {
            return Err(Error::ManagerLimit { max });
        }
        map.next_manager += 1;
        let id = ManagerId(map.next_manager);
        let manager = UserManager::new(
            id,
            key.clone(),
            Arc::clone(&self.core),
            Arc::downgrade(self),
        );
        map.by_key.insert(key.clone(), manager.clone());
        self.core.report(Observation::ManagerCreated {
            user: key,
            manager: id,
            epoch: Epoch::new(self.core.boot(), id.get()),
        });
        manager.inner().schedule_reap(Some(0));
        Ok(manager)
    }

    /// At the manager limit: removes the manager that has been idle (without a connection)
    /// longest, so that a new user is served rather than refused; false when every manager has
    /// a connection. A scan of every manager, paid only at the limit.
    fn evict_longest_idle(&self, map: &mut Managers) -> bool {
        let victim = map
            .by_key
            .iter()
            .filter_map(|(key, m)| Some((m.inner().idle_since()?, key)))
            .min();
        let Some((_, key)) = victim else {
            return false;
        };
        let key = key.clone();
        // Under the registry's lock no new manager can appear, but a connection can still
        // arrive through a `UserManager` handle; the eviction re-checks under the manager's lock.
        if !map.by_key[&key].inner().evict_if_idle() {
            return false;
        }
        map.by_key.remove(&key);
        true
    }

    /// Removes the manager if it is still the registered one and still idle since `generation`.
    pub(crate) fn reap_if_idle(&self, key: &UserKey, id: ManagerId, generation: u64) {
        let mut map = self.lock();
        let Some(manager) = map.by_key.get(key) else {
            return;
        };
        if manager.id() == id && manager.inner().remove_if_idle(generation) {
            map.by_key.remove(key);
        }
    }
}
