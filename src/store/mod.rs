//! The stream-store seam: where a user's stream lives when several server nodes share it.
//!
//! A [`Registry`](crate::Registry) on its own keeps every stream in memory (one node, the
//! default). A [`Node`](crate::Node) keeps them in a [`StreamStore`] shared by every node of a
//! deployment, and mirrors into its own managers the streams of the users it holds tabs for:
//!
//! - **append**: the store assigns the next position atomically, with the stream's epoch, so
//!   two nodes never hand out one position; an idempotency key makes a retried append stored
//!   once;
//! - **read** after a position, with the epoch, the head and the oldest retained position;
//!   the history is bounded by count and by age ([`Bounds`]), and an idle stream expires;
//! - **live fan-out**: a node subscribes to the users it holds tabs for and receives every
//!   append to them as [`Live::Published`]; when its subscription may have missed messages it
//!   is told [`Live::Lost`] and reads the stores' streams again.
//!
//! Implementations: [`MemoryStore`] (one process, any number of nodes: tests and examples),
//! `RedisStore` (feature `redis`: Lua scripts over a real Redis or Redis Cluster), and the
//! simulator's store node. All follow [`model::StoreModel`], the semantics as plain data.

mod memory;
pub mod model;
mod ops;
#[cfg(all(feature = "redis", not(madsim)))]
pub mod redis;

use std::future::Future;
use std::pin::Pin;

use thiserror::Error;

use crate::event::Payload;
use crate::identity::UserKey;
use crate::stream::{Epoch, Position};

pub use memory::MemoryStore;
pub use model::Bounds;
pub use ops::ModelStore;

/// A boxed future, as the seam's methods return.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where an append was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Its position.
    pub at: Position,
    /// Whether the same append (by idempotency key) had been stored before.
    pub duplicate: bool,
}

/// What a read found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    /// The stream's epoch.
    pub epoch: Epoch,
    /// The last position appended.
    pub head: u64,
    /// The oldest position retained (`head + 1` when nothing is).
    pub first: u64,
    /// The entries after the position read from, oldest first.
    pub entries: Vec<(u64, Payload)>,
}

/// What a node's subscription delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Live {
    /// An append to a user the node subscribed to.
    Published {
        /// The user.
        user: UserKey,
        /// The append's position.
        at: Position,
        /// The message.
        payload: Payload,
    },
    /// The subscription may have missed messages (its connection was lost and made again):
    /// every stream the node mirrors must be read again.
    Lost,
}

/// Why a store operation failed. Nothing was stored unless the error says it may have been.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached, or did not answer in time. An append may or may not have
    /// been stored; retried with the same idempotency key, it is stored once.
    #[error("the stream store is unavailable: {0}")]
    Unavailable(String),
    /// The store answered with something this version does not understand.
    #[error("the stream store answered unexpectedly: {0}")]
    Protocol(String),
}

/// The stream-store seam (see the [module docs](self)). Every method is atomic in the store:
/// concurrent calls from any number of nodes behave as if run one at a time.
pub trait StreamStore: Send + Sync + 'static {
    /// Appends `payload` to `user`'s stream (started as `fresh` if it does not exist) and
    /// publishes it to the nodes subscribed to `user`.
    fn append<'a>(
        &'a self,
        user: &'a UserKey,
        idem: &'a str,
        payload: &'a Payload,
        fresh: Epoch,
    ) -> StoreFuture<'a, Appended>;

    /// Reads up to `limit` entries of `user`'s stream after `after` (started as `fresh`, empty,
    /// if it does not exist).
    fn read<'a>(
        &'a self,
        user: &'a UserKey,
        after: u64,
        limit: usize,
        fresh: Epoch,
    ) -> StoreFuture<'a, Range>;

    /// Starts delivering `user`'s appends to this node as [`Live::Published`]. Once it
    /// returns, every later append is delivered (until [`Live::Lost`]).
    fn subscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()>;

    /// Stops delivering `user`'s appends to this node.
    fn unsubscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()>;

    /// Takes, or renews, `holder`'s lease on one of `user`'s connection slots for `lease_ms`;
    /// `false` when `limit` unexpired leases of others hold them all. A node that dies stops
    /// renewing, and its connections stop counting when their leases run out. With a `limit`
    /// of 0 it only renews: a lease given back, or run out, is not taken again.
    fn lease<'a>(
        &'a self,
        user: &'a UserKey,
        holder: &'a str,
        limit: u64,
        lease_ms: u64,
    ) -> StoreFuture<'a, bool>;

    /// Gives `holder`'s lease on one of `user`'s slots back.
    fn release<'a>(&'a self, user: &'a UserKey, holder: &'a str) -> StoreFuture<'a, ()>;
}

/// A payload as the store keeps it (JSON).
pub(crate) fn encode(payload: &Payload) -> String {
    serde_json::to_string(payload).expect("a payload always serializes")
}

/// A payload the store kept.
pub(crate) fn decode(text: &str) -> Result<Payload, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Protocol(format!("a stored message: {e}")))
}

/// An epoch the store kept.
pub(crate) fn decode_epoch(text: &str) -> Result<Epoch, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Protocol(format!("a stored epoch: {e}")))
}
