//! The ring behind pushed feeds (`memory://`): every published event is
//! written once, into one ring the bus's handlers share, and each handler
//! reads it with a cursor of its own, as the store-read feeds do from a
//! file. Fan-out costs one write per event, not one channel send per
//! handler, and a handler still busy with earlier events is not woken.
//!
//! Each slot remembers which handlers the event is for. A publisher about
//! to reuse a slot looks at those handlers only: under
//! [`LagPolicy::Block`] it waits until each has read the old event (a
//! slow handler holds publishers back, memory stays bounded); under
//! [`LagPolicy::Skip`] it counts the old event as missed for each that has
//! not, and goes on. A handler that finds its next slot reused jumps to
//! the oldest event still in the ring: every event it skipped that way
//! was either not for it or already counted as missed.
//!
//! Wake-ups: a handler with nothing to read says it is sleeping before it
//! looks one last time, and a publisher wakes only the sleeping handlers
//! among an event's targets (the flag and the slot are both read and
//! written with `SeqCst`, so one of the two always sees the other).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Notify;

use crate::envelope::RawEnvelope;

/// What a full feed does on a store that pushes events to handlers
/// (`memory://`). On a durable store handlers read from the store and never
/// hold publishers back, whatever the policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LagPolicy {
    /// The publisher waits until the handler has room (backpressure).
    #[default]
    Block,
    /// The handler skips the event; the skip is logged and counted in
    /// [`HandlerStats::missed`](crate::HandlerStats::missed), and the event
    /// stays in history.
    Skip,
}

/// The shared ring of one bus's pushed feeds.
pub(crate) struct Ring {
    slots: Box<[RwLock<Slot>]>,
    /// `capacity - 1`; the capacity is a power of two.
    mask: u64,
    /// The next position a publisher writes.
    tail: Mutex<u64>,
    /// How many positions are written, for readers (the tail, read
    /// without its lock).
    written: AtomicU64,
    readers: Box<[Reader]>,
    lag: LagPolicy,
    /// Publishers waiting for a slot to be read, and their wake-up.
    waiting: AtomicUsize,
    space: Notify,
}

#[derive(Default)]
struct Slot {
    /// The position of the event in it; meaningful once `env` is set.
    pos: u64,
    env: Option<RawEnvelope>,
    /// The handlers (indices) the event is for.
    targets: Option<Arc<[usize]>>,
}

/// One handler's place in the ring.
#[derive(Default)]
struct Reader {
    /// The next position this handler reads.
    cursor: AtomicU64,
    sleeping: AtomicBool,
    wake: Notify,
}

/// What a handler finds at its cursor.
pub(crate) enum Next {
    /// An event for it.
    Event(RawEnvelope),
    /// Nothing yet: wait with [`Ring::wait`].
    Empty,
}

impl Ring {
    /// A ring of at least `capacity` slots for `handlers` handlers.
    pub(crate) fn new(capacity: usize, handlers: usize, lag: LagPolicy) -> Self {
        let capacity = capacity.max(2).next_power_of_two();
        Ring {
            slots: (0..capacity).map(|_| RwLock::default()).collect(),
            mask: capacity as u64 - 1,
            tail: Mutex::new(0),
            written: AtomicU64::new(0),
            readers: (0..handlers).map(|_| Reader::default()).collect(),
            lag,
            waiting: AtomicUsize::new(0),
            space: Notify::new(),
        }
    }

    fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Writes `env` for the handlers `targets` if its slot may be reused
    /// now, and wakes those of them that sleep; hands `env` back when the
    /// lag policy says to wait for room ([`Ring::push`] does).
    pub(crate) fn try_push(
        &self,
        env: RawEnvelope,
        targets: &Arc<[usize]>,
        missed: impl Fn(usize, &RawEnvelope),
    ) -> Result<(), RawEnvelope> {
        let mut env = Some(env);
        if self.try_write(&mut env, targets, &missed) {
            self.wake(targets);
            return Ok(());
        }
        Err(env.expect("a refused write keeps its event"))
    }

    /// Writes `env` for the handlers `targets`, waiting for room by the
    /// lag policy, then wakes those of them that sleep. `missed` is told of
    /// each handler that skips an older event to make room (`Skip`).
    ///
    /// A publish holds no place in the ring while it waits, so dropping
    /// it (a timeout, a cancelled task) leaves no hole for readers.
    pub(crate) async fn push(
        &self,
        env: RawEnvelope,
        targets: &Arc<[usize]>,
        missed: impl Fn(usize, &RawEnvelope),
    ) {
        let mut env = Some(env);
        while !self.try_write(&mut env, targets, &missed) {
            // The slot's previous event is still wanted (`Block`): wait
            // for readers to move, registered before looking again so
            // that a move in between is not missed.
            let space = self.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            let _waiting = Waiting::register(&self.waiting);
            if self.try_write(&mut env, targets, &missed) {
                break;
            }
            space.await;
        }
        self.wake(targets);
    }

