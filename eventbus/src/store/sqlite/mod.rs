//! `sqlite://path`: durable history in one SQLite file.
//!
//! WAL mode, `synchronous=FULL` by default: `publish().await` returns after
//! the commit holding the event is fsynced, so an acknowledged event
//! survives a crash of the process or the machine. Writes go through one
//! writer thread that batches concurrent publishes into one transaction
//! (group commit); reads use their own connections, so queries never wait
//! for writes and other processes can read the same file while it is
//! written.
//!
//! URL: `sqlite://PATH` (relative, or absolute after `sqlite:///`,
//! percent-decoded), with options, each given once:
//! `synchronous=full|normal`, `max_age=7d` and `max_events=N` (retention,
//! applied at open and every minute), and `idempotency_window=24h` (how
//! long a repeated idempotency key returns the first event instead of
//! storing a new one). Durations are at most
//! [`MAX_DURATION`](crate::store::MAX_DURATION).

mod reader;
mod rewrite;
mod sagas;
mod schedules;
mod schema;
mod streams;
mod writer;

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::oneshot;

use super::admin::{StoreAdmin, TopicSummary};
use super::checkpoints::CheckpointStore;
use super::core::{Create, Store};
use super::dead_letter::{DeadLetter, DeadLetterQuery, DeadLetterStore, NewDeadLetter};
use super::durability::Durability;
use super::query::Query;
use super::rewrite::StoreRewrite;
use super::sagas::SagaStore;
use super::schedules::ScheduleStore;
use super::streams::StreamStore;
use super::transactions::{HandlerTransactions, Ran, TransactionFn};
use super::url::{Opt, Options, StoreUrl};
use crate::envelope::{Draft, RawEnvelope};
use crate::error::{Error, Result};
use crate::future::BoxFuture;
use crate::future::BoxStream;
use crate::topic::Pattern;
use reader::Readers;
use rusqlite::{OptionalExtension, params};
use schema::Synchronous;
use writer::{Op, Retention, Row};

/// Rows read per page: large enough to amortize a round trip to the
/// blocking pool, small enough that a huge query stays in constant memory.
const PAGE_SIZE: usize = 512;

/// How long a publish with an idempotency key counts as a repeat of the
/// first one with that key.
const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

const OPTIONS: &[Opt] = &[
    Opt::one_of("synchronous", &["full", "normal"]),
    Opt::duration("max_age"),
    // Retention compares it with seqs in SQL, as an i64.
    Opt::integer("max_events", 1, i64::MAX as u64),
    Opt::duration("idempotency_window"),
];

