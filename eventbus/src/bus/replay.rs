//! `bus.replay()`: history delivered again into handlers, or into a function.
//!
//! Replayed envelopes carry the header `replay: true` (see
//! [`Context::is_replay`](crate::Context::is_replay)); handlers declared with
//! `replay = false` are left out. A replay calls handlers directly, one
//! event at a time in seq order, with the handlers' retry settings; it does
//! not go through their live feeds, so live traffic is not held up behind it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::history::HistoryQuery;
use crate::delivery::{self, Core, HandlerRuntime, HandlerScope, Mode};
use crate::envelope::RawEnvelope;
use crate::error::{Error, Result};
use crate::future::BoxStream;

/// A replay in the making; `run().await` performs it.
///
/// # Examples
///
/// ```
/// # use eventbus::prelude::*;
/// # async fn run(bus: Bus, t0: chrono::DateTime<chrono::Utc>) -> eventbus::Result<()> {
/// let report = bus.replay().topic("order.>").since(t0).to_handler("billing").speed(10.0).run().await?;
/// println!("replayed {} events, {} handlings failed", report.events, report.failed);
/// # Ok(()) }
/// ```
#[must_use = "a replay does nothing until `.run().await`"]
pub struct Replay {
    core: Arc<Core>,
    history: HistoryQuery,
    handler: Option<String>,
    speed: Option<f64>,
    error: Option<Error>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("history", &self.history)
            .field("handler", &self.handler)
            .field("speed", &self.speed)
            .finish_non_exhaustive()
    }
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Events read from history.
    pub events: u64,
    /// Handlings that succeeded.
    pub delivered: u64,
    /// Handlings that failed after their retries.
    pub failed: u64,
}

impl Replay {
    pub(crate) fn new(core: Arc<Core>, history: HistoryQuery) -> Self {
        Replay {
            history,
            core,
            handler: None,
            speed: None,
            error: None,
        }
    }

    /// Only topics matching `pattern`.
    pub fn topic(mut self, pattern: impl AsRef<str>) -> Self {
        self.history = self.history.topic(pattern);
        self
    }

    /// Only topics matching any of `patterns`.
    pub fn topics<I, P>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<str>,
    {
        self.history = self.history.topics(patterns);
        self
    }

    /// Only events published at or after `time`.
    pub fn since(mut self, time: DateTime<Utc>) -> Self {
        self.history = self.history.since(time);
        self
    }

    /// Only events published before `time`.
    pub fn until(mut self, time: DateTime<Utc>) -> Self {
        self.history = self.history.until(time);
        self
    }

    /// Only events after this seq.
    pub fn after_seq(mut self, seq: u64) -> Self {
        self.history = self.history.after_seq(seq);
        self
    }

    /// Only into the named handler (default: every handler that takes replays).
    pub fn to_handler(mut self, name: impl Into<String>) -> Self {
        self.handler = Some(name.into());
        self
    }

    /// Paces events by their original spacing divided by `factor` (2.0 is
    /// twice as fast). Without it, events go as fast as handlers take them.
    pub fn speed(mut self, factor: f64) -> Self {
        if factor.is_finite() && factor > 0.0 {
            self.speed = Some(factor);
        } else {
            self.error = Some(Error::InvalidArgument(format!(
                "replay speed must be a positive number, got {factor}"
            )));
        }
        self
    }

