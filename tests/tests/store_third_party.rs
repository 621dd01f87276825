//! `Store` is a public extension point: a store written outside eventbus,
//! through the public traits only, runs the same handlers, subscriptions
//! and history as the built-in ones. The first store here implements the
//! core alone (handlers then get events pushed, as on `memory://`); the
//! second adds `CheckpointStore` and says it is durable, so handlers read
//! their feeds from it after their checkpoints and resume after a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::store::{BoxStream, CheckpointStore, Query, Store};
use eventbus::{BoxFuture, Draft, Error, Result, Start};
use tests::{OrderEvent, Seen, eventually, isolated, recorder};

/// Events in a `Vec`, shared so a "restarted" store sees the same data.
#[derive(Clone, Default)]
struct Shelf {
    events: Arc<Mutex<Vec<RawEnvelope>>>,
    checkpoints: Arc<Mutex<HashMap<String, u64>>>,
}

/// The core alone.
struct VecStore(Shelf);

impl Store for VecStore {
    fn append(&self, draft: Draft) -> BoxFuture<'_, Result<RawEnvelope>> {
        let mut events = self.0.events.lock().unwrap();
        // One event per id; a repeated idempotency key answers with the first.
        let existing = events.iter().find(|e| {
            e.id() == draft.id()
                || (draft.idempotency_key().is_some()
                    && e.idempotency_key() == draft.idempotency_key())
        });
        let env = match existing {
            Some(first) => first.clone(),
            None => {
                let env = draft.seal(events.len() as u64 + 1);
                events.push(env.clone());
                env
            }
        };
        Box::pin(async move { Ok(env) })
    }

    fn query(&self, query: Query) -> BoxStream<'static, Result<RawEnvelope>> {
        let events = self.0.events.lock().unwrap();
        let mut found: Vec<RawEnvelope> = events
            .iter()
            .filter(|e| query.matches(e))
            .cloned()
            .collect();
        if query.order == eventbus::store::Order::Newest {
            found.reverse();
        }
        found.truncate(query.limit.unwrap_or(usize::MAX));
        Box::pin(futures_util::stream::iter(found.into_iter().map(Ok)))
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn describe(&self) -> String {
        "vec://".to_owned()
    }
}

/// The core plus checkpoints, and durable: handlers read from it.
struct DurableVecStore(VecStore);

impl Store for DurableVecStore {
    fn append(&self, draft: Draft) -> BoxFuture<'_, Result<RawEnvelope>> {
        self.0.append(draft)
    }

    fn query(&self, query: Query) -> BoxStream<'static, Result<RawEnvelope>> {
        self.0.query(query)
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        self.0.close()
    }

    fn describe(&self) -> String {
        "durable-vec://".to_owned()
    }

    fn durable(&self) -> bool {
        true
    }

    fn as_checkpoint_store(&self) -> Option<&dyn CheckpointStore> {
        Some(self)
    }
}

impl CheckpointStore for DurableVecStore {
    fn load_checkpoint(&self, handler: &str) -> BoxFuture<'_, Result<Option<u64>>> {
        let seq = self.0.0.checkpoints.lock().unwrap().get(handler).copied();
        Box::pin(async move { Ok(seq) })
    }

    fn save_checkpoint(&self, handler: &str, seq: u64) -> BoxFuture<'_, Result<()>> {
        self.0
            .0
            .checkpoints
            .lock()
            .unwrap()
            .insert(handler.to_owned(), seq);
        Box::pin(async { Ok(()) })
    }

    fn checkpoints(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>>> {
        let mut all: Vec<(String, u64)> = self
            .0
            .0
            .checkpoints
            .lock()
            .unwrap()
            .iter()
            .map(|(h, s)| (h.clone(), *s))
            .collect();
        all.sort();
        Box::pin(async move { Ok(all) })
    }
}

fn seen(log: &Seen) -> Vec<u64> {
    log.lock().unwrap().clone()
}

#[tokio::test]
async fn a_store_with_the_core_alone_runs_handlers_subscriptions_and_history() {
    let log = Seen::default();
    let bus = isolated()
        .store_impl(Arc::new(VecStore(Shelf::default())))
        .handler(recorder("audit", &log))
        .build()
        .await
        .unwrap();
    let mut live = bus.subscribe::<OrderEvent>("order.>").unwrap();
    for id in 1..=3 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    let again = bus
        .publish(OrderEvent::Shipped { id: 9 })
        .idempotency_key("k")
        .await
        .unwrap();
    let repeat = bus
        .publish(OrderEvent::Shipped { id: 9 })
        .idempotency_key("k")
        .await
        .unwrap();
    assert_eq!(repeat.id(), again.id());
    eventually("four handled", Duration::from_secs(5), || {
        seen(&log).len() == 4
    })
    .await;
    assert_eq!(seen(&log), [1, 2, 3, 4]);
    assert_eq!(live.next().await.unwrap().unwrap().seq(), 1);
    assert_eq!(
        bus.history().topic("order.*").fetch().await.unwrap().len(),
        4
    );
    // What the store does not offer is named, not faked.
    let err = bus
        .dead_letters()
        .list(Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("vec://"), "{err}");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_durable_store_with_checkpoints_feeds_handlers_that_resume_after_a_restart() {
    let shelf = Shelf::default();
    let log = Seen::default();
    let open = || Arc::new(DurableVecStore(VecStore(shelf.clone())));
    let bus = isolated()
        .store_impl(open())
        .handler(recorder("audit", &log).start(Start::Earliest))
        .build()
        .await
        .unwrap();
    for id in 1..=3 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    eventually("three handled", Duration::from_secs(5), || {
        seen(&log).len() == 3
    })
    .await;
    bus.shutdown().await.unwrap();
    assert_eq!(shelf.checkpoints.lock().unwrap().get("audit"), Some(&3));

    // Stored while the handler was down; read after its checkpoint.
    let publisher = isolated().store_impl(open()).build().await.unwrap();
    publisher
        .publish(OrderEvent::Shipped { id: 4 })
        .await
        .unwrap();
    let bus = isolated()
        .store_impl(open())
        .handler(recorder("audit", &log))
        .build()
        .await
        .unwrap();
    eventually("the fourth handled", Duration::from_secs(5), || {
        seen(&log).len() == 4
    })
    .await;
    assert_eq!(seen(&log), [1, 2, 3, 4]);
    bus.shutdown().await.unwrap();
}
