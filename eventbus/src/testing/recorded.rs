//! The traffic a [`TestBus`] recorded: events published (by the test, by
//! handlers, by the scheduler), what each handler handled, and dead letters.

use super::test_bus::TestBus;
use crate::delivery::DeadLettered;
use crate::envelope::{Envelope, RawEnvelope};
use crate::event::Event;

impl TestBus {
    /// Every event published on this bus so far, of every type and scope,
    /// in the order it was routed: the test's, those handlers published in
    /// turn, and scheduled events once they were due.
    pub fn recorded(&self) -> Vec<RawEnvelope> {
        self.tracker.routed_events()
    }

    /// The events of type `E` published so far, in order (see
    /// [`recorded`](Self::recorded)).
    ///
    /// An event on one of `E`'s topics whose data does not decode as `E`
    /// (published as JSON with another shape) is left out; it is in
    /// [`recorded`](Self::recorded).
    pub fn published<E: Event + Clone>(&self) -> Vec<E> {
        self.published_envelopes::<E>()
            .iter()
            .map(|env| env.event().clone())
            .collect()
    }

    /// [`published`](Self::published) with each event's envelope: topic,
    /// ids, correlation, headers.
    pub fn published_envelopes<E: Event>(&self) -> Vec<Envelope<E>> {
        typed(&self.recorded())
    }

    /// The events the handler named `handler` handled successfully, in the
    /// order it finished them; events it dead-lettered are in
    /// [`dead_letters`](Self::dead_letters).
    ///
    /// # Panics
    ///
    /// When this bus runs no handler of that name, listing those it runs:
    /// a misspelt name would otherwise read as "handled nothing".
    pub fn handled_by(&self, handler: &str) -> Vec<RawEnvelope> {
        match self.handler_index(handler) {
            Ok(index) => self.tracker.handled_by(index),
            Err(e) => panic!("{e}"),
        }
    }

    /// The dead letters stored so far, in order: handler, event, topic,
    /// last error and attempts. (The store's dead-letter API, to retry or
    /// purge them, is `bus.bus().dead_letters()`.)
    pub fn dead_letters(&self) -> Vec<DeadLettered> {
        let handlers = &self.core().handlers;
        self.tracker
            .dead_letters()
            .into_iter()
            .map(|dead| DeadLettered {
                dead_letter_id: dead.id,
                handler: handlers
                    .get(dead.handler)
                    .map_or_else(String::new, |h| h.name.to_string()),
                event_id: dead.envelope.id().to_string(),
                seq: dead.envelope.seq(),
                topic: dead.envelope.topic().to_owned(),
                error: dead.error,
                attempts: dead.attempts,
            })
            .collect()
    }
}

/// The envelopes of `all` that are `E`s, decoded.
pub(super) fn typed<E: Event>(all: &[RawEnvelope]) -> Vec<Envelope<E>> {
    all.iter()
        .filter(|env| E::TOPICS.contains(&env.topic()))
        .filter_map(|env| env.decode::<E>().ok())
        .collect()
}
