//! Where events live: the [`Store`] trait and its implementations, chosen by
//! URL (`memory://` is the default).
//!
//! A store appends drafts (assigning each a seq), answers history queries as
//! a stream, and keeps per-handler checkpoints. The bus does everything else
//! (routing, delivery, retries) on top of these few operations, so every
//! store offers the same API.

mod consumer;
mod dead_letter;
mod memory;
mod nats;
mod query;
mod sqlite;
mod url;

use std::any::Any;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

pub use self::url::{MAX_DURATION, parse_duration};
pub(crate) use self::url::{Opt, StoreUrl};
pub use consumer::{Acknowledge, ConsumerSpec, Delivery, Start};
pub use dead_letter::{DeadLetter, DeadLetterQuery, NewDeadLetter};
pub use memory::MemoryStore;
pub use nats::{NatsConfig, NatsStore};
pub use query::{Order, Query};
pub use sqlite::SqliteStore;

use crate::envelope::{Draft, RawEnvelope};
use crate::error::{Error, Result};
use crate::future::BoxFuture;
use crate::topic::Pattern;

pub use crate::future::BoxStream;

/// The storage behind a bus.
///
/// Implementations must assign strictly increasing seqs in append order and
/// return from [`Store::append`] only once the event is as durable as the
/// store promises.
///
/// `Any` lets the bus reach a concrete store's own features, such as the
/// transactions [`SqliteStore`] offers handlers.
pub trait Store: Any + Send + Sync + 'static {
    /// Stores one event and returns it sealed with its seq.
    fn append(&self, draft: Draft) -> BoxFuture<'_, Result<RawEnvelope>>;

    /// Streams the events matching `query`, in its order, up to its limit.
    fn query(&self, query: Query) -> BoxStream<'static, Result<RawEnvelope>>;

    /// The last seq the named handler finished, if it ever ran.
    fn load_checkpoint(&self, handler: &str) -> BoxFuture<'_, Result<Option<u64>>>;

    /// Records that the named handler finished everything up to `seq`.
    /// Moving a checkpoint back forgets what [`Store::record_handled`]
    /// recorded for that handler, so the events after it are handled again.
    fn save_checkpoint(&self, handler: &str, seq: u64) -> BoxFuture<'_, Result<()>>;

    /// Saves the named handler's checkpoint at `seq` only if it is still at
    /// `expected` (where this handler last saved or read it), and returns
    /// whether it did: `false` means someone else (an operator, the CLI, a
    /// process that took the handler over) moved it meanwhile, and the
    /// caller should follow the new position instead of overwriting it.
    ///
    /// The default looks and then saves, which a store that several
    /// processes write should replace with one atomic step.
    fn advance_checkpoint(
        &self,
        handler: &str,
        expected: u64,
        seq: u64,
    ) -> BoxFuture<'_, Result<bool>> {
        let handler = handler.to_owned();
        Box::pin(async move {
            if self.load_checkpoint(&handler).await?.unwrap_or(0) != expected {
                return Ok(false);
            }
            self.save_checkpoint(&handler, seq).await.map(|()| true)
        })
    }

    /// Takes or renews, for `holder`, the lease on running each named
    /// handler, for `ttl` from now, unless another holder's lease on it
    /// has not expired; returns, per handler, whether `holder` has it.
    ///
    /// Processes that share a durable store through the bus's own feeds
    /// (SQLite) use leases so that one handler name runs in one process at
    /// a time, the others standing by. A store whose handlers cannot be
    /// shared that way (it lives in one process, or its server hands out
    /// the events itself) grants every lease, which is the default.
    fn renew_leases(
        &self,
        holder: &str,
        handlers: &[Arc<str>],
        ttl: Duration,
    ) -> BoxFuture<'_, Result<Vec<bool>>> {
        let _ = (holder, ttl);
        let all = vec![true; handlers.len()];
        Box::pin(async move { Ok(all) })
    }

    /// Gives up every lease `holder` has, so a standby takes over at once.
    fn release_leases(&self, holder: &str) -> BoxFuture<'_, Result<()>> {
        let _ = holder;
        Box::pin(async { Ok(()) })
    }

    /// Records, without waiting, that the named handler finished the
    /// events with seqs in `seqs` (ahead of its checkpoint), so that a
    /// redelivery after a crash can skip them. A store whose handlers never
    /// see redeliveries keeps nothing, which is the default.
    fn record_handled(&self, handler: &Arc<str>, seqs: RangeInclusive<u64>) {
        let _ = (handler, seqs);
    }

    /// The runs of seqs the named handler is recorded to have finished
    /// that end after `after`, ordered by their first seq (they may
    /// overlap).
    fn handled_after(
        &self,
        handler: &str,
        after: u64,
    ) -> BoxFuture<'_, Result<Vec<RangeInclusive<u64>>>> {
        let _ = (handler, after);
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Deletes every event whose topic matches `pattern` and returns how
    /// many were deleted. Checkpoints are kept.
    fn clear(&self, pattern: &Pattern) -> BoxFuture<'_, Result<u64>>;

    /// Flushes and releases the store; later calls may fail.
    fn close(&self) -> BoxFuture<'_, Result<()>>;

    /// Stores a dead letter and returns its id.
    fn add_dead_letter(&self, dead: NewDeadLetter) -> BoxFuture<'_, Result<u64>>;

    /// Lists dead letters, oldest first.
    fn dead_letters(&self, query: DeadLetterQuery) -> BoxFuture<'_, Result<Vec<DeadLetter>>>;

    /// Marks a dead letter for retry by the bus that runs its handler;
    /// false when no such dead letter exists.
    fn request_retry(&self, id: u64) -> BoxFuture<'_, Result<bool>>;

    /// Records that a retry of a dead letter failed again: the new error,
    /// `attempts` more attempts, and no retry requested any more.
    fn record_retry_failure(
        &self,
        id: u64,
        error: String,
        attempts: u32,
    ) -> BoxFuture<'_, Result<()>>;

    /// Deletes one dead letter; false when it did not exist.
    fn remove_dead_letter(&self, id: u64) -> BoxFuture<'_, Result<bool>>;

    /// Deletes the dead letters of one handler, or all; returns how many.
    fn purge_dead_letters(&self, handler: Option<&str>) -> BoxFuture<'_, Result<u64>>;

    /// Every handler's checkpoint, sorted by handler name.
    fn checkpoints(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>>>;

    /// Each stored topic with its event count and first and last times,
    /// sorted by topic.
    fn topics(&self) -> BoxFuture<'_, Result<Vec<TopicSummary>>>;

    /// The bytes the store occupies, where that means something.
    fn size_bytes(&self) -> Option<u64>;

    /// Whether events outlive the process. Handlers on a durable store read
    /// their feed from it after their checkpoint; on the others events are
    /// pushed to them.
    fn durable(&self) -> bool;

    /// A description for logs: the URL without secrets.
    fn describe(&self) -> String;

    /// For stores whose server delivers events to handlers itself (NATS
    /// JetStream): opens, creating it if needed, the handler's consumer and
    /// returns its deliveries. `None` (the default) means the bus reads
    /// the handler's feed from the store after its checkpoint.
    ///
    /// The consumer exists when the future completes, so that every event
    /// stored afterwards reaches the handler.
    #[allow(clippy::type_complexity)]
    fn consume(
        &self,
        spec: ConsumerSpec,
    ) -> Option<BoxFuture<'_, Result<BoxStream<'static, Delivery>>>> {
        let _ = spec;
        None
    }
}

