//! `Bus::builder()`: by-value setters that park errors until `build()`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::watch;

use super::checks::{self, Registered};
use super::handle::{Bus, Inner};
use crate::delivery::{
    self, Clock, Core, FeedKind, HandlerCounters, HandlerRuntime, LagPolicy, Ring, Settings,
    Subscribers, lease,
};
use crate::error::{Error, Result};
use crate::handler::{Backoff, FnHandler, HandlerDef};
use crate::middleware::{Middleware, TracingLayer};
use crate::store::{self, Start, Store};

const DEFAULT_FEED_CAPACITY: usize = 1024;
const DEFAULT_SUBSCRIBER_CAPACITY: usize = 1024;
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_DEAD_LETTER_POLL: Duration = Duration::from_secs(2);

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
    tracked: bool,
    errors: Vec<Error>,
}

impl std::fmt::Debug for BusBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusBuilder")
            .field("store", &self.store.as_ref().map(|s| s.describe()))
            .field("source", &self.source)
            .field("handlers", &self.handlers.len())
            .field("default_retry", &self.default_retry)
            .field("backoff", &self.backoff)
            .field("feed_capacity", &self.feed_capacity)
            .field("lag", &self.lag)
            .field("problems", &self.errors.len())
            .finish_non_exhaustive()
    }
}

impl Bus {
    /// Starts configuring a bus.
    pub fn builder() -> BusBuilder {
        BusBuilder::new()
    }
}

impl BusBuilder {
    fn new() -> Self {
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
            tracked: false,
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
    ///
    /// By default a bus runs every `#[handler]` linked into the binary,
    /// including those of dependencies and, in an integration test, of
    /// every module of that test: narrow it with this or
    /// [`no_linked_handlers`](BusBuilder::no_linked_handlers).
    pub fn only_handlers<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.registered = Registered::Only(names.into_iter().map(Into::into).collect());
        self
    }

    /// Runs none of the binary's `#[handler]` functions, only the closure
    /// handlers added with [`handler`](BusBuilder::handler): for tests and
    /// tools that publish or read without the application's handlers.
    pub fn no_linked_handlers(mut self) -> Self {
        self.registered = Registered::Only(Vec::new());
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

    /// How many events may wait for each handler before publishers wait
    /// for it (default 1024). On `memory://` the handlers share one ring of
    /// this many events per handler; on a durable store handlers read the
    /// store and this does not apply.
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

    /// Tracks what is in flight and records the traffic, for
    /// [`TestBus`](crate::testing::TestBus).
    #[cfg(feature = "testing")]
    pub(crate) fn tracked(mut self) -> Self {
        self.tracked = true;
        self
    }

    /// Opens the store, collects the handlers, checks them and starts them.
    ///
    /// # Errors
    ///
    /// Every problem found before the store is opened, together (one
    /// error, or [`Error::Problems`] listing them all): setters' bad
    /// values, [`Error::DuplicateHandler`], [`Error::TopicConflict`],
    /// [`Error::MissingState`], [`Error::PatternMatchesNothing`],
    /// [`Error::UnknownHandler`], [`Error::NoRuntime`]; then a bad store
    /// URL or the store's own error when it cannot be opened.
    pub async fn build(self) -> Result<Bus> {
        let mut problems = self.errors;
        let runtime = tokio::runtime::Handle::try_current();
        if runtime.is_err() {
            problems.push(Error::NoRuntime);
        }
        let defs = checks::collect_handlers(self.registered, self.handlers, &mut problems);
        checks::topic_owners(&defs, &mut problems);
        checks::states(&defs, &self.states, &mut problems);
        let mut handlers = Vec::with_capacity(defs.len());
        let mut routes: HashMap<&'static str, Vec<usize>> = HashMap::new();
        for def in defs {
            let Some(topics) = checks::handler_topics(&def, &mut problems) else {
                continue;
            };
            let Ok(within) = checks::handler_scope(&def, &mut problems) else {
                continue;
            };
            for topic in &topics {
                routes.entry(topic).or_default().push(handlers.len());
            }
            handlers.push(Arc::new(HandlerRuntime {
                name: Arc::from(def.name.as_ref()),
                retries: def.options.retry.unwrap_or(self.default_retry),
                backoff: def.options.backoff.unwrap_or(self.backoff),
                within,
                topics,
                index: handlers.len(),
                wake: tokio::sync::Notify::new(),
                lease: watch::Sender::new(true),
                counters: HandlerCounters::default(),
                through: Default::default(),
                def,
            }));
        }
        let runtime = match (Error::from_problems(problems), runtime) {
            (Some(problems), _) => return Err(problems),
            (None, runtime) => runtime.map_err(|_| Error::NoRuntime)?,
        };
        let store = match self.store {
            Some(store) => store,
            None => store::open(&self.store_url).await?,
        };
        let mut middleware = self.middleware;
        if self.tracing {
            middleware.insert(0, Arc::new(TracingLayer));
        }
        let feeds = FeedKind::of(&*store);
        let ring = (feeds == FeedKind::Pushed).then(|| {
            let capacity = self
                .feed_capacity
                .max(1)
                .saturating_mul(handlers.len().max(1));
            Ring::new(capacity, handlers.len(), self.lag)
        });
        let core = Arc::new(Core {
            feeds,
            ring,
            store,
            source: Arc::from(self.source.unwrap_or_else(default_source)),
            routes: routes.into_iter().map(|(t, v)| (t, v.into())).collect(),
            handlers,
            subscribers: Arc::new(Subscribers::default()),
            subscriber_capacity: self.subscriber_capacity,
            states: self.states,
            middleware,
            closed: AtomicBool::new(false),
            metrics: self.metrics,
            runtime,
            scheduled: tokio::sync::Notify::new(),
            clock: Clock::start(),
            tracker: self.tracked.then(Default::default),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let settings = Settings {
            default_start: self.default_start,
            lease_ttl: self.lease_ttl,
            dead_letter_poll: self.dead_letter_poll,
        };
        let workers = delivery::start(&core, settings, shutdown_rx).await?;
        tracing::debug!(store = %core.store.describe(), handlers = core.handlers.len(), "bus started");
        Ok(Bus {
            inner: Arc::new(Inner {
                core,
                shutdown,
                workers: tokio::sync::Mutex::new(Some(workers)),
                shutdown_timeout: self.shutdown_timeout,
            }),
            scope: None,
        })
    }
}

fn default_source() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "eventbus".to_owned())
}
