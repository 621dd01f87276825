//! The bus handle: cheap to clone, over a running [`Core`]: publish,
//! subscribe, history, replay, dead letters, stats and shutdown.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use super::checks::topics_matching;
use super::dead_letters::DeadLetters;
use super::history::HistoryQuery;
use super::replay::Replay;
use crate::delivery::{Core, RawSubscription, Subscription, Workers};
use crate::envelope::{Draft, RawEnvelope, SCOPE_HEADER, Scope};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::handler::{HandlerInfo, HandlerOptions, JsonEvent, Publish};
use crate::store::{Store, TopicSummary};
use crate::topic::Pattern;

/// The event bus. Cheap to clone: every clone is a handle on the same bus.
///
/// Build one with [`Bus::builder`]; it picks up every `#[handler]` linked
/// into the binary.
///
/// # Examples
///
/// ```standalone_crate
/// use eventbus::prelude::*;
///
/// #[derive(Event, Clone, Debug)]
/// #[event(topic = "entity.created")]
/// struct EntityCreated { id: String }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> eventbus::Result<()> {
/// let bus = Bus::builder().source("docs").build().await?;
/// let sent = bus.publish(EntityCreated { id: "e-1".into() })
///     .correlation_id("req-1")
///     .await?;
/// assert_eq!(sent.topic(), "entity.created");
/// assert_eq!(bus.history().topic("entity.*").fetch().await?.len(), 1);
/// bus.shutdown().await
/// # }
/// ```
#[derive(Clone)]
pub struct Bus {
    pub(super) inner: Arc<Inner>,
    /// What this handle publishes into and sees; `None`: the whole bus.
    pub(super) scope: Option<Scope>,
}

pub(super) struct Inner {
    pub(super) core: Arc<Core>,
    pub(super) shutdown: watch::Sender<bool>,
    pub(super) workers: tokio::sync::Mutex<Option<Workers>>,
    pub(super) shutdown_timeout: Duration,
}

