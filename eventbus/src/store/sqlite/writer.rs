//! The writer thread: every write to the file goes through it, and
//! concurrent appends share one transaction and one fsync (group commit).
//!
//! Publishers encode their event on their own task, send the row here and
//! wait for the reply, which comes only after the commit that holds their
//! row. The thread takes whatever has queued up while the previous commit
//! was syncing, so the batch grows with the load and nobody waits for a
//! timer.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use crate::envelope::{Draft, RawEnvelope};

/// The most rows one transaction takes, so that one huge burst does not
/// hold every publisher behind a single enormous commit.
const MAX_BATCH: usize = 4096;

/// One event ready for its row: the draft plus its encoded parts.
pub(crate) struct Row {
    pub(crate) draft: Draft,
    pub(crate) data: String,
    pub(crate) headers: Option<String>,
    pub(crate) time_ns: i64,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, String>>;

/// A write other than an append, run on the writer thread in arrival order.
pub(crate) type WriteFn = Box<dyn FnOnce(&mut Connection) -> rusqlite::Result<u64> + Send>;

pub(crate) enum Op {
    Append(Box<Row>, Reply<RawEnvelope>),
    Write(&'static str, WriteFn, Reply<u64>),
}

/// What retention keeps: events younger than `max_age_ns` and the newest
/// `max_events`; `None` keeps everything on that axis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Retention {
    pub(crate) max_age_ns: Option<i64>,
    pub(crate) max_events: Option<u64>,
}

impl Retention {
    pub(crate) fn is_unbounded(&self) -> bool {
        self.max_age_ns.is_none() && self.max_events.is_none()
    }
}

/// Runs until every sender is gone, then closes the connection.
///
/// Operations run in arrival order; consecutive appends share a
/// transaction. With a bounded `retention`, it is applied every `every`.
pub(crate) fn run(
    mut conn: Connection,
    ops: mpsc::Receiver<Op>,
    retention: Retention,
    every: Duration,
) {
    let mut queued = Vec::new();
    let mut last_retention = Instant::now();
    loop {
        let first = if retention.is_unbounded() {
            ops.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
        } else {
            ops.recv_timeout(every.saturating_sub(last_retention.elapsed()))
        };
        match first {
            Ok(op) => queued.push(op),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        while !queued.is_empty() && queued.len() < MAX_BATCH {
            match ops.try_recv() {
                Ok(op) => queued.push(op),
                Err(_) => break,
            }
        }
        let mut appends = Vec::new();
        for op in queued.drain(..) {
            match op {
                Op::Append(row, reply) => appends.push((row, reply)),
                other => {
                    if !appends.is_empty() {
                        commit_appends(&mut conn, std::mem::take(&mut appends));
                    }
                    run_other(&mut conn, other);
                }
            }
        }
        if !appends.is_empty() {
            commit_appends(&mut conn, appends);
        }
        if !retention.is_unbounded() && last_retention.elapsed() >= every {
            last_retention = Instant::now();
            if let Err(e) = retain(&mut conn, retention) {
                tracing::warn!(error = %e, "sqlite retention failed; will try again");
            }
        }
    }
}

fn commit_appends(conn: &mut Connection, batch: Vec<(Box<Row>, Reply<RawEnvelope>)>) {
    let result = (|| -> rusqlite::Result<Vec<i64>> {
        let tx = conn.transaction()?;
        let mut seqs = Vec::with_capacity(batch.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (id, topic, time_ns, source, correlation_id, causation_id,
                     idempotency_key, headers, event_name, event_version, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (id) DO NOTHING",
            )?;
            for (row, _) in &batch {
                let m = &row.draft.meta;
                insert.execute(params![
                    m.id.hyphenated().to_string(),
                    &*m.topic,
                    row.time_ns,
                    &*m.source,
                    m.correlation_id,
                    m.causation_id,
                    m.idempotency_key,
                    row.headers,
                    &*m.event_name,
                    m.event_version,
                    row.data,
                ])?;
                // An event id that is already stored (an import run twice)
                // adds nothing and answers with the stored seq.
                let seq = if tx.changes() == 1 {
                    tx.last_insert_rowid()
                } else {
                    tx.prepare_cached("SELECT seq FROM events WHERE id = ?1")?
                        .query_row([m.id.hyphenated().to_string()], |r| r.get(0))?
                };
                seqs.push(seq);
            }
        }
        tx.commit()?;
        Ok(seqs)
    })();
    match result {
        Ok(seqs) => {
            for ((row, reply), seq) in batch.into_iter().zip(seqs) {
                // A publisher that gave up waiting no longer needs the reply.
                let _ = reply.send(Ok(row.draft.seal(seq as u64)));
            }
        }
        Err(e) => {
            let message = format!("append failed, nothing of this batch was stored: {e}");
            for (_, reply) in batch {
                let _ = reply.send(Err(message.clone()));
            }
        }
    }
}

fn run_other(conn: &mut Connection, op: Op) {
    match op {
        Op::Append(row, reply) => commit_appends(conn, vec![(row, reply)]),
        Op::Write(what, write, reply) => {
            let _ = reply.send(write(conn).map_err(|e| format!("{what} failed: {e}")));
        }
    }
}

/// Deletes what retention does not keep; returns how many events went.
pub(crate) fn retain(conn: &mut Connection, retention: Retention) -> rusqlite::Result<u64> {
    let mut removed = 0;
    if let Some(age) = retention.max_age_ns {
        removed += conn.execute(
            "DELETE FROM events WHERE time_ns < ?1",
            params![now_ns() - age],
        )? as u64;
    }
    if let Some(keep) = retention.max_events {
        removed += conn.execute(
            "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?1",
            params![keep as i64],
        )? as u64;
    }
    if removed > 0 {
        reclaim(conn)?;
    }
    Ok(removed)
}

/// Gives the pages freed by deletions back to the file system. The pragma
/// frees pages as it is stepped, so it is stepped to the end.
pub(crate) fn reclaim(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

pub(crate) fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}
