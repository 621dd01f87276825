//! The state a running bus shares with its workers, and the handlers as
//! they run: what every other part of the delivery layer holds.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tokio::sync::watch;

use super::clock::Clock;
use super::ring::Ring;
use super::subscribers::Subscribers;
use super::tracker::Tracker;
use crate::envelope::RawEnvelope;
use crate::envelope::Scope;
use crate::error::Result;
use crate::handler::{Backoff, HandlerDef, HandlerHost, Publisher};
use crate::metrics;
use crate::middleware::Middleware;
use crate::store::{CheckpointStore, Store};

/// Where handlers get their events: decided once per bus, from what the
/// store offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FeedKind {
    /// The store's server hands them out (NATS consumers).
    Served,
    /// The bus reads them from the durable store after each handler's
    /// checkpoint (SQLite).
    Read,
    /// The bus pushes them as they are published (`memory://`).
    Pushed,
}

impl FeedKind {
    /// The kind a store calls for.
    pub(crate) fn of(store: &dyn Store) -> Self {
        if store.as_server_consumers().is_some() {
            FeedKind::Served
        } else if store.durable() && store.as_checkpoint_store().is_some() {
            FeedKind::Read
        } else {
            FeedKind::Pushed
        }
    }
}

/// Handler indices by topic.
///
/// Every publish looks its topic up, and SipHash, the standard map's
/// guard against keys chosen to collide, cost more than the rest of the
/// routing. The keys here are the handlers' own topics, fixed when the bus
/// is built, so whoever chooses the topics of published events cannot
/// crowd a bucket; FNV-1a is enough.
pub(crate) type Routes = HashMap<&'static str, Arc<[usize]>, BuildHasherDefault<TopicHasher>>;

/// FNV-1a over the bytes of a topic, for [`Routes`].
pub(crate) struct TopicHasher(u64);

impl Default for TopicHasher {
    fn default() -> Self {
        TopicHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for TopicHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// What every part of a running bus shares; the bus holds it, and so do
/// its workers, replays and handlings, through their own handles.
pub(crate) struct Core {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) source: Arc<str>,
    pub(crate) handlers: Vec<Arc<HandlerRuntime>>,
    /// Topic -> indices into `handlers`, computed once at build time from
    /// the handlers' static topic lists.
    pub(crate) routes: Routes,
    /// The ring every handler's events are pushed into, when handlers are
    /// pushed ([`FeedKind::Pushed`]).
    pub(crate) ring: Option<Ring>,
    pub(crate) subscribers: Arc<Subscribers>,
    pub(crate) subscriber_capacity: usize,
    pub(crate) states: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    pub(crate) middleware: Vec<Arc<dyn Middleware>>,
    /// Set at shutdown: no new events.
    pub(crate) closed: AtomicBool,
    /// Where every handler of this bus gets its events, decided by the
    /// store's capabilities.
    pub(crate) feeds: FeedKind,
    pub(crate) metrics: bool,
    pub(crate) runtime: tokio::runtime::Handle,
    /// Wakes the scheduler when this process scheduled an event.
    pub(crate) scheduled: tokio::sync::Notify,
    /// What due times of scheduled events are measured against.
    pub(crate) clock: Clock,
    /// What is in flight, for test buses (see [`Tracker`]).
    pub(crate) tracker: Option<Arc<Tracker>>,
}

/// Counters for one handler, read by `bus.stats()`.
#[derive(Debug, Default)]
pub(crate) struct HandlerCounters {
    pub(crate) handled: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) missed: AtomicU64,
}

/// A registered handler at run time: its definition, resolved settings and feed.
pub(crate) struct HandlerRuntime {
    pub(crate) def: HandlerDef,
    pub(crate) name: Arc<str>,
    pub(crate) topics: Vec<&'static str>,
    pub(crate) retries: u32,
    pub(crate) backoff: Backoff,
    /// Only events in this scope or below reach it; the others count as
    /// handled without a call.
    pub(crate) within: Option<Scope>,
    /// Its place among the bus's handlers, and in the ring.
    pub(crate) index: usize,
    /// Wakes a store-fed handler when this process stored an event for it.
    pub(crate) wake: tokio::sync::Notify,
    /// Whether this bus holds the handler's lease on a shared store, so
    /// its store-read feed may run (see [`lease`]).
    pub(crate) lease: watch::Sender<bool>,
    pub(crate) counters: HandlerCounters,
    /// The seq up to which every event of this handler is finished
    /// (handled or dead-lettered), for [`Bus::caught_up`](crate::Bus::caught_up).
    pub(crate) through: Through,
}

/// A handler's progress: every event up to a seq is finished. Moves only
/// forward, except when a rebuild starts the handler over.
#[derive(Default)]
pub(crate) struct Through {
    seq: AtomicU64,
    moved: tokio::sync::Notify,
    /// How many callers wait, so the handler's hot path only touches the
    /// `Notify` (a lock) when someone does.
    waiting: AtomicUsize,
}

impl Through {
    pub(crate) fn get(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Everything up to `seq` is finished.
    pub(crate) fn reached(&self, seq: u64) {
        if self.seq.fetch_max(seq, Ordering::SeqCst) < seq
            && self.waiting.load(Ordering::SeqCst) > 0
        {
            self.moved.notify_waiters();
        }
    }

    /// The handler starts over from the beginning of history.
    #[cfg(feature = "sqlite")]
    pub(crate) fn restart(&self) {
        self.seq.store(0, Ordering::SeqCst);
    }

    /// Waits until everything up to `target` is finished, until `deadline`;
    /// false when the deadline came first.
    pub(crate) async fn wait_for(&self, target: u64, deadline: tokio::time::Instant) -> bool {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let reached = async {
            loop {
                // Registered before the check, so a move between the two
                // still wakes it.
                let moved = self.moved.notified();
                if self.get() >= target {
                    return;
                }
                moved.await;
            }
        };
        let in_time = tokio::time::timeout_at(deadline, reached).await.is_ok();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        in_time
    }
}

impl HandlerRuntime {
    /// Whether the handler takes events of `env`'s scope.
    pub(crate) fn in_scope(&self, env: &RawEnvelope) -> bool {
        self.within.as_ref().is_none_or(|s| s.contains(env.scope()))
    }
}

/// One handler on one bus: what every handling of it needs. Each worker,
/// replay and retry makes its own, so concurrent handlers never contend on
/// a shared reference count.
pub(crate) struct HandlerScope {
    pub(crate) core: Arc<Core>,
    pub(crate) handler: Arc<HandlerRuntime>,
}

impl HandlerScope {
    pub(crate) fn new(core: Arc<Core>, handler: Arc<HandlerRuntime>) -> Arc<Self> {
        Arc::new(HandlerScope { core, handler })
    }

    /// The store's checkpoints: a handler reads its feed from the store
    /// only when the store keeps them.
    pub(crate) fn checkpoints(&self) -> Result<&dyn CheckpointStore> {
        self.core.store.checkpoint_store()
    }

    pub(crate) fn count(&self, env: &RawEnvelope, outcome: metrics::Outcome) {
        if self.core.metrics {
            metrics::outcome(env.topic(), &self.handler.name, outcome);
        }
    }
}

impl HandlerHost for HandlerScope {
    fn publisher(&self) -> &dyn Publisher {
        &*self.core
    }

    fn handler(&self) -> &Arc<str> {
        &self.handler.name
    }

    fn state(&self, id: TypeId) -> Option<&Arc<dyn Any + Send + Sync>> {
        self.core.states.get(&id)
    }

    fn store(&self) -> &Arc<dyn Store> {
        &self.core.store
    }
}
