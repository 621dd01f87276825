//! One delivery of an envelope to a handler: attempts through the
//! middleware, retries with backoff and jitter, a panic turned into a
//! failed attempt (never a crash of the bus), and what a final failure
//! does, decided here for every feed: a dead letter for live deliveries,
//! a count in the report for replays.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::FutureExt;

use super::core::HandlerScope;
use super::dead_letter;
use super::tracker::Tracker;
use crate::envelope::RawEnvelope;
use crate::handler::{Committed, Context, HandlingError};
use crate::metrics;
use crate::middleware::Next;

/// Why an envelope is being delivered, which decides what a final failure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// From the handler's feed: a final failure becomes a dead letter.
    Live,
    /// From a replay: failures are only counted in the replay's report.
    Replay,
    /// A dead letter tried again: it stays a dead letter if it fails.
    DeadLetterRetry,
}

/// A handling that failed for good.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: HandlingError,
    pub(crate) attempts: u32,
}

/// Handles one envelope with retries; the outcome is logged and counted.
pub(crate) async fn deliver(
    scope: &Arc<HandlerScope>,
    env: RawEnvelope,
    mode: Mode,
) -> Result<(), Failure> {
    deliver_with(scope, env, mode, None).await
}

/// [`deliver`] from the handler's own feed in a durable store, where a
/// `ctx.transaction` records the event as handled in `committed`.
pub(crate) async fn deliver_recorded(
    scope: &Arc<HandlerScope>,
    env: RawEnvelope,
    committed: Arc<Committed>,
) -> Result<(), Failure> {
    deliver_with(scope, env, Mode::Live, Some(committed)).await
}

async fn deliver_with(
    scope: &Arc<HandlerScope>,
    env: RawEnvelope,
    mode: Mode,
    committed: Option<Arc<Committed>>,
) -> Result<(), Failure> {
    let handler = &*scope.handler;
    // Live deliveries are what a test bus waits for; replays and retried
    // dead letters are awaited by whoever asked for them.
    let mut tracked = match (&scope.core.tracker, mode) {
        (Some(tracker), Mode::Live) => Some(Tracked {
            tracker,
            handler: handler.index,
            env: &env,
            handled: false,
        }),
        _ => None,
    };
    if !handler.in_scope(&env) {
        return Ok(());
    }
    let attempts = handler.retries.saturating_add(1);
    let mut attempt = 1;
    loop {
        if let Some(t) = &tracked {
            t.tracker.attempt(t.handler, t.env, attempt);
        }
        let started = scope.core.metrics.then(std::time::Instant::now);
        let outcome = attempt_once(scope, &env, attempt, committed.clone()).await;
        if let Some(started) = started {
            metrics::handled(env.topic(), &handler.name, started.elapsed());
        }
        let error = match outcome {
            Ok(()) => {
                succeeded(scope, &env);
                if let Some(t) = &mut tracked {
                    t.handled = true;
                }
                return Ok(());
            }
            Err(error) => error,
        };
        if committed.as_ref().is_some_and(|c| c.is_done()) {
            // Its transaction is stored: a retry would apply it twice.
            tracing::warn!(
                handler = %handler.name, topic = env.topic(), event_id = %env.id(), seq = env.seq(),
                attempt, %error,
                "handler failed after its transaction committed; the event counts as handled and is not retried"
            );
            succeeded(scope, &env);
            if let Some(t) = &mut tracked {
                t.handled = true;
            }
            return Ok(());
        }
        if let Some(delay) = failed(scope, &env, &error, attempt, attempts) {
            if let Some(t) = &tracked {
                t.tracker.backoff(t.handler, t.env, attempt, delay);
            }
            tokio::time::sleep(delay).await;
            attempt += 1;
            continue;
        }
        if mode == Mode::Live {
            // A dead letter that cannot be stored is logged by `bury`.
            let _ = dead_letter::bury(&scope.core, handler, &env, &error, attempt).await;
        } else {
            tracing::warn!(
                handler = %handler.name, topic = env.topic(), event_id = %env.id(), seq = env.seq(),
                attempt, %error, ?mode,
                "handler failed"
            );
        }
        return Err(Failure {
            error,
            attempts: attempt,
        });
    }
}

/// A live delivery on a tracked bus: reported finished when dropped, on
/// every way out of it (a worker aborted at shutdown included).
struct Tracked<'a> {
    tracker: &'a Tracker,
    handler: usize,
    env: &'a RawEnvelope,
    handled: bool,
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.tracker.finished(self.handler, self.env, self.handled);
    }
}

/// Counts a successful handling.
pub(crate) fn succeeded(scope: &HandlerScope, env: &RawEnvelope) {
    scope
        .handler
        .counters
        .handled
        .fetch_add(1, Ordering::Relaxed);
    scope.count(env, metrics::Outcome::Delivered);
}

/// Counts and logs a failed attempt (number `attempt` of `attempts`) and
/// returns the delay before the next one, or `None` when the handler
/// gives up on the event.
pub(crate) fn failed(
    scope: &HandlerScope,
    env: &RawEnvelope,
    error: &HandlingError,
    attempt: u32,
    attempts: u32,
) -> Option<Duration> {
    let handler = &*scope.handler;
    if matches!(error, HandlingError::Panicked(_)) {
        handler.counters.panicked.fetch_add(1, Ordering::Relaxed);
    }
    // Retrying cannot fix data that does not decode.
    let retryable = !matches!(error, HandlingError::Decode(_));
    if retryable && attempt < attempts {
        handler.counters.retried.fetch_add(1, Ordering::Relaxed);
        scope.count(env, metrics::Outcome::Retried);
        let delay = handler.backoff.delay(attempt);
        tracing::warn!(
            handler = %handler.name, topic = env.topic(), event_id = %env.id(), seq = env.seq(),
            attempt, retry_in_ms = delay.as_millis() as u64, %error,
            "handler failed; retrying"
        );
        return Some(delay);
    }
    handler.counters.failed.fetch_add(1, Ordering::Relaxed);
    scope.count(env, metrics::Outcome::Failed);
    None
}

/// One attempt, through the middleware, with a panic turned into an error.
pub(crate) async fn attempt_once(
    scope: &Arc<HandlerScope>,
    env: &RawEnvelope,
    attempt: u32,
    committed: Option<Arc<Committed>>,
) -> Result<(), HandlingError> {
    let ctx = Context::new(scope.clone(), env.clone(), attempt, committed);
    let next = Next::new(&scope.core.middleware, &scope.handler.def.call, ctx);
    match AssertUnwindSafe(next.run(env.clone())).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(payload) => Err(HandlingError::Panicked(panic_message(payload.as_ref()))),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}
