//! Handler feeds read from a durable store, after the handler's checkpoint.
//!
//! On a durable store (SQLite) a handler does not get events pushed at it:
//! it reads them from the store in seq order, starting after its
//! checkpoint, and saves the checkpoint as it goes. So a handler resumes
//! where it stopped after a restart, a slow handler lags behind in the
//! store instead of holding publishers back or filling memory, per-topic
//! order is the store's order, and a checkpoint moved from outside (such as
//! `eventbus replay --to-handler`) is noticed and followed.
//!
//! Each finished event is also recorded (in the store's next group commit,
//! without waiting for it), so after a crash the handler skips what it
//! finished after its checkpoint. Delivery is at least once: an event whose
//! handling finished but whose record was not yet committed is handled
//! again. `ctx.transaction` commits the record with the handler's own
//! writes, which closes that window.
//!
//! The store may answer a `ctx.transaction` before committing it (SQLite
//! gathers a handler's transactions into group commits). Such a handling
//! comes back with a receipt, and the feed waits for the receipts before
//! it records a run as handled or moves the checkpoint past it; when the
//! commit failed (its writes and marks were rolled back) it reads the
//! events from there again.

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::watch;

use super::attempt::deliver_recorded;
use super::core::HandlerScope;
use super::lease;
use crate::error::Error;
use crate::handler::Committed;
use crate::store::{Durability, Order, Query, Start};

/// While busy, a handler saves its checkpoint once it is this many events
/// ahead of the saved one and [`SAVE_INTERVAL`] has passed since the last
/// save. Each save waits for a commit (an fsync), which a fast handler
/// would otherwise wait for hundreds of times a second; between saves the
/// handled records, which nobody waits for, keep a restart from handling
/// finished events again.
const SAVE_EVERY: u64 = 256;
const SAVE_INTERVAL: Duration = Duration::from_millis(100);

/// How often an idle handler looks at the store for events other
/// processes wrote and for a checkpoint moved from outside.
pub(crate) const POLL: Duration = Duration::from_millis(250);

/// Reads and handles one handler's feed until shutdown; at shutdown it
/// handles what was stored up to then, and saves its checkpoint.
///
/// It runs only while this bus holds the handler's lease (see
/// [`lease`](crate::lease)); without it, it stands by, and when it takes
/// the lease over it starts from the checkpoint the last holder saved.
pub(crate) async fn run(
    scope: Arc<HandlerScope>,
    mut at: Position,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut lease = scope.handler.lease.subscribe();
    let mut stopping = false;
    let mut unconfirmed = VecDeque::new();
    loop {
        if !*lease.borrow_and_update() {
            tracing::info!(handler = %scope.handler.name, "another process runs this handler on this store; standing by");
            tokio::select! {
                held = lease::held(&mut lease) => if !held { return },
                _ = shutdown.changed() => return,
            }
            tracing::info!(handler = %scope.handler.name, "took the handler over; resuming after its checkpoint");
            at = Position::current(&scope).await;
        }
        let query = Query {
            topics: scope
                .handler
                .topics
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
            after_seq: Some(at.last),
            order: Order::Oldest,
            ..Query::default()
        };
        // With concurrency N, up to N events at hand are handled at once and
        // the position moves past all of them when the last one is done.
        let concurrency = scope.handler.def.options.concurrency.max(1) as usize;
        let mut chunks = scope.core.store.query(query).ready_chunks(concurrency);
        'reading: while let Some(chunk) = chunks.next().await {
            let first = at.last + 1;
            let mut handlings = Vec::with_capacity(chunk.len());
            let mut records = Vec::with_capacity(chunk.len());
            let mut failed_read = false;
            for item in chunk {
                match item {
                    Ok(env) if at.finished_before(env.seq()) => {
                        tracing::debug!(handler = %scope.handler.name, seq = env.seq(), "skipping an event handled before a restart");
                        if let Some(tracker) = &scope.core.tracker {
                            tracker.skipped(scope.handler.index, &env);
                        }
                        at.last = at.last.max(env.seq());
                    }
                    Ok(env) => {
                        at.last = at.last.max(env.seq());
                        let committed = Arc::new(Committed::default());
                        records.push(Arc::clone(&committed));
                        // `deliver` records a final failure as a dead letter.
                        handlings.push(deliver_recorded(&scope, env, committed));
                    }
                    Err(Error::BadRow { seq, reason }) => {
                        tracing::error!(handler = %scope.handler.name, seq, %reason, "skipping a stored event that cannot be read");
                        at.last = at.last.max(seq);
                    }
                    Err(e) => {
                        tracing::warn!(handler = %scope.handler.name, error = %e, "reading the feed failed; trying again");
                        failed_read = true;
                    }
                }
            }
            futures_util::future::join_all(handlings).await;
            if at.last >= first {
                // Everything up to `at.last` is finished (handled, skipped,
                // dead-lettered or of other topics): one run, so the
                // records stay few and contiguous from the checkpoint.
                let receipts: Vec<Durability> =
                    records.iter().filter_map(|c| c.take_durability()).collect();
                if receipts.is_empty() && unconfirmed.is_empty() {
                    record_handled(&scope, first..=at.last);
                } else {
                    unconfirmed.push_back((first..=at.last, receipts));
                }
            }
            if failed_read || !*lease.borrow() {
                break 'reading;
            }
            if at.last >= at.saved + SAVE_EVERY && at.synced.elapsed() >= SAVE_INTERVAL {
                // Rolled back (read again from there) or moved from
                // outside (read again from the new position).
                if confirm(&scope, &mut at, &mut unconfirmed).await || at.sync(&scope).await {
                    break 'reading;
                }
            }
        }
        if confirm(&scope, &mut at, &mut unconfirmed).await {
            continue;
        }
        // Saves the position, and notices a checkpoint moved from outside
        // while idle or busy: then the next round reads from there.
        if at.sync(&scope).await {
            continue;
        }
        if stopping {
            return;
        }
        tokio::select! {
            () = scope.handler.wake.notified() => {}
            () = tokio::time::sleep(POLL) => {}
            _ = lease.changed() => {}
            _ = shutdown.changed() => stopping = true,
        }
    }
}

