//! Projections: handlers that build read models, waited for with
//! `bus.caught_up`, rebuilt from the beginning with `bus.rebuild`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::{Error, Start};
use tests::{NatsScope, OrderEvent, RedisScope, isolated};

/// Orders per customer... here per order id parity, in a SQLite table
/// written with the handler's position.
fn totals_projection() -> FnHandler {
    FnHandler::new(
        "totals",
        |ev: Envelope<OrderEvent>, ctx: Context| async move {
            let OrderEvent::Placed { id, cents } = *ev else {
                return Ok(());
            };
            ctx.transaction(move |tx| {
                tx.execute(
                    "INSERT INTO totals (bucket, cents) VALUES (?1, ?2)
                 ON CONFLICT (bucket) DO UPDATE SET cents = cents + excluded.cents",
                    rusqlite::params![(id % 2) as i64, cents as i64],
                )
                .map(drop)
            })
            .await
        },
    )
    .start(Start::Earliest)
}

fn totals(db: &std::path::Path) -> Vec<(i64, i64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT bucket, cents FROM totals ORDER BY bucket")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[tokio::test]
async fn a_rebuilt_projection_equals_the_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    let url = format!("sqlite://{}", db.display());
    let bus = isolated()
        .store(&url)
        .handler(totals_projection())
        .build()
        .await
        .unwrap();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE totals (bucket INTEGER PRIMARY KEY, cents INTEGER NOT NULL)")
        .unwrap();
    let mut last = 0;
    for id in 1..=40 {
        last = bus
            .publish(OrderEvent::Placed { id, cents: id * 10 })
            .await
            .unwrap()
            .seq();
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    bus.caught_up("totals", last, Duration::from_secs(10))
        .await
        .unwrap();
    let live = totals(&db);
    let even: i64 = (1..=40).filter(|i| i % 2 == 0).map(|i| i * 10).sum();
    assert_eq!(live, [(0, even), (1, 8200 - even)]);

    bus.rebuild("totals", |tx| {
        tx.execute("DELETE FROM totals", []).map(drop)
    })
    .await
    .unwrap();
    let end = bus.history().newest_first().limit(1).fetch().await.unwrap()[0].seq();
    bus.caught_up("totals", end, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(totals(&db), live, "the rebuilt read model is the live one");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn caught_up_waits_for_a_slow_handler_and_says_where_it_is() {
    caught_up_waits_for_a_slow_handler("memory://").await;
}

/// On NATS the wait follows the handler's consumer on the server.
#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_caught_up_waits_for_a_slow_handler_and_says_where_it_is() {
    let scope = NatsScope::new("caught_up");
    caught_up_waits_for_a_slow_handler(&scope.url("")).await;
}

/// On Redis the wait follows the handler's consumer group.
#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_caught_up_waits_for_a_slow_handler_and_says_where_it_is() {
    let scope = RedisScope::new("caught_up");
    caught_up_waits_for_a_slow_handler(&scope.url("")).await;
}

async fn caught_up_waits_for_a_slow_handler(url: &str) {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let (gate, seen) = (Arc::clone(&gate), Arc::clone(&seen));
        FnHandler::new("slow", move |ev: Envelope<OrderEvent>, _: Context| {
            let (gate, seen) = (Arc::clone(&gate), Arc::clone(&seen));
            async move {
                gate.acquire().await.unwrap().forget();
                seen.lock().unwrap().push(ev.seq());
            }
        })
    };
    let bus = isolated()
        .store(url)
        .handler(handler)
        .build()
        .await
        .unwrap();
    let first = bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    let second = bus.publish(OrderEvent::Shipped { id: 2 }).await.unwrap();
    let err = bus
        .caught_up("slow", second.seq(), Duration::from_millis(50))
        .await
        .unwrap_err();
    // Where it is: before the first event (0 where seqs are dense, just
    // below the first event where they are not, as on Redis).
    assert!(
        matches!(err, Error::NotCaughtUp { target, at, .. }
            if target == second.seq() && at < first.seq()),
        "{err}"
    );
    gate.add_permits(1);
    bus.caught_up("slow", first.seq(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [first.seq()]);
    gate.add_permits(1);
    bus.caught_up("slow", second.seq(), Duration::from_secs(5))
        .await
        .unwrap();
    // A seq of a topic the handler does not take is no reason to wait.
    let other = bus.publish_json("audit.note", &1).await.unwrap();
    bus.caught_up("slow", other.seq(), Duration::from_millis(50))
        .await
        .unwrap();
    let unknown = bus
        .caught_up("nobody", 1, Duration::from_millis(1))
        .await
        .unwrap_err();
    assert!(matches!(unknown, Error::UnknownHandler { .. }), "{unknown}");
    let not_sqlite = bus.rebuild("slow", |_| Ok(())).await.unwrap_err();
    assert!(
        not_sqlite.to_string().contains("rebuilding a projection"),
        "{not_sqlite}"
    );
    bus.shutdown().await.unwrap();
}
