//! Where events live: the core [`Store`] trait, the capability traits some
//! stores add, and the stores, chosen by URL (`memory://` is the default).
//!
//! A store appends drafts (assigning each a seq) and answers history
//! queries as a stream; capabilities add per-handler checkpoints, dead
//! letters, admin operations, server-side consumers and handler
//! transactions. The bus does everything else (routing, delivery,
//! retries) on top of these, so every store offers the same API. This
//! layer knows nothing of handlers or buses.

mod admin;
mod checkpoints;
mod consumer;
mod core;
mod dead_letter;
mod durability;
mod memory;
#[cfg(feature = "nats")]
pub(crate) mod nats;
mod open;
mod query;
#[cfg(feature = "redis")]
pub(crate) mod redis;
mod rewrite;
mod sagas;
mod schedules;
#[cfg(feature = "sqlite")]
mod sqlite;
mod streams;
#[cfg(feature = "sqlite")]
mod transactions;
mod url;

pub use self::core::Store;
#[cfg(feature = "redis")]
pub use self::redis::{RedisConfig, RedisStore};
pub use self::url::{MAX_DURATION, parse_duration};
pub use admin::{StoreAdmin, TopicSummary};
pub use checkpoints::CheckpointStore;
pub use consumer::{Acknowledge, ConsumerSpec, Delivery, ServerConsumers, Start};
pub use dead_letter::{DeadLetter, DeadLetterQuery, DeadLetterStore, NewDeadLetter};
pub use durability::Durability;
pub use memory::MemoryStore;
#[cfg(feature = "nats")]
pub use nats::{NatsConfig, NatsStore};
#[cfg(all(feature = "sqlite", feature = "nats"))]
pub(crate) use open::check_url;
pub use open::{open, open_existing};
pub use query::{Order, Query};
pub use rewrite::{Rewritten, StoreRewrite};
pub use sagas::{SagaStore, StoredSaga};
pub use schedules::{ScheduleStore, Scheduled};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use streams::{Snapshot, StreamEntry, StreamId, StreamStore};
#[cfg(feature = "sqlite")]
pub use transactions::{HandlerTransactions, Ran, TransactionFn};

pub use crate::future::BoxStream;
