//! Assertions on published events: [`TestBus::expect`], which waits, and
//! [`assert_published!`](crate::assert_published), which looks at what is
//! recorded now. On failure both print what was expected and every event
//! seen, in order, with topics, seqs and correlation ids.

use std::fmt::{Debug, Write as _};
use std::future::IntoFuture;
use std::time::Duration;

use super::recorded::typed;
use super::test_bus::TestBus;
use crate::envelope::{Envelope, RawEnvelope};
use crate::event::Event;
use crate::future::BoxFuture;

/// How long [`Expect`] waits unless told otherwise.
const EXPECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What [`assert_published!`](crate::assert_published) expands to.
#[doc(hidden)]
#[track_caller]
pub fn assert_published<E: Event + Debug>(
    bus: &TestBus,
    pattern: &str,
    matches: impl Fn(&E) -> bool,
) -> Envelope<E> {
    let all = bus.recorded();
    match typed::<E>(&all)
        .into_iter()
        .find(|env| matches(env.event()))
    {
        Some(found) => found,
        None => panic!(
            "{}",
            report::<E>(&all, &format!("matching `{pattern}`"), None)
        ),
    }
}

impl TestBus {
    /// Waits for an event of type `E` to be published, one that matches
    /// [`Expect::matching`] if given, for at most [`Expect::within`] (10 s
    /// unless set); awaiting it gives the first such event. Events
    /// published before the call count.
    ///
    /// ```
    /// # use eventbus::prelude::*;
    /// # use eventbus::testing::TestBus;
    /// # use std::time::Duration;
    /// # #[derive(Event, Clone, Debug)]
    /// # #[event(topic = "invoice.sent")]
    /// # struct InvoiceSent { id: u64 }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> eventbus::Result<()> {
    /// # let bus = TestBus::new().await?;
    /// # bus.publish(InvoiceSent { id: 7 }).await?;
    /// let sent = bus
    ///     .expect::<InvoiceSent>()
    ///     .matching(|e| e.id == 7)
    ///     .within(Duration::from_secs(1))
    ///     .await;
    /// assert_eq!(sent.topic(), "invoice.sent");
    /// # Ok(())
    /// # }
    /// ```
    pub fn expect<E: Event + Debug>(&self) -> Expect<'_, E> {
        Expect {
            bus: self,
            matcher: None,
            within: EXPECT_TIMEOUT,
        }
    }
}

/// The predicate of [`Expect::matching`].
type Matcher<'a, E> = Box<dyn Fn(&E) -> bool + Send + Sync + 'a>;

/// An expected event, from [`TestBus::expect`]: `.await` it.
///
/// # Panics
///
/// Awaiting it panics when no such event is published in time, printing
/// what was expected and every event published, in order.
#[must_use = "an expectation checks nothing until it is awaited"]
pub struct Expect<'a, E> {
    bus: &'a TestBus,
    matcher: Option<Matcher<'a, E>>,
    within: Duration,
}

impl<E> std::fmt::Debug for Expect<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Expect")
            .field("event", &std::any::type_name::<E>())
            .field("matching", &self.matcher.is_some())
            .field("within", &self.within)
            .finish_non_exhaustive()
    }
}

impl<'a, E: Event + Debug> Expect<'a, E> {
    /// Only events for which `matcher` holds count.
    pub fn matching(mut self, matcher: impl Fn(&E) -> bool + Send + Sync + 'a) -> Self {
        self.matcher = Some(Box::new(matcher));
        self
    }

    /// How long to wait (tokio's clock: virtual under paused time).
    pub fn within(mut self, timeout: Duration) -> Self {
        self.within = timeout;
        self
    }

    fn find(&self, all: &[RawEnvelope]) -> Option<Envelope<E>> {
        typed::<E>(all)
            .into_iter()
            .find(|env| self.matcher.as_ref().is_none_or(|m| m(env.event())))
    }
}

impl<'a, E: Event + Debug> IntoFuture for Expect<'a, E> {
    type Output = Envelope<E>;
    type IntoFuture = BoxFuture<'a, Envelope<E>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let tracker = &self.bus.tracker;
            let deadline = tokio::time::Instant::now() + self.within;
            loop {
                let routed = tracker.routed_changed();
                tokio::pin!(routed);
                // Registered before looking, so an event routed in between still wakes it.
                routed.as_mut().enable();
                if let Some(found) = self.find(&self.bus.recorded()) {
                    return found;
                }
                if tokio::time::timeout_at(deadline, routed).await.is_err() {
                    let what = match self.matcher {
                        Some(_) => "matching the predicate given to `matching`",
                        None => "of any value",
                    };
                    panic!(
                        "{}",
                        report::<E>(&self.bus.recorded(), what, Some(self.within))
                    );
                }
            }
        })
    }
}

/// What a failed expectation prints: what was expected, then every event
/// published, in order; `E`s shown as values, the others as their JSON data.
fn report<E: Event + Debug>(all: &[RawEnvelope], what: &str, within: Option<Duration>) -> String {
    let name = E::NAME;
    let mut out = format!("expected a published `{name}` {what}");
    if let Some(within) = within {
        let _ = write!(out, " within {within:?}");
    }
    let of_type = all
        .iter()
        .filter(|env| E::TOPICS.contains(&env.topic()))
        .count();
    let _ = write!(
        out,
        ", but none was.\npublished, in order ({} events, {of_type} of them `{name}`):",
        all.len()
    );
    if all.is_empty() {
        out.push_str("\n  (nothing)");
    }
    let width = all.iter().map(|env| env.topic().len()).max().unwrap_or(0);
    for (n, env) in all.iter().enumerate() {
        let shown = match env.decode::<E>() {
            Ok(typed) if E::TOPICS.contains(&env.topic()) => format!("{:?}", typed.event()),
            _ => env
                .data_json()
                .map_or_else(|e| format!("<{e}>"), |json| json.get().to_owned()),
        };
        let _ = write!(
            out,
            "\n  {:>2}. {:<width$}  seq {:<3} correlation {:<10} {shown}",
            n + 1,
            env.topic(),
            env.seq(),
            env.correlation_id().unwrap_or("-"),
        );
    }
    out
}
