//! `bus.subscribe::<E>(pattern)`: a broadcast stream of live events.
//!
//! Unlike a handler (one handling per event per handler name), every
//! subscription sees every matching event. A subscription never slows
//! publishers: when its buffer is full, events are counted as missed and the
//! stream yields [`SubscriptionError::Lagged`] before the next event, so the
//! subscriber can catch up from history starting at `from_seq`.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::mpsc;

use crate::envelope::{Envelope, RawEnvelope, Scope};
use crate::event::{CodecError, Event};
use crate::topic::Pattern;

/// What a subscription yields instead of an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// The subscriber fell behind and `missed` events were skipped, the
    /// first of them at `from_seq`; read them from history to catch up.
    #[error(
        "subscriber lagged: missed {missed} events starting at seq {from_seq}; read them from history"
    )]
    Lagged {
        /// How many events were skipped.
        missed: u64,
        /// The seq of the first skipped event.
        from_seq: u64,
    },
    /// An event on a matching topic did not decode into the stream's type.
    #[error("event seq {seq} does not decode: {error}")]
    Undecodable {
        /// The seq of the event.
        seq: u64,
        /// Why it does not decode.
        error: CodecError,
    },
}

enum Item {
    Event(RawEnvelope),
    Lagged { missed: u64, from_seq: u64 },
}

#[derive(Default)]
struct LagState {
    missed: u64,
    from_seq: u64,
}

struct Slot {
    id: u64,
    /// Only events in this scope or below, for a scoped bus's subscriptions.
    within: Option<Scope>,
    tx: mpsc::Sender<Item>,
    lagging: AtomicBool,
    lag: Mutex<LagState>,
}

impl Slot {
    fn offer(&self, env: &RawEnvelope) {
        if self
            .within
            .as_ref()
            .is_some_and(|s| !s.contains(env.scope()))
        {
            return;
        }
        if self.lagging.load(Ordering::Acquire) {
            let mut state = self.lag.lock().unwrap_or_else(|e| e.into_inner());
            if state.missed > 0 {
                let signal = Item::Lagged {
                    missed: state.missed,
                    from_seq: state.from_seq,
                };
                // Still full: this event is missed too, and the signal waits.
                if self.tx.try_send(signal).is_err() {
                    state.missed += 1;
                    return;
                }
                *state = LagState::default();
            }
            self.lagging.store(false, Ordering::Release);
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(Item::Event(env.clone()))
        {
            let mut state = self.lag.lock().unwrap_or_else(|e| e.into_inner());
            if state.missed == 0 {
                state.from_seq = env.seq();
            }
            state.missed += 1;
            self.lagging.store(true, Ordering::Release);
        }
    }
}

/// Every live subscription: typed ones by topic, untyped ones by pattern.
#[derive(Default)]
pub(crate) struct Subscribers {
    count: AtomicUsize,
    next_id: AtomicU64,
    by_topic: RwLock<HashMap<&'static str, Vec<Arc<Slot>>>>,
    by_pattern: RwLock<Vec<(Pattern, Arc<Slot>)>>,
}

impl Subscribers {
    pub(crate) fn offer(&self, env: &RawEnvelope) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let by_topic = self.by_topic.read().unwrap_or_else(|e| e.into_inner());
        if let Some(slots) = by_topic.get(env.topic()) {
            for slot in slots {
                slot.offer(env);
            }
        }
        drop(by_topic);
        let by_pattern = self.by_pattern.read().unwrap_or_else(|e| e.into_inner());
        for (pattern, slot) in by_pattern.iter() {
            if pattern.matches(env.topic()) {
                slot.offer(env);
            }
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    fn slot(&self, within: Option<Scope>, capacity: usize) -> (Arc<Slot>, mpsc::Receiver<Item>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let slot = Arc::new(Slot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            within,
            tx,
            lagging: AtomicBool::new(false),
            lag: Mutex::new(LagState::default()),
        });
        (slot, rx)
    }

    pub(crate) fn add_raw(
        self: &Arc<Self>,
        pattern: Pattern,
        within: Option<Scope>,
        capacity: usize,
    ) -> RawSubscription {
        let (slot, rx) = self.slot(within, capacity);
        self.by_pattern
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((pattern.clone(), Arc::clone(&slot)));
        self.count.fetch_add(1, Ordering::AcqRel);
        RawSubscription {
            rx,
            id: slot.id,
            pattern,
            registry: Arc::clone(self),
        }
    }

