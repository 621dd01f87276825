//! `Bus::builder()`: by-value setters that park errors until `build()`.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::subscribe::Subscribers;
use super::{Bus, Inner, LagPolicy};
use crate::consumer_feed;
use crate::delivery::{self, Backoff, HandlerCounters, HandlerRuntime, HandlerScope};
use crate::error::{Error, Result};
use crate::feed::{self, Start};
use crate::handler::{FnHandler, HandlerDef, HandlerRegistration};
use crate::lease::{self, LeaseKeeper};
use crate::middleware::{Middleware, TracingLayer};
use crate::store::{self, BoxStream, ConsumerSpec, Delivery, Store};

const DEFAULT_FEED_CAPACITY: usize = 1024;
const DEFAULT_SUBSCRIBER_CAPACITY: usize = 1024;
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_DEAD_LETTER_POLL: Duration = Duration::from_secs(2);

/// Which `#[handler]` functions linked into the binary a bus runs.
enum Registered {
    All,
    Only(Vec<String>),
}

/// Configures and builds a [`Bus`].
///
/// Setters never fail; a bad value is remembered and reported by
/// [`BusBuilder::build`].
#[must_use = "a builder does nothing until `.build().await`"]
pub struct BusBuilder {
    store_url: String,
    store: Option<Arc<dyn Store>>,
    source: Option<String>,
    states: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    handlers: Vec<HandlerDef>,
    registered: Registered,
    middleware: Vec<Arc<dyn Middleware>>,
    tracing: bool,
    default_retry: u32,
    backoff: Backoff,
    feed_capacity: usize,
    subscriber_capacity: usize,
    shutdown_timeout: Duration,
    dead_letter_poll: Duration,
    metrics: bool,
    default_start: Start,
    lag: LagPolicy,
    lease_ttl: Duration,
    errors: Vec<Error>,
}

impl BusBuilder {
    pub(crate) fn new() -> Self {
        BusBuilder {
            store_url: "memory://".to_owned(),
            store: None,
            source: None,
            states: HashMap::new(),
            handlers: Vec::new(),
            registered: Registered::All,
            middleware: Vec::new(),
            tracing: true,
            default_retry: DEFAULT_RETRIES,
            backoff: Backoff::default(),
            feed_capacity: DEFAULT_FEED_CAPACITY,
            subscriber_capacity: DEFAULT_SUBSCRIBER_CAPACITY,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            dead_letter_poll: DEFAULT_DEAD_LETTER_POLL,
            metrics: false,
            default_start: Start::Latest,
            lag: LagPolicy::Block,
            lease_ttl: lease::DEFAULT_TTL,
            errors: Vec::new(),
        }
    }

    /// The store, by URL: `memory://` (the default; `memory://?capacity=N`
    /// bounds the history ring, 10,000 by default).
    pub fn store(mut self, url: impl Into<String>) -> Self {
        self.store_url = url.into();
        self.store = None;
        self
    }

    /// A store built by hand, such as a custom [`Store`] implementation.
    pub fn store_impl(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The CloudEvents `source` of published events (default: the name of
    /// the running executable).
    pub fn source(mut self, source: impl Into<String>) -> Self {
        let source = source.into();
        if source.is_empty() {
            self.errors
                .push(Error::Config("the source must not be empty".into()));
        }
        self.source = Some(source);
        self
    }

    /// Shared state that handlers read with `ctx.state::<T>()`; one value per type.
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.states.insert(TypeId::of::<T>(), Arc::new(value));
        self
    }

    /// Adds a closure handler.
    pub fn handler(mut self, handler: FnHandler) -> Self {
        self.handlers.push(handler.def);
        self
    }

    /// Runs only the named `#[handler]` functions of the binary instead of
    /// all of them (closure handlers always run). Unknown names fail `build()`.
    pub fn only_handlers<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.registered = Registered::Only(names.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a middleware layer; layers run in the order added, first outermost.
    pub fn layer(mut self, layer: impl Middleware) -> Self {
        self.middleware.push(Arc::new(layer));
        self
    }

    /// Turns the default tracing layer (a span per handling) on or off.
    pub fn tracing(mut self, on: bool) -> Self {
        self.tracing = on;
        self
    }

    /// Retries after a failed first attempt, for handlers that set none (default 3).
    pub fn default_retry(mut self, retries: u32) -> Self {
        self.default_retry = retries;
        self
    }

    /// The delay before the first retry and the longest delay (defaults
    /// 100 ms and 30 s); delays double per attempt, with jitter.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        if base > max {
            self.errors.push(Error::Config(format!(
                "backoff base {base:?} is longer than its maximum {max:?}"
            )));
        }
        self.backoff = Backoff { base, max };
        self
    }

