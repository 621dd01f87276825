//! `ctx.transaction` and the records of handled events: what a handler's
//! transaction stores, when it refuses, how it rolls back, and how a
//! handler skips the events recorded as handled after its checkpoint.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::rusqlite::{self, params};
use eventbus::store::{CheckpointStore, DeadLetterStore};
use eventbus::store::{SqliteStore, Store};
use eventbus::{Error, Start};
use tests::{OrderEvent, eventually, isolated};

struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "eventbus-tx-{name}-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDb(dir)
    }

    fn file(&self) -> std::path::PathBuf {
        self.0.join("events.db")
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.file().display())
    }

    /// The file with a user table `effects`, created by the store first.
    async fn with_effects(name: &str) -> Self {
        let db = TempDb::new(name);
        SqliteStore::open(&db.url())
            .await
            .unwrap()
            .close()
            .await
            .unwrap();
        db.conn()
            .execute("CREATE TABLE effects (seq INTEGER NOT NULL)", [])
            .unwrap();
        db
    }

    fn conn(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.file()).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }

    fn effects(&self) -> Vec<u64> {
        self.conn()
            .prepare("SELECT seq FROM effects ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get::<_, i64>(0))
            .unwrap()
            .map(|s| s.unwrap() as u64)
            .collect()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn insert_effect(
    seq: u64,
) -> impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()> + Send + 'static {
    move |tx| {
        tx.execute("INSERT INTO effects (seq) VALUES (?1)", params![seq as i64])
            .map(drop)
    }
}

type Errors = Arc<Mutex<Vec<String>>>;

#[tokio::test]
async fn on_a_memory_store_a_transaction_is_refused_naming_the_store() {
    let errors = Errors::default();
    let seen = Arc::clone(&errors);
    let handler = FnHandler::new("h", move |ev: Envelope<OrderEvent>, ctx: Context| {
        let seen = Arc::clone(&seen);
        async move {
            let refused = ctx.transaction(insert_effect(ev.seq())).await.unwrap_err();
            assert!(matches!(refused, Error::TransactionNeedsSqlite { .. }));
            seen.lock().unwrap().push(refused.to_string());
        }
    });
    let bus = isolated().handler(handler).build().await.unwrap();
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    eventually("the handler ran", Duration::from_secs(5), || {
        !errors.lock().unwrap().is_empty()
    })
    .await;
    let message = errors.lock().unwrap()[0].clone();
    assert!(message.contains("needs a `sqlite://` store"), "{message}");
    assert!(message.contains("memory://"), "{message}");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_handling_commits_one_transaction_and_a_second_is_refused() {
    let db = TempDb::with_effects("second").await;
    let errors = Errors::default();
    let seen = Arc::clone(&errors);
    let handler = FnHandler::new("h", move |ev: Envelope<OrderEvent>, ctx: Context| {
        let seen = Arc::clone(&seen);
        async move {
            ctx.transaction(insert_effect(ev.seq())).await.unwrap();
            let again = ctx.transaction(insert_effect(ev.seq())).await.unwrap_err();
            assert!(matches!(again, Error::AlreadyHandled { seq, .. } if seq == ev.seq()));
            seen.lock().unwrap().push(again.to_string());
        }
    })
    .start(Start::Earliest);
    let bus = isolated()
        .store(db.url())
        .handler(handler)
        .build()
        .await
        .unwrap();
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    bus.shutdown().await.unwrap();
    assert_eq!(db.effects(), [1]);
    let message = errors.lock().unwrap()[0].clone();
    assert!(message.contains("put all its writes in one"), "{message}");
}

#[tokio::test]
async fn a_failing_or_panicking_closure_rolls_back_and_the_retry_applies_it_once() {
    let db = TempDb::with_effects("rollback").await;
    let handler = FnHandler::new("h", move |ev: Envelope<OrderEvent>, ctx: Context| {
        let (seq, attempt) = (ev.seq(), ctx.attempt());
        async move {
            ctx.transaction(move |tx| {
                insert_effect(seq)(tx)?;
                match attempt {
                    1 => Err(rusqlite::Error::InvalidQuery),
                    2 => panic!("inside the transaction"),
                    _ => Ok(()),
                }
            })
            .await
        }
    })
    .retry(2)
    .start(Start::Earliest);
    let bus = isolated()
        .store(db.url())
        .handler(handler)
        .build()
        .await
        .unwrap();
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    eventually("the third attempt", Duration::from_secs(5), || {
        bus.stats()[0].handled == 1
    })
    .await;
    let stats = bus.stats().remove(0);
    assert_eq!((stats.retried, stats.panicked), (2, 1));
    // The writer thread survived the panic: publishing still works.
    bus.publish(OrderEvent::Shipped { id: 2 }).await.unwrap();
    bus.shutdown().await.unwrap();
    assert_eq!(db.effects(), [1, 2]);
}

#[tokio::test]
async fn a_failure_after_the_commit_is_not_retried() {
    let db = TempDb::with_effects("after").await;
    let handler = FnHandler::new(
        "h",
        move |ev: Envelope<OrderEvent>, ctx: Context| async move {
            ctx.transaction(insert_effect(ev.seq())).await?;
            Err::<(), _>(Error::Config("after the commit".into()))
        },
    )
    .retry(3)
    .start(Start::Earliest);
    let bus = isolated()
        .store(db.url())
        .handler(handler)
        .build()
        .await
        .unwrap();
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    bus.shutdown().await.unwrap();
    assert_eq!(db.effects(), [1]);
    let store = SqliteStore::open(&db.url()).await.unwrap();
    assert!(
        store
            .dead_letters(Default::default())
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await.unwrap();
}

/// Records the seqs a handler named `h` handles.
fn recorder(seen: &Arc<Mutex<Vec<u64>>>) -> FnHandler {
    let seen = Arc::clone(seen);
    FnHandler::new("h", move |ev: Envelope<OrderEvent>, _ctx: Context| {
        seen.lock().unwrap().push(ev.seq());
        async {}
    })
}

#[tokio::test]
async fn a_restarted_handler_skips_the_events_recorded_as_handled_after_its_checkpoint() {
    let db = TempDb::new("skip");
    let bus = isolated().store(db.url()).build().await.unwrap();
    for id in 0..6 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    bus.shutdown().await.unwrap();
    // As a crash leaves it: checkpoint at 1, events 2, 3 and 5 finished.
    let store = SqliteStore::open(&db.url()).await.unwrap();
    store.record_handled(&"h".into(), 2..=3);
    store.record_handled(&"h".into(), 5..=5);
    // Writes run in order: once the checkpoint is saved, so are the records.
    store.save_checkpoint("h", 1).await.unwrap();
    assert_eq!(store.handled_after("h", 1).await.unwrap(), [2..=3, 5..=5]);
    store.close().await.unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let bus = isolated()
        .store(db.url())
        .handler(recorder(&seen))
        .build()
        .await
        .unwrap();
    bus.shutdown().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [4, 6]);
    let store = SqliteStore::open(&db.url()).await.unwrap();
    assert_eq!(store.load_checkpoint("h").await.unwrap(), Some(6));
    assert!(
        store.handled_after("h", 0).await.unwrap().is_empty(),
        "records at or below the checkpoint are pruned"
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn moving_a_checkpoint_back_forgets_the_records_so_the_events_are_handled_again() {
    let db = TempDb::new("rewind");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let bus = isolated()
        .store(db.url())
        .handler(recorder(&seen).start(Start::Earliest))
        .build()
        .await
        .unwrap();
    for id in 0..4 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    bus.shutdown().await.unwrap();
    let store = SqliteStore::open(&db.url()).await.unwrap();
    assert_eq!(store.load_checkpoint("h").await.unwrap(), Some(4));
    store.record_handled(&"h".into(), 4..=4);
    // What `eventbus replay --to-handler h` does.
    store.save_checkpoint("h", 2).await.unwrap();
    assert!(store.handled_after("h", 2).await.unwrap().is_empty());
    store.close().await.unwrap();

    let bus = isolated()
        .store(db.url())
        .handler(recorder(&seen))
        .build()
        .await
        .unwrap();
    bus.shutdown().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3, 4, 3, 4]);
}

#[tokio::test]
async fn a_group_commit_that_fails_takes_its_handlings_back_and_they_are_handled_again() {
    const EVENTS: u64 = 40;
    let db = TempDb::with_effects("group").await;
    let publisher = isolated().store(db.url()).build().await.unwrap();
    for id in 1..=EVENTS {
        publisher.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    publisher.shutdown().await.unwrap();
    let handlings = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&handlings);
    let handler = FnHandler::new("h", move |ev: Envelope<OrderEvent>, ctx: Context| {
        let (seq, attempt) = (ev.seq(), ctx.attempt());
        seen.lock().unwrap().push(seq);
        async move {
            ctx.transaction(move |tx| {
                insert_effect(seq)(tx)?;
                if seq == EVENTS / 2 && attempt == 1 {
                    // What SQLite does on a full disk or an I/O error: the
                    // whole transaction, and the group commit with it, is
                    // taken back.
                    tx.execute_batch("ROLLBACK")?;
                }
                Ok(())
            })
            .await
        }
    })
    .retry(1)
    .backoff(Duration::from_millis(1), Duration::from_millis(1))
    .start(Start::Earliest);
    let bus = isolated()
        .store(db.url())
        .handler(handler)
        .build()
        .await
        .unwrap();
    eventually("every event's effect", Duration::from_secs(10), || {
        db.effects().len() as u64 >= EVENTS
    })
    .await;
    bus.shutdown().await.unwrap();
    assert_eq!(
        db.effects(),
        (1..=EVENTS).collect::<Vec<_>>(),
        "each effect exactly once"
    );
    let handlings = handlings.lock().unwrap().clone();
    let again = handlings.len() as u64 - EVENTS;
    // At least the event whose transaction broke the group is handled
    // again; so is each event that shared the group with it.
    assert!(again >= 1, "{handlings:?}");
    println!("{again} handlings repeated after the failed group commit");
    let store = SqliteStore::open(&db.url()).await.unwrap();
    let dead = store.dead_letters(Default::default()).await.unwrap();
    assert!(dead.is_empty(), "{dead:#?}");
    assert_eq!(store.load_checkpoint("h").await.unwrap(), Some(EVENTS));
    store.close().await.unwrap();
}
