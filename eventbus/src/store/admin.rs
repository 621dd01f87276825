//! The admin capability: clearing a pattern, per-topic summaries, size.

use crate::error::Result;
use crate::future::BoxFuture;
use crate::topic::Pattern;

/// What operators ask of a store beyond its history (see
/// [`Store`](super::Store)).
pub trait StoreAdmin: Send + Sync {
    /// Deletes every event whose topic matches `pattern` and returns how
    /// many were deleted. Checkpoints are kept.
    fn clear(&self, pattern: &Pattern) -> BoxFuture<'_, Result<u64>>;

    /// Each stored topic with its event count and first and last times,
    /// sorted by topic.
    fn topics(&self) -> BoxFuture<'_, Result<Vec<TopicSummary>>>;

    /// The bytes the store occupies, where that means something.
    fn size_bytes(&self) -> Option<u64>;
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
