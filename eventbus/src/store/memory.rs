//! `memory://`: a bounded ring of recent events, the default store.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};

use super::admin::{StoreAdmin, TopicSummary};
use super::checkpoints::CheckpointStore;
use super::core::Store;
use super::dead_letter::{DeadLetter, DeadLetterQuery, DeadLetterStore, NewDeadLetter};
use super::query::{Order, Query};
use super::sagas::{self, SagaStore, StoredSaga};
use super::schedules::{ScheduleStore, Scheduled};
use super::streams::{self, Snapshot, StreamId, StreamStore};
use super::url::{Opt, StoreUrl};
use crate::envelope::{Draft, RawEnvelope};
use crate::error::{Error, Result};
use crate::future::BoxFuture;
use crate::future::BoxStream;
use crate::topic::Pattern;

/// How long a repeated idempotency key returns the first event.
const DEFAULT_IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// The default history capacity of `memory://`.
const DEFAULT_CAPACITY: usize = 10_000;

const OPTIONS: &[Opt] = &[
    Opt::integer("capacity", 1, usize::MAX as u64),
    Opt::duration("idempotency_window"),
];

/// Keeps the newest `capacity` events in memory; older ones fall off the
/// end. Nothing survives the process.
///
/// URL: `memory://`, with options `capacity=N` and `idempotency_window=24h`.
pub struct MemoryStore {
    capacity: usize,
    idempotency_window: chrono::Duration,
    ring: Mutex<Ring>,
    checkpoints: Mutex<HashMap<String, u64>>,
    dead: Mutex<DeadLetters>,
    /// Entity streams, kept whole beside the ring (which drops old events)
    /// so an entity always loads.
    streams: Mutex<HashMap<StreamId, Vec<RawEnvelope>>>,
    snapshots: Mutex<HashMap<(StreamId, u32), Snapshot>>,
    /// Scheduled events by due time and id.
    scheduled: Mutex<BTreeMap<(DateTime<Utc>, String), Draft>>,
    /// Saga instances by saga and key.
    sagas: Mutex<BTreeMap<(String, String), StoredSaga>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.capacity)
            .field("idempotency_window", &self.idempotency_window)
            .finish_non_exhaustive()
    }
}

/// Dead letters, bounded like the ring: the oldest go first, with a warning.
#[derive(Default)]
struct DeadLetters {
    next_id: u64,
    items: BTreeMap<u64, DeadLetter>,
}

struct Ring {
    events: VecDeque<RawEnvelope>,
    next_seq: u64,
    /// The first event of each idempotency key still in the ring.
    keys: HashMap<String, RawEnvelope>,
}

impl MemoryStore {
    /// A store keeping the newest `capacity` events (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        MemoryStore {
            capacity,
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
            ring: Mutex::new(Ring {
                events: VecDeque::with_capacity(capacity.min(DEFAULT_CAPACITY)),
                next_seq: 1,
                keys: HashMap::new(),
            }),
            checkpoints: Mutex::new(HashMap::new()),
            dead: Mutex::new(DeadLetters::default()),
            streams: Mutex::new(HashMap::new()),
            snapshots: Mutex::new(HashMap::new()),
            scheduled: Mutex::new(BTreeMap::new()),
            sagas: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn from_url(url: &StoreUrl<'_>) -> Result<Self> {
        if !url.rest.is_empty() {
            return Err(url.invalid("`memory://` takes no path; write `memory://?capacity=N`"));
        }
        let options = url.options(OPTIONS)?;
        let capacity = options
            .integer("capacity")
            .map_or(DEFAULT_CAPACITY, |n| n as usize);
        let mut store = MemoryStore::new(capacity);
        if let Some(window) = options.duration("idempotency_window") {
            // Bounded by MAX_DURATION, far below what chrono holds.
            store.idempotency_window =
                chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        }
        Ok(store)
    }

    fn dead(&self) -> std::sync::MutexGuard<'_, DeadLetters> {
        self.dead.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding the lock cannot leave the ring inconsistent:
        // every mutation is a single push or pop.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn store_now(&self, draft: Draft) -> RawEnvelope {
        let evicted;
        let env;
        {
            let mut ring = self.ring();
            if let Some(first) = draft
                .idempotency_key()
                .and_then(|key| ring.keys.get(key))
                .filter(|first| within(self.idempotency_window, first.time(), draft.meta.time))
            {
                return first.clone();
            }
            // An import of an id already here adds nothing, as on the
            // durable stores; only imports look, so publishing stays O(1).
            if draft.imported
                && let Some(stored) = ring.events.iter().find(|e| e.id() == draft.id())
            {
                return stored.clone();
            }
            let seq = ring.next_seq;
            ring.next_seq += 1;
            env = draft.seal(seq);
            ring.events.push_back(env.clone());
            if let Some(key) = env.idempotency_key() {
                ring.keys.insert(key.to_owned(), env.clone());
            }
            evicted = (ring.events.len() > self.capacity)
                .then(|| ring.events.pop_front())
                .flatten();
            // A key leaves with the event that holds it.
            if let Some(gone) = &evicted
                && let Some(key) = gone.idempotency_key()
                && ring.keys.get(key).is_some_and(|k| k.id() == gone.id())
            {
                ring.keys.remove(key);
            }
        }
        // Freeing the evicted event outside the lock keeps publishers moving.
        drop(evicted);
        env
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(DEFAULT_CAPACITY)
    }
}

