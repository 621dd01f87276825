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
    /// seq a publish returned, for at most `timeout`. On stores this
    /// process feeds (memory, SQLite), progress is this process's: a
    /// handler running in another process is not seen. On `nats://` it is
    /// the handler's consumer on the server, shared by every process
    /// running the handler, read until its acknowledged floor reaches the
    /// event (the server offers no notice of it).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownHandler`], [`Error::NotCaughtUp`] after the
    /// timeout, or a store error.
    pub async fn caught_up(&self, handler: &str, seq: u64, timeout: Duration) -> Result<()> {
        let runtime = self.handler_runtime(handler)?;
        let core = self.core();
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
        let reached = if core.feeds == FeedKind::Served {
            server_floor_reaches(core.store.checkpoint_store()?, handler, target, deadline).await?
        } else {
            runtime.through.wait_for(target, deadline).await
        };
        if reached {
            Ok(())
        } else {
            Err(Error::NotCaughtUp {
                handler: handler.to_owned(),
                target,
                at: if core.feeds == FeedKind::Served {
                    core.store
                        .checkpoint_store()?
                        .load_checkpoint(handler)
                        .await?
                        .unwrap_or(0)
                } else {
                    runtime.through.get()
                },
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

/// Reads the handler's acknowledged floor on the server until it reaches
/// `target` (true) or the deadline passes (false), backing off from 5 ms
/// to 100 ms between reads.
async fn server_floor_reaches(
    checkpoints: &dyn crate::store::CheckpointStore,
    handler: &str,
    target: u64,
    deadline: tokio::time::Instant,
) -> Result<bool> {
    let mut pause = Duration::from_millis(5);
    loop {
        let floor = checkpoints.load_checkpoint(handler).await?.unwrap_or(0);
        if floor >= target {
            return Ok(true);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
