//! [`ModelStore`]: a store that runs the model's operations somewhere — in this process, on
//! Redis, on the simulator's store node — gets the whole [`StreamStore`] seam from two methods:
//! its clock, and running one [`Op`]. The calls become operations, and replies become
//! answers, here and only here.

use super::model::{Op, Reply};
use super::{decode, decode_epoch, encode, Appended, Range, StoreError, StoreFuture, StreamStore};
use crate::event::Payload;
use crate::identity::UserKey;
use crate::stream::{Epoch, Position};

/// A store that runs [`Op`]s as [`StoreModel::apply`](super::model::StoreModel::apply) does
/// (every `ModelStore` is a [`StreamStore`]).
pub trait ModelStore: Send + Sync + 'static {
    /// The store's clock for the next operation, in milliseconds (age bounds, TTLs, leases).
    fn now_ms(&self) -> u64;

    /// Runs one operation; its reply.
    fn run(&self, op: Op) -> StoreFuture<'_, Reply>;

    /// See [`StreamStore::subscribe`].
    fn subscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()>;

    /// See [`StreamStore::unsubscribe`].
    fn unsubscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()>;
}

fn unexpected<T>(reply: &Reply, to: &str) -> Result<T, StoreError> {
    Err(StoreError::Protocol(format!("{reply:?} to {to}")))
}

impl<S: ModelStore> StreamStore for S {
    fn append<'a>(
        &'a self,
        user: &'a UserKey,
        idem: &'a str,
        payload: &'a Payload,
        fresh: Epoch,
    ) -> StoreFuture<'a, Appended> {
        let op = Op::Append {
            user: user.as_str().to_owned(),
            idem: idem.to_owned(),
            payload: encode(payload),
            fresh: fresh.to_string(),
            now_ms: self.now_ms(),
        };
        Box::pin(async move {
            match self.run(op).await? {
                Reply::Appended {
                    epoch,
                    seq,
                    duplicate,
                } => Ok(Appended {
                    at: Position::new(decode_epoch(&epoch)?, seq),
                    duplicate,
                }),
                other => unexpected(&other, "an append"),
            }
        })
    }

    fn read<'a>(
        &'a self,
        user: &'a UserKey,
        after: u64,
        limit: usize,
        fresh: Epoch,
    ) -> StoreFuture<'a, Range> {
        let op = Op::Read {
            user: user.as_str().to_owned(),
            after,
            limit: limit as u64,
            fresh: fresh.to_string(),
            now_ms: self.now_ms(),
        };
        Box::pin(async move { range_of(self.run(op).await?) })
    }

    fn subscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        ModelStore::subscribe(self, user)
    }

    fn unsubscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        ModelStore::unsubscribe(self, user)
    }

    fn lease<'a>(
        &'a self,
        user: &'a UserKey,
        holder: &'a str,
        limit: u64,
        lease_ms: u64,
    ) -> StoreFuture<'a, bool> {
        let op = Op::Lease {
            user: user.as_str().to_owned(),
            holder: holder.to_owned(),
            limit,
            now_ms: self.now_ms(),
            lease_ms,
        };
        Box::pin(async move {
            match self.run(op).await? {
                Reply::Leased { granted, .. } => Ok(granted),
                other => unexpected(&other, "a lease"),
            }
        })
    }

    fn release<'a>(&'a self, user: &'a UserKey, holder: &'a str) -> StoreFuture<'a, ()> {
        let op = Op::Release {
            user: user.as_str().to_owned(),
            holder: holder.to_owned(),
        };
        Box::pin(async move { self.run(op).await.map(|_| ()) })
    }
}

/// A [`Range`] from the reply to a read.
fn range_of(reply: Reply) -> Result<Range, StoreError> {
    let Reply::Range {
        epoch,
        head,
        first,
        entries,
    } = reply
    else {
        return unexpected(&reply, "a read");
    };
    let entries = entries
        .into_iter()
        .map(|(seq, text)| Ok((seq, decode(&text)?)))
        .collect::<Result<_, StoreError>>()?;
    Ok(Range {
        epoch: decode_epoch(&epoch)?,
        head,
        first,
        entries,
    })
}
