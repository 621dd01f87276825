//! Dead letters tried again: one on request (`bus.dead_letters().retry`),
//! and the poller that makes the retries other processes requested
//! (`eventbus dlq retry`) for the handlers this bus runs.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::attempt::{Mode, deliver};
use super::core::{Core, HandlerScope};
use crate::error::{Error, Result};
use crate::store::DeadLetterQuery;

/// Delivers a dead letter to its handler again, in this process: removed
/// on success (`true`), kept with the new error on failure (`false`). The
/// handler's own position never moves.
pub(crate) async fn retry(core: &Arc<Core>, id: u64) -> Result<bool> {
    let store = core.store.dead_letter_store()?;
    let found = store.dead_letters(DeadLetterQuery::id(id)).await?;
    let Some(dead) = found.into_iter().next() else {
        return Err(Error::NotFound {
            what: format!("dead letter {id}"),
        });
    };
    let Some(handler) = core.handlers.iter().find(|h| *h.name == *dead.handler) else {
        return Err(Error::UnknownHandler {
            name: dead.handler,
            known: core.handlers.iter().map(|h| h.name.to_string()).collect(),
        });
    };
    let scope = HandlerScope::new(Arc::clone(core), Arc::clone(handler));
    match deliver(&scope, dead.envelope, Mode::DeadLetterRetry).await {
        Ok(()) => {
            store.remove_dead_letter(id).await?;
            Ok(true)
        }
        Err(failure) => {
            store
                .record_retry_failure(id, failure.error.to_string(), failure.attempts)
                .await?;
            Ok(false)
        }
    }
}

/// Retries the dead letters that someone (such as `eventbus dlq retry` in
/// another process) marked, for the handlers this bus runs, until shutdown.
pub(crate) async fn retry_requested(
    core: Arc<Core>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(store) = core.store.as_dead_letter_store() else {
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let marked = match store
            .dead_letters(DeadLetterQuery::all().retry_requested())
            .await
        {
            Ok(marked) => marked,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for requested dead-letter retries");
                continue;
            }
        };
        // Of processes sharing a store, the one running the handler
        // (holding its lease) retries its dead letters.
        let runs = |name: &str| {
            core.handlers
                .iter()
                .any(|h| *h.name == *name && *h.lease.borrow())
        };
        for dead in marked.into_iter().filter(|d| runs(&d.handler)) {
            match retry(&core, dead.id).await {
                Ok(handled) => {
                    tracing::info!(dead_letter_id = dead.id, handler = %dead.handler, handled, "retried a dead letter on request")
                }
                Err(e) => {
                    tracing::warn!(dead_letter_id = dead.id, error = %e, "requested dead-letter retry failed")
                }
            }
        }
    }
}
