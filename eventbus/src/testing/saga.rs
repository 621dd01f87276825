//! Given/when/then for a saga's steps: one instance's state built from
//! given events, one event handled, and what the step sent, scheduled and
//! whether it completed the instance compared with what the test expects.
//! No bus and no store: a step is a function of the state and the event,
//! and its effects are values until the runtime does them.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::envelope::{Draft, RawEnvelope};
use crate::event::Event;
use crate::saga::Effect;
use crate::saga::{Saga, SagaContext, StepDef, StepKind};
use crate::topic::Pattern;

/// One saga instance's state, ready for the next event.
///
/// # Examples
///
/// ```standalone_crate
/// use std::time::Duration;
/// use eventbus::prelude::*;
/// use eventbus::saga::{SagaContext, saga};
/// use eventbus::testing::SagaFixture;
///
/// #[derive(Event, Clone, Debug)]
/// #[event(namespace = "order")]
/// enum OrderEvent {
///     Placed { order_id: u64 },
///     Paid { order_id: u64 },
///     Reminder { order_id: u64 },
///     Confirmed { order_id: u64 },
/// }
///
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Checkout { paid: bool }
///
/// #[saga(key = "order_id")]
/// impl Checkout {
///     #[start(topic = "order.placed")]
///     fn placed(&mut self, ev: &OrderEvent, saga: &mut SagaContext) {
///         let OrderEvent::Placed { order_id } = *ev else { return };
///         saga.schedule(OrderEvent::Reminder { order_id }, Duration::from_secs(3600));
///     }
///
///     #[on(topic = "order.paid")]
///     fn paid(&mut self, ev: &OrderEvent, saga: &mut SagaContext) {
///         let OrderEvent::Paid { order_id } = *ev else { return };
///         self.paid = true;
///         saga.send(OrderEvent::Confirmed { order_id });
///         saga.complete();
///     }
/// }
///
/// SagaFixture::<Checkout>::new()
///     .when(OrderEvent::Placed { order_id: 7 })
///     .then_sent::<OrderEvent>([])
///     .and_scheduled([(OrderEvent::Reminder { order_id: 7 }, Duration::from_secs(3600))]);
/// let outcome = SagaFixture::<Checkout>::new()
///     .given([OrderEvent::Placed { order_id: 7 }])
///     .when(OrderEvent::Paid { order_id: 7 })
///     .then_sent([OrderEvent::Confirmed { order_id: 7 }])
///     .and_completed();
/// assert!(outcome.state().paid);
/// ```
pub struct SagaFixture<S: Saga> {
    state: Option<S>,
    open: bool,
    now: DateTime<Utc>,
    source: Arc<str>,
    seq: u64,
}

impl<S: Saga> std::fmt::Debug for SagaFixture<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaFixture")
            .field("saga", &S::NAME)
            .field("started", &self.state.is_some())
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl<S: Saga> Default for SagaFixture<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Saga> SagaFixture<S> {
    /// No instance yet.
    pub fn new() -> Self {
        SagaFixture {
            state: None,
            open: true,
            now: Utc::now(),
            source: Arc::from("saga-fixture"),
            seq: 0,
        }
    }

    /// The instance's state so far (`None`: not started).
    pub fn state(&self) -> Option<&S> {
        self.state.as_ref()
    }

    /// Handles `events` in order, keeping only the state they leave.
    ///
    /// # Panics
    ///
    /// When a step fails: given events describe a past that happened.
    #[track_caller]
    pub fn given<E: Event>(mut self, events: impl IntoIterator<Item = E>) -> Self {
        for event in events {
            let topic = event.topic();
            let outcome = self.handle(event);
            if let Some(error) = outcome.error {
                panic!(
                    "the given event `{topic}` failed in saga {}: {error}",
                    S::NAME
                );
            }
        }
        self
    }

    /// Handles `event` and returns what its step did.
    pub fn when<E: Event>(mut self, event: E) -> SagaOutcome<S> {
        let outcome = self.handle(event);
        SagaOutcome {
            state: self.state,
            ..outcome
        }
    }

    fn handle<E: Event>(&mut self, event: E) -> SagaOutcome<S> {
        self.seq += 1;
        let draft = Draft::new(event, Arc::clone(&self.source));
        let raw = draft.seal(self.seq);
        let mut outcome = SagaOutcome {
            state: None,
            ran: None,
            sent: Vec::new(),
            scheduled: Vec::new(),
            cancelled: Vec::new(),
            completed: false,
            error: None,
        };
        let Some(step) = step_for::<S>(&raw) else {
            outcome.error = Some(format!(
                "saga {} has no step for `{}` ({})",
                S::NAME,
                raw.topic(),
                raw.event_name()
            ));
            return outcome;
        };
        let runs = match (&self.state, step.kind) {
            (None, StepKind::On) | (Some(_), StepKind::Start) => false,
            (Some(_), StepKind::On) => self.open,
            (None, StepKind::Start) => true,
        };
        if !runs {
            return outcome;
        }
        let key = match (step.key)(&raw) {
            Ok(key) => key,
            Err(e) => {
                outcome.error = Some(e.to_string());
                return outcome;
            }
        };
        let mut state = self.state.take().unwrap_or_default();
        let mut saga = SagaContext::new(
            S::NAME,
            key,
            raw.id().to_string(),
            raw.clone(),
            Arc::clone(&self.source),
            self.now,
        );
        let result = (step.run)(&mut state, &raw, &mut saga);
        outcome.ran = Some(step.method);
        match result {
            Err(e) => outcome.error = Some(e.to_string()),
            Ok(()) => {
                for effect in std::mem::take(&mut saga.effects) {
                    match effect {
                        Effect::Publish(draft) => outcome.sent.push(draft.seal(0)),
                        Effect::Schedule(draft, due) => {
                            let delay = (due - self.now).to_std().unwrap_or_default();
                            outcome.scheduled.push((draft.seal(0), delay));
                        }
                        Effect::Cancel(id) => outcome.cancelled.push(id),
                    }
                }
                outcome.completed = saga.completed;
                self.open = !saga.completed;
            }
        }
        self.state = Some(state);
        outcome
    }
}

