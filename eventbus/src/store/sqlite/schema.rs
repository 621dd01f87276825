//! The SQLite file's layout, its pragmas and its migrations.
//!
//! `PRAGMA user_version` holds the schema version. Opening a file runs every
//! migration above its version in one transaction, so a file is always at
//! one whole version; a file from a newer eventbus is refused rather than
//! misread.

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, TransactionBehavior};

/// The schema version this build writes and reads.
pub(crate) const SCHEMA_VERSION: i64 = 9;

/// Each entry migrates from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: events, with seqs never reused (AUTOINCREMENT) even after
    // retention or `clear` removed the newest rows; per-handler checkpoints.
    r#"
    CREATE TABLE events (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        id              TEXT    NOT NULL UNIQUE,
        topic           TEXT    NOT NULL,
        time_ns         INTEGER NOT NULL,
        source          TEXT    NOT NULL,
        correlation_id  TEXT,
        causation_id    TEXT,
        idempotency_key TEXT,
        headers         TEXT,
        event_name      TEXT    NOT NULL,
        event_version   INTEGER NOT NULL,
        data            TEXT    NOT NULL
    );
    CREATE INDEX events_by_topic ON events (topic, seq);
    CREATE INDEX events_by_time ON events (time_ns);
    CREATE INDEX events_by_source ON events (source, seq);
    CREATE INDEX events_by_correlation ON events (correlation_id) WHERE correlation_id IS NOT NULL;
    CREATE TABLE checkpoints (
        handler    TEXT    PRIMARY KEY,
        seq        INTEGER NOT NULL,
        updated_ns INTEGER NOT NULL
    );
    "#,
    // 1 -> 2: dead letters, each keeping its envelope in CloudEvents JSON.
    r#"
    CREATE TABLE dead_letters (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        handler         TEXT    NOT NULL,
        seq             INTEGER NOT NULL,
        envelope        TEXT    NOT NULL,
        error           TEXT    NOT NULL,
        attempts        INTEGER NOT NULL,
        time_ns         INTEGER NOT NULL,
        retry_requested INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX dead_letters_by_handler ON dead_letters (handler, id);
    "#,
    // 2 -> 3: finding the first publish of an idempotency key.
    r#"
    CREATE INDEX events_by_idempotency_key ON events (idempotency_key, seq)
        WHERE idempotency_key IS NOT NULL;
    "#,
    // 3 -> 4: runs of seqs a handler finished after its checkpoint, so a
    // redelivery after a crash skips them; pruned as the checkpoint passes.
    r#"
    CREATE TABLE handled (
        handler   TEXT    NOT NULL,
        first_seq INTEGER NOT NULL,
        last_seq  INTEGER NOT NULL,
        PRIMARY KEY (handler, first_seq)
    ) WITHOUT ROWID;
    "#,
    // 4 -> 5: which process runs each handler, until when; renewed while
    // it runs, taken over by a standby once expired.
    r#"
    CREATE TABLE leases (
        handler    TEXT    PRIMARY KEY,
        holder     TEXT    NOT NULL,
        expires_ns INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 5 -> 6: the CloudEvents `subject` and `dataschema`, kept as given;
    // headers now keep integer and boolean values as JSON numbers and
    // booleans (older rows hold strings, which read as strings).
    r#"
    ALTER TABLE events ADD COLUMN subject TEXT;
    ALTER TABLE events ADD COLUMN dataschema TEXT;
    CREATE INDEX events_by_subject ON events (subject, seq) WHERE subject IS NOT NULL;
    "#,
    // 6 -> 7: entity streams. An aggregate's events carry their place in
    // their stream (type name + subject); the unique index reads one
    // entity's events without touching the rest and refuses a second
    // event at one place, whoever writes. Snapshots: each entity's newest
    // state per state version.
    r#"
    ALTER TABLE events ADD COLUMN stream_version INTEGER;
    CREATE UNIQUE INDEX events_by_stream ON events (event_name, subject, stream_version)
        WHERE stream_version IS NOT NULL;
    CREATE TABLE snapshots (
        kind          TEXT    NOT NULL,
        id            TEXT    NOT NULL,
        state_version INTEGER NOT NULL,
        version       INTEGER NOT NULL,
        state         TEXT    NOT NULL,
        time_ns       INTEGER NOT NULL,
        PRIMARY KEY (kind, id, state_version)
    ) WITHOUT ROWID;
    "#,
    // 7 -> 8: events published later: each kept in CloudEvents JSON until
    // due, then moved into `events` in the transaction that deletes it.
    r#"
    CREATE TABLE scheduled (
        id       TEXT    PRIMARY KEY,
        due_ns   INTEGER NOT NULL,
        envelope TEXT    NOT NULL
    );
    CREATE INDEX scheduled_by_due ON scheduled (due_ns, id);
    "#,
    // 8 -> 9: saga instances, one row each, replaced only at the version
    // the writer loaded (optimistic concurrency); `open` for counting.
    r#"
    CREATE TABLE sagas (
        saga       TEXT    NOT NULL,
        key        TEXT    NOT NULL,
        version    INTEGER NOT NULL,
        open       INTEGER NOT NULL,
        record     TEXT    NOT NULL,
        updated_ns INTEGER NOT NULL,
        PRIMARY KEY (saga, key)
    ) WITHOUT ROWID;
    CREATE INDEX sagas_open ON sagas (saga) WHERE open = 1;
    "#,
];

/// How hard commits push to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Synchronous {
    /// fsync the WAL on every commit: a committed event survives power loss.
    Full,
    /// fsync only at checkpoints: survives a process crash, not power loss.
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Pragmas every connection needs, and the `topic_matches` SQL function
/// that pushes pattern matching down into queries with the same grammar
/// code the rest of eventbus uses.
pub(crate) fn configure(conn: &Connection, synchronous: Synchronous) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", synchronous.pragma())?;
    conn.create_scalar_function(
        "topic_matches",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let text = |i| {
                ctx.get_raw(i)
                    .as_str()
                    .map_err(|e| rusqlite::Error::UserFunctionError(e.into()))
            };
            let (pattern, topic) = (text(0)?, text(1)?);
            Ok(eventbus_topic::matches(pattern, topic))
        },
    )
}

