//! Dead letters from the bus's side: burying what a handler gave up on,
//! announcing it as an `eventbus.dead_letter` event, and listing, retrying
//! and purging them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

use crate::bus::Bus;
use crate::delivery::{self, HandlerRuntime, HandlerScope, Mode};
use crate::envelope::RawEnvelope;
use crate::error::{Error, Result};
use crate::event::{CodecError, Event};
use crate::handler::HandlingError;
use crate::store::{DeadLetter, DeadLetterQuery, NewDeadLetter};

/// Published on `eventbus.dead_letter` whenever a handler gives up on an
/// event; handle it like any other event to alert or compensate.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeadLettered {
    /// The dead letter's id, for `bus.dead_letters().retry(id)`.
    pub dead_letter_id: u64,
    /// The handler that gave up.
    pub handler: String,
    /// The failed event's id.
    pub event_id: String,
    /// The failed event's seq.
    pub seq: u64,
    /// The failed event's topic.
    pub topic: String,
    /// The last error.
    pub error: String,
    /// How many attempts were made.
    pub attempts: u32,
}

// Written by hand rather than derived so that it can carry
// `do_not_recommend`: as the one `Event` in this crate, rustc would otherwise
// suggest it to every user who forgot `#[derive(Event)]` on their own type.
#[diagnostic::do_not_recommend]
impl Event for DeadLettered {
    const NAME: &'static str = "eventbus.DeadLettered";
    const VERSION: u32 = 1;
    const TOPICS: &'static [&'static str] = &["eventbus.dead_letter"];

    fn topic(&self) -> &'static str {
        Self::TOPICS[0]
    }

    fn encode_data(&self) -> std::result::Result<Vec<u8>, CodecError> {
        crate::__private::encode_json::<Self, _>(self)
    }

    fn decode_data(topic: &str, data: &[u8]) -> std::result::Result<Self, CodecError> {
        if topic != Self::TOPICS[0] {
            return Err(CodecError::unknown_topic::<Self>(topic));
        }
        crate::__private::decode_json::<Self, _>(topic, data, |de| {
            serde::Deserialize::deserialize(de)
        })
    }
}

/// Stores the envelope as a dead letter of `handler` and announces it;
/// false when the store could not take it.
pub(crate) async fn bury(
    bus: &Bus,
    handler: &HandlerRuntime,
    env: &RawEnvelope,
    error: &HandlingError,
    attempts: u32,
) -> bool {
    let dead = NewDeadLetter {
        handler: handler.name.to_string(),
        envelope: env.clone(),
        error: error.to_string(),
        attempts,
    };
    let id = match bus.store().add_dead_letter(dead).await {
        Ok(id) => id,
        Err(store_error) => {
            tracing::error!(
                handler = %handler.name, topic = env.topic(), seq = env.seq(), %error, %store_error,
                "handler gave up and the dead letter could not be stored"
            );
            return false;
        }
    };
    handler
        .counters
        .dead_lettered
        .fetch_add(1, Ordering::Relaxed);
    if bus.metrics_on() {
        crate::metrics::outcome(
            env.topic(),
            &handler.name,
            crate::metrics::Outcome::DeadLettered,
        );
    }
    tracing::error!(
        handler = %handler.name, topic = env.topic(), seq = env.seq(), attempts, %error, dead_letter_id = id,
        "handler gave up; the event is in the dead letters"
    );
    // Announcing a failed announcement would never end.
    if env.topic() == DeadLettered::TOPICS[0] {
        return true;
    }
    let notice = DeadLettered {
        dead_letter_id: id,
        handler: handler.name.to_string(),
        event_id: env.id().to_string(),
        seq: env.seq(),
        topic: env.topic().to_owned(),
        error: error.to_string(),
        attempts,
    };
    let (bus, cause, correlation) = (
        bus.clone(),
        env.id().to_string(),
        env.correlation_id().map(str::to_owned),
    );
    // Published from its own task: the handler's worker must not wait on
    // feeds (possibly its own) while it is the one that drains them.
    tokio::spawn(async move {
        let publish = bus.publish(notice).causation_id(cause);
        let publish = match correlation {
            Some(c) => publish.correlation_id(c),
            None => publish,
        };
        if let Err(e) = publish.await {
            tracing::warn!(error = %e, "could not publish eventbus.dead_letter");
        }
    });
    true
}

/// The dead letters of a bus: list, retry, purge. Get it from
/// [`Bus::dead_letters`].
#[derive(Clone)]
pub struct DeadLetters {
    bus: Bus,
}

impl DeadLetters {
    pub(crate) fn new(bus: Bus) -> Self {
        DeadLetters { bus }
    }

    /// Lists dead letters, oldest first.
    ///
    /// # Errors
    ///
    /// A store error.
    pub async fn list(&self, query: DeadLetterQuery) -> Result<Vec<DeadLetter>> {
        self.bus.store().dead_letters(query).await
    }

    /// Delivers a dead letter to its handler again, in this process. On
    /// success the dead letter is removed and `true` returned; on failure
    /// it stays with the new error and `false` is returned. The handler's
    /// own checkpoint never moves.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when no dead letter has that id,
    /// [`Error::UnknownHandler`] when this bus does not run its handler,
    /// or a store error.
    pub async fn retry(&self, id: u64) -> Result<bool> {
        let Some(dead) = self.list(DeadLetterQuery::id(id)).await?.into_iter().next() else {
            return Err(Error::Config(format!("there is no dead letter {id}")));
        };
        let handlers = self.bus.handler_runtimes();
        let Some(handler) = handlers.iter().find(|h| *h.name == *dead.handler) else {
            return Err(Error::UnknownHandler {
                name: dead.handler,
                known: handlers.iter().map(|h| h.name.to_string()).collect(),
            });
        };
        let scope = HandlerScope::new(self.bus.clone(), Arc::clone(handler));
        match delivery::deliver(&scope, dead.envelope, Mode::DeadLetterRetry).await {
            Ok(()) => {
                self.bus.store().remove_dead_letter(id).await?;
                Ok(true)
            }
            Err(failure) => {
                let store = self.bus.store();
                store
                    .record_retry_failure(id, failure.error.to_string(), failure.attempts)
                    .await?;
                Ok(false)
            }
        }
    }

    /// Deletes the dead letters of one handler, or all of them.
    ///
    /// # Errors
    ///
    /// A store error.
    pub async fn purge(&self, handler: Option<&str>) -> Result<u64> {
        self.bus.store().purge_dead_letters(handler).await
    }
}

/// Retries the dead letters that someone (such as `eventbus dlq retry` in
/// another process) marked, for the handlers this bus runs, until shutdown.
pub(crate) async fn retry_requested(
    bus: Bus,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let marked = match bus
            .store()
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
            bus.handler_runtimes()
                .iter()
                .any(|h| *h.name == *name && *h.lease.borrow())
        };
        for dead in marked.into_iter().filter(|d| runs(&d.handler)) {
            match DeadLetters::new(bus.clone()).retry(dead.id).await {
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