/// How often retention runs while the store is open.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// An event store in one SQLite file. See the [module docs](self).
pub struct SqliteStore {
    path: PathBuf,
    synchronous: Synchronous,
    retention: Retention,
    idempotency_window_ns: i64,
    writer: Mutex<Option<mpsc::Sender<Op>>>,
    pending: Arc<writer::Pending>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Arc<Readers>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("synchronous", &self.synchronous)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed, with mode 0600) the file a `sqlite://` URL names.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidStoreUrl`] for a bad URL or option, [`Error::Store`]
    /// when the file cannot be created, opened or migrated.
    pub async fn open(url: &str) -> Result<Self> {
        Self::from_url(&parse_sqlite(url)?, Create::IfMissing).await
    }

    pub(crate) async fn from_url(url: &StoreUrl<'_>, create: Create) -> Result<Self> {
        let (options, path) = Self::read_url(url)?;
        let synchronous = match options.word("synchronous") {
            Some("normal") => Synchronous::Normal,
            _ => Synchronous::Full,
        };
        let max_age_ns = options.duration("max_age").map(nanos);
        let max_events = options.integer("max_events");
        let idempotency_window = options
            .duration("idempotency_window")
            .unwrap_or(DEFAULT_IDEMPOTENCY_WINDOW);
        // An error other than "missing" (a directory without permission)
        // is left for the opening to report in full.
        if create == Create::Never && matches!(std::fs::exists(&path), Ok(false)) {
            return Err(Error::StoreNotFound {
                store: "sqlite",
                message: format!(
                    "store file {} does not exist; check the path in the store URL (only \
                     publishing, import and a running bus create it)",
                    path.display()
                ),
            });
        }
        let retention = Retention {
            max_age_ns,
            max_events,
        };
        let opened = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || open_writer(&path, synchronous, create))
                .await
                .map_err(|e| Error::store_source("sqlite", "opening the file panicked", e))?
        };
        let conn = opened.map_err(|e| {
            Error::store_source("sqlite", format!("cannot open `{}`", path.display()), e)
        })?;
        let (tx, rx) = mpsc::channel();
        let pending = Arc::new(writer::Pending::default());
        let thread = {
            let pending = Arc::clone(&pending);
            std::thread::Builder::new()
                .name("eventbus-sqlite-writer".into())
                .spawn(move || writer::run(conn, rx, pending, retention, RETENTION_EVERY))
        }
        .map_err(|source| Error::Io {
            doing: "starting the SQLite writer thread",
            source,
        })?;
        let store = SqliteStore {
            readers: Arc::new(Readers::new(path.clone())),
            path,
            synchronous,
            retention,
            idempotency_window_ns: nanos(idempotency_window),
            writer: Mutex::new(Some(tx)),
            pending,
            writer_thread: Mutex::new(Some(thread)),
        };
        if !retention.is_unbounded() {
            store.apply_retention().await?;
        }
        Ok(store)
    }

    /// The options and the file of a URL: all that [`SqliteStore::from_url`]
    /// refuses before it touches the file, so a URL can be checked without
    /// creating one.
    pub(crate) fn read_url(url: &StoreUrl<'_>) -> Result<(Options, PathBuf)> {
        Ok((url.options(OPTIONS)?, Self::path_in(url)?))
    }

    /// The file a `sqlite://` URL names, percent-decoded (`sqlite://a%20b.db`
    /// is `a b.db`): relative after `sqlite://`, absolute after
    /// `sqlite:///`. Nothing is opened and the options are not read.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidStoreUrl`] when the URL is not `sqlite://` or names
    /// no file.
    pub fn path_of(url: &str) -> Result<PathBuf> {
        Self::path_in(&parse_sqlite(url)?)
    }

    fn path_in(url: &StoreUrl<'_>) -> Result<PathBuf> {
        match url.decoded_rest()? {
            path if path.is_empty() => Err(
                url.invalid("no file named; write `sqlite://events.db` or `sqlite:///abs/path.db`")
            ),
            path => Ok(PathBuf::from(path)),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes what the URL's retention options do not keep, now; returns
    /// how many events were removed.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the deletion fails or the store is closed.
    pub async fn apply_retention(&self) -> Result<u64> {
        let retention = self.retention;
        self.write("retention", move |conn| writer::retain(conn, retention))
            .await
    }

    /// Copies the store, as it is at one moment, into a new file at
    /// `destination`, while the store stays in use (by this process and
    /// others): SQLite's online backup, read in one snapshot. The copy is
    /// a complete store file of its own (mode 0600), which
    /// `sqlite://DESTINATION` opens.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when `destination` exists already (a backup never
    /// overwrites), its directory is missing, or the copy fails; a
    /// partial copy is removed.
    pub async fn backup(&self, destination: impl AsRef<Path>) -> Result<()> {
        let (source, destination) = (self.path.clone(), destination.as_ref().to_owned());
        tokio::task::spawn_blocking(move || backup_file(&source, &destination))
            .await
            .map_err(|e| Error::store_source("sqlite", "the backup panicked", e))?
            .map_err(store_error)
    }

    /// Runs `f` on the writer thread in a transaction that, with `mark`,
    /// also records that `handler` finished the event with that seq: the
    /// handler's effect and its mark commit together or not at all. With a
    /// mark, `f` runs in a savepoint of the next group commit and the
    /// answer comes before that commits, with its receipt; without one (a
    /// replay, a dead-letter retry) it commits on its own first. A panic in
    /// `f` rolls back and is resumed in the caller.
    async fn handler_transaction<T, F>(
        &self,
        handler: Arc<str>,
        mark: Option<u64>,
        f: F,
    ) -> Result<(T, Durability)>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        let (outcome, durability) = match mark {
            Some(seq) => {
                let marker = (Arc::clone(&handler), seq);
                let (outcome, receipt) = self
                    .call_answered_soon(move |reply| {
                        Op::InGroup(Box::new(InGroup { marker, f, reply }))
                    })
                    .await?;
                (outcome, Durability::pending(committed(receipt)))
            }
            None => {
                let outcome = self
                    .call(move |reply| {
                        Op::Run(Box::new(move |conn| {
                            let _ = reply.send(Ok(writer::handler_transaction(conn, None, f)));
                        }))
                    })
                    .await?;
                (outcome, Durability::committed())
            }
        };
        let handler = handler.to_string();
        match outcome {
            writer::TxOutcome::Committed(value) => Ok((value, durability)),
            writer::TxOutcome::Failed(source) => Err(Error::Transaction { handler, source }),
            writer::TxOutcome::AlreadyHandled(seq) => Err(Error::AlreadyHandled { handler, seq }),
            writer::TxOutcome::Store(e) => Err(sqlite_error(
                format!(
                    "the transaction of handler `{handler}` could not be committed and was rolled back"
                ),
                e,
            )),
            writer::TxOutcome::Panicked(payload) => std::panic::resume_unwind(payload),
        }
    }

    /// Runs a read on the blocking pool.
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> BoxFuture<'_, Result<T>> {
        let readers = Arc::clone(&self.readers);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || readers.with(f))
                .await
                .map_err(|e| Error::store_source("sqlite", "a read panicked", e))?
                .map_err(|e| sqlite_error("a read failed", e))
        })
    }

    /// A draft as the writer stores it: its data and headers as JSON,
    /// its time in nanoseconds.
    fn row(&self, draft: Draft) -> Result<Box<Row>> {
        let data = draft.data_json()?.get().to_owned();
        let headers = reader::headers_json(&draft.meta.headers);
        let time_ns = schedules::time_ns(draft.meta.time)?;
        let dedup_since_ns = draft
            .meta
            .idempotency_key
            .is_some()
            .then(|| time_ns.saturating_sub(self.idempotency_window_ns));
        Ok(Box::new(Row {
            draft,
            data,
            headers,
            time_ns,
            dedup_since_ns,
        }))
    }

    /// Runs a write on the writer thread, in order with the appends.
    fn write(
        &self,
        what: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<u64> + Send + 'static,
    ) -> BoxFuture<'_, Result<u64>> {
        Box::pin(self.call(move |reply| Op::Write(what, Box::new(f), reply)))
    }

    /// Runs a write on the writer thread that commits without an fsync.
    fn write_unsynced(
        &self,
        what: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<u64> + Send + 'static,
    ) -> BoxFuture<'_, Result<u64>> {
        Box::pin(self.call(move |reply| Op::WriteUnsynced(what, Box::new(f), reply)))
    }

    /// Sends one operation to the writer thread and waits for its reply.
    async fn call<T>(&self, op: impl FnOnce(writer::Reply<T>) -> Op) -> Result<T> {
        let answer = self.send(op)?;
        answer
            .await
            .map_err(|_| writer_gone())?
            .map_err(Error::from)
    }

    /// [`SqliteStore::call`] for an operation the writer answers within
    /// microseconds (a handler's transaction, answered before its group
    /// commits): looks for the answer for a moment before awaiting it,
    /// since parking this worker thread and waking it again costs more
    /// than that on a VM, and a handler working through a backlog pays it
    /// once per event.
    async fn call_answered_soon<T>(&self, op: impl FnOnce(writer::Reply<T>) -> Op) -> Result<T> {
        const SPIN: Duration = Duration::from_micros(50);
        let mut answer = self.send(op)?;
        let spinning = std::time::Instant::now();
        let answer = loop {
            match answer.try_recv() {
                Ok(answer) => break answer,
                Err(oneshot::error::TryRecvError::Closed) => return Err(writer_gone()),
                Err(oneshot::error::TryRecvError::Empty) if spinning.elapsed() < SPIN => {
                    std::hint::spin_loop();
                }
                Err(oneshot::error::TryRecvError::Empty) => {
                    break answer.await.map_err(|_| writer_gone())?;
                }
            }
        };
        answer.map_err(Error::from)
    }

    fn send<T>(
        &self,
        op: impl FnOnce(writer::Reply<T>) -> Op,
    ) -> Result<oneshot::Receiver<std::result::Result<T, writer::WriteError>>> {
        let (reply, answer) = oneshot::channel();
        let sender = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| Error::unavailable("sqlite", "the store is closed", None))?;
        sender
            .send(op(reply))
            .map_err(|_| Error::unavailable("sqlite", "the writer thread has stopped", None))?;
        Ok(answer)
    }
}