    pub(crate) fn add<E: Event>(
        self: &Arc<Self>,
        topics: Vec<&'static str>,
        within: Option<Scope>,
        capacity: usize,
    ) -> Subscription<E> {
        let (slot, rx) = self.slot(within, capacity);
        {
            let mut by_topic = self.by_topic.write().unwrap_or_else(|e| e.into_inner());
            for topic in &topics {
                by_topic.entry(topic).or_default().push(Arc::clone(&slot));
            }
        }
        self.count.fetch_add(1, Ordering::AcqRel);
        Subscription {
            rx,
            id: slot.id,
            topics,
            registry: Arc::clone(self),
            _event: PhantomData,
        }
    }

    fn remove_raw(&self, id: u64) {
        self.by_pattern
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(_, slot)| slot.id != id);
        self.count.fetch_sub(1, Ordering::AcqRel);
    }

    fn remove(&self, id: u64, topics: &[&'static str]) {
        let mut by_topic = self.by_topic.write().unwrap_or_else(|e| e.into_inner());
        for topic in topics {
            if let Some(slots) = by_topic.get_mut(topic) {
                slots.retain(|s| s.id != id);
                if slots.is_empty() {
                    by_topic.remove(topic);
                }
            }
        }
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A typed stream of live events; dropping it unsubscribes.
///
/// Yields `Ok(envelope)` for each matching event and `Err(..)` for a gap or
/// an event that does not decode; the stream goes on after either.
#[must_use = "a subscription receives nothing unless polled"]
pub struct Subscription<E> {
    rx: mpsc::Receiver<Item>,
    id: u64,
    topics: Vec<&'static str>,
    registry: Arc<Subscribers>,
    _event: PhantomData<fn() -> E>,
}

impl<E> std::fmt::Debug for Subscription<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("topics", &self.topics)
            .field("queued", &self.rx.len())
            .finish_non_exhaustive()
    }
}

impl<E> Subscription<E> {
    /// The topics this subscription receives.
    pub fn topics(&self) -> &[&'static str] {
        &self.topics
    }
}

impl<E: Event> Stream for Subscription<E> {
    type Item = Result<Envelope<E>, SubscriptionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|item| {
            item.map(|item| match item {
                Item::Event(raw) => {
                    Envelope::from_raw(&raw).map_err(|error| SubscriptionError::Undecodable {
                        seq: raw.seq(),
                        error,
                    })
                }
                Item::Lagged { missed, from_seq } => {
                    Err(SubscriptionError::Lagged { missed, from_seq })
                }
            })
        })
    }
}

impl<E> Drop for Subscription<E> {
    fn drop(&mut self) {
        self.registry.remove(self.id, &self.topics);
    }
}

/// An untyped stream of live events whose topic matches a pattern, from
/// [`Bus::subscribe_raw`](crate::Bus::subscribe_raw): for tools that follow
/// any topic. Dropping it unsubscribes.
///
/// Yields `Ok(envelope)` for each matching event and
/// `Err(SubscriptionError::Lagged { .. })` for a gap; it goes on after one.
#[must_use = "a subscription receives nothing unless polled"]
pub struct RawSubscription {
    rx: mpsc::Receiver<Item>,
    id: u64,
    pattern: Pattern,
    registry: Arc<Subscribers>,
}

impl RawSubscription {
    /// The pattern this subscription follows.
    pub fn pattern(&self) -> &str {
        self.pattern.as_str()
    }
}

impl std::fmt::Debug for RawSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSubscription")
            .field("pattern", &self.pattern.as_str())
            .field("queued", &self.rx.len())
            .finish_non_exhaustive()
    }
}

impl Stream for RawSubscription {
    type Item = Result<RawEnvelope, SubscriptionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|item| {
            item.map(|item| match item {
                Item::Event(raw) => Ok(raw),
                Item::Lagged { missed, from_seq } => {
                    Err(SubscriptionError::Lagged { missed, from_seq })
                }
            })
        })
    }
}

impl Drop for RawSubscription {
    fn drop(&mut self) {
        self.registry.remove_raw(self.id);
    }
}