impl Bus {
    /// Publishes an event: set metadata on the returned builder, then
    /// `.await` it. See [`Publish`].
    pub fn publish<E: Event>(&self, event: E) -> Publish<'_, E> {
        Publish::new(&*self.inner.core, event).within(self.scope_path())
    }

    /// A handle on this bus for the scope `name`, below this handle's own
    /// scope if it has one (`bus.scope("tenant-a")?.scope("eu")?` is
    /// `tenant-a/eu`; `bus.scope("tenant-a/eu")` is the same).
    ///
    /// What is published through it carries the scope (the extension
    /// attribute `scope`, stored and exported with the event, readable as
    /// [`RawEnvelope::scope`]), and so do the follow-ups its handlers
    /// publish. Its subscriptions, history and replays see only events of
    /// its scope and below, so sibling scopes never see each other's
    /// events, while the root bus, and every scope above, sees them all.
    /// Handlers are the bus's: limit one to a scope with
    /// `#[handler(scope = "tenant-a")]` or [`FnHandler::scope`](crate::FnHandler::scope).
    /// A scoped handle shares everything else with its bus (store,
    /// handlers, dead letters, shutdown).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a malformed name: names are 1 to 64
    /// ASCII letters, digits, `-`, `_` or `.`, joined by `/`.
    ///
    /// ```
    /// # use eventbus::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> eventbus::Result<()> {
    /// let bus = Bus::builder().no_linked_handlers().build().await?;
    /// let (a, b) = (bus.scope("tenant-a")?, bus.scope("tenant-b")?);
    /// a.scope("eu")?.publish_json("invoice.sent", &1).await?;
    /// b.publish_json("invoice.sent", &2).await?;
    /// assert_eq!(a.history().fetch().await?.len(), 1);    // its own and below
    /// assert_eq!(bus.history().fetch().await?.len(), 2);  // the root sees all
    /// assert_eq!(a.history().fetch().await?[0].scope(), Some("tenant-a/eu"));
    /// # bus.shutdown().await
    /// # }
    /// ```
    pub fn scope(&self, name: impl AsRef<str>) -> Result<Bus> {
        let name = name.as_ref();
        let scope = match &self.scope {
            Some(scope) => scope.child(name),
            None => Scope::new(name),
        }
        .map_err(Error::InvalidArgument)?;
        Ok(Bus {
            inner: Arc::clone(&self.inner),
            scope: Some(scope),
        })
    }

    /// This handle's scope, or `None` for the whole bus.
    pub fn current_scope(&self) -> Option<&Scope> {
        self.scope.as_ref()
    }

    fn scope_path(&self) -> Option<&str> {
        self.scope.as_ref().map(Scope::as_str)
    }

    /// Publishes JSON data on a topic chosen at run time: stored, and
    /// routed like any event to the subscriptions and handlers whose
    /// patterns match the topic (typed ones decode the data into their
    /// type). The same builder as [`Bus::publish`]: set source, subject,
    /// correlation id, idempotency key or headers, then `.await`.
    ///
    /// # Errors
    ///
    /// At `.await`: [`Error::InvalidTopic`] for a malformed topic and
    /// [`Error::InvalidArgument`] for data that does not serialize to
    /// JSON, besides those of [`Bus::publish`].
    ///
    /// ```
    /// # use eventbus::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> eventbus::Result<()> {
    /// let bus = Bus::builder().no_linked_handlers().build().await?;
    /// let topic = format!("sensor.{}", "kitchen");
    /// let stored = bus
    ///     .publish_json(topic, &serde_json::json!({ "celsius": 21.5 }))
    ///     .subject("thermometer-3")
    ///     .await?;
    /// assert_eq!(stored.topic(), "sensor.kitchen");
    /// assert_eq!(stored.data_value()?["celsius"], 21.5);
    /// # bus.shutdown().await
    /// # }
    /// ```
    pub fn publish_json(
        &self,
        topic: impl Into<String>,
        data: &impl serde::Serialize,
    ) -> Publish<'_, JsonEvent> {
        Publish::new(&*self.inner.core, JsonEvent::new(topic, data)).within(self.scope_path())
    }

    /// Stores an event that already has its id, time and metadata (what
    /// `eventbus import` does) and routes it as a publish would. An id
    /// the store already holds adds nothing and routes nothing; the stored
    /// envelope is returned either way.
    ///
    /// Through a scoped handle, an event without a scope is imported into
    /// the handle's scope, and one of a scope outside it is refused.
    ///
    /// # Errors
    ///
    /// Those of [`Bus::publish`], and [`Error::InvalidArgument`] for an
    /// event of another scope.
    pub async fn import(&self, envelope: &RawEnvelope) -> Result<RawEnvelope> {
        let mut draft = Draft::from_envelope(envelope);
        if let Some(scope) = &self.scope {
            match envelope.scope() {
                None => {
                    draft
                        .meta
                        .headers
                        .insert(SCOPE_HEADER.to_owned(), scope.as_str().into());
                }
                Some(own) if scope.contains(Some(own)) => {}
                Some(own) => {
                    return Err(Error::InvalidArgument(format!(
                        "event {} belongs to scope `{own}`, outside this bus's scope `{scope}`; \
                         import it through the root bus or a scope above it",
                        envelope.id()
                    )));
                }
            }
        }
        self.inner.core.publish(draft).await
    }

    /// An untyped stream of live events whose topic matches `pattern`, of
    /// any type or none: for tools that follow topics without knowing
    /// their types. Like [`Bus::subscribe`], it sees the events published
    /// through this bus and never slows publishers.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTopic`] for a malformed pattern.
    pub fn subscribe_raw(&self, pattern: impl AsRef<str>) -> Result<RawSubscription> {
        let pattern = Pattern::new(pattern.as_ref().to_owned())?;
        let core = &self.inner.core;
        Ok(core
            .subscribers
            .add_raw(pattern, self.scope.clone(), core.subscriber_capacity))
    }

    /// A typed stream of live events of type `E` whose topic matches
    /// `pattern` (checked here).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTopic`] for a malformed pattern and
    /// [`Error::PatternMatchesNothing`] when no topic of `E` matches it.
    pub fn subscribe<E: Event>(&self, pattern: impl AsRef<str>) -> Result<Subscription<E>> {
        let pattern = pattern.as_ref();
        let topics = topics_matching(pattern, E::NAME, E::TOPICS)?;
        let core = &self.inner.core;
        Ok(core
            .subscribers
            .add::<E>(topics, self.scope.clone(), core.subscriber_capacity))
    }

    /// How many subscriptions are live (dropped ones are gone at once).
    pub fn subscription_count(&self) -> usize {
        self.inner.core.subscribers.count()
    }

    /// A history query over the store; see [`HistoryQuery`].
    pub fn history(&self) -> HistoryQuery {
        HistoryQuery::new(Arc::clone(&self.inner.core.store), self.scope.clone())
    }

    /// Each stored topic with its event count and first and last times,
    /// sorted by topic. A scoped handle counts its scope's events by
    /// reading them, the root bus asks the store's summaries.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for a store without summaries, or a store error.
    pub async fn topics(&self) -> Result<Vec<TopicSummary>> {
        if self.scope.is_none() {
            return self.store().admin()?.topics().await;
        }
        let mut topics: BTreeMap<String, TopicSummary> = BTreeMap::new();
        let mut events = self.history().stream();
        while let Some(env) = events.next().await {
            let env = env?;
            let time = env.time();
            let summary = topics
                .entry(env.topic().to_owned())
                .or_insert_with(|| TopicSummary {
                    topic: env.topic().to_owned(),
                    count: 0,
                    first: time,
                    last: time,
                });
            summary.count += 1;
            summary.first = summary.first.min(time);
            summary.last = summary.last.max(time);
        }
        Ok(topics.into_values().collect())
    }

    /// Deletes every stored event whose topic matches `pattern` and
    /// returns how many went; handlers' checkpoints are kept. Live
    /// subscriptions and events already in handlers' feeds are not
    /// affected.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTopic`] for a malformed pattern,
    /// [`Error::InvalidArgument`] through a scoped handle (stores delete by
    /// topic, not by scope), [`Error::Unsupported`] for a store that
    /// cannot delete, or a store error.
    pub async fn clear(&self, pattern: impl AsRef<str>) -> Result<u64> {
        let pattern = Pattern::new(pattern.as_ref().to_owned())?;
        if let Some(scope) = &self.scope {
            return Err(Error::InvalidArgument(format!(
                "clearing `{pattern}` through scope `{scope}` would delete other scopes' \
                 events too; clear from the root bus"
            )));
        }
        self.store().admin()?.clear(&pattern).await
    }

    /// A replay of history into handlers; see [`Replay`].
    pub fn replay(&self) -> Replay {
        Replay::new(Arc::clone(&self.inner.core), self.history())
    }

    /// Every registered handler, sorted by name.
    pub fn handlers(&self) -> Vec<HandlerInfo> {
        self.inner
            .core
            .handlers
            .iter()
            .map(|h| HandlerInfo {
                name: h.name.to_string(),
                pattern: h.def.pattern.as_ref().map(|p| p.to_string()),
                event: h.def.event,
                topics: h.topics.clone(),
                options: HandlerOptions {
                    retry: Some(h.retries),
                    ..h.def.options.clone()
                },
                location: h.def.location.clone(),
            })
            .collect()
    }

    /// The dead letters: list, retry, purge.
    pub fn dead_letters(&self) -> DeadLetters {
        DeadLetters::new(Arc::clone(&self.inner.core))
    }

    /// Counters per handler since the bus started.
    pub fn stats(&self) -> Vec<HandlerStats> {
        self.inner
            .core
            .handlers
            .iter()
            .map(|h| HandlerStats {
                name: h.name.to_string(),
                handled: h.counters.handled.load(Ordering::Relaxed),
                failed: h.counters.failed.load(Ordering::Relaxed),
                retried: h.counters.retried.load(Ordering::Relaxed),
                panicked: h.counters.panicked.load(Ordering::Relaxed),
                dead_lettered: h.counters.dead_lettered.load(Ordering::Relaxed),
                missed: h.counters.missed.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// The CloudEvents `source` of the events this bus publishes.
    pub fn source(&self) -> &str {
        &self.inner.core.source
    }

    /// The running core, for the layers above the bus (aggregates).
    pub(crate) fn core(&self) -> &Core {
        &self.inner.core
    }

    /// The store, for operations the bus does not wrap.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.core.store
    }

    /// Stops taking new events, lets every handler finish what is queued
    /// (within the builder's shutdown timeout), then closes the store.
    /// Through a scoped handle too, this shuts the whole bus down.
    ///
    /// # Errors
    ///
    /// [`Error::ShutdownTimedOut`] naming the handlers still busy, or a
    /// store error from closing.
    pub async fn shutdown(&self) -> Result<()> {
        self.inner.core.closed.store(true, Ordering::Release);
        let _ = self.inner.shutdown.send(true);
        let workers = self.inner.workers.lock().await.take();
        let mut stuck = Vec::new();
        if let Some(workers) = workers {
            let deadline = tokio::time::Instant::now() + self.inner.shutdown_timeout;
            for (name, mut task) in workers.tasks {
                if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                    task.abort();
                    stuck.push(name.to_string());
                }
            }
            // Released once the handlers drained, so a standby elsewhere
            // never runs beside them.
            if let Some(leases) = workers.leases {
                leases.release().await;
            }
        }
        self.inner.core.store.close().await?;
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(Error::ShutdownTimedOut {
                seconds: self.inner.shutdown_timeout.as_secs_f64(),
                handlers: stuck,
            })
        }
    }
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let core = &self.inner.core;
        f.debug_struct("Bus")
            .field("store", &core.store.describe())
            .field("source", &core.source)
            .field("scope", &self.scope)
            .field("handlers", &core.handlers.len())
            .finish_non_exhaustive()
    }
}

/// Counters of one handler since the bus started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerStats {
    /// The handler's name.
    pub name: String,
    /// Events handled successfully.
    pub handled: u64,
    /// Events given up on after the last attempt.
    pub failed: u64,
    /// Retries made.
    pub retried: u64,
    /// Attempts that panicked.
    pub panicked: u64,
    /// Events stored as dead letters.
    pub dead_lettered: u64,
    /// Events skipped because the handler was behind (`LagPolicy::Skip`).
    pub missed: u64,
}