fn writer_gone() -> Error {
    Error::unavailable("sqlite", "the writer thread stopped before answering", None)
}

/// Walks a query page by page, reading the next page on the blocking pool
/// while the caller works through the current one.
struct Cursor {
    readers: Arc<Readers>,
    query: Arc<Query>,
    remaining: usize,
    /// Where the next page starts (`Some(None)`: at the beginning), or
    /// `None` once the last page has been read.
    next: Option<Option<u64>>,
    reading: Option<tokio::task::JoinHandle<rusqlite::Result<reader::Page>>>,
}

impl Cursor {
    fn start_reading(&mut self) {
        let Some(after) = self.next.take() else {
            return;
        };
        if self.remaining == 0 {
            return;
        }
        let size = self.remaining.min(PAGE_SIZE);
        let (readers, query) = (Arc::clone(&self.readers), Arc::clone(&self.query));
        self.reading = Some(tokio::task::spawn_blocking(move || {
            readers.page(&query, after, size)
        }));
    }

    async fn next_page(&mut self) -> Option<Vec<Result<RawEnvelope>>> {
        if self.reading.is_none() {
            self.start_reading();
        }
        let size = self.remaining.min(PAGE_SIZE);
        let page = match self.reading.take()?.await {
            Ok(Ok(page)) => page,
            Ok(Err(e)) => return Some(vec![Err(sqlite_error("a history query failed", e))]),
            Err(e) => {
                return Some(vec![Err(Error::store_source(
                    "sqlite",
                    "a history query panicked",
                    e,
                ))]);
            }
        };
        self.remaining -= page.rows.len();
        if page.rows.len() == size {
            self.next = page.last_seq.map(Some);
            self.start_reading();
        }
        Some(page.rows)
    }
}