    /// Runs the replay to the end of the matching history.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownHandler`], a bad pattern or speed, or a store error.
    /// Handler failures are counted in the report, not returned.
    pub async fn run(self) -> Result<ReplayReport> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let targets: Vec<Arc<HandlerScope>> = self
            .targets()?
            .into_iter()
            .map(|h| HandlerScope::new(Arc::clone(&self.core), h))
            .collect();
        let mut report = ReplayReport::default();
        let mut events = Paced::new(self.history, self.speed);
        while let Some(env) = events.next().await {
            let env = env?;
            report.events += 1;
            for scope in targets
                .iter()
                .filter(|s| s.handler.topics.contains(&env.topic()) && s.handler.in_scope(&env))
            {
                match delivery::deliver(scope, env.clone(), Mode::Replay).await {
                    Ok(()) => report.delivered += 1,
                    Err(_) => report.failed += 1,
                }
            }
        }
        Ok(report)
    }

    /// Runs the replay into `f` instead of handlers, one event at a time
    /// in seq order and with the same pacing: for tools that replay
    /// history into a function. Envelopes are marked as replayed, any
    /// event type or none; an `Err` from `f` is logged and counted as a
    /// failed handling, and the replay goes on.
    ///
    /// # Errors
    ///
    /// A bad pattern or speed, a store error, or
    /// [`Error::InvalidArgument`] when [`to_handler`](Replay::to_handler)
    /// was also set.
    ///
    /// ```
    /// # use eventbus::prelude::*;
    /// # async fn run(bus: Bus) -> eventbus::Result<()> {
    /// let mut totals = std::collections::HashMap::<String, u64>::new();
    /// let report = bus
    ///     .replay()
    ///     .topics(["order.*", "refund.>"])
    ///     .run_with(|env| {
    ///         *totals.entry(env.topic().to_owned()).or_default() += 1;
    ///         async { Ok::<(), std::convert::Infallible>(()) }
    ///     })
    ///     .await?;
    /// assert_eq!(report.events, totals.values().sum::<u64>());
    /// # Ok(()) }
    /// ```
    pub async fn run_with<F, Fut, E>(self, mut f: F) -> Result<ReplayReport>
    where
        F: FnMut(RawEnvelope) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
        E: std::fmt::Display,
    {
        if let Some(e) = self.error {
            return Err(e);
        }
        if let Some(name) = &self.handler {
            return Err(Error::InvalidArgument(format!(
                "a replay into a function does not also go to handler `{name}`; \
                 drop `.to_handler(..)` or call `.run()`"
            )));
        }
        let mut report = ReplayReport::default();
        let mut events = Paced::new(self.history, self.speed);
        while let Some(env) = events.next().await {
            let env = env?;
            report.events += 1;
            let (seq, topic) = (env.seq(), env.topic().to_owned());
            match f(env).await {
                Ok(()) => report.delivered += 1,
                Err(error) => {
                    tracing::warn!(seq, topic, %error, "replay function failed");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    fn targets(&self) -> Result<Vec<Arc<HandlerRuntime>>> {
        let all = &self.core.handlers;
        match &self.handler {
            None => Ok(all
                .iter()
                .filter(|h| h.def.options.replay)
                .cloned()
                .collect()),
            Some(name) => match all.iter().find(|h| &*h.name == name.as_str()) {
                Some(h) if !h.def.options.replay => Err(Error::InvalidArgument(format!(
                    "handler `{name}` is declared with `replay = false`, so replays never reach it"
                ))),
                Some(h) => Ok(vec![Arc::clone(h)]),
                None => Err(Error::UnknownHandler {
                    name: name.clone(),
                    known: all.iter().map(|h| h.name.to_string()).collect(),
                }),
            },
        }
    }
}

/// The history of a replay, each event released after its original gap
/// to the one before divided by the speed.
struct Paced {
    events: BoxStream<'static, Result<RawEnvelope>>,
    speed: Option<f64>,
    previous: Option<DateTime<Utc>>,
}

impl Paced {
    fn new(history: HistoryQuery, speed: Option<f64>) -> Self {
        Paced {
            events: history.replayed().stream(),
            speed,
            previous: None,
        }
    }

    async fn next(&mut self) -> Option<Result<RawEnvelope>> {
        let env = match self.events.next().await? {
            Ok(env) => env,
            Err(e) => return Some(Err(e)),
        };
        if let (Some(speed), Some(prev)) = (self.speed, self.previous) {
            let gap = (env.time() - prev).to_std().unwrap_or(Duration::ZERO);
            tokio::time::sleep(gap.div_f64(speed)).await;
        }
        self.previous = Some(env.time());
        Some(Ok(env))
    }
}