impl MemoryStore {
    fn schedule_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(DateTime<Utc>, String), Draft>> {
        self.scheduled.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ScheduleStore for MemoryStore {
    fn schedule(&self, draft: Draft, due: DateTime<Utc>) -> BoxFuture<'_, Result<()>> {
        self.schedule_lock()
            .insert((due, draft.id().to_string()), draft);
        Box::pin(std::future::ready(Ok(())))
    }

    fn cancel(&self, id: &str) -> BoxFuture<'_, Result<bool>> {
        let mut scheduled = self.schedule_lock();
        let key = scheduled.keys().find(|(_, k)| k == id).cloned();
        let found = key.is_some_and(|key| scheduled.remove(&key).is_some());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn scheduled(&self) -> BoxFuture<'_, Result<Vec<Scheduled>>> {
        let list = self
            .schedule_lock()
            .iter()
            .map(|((due, _), draft)| Scheduled {
                due: *due,
                envelope: draft.clone().seal(0),
            })
            .collect();
        Box::pin(std::future::ready(Ok(list)))
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<DateTime<Utc>>>> {
        let next = self.schedule_lock().keys().next().map(|(due, _)| *due);
        Box::pin(std::future::ready(Ok(next)))
    }

    fn release_due(&self, now: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<RawEnvelope>>> {
        let due: Vec<Draft> = {
            let mut scheduled = self.schedule_lock();
            let later = scheduled.split_off(&(now, String::from("\u{10FFFF}")));
            std::mem::replace(&mut *scheduled, later)
                .into_values()
                .collect()
        };
        let stored = due.into_iter().map(|draft| self.store_now(draft)).collect();
        Box::pin(std::future::ready(Ok(stored)))
    }
}

impl StreamStore for MemoryStore {
    fn append_to_stream(
        &self,
        stream: &StreamId,
        expected: u64,
        mut drafts: Vec<Draft>,
    ) -> BoxFuture<'_, Result<Vec<RawEnvelope>>> {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let events = streams.entry(stream.clone()).or_default();
        let actual = events.len() as u64;
        if actual != expected {
            return Box::pin(std::future::ready(Err(Error::Conflict {
                stream: stream.to_string(),
                expected,
                actual,
            })));
        }
        streams::place(stream, expected, &mut drafts);
        let stored: Vec<RawEnvelope> = drafts.into_iter().map(|d| self.store_now(d)).collect();
        events.extend(stored.iter().cloned());
        Box::pin(std::future::ready(Ok(stored)))
    }

    fn read_stream(
        &self,
        stream: &StreamId,
        after: u64,
        until: Option<u64>,
    ) -> BoxFuture<'_, Result<Vec<RawEnvelope>>> {
        let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let events = streams.get(stream).map_or(&[][..], Vec::as_slice);
        let end = until.map_or(events.len(), |u| (u as usize).min(events.len()));
        let start = (after as usize).min(end);
        Box::pin(std::future::ready(Ok(events[start..end].to_vec())))
    }

    fn save_snapshot(&self, snapshot: Snapshot) -> BoxFuture<'_, Result<()>> {
        let key = (snapshot.stream.clone(), snapshot.state_version);
        self.snapshots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, snapshot);
        Box::pin(std::future::ready(Ok(())))
    }

    fn load_snapshot(
        &self,
        stream: &StreamId,
        state_version: u32,
    ) -> BoxFuture<'_, Result<Option<Snapshot>>> {
        let found = self
            .snapshots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(stream.clone(), state_version))
            .cloned();
        Box::pin(std::future::ready(Ok(found)))
    }
}