fn parse_sqlite(url: &str) -> Result<StoreUrl<'_>> {
    let parsed = StoreUrl::parse(url)?;
    if parsed.scheme != "sqlite" {
        return Err(parsed.invalid("expected a `sqlite://` URL"));
    }
    Ok(parsed)
}

/// Nanoseconds as rows count them; durations from options fit, being at
/// most `MAX_DURATION`.
fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

fn store_error(message: impl Into<String>) -> Error {
    Error::store("sqlite", message)
}

/// A failure with SQLite's error as its source: "unavailable" when the
/// file stayed locked past the busy timeout (retrying later may work).
fn sqlite_error(message: impl Into<String>, source: impl Into<crate::error::BoxError>) -> Error {
    let source = source.into();
    let busy = source
        .downcast_ref::<rusqlite::Error>()
        .or_else(|| source.downcast_ref::<Arc<rusqlite::Error>>().map(|e| &**e))
        .and_then(rusqlite::Error::sqlite_error_code)
        .is_some_and(|code| {
            matches!(
                code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            )
        });
    if busy {
        Error::unavailable("sqlite", message, Some(source))
    } else {
        Error::store_source("sqlite", message, source)
    }
}

impl From<writer::WriteError> for Error {
    fn from(e: writer::WriteError) -> Self {
        sqlite_error(e.what, e.source)
    }
}

/// Creates the file with owner-only permissions when missing, then opens,
/// configures and migrates the writer connection.
fn open_writer(
    path: &Path,
    synchronous: Synchronous,
    create: Create,
) -> std::result::Result<rusqlite::Connection, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(format!("directory `{}` does not exist", dir.display()));
    }
    let mut flags = rusqlite::OpenFlags::default();
    match create {
        // Another process may create the file between the look and the
        // creation; then it is there, which is all that is asked.
        Create::IfMissing => {
            if !path.exists()
                && let Err(e) = create_private(path)
                && e.kind() != std::io::ErrorKind::AlreadyExists
            {
                return Err(e.to_string());
            }
        }
        // The file was there a moment ago; should it vanish before SQLite
        // opens it, SQLite must not make an empty one in its place.
        Create::Never => flags.remove(rusqlite::OpenFlags::SQLITE_OPEN_CREATE),
    }
    let mut conn = rusqlite::Connection::open_with_flags(path, flags).map_err(|e| e.to_string())?;
    schema::configure(&conn, synchronous).map_err(|e| e.to_string())?;
    // Deleted rows (`clear`, retention) are zeroed where that costs no
    // extra write, and freed pages leave the file through incremental
    // vacuum, so a copy of the file made after a `clear` holds no trace
    // of what was cleared.
    conn.pragma_update(None, "secure_delete", "FAST")
        .map_err(|e| e.to_string())?;
    // The writer's own statements (appends, marks, savepoints) and those
    // of handlers' transactions, each prepared once.
    conn.set_prepared_statement_cache_capacity(64);
    schema::migrate(&mut conn)?;
    Ok(conn)
}

