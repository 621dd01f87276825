//! Handlers as projections (read models): waiting until one has caught
//! up with history, and rebuilding one from the beginning.
//!
//! A projection is an ordinary handler that writes a read model, on
//! SQLite through `ctx.transaction`, so its writes and its position
//! commit together. Reads of the model are eventually consistent: a
//! caller that just published waits for the projection with
//! [`Bus::caught_up`] before reading.

use std::sync::Arc;
use std::time::Duration;

use super::handle::Bus;
use crate::delivery::{FeedKind, HandlerRuntime};
use crate::error::{Error, Result};

impl Bus {
    /// Waits until handler `handler` has finished (handled or
    /// dead-lettered) every event of its topics up to `seq`, such as the
    /// seq a publish returned, for at most `timeout`. Progress is this
    /// process's: a handler running in another process is not seen.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownHandler`], [`Error::NotCaughtUp`] after the
    /// timeout, [`Error::Unsupported`] on a store whose server runs the
    /// handlers (`nats://`: follow the consumer there), or a store error.
    pub async fn caught_up(&self, handler: &str, seq: u64, timeout: Duration) -> Result<()> {
        let runtime = self.handler_runtime(handler)?;
        let core = self.core();
        if core.feeds == FeedKind::Served {
            return Err(Error::Unsupported {
                store: core.store.describe(),
                capability: "waiting for a handler the server feeds (follow its consumer)",
            });
        }
        // The newest event the handler has to finish: seqs of other
        // topics never reach it.
        let target = self
            .history()
            .topics(runtime.topics.iter())
            .before_seq(seq.saturating_add(1))
            .newest_first()
            .limit(1)
            .skip_unreadable()
            .fetch()
            .await?
            .first()
            .map_or(0, |env| env.seq());
        let deadline = tokio::time::Instant::now() + timeout;
        if runtime.through.wait_for(target, deadline).await {
            Ok(())
        } else {
            Err(Error::NotCaughtUp {
                handler: handler.to_owned(),
                target,
                at: runtime.through.get(),
                seconds: timeout.as_secs_f64(),
            })
        }
    }

    /// Rebuilds projection `handler` from the beginning of history: runs
    /// `reset` (which empties the projection's own tables) and moves the
    /// handler's checkpoint back to the start, in one SQLite transaction,
    /// then lets the running handler read everything again. A handling
    /// in flight during the rebuild may still land after the reset, so a
    /// projection writes idempotently (upserts).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownHandler`], [`Error::Unsupported`] for a store other
    /// than SQLite, or the error of `reset` or the store.
    #[cfg(feature = "sqlite")]
    pub async fn rebuild<F>(&self, handler: &str, reset: F) -> Result<()>
    where
        F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()> + Send + 'static,
    {
        let runtime = self.handler_runtime(handler)?;
        let store = &self.core().store;
        let transactions = store.as_transactions().ok_or_else(|| Error::Unsupported {
            store: store.describe(),
            capability: "rebuilding a projection (it resets the handler's tables and checkpoint \
                         in one SQLite transaction)",
        })?;
        let reset: crate::store::TransactionFn = Box::new(move |tx| {
            reset(tx)?;
            Ok(Box::new(()))
        });
        transactions.restart_handler(handler, reset).await?;
        runtime.through.restart();
        runtime.wake.notify_one();
        Ok(())
    }

    fn handler_runtime(&self, name: &str) -> Result<Arc<HandlerRuntime>> {
        let handlers = &self.core().handlers;
        handlers
            .iter()
            .find(|h| &*h.name == name)
            .cloned()
            .ok_or_else(|| Error::UnknownHandler {
                name: name.to_owned(),
                known: handlers.iter().map(|h| h.name.to_string()).collect(),
            })
    }
}
