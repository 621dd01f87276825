//! The saga capability: one record per process-manager instance, replaced
//! under optimistic concurrency, so two steps of one instance never
//! interleave, whichever processes run them.

use crate::error::Result;
use crate::future::BoxFuture;

/// One saga instance as stored: the record is the runtime's JSON (state,
/// status, the events it still has to send); the store only keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSaga {
    /// The saga type's name (`#[saga(name = "...")]`).
    pub saga: String,
    /// The instance's correlation value, as text.
    pub key: String,
    /// Its version: 1 after the first save, one more per save.
    pub version: u64,
    /// Whether the instance is still open (not completed).
    pub open: bool,
    /// The record, JSON.
    pub record: String,
}

/// Saga instances (see [`Store`](super::Store)).
pub trait SagaStore: Send + Sync {
    /// The instance of `saga` keyed `key`, if one was ever saved.
    fn load_saga(&self, saga: &str, key: &str) -> BoxFuture<'_, Result<Option<StoredSaga>>>;

    /// Replaces the instance's record if it is still at `expected` (0: no
    /// instance yet) and returns the new version; otherwise fails with
    /// [`Error::Conflict`](crate::Error::Conflict) naming the version
    /// found, and stores nothing.
    fn save_saga(
        &self,
        saga: &str,
        key: &str,
        expected: u64,
        open: bool,
        record: String,
    ) -> BoxFuture<'_, Result<u64>>;

    /// Every instance, of one saga type or of all, open ones only or all,
    /// sorted by saga and key.
    fn saga_instances(
        &self,
        saga: Option<&str>,
        open_only: bool,
    ) -> BoxFuture<'_, Result<Vec<StoredSaga>>>;
}

/// The conflict error every store answers a stale save with.
pub(crate) fn conflict(saga: &str, key: &str, expected: u64, actual: u64) -> crate::Error {
    crate::Error::Conflict {
        stream: format!("saga {saga} {key}"),
        expected,
        actual,
    }
}
