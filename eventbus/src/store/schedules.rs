//! The schedules capability: events stored now and published later, when
//! due, each exactly once even when several processes share the store.

use chrono::{DateTime, Utc};

use crate::envelope::{Draft, RawEnvelope};
use crate::error::Result;
use crate::future::{BoxFuture, BoxStream};

/// An event waiting for its time.
#[derive(Debug, Clone)]
pub struct Scheduled {
    /// When it is due.
    pub due: DateTime<Utc>,
    /// The event as it will be published (its seq is 0 until then).
    pub envelope: RawEnvelope,
}

/// Scheduled events (see [`Store`](super::Store)).
pub trait ScheduleStore: Send + Sync {
    /// Keeps `draft` until `due`, as durably as an append.
    fn schedule(&self, draft: Draft, due: DateTime<Utc>) -> BoxFuture<'_, Result<()>>;

    /// Drops the scheduled event with this id; false when there is none
    /// (never scheduled, cancelled, or already published).
    fn cancel(&self, id: &str) -> BoxFuture<'_, Result<bool>>;

    /// Every scheduled event, soonest first.
    fn scheduled(&self) -> BoxFuture<'_, Result<Vec<Scheduled>>>;

    /// When the soonest scheduled event is due, if any.
    fn next_due(&self) -> BoxFuture<'_, Result<Option<DateTime<Utc>>>>;

    /// Moves the events due at `now` into history, each once whoever else
    /// asks at the same time, and returns them as stored, to be routed.
    fn release_due(&self, now: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<RawEnvelope>>>;

    /// For a store whose server keeps the timers (NATS): the events this
    /// process moves into history as they come due, each once across
    /// processes, to be routed. The bus then follows this stream instead
    /// of asking [`next_due`](ScheduleStore::next_due) and
    /// [`release_due`](ScheduleStore::release_due). `None` (the default):
    /// the bus asks.
    fn released(&self) -> Option<BoxStream<'static, Result<RawEnvelope>>> {
        None
    }
}