/// The online backup of `source` into a new file at `destination`.
fn backup_file(source: &Path, destination: &Path) -> std::result::Result<(), String> {
    let to = destination.display();
    if let Some(dir) = destination.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(format!(
            "cannot back up to {to}: directory `{}` does not exist",
            dir.display()
        ));
    }
    create_private(destination).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            format!("{to} exists already; a backup never overwrites, so name a new file")
        }
        _ => format!("cannot create {to}: {e}"),
    })?;
    let copied = (|| {
        let from = rusqlite::Connection::open_with_flags(
            source,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        from.busy_timeout(Duration::from_secs(10))?;
        let mut into = rusqlite::Connection::open(destination)?;
        {
            let backup = rusqlite::backup::Backup::new(&from, &mut into)?;
            // All pages in one step: one read snapshot, which in WAL mode
            // never holds writers back, and never restarts because a
            // writer changed the file half-way.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                match backup.step(-1)? {
                    rusqlite::backup::StepResult::Done => break,
                    // Another connection holds a lock the copy needs.
                    _ if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    _ => {
                        return Err(rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                            Some("the store stayed locked for 10 s".into()),
                        ));
                    }
                }
            }
        }
        into.close().map_err(|(_, e)| e)
    })();
    copied.map_err(|e: rusqlite::Error| {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = destination.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
        format!("backing up {} to {to} failed: {e}", source.display())
    })
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(drop)
}

impl Store for SqliteStore {
    fn append(&self, draft: Draft) -> BoxFuture<'_, Result<RawEnvelope>> {
        Box::pin(async move {
            let row = self.row(draft)?;
            self.call(|reply| Op::Append(row, reply)).await
        })
    }

    fn query(&self, query: Query) -> BoxStream<'static, Result<RawEnvelope>> {
        let cursor = Cursor {
            readers: Arc::clone(&self.readers),
            remaining: query.limit.unwrap_or(usize::MAX),
            query: Arc::new(query),
            next: Some(None),
            reading: None,
        };
        let pages = futures_util::stream::unfold(cursor, |mut cursor| async move {
            let page = cursor.next_page().await?;
            Some((page, cursor))
        });
        Box::pin(pages.flat_map(futures_util::stream::iter))
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            // Readers close first, so the writer is the file's last
            // connection in this process: its close checkpoints the WAL
            // into the file and removes `-wal` and `-shm`.
            self.readers.close();
            // Dropping the sender lets the writer finish its queue and exit.
            drop(self.writer.lock().unwrap_or_else(|e| e.into_inner()).take());
            let thread = self
                .writer_thread
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(thread) = thread {
                tokio::task::spawn_blocking(move || thread.join())
                    .await
                    .map_err(|e| Error::store_source("sqlite", "closing failed", e))?
                    .map_err(|_| store_error("the writer thread panicked"))?;
            }
            Ok(())
        })
    }

    fn durable(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        let sync = match self.synchronous {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        };
        format!("sqlite://{}?synchronous={sync}", self.path.display())
    }

    fn as_checkpoint_store(&self) -> Option<&dyn CheckpointStore> {
        Some(self)
    }

    fn as_dead_letter_store(&self) -> Option<&dyn DeadLetterStore> {
        Some(self)
    }

    fn as_admin(&self) -> Option<&dyn StoreAdmin> {
        Some(self)
    }

    fn as_rewrite(&self) -> Option<&dyn StoreRewrite> {
        Some(self)
    }

    fn as_streams(&self) -> Option<&dyn StreamStore> {
        Some(self)
    }

    fn as_schedules(&self) -> Option<&dyn ScheduleStore> {
        Some(self)
    }

    fn as_sagas(&self) -> Option<&dyn SagaStore> {
        Some(self)
    }

    fn as_transactions(&self) -> Option<&dyn HandlerTransactions> {
        Some(self)
    }
}

