//! How a reader moves through a stream: the one rule of reading positions, which the
//! black-box oracle judges every tab by and the disconnect benchmark counts every client by.

/// Where an item of a stream (a message at `from`, or a gap marker from `from`) lands for a
/// reader whose next position is `next`: the one rule of reading a stream, which the
/// black-box oracle judges tabs by and the disconnect benchmark counts clients by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Exactly where the reader is.
    InOrder,
    /// Past it: `skipped` positions were never read nor announced (a hole).
    Ahead {
        /// How many.
        skipped: u64,
    },
    /// Behind it: read before (a duplicate, or out of order).
    Behind,
}

/// Where an item starting at `from` lands for a reader at `next`.
pub fn place(next: u64, from: u64) -> Place {
    match from.cmp(&next) {
        std::cmp::Ordering::Equal => Place::InOrder,
        std::cmp::Ordering::Greater => Place::Ahead {
            skipped: from - next,
        },
        std::cmp::Ordering::Less => Place::Behind,
    }
}
