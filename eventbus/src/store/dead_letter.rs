//! Dead letters: envelopes a handler gave up on, with why.

use chrono::{DateTime, Utc};

use crate::envelope::RawEnvelope;
use crate::error::Result;
use crate::future::BoxFuture;

/// Dead letters kept by the store (see [`Store`](super::Store)).
pub trait DeadLetterStore: Send + Sync {
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
}

/// An envelope a handler failed on after its last attempt (or could not
/// decode), kept so it can be inspected, retried or purged.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The dead letter's own id, assigned by the store.
    pub id: u64,
    /// The handler that gave up.
    pub handler: String,
    /// The event, as it was delivered.
    pub envelope: RawEnvelope,
    /// The last error.
    pub error: String,
    /// How many attempts were made.
    pub attempts: u32,
    /// When the handler gave up.
    pub time: DateTime<Utc>,
    /// Whether someone (such as `eventbus dlq retry`) asked for a retry
    /// that the bus running the handler has not made yet.
    pub retry_requested: bool,
}

/// A new dead letter, as the bus hands it to the store.
#[derive(Debug, Clone)]
pub struct NewDeadLetter {
    /// The handler that gave up.
    pub handler: String,
    /// The event.
    pub envelope: RawEnvelope,
    /// The last error.
    pub error: String,
    /// How many attempts were made.
    pub attempts: u32,
}

/// Which dead letters to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetterQuery {
    /// Only this handler's.
    pub handler: Option<String>,
    /// Only the dead letter with this id.
    pub id: Option<u64>,
    /// Only those with a retry requested.
    pub retry_requested: bool,
    /// At most this many, oldest first.
    pub limit: Option<usize>,
}

impl DeadLetterQuery {
    /// Every dead letter.
    pub fn all() -> Self {
        DeadLetterQuery::default()
    }

    /// One handler's dead letters.
    pub fn handler(name: impl Into<String>) -> Self {
        DeadLetterQuery {
            handler: Some(name.into()),
            ..DeadLetterQuery::default()
        }
    }

    /// The dead letter with this id.
    pub fn id(id: u64) -> Self {
        DeadLetterQuery {
            id: Some(id),
            ..DeadLetterQuery::default()
        }
    }

    /// Only those with a retry requested.
    pub fn retry_requested(mut self) -> Self {
        self.retry_requested = true;
        self
    }

    /// Whether a dead letter passes the filters (the limit aside).
    pub fn matches(&self, dl: &DeadLetter) -> bool {
        self.handler.as_deref().is_none_or(|h| h == dl.handler)
            && self.id.is_none_or(|id| id == dl.id)
            && (!self.retry_requested || dl.retry_requested)
    }
}
