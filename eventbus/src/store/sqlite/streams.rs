//! Entity streams and snapshots on SQLite: appends checked against the
//! stream's version in one `IMMEDIATE` transaction, reads through the
//! unique stream index.

use rusqlite::{OptionalExtension, params};

use super::writer::{self, Op};
use super::{SqliteStore, reader, sqlite_error};
use crate::envelope::{Draft, RawEnvelope};
use crate::error::{Error, Result};
use crate::future::BoxFuture;
use crate::store::streams::{self, Snapshot, StreamEntry, StreamId, StreamStore};

impl StreamStore for SqliteStore {
    fn append_to_stream(
        &self,
        stream: &StreamId,
        expected: u64,
        mut drafts: Vec<Draft>,
    ) -> BoxFuture<'_, Result<Vec<RawEnvelope>>> {
        let stream = stream.clone();
        Box::pin(async move {
            streams::place(&stream, expected, &mut drafts);
            let rows = drafts
                .into_iter()
                .map(|draft| self.row(draft).map(|row| *row))
                .collect::<Result<Vec<_>>>()?;
            let (kind, id) = (stream.kind.clone(), stream.id.clone());
            let outcome = self
                .call(move |reply| {
                    Op::Run(Box::new(move |conn| {
                        let _ = reply.send(writer::append_stream(conn, &kind, &id, expected, rows));
                    }))
                })
                .await?;
            match outcome {
                writer::StreamAppend::Appended(stored) => Ok(stored),
                writer::StreamAppend::Conflict(actual) => Err(Error::Conflict {
                    stream: stream.to_string(),
                    expected,
                    actual,
                }),
            }
        })
    }

    fn read_stream(
        &self,
        stream: &StreamId,
        after: u64,
        until: Option<u64>,
    ) -> BoxFuture<'_, Result<Vec<RawEnvelope>>> {
        let stream = stream.clone();
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let (after, until) = (clamp(after), clamp(until.unwrap_or(u64::MAX)));
        Box::pin(async move {
            // One entity's few events through the stream index: shorter
            // than the hop to a blocking thread that other reads take, so
            // loading an aggregate reads on the caller's thread.
            let rows = self
                .readers
                .with(move |conn| {
                    let mut stmt = conn.prepare_cached(&format!(
                        "SELECT {} FROM events
                         WHERE event_name = ?1 AND subject = ?2
                           AND stream_version > ?3 AND stream_version <= ?4
                         ORDER BY stream_version",
                        reader::COLUMNS
                    ))?;
                    let rows = stmt
                        .query_map(params![stream.kind, stream.id, after, until], |row| {
                            Ok((row.get::<_, i64>(0)?, reader::envelope(row, false)))
                        })?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(|e| sqlite_error("reading a stream failed", e))?;
            rows.into_iter()
                .map(|(seq, env)| {
                    env.map_err(|reason| Error::BadRow {
                        seq: seq as u64,
                        reason,
                    })
                })
                .collect()
        })
    }

    fn read_stream_data(
        &self,
        stream: &StreamId,
        after: u64,
        until: Option<u64>,
    ) -> BoxFuture<'_, Result<Vec<StreamEntry>>> {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let (after, until) = (clamp(after), clamp(until.unwrap_or(u64::MAX)));
        // On the caller's thread, as `read_stream`.
        let read = self.readers.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT topic, event_version, stream_version, data FROM events
                 WHERE event_name = ?1 AND subject = ?2
                   AND stream_version > ?3 AND stream_version <= ?4
                 ORDER BY stream_version",
            )?;
            let rows = stmt.query_map(params![stream.kind, stream.id, after, until], |row| {
                Ok(StreamEntry {
                    topic: row.get(0)?,
                    event_version: row.get(1)?,
                    stream_version: row.get::<_, i64>(2)? as u64,
                    data: row.get(3)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        });
        Box::pin(std::future::ready(
            read.map_err(|e| sqlite_error("reading a stream failed", e)),
        ))
    }

    fn save_snapshot(&self, snapshot: Snapshot) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.write("saving a snapshot", move |tx| {
                tx.execute(
                    "INSERT INTO snapshots (kind, id, state_version, version, state, time_ns)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (kind, id, state_version) DO UPDATE SET
                         version = excluded.version, state = excluded.state,
                         time_ns = excluded.time_ns
                     WHERE excluded.version > snapshots.version",
                    params![
                        snapshot.stream.kind,
                        snapshot.stream.id,
                        snapshot.state_version,
                        i64::try_from(snapshot.version).unwrap_or(i64::MAX),
                        snapshot.state.get(),
                        writer::now_ns(),
                    ],
                )
                .map(|n| n as u64)
            })
            .await
            .map(drop)
        })
    }

    fn load_snapshot(
        &self,
        stream: &StreamId,
        state_version: u32,
    ) -> BoxFuture<'_, Result<Option<Snapshot>>> {
        let stream = stream.clone();
        Box::pin(async move {
            let found = self
                .read({
                    let stream = stream.clone();
                    move |conn| {
                        conn.prepare_cached(
                            "SELECT version, state FROM snapshots
                             WHERE kind = ?1 AND id = ?2 AND state_version = ?3",
                        )?
                        .query_row(params![stream.kind, stream.id, state_version], |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                        })
                        .optional()
                    }
                })
                .await?;
            let Some((version, state)) = found else {
                return Ok(None);
            };
            // A snapshot only saves time: one that does not read is as
            // good as none.
            let state = match serde_json::value::RawValue::from_string(state) {
                Ok(state) => state,
                Err(e) => {
                    tracing::warn!(%stream, error = %e, "snapshot is not JSON; loading without it");
                    return Ok(None);
                }
            };
            Ok(Some(Snapshot {
                stream,
                state_version,
                version: version as u64,
                state,
            }))
        })
    }
}