/// One topic's share of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSummary {
    /// The topic.
    pub topic: String,
    /// How many events it holds.
    pub count: u64,
    /// The time of its oldest event.
    pub first: chrono::DateTime<chrono::Utc>,
    /// The time of its newest event.
    pub last: chrono::DateTime<chrono::Utc>,
}

/// Whether opening a store may create it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// Create what is missing: publishers and a running bus.
    IfMissing,
    /// Fail when it is missing: tools that only look, or change what exists.
    Never,
}

/// Opens the store a URL names (`memory://...`, `sqlite://...` or
/// `nats://...`), creating it when it does not exist: the SQLite file, or
/// the NATS stream and its dead-letter bucket.
///
/// # Errors
///
/// [`Error::InvalidStoreUrl`](crate::Error::InvalidStoreUrl) naming what is
/// wrong with the URL, or the store's own error when it cannot be opened.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    let parsed = StoreUrl::parse(url)?;
    match parsed.scheme {
        "memory" => Ok(Arc::new(MemoryStore::from_url(&parsed)?)),
        "sqlite" => Ok(Arc::new(
            SqliteStore::from_url(&parsed, Create::IfMissing).await?,
        )),
        "nats" => Ok(Arc::new(
            NatsStore::connect(NatsConfig::from_parsed(&parsed)?).await?,
        )),
        other => Err(unknown_scheme(&parsed, other)),
    }
}

/// Opens the store a URL names only if it already exists, and creates
/// nothing: for tools that read a store, or change only what is in it,
/// where a mistyped URL must be an error rather than a new, empty store.
///
/// A `sqlite://` file must exist. A `nats://` stream must exist; its
/// dead-letter bucket is used when it exists, and while it does not there
/// are no dead letters (until one is added, which creates it, as
/// [`open`] would have). `memory://` is refused: such a store lives only
/// inside the process that opened it, so there is never one to find.
///
/// # Errors
///
/// [`Error::StoreNotFound`] naming what is missing and where;
/// [`Error::InvalidStoreUrl`] naming what is wrong with the URL; or the
/// store's own error when it cannot be opened.
pub async fn open_existing(url: &str) -> Result<Arc<dyn Store>> {
    let parsed = StoreUrl::parse(url)?;
    match parsed.scheme {
        "memory" => Err(Error::StoreNotFound {
            store: "memory",
            message: "a `memory://` store lives only inside the process that opened it, so \
                      there is none to open here; use a `sqlite://` or `nats://` store"
                .to_owned(),
        }),
        "sqlite" => Ok(Arc::new(
            SqliteStore::from_url(&parsed, Create::Never).await?,
        )),
        "nats" => Ok(Arc::new(
            NatsStore::connect_existing(NatsConfig::from_parsed(&parsed)?).await?,
        )),
        other => Err(unknown_scheme(&parsed, other)),
    }
}

fn unknown_scheme(url: &StoreUrl<'_>, scheme: &str) -> Error {
    url.invalid(format!(
        "unknown store `{scheme}://`; available: `memory://`, `sqlite://`, `nats://`"
    ))
}
