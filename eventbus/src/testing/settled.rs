//! [`TestBus::settled`]: waiting until everything published is handled or
//! dead-lettered, on the delivery runtime's own account of what is in
//! flight, and what it says when that does not happen in time.

use std::fmt;
use std::time::Duration;

use super::test_bus::TestBus;
use crate::delivery::Phase;

/// How long [`TestBus::settled`] waits.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

impl TestBus {
    /// Waits until the bus is settled: every event published so far is
    /// handled or dead-lettered by each of its handlers, including the
    /// events handlers published in turn, retries waiting out their
    /// backoff, dead letters' announcements and scheduled events that are
    /// due; for at most 60 s (of tokio's clock, so virtual under paused
    /// time). An event scheduled for later does not hold it up.
    ///
    /// It waits on the delivery runtime's count of what is in flight,
    /// never by polling.
    ///
    /// # Errors
    ///
    /// [`NotSettled`], listing what is still in flight.
    pub async fn settled(&self) -> Result<(), NotSettled> {
        self.settled_within(SETTLE_TIMEOUT).await
    }

    /// [`settled`](Self::settled), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`NotSettled`], listing what is still in flight.
    pub async fn settled_within(&self, timeout: Duration) -> Result<(), NotSettled> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.tracker.idle_changed();
            tokio::pin!(changed);
            // Registered before looking, so a change in between still wakes it.
            changed.as_mut().enable();
            // Due events first: once the scheduler has taken them out of
            // the store, the tracker counts them until they are handled.
            let due = self.due_scheduled().await;
            if due == 0 && self.tracker.is_idle() {
                return Ok(());
            }
            if due > 0 {
                // The scheduler may be asleep until its next poll.
                self.core().scheduled.notify_one();
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(self.not_settled(timeout).await);
            }
        }
    }

    /// How many scheduled events are due and not yet published.
    async fn due_scheduled(&self) -> usize {
        let core = self.core();
        let Some(schedules) = core.store.as_schedules() else {
            return 0;
        };
        let now = core.clock.now();
        match schedules.next_due().await {
            Ok(Some(due)) if due <= now => schedules
                .scheduled()
                .await
                .map_or(1, |all| all.iter().filter(|s| s.due <= now).count().max(1)),
            _ => 0,
        }
    }

    async fn not_settled(&self, waited: Duration) -> NotSettled {
        let (pending, holds) = self.tracker.in_flight();
        let handlers = &self.core().handlers;
        let now = tokio::time::Instant::now();
        let in_flight = pending
            .into_iter()
            .map(|p| InFlight {
                handler: handlers
                    .get(p.handler)
                    .map_or_else(|| format!("#{}", p.handler), |h| h.name.to_string()),
                topic: p.envelope.topic().to_owned(),
                event_id: p.envelope.id().to_string(),
                seq: p.envelope.seq(),
                correlation_id: p.envelope.correlation_id().map(str::to_owned),
                state: match p.phase {
                    Phase::Queued => InFlightState::Queued,
                    Phase::Running { attempt } => InFlightState::Running { attempt },
                    Phase::Backoff { attempt, until } => InFlightState::Backoff {
                        failed_attempt: attempt,
                        retry_in: until.saturating_duration_since(now),
                    },
                },
            })
            .collect();
        let mut other: Vec<String> = holds.into_iter().map(str::to_owned).collect();
        match self.due_scheduled().await {
            0 => {}
            1 => other.push("1 scheduled event is due and not yet published".to_owned()),
            n => other.push(format!(
                "{n} scheduled events are due and not yet published"
            )),
        }
        NotSettled {
            waited,
            in_flight,
            other,
        }
    }
}

/// [`TestBus::settled`] timed out; the message lists what is in flight.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotSettled {
    /// How long it waited.
    pub waited: Duration,
    /// The events handlers are not done with, by handler, then seq.
    pub in_flight: Vec<InFlight>,
    /// Work in flight that is no handling, such as scheduled events that
    /// are due, or a dead letter being announced.
    pub other: Vec<String>,
}

/// One event a handler is not done with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InFlight {
    /// The handler's name.
    pub handler: String,
    /// The event's topic.
    pub topic: String,
    /// The event's id.
    pub event_id: String,
    /// The event's seq.
    pub seq: u64,
    /// The event's correlation id.
    pub correlation_id: Option<String>,
    /// Where the handler is with it.
    pub state: InFlightState,
}

/// Where a handler is with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InFlightState {
    /// Waiting for the handler to get to it.
    Queued,
    /// The handler runs attempt number `attempt` (from 1).
    Running {
        /// The attempt running.
        attempt: u32,
    },
    /// Attempt `failed_attempt` failed; the next starts in `retry_in`.
    Backoff {
        /// The attempt that failed.
        failed_attempt: u32,
        /// How long until the next attempt.
        retry_in: Duration,
    },
}

impl fmt::Display for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (seq {}, id {}",
            self.handler, self.topic, self.seq, self.event_id
        )?;
        if let Some(correlation) = &self.correlation_id {
            write!(f, ", correlation {correlation}")?;
        }
        match self.state {
            InFlightState::Queued => write!(f, "), queued"),
            InFlightState::Running { attempt } => write!(f, "), attempt {attempt} running"),
            InFlightState::Backoff {
                failed_attempt,
                retry_in,
            } => write!(
                f,
                "), attempt {failed_attempt} failed, attempt {} in {retry_in:?}",
                failed_attempt + 1
            ),
        }
    }
}

impl fmt::Display for NotSettled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the bus did not settle within {:?}; still in flight:",
            self.waited
        )?;
        for item in &self.in_flight {
            write!(f, "\n  {item}")?;
        }
        for item in &self.other {
            write!(f, "\n  {item}")?;
        }
        Ok(())
    }
}

/// The message, as `unwrap()` prints it.
impl fmt::Debug for NotSettled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for NotSettled {}
