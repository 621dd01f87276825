//! Given/when/then for an aggregate's commands: the state folded from
//! given events, one command run on it, and the events (or the error) it
//! returned compared with what the test expects. No bus and no store: a
//! command is a pure function of the state, and so is its test.

use std::fmt::{Debug, Write as _};

use crate::aggregate::Aggregate;

/// A state built from past events, ready for one command.
///
/// # Examples
///
/// ```standalone_crate
/// use eventbus::prelude::*;
/// use eventbus::aggregate::Aggregate;
/// use eventbus::testing::AggregateFixture;
///
/// #[derive(Event, Clone, Debug, PartialEq)]
/// #[event(namespace = "door")]
/// enum DoorEvent { Opened, Closed }
///
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Door { open: bool }
///
/// impl Aggregate for Door {
///     type Event = DoorEvent;
///     fn apply(&mut self, event: &DoorEvent) {
///         self.open = matches!(event, DoorEvent::Opened);
///     }
/// }
///
/// impl Door {
///     fn close(&self) -> Result<Vec<DoorEvent>, String> {
///         if !self.open { return Err("already closed".into()); }
///         Ok(vec![DoorEvent::Closed])
///     }
/// }
///
/// AggregateFixture::<Door>::given([DoorEvent::Opened])
///     .when(Door::close)
///     .then_expect([DoorEvent::Closed]);
/// let why = AggregateFixture::<Door>::given([])
///     .when(Door::close)
///     .then_expect_error();
/// assert_eq!(why, "already closed");
/// ```
pub struct AggregateFixture<A: Aggregate> {
    state: A,
    given: Vec<A::Event>,
}

impl<A: Aggregate> AggregateFixture<A> {
    /// The state after `events`, in order (none: a new entity).
    pub fn given(events: impl IntoIterator<Item = A::Event>) -> Self {
        let given: Vec<A::Event> = events.into_iter().collect();
        let mut state = A::default();
        for event in &given {
            state.apply(event);
        }
        AggregateFixture { state, given }
    }

    /// The state the given events built.
    pub fn state(&self) -> &A {
        &self.state
    }

    /// Runs `command` on the state.
    pub fn when<E>(
        self,
        command: impl FnOnce(&A) -> Result<Vec<A::Event>, E>,
    ) -> CommandOutcome<A, E> {
        let result = command(&self.state);
        CommandOutcome {
            state: self.state,
            given: self.given,
            result,
        }
    }
}

impl<A: Aggregate> Debug for AggregateFixture<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateFixture")
            .field("given", &self.given.len())
            .finish_non_exhaustive()
    }
}

/// What a command returned, to be compared with what the test expects.
#[must_use = "an outcome asserts nothing until a `then_` method checks it"]
pub struct CommandOutcome<A: Aggregate, E> {
    state: A,
    given: Vec<A::Event>,
    result: Result<Vec<A::Event>, E>,
}

impl<A: Aggregate, E: Debug> CommandOutcome<A, E>
where
    A::Event: PartialEq + Debug,
{
    /// Asserts that the command returned exactly `expected`, in order, and
    /// returns the state with them applied.
    ///
    /// # Panics
    ///
    /// When it returned other events or an error, printing the given
    /// events, the expected ones and what came back.
    #[track_caller]
    pub fn then_expect(self, expected: impl IntoIterator<Item = A::Event>) -> A {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match self.result {
            Ok(events) if events == expected => {
                let mut state = self.state;
                for event in &events {
                    state.apply(event);
                }
                state
            }
            Ok(events) => panic!(
                "{}",
                report(
                    &self.given,
                    &expected,
                    &format!("it returned\n{}", list(&events))
                )
            ),
            Err(e) => panic!(
                "{}",
                report(&self.given, &expected, &format!("it was rejected: {e:?}"))
            ),
        }
    }

    /// Asserts that the command was rejected, and returns its error.
    ///
    /// # Panics
    ///
    /// When it returned events, printing them.
    #[track_caller]
    pub fn then_expect_error(self) -> E {
        match self.result {
            Err(e) => e,
            Ok(events) => panic!(
                "the command was expected to be rejected\n\ngiven\n{}\nbut it returned\n{}",
                list(&self.given),
                list(&events)
            ),
        }
    }
}

impl<A: Aggregate, E> Debug for CommandOutcome<A, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandOutcome")
            .field("given", &self.given.len())
            .field("accepted", &self.result.is_ok())
            .finish_non_exhaustive()
    }
}

fn report<T: Debug>(given: &[T], expected: &[T], seen: &str) -> String {
    format!(
        "the command did not return the expected events\n\ngiven\n{}\nexpected\n{}\nbut {seen}",
        list(given),
        list(expected)
    )
}

fn list<T: Debug>(events: &[T]) -> String {
    if events.is_empty() {
        return "  (no events)\n".to_owned();
    }
    let mut out = String::new();
    for (i, event) in events.iter().enumerate() {
        let _ = writeln!(out, "  {}. {event:?}", i + 1);
    }
    out
}