/// The step of `S` that handles `raw`, by event type and topic.
fn step_for<S: Saga>(raw: &RawEnvelope) -> Option<&'static StepDef<S>> {
    S::STEPS.iter().find(|step| {
        step.event == raw.event_name()
            && step
                .pattern
                .is_none_or(|p| Pattern::new(p).is_ok_and(|pattern| pattern.matches(raw.topic())))
    })
}

/// What one step did, to check with `then_...` and `and_...`.
pub struct SagaOutcome<S> {
    state: Option<S>,
    /// The step's method, when one ran.
    ran: Option<&'static str>,
    sent: Vec<RawEnvelope>,
    scheduled: Vec<(RawEnvelope, Duration)>,
    cancelled: Vec<String>,
    completed: bool,
    error: Option<String>,
}

impl<S> std::fmt::Debug for SagaOutcome<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaOutcome")
            .field("ran", &self.ran)
            .field("sent", &self.sent.iter().map(describe).collect::<Vec<_>>())
            .field("completed", &self.completed)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// An event as the comparisons show it: topic and data.
fn describe(env: &RawEnvelope) -> String {
    let data = env
        .data_json()
        .map_or_else(|e| format!("<{e}>"), |raw| raw.get().to_owned());
    format!("{} {data}", env.topic())
}

fn describe_event<E: Event>(event: &E) -> String {
    let data = event.encode_data().map_or_else(
        |e| format!("<{e}>"),
        |d| String::from_utf8_lossy(&d).into_owned(),
    );
    format!("{} {data}", event.topic())
}

/// Panics with both lists, numbered, when they differ.
#[track_caller]
fn compare(what: &str, expected: &[String], seen: &[String]) {
    if expected == seen {
        return;
    }
    let mut text = format!("the step {what} other events than expected\n  expected:\n");
    for (i, e) in expected.iter().enumerate() {
        let _ = writeln!(text, "    {}. {e}", i + 1);
    }
    text.push_str("  seen:\n");
    for (i, e) in seen.iter().enumerate() {
        let _ = writeln!(text, "    {}. {e}", i + 1);
    }
    panic!("{text}");
}

impl<S> SagaOutcome<S> {
    /// The instance's state after the step (`None`: no instance).
    ///
    /// # Panics
    ///
    /// When there is no instance: the event started none.
    #[track_caller]
    pub fn state(&self) -> &S {
        self.state
            .as_ref()
            .expect("no saga instance: the event started none")
    }

    /// The method that handled the event, if one ran (a start for an
    /// existing instance, or an event for none, runs nothing).
    pub fn ran(&self) -> Option<&'static str> {
        self.ran
    }

    /// Asserts the step sent exactly `expected`, in order.
    ///
    /// # Panics
    ///
    /// When the step failed or sent other events, listing both.
    #[track_caller]
    pub fn then_sent<E: Event>(self, expected: impl IntoIterator<Item = E>) -> Self {
        self.assert_no_error();
        let expected: Vec<String> = expected.into_iter().map(|e| describe_event(&e)).collect();
        let seen: Vec<String> = self.sent.iter().map(describe).collect();
        compare("sent", &expected, &seen);
        self
    }

    /// Asserts the step scheduled exactly `expected` (each with its delay
    /// from the step), in order.
    ///
    /// # Panics
    ///
    /// When the step failed or scheduled other events, listing both.
    #[track_caller]
    pub fn and_scheduled<E: Event>(
        self,
        expected: impl IntoIterator<Item = (E, Duration)>,
    ) -> Self {
        self.assert_no_error();
        let expected: Vec<String> = expected
            .into_iter()
            .map(|(e, delay)| format!("{} after {delay:?}", describe_event(&e)))
            .collect();
        let seen: Vec<String> = self
            .scheduled
            .iter()
            .map(|(env, delay)| format!("{} after {delay:?}", describe(env)))
            .collect();
        compare("scheduled", &expected, &seen);
        self
    }

    /// Asserts the step completed the instance.
    ///
    /// # Panics
    ///
    /// When it did not.
    #[track_caller]
    pub fn and_completed(self) -> Self {
        self.assert_no_error();
        assert!(
            self.completed,
            "the step did not complete the instance: {self:?}"
        );
        self
    }

    /// Asserts the step left the instance open.
    ///
    /// # Panics
    ///
    /// When it completed it.
    #[track_caller]
    pub fn and_still_open(self) -> Self {
        self.assert_no_error();
        assert!(!self.completed, "the step completed the instance: {self:?}");
        self
    }

    /// The ids of the scheduled events the step cancelled.
    pub fn cancelled(&self) -> &[String] {
        &self.cancelled
    }

    /// Asserts the step failed and returns its error text.
    ///
    /// # Panics
    ///
    /// When it succeeded.
    #[track_caller]
    pub fn then_failed(self) -> String {
        match self.error {
            Some(error) => error,
            None => panic!("the step succeeded: {self:?}"),
        }
    }

    #[track_caller]
    fn assert_no_error(&self) {
        if let Some(error) = &self.error {
            panic!("the step failed: {error}");
        }
    }
}