/// Runs of events finished whose transactions are not committed yet, with
/// the receipts of those commits.
type Unconfirmed = VecDeque<(RangeInclusive<u64>, Vec<Durability>)>;

fn record_handled(scope: &HandlerScope, seqs: RangeInclusive<u64>) {
    scope.handler.through.reached(*seqs.end());
    if let Ok(checkpoints) = scope.checkpoints() {
        checkpoints.record_handled(&scope.handler.name, seqs);
    }
}

/// Waits for the commits holding the handler's transactions, oldest run
/// first, and records each run as handled once its commits are done.
/// When one failed, its writes and marks were rolled back: the position
/// moves back before that run, so it is read and handled again, and this
/// returns true. (Later runs may have committed; their marks make the
/// second reading skip them.)
async fn confirm(scope: &HandlerScope, at: &mut Position, unconfirmed: &mut Unconfirmed) -> bool {
    while let Some((seqs, receipts)) = unconfirmed.pop_front() {
        let mut failed = None;
        for receipt in receipts {
            if let Err(e) = receipt.wait().await {
                failed.get_or_insert(e);
            }
        }
        let Some(error) = failed else {
            record_handled(scope, seqs);
            continue;
        };
        tracing::warn!(
            handler = %scope.handler.name, first = seqs.start(), last = seqs.end(), %error,
            "the commit holding handler transactions failed and was rolled back; handling those events again"
        );
        // The later runs' commits settle first, so that reading the marks
        // again sees every one of them that did commit.
        for (_, receipts) in unconfirmed.drain(..) {
            for receipt in receipts {
                let _ = receipt.wait().await;
            }
        }
        at.rewind(scope, seqs.start() - 1).await;
        return true;
    }
    false
}

/// Where a handler is: the last seq it handled, the last one saved, and
/// the events after that which it finished before a restart.
pub(crate) struct Position {
    last: u64,
    saved: u64,
    /// Read when the position is taken from the store, ordered by first
    /// seq; bounded by what a run records between two checkpoint saves.
    finished: VecDeque<RangeInclusive<u64>>,
    /// When the checkpoint was last saved or looked at.
    synced: Instant,
}

impl Position {
    /// The position at a saved checkpoint, with what the handler is
    /// recorded to have finished after it.
    async fn at_checkpoint(scope: &HandlerScope, seq: u64) -> crate::error::Result<Self> {
        let finished = scope
            .checkpoints()?
            .handled_after(&scope.handler.name, seq)
            .await?;
        Ok(Position {
            last: seq,
            saved: seq,
            finished: finished.into(),
            synced: Instant::now(),
        })
    }

    /// Moves back to just after `seq`, with what is recorded handled
    /// after it; the saved checkpoint, which never passed what was not
    /// committed, stays.
    async fn rewind(&mut self, scope: &HandlerScope, seq: u64) {
        let finished = match scope.checkpoints() {
            Ok(store) => store.handled_after(&scope.handler.name, seq).await,
            Err(e) => Err(e),
        };
        self.last = seq;
        self.finished = finished
            .unwrap_or_else(|e| {
                tracing::warn!(handler = %scope.handler.name, error = %e, "could not read which events were handled; handling all after the rollback");
                Vec::new()
            })
            .into();
    }