    /// How many events may wait in each handler's feed before publishers
    /// wait for the handler (default 1024).
    pub fn feed_capacity(mut self, n: usize) -> Self {
        if n == 0 {
            self.errors
                .push(Error::Config("feed capacity must be at least 1".into()));
        }
        self.feed_capacity = n;
        self
    }

    /// What a handler's full feed does on `memory://`: make publishers wait
    /// (the default) or skip the event for that handler.
    pub fn lag_policy(mut self, policy: LagPolicy) -> Self {
        self.lag = policy;
        self
    }

    /// How many events a subscription buffers before it lags (default 1024).
    pub fn subscriber_capacity(mut self, n: usize) -> Self {
        if n == 0 {
            self.errors.push(Error::Config(
                "subscriber capacity must be at least 1".into(),
            ));
        }
        self.subscriber_capacity = n;
        self
    }

    /// How long `shutdown()` waits for handlers to finish (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Emits counters and latency histograms through the `metrics` facade
    /// (off by default): `eventbus_published_total`, `eventbus_publish_seconds`,
    /// `eventbus_delivered_total`, `eventbus_retried_total`, `eventbus_failed_total`,
    /// `eventbus_dead_lettered_total` and `eventbus_handle_seconds`, labelled by
    /// `topic` (and `handler` for handlings).
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Where handlers that set no `start` begin on a durable store the first
    /// time they run (default [`Start::Latest`]: only events stored from then
    /// on). Later runs resume after their checkpoint.
    pub fn default_start(mut self, start: Start) -> Self {
        self.default_start = start;
        self
    }

    /// How often the bus looks for dead letters whose retry was requested
    /// from outside (`eventbus dlq retry`), for the handlers it runs
    /// (default 2 s).
    pub fn dead_letter_poll(mut self, every: Duration) -> Self {
        if every.is_zero() {
            self.errors.push(Error::Config(
                "the dead-letter poll interval must not be zero".into(),
            ));
        }
        self.dead_letter_poll = every;
        self
    }

    /// How long a handler's lease on a shared SQLite file lasts without
    /// renewal (default 5 s; renewed every third of it). Of several
    /// processes running one handler on one file, one holds the lease and
    /// runs it; when that process dies, another takes over within this
    /// time plus a third of it.
    pub fn handler_lease(mut self, ttl: Duration) -> Self {
        if ttl < Duration::from_millis(300) {
            self.errors.push(Error::Config(format!(
                "handler lease {ttl:?} is too short to be renewed in time; use 300ms or more"
            )));
        }
        self.lease_ttl = ttl;
        self
    }

