//! The core [`Store`] trait: what every store does. What only some
//! stores do is a capability trait of its own, reached through the
//! `as_...` methods here, so the bus asks a store for a capability
//! instead of reaching into a concrete type.

use crate::envelope::{Draft, RawEnvelope};
use crate::error::{Error, Result};
use crate::future::{BoxFuture, BoxStream};
use futures_util::FutureExt;

use super::admin::StoreAdmin;
use super::checkpoints::CheckpointStore;
use super::consumer::ServerConsumers;
use super::dead_letter::DeadLetterStore;
use super::query::Query;
use super::rewrite::StoreRewrite;
use super::sagas::SagaStore;
use super::schedules::ScheduleStore;
use super::streams::StreamStore;
#[cfg(feature = "sqlite")]
use super::transactions::HandlerTransactions;

/// The storage behind a bus: a public extension point. A store of your
/// own implements this core (append, query, close, describe) and, for
/// each capability it has, the capability's trait and the `as_...`
/// method that returns it; the bus uses what is there:
///
/// | capability | without it |
/// |---|---|
/// | [`CheckpointStore`] and [`Store::durable`] | handlers get events pushed as they are published, as on `memory://` |
/// | [`DeadLetterStore`] | a handler's final failure is logged, not kept |
/// | [`StoreAdmin`] | no `clear`, topic summaries or size (the CLI says so) |
/// | [`ServerConsumers`] | the bus reads handler feeds itself |
/// | `HandlerTransactions` (SQLite) | `ctx.transaction` fails, naming the store |
/// | [`StoreRewrite`] | [`migrate`](crate::migrate()) fails, naming the store |
/// | [`StreamStore`] | aggregate repositories fail, naming the store |
/// | [`ScheduleStore`] | a scheduled publish fails, naming the store |
/// | [`SagaStore`] | a saga's steps fail, naming the store |
///
/// Implementations must assign strictly increasing seqs in append order,
/// return from [`Store::append`] only once the event is as durable as the
/// store promises, never store two events with one id (answer with the
/// stored one), and answer a repeated idempotency key within its window
/// with the first event. `tests/tests/store_third_party.rs` is a
/// complete example.
pub trait Store: Send + Sync + 'static {
    /// Stores one event and returns it sealed with its seq.
    fn append(&self, draft: Draft) -> BoxFuture<'_, Result<RawEnvelope>>;

    /// Whether [`Store::append_now`] stores events: true for a store that
    /// keeps them in this process's memory and so never waits, which
    /// spares each publish the boxed future of [`Store::append`].
    /// Default: false.
    fn appends_now(&self) -> bool {
        false
    }

    /// Stores one event without waiting; the bus calls it only when
    /// [`Store::appends_now`] says so. Default: refuses, naming the store.
    ///
    /// # Errors
    ///
    /// What [`Store::append`] would answer.
    fn append_now(&self, _draft: Draft) -> Result<RawEnvelope> {
        Err(crate::Error::Unsupported {
            store: self.describe(),
            capability: "storing an event without waiting",
        })
    }

    /// Streams the events matching `query`, in its order, up to its limit.
    fn query(&self, query: Query) -> BoxStream<'static, Result<RawEnvelope>>;

    /// Flushes and releases the store; later calls may fail.
    fn close(&self) -> BoxFuture<'_, Result<()>>;

    /// A description for logs: the URL without secrets.
    fn describe(&self) -> String;

    /// Whether events outlive the process. Handlers on a durable store
    /// that keeps checkpoints read their feed from it after their
    /// checkpoint; on the others events are pushed to them. Default: not.
    fn durable(&self) -> bool {
        false
    }

    /// Per-handler positions, handled records and leases, if the store
    /// keeps them.
    fn as_checkpoint_store(&self) -> Option<&dyn CheckpointStore> {
        None
    }

    /// Dead letters, if the store keeps them.
    fn as_dead_letter_store(&self) -> Option<&dyn DeadLetterStore> {
        None
    }

    /// Clearing, topic summaries and size, if the store offers them.
    fn as_admin(&self) -> Option<&dyn StoreAdmin> {
        None
    }

    /// Consumers the store's server runs for handlers, if it has them.
    fn as_server_consumers(&self) -> Option<&dyn ServerConsumers> {
        None
    }

    /// Entity streams under optimistic concurrency, and snapshots, if the
    /// store keeps them.
    fn as_streams(&self) -> Option<&dyn StreamStore> {
        None
    }

    /// Events kept until they are due, if the store keeps them.
    fn as_schedules(&self) -> Option<&dyn ScheduleStore> {
        None
    }

    /// Saga instances under optimistic concurrency, if the store keeps
    /// them.
    fn as_sagas(&self) -> Option<&dyn SagaStore> {
        None
    }

    /// Rewriting stored events in place, if the store allows it.
    fn as_rewrite(&self) -> Option<&dyn StoreRewrite> {
        None
    }

    /// Transactions a handler's effects can share with its handled mark
    /// (`ctx.transaction`), if the store offers them.
    #[cfg(feature = "sqlite")]
    fn as_transactions(&self) -> Option<&dyn HandlerTransactions> {
        None
    }

    /// Waits until an event newer than seq `after` (or, with `None`, than
    /// any stored now) may be stored, for at most `at_most`, and answers
    /// the newest seq it saw, if any: what a follower
    /// ([`HistoryQuery::follow`](crate::HistoryQuery::follow)) does between
    /// reads. A store whose server can wait for new events (Redis `XREAD
    /// BLOCK`) wakes the follower at once; the default sleeps `at_most`.
    fn wait_for_more(
        &self,
        after: Option<u64>,
        at_most: std::time::Duration,
    ) -> BoxFuture<'_, Option<u64>> {
        let _ = after;
        Box::pin(tokio::time::sleep(at_most).map(|()| None))
    }
}