    /// Whether the event `seq` was finished before a restart. Called in
    /// seq order, so the runs that end before it are done with.
    fn finished_before(&mut self, seq: u64) -> bool {
        while self.finished.front().is_some_and(|run| *run.end() < seq) {
            self.finished.pop_front();
        }
        self.finished.front().is_some_and(|run| run.contains(&seq))
    }
}

impl Position {
    /// Saves the position, unless someone else (a CLI, an operator, a
    /// process that took the handler over) moved the checkpoint since it
    /// was last saved: then that position is taken instead and `true`
    /// returned.
    async fn sync(&mut self, scope: &HandlerScope) -> bool {
        self.synced = Instant::now();
        let name = &scope.handler.name;
        let store = match scope.checkpoints() {
            Ok(store) => store,
            Err(e) => {
                tracing::warn!(handler = %name, error = %e, "cannot save the checkpoint");
                return false;
            }
        };
        if self.last != self.saved {
            match store.advance_checkpoint(name, self.saved, self.last).await {
                Ok(true) => {
                    self.saved = self.last;
                    return false;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(handler = %name, seq = self.last, error = %e, "could not save the checkpoint");
                    return false;
                }
            }
        }
        match store.load_checkpoint(name).await {
            Ok(Some(seq)) if seq != self.saved => {
                tracing::info!(handler = %name, from = self.last, to = seq, "checkpoint moved from outside; following it");
                // Everything after the new position is handled again: the
                // handled records above it are this bus's own, possibly
                // committed after the move, and would skip what the move
                // asked for.
                *self = Position::bare(seq);
                true
            }
            Ok(Some(_)) => false,
            Ok(None) => {
                // Deleted from outside: this handler's position stands.
                if save(scope, self.last).await {
                    self.saved = self.last;
                }
                false
            }
            Err(e) => {
                tracing::warn!(handler = %name, error = %e, "could not read the checkpoint");
                false
            }
        }
    }

    /// The position the store holds now, for a handler taken over from
    /// another process; from the start when it holds none.
    async fn current(scope: &HandlerScope) -> Self {
        let loaded = match scope.checkpoints() {
            Ok(store) => store.load_checkpoint(&scope.handler.name).await,
            Err(e) => Err(e),
        };
        match loaded {
            Ok(seq) => Position::at_or_after(scope, seq.unwrap_or(0)).await,
            Err(e) => {
                tracing::warn!(handler = %scope.handler.name, error = %e, "could not read the checkpoint; handling everything stored");
                Position::bare(0)
            }
        }
    }

    /// The position at `seq` with what was recorded handled after it; if
    /// those records cannot be read, everything after `seq` is handled.
    async fn at_or_after(scope: &HandlerScope, seq: u64) -> Self {
        match Position::at_checkpoint(scope, seq).await {
            Ok(at) => at,
            Err(e) => {
                tracing::warn!(handler = %scope.handler.name, error = %e, "could not read which events were handled; handling all after the checkpoint");
                Position::bare(seq)
            }
        }
    }

    fn bare(seq: u64) -> Self {
        Position {
            last: seq,
            saved: seq,
            finished: VecDeque::new(),
            synced: Instant::now(),
        }
    }
}

/// The saved checkpoint, or the start position of a new handler, saved at
/// once so that events stored from now on reach it even if it stops
/// before handling them. The bus finds it before `build()` returns, so
/// nothing published after that is missed.
pub(crate) async fn first_position(
    scope: &HandlerScope,
    start: Start,
) -> crate::error::Result<Position> {
    let store = scope.checkpoints()?;
    let seq = match store.load_checkpoint(&scope.handler.name).await? {
        Some(seq) => return Position::at_checkpoint(scope, seq).await,
        None if start == Start::Earliest => 0,
        None => newest_seq(scope).await?,
    };
    store.save_checkpoint(&scope.handler.name, seq).await?;
    Ok(Position::bare(seq))
}

async fn newest_seq(scope: &HandlerScope) -> crate::error::Result<u64> {
    let newest = Query {
        order: Order::Newest,
        limit: Some(1),
        ..Query::default()
    };
    let mut found = scope.core.store.query(newest);
    match found.next().await {
        None => Ok(0),
        Some(Ok(env)) => Ok(env.seq()),
        Some(Err(Error::BadRow { seq, .. })) => Ok(seq),
        Some(Err(e)) => Err(e),
    }
}

async fn save(scope: &HandlerScope, seq: u64) -> bool {
    let saved = match scope.checkpoints() {
        Ok(store) => store.save_checkpoint(&scope.handler.name, seq).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(handler = %scope.handler.name, seq, error = %e, "could not save the checkpoint");
            false
        }
    }
}
