//! What a bus has in flight, for `eventbus::testing`: each event routed to
//! a handler until that handler is done with it (handled or
//! dead-lettered), the attempt it is at and whether it waits out a
//! backoff; the work in between that is no handling (announcing a dead
//! letter, publishing due scheduled events); and a record of the traffic.
//!
//! Off unless a test bus asks for it: then `Core::tracker` is `Some` and
//! the publish and delivery paths report here; otherwise they pay one
//! branch. Only `eventbus::testing` reads it, hence the `allow` below for
//! builds without that feature.
#![cfg_attr(not(feature = "testing"), allow(dead_code))]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::envelope::RawEnvelope;

/// Where a handler is with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Routed to the handler, not started.
    Queued,
    /// Attempt number `attempt` runs.
    Running { attempt: u32 },
    /// Attempt `attempt` failed; the next starts at `until`.
    Backoff { attempt: u32, until: Instant },
}

/// A dead letter stored, as the tracker records it.
#[derive(Debug, Clone)]
pub(crate) struct Buried {
    pub(crate) id: u64,
    pub(crate) handler: usize,
    pub(crate) envelope: RawEnvelope,
    pub(crate) error: String,
    pub(crate) attempts: u32,
}

/// One event a handler is not done with.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) handler: usize,
    pub(crate) envelope: RawEnvelope,
    pub(crate) phase: Phase,
}

/// The tracker's view of one (handler, event) pair. `balance` counts
/// routings minus finished deliveries: a store-fed handler may read and
/// finish an event before its publisher routed it, and then the routing
/// that comes later cancels out against the negative balance left behind.
struct Entry {
    balance: i32,
    envelope: RawEnvelope,
    /// `None` while not started (or once finished, for a negative balance).
    running: Option<Phase>,
}

impl Entry {
    fn busy(&self) -> bool {
        self.balance > 0 || self.running.is_some()
    }
}

#[derive(Default)]
struct State {
    /// By handler index and seq.
    entries: HashMap<(usize, u64), Entry>,
    /// How many entries are busy, kept as they change, so finishing an
    /// event does not scan the others.
    busy: usize,
    /// Work that is no handling, by token: what it is.
    holds: HashMap<u64, &'static str>,
    next_hold: u64,
    /// Every event routed, in the order it was routed.
    routed: Vec<RawEnvelope>,
    /// Each successful handling: handler index and event, in the order they finished.
    handled: Vec<(usize, RawEnvelope)>,
    /// Each dead letter stored, in order.
    dead_letters: Vec<Buried>,
}

impl State {
    /// Applies `change` to the entry of `key` (made from `envelope` if
    /// missing), keeping `busy` right and dropping entries with nothing left.
    fn change(
        &mut self,
        key: (usize, u64),
        envelope: &RawEnvelope,
        change: impl FnOnce(&mut Entry),
    ) {
        let entry = self.entries.entry(key).or_insert_with(|| Entry {
            balance: 0,
            envelope: envelope.clone(),
            running: None,
        });
        let was = entry.busy();
        change(entry);
        let is = entry.busy();
        let gone = entry.balance == 0 && entry.running.is_none();
        match (was, is) {
            (false, true) => self.busy += 1,
            (true, false) => self.busy -= 1,
            _ => {}
        }
        if gone {
            self.entries.remove(&key);
        }
    }