impl dyn Store {
    /// The store's checkpoints.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the store keeps none.
    pub fn checkpoint_store(&self) -> Result<&dyn CheckpointStore> {
        self.as_checkpoint_store()
            .ok_or_else(|| self.unsupported("checkpoints"))
    }

    /// The store's dead letters.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the store keeps none.
    pub fn dead_letter_store(&self) -> Result<&dyn DeadLetterStore> {
        self.as_dead_letter_store()
            .ok_or_else(|| self.unsupported("dead letters"))
    }

    /// The store's clearing, topic summaries and size.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the store offers none.
    pub fn admin(&self) -> Result<&dyn StoreAdmin> {
        self.as_admin()
            .ok_or_else(|| self.unsupported("clearing, topic summaries or its size"))
    }

    /// The store's entity streams.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the store keeps none.
    pub fn streams(&self) -> Result<&dyn StreamStore> {
        self.as_streams()
            .ok_or_else(|| self.unsupported("entity streams (aggregates)"))
    }

    /// The store's scheduled events.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the store keeps none.
    pub fn schedules(&self) -> Result<&dyn ScheduleStore> {
        self.as_schedules()
            .ok_or_else(|| self.unsupported("scheduled events"))
    }

    /// The store's saga instances.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the store keeps none.
    pub fn sagas(&self) -> Result<&dyn SagaStore> {
        self.as_sagas()
            .ok_or_else(|| self.unsupported("saga instances"))
    }

    /// The store's in-place rewriting of events.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the store offers none.
    pub fn rewriter(&self) -> Result<&dyn StoreRewrite> {
        self.as_rewrite()
            .ok_or_else(|| self.unsupported("rewriting stored events (migrations)"))
    }

    fn unsupported(&self, capability: &'static str) -> Error {
        Error::Unsupported {
            store: self.describe(),
            capability,
        }
    }
}

/// Whether opening a store may create it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// Create what is missing: publishers and a running bus.
    IfMissing,
    /// Fail when it is missing: tools that only look, or change what exists.
    Never,
}
