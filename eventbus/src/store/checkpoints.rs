//! The checkpoint capability: where each handler is in a store whose
//! handlers read their feed from it, which events it finished ahead of
//! that, and which process runs it.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::future::BoxFuture;

/// Per-handler positions kept by the store (see [`Store`](super::Store)).
pub trait CheckpointStore: Send + Sync {
    /// The last seq the named handler finished, if it ever ran.
    fn load_checkpoint(&self, handler: &str) -> BoxFuture<'_, Result<Option<u64>>>;

    /// Records that the named handler finished everything up to `seq`.
    /// Moving a checkpoint back forgets what [`CheckpointStore::record_handled`]
    /// recorded for that handler, so the events after it are handled again.
    fn save_checkpoint(&self, handler: &str, seq: u64) -> BoxFuture<'_, Result<()>>;

    /// Saves the named handler's checkpoint at `seq` only if it is still at
    /// `expected` (where this handler last saved or read it), and returns
    /// whether it did: `false` means someone else (an operator, the CLI, a
    /// process that took the handler over) moved it meanwhile, and the
    /// caller should follow the new position instead of overwriting it.
    ///
    /// The default looks and then saves, which a store that several
    /// processes write should replace with one atomic step.
    fn advance_checkpoint(
        &self,
        handler: &str,
        expected: u64,
        seq: u64,
    ) -> BoxFuture<'_, Result<bool>> {
        let handler = handler.to_owned();
        Box::pin(async move {
            if self.load_checkpoint(&handler).await?.unwrap_or(0) != expected {
                return Ok(false);
            }
            self.save_checkpoint(&handler, seq).await.map(|()| true)
        })
    }

    /// Records, without waiting, that the named handler finished the
    /// events with seqs in `seqs` (ahead of its checkpoint), so that a
    /// redelivery after a crash can skip them. A store whose handlers never
    /// see redeliveries keeps nothing, which is the default.
    fn record_handled(&self, handler: &Arc<str>, seqs: RangeInclusive<u64>) {
        let _ = (handler, seqs);
    }

    /// The runs of seqs the named handler is recorded to have finished
    /// that end after `after`, ordered by their first seq (they may
    /// overlap).
    fn handled_after(
        &self,
        handler: &str,
        after: u64,
    ) -> BoxFuture<'_, Result<Vec<RangeInclusive<u64>>>> {
        let _ = (handler, after);
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Every handler's checkpoint, sorted by handler name.
    fn checkpoints(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>>>;

    /// Takes or renews, for `holder`, the lease on running each named
    /// handler, for `ttl` from now, unless another holder's lease on it
    /// has not expired; returns, per handler, whether `holder` has it.
    ///
    /// Processes that share a durable store through the bus's own feeds
    /// (SQLite) use leases so that one handler name runs in one process at
    /// a time, the others standing by. A store whose handlers cannot be
    /// shared that way (it lives in one process, or its server hands out
    /// the events itself) grants every lease, which is the default.
    fn renew_leases(
        &self,
        holder: &str,
        handlers: &[Arc<str>],
        ttl: Duration,
    ) -> BoxFuture<'_, Result<Vec<bool>>> {
        let _ = (holder, ttl);
        let all = vec![true; handlers.len()];
        Box::pin(async move { Ok(all) })
    }

    /// Gives up every lease `holder` has, so a standby takes over at once.
    fn release_leases(&self, holder: &str) -> BoxFuture<'_, Result<()>> {
        let _ = holder;
        Box::pin(async { Ok(()) })
    }
}