    /// Opens the store, collects the handlers, checks them and starts them.
    ///
    /// # Errors
    ///
    /// The first problem among: a setter's bad value, a bad store URL,
    /// [`Error::DuplicateHandler`], [`Error::TopicConflict`],
    /// [`Error::MissingState`], [`Error::PatternMatchesNothing`],
    /// [`Error::UnknownHandler`], [`Error::NoRuntime`].
    pub async fn build(self) -> Result<Bus> {
        if let Some(error) = self.errors.into_iter().next() {
            return Err(error);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let defs = collect_handlers(self.registered, self.handlers)?;
        check_topic_owners(&defs)?;
        check_states(&defs, &self.states)?;
        let store = match self.store {
            Some(store) => store,
            None => store::open(&self.store_url).await?,
        };

        let mut handlers = Vec::with_capacity(defs.len());
        let mut feeds = Vec::with_capacity(defs.len());
        let mut routes: HashMap<&'static str, Vec<usize>> = HashMap::new();
        for (index, def) in defs.into_iter().enumerate() {
            let topics = handler_topics(&def)?;
            if def.options.concurrency == 0 {
                return Err(Error::Config(format!(
                    "handler `{}` has concurrency 0; it must be at least 1",
                    def.name
                )));
            }
            for topic in &topics {
                routes.entry(topic).or_default().push(index);
            }
            let (tx, rx) = mpsc::channel(self.feed_capacity);
            feeds.push(rx);
            handlers.push(Arc::new(HandlerRuntime {
                name: Arc::from(def.name.as_ref()),
                retries: def.options.retry.unwrap_or(self.default_retry),
                backoff: def.options.backoff.unwrap_or(self.backoff),
                topics,
                feed: tx,
                wake: tokio::sync::Notify::new(),
                lease: watch::Sender::new(true),
                counters: HandlerCounters::default(),
                def,
            }));
        }

        let mut middleware = self.middleware;
        if self.tracing {
            middleware.insert(0, Arc::new(TracingLayer));
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let bus = Bus {
            inner: Arc::new(Inner {
                store_fed: store.durable(),
                lag: self.lag,
                store,
                source: Arc::from(self.source.unwrap_or_else(default_source)),
                routes: routes
                    .into_iter()
                    .map(|(t, v)| (t, v.into_boxed_slice()))
                    .collect(),
                handlers,
                subscribers: Arc::new(Subscribers::default()),
                subscriber_capacity: self.subscriber_capacity,
                states: self.states,
                middleware,
                closed: AtomicBool::new(false),
                metrics: self.metrics,
                shutdown,
                workers: Mutex::new(Vec::new()),
                leases: tokio::sync::Mutex::new(None),
                shutdown_timeout: self.shutdown_timeout,
                runtime,
            }),
        };
        // Feeds first: a store error fails `build()` before any worker runs,
        // and whatever is stored from now on reaches every handler.
        let mut sources = Vec::with_capacity(bus.inner.handlers.len());
        for handler in &bus.inner.handlers {
            let start = handler.def.options.start.unwrap_or(self.default_start);
            let spec = ConsumerSpec {
                handler: handler.name.to_string(),
                filter: consumer_feed::filter_for(&handler.def),
                start,
                max_in_flight: handler.def.options.concurrency.max(1),
            };
            let source = if let Some(opening) = bus.inner.store.consume(spec) {
                FeedSource::Served(opening.await?)
            } else if bus.inner.store_fed {
                let scope = HandlerScope::new(bus.clone(), Arc::clone(handler));
                FeedSource::Read(feed::first_position(&scope, start).await?)
            } else {
                FeedSource::Pushed
            };
            sources.push(source);
        }
        let read: Vec<Arc<HandlerRuntime>> = bus
            .inner
            .handlers
            .iter()
            .zip(&sources)
            .filter(|(_, source)| matches!(source, FeedSource::Read(_)))
            .map(|(handler, _)| Arc::clone(handler))
            .collect();
        if !read.is_empty() {
            let keeper =
                LeaseKeeper::start(Arc::clone(&bus.inner.store), read, self.lease_ttl).await?;
            *bus.inner.leases.lock().await = Some(keeper);
        }
        let mut workers = Vec::with_capacity(bus.inner.handlers.len() + 1);
        for ((handler, feed), source) in bus.inner.handlers.iter().zip(feeds).zip(sources) {
            let scope = HandlerScope::new(bus.clone(), Arc::clone(handler));
            let shutdown = shutdown_rx.clone();
            let task = match source {
                FeedSource::Served(deliveries) => {
                    tokio::spawn(consumer_feed::run(scope, deliveries, shutdown))
                }
                FeedSource::Read(at) => tokio::spawn(feed::run(scope, at, shutdown)),
                FeedSource::Pushed => tokio::spawn(delivery::run_worker(scope, feed, shutdown)),
            };
            workers.push((Arc::clone(&handler.name), task));
        }
        if !bus.inner.handlers.is_empty() {
            let poller = super::dead_letters::retry_requested(
                bus.clone(),
                self.dead_letter_poll,
                shutdown_rx,
            );
            workers.push((Arc::from("dead-letter retries"), tokio::spawn(poller)));
        }
        *bus.inner.workers.lock().unwrap_or_else(|e| e.into_inner()) = workers;
        tracing::debug!(store = %bus.inner.store.describe(), handlers = bus.inner.handlers.len(), "bus started");
        Ok(bus)
    }
}

/// Where a handler's events come from.
enum FeedSource {
    /// The store's server hands them out (NATS consumers).
    Served(BoxStream<'static, Delivery>),
    /// The bus reads them from the (durable) store after this position.
    Read(feed::Position),
    /// The bus pushes them as they are published.
    Pushed,
}

fn default_source() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "eventbus".to_owned())
}

/// The registry's handlers (all or the selected ones) plus the closure
/// handlers, sorted by name, with duplicate names rejected.
fn collect_handlers(registered: Registered, closures: Vec<HandlerDef>) -> Result<Vec<HandlerDef>> {
    let all = inventory::iter::<HandlerRegistration>.into_iter();
    let mut defs: Vec<HandlerDef> = match registered {
        Registered::All => all.map(HandlerDef::from_registration).collect(),
        Registered::Only(names) => {
            let known: Vec<&'static HandlerRegistration> = all.collect();
            let mut picked = Vec::new();
            for name in names {
                match known.iter().find(|r| r.name == name) {
                    Some(r) => picked.push(HandlerDef::from_registration(r)),
                    None => {
                        let mut known: Vec<String> =
                            known.iter().map(|r| r.name.to_owned()).collect();
                        known.sort();
                        return Err(Error::UnknownHandler { name, known });
                    }
                }
            }
            picked
        }
    };
    defs.extend(closures);
    defs.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in defs.windows(2) {
        if pair[0].name == pair[1].name {
            return Err(Error::DuplicateHandler {
                name: pair[0].name.to_string(),
                first: pair[0].location().to_owned(),
                second: pair[1].location().to_owned(),
            });
        }
    }
    Ok(defs)
}

fn handler_topics(def: &HandlerDef) -> Result<Vec<&'static str>> {
    match &def.pattern {
        None => Ok(def.topics.to_vec()),
        Some(pattern) => super::topics_matching(pattern, def.event, def.topics),
    }
}

/// Two event types claiming one topic would make decoding ambiguous.
fn check_topic_owners(defs: &[HandlerDef]) -> Result<()> {
    let mut owners: HashMap<&'static str, &'static str> = HashMap::new();
    for def in defs {
        for &topic in def.topics {
            let owner = *owners.entry(topic).or_insert(def.event);
            if owner != def.event {
                return Err(Error::TopicConflict {
                    topic: topic.to_owned(),
                    first: owner.to_owned(),
                    second: def.event.to_owned(),
                });
            }
        }
    }
    Ok(())
}

fn check_states(
    defs: &[HandlerDef],
    states: &HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
) -> Result<()> {
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    for def in defs {
        for need in &def.states {
            if !states.contains_key(&(need.type_id)())
                && seen.insert((need.type_name, def.name.clone()))
            {
                missing.push(format!(
                    "`{}` (needed by handler `{}`)",
                    need.type_name, def.name
                ));
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::MissingState { missing })
    }
}
