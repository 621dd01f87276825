//! The bus: a cheap-to-clone handle over the store, the handlers' feeds and
//! the live subscriptions.

mod builder;
mod dead_letters;
mod publish;
mod subscribe;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use builder::BusBuilder;
pub(crate) use dead_letters::bury;
pub use dead_letters::{DeadLettered, DeadLetters};
pub use publish::{Publish, PublishFuture};
pub use subscribe::{Subscription, SubscriptionError};

use crate::delivery::HandlerRuntime;
use crate::envelope::{Draft, RawEnvelope};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::handler::{BoxFuture, HandlerInfo};
use crate::history::HistoryQuery;
use crate::middleware::{Flow, Middleware};
use crate::replay::Replay;
use crate::store::Store;
use crate::topic::Pattern;
use subscribe::Subscribers;

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
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    store: Arc<dyn Store>,
    source: Arc<str>,
    handlers: Vec<Arc<HandlerRuntime>>,
    /// Topic -> indices into `handlers`, computed once at build time from
    /// the handlers' static topic lists.
    routes: HashMap<&'static str, Box<[usize]>>,
    subscribers: Arc<Subscribers>,
    subscriber_capacity: usize,
    states: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    middleware: Vec<Arc<dyn Middleware>>,
    closed: AtomicBool,
    /// Handlers read their feeds from the (durable) store instead of
    /// having events pushed to them.
    store_fed: bool,
    lag: LagPolicy,
    metrics: bool,
    shutdown: watch::Sender<bool>,
    workers: Mutex<Vec<(Arc<str>, JoinHandle<()>)>>,
    /// Renews the leases of handlers read from a shared store; released
    /// once those handlers have drained at shutdown.
    leases: tokio::sync::Mutex<Option<crate::lease::LeaseKeeper>>,
    shutdown_timeout: Duration,
    runtime: tokio::runtime::Handle,
}

impl Bus {
    /// Starts configuring a bus.
    pub fn builder() -> BusBuilder {
        BusBuilder::new()
    }

