//! The rewrite capability: replacing stored events' data in place, what
//! [`migrate`](crate::migrate()) needs to bring history to the current
//! versions.

use serde_json::value::RawValue;

use crate::error::Result;
use crate::future::BoxFuture;

/// Rewriting stored events in place (see [`Store`](super::Store)).
pub trait StoreRewrite: Send + Sync {
    /// Replaces the data and version of the events with these seqs, all
    /// in one transaction, and returns how many it found. Ids, seqs,
    /// times and every other attribute stay as they are.
    fn rewrite(&self, events: Vec<Rewritten>) -> BoxFuture<'_, Result<u64>>;
}

/// One stored event's new data and version.
#[derive(Debug, Clone)]
pub struct Rewritten {
    /// The event's seq.
    pub seq: u64,
    /// The version `data` is shaped as.
    pub version: u32,
    /// The new data.
    pub data: Box<RawValue>,
}