    fn wake(&self, targets: &[usize]) {
        for &i in targets {
            let reader = &self.readers[i];
            if reader.sleeping.load(Ordering::SeqCst)
                && reader.sleeping.swap(false, Ordering::SeqCst)
            {
                reader.wake.notify_one();
            }
        }
    }

    /// Writes the event at the tail if its slot may be reused now.
    /// Publishers take the tail one at a time, so events are written in
    /// the order of their positions.
    fn try_write(
        &self,
        env: &mut Option<RawEnvelope>,
        targets: &Arc<[usize]>,
        missed: &impl Fn(usize, &RawEnvelope),
    ) -> bool {
        let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        let pos = *tail;
        let mut slot = self.slots[(pos & self.mask) as usize]
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if !self.make_room(&slot, missed) {
            return false;
        }
        slot.pos = pos;
        slot.env = env.take();
        slot.targets = Some(Arc::clone(targets));
        *tail = pos + 1;
        self.written.store(pos + 1, Ordering::SeqCst);
        true
    }

    /// Whether the slot's old event may be replaced: its handlers have all
    /// read it, or (`Skip`) those that have not are counted as missing it.
    fn make_room(&self, old: &Slot, missed: &impl Fn(usize, &RawEnvelope)) -> bool {
        let (Some(targets), Some(env)) = (&old.targets, &old.env) else {
            return true;
        };
        let behind = |i: &&usize| self.readers[**i].cursor.load(Ordering::SeqCst) <= old.pos;
        match self.lag {
            LagPolicy::Block => !targets.iter().any(|i| behind(&i)),
            LagPolicy::Skip => {
                for &i in targets.iter().filter(behind) {
                    missed(i, env);
                }
                true
            }
        }
    }

    /// The next event for handler `me`, moving its cursor past it and past
    /// events that are not for it.
    pub(crate) fn next(&self, me: usize) -> Next {
        let reader = &self.readers[me];
        let mut cursor = reader.cursor.load(Ordering::Relaxed);
        loop {
            let found = {
                let s = self.slots[(cursor & self.mask) as usize]
                    .read()
                    .unwrap_or_else(|e| e.into_inner());
                match (&s.env, &s.targets) {
                    (Some(env), Some(targets)) if s.pos == cursor => {
                        Some(targets.contains(&me).then(|| env.clone()))
                    }
                    // Reused. Events are written in order, so every position
                    // a lap behind the newest is reused too; those that were
                    // for this handler were counted as missed.
                    (Some(_), _) if s.pos > cursor => {
                        let oldest = self
                            .written
                            .load(Ordering::SeqCst)
                            .saturating_sub(self.capacity());
                        cursor = cursor.max(oldest.saturating_sub(1));
                        Some(None)
                    }
                    _ => None,
                }
            };
            match found {
                None => {
                    reader.cursor.store(cursor, Ordering::SeqCst);
                    return Next::Empty;
                }
                Some(mine) => {
                    cursor += 1;
                    reader.cursor.store(cursor, Ordering::SeqCst);
                    if self.waiting.load(Ordering::SeqCst) > 0 {
                        self.space.notify_waiters();
                    }
                    if let Some(env) = mine {
                        return Next::Event(env);
                    }
                }
            }
        }
    }

    /// Waits until a publisher may have written something for `me`: call
    /// after [`Ring::next`] found nothing, then call it again.
    pub(crate) async fn wait(&self, me: usize) {
        let reader = &self.readers[me];
        let woken = reader.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        reader.sleeping.store(true, Ordering::SeqCst);
        // One last look: a publisher that wrote before the flag was set
        // did not wake this handler.
        if self.ready(me) {
            reader.sleeping.store(false, Ordering::SeqCst);
            return;
        }
        woken.await;
    }

    /// Whether the slot at `me`'s cursor holds an event (for it or not).
    fn ready(&self, me: usize) -> bool {
        let cursor = self.readers[me].cursor.load(Ordering::SeqCst);
        let s = self.slots[(cursor & self.mask) as usize]
            .read()
            .unwrap_or_else(|e| e.into_inner());
        s.env.is_some() && s.pos >= cursor
    }

    /// Whether `me` has read everything published so far.
    pub(crate) fn drained(&self, me: usize) -> bool {
        self.readers[me].cursor.load(Ordering::SeqCst) >= self.written.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity())
            .field("written", &self.written.load(Ordering::Relaxed))
            .field("lag", &self.lag)
            .finish_non_exhaustive()
    }
}

/// A publisher waiting for room, counted while it waits (and no longer
/// once its publish is done or dropped), so readers know to wake it.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn register(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