impl Store for MemoryStore {
    fn append(&self, draft: Draft) -> BoxFuture<'_, Result<RawEnvelope>> {
        let env = self.store_now(draft);
        Box::pin(std::future::ready(Ok(env)))
    }

    fn appends_now(&self) -> bool {
        true
    }

    fn append_now(&self, draft: Draft) -> Result<RawEnvelope> {
        Ok(self.store_now(draft))
    }

    fn query(&self, query: Query) -> BoxStream<'static, Result<RawEnvelope>> {
        let limit = query.limit.unwrap_or(usize::MAX);
        let found: Vec<RawEnvelope> = {
            let ring = self.ring();
            let matching = |e: &&RawEnvelope| query.matches(e);
            match query.order {
                Order::Oldest => ring
                    .events
                    .iter()
                    .filter(matching)
                    .take(limit)
                    .cloned()
                    .collect(),
                Order::Newest => ring
                    .events
                    .iter()
                    .rev()
                    .filter(matching)
                    .take(limit)
                    .cloned()
                    .collect(),
            }
        };
        let replay = query.replay;
        let found = found
            .into_iter()
            .map(move |e| Ok(if replay { e.as_replay() } else { e }));
        Box::pin(futures_util::stream::iter(found))
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn durable(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        format!("memory://?capacity={}", self.capacity)
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

    fn as_streams(&self) -> Option<&dyn StreamStore> {
        Some(self)
    }

    fn as_schedules(&self) -> Option<&dyn ScheduleStore> {
        Some(self)
    }

    fn as_sagas(&self) -> Option<&dyn SagaStore> {
        Some(self)
    }
}

impl SagaStore for MemoryStore {
    fn load_saga(&self, saga: &str, key: &str) -> BoxFuture<'_, Result<Option<StoredSaga>>> {
        let found = self
            .sagas
            .lock()
            .map_err(|_| poisoned())
            .map(|sagas| sagas.get(&(saga.to_owned(), key.to_owned())).cloned());
        Box::pin(std::future::ready(found))
    }

    fn save_saga(
        &self,
        saga: &str,
        key: &str,
        expected: u64,
        open: bool,
        record: String,
    ) -> BoxFuture<'_, Result<u64>> {
        let saved = self
            .sagas
            .lock()
            .map_err(|_| poisoned())
            .and_then(|mut sagas| {
                let slot = (saga.to_owned(), key.to_owned());
                let actual = sagas.get(&slot).map_or(0, |s| s.version);
                if actual != expected {
                    return Err(sagas::conflict(saga, key, expected, actual));
                }
                let (saga, key) = slot.clone();
                sagas.insert(
                    slot,
                    StoredSaga {
                        saga,
                        key,
                        version: expected + 1,
                        open,
                        record,
                    },
                );
                Ok(expected + 1)
            });
        Box::pin(std::future::ready(saved))
    }

    fn saga_instances(
        &self,
        saga: Option<&str>,
        open_only: bool,
    ) -> BoxFuture<'_, Result<Vec<StoredSaga>>> {
        let found = self.sagas.lock().map_err(|_| poisoned()).map(|sagas| {
            sagas
                .values()
                .filter(|s| saga.is_none_or(|name| name == s.saga) && (s.open || !open_only))
                .cloned()
                .collect()
        });
        Box::pin(std::future::ready(found))
    }
}

impl CheckpointStore for MemoryStore {
    fn load_checkpoint(&self, handler: &str) -> BoxFuture<'_, Result<Option<u64>>> {
        let seq = self
            .checkpoints
            .lock()
            .map_err(|_| poisoned())
            .map(|c| c.get(handler).copied());
        Box::pin(std::future::ready(seq))
    }

    fn save_checkpoint(&self, handler: &str, seq: u64) -> BoxFuture<'_, Result<()>> {
        let done = self
            .checkpoints
            .lock()
            .map_err(|_| poisoned())
            .map(|mut c| {
                c.insert(handler.to_owned(), seq);
            });
        Box::pin(std::future::ready(done))
    }

    fn checkpoints(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>>> {
        let all = self.checkpoints.lock().map_err(|_| poisoned()).map(|c| {
            let mut all: Vec<(String, u64)> = c.iter().map(|(h, s)| (h.clone(), *s)).collect();
            all.sort();
            all
        });
        Box::pin(std::future::ready(all))
    }
}

