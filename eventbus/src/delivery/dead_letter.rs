//! Burying what a handler gave up on: the dead letter is stored and
//! announced as an `eventbus.dead_letter` event.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::core::{Core, HandlerRuntime};
use super::tracker::Buried;
use crate::envelope::RawEnvelope;
use crate::event::{CodecError, Event};
use crate::handler::{HandlingError, Publish};
use crate::store::NewDeadLetter;

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
    core: &Arc<Core>,
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
    let stored = match core.store.dead_letter_store() {
        Ok(store) => store.add_dead_letter(dead).await,
        Err(e) => Err(e),
    };
    let id = match stored {
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
    if core.metrics {
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
    let notice = DeadLettered {
        dead_letter_id: id,
        handler: handler.name.to_string(),
        event_id: env.id().to_string(),
        seq: env.seq(),
        topic: env.topic().to_owned(),
        error: error.to_string(),
        attempts,
    };
    if let Some(tracker) = &core.tracker {
        tracker.dead_lettered(Buried {
            id,
            handler: handler.index,
            envelope: env.clone(),
            error: notice.error.clone(),
            attempts,
        });
    }
    // Announcing a failed announcement would never end.
    if env.topic() == DeadLettered::TOPICS[0] {
        return true;
    }
    let hold = core
        .tracker
        .as_ref()
        .map(|tracker| tracker.hold("announcing a dead letter on eventbus.dead_letter"));
    let (core, cause, correlation) = (
        Arc::clone(core),
        env.id().to_string(),
        env.correlation_id().map(str::to_owned),
    );
    // Published from its own task: the handler's worker must not wait on
    // feeds (possibly its own) while it is the one that drains them.
    tokio::spawn(async move {
        let _hold = hold;
        let publish = Publish::new(&*core, notice).causation_id(cause);
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