    /// Publishes an event: set metadata on the returned builder, then
    /// `.await` it. See [`Publish`].
    pub fn publish<E: Event>(&self, event: E) -> Publish<'_, E> {
        Publish::new(self, event)
    }

    pub(crate) fn publish_draft(&self, mut draft: Draft) -> BoxFuture<'_, Result<RawEnvelope>> {
        Box::pin(async move {
            if self.inner.closed.load(Ordering::Acquire) {
                return Err(Error::ShutDown);
            }
            for layer in &self.inner.middleware {
                if layer.on_publish(&mut draft) == Flow::Drop {
                    return Err(Error::Dropped {
                        layer: layer.name().to_owned(),
                    });
                }
            }
            let id = draft.id().clone();
            let started = self.inner.metrics.then(std::time::Instant::now);
            let env = self.inner.store.append(draft).await?;
            // A repeated idempotency key answers with the first event, which
            // was routed when it was published.
            if *env.id() == id {
                self.route(&env).await?;
                if let Some(started) = started {
                    crate::metrics::published(env.topic(), started.elapsed());
                }
            }
            Ok(env)
        })
    }

    async fn route(&self, env: &RawEnvelope) -> Result<()> {
        self.inner.subscribers.offer(env);
        if let Some(targets) = self.inner.routes.get(env.topic()) {
            if self.inner.store_fed {
                for &i in targets.iter() {
                    self.inner.handlers[i].wake.notify_one();
                }
                return Ok(());
            }
            for &i in targets.iter() {
                let handler = &self.inner.handlers[i];
                let feed = &handler.feed;
                // Waiting only when the feed is full keeps the common path short.
                match feed.try_send(env.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_))
                        if self.inner.lag == LagPolicy::Skip =>
                    {
                        let missed = handler.counters.missed.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::warn!(
                            handler = %handler.name, seq = env.seq(), topic = env.topic(), missed,
                            "handler is behind and its feed is full; it skips this event (LagPolicy::Skip)"
                        );
                    }
                    Err(mpsc::error::TrySendError::Full(env)) => {
                        feed.send(env).await.map_err(|_| Error::ShutDown)?;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return Err(Error::ShutDown),
                }
            }
        }
        Ok(())
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
        Ok(self
            .inner
            .subscribers
            .add::<E>(topics, self.inner.subscriber_capacity))
    }

    /// How many subscriptions are live (dropped ones are gone at once).
    pub fn subscription_count(&self) -> usize {
        self.inner.subscribers.count()
    }

    /// A history query over the store; see [`HistoryQuery`].
    pub fn history(&self) -> HistoryQuery {
        HistoryQuery::new(Arc::clone(&self.inner.store))
    }

    /// A replay of history into handlers; see [`Replay`].
    pub fn replay(&self) -> Replay {
        Replay::new(self.clone())
    }

    /// Every registered handler, sorted by name.
    pub fn handlers(&self) -> Vec<HandlerInfo> {
        self.inner
            .handlers
            .iter()
            .map(|h| HandlerInfo {
                name: h.name.to_string(),
                pattern: h.def.pattern.as_ref().map(|p| p.to_string()),
                event: h.def.event,
                topics: h.topics.clone(),
                options: crate::handler::HandlerOptions {
                    retry: Some(h.retries),
                    ..h.def.options
                },
                location: h.def.location.clone(),
            })
            .collect()
    }

    /// The dead letters: list, retry, purge.
    pub fn dead_letters(&self) -> DeadLetters {
        DeadLetters::new(self.clone())
    }

    /// Counters per handler since the bus started.
    pub fn stats(&self) -> Vec<HandlerStats> {
        self.inner
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

    /// The store, for operations the bus does not wrap.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Stops taking new events, lets every handler finish what is queued
    /// (within the builder's shutdown timeout), then closes the store.
    ///
    /// # Errors
    ///
    /// [`Error::ShutdownTimedOut`] naming the handlers still busy, or a
    /// store error from closing.
    pub async fn shutdown(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        let _ = self.inner.shutdown.send(true);
        let workers =
            std::mem::take(&mut *self.inner.workers.lock().unwrap_or_else(|e| e.into_inner()));
        let deadline = tokio::time::Instant::now() + self.inner.shutdown_timeout;
        let mut stuck = Vec::new();
        for (name, mut worker) in workers {
            if tokio::time::timeout_at(deadline, &mut worker)
                .await
                .is_err()
            {
                worker.abort();
                stuck.push(name.to_string());
            }
        }
        if let Some(keeper) = self.inner.leases.lock().await.take() {
            keeper.release().await;
        }
        self.inner.store.close().await?;
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(Error::ShutdownTimedOut {
                seconds: self.inner.shutdown_timeout.as_secs_f64(),
                handlers: stuck,
            })
        }
    }

    pub(crate) fn source(&self) -> Arc<str> {
        Arc::clone(&self.inner.source)
    }

    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.runtime
    }

    pub(crate) fn metrics_on(&self) -> bool {
        self.inner.metrics
    }

    /// Whether handlers read their feeds from the store (a durable one).
    pub(crate) fn store_fed(&self) -> bool {
        self.inner.store_fed
    }

    pub(crate) fn middleware(&self) -> &[Arc<dyn Middleware>] {
        &self.inner.middleware
    }

    pub(crate) fn state_any(&self, id: TypeId) -> Option<&Arc<dyn Any + Send + Sync>> {
        self.inner.states.get(&id)
    }

    pub(crate) fn handler_runtimes(&self) -> &[Arc<HandlerRuntime>] {
        &self.inner.handlers
    }
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("store", &self.inner.store.describe())
            .field("source", &self.inner.source)
            .field("handlers", &self.inner.handlers.len())
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

/// What a full feed does on a store that pushes events to handlers
/// (`memory://`). On a durable store handlers read from the store and never
/// hold publishers back, whatever the policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LagPolicy {
    /// The publisher waits until the handler has room (backpressure).
    #[default]
    Block,
    /// The handler skips the event; the skip is logged and counted in
    /// [`HandlerStats::missed`], and the event stays in history.
    Skip,
}

/// The topics among an event type's `topics` that `pattern` matches, or an
/// error naming what is wrong.
pub(crate) fn topics_matching(
    pattern: &str,
    event: &'static str,
    topics: &'static [&'static str],
) -> Result<Vec<&'static str>> {
    let pattern = Pattern::new(pattern.to_owned())?;
    let matching: Vec<&'static str> = topics
        .iter()
        .copied()
        .filter(|t| pattern.matches(t))
        .collect();
    if matching.is_empty() {
        return Err(Error::PatternMatchesNothing {
            pattern: pattern.to_string(),
            event,
            topics,
        });
    }
    Ok(matching)
}
