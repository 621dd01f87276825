//! `SagaContext`: what a saga step can do besides changing its state. Its
//! effects are kept, not done: they happen once the state they belong to
//! is saved.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::envelope::{Draft, EventId, HANDLER_HEADER, RawEnvelope, SCOPE_HEADER};
use crate::event::Event;

/// One thing a step asked for, done after its state is saved.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Publish this event.
    Publish(Draft),
    /// Publish this event when due.
    Schedule(Draft, DateTime<Utc>),
    /// Cancel the scheduled event with this id.
    Cancel(String),
}

/// What a saga step can do besides changing its state: send events,
/// schedule and cancel timeouts, and complete the instance.
///
/// Nothing happens while the step runs. Once the state is saved, the events
/// are published (with the instance's correlation id and the handled event
/// as their cause), the timers set and cancelled. A step that runs again
/// (after a conflict with another step of the instance, or a crash) sends
/// events with the same ids, which the store keeps once.
#[derive(Debug)]
pub struct SagaContext {
    saga: &'static str,
    key: String,
    correlation_id: String,
    cause: RawEnvelope,
    source: Arc<str>,
    now: DateTime<Utc>,
    pub(crate) effects: Vec<Effect>,
    pub(crate) completed: bool,
}

impl SagaContext {
    pub(crate) fn new(
        saga: &'static str,
        key: String,
        correlation_id: String,
        cause: RawEnvelope,
        source: Arc<str>,
        now: DateTime<Utc>,
    ) -> Self {
        SagaContext {
            saga,
            key,
            correlation_id,
            cause,
            source,
            now,
            effects: Vec::new(),
            completed: false,
        }
    }

    /// The instance's correlation value (its key), as text.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The correlation id of the instance: the starting event's (or its id
    /// when it had none). Every event the saga sends carries it.
    pub fn correlation_id(&self) -> &str {
        &self.correlation_id
    }

    /// The event this step handles.
    pub fn event(&self) -> &RawEnvelope {
        &self.cause
    }

    /// The time of this step: now, or the test clock's now under
    /// `eventbus::testing`.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Sends `event` once the step's state is saved; returns its id.
    pub fn send<E: Event>(&mut self, event: E) -> EventId {
        let draft = self.draft(event);
        let id = draft.id().clone();
        self.effects.push(Effect::Publish(draft));
        id
    }

    /// Publishes `event` `delay` after this step (a timeout or a
    /// reminder); returns its id, for [`SagaContext::cancel`]. Completing
    /// the instance cancels the timers it has not seen fire.
    pub fn schedule<E: Event>(&mut self, event: E, delay: Duration) -> EventId {
        let due = self.now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        self.schedule_at(event, due)
    }

    /// Publishes `event` at `due`; returns its id.
    pub fn schedule_at<E: Event>(&mut self, event: E, due: DateTime<Utc>) -> EventId {
        let mut draft = self.draft(event);
        draft.meta.time = due;
        let id = draft.id().clone();
        self.effects.push(Effect::Schedule(draft, due));
        id
    }

    /// Cancels a scheduled event this instance set.
    pub fn cancel(&mut self, id: &EventId) {
        self.effects.push(Effect::Cancel(id.to_string()));
    }

    /// Completes the instance once this step is saved: later events for
    /// its key are ignored, and its timers that have not fired are
    /// cancelled.
    pub fn complete(&mut self) {
        self.completed = true;
    }

    /// Whether [`SagaContext::complete`] was called in this step.
    pub fn is_completed(&self) -> bool {
        self.completed
    }

    /// A draft with an id derived from the saga, the instance, the handled
    /// event and the draft's place in the step, so the same step makes the
    /// same ids each time it runs.
    fn draft<E: Event>(&self, event: E) -> Draft {
        let mut draft = Draft::new(event, Arc::clone(&self.source));
        let name = format!(
            "{}\n{}\n{}\n{}",
            self.saga,
            self.key,
            self.cause.id(),
            self.effects.len()
        );
        draft.meta.id = EventId::derived(&name);
        draft.meta.correlation_id = Some(self.correlation_id.clone());
        draft.meta.causation_id = Some(self.cause.id().to_string());
        draft
            .meta
            .headers
            .insert(HANDLER_HEADER.to_owned(), self.saga.into());
        if let Some(scope) = self.cause.scope() {
            draft
                .meta
                .headers
                .insert(SCOPE_HEADER.to_owned(), scope.to_owned().into());
        }
        draft
    }
}
