//! The writer thread: every write to the file goes through it, and
//! concurrent appends share one transaction and one fsync (group commit).
//!
//! Publishers encode their event on their own task, send the row here and
//! wait for the reply, which comes only after the commit that holds their
//! row. The thread takes whatever has queued up while the previous commit
//! was syncing, so the batch grows with the load and nobody waits for a
//! timer.

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::{oneshot, watch};

use super::reader;
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
    /// With an idempotency key: the oldest time a first publish of the
    /// same key may have, for it to count as the same publish.
    pub(crate) dedup_since_ns: Option<i64>,
}

impl Row {
    /// A scheduled event's row: no idempotency window, since it was
    /// checked, if at all, when it was scheduled.
    fn scheduled(draft: Draft) -> Result<Row, String> {
        let data = draft
            .data_json()
            .map_err(|e| e.to_string())?
            .get()
            .to_owned();
        let headers = reader::headers_json(&draft.meta.headers);
        let time_ns = draft
            .meta
            .time
            .timestamp_nanos_opt()
            .ok_or("its time is outside what sqlite:// keeps")?;
        Ok(Row {
            draft,
            data,
            headers,
            time_ns,
            dedup_since_ns: None,
        })
    }
}

/// What an append came to.
enum Stored {
    /// A new row with this seq.
    New(i64),
    /// The same event id, or the same idempotency key within the window,
    /// was already stored: nothing was added.
    Existing(RawEnvelope),
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, WriteError>>;

/// A failed write: what failed, and SQLite's error (shared, since one
/// failed group commit answers every publisher in it).
#[derive(Debug, Clone)]
pub(crate) struct WriteError {
    pub(crate) what: String,
    pub(crate) source: Arc<rusqlite::Error>,
}

impl WriteError {
    fn new(what: impl Into<String>, source: rusqlite::Error) -> Self {
        WriteError {
            what: what.into(),
            source: Arc::new(source),
        }
    }
}

/// A write other than an append, run on the writer thread in arrival order,
/// inside a transaction of its own that the writer commits.
pub(crate) type WriteFn = Box<dyn FnOnce(&Transaction<'_>) -> rusqlite::Result<u64> + Send>;

/// Work run on the writer thread that answers on its own channel: a
/// handler's transaction, whose result type the writer does not know.
pub(crate) type RunFn = Box<dyn FnOnce(&mut Connection) + Send>;

pub(crate) enum Op {
    Append(Box<Row>, Reply<RawEnvelope>),
    /// Handlers finished events: what [`Pending`] holds goes into the
    /// next group commit, with no reply, so handlers never wait for it.
    Handled,
    /// A handler's transaction with its handled mark: run in a savepoint
    /// of the next group commit, answered before that commits.
    InGroup(Box<dyn GroupWork>),
    Write(&'static str, WriteFn, Reply<u64>),
    /// A write whose loss in a power cut costs nothing but redone work
    /// (a lease renewal), committed without waiting for the disk.
    WriteUnsynced(&'static str, WriteFn, Reply<u64>),
    Run(RunFn),
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

/// Moves everything from the WAL into the database file and empties the
/// WAL before closing, so that after a clean close the `.db` file alone
/// holds every event (a user copies it, not its `-wal`). When no other
/// connection has the file open, closing also deletes the `-wal` and
/// `-shm` files; when one has, its last close does that.
fn close(conn: Connection) {
    let truncated = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        row.get::<_, i64>(0)
    });
    match truncated {
        Ok(0) => {}
        // Busy: another process is reading or writing; the WAL it left
        // is carried over by the next checkpoint.
        Ok(_) => tracing::debug!("the WAL is in use by another connection; left for it"),
        Err(e) => tracing::warn!(error = %e, "checkpointing the WAL at close failed"),
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the SQLite file failed");
    }
}

/// Runs until every sender is gone, then closes the connection.
///
/// Operations run in arrival order; consecutive appends, handled records
/// and handler transactions share a transaction (see [`Group`]). With a
/// bounded `retention`, it is applied every `every`.
pub(crate) fn run(
    mut conn: Connection,
    ops: mpsc::Receiver<Op>,
    pending: Arc<Pending>,
    retention: Retention,
    every: Duration,
) {
    let mut queued = VecDeque::new();
    let mut last_retention = Instant::now();
    loop {
        if queued.is_empty() {
            let first = if retention.is_unbounded() {
                ops.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
            } else {
                ops.recv_timeout(every.saturating_sub(last_retention.elapsed()))
            };
            match first {
                Ok(op) => queued.push_back(op),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return close(conn),
            }
        }
        while !queued.is_empty() && queued.len() < MAX_BATCH {
            match ops.try_recv() {
                Ok(op) => queued.push_back(op),
                Err(_) => break,
            }
        }
        let mut group = Group::default();
        while let Some(op) = queued.pop_front() {
            match op {
                Op::Append(row, reply) => group.appends.push((row, reply)),
                Op::Handled => group.handled.append(&mut pending.take()),
                Op::InGroup(work) => group.work.push(work),
                Op::Write(what, write, reply) => {
                    std::mem::take(&mut group).commit(&mut conn, None, &pending);
                    let done = in_transaction(&mut conn, write);
                    let _ =
                        reply.send(done.map_err(|e| WriteError::new(format!("{what} failed"), e)));
                }
                Op::WriteUnsynced(what, write, reply) => {
                    std::mem::take(&mut group).commit(&mut conn, None, &pending);
                    let done = unsynced(&mut conn, |conn| in_transaction(conn, write));
                    let _ =
                        reply.send(done.map_err(|e| WriteError::new(format!("{what} failed"), e)));
                }
                Op::Run(run) => {
                    std::mem::take(&mut group).commit(&mut conn, None, &pending);
                    run(&mut conn);
                }
            }
        }
        group.commit(&mut conn, Some((&ops, &mut queued)), &pending);
        if !retention.is_unbounded() && last_retention.elapsed() >= every {
            last_retention = Instant::now();
            if let Err(e) = in_transaction(&mut conn, |tx| retain(tx, retention)) {
                tracing::warn!(error = %e, "sqlite retention failed; will try again");
            }
        }
    }
}

/// Begins a write transaction the way every write here must: `IMMEDIATE`,
/// taking the file's write lock at `BEGIN`. A deferred transaction that
/// reads first and then writes cannot wait for another process holding the
/// lock (SQLite returns `SQLITE_BUSY` at once to avoid a deadlock); one
/// that asks for the lock up front waits its turn within the busy timeout.
pub(crate) fn begin(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// Runs `write` in one [`begin`]-ed transaction and commits it.
fn in_transaction<T>(
    conn: &mut Connection,
    write: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let tx = begin(conn)?;
    let value = write(&tx)?;
    tx.commit()?;
    Ok(value)
}

/// Runs of seqs handlers finished, waiting for the writer. Adjacent runs
/// of a handler merge, so a handler that keeps finishing events holds one
/// entry here however far the writer is behind: memory stays bounded.
#[derive(Default)]
pub(crate) struct Pending(Mutex<Vec<(Arc<str>, RangeInclusive<u64>)>>);

impl Pending {
    /// Adds a run; true when it was empty, so the writer needs waking.
    pub(crate) fn add(&self, handler: &Arc<str>, seqs: RangeInclusive<u64>) -> bool {
        let mut runs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = runs.is_empty();
        let adjacent = runs.iter_mut().find(|(h, run)| {
            h == handler && *run.end() + 1 >= *seqs.start() && *seqs.end() + 1 >= *run.start()
        });
        match adjacent {
            Some((_, run)) => {
                *run = *run.start().min(seqs.start())..=*run.end().max(seqs.end());
            }
            None => runs.push((Arc::clone(handler), seqs)),
        }
        was_empty
    }

    fn take(&self) -> Vec<(Arc<str>, RangeInclusive<u64>)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// How long a group commit that holds handler transactions, and no
/// publisher waiting, stays open for more of them: the handler's next
/// event is usually a few microseconds away, and every handling it takes
/// in saves an fsync. A handler's transaction is answered before the
/// commit, so the budget delays only when its writes and mark are durable
/// and seen by other connections, never the handler; while the writer
/// syncs, though, the handler's next transaction waits. With 2 ms a
/// backlog committed about 40 events per fsync and ran at a fifth of the
/// rate it does now (`cargo bench -p benches --bench durable`).
const GROUP_BUDGET: Duration = Duration::from_millis(10);

/// The most handler transactions one group commit takes.
const MAX_GROUP_WORK: usize = 4096;

/// Consecutive appends, handled runs and handler transactions, committed
/// in one transaction: one fsync for all of them.
///
/// Publishers are answered after the commit. A handler transaction runs in
/// a savepoint of its own (a failure rolls back only its own writes) and
/// is answered at once, with a receipt for the commit to come; while the
/// group holds handler transactions and no publisher waits, it stays open
/// for up to [`GROUP_BUDGET`] for more, so that a handler working through
/// a backlog commits many events at a time instead of one.
#[derive(Default)]
struct Group {
    appends: Vec<(Box<Row>, Reply<RawEnvelope>)>,
    handled: Vec<(Arc<str>, RangeInclusive<u64>)>,
    work: Vec<Box<dyn GroupWork>>,
}

impl Group {
    /// Commits the group. With `more`, nothing else is waiting, so it may
    /// wait for more handler transactions from `ops`; an operation that
    /// arrives then and cannot join is put back in the queue.
    fn commit(
        mut self,
        conn: &mut Connection,
        more: Option<(&mpsc::Receiver<Op>, &mut VecDeque<Op>)>,
        pending: &Pending,
    ) {
        if self.appends.is_empty() && self.work.is_empty() {
            if !self.handled.is_empty() {
                commit_records(conn, &self.handled);
            }
            return;
        }
        let commit = GroupCommit::default();
        let work = std::mem::take(&mut self.work);
        let tx = match begin(conn) {
            Ok(tx) => tx,
            Err(e) => {
                let error = WriteError::new("beginning a group commit failed", clone_error(&e));
                for w in work {
                    w.fail(error.clone());
                }
                return reply_appends(self.appends, Err(e));
            }
        };
        let result = (|| -> rusqlite::Result<Vec<Stored>> {
            let mut stored = Vec::with_capacity(self.appends.len());
            for (row, _) in &self.appends {
                stored.push(append_row(&tx, row)?);
            }
            for (handler, seqs) in &self.handled {
                mark_handled(&tx, handler, seqs)?;
            }
            let mut done = 0;
            for w in work {
                w.run(&tx, &commit);
                done += 1;
                broken(&tx)?;
            }
            let opened = Instant::now();
            let Some((ops, queued)) = more else {
                commit.write_marks(&tx)?;
                tx.commit()?;
                return Ok(stored);
            };
            while done > 0 && self.appends.is_empty() && done < MAX_GROUP_WORK {
                let Some(left) = GROUP_BUDGET.checked_sub(opened.elapsed()) else {
                    break;
                };
                match next_soon(ops, left) {
                    Ok(Op::InGroup(w)) => {
                        w.run(&tx, &commit);
                        done += 1;
                        broken(&tx)?;
                    }
                    Ok(Op::Handled) => {
                        for (handler, seqs) in pending.take() {
                            mark_handled(&tx, &handler, &seqs)?;
                            self.handled.push((handler, seqs));
                        }
                    }
                    Ok(Op::Append(row, reply)) => {
                        // A publisher waits: commit now, with its row.
                        let appended = append_row(&tx, &row);
                        self.appends.push((row, reply));
                        stored.push(appended?);
                    }
                    Ok(other) => {
                        queued.push_front(other);
                        break;
                    }
                    Err(_) => break,
                }
            }
            commit.write_marks(&tx)?;
            tx.commit()?;
            Ok(stored)
        })();
        if let Err(e) = &result
            && !self.handled.is_empty()
        {
            // Only a redelivery after a crash needs the marks: without them
            // it handles these events again, as at-least-once allows.
            tracing::warn!(error = %e, "recording handled events failed");
        }
        commit.settle(result.as_ref().map(drop).map_err(|e| {
            WriteError::new(
                "the group commit holding handler transactions failed",
                clone_error(e),
            )
        }));
        reply_appends(self.appends, result);
    }
}

/// How long the writer keeps looking for a handler's next transaction
/// before it sleeps: waking a sleeping thread costs more than this on a
/// VM, and the handler's next event is usually sooner.
const SPIN: Duration = Duration::from_micros(50);

/// The next operation within `left`, looked for without sleeping at first.
fn next_soon(ops: &mpsc::Receiver<Op>, left: Duration) -> Result<Op, mpsc::RecvTimeoutError> {
    let spinning = Instant::now();
    while spinning.elapsed() < SPIN.min(left) {
        match ops.try_recv() {
            Ok(op) => return Ok(op),
            Err(mpsc::TryRecvError::Empty) => std::thread::yield_now(),
            Err(mpsc::TryRecvError::Disconnected) => {
                return Err(mpsc::RecvTimeoutError::Disconnected);
            }
        }
    }
    ops.recv_timeout(left.saturating_sub(spinning.elapsed()))
}

/// An error that SQLite took the whole transaction back on (it does so
/// for a full disk, an I/O error, an interrupt): nothing more may run in
/// it, since each statement would commit on its own.
fn broken(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    if tx.is_autocommit() {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
            Some("SQLite rolled the group commit back after a handler transaction failed".into()),
        ));
    }
    Ok(())
}

/// rusqlite's errors are not `Clone`; a group's error is told to every
/// handling in it, by its text.
fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

/// A handler transaction waiting for its group: run it in the group's
/// transaction, or tell it the group could not begin.
pub(crate) trait GroupWork: Send {
    /// Runs in `tx`, in a savepoint of its own, and answers at once with
    /// a receipt from `commit`.
    fn run(self: Box<Self>, tx: &Transaction<'_>, commit: &GroupCommit);
    /// Answers that the group's transaction could not begin.
    fn fail(self: Box<Self>, error: WriteError);
}

/// What a handler transaction in a group waits on: `None` until the
/// group is committed or failed.
pub(crate) type Receipt = watch::Receiver<Option<Result<(), WriteError>>>;

/// The commit a group's handler transactions wait for, and their handled
/// marks until it writes them.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    settled: watch::Sender<Option<Result<(), WriteError>>>,
    /// Runs of seqs per handler, in the order handlers finished them.
    marks: std::cell::RefCell<Vec<(Arc<str>, RangeInclusive<u64>)>>,
}

impl Default for GroupCommit {
    fn default() -> Self {
        GroupCommit {
            settled: watch::Sender::new(None),
            marks: Default::default(),
        }
    }
}

impl GroupCommit {
    /// A receipt that resolves when the group is committed or failed; a
    /// writer gone before either (a crash of the thread) is a failure.
    pub(crate) fn receipt(&self) -> Receipt {
        self.settled.subscribe()
    }

    fn settle(&self, result: Result<(), WriteError>) {
        self.settled.send_replace(Some(result));
    }

    /// Adds a handled mark, extending the handler's last run when the seq
    /// follows it (a handler works through its feed in order).
    fn mark(&self, handler: Arc<str>, seq: u64) {
        let mut marks = self.marks.borrow_mut();
        if let Some((_, run)) = marks.iter_mut().rev().find(|(h, _)| *h == handler)
            && *run.end() + 1 == seq
        {
            *run = *run.start()..=seq;
            return;
        }
        marks.push((handler, seq..=seq));
    }

    fn marked(&self, handler: &str, seq: u64) -> bool {
        self.marks
            .borrow()
            .iter()
            .any(|(h, run)| &**h == handler && run.contains(&seq))
    }

    /// Writes the marks into the group's transaction.
    fn write_marks(&self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        for (handler, seqs) in self.marks.borrow().iter() {
            mark_handled(tx, handler, seqs)?;
        }
        Ok(())
    }
}

/// Commits handled records on their own without an fsync: in WAL mode
/// the commit still survives a crash of the process (the only crash a
/// record guards against skipping work for), and the next synced commit
/// makes it durable. Losing one to a power cut only means handling those
/// events again, which at-least-once allows; waiting for the disk to
/// record them would slow the whole store for no promise it makes.
fn commit_records(conn: &mut Connection, handled: &[(Arc<str>, RangeInclusive<u64>)]) {
    let result = unsynced(conn, |conn| {
        in_transaction(conn, |tx| {
            for (handler, seqs) in handled {
                mark_handled(tx, handler, seqs)?;
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        // Without the records a restart handles these events again, as
        // at-least-once allows.
        tracing::warn!(error = %e, "recording handled events failed");
    }
}

/// Runs `write` with `synchronous=NORMAL`, so its commit does not wait
/// for an fsync, and sets the connection's own level back afterwards.
fn unsynced<T>(
    conn: &mut Connection,
    write: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let synchronous: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let done = write(conn);
    if let Err(e) = conn.pragma_update(None, "synchronous", synchronous) {
        tracing::error!(error = %e, "could not set `synchronous` back after an unsynced write; later commits may not be synced");
    }
    done
}

/// Records that `handler` finished the events in `seqs`; runs may overlap.
/// A run that reaches up to or into `seqs` is extended rather than a new
/// row added, so a handler marking its events one by one (each
/// `ctx.transaction`) keeps one row, and looking a seq up stays cheap.
pub(crate) fn mark_handled(
    tx: &rusqlite::Transaction<'_>,
    handler: &str,
    seqs: &RangeInclusive<u64>,
) -> rusqlite::Result<()> {
    let (first, last) = (*seqs.start() as i64, *seqs.end() as i64);
    let extended = tx
        .prepare_cached(
            "UPDATE handled SET last_seq = max(last_seq, ?3)
             WHERE handler = ?1 AND first_seq <= ?2 AND last_seq + 1 >= ?2",
        )?
        .execute(params![handler, first, last])?;
    if extended > 0 {
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT INTO handled (handler, first_seq, last_seq) VALUES (?1, ?2, ?3)
         ON CONFLICT (handler, first_seq) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
    )?
    .execute(params![handler, first, last])
    .map(drop)
}

/// What a handler's transaction came to.
pub(crate) enum TxOutcome<T> {
    /// Committed, with the closure's value.
    Committed(T),
    /// The closure returned an error; rolled back.
    Failed(rusqlite::Error),
    /// The handler had already finished this seq; the closure did not run.
    AlreadyHandled(u64),
    /// Beginning, marking or committing failed; rolled back.
    Store(rusqlite::Error),
    /// The closure panicked; rolled back.
    Panicked(Box<dyn std::any::Any + Send>),
}

/// Runs a handler's closure in one transaction that also marks the event
/// handled (with `mark`). A panic is caught so that it rolls back and
/// never takes the writer thread, and every publisher with it, down.
pub(crate) fn handler_transaction<T, F>(
    conn: &mut Connection,
    mark: Option<(Arc<str>, u64)>,
    f: F,
) -> TxOutcome<T>
where
    F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
{
    let tx = match begin(conn) {
        Ok(tx) => tx,
        Err(e) => return TxOutcome::Store(e),
    };
    match in_savepoint(&tx, mark, f) {
        TxOutcome::Committed(value) => match tx.commit() {
            Ok(()) => TxOutcome::Committed(value),
            Err(e) => TxOutcome::Store(e),
        },
        other => other,
    }
}

/// Runs a handler's closure in a savepoint of `tx` that also marks the
/// event handled (with `mark`); on an error or a panic only the savepoint
/// is rolled back. `Committed` here means kept in `tx`, which commits it.
pub(crate) fn in_savepoint<T, F>(
    tx: &Transaction<'_>,
    mark: Option<(Arc<str>, u64)>,
    f: F,
) -> TxOutcome<T>
where
    F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
{
    savepoint(tx, |tx| {
        if let Some((handler, seq)) = &mark {
            match handled_already(tx, handler, *seq) {
                Ok(false) => {}
                Ok(true) => return TxOutcome::AlreadyHandled(*seq),
                Err(e) => return TxOutcome::Store(e),
            }
        }
        let outcome = run_closure(tx, f);
        if let (TxOutcome::Committed(_), Some((handler, seq))) = (&outcome, &mark)
            && let Err(e) = mark_handled(tx, handler, &(*seq..=*seq))
        {
            return TxOutcome::Store(e);
        }
        outcome
    })
}

/// [`in_savepoint`] for a handler transaction of a group commit: its mark
/// joins the group's and is written with them just before the group
/// commits, one statement per run of seqs instead of one per event. The
/// mark still commits with the closure's writes or not at all, since both
/// are in the group's transaction.
pub(crate) fn in_group_savepoint<T, F>(
    tx: &Transaction<'_>,
    group: &GroupCommit,
    (handler, seq): (Arc<str>, u64),
    f: F,
) -> TxOutcome<T>
where
    F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
{
    if group.marked(&handler, seq) {
        return TxOutcome::AlreadyHandled(seq);
    }
    match handled_already(tx, &handler, seq) {
        Ok(false) => {}
        Ok(true) => return TxOutcome::AlreadyHandled(seq),
        Err(e) => return TxOutcome::Store(e),
    }
    let outcome = savepoint(tx, |tx| run_closure(tx, f));
    if matches!(outcome, TxOutcome::Committed(_)) {
        group.mark(handler, seq);
    }
    outcome
}

/// Runs `body` in a savepoint that is released when it comes to
/// `Committed` and rolled back otherwise.
fn savepoint<T>(
    tx: &Transaction<'_>,
    body: impl FnOnce(&Transaction<'_>) -> TxOutcome<T>,
) -> TxOutcome<T> {
    if let Err(e) = run_cached(tx, "SAVEPOINT handler_transaction") {
        return TxOutcome::Store(e);
    }
    let outcome = body(tx);
    // After an error SQLite took the whole transaction back on, there is
    // no savepoint left to end; the group sees that and fails.
    if tx.is_autocommit() {
        return outcome;
    }
    let ended = if matches!(outcome, TxOutcome::Committed(_)) {
        run_cached(tx, "RELEASE handler_transaction")
    } else {
        run_cached(tx, "ROLLBACK TO handler_transaction")
            .and_then(|()| run_cached(tx, "RELEASE handler_transaction"))
    };
    match ended {
        Ok(()) => outcome,
        Err(e) => TxOutcome::Store(e),
    }
}

/// Runs one statement through the connection's statement cache: parsing
/// `SAVEPOINT` and `RELEASE` again for every event cost more than the
/// handler's own insert.
fn run_cached(tx: &Transaction<'_>, sql: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(sql)?.execute([]).map(drop)
}

fn handled_already(tx: &Transaction<'_>, handler: &str, seq: u64) -> rusqlite::Result<bool> {
    tx.prepare_cached(
        "SELECT 1 FROM handled WHERE handler = ?1 AND first_seq <= ?2 AND last_seq >= ?2",
    )?
    .exists(params![handler, seq as i64])
}

/// Runs a handler's closure, catching a panic; `Committed` means it
/// returned `Ok` and left its transaction open.
fn run_closure<T, F>(tx: &Transaction<'_>, f: F) -> TxOutcome<T>
where
    F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
{
    let value = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(tx))) {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => return TxOutcome::Failed(e),
        Err(payload) => return TxOutcome::Panicked(payload),
    };
    if tx.is_autocommit() {
        // The closure ended the transaction itself (`ROLLBACK`, `COMMIT`):
        // a mark now would commit on its own, without the writes.
        return TxOutcome::Store(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISUSE),
            Some("the handler's closure ended the transaction it was given".into()),
        ));
    }
    TxOutcome::Committed(value)
}

fn reply_appends(
    batch: Vec<(Box<Row>, Reply<RawEnvelope>)>,
    result: rusqlite::Result<Vec<Stored>>,
) {
    match result {
        Ok(stored) => {
            for ((row, reply), stored) in batch.into_iter().zip(stored) {
                let envelope = match stored {
                    Stored::New(seq) => row.draft.seal(seq as u64),
                    Stored::Existing(envelope) => envelope,
                };
                // A publisher that gave up waiting no longer needs the reply.
                let _ = reply.send(Ok(envelope));
            }
        }
        Err(e) => {
            let error = WriteError::new("append failed, nothing of this batch was stored", e);
            for (_, reply) in batch {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// Moves the scheduled events due by `now_ns` into `events`, deleting
/// each in the same `IMMEDIATE` transaction, so that of several processes
/// sharing the file exactly one publishes it. A row that no longer reads
/// as an event is left where it is, logged.
pub(crate) fn release_due(
    conn: &mut Connection,
    now_ns: i64,
) -> Result<Vec<RawEnvelope>, WriteError> {
    let failed = |e| WriteError::new("publishing due scheduled events failed", e);
    let tx = begin(conn).map_err(failed)?;
    let due: Vec<(String, String)> = tx
        .prepare_cached(
            "SELECT id, envelope FROM scheduled WHERE due_ns <= ?1 ORDER BY due_ns, id LIMIT 1000",
        )
        .and_then(|mut stmt| {
            stmt.query_map([now_ns], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(failed)?;
    let mut stored = Vec::with_capacity(due.len());
    for (id, json) in due {
        let row = RawEnvelope::from_cloudevent_json(json.as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|env| Row::scheduled(Draft::from_envelope(&env)));
        let row = match row {
            Ok(row) => row,
            Err(reason) => {
                tracing::error!(id, %reason, "a scheduled event does not read; it stays scheduled");
                continue;
            }
        };
        tx.execute("DELETE FROM scheduled WHERE id = ?1", [&id])
            .map_err(failed)?;
        if let Stored::New(seq) = append_row(&tx, &row).map_err(failed)? {
            stored.push(row.draft.seal(seq as u64));
        }
    }
    tx.commit().map_err(failed)?;
    Ok(stored)
}

/// What a stream append came to.
pub(crate) enum StreamAppend {
    Appended(Vec<RawEnvelope>),
    /// The stream was at this version, not the one expected; nothing was
    /// written.
    Conflict(u64),
}

/// Appends `rows`, already placed in their stream (see
/// `streams::place`), if the stream is at `expected`: in one `IMMEDIATE`
/// transaction, so another process appending to the same stream waits
/// and then sees the new version. The unique stream index backs this up
/// against any writer that skips the check.
pub(crate) fn append_stream(
    conn: &mut Connection,
    kind: &str,
    id: &str,
    expected: u64,
    rows: Vec<Row>,
) -> Result<StreamAppend, WriteError> {
    let failed = |e| WriteError::new("appending to a stream failed, nothing was stored", e);
    let tx = begin(conn).map_err(failed)?;
    let actual: i64 = tx
        .prepare_cached(
            "SELECT COALESCE(MAX(stream_version), 0) FROM events
             WHERE event_name = ?1 AND subject = ?2 AND stream_version IS NOT NULL",
        )
        .and_then(|mut stmt| stmt.query_row(params![kind, id], |r| r.get(0)))
        .map_err(failed)?;
    if actual as u64 != expected {
        return Ok(StreamAppend::Conflict(actual as u64));
    }
    let mut stored = Vec::with_capacity(rows.len());
    for row in rows {
        match append_row(&tx, &row).map_err(failed)? {
            Stored::New(seq) => stored.push(row.draft.seal(seq as u64)),
            Stored::Existing(envelope) => stored.push(envelope),
        }
    }
    tx.commit().map_err(failed)?;
    Ok(StreamAppend::Appended(stored))
}

fn append_row(tx: &rusqlite::Transaction<'_>, row: &Row) -> rusqlite::Result<Stored> {
    let m = &row.draft.meta;
    if let (Some(key), Some(since)) = (&m.idempotency_key, row.dedup_since_ns) {
        let first = tx
            .prepare_cached(&format!(
                "SELECT {} FROM events WHERE idempotency_key = ?1 AND time_ns >= ?2 ORDER BY seq LIMIT 1",
                reader::COLUMNS
            ))?
            .query_row(params![key, since], |r| Ok(reader::envelope(r, false)))
            .optional()?;
        if let Some(first) = first {
            return first
                .map(Stored::Existing)
                .map_err(|reason| rusqlite::Error::UserFunctionError(reason.into()));
        }
    }
    let id = m.id.to_string();
    // Looking first keeps a re-imported id from using up a seq.
    if row.draft.imported
        && let Some(stored) = stored_by_id(tx, &id)?
    {
        return Ok(stored);
    }
    let inserted = tx
        .prepare_cached(
            "INSERT INTO events (id, topic, time_ns, source, correlation_id, causation_id,
                 idempotency_key, headers, event_name, event_version, data, subject, dataschema,
                 stream_version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            id,
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
            m.subject,
            m.dataschema,
            m.stream_version
                .map(|v| i64::try_from(v).unwrap_or(i64::MAX)),
        ])?;
    if inserted == 1 {
        return Ok(Stored::New(tx.last_insert_rowid()));
    }
    // The event id is already stored (an import run twice).
    stored_by_id(tx, &id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

fn stored_by_id(tx: &rusqlite::Transaction<'_>, id: &str) -> rusqlite::Result<Option<Stored>> {
    let found = tx
        .prepare_cached(&format!(
            "SELECT {} FROM events WHERE id = ?1",
            reader::COLUMNS
        ))?
        .query_row([id], |r| Ok(reader::envelope(r, false)))
        .optional()?;
    found
        .map(|stored| {
            stored
                .map(Stored::Existing)
                .map_err(|reason| rusqlite::Error::UserFunctionError(reason.into()))
        })
        .transpose()
}

/// Deletes what retention does not keep; returns how many events went.
pub(crate) fn retain(conn: &Connection, retention: Retention) -> rusqlite::Result<u64> {
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