impl DeadLetterStore for MemoryStore {
    fn add_dead_letter(&self, dead: NewDeadLetter) -> BoxFuture<'_, Result<u64>> {
        let mut box_ = self.dead();
        box_.next_id += 1;
        let id = box_.next_id;
        box_.items.insert(
            id,
            DeadLetter {
                id,
                handler: dead.handler,
                envelope: dead.envelope,
                error: dead.error,
                attempts: dead.attempts,
                time: chrono::Utc::now(),
                retry_requested: false,
            },
        );
        if box_.items.len() > self.capacity
            && let Some((_, oldest)) = box_.items.pop_first()
        {
            tracing::warn!(
                handler = %oldest.handler, seq = oldest.envelope.seq(), error = %oldest.error,
                "memory store dead letters are full; dropping the oldest"
            );
        }
        Box::pin(std::future::ready(Ok(id)))
    }

    fn dead_letters(&self, query: DeadLetterQuery) -> BoxFuture<'_, Result<Vec<DeadLetter>>> {
        let found = self
            .dead()
            .items
            .values()
            .filter(|d| query.matches(d))
            .take(query.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn request_retry(&self, id: u64) -> BoxFuture<'_, Result<bool>> {
        let found = self
            .dead()
            .items
            .get_mut(&id)
            .map(|d| d.retry_requested = true)
            .is_some();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn record_retry_failure(
        &self,
        id: u64,
        error: String,
        attempts: u32,
    ) -> BoxFuture<'_, Result<()>> {
        if let Some(d) = self.dead().items.get_mut(&id) {
            d.error = error;
            d.attempts += attempts;
            d.retry_requested = false;
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn remove_dead_letter(&self, id: u64) -> BoxFuture<'_, Result<bool>> {
        let found = self.dead().items.remove(&id).is_some();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn purge_dead_letters(&self, handler: Option<&str>) -> BoxFuture<'_, Result<u64>> {
        let mut box_ = self.dead();
        let before = box_.items.len();
        box_.items
            .retain(|_, d| handler.is_some_and(|h| h != d.handler));
        let removed = (before - box_.items.len()) as u64;
        Box::pin(std::future::ready(Ok(removed)))
    }
}

impl StoreAdmin for MemoryStore {
    fn clear(&self, pattern: &Pattern) -> BoxFuture<'_, Result<u64>> {
        let removed: VecDeque<RawEnvelope> = {
            let mut ring = self.ring();
            let (gone, kept) = ring
                .events
                .drain(..)
                .partition(|e| pattern.matches(e.topic()));
            ring.events = kept;
            gone
        };
        // Clearing everything starts the bus over, saga instances too.
        if pattern.as_str() == ">" {
            self.sagas
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
        Box::pin(std::future::ready(Ok(removed.len() as u64)))
    }

    fn topics(&self) -> BoxFuture<'_, Result<Vec<TopicSummary>>> {
        let mut by_topic: BTreeMap<String, TopicSummary> = BTreeMap::new();
        for env in &self.ring().events {
            by_topic
                .entry(env.topic().to_owned())
                .and_modify(|t| {
                    t.count += 1;
                    t.last = env.time();
                })
                .or_insert_with(|| TopicSummary {
                    topic: env.topic().to_owned(),
                    count: 1,
                    first: env.time(),
                    last: env.time(),
                });
        }
        Box::pin(std::future::ready(Ok(by_topic.into_values().collect())))
    }

    fn size_bytes(&self) -> Option<u64> {
        None
    }
}

/// Whether `first` is at most `window` before `now`. A window reaching
/// back past the earliest time chrono holds covers every `first`.
fn within(window: chrono::Duration, first: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now.checked_sub_signed(window)
        .is_none_or(|since| first >= since)
}

fn poisoned() -> Error {
    Error::store("memory", "checkpoint table lock poisoned by a panic")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MAX_DURATION;

    fn keyed_draft(id: u32, time: DateTime<Utc>) -> Draft {
        let json = format!(
            r#"{{"specversion":"1.0","id":"0190e0a0-0000-7000-8000-00000000000{id}",
                "source":"test","type":"a.b","idempotencykey":"k","data":{id}}}"#
        );
        let mut draft =
            Draft::from_envelope(&RawEnvelope::from_cloudevent_json(json.as_bytes()).unwrap());
        draft.meta.time = time;
        draft
    }

    #[test]
    fn the_longest_window_compares_without_overflow_at_any_time() {
        let url = StoreUrl::parse("memory://?idempotency_window=100y").unwrap();
        let store = MemoryStore::from_url(&url).unwrap();
        assert_eq!(
            store.idempotency_window.to_std().unwrap(),
            MAX_DURATION,
            "the window is the longest a URL may ask"
        );
        for (n, time) in [
            DateTime::<Utc>::MIN_UTC,
            Utc::now(),
            DateTime::<Utc>::MAX_UTC,
        ]
        .into_iter()
        .enumerate()
        {
            // Fresh ids each round: an import of a stored id adds nothing.
            let id = 2 * n as u32 + 1;
            let first = store.store_now(keyed_draft(id, time));
            let again = store.store_now(keyed_draft(id + 1, time));
            assert_eq!(
                again.seq(),
                first.seq(),
                "a repeat at {time} is the first event"
            );
            store.ring().keys.clear();
        }
    }

    #[test]
    fn a_window_past_the_limit_is_refused() {
        let url = StoreUrl::parse("memory://?idempotency_window=100000000d").unwrap();
        let e = MemoryStore::from_url(&url).err().unwrap().to_string();
        assert!(
            e.contains("idempotency_window `100000000d` is longer than 100 years"),
            "{e}"
        );
    }
}
