//! Scheduled events on SQLite: the `scheduled` table, and moving due
//! events into `events` on the writer thread.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::SqliteStore;
use super::writer::{self, Op};
use crate::envelope::{Draft, RawEnvelope};
use crate::error::{Error, Result};
use crate::future::BoxFuture;
use crate::store::schedules::{ScheduleStore, Scheduled};

/// A time as nanoseconds since 1970, the form the `events` and
/// `scheduled` tables keep.
pub(super) fn time_ns(time: DateTime<Utc>) -> Result<i64> {
    time.timestamp_nanos_opt()
        .ok_or_else(|| Error::InvalidEvent {
            reason: format!(
                "its time {} is outside what a sqlite:// store keeps exactly \
             (1677-09-21 to 2262-04-11, as nanoseconds since 1970)",
                time.to_rfc3339()
            ),
        })
}

impl ScheduleStore for SqliteStore {
    fn schedule(&self, draft: Draft, due: DateTime<Utc>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let due_ns = time_ns(due)?;
            let id = draft.id().to_string();
            let envelope = draft
                .seal(0)
                .to_cloudevent_json()
                .map_err(|e| Error::InvalidEvent {
                    reason: format!("it does not encode for scheduling: {e}"),
                })?;
            self.write("scheduling an event", move |tx| {
                tx.execute(
                    "INSERT INTO scheduled (id, due_ns, envelope) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO NOTHING",
                    params![id, due_ns, envelope],
                )
                .map(|n| n as u64)
            })
            .await
            .map(drop)
        })
    }

    fn cancel(&self, id: &str) -> BoxFuture<'_, Result<bool>> {
        let id = id.to_owned();
        Box::pin(async move {
            let removed = self
                .write("cancelling a scheduled event", move |tx| {
                    tx.execute("DELETE FROM scheduled WHERE id = ?1", [&id])
                        .map(|n| n as u64)
                })
                .await?;
            Ok(removed > 0)
        })
    }

    fn scheduled(&self) -> BoxFuture<'_, Result<Vec<Scheduled>>> {
        Box::pin(async move {
            let rows: Vec<(String, i64, String)> = self
                .read(|conn| {
                    let mut stmt = conn.prepare_cached(
                        "SELECT id, due_ns, envelope FROM scheduled ORDER BY due_ns, id",
                    )?;
                    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                    rows.collect()
                })
                .await?;
            Ok(rows
                .into_iter()
                .filter_map(|(id, due_ns, json)| {
                    match RawEnvelope::from_cloudevent_json(json.as_bytes()) {
                        Ok(envelope) => Some(Scheduled {
                            due: DateTime::from_timestamp_nanos(due_ns),
                            envelope,
                        }),
                        Err(e) => {
                            tracing::error!(id, error = %e, "a scheduled event does not read");
                            None
                        }
                    }
                })
                .collect())
        })
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<DateTime<Utc>>>> {
        Box::pin(async move {
            let next: Option<i64> = self
                .read(|conn| conn.query_row("SELECT MIN(due_ns) FROM scheduled", [], |r| r.get(0)))
                .await?;
            Ok(next.map(DateTime::from_timestamp_nanos))
        })
    }

    fn release_due(&self, now: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<RawEnvelope>>> {
        Box::pin(async move {
            let now_ns = time_ns(now)?;
            let released = self
                .call(move |reply| {
                    Op::Run(Box::new(move |conn| {
                        let _ = reply.send(writer::release_due(conn, now_ns));
                    }))
                })
                .await?;
            Ok(released)
        })
    }
}
