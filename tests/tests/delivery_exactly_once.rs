//! Exactly-once effects across crashes: a consuming process whose handler
//! inserts one row per event through `ctx.transaction` is SIGKILLed at
//! random points several times and restarted; in the end the user table
//! holds exactly one row per event. Some attempts fail inside the
//! transaction (rolled back, retried) and some fail after it committed
//! (not retried), and the handler runs four handlings at once. A second
//! run has one handling at a time and nothing slow in its transactions, so
//! the store gathers many of them into each group commit, and the kills
//! find groups open.
//!
//! Replay a failing run with `EVENTBUS_KILL_SEED=<the printed seed>`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use eventbus::Start;
use eventbus::prelude::*;
use eventbus::rusqlite::{self, params};
use eventbus::store::Store;
use eventbus::store::{CheckpointStore, DeadLetterStore};
use tests::{OrderEvent, TestChild, isolated};

const EVENTS: u64 = 2000;
const KILLS: usize = 8;

/// The consumer: runs until killed. Only when re-executed with
/// `EVENTBUS_EFFECTS_DB` set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effects_child() {
    let Ok(url) = std::env::var("EVENTBUS_EFFECTS_DB") else {
        return;
    };
    let concurrency: u32 = std::env::var("EVENTBUS_EFFECTS_CONCURRENCY")
        .unwrap()
        .parse()
        .unwrap();
    let slow = concurrency > 1;
    let handler = FnHandler::new(
        "effects",
        move |ev: Envelope<OrderEvent>, ctx: Context| async move {
            let (id, seq, attempt) = (ev.id().to_string(), ev.seq(), ctx.attempt());
            ctx.transaction(move |tx| {
                tx.execute(
                    "INSERT INTO effects (event_id, seq) VALUES (?1, ?2)",
                    params![id, seq as i64],
                )?;
                if slow {
                    // Widens the window in which a kill finds the transaction open.
                    std::thread::sleep(Duration::from_micros(300));
                }
                if seq % 7 == 0 && attempt == 1 {
                    // Rolled back, row included; the attempt is retried.
                    return Err(rusqlite::Error::InvalidQuery);
                }
                Ok(())
            })
            .await?;
            if seq % 11 == 0 && attempt == 1 {
                // After the commit: must not be retried, or the row doubles.
                return Err(eventbus::Error::Config("failing after the commit".into()));
            }
            Ok::<(), eventbus::Error>(())
        },
    )
    .retry(3)
    .concurrency(concurrency)
    .start(Start::Earliest);
    // A restarted consumer waits for its killed predecessor's lease to
    // expire; a short one keeps the test quick.
    let bus = isolated()
        .store(url)
        .handler_lease(Duration::from_secs(1))
        .handler(handler)
        .build()
        .await
        .unwrap();
    std::future::pending::<()>().await;
    drop(bus);
}

/// xorshift64: enough randomness for kill points, replayable from a seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn effects(db: &Path) -> u64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.query_row("SELECT count(*) FROM effects", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64
}

async fn wait_for_effects(db: &Path, at_least: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while effects(db) < at_least {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {at_least} effects (have {})",
            effects(db)
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_handler_applies_each_event_exactly_once_across_kills() {
    applies_each_event_once_across_kills(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_group_commits_in_flight_each_event_is_applied_exactly_once() {
    applies_each_event_once_across_kills(1).await;
}

async fn applies_each_event_once_across_kills(concurrency: u32) {
    let child_env = |url: &str| {
        [
            ("EVENTBUS_EFFECTS_DB", url.to_owned()),
            ("EVENTBUS_EFFECTS_CONCURRENCY", concurrency.to_string()),
        ]
    };
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "eventbus-exactly-once-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("events.db");
    let url = format!("sqlite://{}", db.display());

    let bus = isolated().store(&url).build().await.unwrap();
    let publishers: Vec<_> = (0..8)
        .map(|p| {
            let bus = bus.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for id in (p..EVENTS).step_by(8) {
                    ids.push(
                        bus.publish(OrderEvent::Shipped { id })
                            .await
                            .unwrap()
                            .id()
                            .clone(),
                    );
                }
                ids
            })
        })
        .collect();
    let mut published = BTreeSet::new();
    for p in publishers {
        published.extend(p.await.unwrap().into_iter().map(|id| id.to_string()));
    }
    bus.shutdown().await.unwrap();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "CREATE TABLE effects (event_id TEXT NOT NULL, seq INTEGER NOT NULL)",
            [],
        )
        .unwrap();

    let seed = std::env::var("EVENTBUS_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
        | 1;
    println!("kill points seeded with EVENTBUS_KILL_SEED={seed}");
    let mut rng = Rng(seed);
    for _ in 0..KILLS {
        let before = effects(&db);
        let mut child = TestChild::spawn("effects_child", &child_env(&url));
        wait_for_effects(&db, before + 1 + rng.below(150)).await;
        tokio::time::sleep(Duration::from_micros(rng.below(10_000))).await;
        child.kill();
    }
    let mut child = TestChild::spawn("effects_child", &child_env(&url));
    wait_for_effects(&db, EVENTS).await;
    // A duplicate would be one more row: give the consumer time to make
    // one, if it wrongly handles anything again, by waiting until its
    // checkpoint has passed every event.
    let store = eventbus::store::SqliteStore::open(&url).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.load_checkpoint("effects").await.unwrap() != Some(EVENTS) {
        assert!(tokio::time::Instant::now() < deadline, "checkpoint stuck");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill();
    let dead = store.dead_letters(Default::default()).await.unwrap();
    store.close().await.unwrap();

    let conn = rusqlite::Connection::open(&db).unwrap();
    let (rows, distinct): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT event_id) FROM effects",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let ids: BTreeSet<String> = conn
        .prepare("SELECT event_id FROM effects")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(dead.is_empty(), "no dead letters: {dead:?}");
    assert_eq!(distinct, rows, "an event's effect was applied twice");
    assert_eq!(rows as u64, EVENTS, "one effect per event");
    assert_eq!(ids, published, "the effects are the published events'");
    println!("{KILLS} kills, {rows} effects for {EVENTS} events");
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
}
