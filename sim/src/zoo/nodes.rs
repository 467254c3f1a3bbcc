//! The bugs of many nodes, each planted as a wrapper of one node's handle on the stream store,
//! the way a node's own store code would get it wrong; the nodes, the store and the core stay
//! correct. They run only over many nodes (`--net --nodes 2` or more), where the black-box
//! oracle must catch them from what the clients read and were told.

use std::sync::Arc;

use wsreg::store::{Appended, Range, StoreFuture, StreamStore};
use wsreg::{Epoch, Payload, Position, UserKey};

use crate::check::invariant::Invariant;

pub use crate::run::backend::StorePlant;

/// A planted bug of many nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum NodeBug {
    /// A position assigned outside the store's atomic append.
    N1,
    /// A node that never fans out to another node's tabs.
    N2,
    /// A dead node's connections counted forever.
    N3,
}

impl NodeBug {
    /// Every planted bug of many nodes.
    pub const ALL: [NodeBug; 3] = [NodeBug::N1, NodeBug::N2, NodeBug::N3];

    /// The one-line story.
    pub fn story(self) -> &'static str {
        match self {
            NodeBug::N1 => "position outside the atomic append: a node reads the head, appends, and tells the sender head + 1, so two nodes appending at once hand out one position",
            NodeBug::N2 => "no fan-out: a node never subscribes to the users it holds tabs for, so its tabs hear only of what it appended itself (or what a resume reads)",
            NodeBug::N3 => "connection counts that never expire: a node takes its users' slots for good and only gives them back when it closes a tab, so the tabs of a node that died count against their user forever",
        }
    }

    /// The invariants expected to catch it.
    pub fn expected(self) -> &'static [Invariant] {
        match self {
            NodeBug::N1 => &[Invariant::I7, Invariant::I8],
            NodeBug::N2 => &[Invariant::I8],
            NodeBug::N3 => &[Invariant::I6],
        }
    }

    /// Whether a failure label (an [`Outcome::label`](crate::check::outcome::Outcome::label))
    /// is one of the expected invariants.
    pub fn caught_as_expected(self, label: &str) -> bool {
        self.expected()
            .iter()
            .any(|i| label.starts_with(&format!("{i:?} ")))
    }

    /// The wrapper that plants it.
    pub fn plant(self) -> StorePlant {
        match self {
            NodeBug::N1 => |store| Arc::new(Planted(NodeBug::N1, store)),
            NodeBug::N2 => |store| Arc::new(Planted(NodeBug::N2, store)),
            NodeBug::N3 => |store| Arc::new(Planted(NodeBug::N3, store)),
        }
    }
}

impl std::fmt::Display for NodeBug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// N3's lease: a year, far beyond any run.
const FOREVER_MS: u64 = 365 * 24 * 3_600 * 1_000;

/// A node's store handle with `bug` planted: N1 reads the head, then appends, and reports the
/// head it read plus one; N2 subscribes to nobody; N3 takes every slot for a year. Everything
/// else goes to the store as is.
struct Planted(NodeBug, Arc<dyn StreamStore>);

impl StreamStore for Planted {
    fn append<'a>(
        &'a self,
        user: &'a UserKey,
        idem: &'a str,
        payload: &'a Payload,
        fresh: Epoch,
    ) -> StoreFuture<'a, Appended> {
        if self.0 != NodeBug::N1 {
            return self.1.append(user, idem, payload, fresh);
        }
        Box::pin(async move {
            let head = self.1.read(user, 0, 0, fresh).await?.head;
            let stored = self.1.append(user, idem, payload, fresh).await?;
            Ok(Appended {
                at: Position::new(stored.at.epoch, head + 1),
                duplicate: stored.duplicate,
            })
        })
    }

    fn read<'a>(
        &'a self,
        user: &'a UserKey,
        after: u64,
        limit: usize,
        fresh: Epoch,
    ) -> StoreFuture<'a, Range> {
        self.1.read(user, after, limit, fresh)
    }

    fn subscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        match self.0 {
            NodeBug::N2 => Box::pin(async { Ok(()) }),
            _ => self.1.subscribe(user),
        }
    }

    fn unsubscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        match self.0 {
            NodeBug::N2 => Box::pin(async { Ok(()) }),
            _ => self.1.unsubscribe(user),
        }
    }

    fn lease<'a>(
        &'a self,
        user: &'a UserKey,
        holder: &'a str,
        limit: u64,
        lease_ms: u64,
    ) -> StoreFuture<'a, bool> {
        match self.0 {
            NodeBug::N3 => self.1.lease(user, holder, limit, FOREVER_MS),
            _ => self.1.lease(user, holder, limit, lease_ms),
        }
    }

    fn release<'a>(&'a self, user: &'a UserKey, holder: &'a str) -> StoreFuture<'a, ()> {
        self.1.release(user, holder)
    }
}