    fn idle(&self) -> bool {
        self.busy == 0 && self.holds.is_empty()
    }
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct Tracker {
    state: Mutex<State>,
    /// Woken whenever the bus may have become idle.
    idle: Notify,
    /// Woken whenever an event was routed.
    recorded: Notify,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Tracker")
            .field("busy", &state.busy)
            .field("holds", &state.holds.len())
            .field("routed", &state.routed.len())
            .finish_non_exhaustive()
    }
}

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves counts that are
        // still consistent: each change is applied whole before unlocking.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `envelope` was stored and routed to the handlers `targets`.
    pub(crate) fn routed(&self, envelope: &RawEnvelope, targets: &[usize]) {
        {
            let mut state = self.lock();
            state.routed.push(envelope.clone());
            for &handler in targets {
                state.change((handler, envelope.seq()), envelope, |e| e.balance += 1);
            }
        }
        self.recorded.notify_waiters();
    }

    /// Handler `handler` will never get `envelope` (it was behind and
    /// skipped it, or had finished it before a restart).
    pub(crate) fn skipped(&self, handler: usize, envelope: &RawEnvelope) {
        self.finish(handler, envelope, |e| e.balance -= 1);
    }

    /// Attempt number `attempt` of handler `handler` on `envelope` starts.
    pub(crate) fn attempt(&self, handler: usize, envelope: &RawEnvelope, attempt: u32) {
        self.lock()
            .change((handler, envelope.seq()), envelope, |e| {
                e.running = Some(Phase::Running { attempt });
            });
    }

    /// Attempt `attempt` failed and the next waits `delay`.
    pub(crate) fn backoff(
        &self,
        handler: usize,
        envelope: &RawEnvelope,
        attempt: u32,
        delay: Duration,
    ) {
        let until = Instant::now() + delay;
        self.lock()
            .change((handler, envelope.seq()), envelope, |e| {
                e.running = Some(Phase::Backoff { attempt, until });
            });
    }

    /// Handler `handler` is done with `envelope`: handled when `handled`,
    /// else dead-lettered or given up on.
    pub(crate) fn finished(&self, handler: usize, envelope: &RawEnvelope, handled: bool) {
        if handled {
            self.lock().handled.push((handler, envelope.clone()));
        }
        self.finish(handler, envelope, |e| {
            e.balance -= 1;
            e.running = None;
        });
    }

    fn finish(&self, handler: usize, envelope: &RawEnvelope, change: impl FnOnce(&mut Entry)) {
        let idle = {
            let mut state = self.lock();
            state.change((handler, envelope.seq()), envelope, change);
            state.idle()
        };
        if idle {
            self.idle.notify_waiters();
        }
    }

    /// A dead letter was stored.
    pub(crate) fn dead_lettered(&self, buried: Buried) {
        self.lock().dead_letters.push(buried);
    }

    /// Marks work that is no handling as in flight until the returned
    /// guard drops.
    pub(crate) fn hold(self: &Arc<Self>, what: &'static str) -> Hold {
        let mut state = self.lock();
        let token = state.next_hold;
        state.next_hold += 1;
        state.holds.insert(token, what);
        Hold {
            tracker: Arc::clone(self),
            token,
        }
    }

    /// Whether nothing is in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.lock().idle()
    }

    /// Resolves when the bus may have become idle; create it before
    /// checking [`Tracker::is_idle`] so that no change is missed.
    pub(crate) fn idle_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.idle.notified()
    }

    /// Resolves when an event was routed; create it before reading
    /// [`Tracker::routed_events`] so that no event is missed.
    pub(crate) fn routed_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.recorded.notified()
    }

    /// The events handlers are not done with, by handler and seq, and the
    /// other work in flight.
    pub(crate) fn in_flight(&self) -> (Vec<Pending>, Vec<&'static str>) {
        let state = self.lock();
        let mut pending: Vec<Pending> = state
            .entries
            .iter()
            .filter(|(_, e)| e.busy())
            .map(|(&(handler, _), e)| Pending {
                handler,
                envelope: e.envelope.clone(),
                phase: e.running.unwrap_or(Phase::Queued),
            })
            .collect();
        pending.sort_by_key(|p| (p.handler, p.envelope.seq()));
        let mut holds: Vec<(u64, &'static str)> =
            state.holds.iter().map(|(&t, &w)| (t, w)).collect();
        holds.sort_unstable();
        (pending, holds.into_iter().map(|(_, w)| w).collect())
    }

    /// Every event routed so far, in order.
    pub(crate) fn routed_events(&self) -> Vec<RawEnvelope> {
        self.lock().routed.clone()
    }

    /// The events handler `handler` handled, in the order it finished them.
    pub(crate) fn handled_by(&self, handler: usize) -> Vec<RawEnvelope> {
        let state = self.lock();
        state
            .handled
            .iter()
            .filter(|(h, _)| *h == handler)
            .map(|(_, env)| env.clone())
            .collect()
    }

    /// The dead letters stored so far, in order.
    pub(crate) fn dead_letters(&self) -> Vec<Buried> {
        self.lock().dead_letters.clone()
    }
}

/// Work in flight that is no handling; see [`Tracker::hold`].
pub(crate) struct Hold {
    tracker: Arc<Tracker>,
    token: u64,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let idle = {
            let mut state = self.tracker.lock();
            state.holds.remove(&self.token);
            state.idle()
        };
        if idle {
            self.tracker.idle.notify_waiters();
        }
    }
}