impl HandlerTransactions for SqliteStore {
    fn run_transaction(
        &self,
        handler: Arc<str>,
        mark: Option<u64>,
        f: TransactionFn,
    ) -> BoxFuture<'_, Result<Ran>> {
        Box::pin(async move {
            let (value, durability) = self.handler_transaction(handler, mark, f).await?;
            Ok(Ran { value, durability })
        })
    }

    fn restart_handler(&self, handler: &str, reset: TransactionFn) -> BoxFuture<'_, Result<()>> {
        let handler = handler.to_owned();
        Box::pin(async move {
            self.write("restarting a handler", move |tx| {
                reset(tx)?;
                tx.execute(
                    "INSERT INTO checkpoints (handler, seq, updated_ns) VALUES (?1, 0, ?2)
                     ON CONFLICT (handler) DO UPDATE SET seq = 0, updated_ns = ?2",
                    params![handler, writer::now_ns()],
                )?;
                tx.execute("DELETE FROM handled WHERE handler = ?1", params![handler])
                    .map(|n| n as u64)
            })
            .await
            .map(drop)
        })
    }
}

/// A handler transaction on its way to a group commit.
struct InGroup<T, F> {
    marker: (Arc<str>, u64),
    f: F,
    reply: writer::Reply<(writer::TxOutcome<T>, writer::Receipt)>,
}

impl<T, F> writer::GroupWork for InGroup<T, F>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
{
    fn run(self: Box<Self>, tx: &rusqlite::Transaction<'_>, commit: &writer::GroupCommit) {
        let InGroup { marker, f, reply } = *self;
        let outcome = writer::in_group_savepoint(tx, commit, marker, f);
        let _ = reply.send(Ok((outcome, commit.receipt())));
    }

    fn fail(self: Box<Self>, error: writer::WriteError) {
        let _ = self.reply.send(Err(error));
    }
}

/// Waits for the group commit behind `receipt`.
async fn committed(mut receipt: writer::Receipt) -> Result<()> {
    let settled = receipt
        .wait_for(Option::is_some)
        .await
        .map_err(|_| {
            Error::unavailable(
                "sqlite",
                "the writer thread stopped before committing a handler transaction",
                None,
            )
        })?
        .clone();
    settled.unwrap_or(Ok(())).map_err(Error::from)
}

