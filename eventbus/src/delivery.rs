//! Delivery: pushed feeds and their worker tasks, retries with backoff, and
//! the handling of failures and panics (store-read feeds are in `feed`).
//!
//! A handler is a *group*: each event is handled once per handler name.
//! On a store that does not outlive the process, its feed is a bounded
//! queue, so a slow handler pushes back on publishers instead of growing
//! memory. A failed attempt is retried after an
//! exponential backoff with jitter; a panic is a failed attempt, never a
//! crash of the bus.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::bus::Bus;
use crate::envelope::RawEnvelope;
use crate::handler::{Context, HandlerDef, HandlingError};
use crate::metrics;
use crate::middleware::Next;

/// Exponential backoff between attempts: `base * 2^(attempt-1)`, capped at
/// `max`, with up to 50% random jitter subtracted so that handlers failing
/// together do not retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.max);
        // The clock's sub-second nanos spread retries well enough; a
        // random number generator would be one more dependency.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = capped.mul_f64(f64::from(nanos % 1000) / 2000.0);
        capped - jitter
    }
}

/// Counters for one handler, read by `bus.stats()`.
#[derive(Debug, Default)]
pub(crate) struct HandlerCounters {
    pub(crate) handled: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) missed: AtomicU64,
}

/// A registered handler at run time: its definition, resolved settings and feed.
pub(crate) struct HandlerRuntime {
    pub(crate) def: HandlerDef,
    pub(crate) name: Arc<str>,
    pub(crate) topics: Vec<&'static str>,
    pub(crate) retries: u32,
    pub(crate) backoff: Backoff,
    pub(crate) feed: mpsc::Sender<RawEnvelope>,
    /// Wakes a store-fed handler when this process stored an event for it.
    pub(crate) wake: tokio::sync::Notify,
    /// Whether this bus holds the handler's lease on a shared store, so
    /// its store-read feed may run (see [`crate::lease`]).
    pub(crate) lease: watch::Sender<bool>,
    pub(crate) counters: HandlerCounters,
}

/// One handler on one bus: what every handling of it needs. Each worker,
/// replay and retry makes its own, so concurrent handlers never contend on
/// a shared reference count.
pub(crate) struct HandlerScope {
    pub(crate) bus: Bus,
    pub(crate) handler: Arc<HandlerRuntime>,
}

impl HandlerScope {
    pub(crate) fn new(bus: Bus, handler: Arc<HandlerRuntime>) -> Arc<Self> {
        Arc::new(HandlerScope { bus, handler })
    }

    pub(crate) fn count(&self, env: &RawEnvelope, outcome: metrics::Outcome) {
        if self.bus.metrics_on() {
            metrics::outcome(env.topic(), &self.handler.name, outcome);
        }
    }
}

/// Runs one handler's feed until shutdown, then drains what is queued.
pub(crate) async fn run_worker(
    scope: Arc<HandlerScope>,
    mut feed: mpsc::Receiver<RawEnvelope>,
    mut shutdown: watch::Receiver<bool>,
) {
    let handler = &scope.handler;
    let concurrency = handler.def.options.concurrency.max(1) as usize;
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut running = JoinSet::new();
    loop {
        let next = tokio::select! {
            biased;
            env = feed.recv() => env,
            _ = shutdown.changed() => {
                // Refuse new events but keep what is already queued.
                feed.close();
                continue;
            }
        };
        let Some(env) = next else { break };
        // `deliver` logs and counts its outcome; there is no one to return it to.
        if concurrency == 1 {
            let _ = deliver(&scope, env, Mode::Live).await;
            continue;
        }
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let scope = Arc::clone(&scope);
        running.spawn(async move {
            let _ = deliver(&scope, env, Mode::Live).await;
            drop(permit);
        });
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}

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
    let handler = &*scope.handler;
    let attempts = handler.retries.saturating_add(1);
    // Only a delivery from the handler's own feed in a durable store
    // records the event as handled in a `ctx.transaction`; the pushed
    // feeds of `memory://` skip the allocation.
    let committed =
        (mode == Mode::Live && scope.bus.store_fed()).then(|| Arc::new(AtomicBool::new(false)));
    let mut attempt = 1;
    loop {
        let started = scope.bus.metrics_on().then(std::time::Instant::now);
        let outcome = attempt_once(scope, &env, attempt, committed.clone()).await;
        if let Some(started) = started {
            metrics::handled(env.topic(), &handler.name, started.elapsed());
        }
        let error = match outcome {
            Ok(()) => {
                succeeded(scope, &env);
                return Ok(());
            }
            Err(error) => error,
        };
        if committed
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Acquire))
        {
            // Its transaction is stored: a retry would apply it twice.
            tracing::warn!(
                handler = %handler.name, topic = env.topic(), event_id = %env.id(), seq = env.seq(),
                attempt, %error,
                "handler failed after its transaction committed; the event counts as handled and is not retried"
            );
            succeeded(scope, &env);
            return Ok(());
        }
        if let Some(delay) = failed(scope, &env, &error, attempt, attempts) {
            tokio::time::sleep(delay).await;
            attempt += 1;
            continue;
        }
        if mode == Mode::Live {
            // A dead letter that cannot be stored is logged by `bury`.
            let _ = crate::bus::bury(&scope.bus, handler, &env, &error, attempt).await;
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
    committed: Option<Arc<AtomicBool>>,
) -> Result<(), HandlingError> {
    let ctx = Context::new(Arc::clone(scope), env.clone(), attempt, committed);
    let next = Next::new(scope.bus.middleware(), &scope.handler.def.call, ctx);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let d1 = b.delay(1);
        assert!(d1 <= Duration::from_millis(100) && d1 >= Duration::from_millis(50));
        let d3 = b.delay(3);
        assert!(d3 <= Duration::from_millis(400) && d3 >= Duration::from_millis(200));
        assert!(b.delay(30) <= Duration::from_secs(1));
    }
}
