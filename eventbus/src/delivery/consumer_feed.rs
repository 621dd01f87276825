//! Handler feeds served by the store's own consumers (NATS JetStream).
//!
//! The server keeps each handler's position and hands out deliveries, so
//! several processes running one handler share its work. Each delivery is
//! one attempt: success acks it; a failure asks the server to deliver it
//! again after the handler's backoff (the delivery count is the attempt
//! number, so retries survive a crash of the process that failed); after
//! the last attempt the event is written to the dead letters and the
//! server told to give up on it. While a handling runs, progress is
//! signalled so the server does not hand the event to another process.
//!
//! Delivery is at least once: an event whose handling finished but whose
//! ack did not reach the server (crash, lost connection) is delivered
//! again after the ack wait.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::core::HandlerScope;
use super::{attempt, dead_letter};
use crate::event::CodecError;
use crate::handler::HandlingError;
use crate::metrics;
use crate::store::{Acknowledge, BoxStream, Delivery};

/// Handles deliveries until shutdown, then finishes (and settles) the
/// handlings in flight. Deliveries not started are left to the server,
/// which hands them to another process.
pub(crate) async fn run(
    scope: Arc<HandlerScope>,
    mut deliveries: BoxStream<'static, Delivery>,
    mut shutdown: watch::Receiver<bool>,
) {
    let concurrency = scope.handler.def.options.concurrency.max(1) as usize;
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut running = JoinSet::new();
    loop {
        let permit = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            permit = Arc::clone(&permits).acquire_owned() => permit,
        };
        let Ok(permit) = permit else { break };
        let next = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            next = deliveries.next() => next,
        };
        let Some(delivery) = next else { break };
        let scope = Arc::clone(&scope);
        running.spawn(async move {
            handle(&scope, delivery).await;
            drop(permit);
        });
        while running.try_join_next().is_some() {}
    }
    // A delivery already pulled but not started goes back to the server
    // now, for another process, rather than after the ack wait; only once
    // the stream is closed, or this process's consumer could take it again
    // at once, and again.
    let mut unstarted = Vec::new();
    while let Some(Some(waiting)) = deliveries.next().now_or_never() {
        unstarted.push(waiting);
    }
    drop(deliveries);
    for waiting in unstarted {
        settle(&waiting.envelope, waiting.ack.hand_back().await);
    }
    while running.join_next().await.is_some() {}
}

/// One attempt at one delivery, settled with the server.
async fn handle(scope: &Arc<HandlerScope>, delivery: Delivery) {
    let handler = &*scope.handler;
    let Delivery {
        envelope: env,
        unreadable,
        attempt,
        progress_every,
        ack,
    } = delivery;
    // The consumer's filter may be wider than the handler's event type.
    if !handler.topics.contains(&env.topic()) {
        settle(&env, ack.ack().await);
        return;
    }
    let attempts = handler.retries.saturating_add(1);
    let outcome = if let Some(reason) = unreadable {
        Err(HandlingError::Decode(CodecError::Decode {
            topic: env.topic().to_owned(),
            event: handler.def.event,
            reason,
        }))
    } else if attempt > attempts {
        // Buried before, but the process stopped before telling the
        // server; burying again finds the same dead letter.
        Err(HandlingError::Failed(
            format!("still failing after {attempts} attempts").into(),
        ))
    } else {
        let started = scope.core.metrics.then(std::time::Instant::now);
        let outcome = with_progress(
            progress_every,
            ack.as_ref(),
            attempt::attempt_once(scope, &env, attempt, None),
        )
        .await;
        if let Some(started) = started {
            metrics::handled(env.topic(), &handler.name, started.elapsed());
        }
        outcome
    };
    let error = match outcome {
        Ok(()) => {
            attempt::succeeded(scope, &env);
            settle(&env, ack.ack().await);
            return;
        }
        Err(error) => error,
    };
    // The server waits out the delay, so a crash meanwhile loses no retry.
    if let Some(delay) = attempt::failed(scope, &env, &error, attempt, attempts) {
        settle(&env, ack.retry_after(delay).await);
        return;
    }
    // Settled only once the dead letter is stored: a crash in between
    // brings the event back, and burying it again finds the same one.
    if dead_letter::bury(&scope.core, handler, &env, &error, attempt.min(attempts)).await {
        settle(&env, ack.give_up().await);
    } else {
        settle(&env, ack.retry_after(handler.backoff.delay(attempt)).await);
    }
}

/// Runs `work`, telling the server every `every` that it is still going.
async fn with_progress<T>(
    every: Duration,
    ack: &dyn Acknowledge,
    work: impl Future<Output = T>,
) -> T {
    let mut work = std::pin::pin!(work);
    // Most handlings finish without waiting on anything: no timer for them.
    if let Some(out) = work.as_mut().now_or_never() {
        return out;
    }
    let every = every.max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = ticker.tick() => {
                if let Err(e) = ack.in_progress().await {
                    tracing::warn!(error = %e, "could not signal progress");
                }
            }
        }
    }
}

fn settle(env: &crate::envelope::RawEnvelope, result: crate::error::Result<()>) {
    if let Err(e) = result {
        tracing::warn!(
            topic = env.topic(), seq = env.seq(), error = %e,
            "could not settle a delivery; the server will deliver it again"
        );
    }
}

/// The one pattern a handler's consumer filters on (NATS 2.9 takes one
/// filter per consumer): the handler's own pattern, or the narrowest
/// pattern covering its event type's topics.
pub(crate) fn filter_for(def: &crate::handler::HandlerDef) -> String {
    if let Some(pattern) = &def.pattern {
        return pattern.to_string();
    }
    covering_pattern(def.topics)
}

fn covering_pattern(topics: &[&str]) -> String {
    let split: Vec<Vec<&str>> = topics.iter().map(|t| t.split('.').collect()).collect();
    let Some(first) = split.first() else {
        return ">".to_owned();
    };
    if split.iter().all(|t| t.len() == first.len()) {
        let tokens: Vec<&str> = (0..first.len())
            .map(|i| {
                if split.iter().all(|t| t[i] == first[i]) {
                    first[i]
                } else {
                    "*"
                }
            })
            .collect();
        return tokens.join(".");
    }
    let common = (0..)
        .take_while(|&i| split.iter().all(|t| i + 1 < t.len() && t[i] == first[i]))
        .count();
    let mut tokens = first[..common].to_vec();
    tokens.push(">");
    tokens.join(".")
}

#[cfg(test)]
mod tests {
    use super::covering_pattern;

    #[test]
    fn the_covering_pattern_is_the_narrowest_single_one() {
        assert_eq!(covering_pattern(&["order.placed"]), "order.placed");
        assert_eq!(
            covering_pattern(&["order.placed", "order.cancelled"]),
            "order.*"
        );
        assert_eq!(covering_pattern(&["a.b.c", "a.x.c"]), "a.*.c");
        assert_eq!(
            covering_pattern(&["order.placed", "order.item.added"]),
            "order.>"
        );
        assert_eq!(
            covering_pattern(&["order.placed", "shipping.sent.late"]),
            ">"
        );
        for (topics, pattern) in [
            (&["order.placed", "order.item.added"][..], "order.>"),
            (&["a.b.c", "a.x.c"][..], "a.*.c"),
        ] {
            assert!(topics.iter().all(|t| eventbus_topic::matches(pattern, t)));
        }
    }
}
