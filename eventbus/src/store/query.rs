//! A history query, as every store understands it.

use chrono::{DateTime, Utc};

use crate::envelope::{RawEnvelope, Scope};
use crate::topic::Pattern;

/// Which end of history a query starts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Oldest first (increasing seq).
    #[default]
    Oldest,
    /// Newest first (decreasing seq).
    Newest,
}

/// Filters over stored events; every field is optional and they combine
/// with "and". Built through [`bus.history()`](crate::Bus::history).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Query {
    /// Only topics matching one of these patterns (empty: any).
    pub patterns: Vec<Pattern>,
    /// Only these exact topics (empty: any).
    pub topics: Vec<String>,
    /// Only events from this source.
    pub source: Option<String>,
    /// Only events with this CloudEvents `subject` (such as an entity id).
    pub subject: Option<String>,
    /// Only events published at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events published before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only events with this correlation id.
    pub correlation_id: Option<String>,
    /// Only events published in this scope or below it.
    pub scope: Option<Scope>,
    /// Only events with a seq greater than this.
    pub after_seq: Option<u64>,
    /// Only events with a seq less than this.
    pub before_seq: Option<u64>,
    /// At most this many events.
    pub limit: Option<usize>,
    /// Oldest or newest first.
    pub order: Order,
    /// Marks every envelope as replayed (the `replay` header), for replays.
    pub replay: bool,
}

impl Query {
    /// Whether an envelope passes every filter (the limit aside).
    pub fn matches(&self, env: &RawEnvelope) -> bool {
        (self.patterns.is_empty() || self.patterns.iter().any(|p| p.matches(env.topic())))
            && (self.topics.is_empty() || self.topics.iter().any(|t| t == env.topic()))
            && self.source.as_deref().is_none_or(|s| s == env.source())
            && self
                .subject
                .as_deref()
                .is_none_or(|s| Some(s) == env.subject())
            && self.since.is_none_or(|t| env.time() >= t)
            && self.until.is_none_or(|t| env.time() < t)
            && self
                .correlation_id
                .as_deref()
                .is_none_or(|c| Some(c) == env.correlation_id())
            && self.scope.as_ref().is_none_or(|s| s.contains(env.scope()))
            && self.after_seq.is_none_or(|s| env.seq() > s)
            && self.before_seq.is_none_or(|s| env.seq() < s)
    }
}