/// Brings a freshly opened writer connection to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), String> {
    let sql = |e: rusqlite::Error| e.to_string();
    let version = schema_version(conn)?;
    if version == SCHEMA_VERSION {
        // Nothing to write: opening a current file takes no write lock, so
        // it never waits on (or for) another process using the file.
        return ensure_wal(conn);
    }
    if version == 0 {
        // Incremental auto-vacuum lets `clear` and retention give space
        // back; it only takes effect before the first table exists.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(sql)?;
    }
    ensure_wal(conn)?;
    // Another process may be migrating the same file: take the write lock
    // first, then look at the version again.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let version = schema_version(&tx)?;
    for (from, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(step)
            .map_err(|e| format!("migration from schema version {from} failed: {e}"))?;
    }
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sql)?;
    }
    tx.commit().map_err(sql)
}

/// The file's schema version, refusing one newer than this build reads.
fn schema_version(conn: &Connection) -> Result<i64, String> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| e.to_string())?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "the file has schema version {version}, newer than this eventbus reads \
             ({SCHEMA_VERSION}); upgrade eventbus to open it"
        ));
    }
    Ok(version)
}

/// Switches the file to WAL mode unless it already is (the mode is kept in
/// the file).
fn ensure_wal(conn: &Connection) -> Result<(), String> {
    let sql = |e: rusqlite::Error| e.to_string();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .map_err(sql)?;
    if mode.eq_ignore_ascii_case("wal") {
        return Ok(());
    }
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sql)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("could not switch to WAL mode (got `{mode}`)"));
    }
    Ok(())
}
