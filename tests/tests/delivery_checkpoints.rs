//! Handlers on a durable store read their feed from it after their
//! checkpoint: they resume after a restart, start where told the first
//! time, follow a checkpoint moved from outside, lag without holding
//! publishers back, and see events in seq order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::store::CheckpointStore;
use eventbus::store::SqliteStore;
use eventbus::{Start, store::Store};
use tests::{OrderEvent, Seen, eventually, isolated, recorder};

struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "eventbus-cp-{name}-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDb(dir)
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.join("events.db").display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn seen(seen: &Seen) -> Vec<u64> {
    seen.lock().unwrap().clone()
}

async fn publish_shipped(bus: &Bus, ids: std::ops::Range<u64>) {
    for id in ids {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
}

#[tokio::test]
async fn a_handler_resumes_after_its_checkpoint_across_restarts() {
    let db = TempDb::new("resume");
    let first = Seen::default();
    let bus = isolated()
        .store(db.url())
        .handler(recorder("h", &first))
        .build()
        .await
        .unwrap();
    publish_shipped(&bus, 0..3).await;
    bus.shutdown().await.unwrap();
    assert_eq!(seen(&first), [1, 2, 3], "shutdown handles what was stored");

    // Published while the handler is not running.
    let without = isolated().store(db.url()).build().await.unwrap();
    publish_shipped(&without, 3..5).await;
    without.shutdown().await.unwrap();

    let second = Seen::default();
    let bus = isolated()
        .store(db.url())
        .handler(recorder("h", &second))
        .build()
        .await
        .unwrap();
    eventually("the missed events", Duration::from_secs(5), || {
        seen(&second).len() == 2
    })
    .await;
    publish_shipped(&bus, 5..6).await;
    eventually("the new event", Duration::from_secs(5), || {
        seen(&second).len() == 3
    })
    .await;
    bus.shutdown().await.unwrap();
    assert_eq!(
        seen(&second),
        [4, 5, 6],
        "nothing handled twice, nothing missed"
    );
    let store = SqliteStore::open(&db.url()).await.unwrap();
    assert_eq!(store.load_checkpoint("h").await.unwrap(), Some(6));
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_new_handler_starts_latest_or_earliest() {
    let db = TempDb::new("start");
    let bus = isolated().store(db.url()).build().await.unwrap();
    publish_shipped(&bus, 0..3).await;
    bus.shutdown().await.unwrap();

    let (latest, earliest) = (Seen::default(), Seen::default());
    let bus = isolated()
        .store(db.url())
        .handler(recorder("latest", &latest))
        .handler(recorder("earliest", &earliest).start(Start::Earliest))
        .build()
        .await
        .unwrap();
    publish_shipped(&bus, 3..4).await;
    eventually("both saw the new event", Duration::from_secs(5), || {
        seen(&latest).contains(&4) && seen(&earliest).contains(&4)
    })
    .await;
    bus.shutdown().await.unwrap();
    assert_eq!(seen(&latest), [4]);
    assert_eq!(seen(&earliest), [1, 2, 3, 4]);
}

#[tokio::test]
async fn a_checkpoint_moved_from_outside_is_followed() {
    let db = TempDb::new("moved");
    let log = Seen::default();
    let bus = isolated()
        .store(db.url())
        .handler(recorder("h", &log))
        .build()
        .await
        .unwrap();
    publish_shipped(&bus, 0..5).await;
    eventually("five handled", Duration::from_secs(5), || {
        seen(&log).len() == 5
    })
    .await;

    // What `eventbus replay --to-handler h --since ...` does, from another handle.
    let outside = SqliteStore::open(&db.url()).await.unwrap();
    outside.save_checkpoint("h", 2).await.unwrap();
    eventually("3, 4 and 5 handled again", Duration::from_secs(5), || {
        seen(&log).len() == 8
    })
    .await;
    bus.shutdown().await.unwrap();
    assert_eq!(seen(&log), [1, 2, 3, 4, 5, 3, 4, 5]);
    assert_eq!(outside.load_checkpoint("h").await.unwrap(), Some(5));
    outside.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_handler_lags_in_the_store_without_holding_publishers() {
    let db = TempDb::new("lag");
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let log = Seen::default();
    let stuck = {
        let (gate, log) = (Arc::clone(&gate), Arc::clone(&log));
        FnHandler::new("stuck", move |ev: Envelope<OrderEvent>, _ctx: Context| {
            let (gate, log) = (Arc::clone(&gate), Arc::clone(&log));
            async move {
                gate.acquire().await.unwrap().forget();
                log.lock().unwrap().push(ev.seq());
            }
        })
    };
    // A feed of 8: with pushed feeds, publisher 10 would wait for the handler.
    let bus = isolated()
        .store(db.url())
        .feed_capacity(8)
        .handler(stuck)
        .build()
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), publish_shipped(&bus, 0..2000))
        .await
        .expect("publishers are never held back by a stuck handler");
    assert!(seen(&log).is_empty());
    gate.add_permits(2000);
    eventually("the handler caught up", Duration::from_secs(20), || {
        seen(&log).len() == 2000
    })
    .await;
    bus.shutdown().await.unwrap();
    assert_eq!(seen(&log), (1..=2000).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_are_seen_in_seq_order() {
    let db = TempDb::new("order");
    let log = Seen::default();
    let bus = isolated()
        .store(db.url())
        .handler(recorder("h", &log))
        .build()
        .await
        .unwrap();
    let publishers: Vec<_> = (0..4u64)
        .map(|p| {
            let bus = bus.clone();
            tokio::spawn(async move { publish_shipped(&bus, p * 100..p * 100 + 100).await })
        })
        .collect();
    for p in publishers {
        p.await.unwrap();
    }
    bus.shutdown().await.unwrap();
    assert_eq!(seen(&log), (1..=400).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_n_runs_n_stored_events_at_once() {
    // Four handlings meet at a barrier of four; one at a time, they would
    // wait for each other forever.
    let db = TempDb::new("concurrency");
    let barrier = Arc::new(tokio::sync::Barrier::new(4));
    let log = Seen::default();
    let wide = {
        let (barrier, log) = (Arc::clone(&barrier), Arc::clone(&log));
        FnHandler::new("wide", move |ev: Envelope<OrderEvent>, _ctx: Context| {
            let (barrier, log) = (Arc::clone(&barrier), Arc::clone(&log));
            async move {
                barrier.wait().await;
                log.lock().unwrap().push(ev.seq());
            }
        })
        .concurrency(4)
        .start(Start::Earliest)
    };
    // Stored before the handler starts, so all four are at hand together.
    let store = SqliteStore::open(&db.url()).await.unwrap();
    for id in 0..4 {
        let ev = RawEnvelope::from_cloudevent_json(
            format!(
                r#"{{"specversion":"1.0","id":"0190e0a0-0000-7000-8000-00000000000{id}","source":"t",
                    "type":"order.shipped","data":{{"id":{id}}}}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        store
            .append(eventbus::Draft::from_envelope(&ev))
            .await
            .unwrap();
    }
    store.close().await.unwrap();
    let bus = isolated()
        .store(db.url())
        .handler(wide)
        .build()
        .await
        .unwrap();
    eventually("all four met", Duration::from_secs(10), || {
        seen(&log).len() == 4
    })
    .await;
    bus.shutdown().await.unwrap();
}

static FROM_THE_START: Mutex<Vec<u64>> = Mutex::new(Vec::new());

#[handler(name = "cp.from_the_start", start = "earliest")]
async fn from_the_start(ev: Envelope<OrderEvent>) {
    FROM_THE_START.lock().unwrap().push(ev.seq());
}

#[tokio::test]
async fn handler_attribute_sets_where_a_new_handler_starts() {
    let db = TempDb::new("attr-start");
    let bus = isolated().store(db.url()).build().await.unwrap();
    publish_shipped(&bus, 0..2).await;
    bus.shutdown().await.unwrap();

    let bus = Bus::builder()
        .store(db.url())
        .only_handlers(["cp.from_the_start"])
        .build()
        .await
        .unwrap();
    let info = &bus.handlers()[0];
    assert_eq!(info.options.start, Some(Start::Earliest));
    eventually("both stored events", Duration::from_secs(5), || {
        FROM_THE_START.lock().unwrap().len() == 2
    })
    .await;
    bus.shutdown().await.unwrap();
    assert_eq!(*FROM_THE_START.lock().unwrap(), [1, 2]);
}