impl CheckpointStore for SqliteStore {
    fn load_checkpoint(&self, handler: &str) -> BoxFuture<'_, Result<Option<u64>>> {
        let handler = handler.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT seq FROM checkpoints WHERE handler = ?1",
                [&handler],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .map(|seq| seq.map(|s| s as u64))
        })
    }

    fn save_checkpoint(&self, handler: &str, seq: u64) -> BoxFuture<'_, Result<()>> {
        let handler = handler.to_owned();
        let done = self.write("saving a checkpoint", move |tx| {
            let old: Option<i64> = tx
                .prepare_cached("SELECT seq FROM checkpoints WHERE handler = ?1")?
                .query_row([&handler], |r| r.get(0))
                .optional()?;
            // Marks at or below the checkpoint say nothing more; after a
            // move back, the ones above it would wrongly skip the events
            // the move asks to handle again.
            let rewind = old.is_some_and(|old| (seq as i64) < old);
            tx.prepare_cached(
                "DELETE FROM handled WHERE handler = ?1 AND (last_seq <= ?2 OR ?3)",
            )?
                .execute(params![handler, seq as i64, rewind])?;
            tx.prepare_cached(
                "INSERT INTO checkpoints (handler, seq, updated_ns) VALUES (?1, ?2, ?3)
                 ON CONFLICT (handler) DO UPDATE SET seq = excluded.seq, updated_ns = excluded.updated_ns",
            )?
            .execute(params![handler, seq as i64, writer::now_ns()])
            .map(|_| 0)
        });
        Box::pin(async move { done.await.map(drop) })
    }

    fn advance_checkpoint(
        &self,
        handler: &str,
        expected: u64,
        seq: u64,
    ) -> BoxFuture<'_, Result<bool>> {
        let handler = handler.to_owned();
        let done = self.write("saving a checkpoint", move |tx| {
            let moved = tx
                .prepare_cached(
                    "UPDATE checkpoints SET seq = ?2, updated_ns = ?3 WHERE handler = ?1 AND seq = ?4",
                )?
                .execute(params![handler, seq as i64, writer::now_ns(), expected as i64])?;
            if moved == 1 {
                tx.prepare_cached("DELETE FROM handled WHERE handler = ?1 AND last_seq <= ?2")?
                    .execute(params![handler, seq as i64])?;
            }
            Ok(moved as u64)
        });
        Box::pin(async move { done.await.map(|moved| moved == 1) })
    }

    fn renew_leases(
        &self,
        holder: &str,
        handlers: &[Arc<str>],
        ttl: Duration,
    ) -> BoxFuture<'_, Result<Vec<bool>>> {
        let holder = holder.to_owned();
        let handlers = handlers.to_vec();
        let ttl_ns = i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX);
        let (reply, answer) = oneshot::channel();
        // A lost renewal costs a standby's takeover, never an event, so it
        // does not wait for the disk.
        let done = self.write_unsynced("renewing handler leases", move |tx| {
            let now = writer::now_ns();
            let mut stmt = tx.prepare_cached(
                "INSERT INTO leases (handler, holder, expires_ns) VALUES (?1, ?2, ?3)
                 ON CONFLICT (handler) DO UPDATE
                     SET holder = excluded.holder, expires_ns = excluded.expires_ns
                     WHERE leases.holder = excluded.holder OR leases.expires_ns < ?4",
            )?;
            let mut held = Vec::with_capacity(handlers.len());
            for handler in &handlers {
                let changed =
                    stmt.execute(params![&**handler, holder, now.saturating_add(ttl_ns), now])?;
                held.push(changed == 1);
            }
            let _ = reply.send(held);
            Ok(0)
        });
        Box::pin(async move {
            done.await?;
            answer
                .await
                .map_err(|_| store_error("the lease renewal gave no answer"))
        })
    }

    fn release_leases(&self, holder: &str) -> BoxFuture<'_, Result<()>> {
        let holder = holder.to_owned();
        let done = self.write("releasing handler leases", move |tx| {
            tx.execute("DELETE FROM leases WHERE holder = ?1", [holder])
                .map(|n| n as u64)
        });
        Box::pin(async move { done.await.map(drop) })
    }

    fn record_handled(&self, handler: &Arc<str>, seqs: RangeInclusive<u64>) {
        if !self.pending.add(handler, seqs) {
            return;
        }
        let sender = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        // A closed store takes no records; those events are then handled
        // again after a restart, as at-least-once allows.
        if let Some(sender) = sender {
            let _ = sender.send(Op::Handled);
        }
    }

    fn handled_after(
        &self,
        handler: &str,
        after: u64,
    ) -> BoxFuture<'_, Result<Vec<RangeInclusive<u64>>>> {
        let handler = handler.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT first_seq, last_seq FROM handled WHERE handler = ?1 AND last_seq > ?2
                 ORDER BY first_seq",
            )?;
            let rows = stmt.query_map(params![handler, after as i64], |r| {
                Ok(r.get::<_, i64>(0)? as u64..=r.get::<_, i64>(1)? as u64)
            })?;
            rows.collect()
        })
    }

    fn checkpoints(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>>> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT handler, seq FROM checkpoints ORDER BY handler")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })?;
            rows.collect()
        })
    }
}

