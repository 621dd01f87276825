//! Saga instances on SQLite: the `sagas` table, one row per instance,
//! replaced on the writer thread only at the version the step loaded.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::error::Result;
use crate::future::BoxFuture;
use crate::store::sagas::{self, SagaStore, StoredSaga};

/// Marks a write's answer as "not saved; the row is at this version": the
/// writer's closures answer a number, and versions never come near it.
const STALE: u64 = 1 << 63;

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredSaga> {
    Ok(StoredSaga {
        saga: r.get(0)?,
        key: r.get(1)?,
        version: r.get::<_, i64>(2)?.unsigned_abs(),
        open: r.get(3)?,
        record: r.get(4)?,
    })
}

impl SagaStore for SqliteStore {
    fn load_saga(&self, saga: &str, key: &str) -> BoxFuture<'_, Result<Option<StoredSaga>>> {
        let (saga, key) = (saga.to_owned(), key.to_owned());
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT saga, key, version, open, record FROM sagas WHERE saga = ?1 AND key = ?2",
            )?
            .query_row(params![saga, key], row)
            .optional()
        })
    }

    fn save_saga(
        &self,
        saga: &str,
        key: &str,
        expected: u64,
        open: bool,
        record: String,
    ) -> BoxFuture<'_, Result<u64>> {
        let (saga, key) = (saga.to_owned(), key.to_owned());
        Box::pin(async move {
            let now = super::schedules::time_ns(chrono::Utc::now())?;
            let (s, k) = (saga.clone(), key.clone());
            let answer = self
                .write("saving a saga instance", move |tx| {
                    let actual = tx
                        .prepare_cached("SELECT version FROM sagas WHERE saga = ?1 AND key = ?2")?
                        .query_row(params![s, k], |r| r.get::<_, i64>(0))
                        .optional()?
                        .unwrap_or(0)
                        .unsigned_abs();
                    if actual != expected {
                        return Ok(STALE | actual);
                    }
                    tx.prepare_cached(
                        "INSERT INTO sagas (saga, key, version, open, record, updated_ns)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (saga, key) DO UPDATE SET version = excluded.version,
                             open = excluded.open, record = excluded.record,
                             updated_ns = excluded.updated_ns",
                    )?
                    .execute(params![
                        s,
                        k,
                        (expected + 1).cast_signed(),
                        open,
                        record,
                        now
                    ])?;
                    Ok(expected + 1)
                })
                .await?;
            if answer & STALE != 0 {
                return Err(sagas::conflict(&saga, &key, expected, answer & !STALE));
            }
            Ok(answer)
        })
    }

    fn saga_instances(
        &self,
        saga: Option<&str>,
        open_only: bool,
    ) -> BoxFuture<'_, Result<Vec<StoredSaga>>> {
        let saga = saga.map(str::to_owned);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT saga, key, version, open, record FROM sagas
                 WHERE (?1 IS NULL OR saga = ?1) AND (?2 = 0 OR open = 1)
                 ORDER BY saga, key",
            )?;
            let rows = stmt.query_map(params![saga, open_only], row)?;
            rows.collect()
        })
    }
}
