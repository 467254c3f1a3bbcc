//! The core's two kinds of lock and the one order they are taken in: the registry's map first,
//! then one manager's state. Every lock in the crate is taken through [`registry`] or
//! [`manager`], so the rule lives here:
//!
//! - a manager's lock is never held while the registry's is taken (a reaper holding the registry
//!   and waiting for a manager, while that manager waits for the registry, would deadlock);
//! - at most one manager's lock is held at a time (two users never wait on each other);
//! - neither is held across an `.await` (`clippy::await_holding_lock` denies it crate-wide).
//!
//! Builds with debug assertions (tests, and the simulator's `sim` profile, so every fuzz
//! campaign) check the first two on every acquisition and panic naming the broken rule; release
//! builds compile the bookkeeping away.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard, PoisonError};

thread_local! {
    /// Manager locks this thread holds (guards are never held across an await, so a task's
    /// locks are its thread's for as long as it holds them).
    static MANAGERS_HELD: Cell<u32> = const { Cell::new(0) };
}

/// Takes the registry's lock. Panics in debug builds if this thread holds a manager's lock.
pub(crate) fn registry<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    debug_assert_eq!(
        MANAGERS_HELD.with(Cell::get),
        0,
        "lock order: the registry's lock taken while holding a manager's"
    );
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes one manager's lock. Panics in debug builds if this thread holds another manager's.
pub(crate) fn manager<T>(m: &Mutex<T>) -> ManagerGuard<'_, T> {
    debug_assert_eq!(
        MANAGERS_HELD.with(Cell::get),
        0,
        "lock order: two managers' locks held at once"
    );
    let guard = m.lock().unwrap_or_else(PoisonError::into_inner);
    if cfg!(debug_assertions) {
        MANAGERS_HELD.with(|h| h.set(h.get() + 1));
    }
    ManagerGuard(guard)
}

/// A held manager lock; counted while it lives (in debug builds).
pub(crate) struct ManagerGuard<'a, T>(MutexGuard<'a, T>);

impl<T> Drop for ManagerGuard<'_, T> {
    fn drop(&mut self) {
        if cfg!(debug_assertions) {
            MANAGERS_HELD.with(|h| h.set(h.get() - 1));
        }
    }
}

impl<T> Deref for ManagerGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for ManagerGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_then_manager_is_allowed() {
        let (r, m) = (Mutex::new(0), Mutex::new(0));
        let _r = registry(&r);
        let _m = manager(&m);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "lock order: the registry's lock taken while holding a manager's")]
    fn manager_then_registry_panics() {
        let (r, m) = (Mutex::new(0), Mutex::new(0));
        let _m = manager(&m);
        let _r = registry(&r);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "two managers' locks held at once")]
    fn two_managers_panic() {
        let (a, b) = (Mutex::new(0), Mutex::new(0));
        let _a = manager(&a);
        let _b = manager(&b);
    }

    #[test]
    fn a_released_manager_lock_is_forgotten() {
        let (r, m) = (Mutex::new(0), Mutex::new(0));
        drop(manager(&m));
        let _r = registry(&r);
    }
}
