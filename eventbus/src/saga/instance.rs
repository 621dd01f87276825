//! `SagaInstance`: one instance as `bus.saga_instances()` and the CLI show
//! it.

use chrono::{DateTime, Utc};

use super::record::Record;
use crate::error::Result;
use crate::store::StoredSaga;

/// One saga instance: where it stands and what it holds.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SagaInstance {
    /// The saga type's name.
    pub saga: String,
    /// The instance's correlation value, as text.
    pub key: String,
    /// Its version: how many times it was saved.
    pub version: u64,
    /// Whether it is still open.
    pub open: bool,
    /// The correlation id its events share.
    pub correlation_id: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// When a step last changed it.
    pub updated: DateTime<Utc>,
    /// Its state, as JSON.
    pub state: serde_json::Value,
    /// The ids of its scheduled events that have neither fired nor been
    /// cancelled.
    pub timers: Vec<String>,
    /// How many effects of its last step (events to send, timers to set
    /// or cancel) are saved but not known to be done: a step that died in
    /// between leaves them for its redelivery or the next step to do. A
    /// completed instance is finished once this is 0.
    pub pending: usize,
}

impl SagaInstance {
    /// Reads a stored instance's record.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEvent`](crate::Error::InvalidEvent) when the record
    /// does not read.
    pub fn from_stored(stored: &StoredSaga) -> Result<Self> {
        let record = Record::parse(&stored.saga, &stored.key, &stored.record)?;
        Ok(SagaInstance {
            saga: stored.saga.clone(),
            key: stored.key.clone(),
            version: stored.version,
            open: stored.open,
            correlation_id: record.correlation_id,
            started: record.started,
            updated: record.updated,
            state: serde_json::from_str(record.state.get()).unwrap_or(serde_json::Value::Null),
            timers: record.timers,
            pending: record.pending.len(),
        })
    }
}