impl DeadLetterStore for SqliteStore {
    fn add_dead_letter(&self, dead: NewDeadLetter) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let envelope = dead.envelope.to_cloudevent_json().map_err(|e| {
                Error::store_source("sqlite", "the dead letter's envelope does not encode", e)
            })?;
            let seq = dead.envelope.seq() as i64;
            self.write("storing a dead letter", move |conn| {
                conn.execute(
                    "INSERT INTO dead_letters (handler, seq, envelope, error, attempts, time_ns)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        dead.handler,
                        seq,
                        envelope,
                        dead.error,
                        dead.attempts,
                        writer::now_ns()
                    ],
                )?;
                Ok(conn.last_insert_rowid() as u64)
            })
            .await
        })
    }

    fn dead_letters(&self, query: DeadLetterQuery) -> BoxFuture<'_, Result<Vec<DeadLetter>>> {
        let rows = self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, handler, envelope, error, attempts, time_ns, retry_requested
                 FROM dead_letters
                 WHERE (?1 IS NULL OR handler = ?1) AND (?2 = 0 OR retry_requested = 1)
                   AND (?4 IS NULL OR id = ?4)
                 ORDER BY id LIMIT ?3",
            )?;
            let limit = query.limit.map_or(-1, |n| n as i64);
            let id = query.id.map(|id| id as i64);
            let rows = stmt.query_map(
                params![query.handler, query.retry_requested, limit, id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, bool>(6)?,
                    ))
                },
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        });
        Box::pin(async move {
            rows.await?
                .into_iter()
                .map(
                    |(id, handler, envelope, error, attempts, time_ns, retry_requested)| {
                        let envelope = RawEnvelope::from_cloudevent_json(envelope.as_bytes())
                            .map_err(|e| {
                                store_error(format!(
                                    "dead letter {id} holds an unreadable envelope: {e}"
                                ))
                            })?;
                        Ok(DeadLetter {
                            id: id as u64,
                            handler,
                            envelope,
                            error,
                            attempts: attempts as u32,
                            time: chrono::DateTime::from_timestamp_nanos(time_ns),
                            retry_requested,
                        })
                    },
                )
                .collect()
        })
    }

    fn request_retry(&self, id: u64) -> BoxFuture<'_, Result<bool>> {
        let done = self.write("requesting a retry", move |conn| {
            conn.execute(
                "UPDATE dead_letters SET retry_requested = 1 WHERE id = ?1",
                params![id as i64],
            )
            .map(|n| n as u64)
        });
        Box::pin(async move { done.await.map(|n| n > 0) })
    }

    fn record_retry_failure(
        &self,
        id: u64,
        error: String,
        attempts: u32,
    ) -> BoxFuture<'_, Result<()>> {
        let done = self.write("recording a failed retry", move |conn| {
            conn.execute(
                "UPDATE dead_letters SET error = ?2, attempts = attempts + ?3, retry_requested = 0
                 WHERE id = ?1",
                params![id as i64, error, attempts],
            )
            .map(|n| n as u64)
        });
        Box::pin(async move { done.await.map(drop) })
    }

    fn remove_dead_letter(&self, id: u64) -> BoxFuture<'_, Result<bool>> {
        let done = self.write("removing a dead letter", move |conn| {
            conn.execute("DELETE FROM dead_letters WHERE id = ?1", params![id as i64])
                .map(|n| n as u64)
        });
        Box::pin(async move { done.await.map(|n| n > 0) })
    }

    fn purge_dead_letters(&self, handler: Option<&str>) -> BoxFuture<'_, Result<u64>> {
        let handler = handler.map(str::to_owned);
        self.write("purging dead letters", move |conn| {
            conn.execute(
                "DELETE FROM dead_letters WHERE ?1 IS NULL OR handler = ?1",
                params![handler],
            )
            .map(|n| n as u64)
        })
    }
}

impl StoreAdmin for SqliteStore {
    fn clear(&self, pattern: &Pattern) -> BoxFuture<'_, Result<u64>> {
        let pattern = pattern.as_str().to_owned();
        self.write("clearing a pattern", move |conn| {
            let removed = conn.execute(
                "DELETE FROM events WHERE topic_matches(?1, topic)",
                params![pattern],
            )?;
            // Clearing everything starts the bus over, saga instances too.
            if pattern == ">" {
                conn.execute("DELETE FROM sagas", [])?;
            }
            writer::reclaim(conn)?;
            Ok(removed as u64)
        })
    }

    fn topics(&self) -> BoxFuture<'_, Result<Vec<TopicSummary>>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT topic, COUNT(*), MIN(time_ns), MAX(time_ns) FROM events GROUP BY topic ORDER BY topic",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(TopicSummary {
                    topic: r.get(0)?,
                    count: r.get::<_, i64>(1)? as u64,
                    first: chrono::DateTime::from_timestamp_nanos(r.get(2)?),
                    last: chrono::DateTime::from_timestamp_nanos(r.get(3)?),
                })
            })?;
            rows.collect()
        })
    }

    fn size_bytes(&self) -> Option<u64> {
        let file = |suffix: &str| {
            let mut name = self.path.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(name).map(|m| m.len()).unwrap_or(0)
        };
        Some(file("") + file("-wal") + file("-shm"))
    }
}
