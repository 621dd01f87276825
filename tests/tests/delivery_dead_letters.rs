//! Dead letters: what a handler gives up on is kept with the reason,
//! announced, and can be listed, retried (here or on request from another
//! process) and purged, on memory and on SQLite.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::store::DeadLetterQuery;
use eventbus::{DeadLettered, Draft};
use tests::{OrderEvent, eventually, isolated};

/// Fails while `broken` is set.
fn switchable(name: &'static str, broken: &Arc<AtomicBool>) -> FnHandler {
    let broken = Arc::clone(broken);
    FnHandler::new(name, move |_ev: Envelope<OrderEvent>, _ctx: Context| {
        let broken = broken.load(Ordering::SeqCst);
        async move {
            if broken {
                Err(std::io::Error::other("warehouse API is down"))
            } else {
                Ok(())
            }
        }
    })
    .retry(2)
}

/// Publishes one event to the (broken) handler and waits for its dead
/// letter; returns the dead letter's id.
async fn publish_until_dead(bus: &Bus) -> u64 {
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    eventually("a dead letter", Duration::from_secs(5), || {
        bus.stats()[0].dead_lettered == 1
    })
    .await;
    bus.dead_letters()
        .list(DeadLetterQuery::all())
        .await
        .unwrap()[0]
        .id
}

async fn dead_count(bus: &Bus) -> usize {
    bus.dead_letters()
        .list(DeadLetterQuery::all())
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_handler_giving_up_leaves_a_dead_letter_and_an_announcement() {
    let broken = Arc::new(AtomicBool::new(true));
    let bus = isolated()
        .handler(switchable("ship", &broken))
        .build()
        .await
        .unwrap();
    let mut notices = bus.subscribe::<DeadLettered>("eventbus.>").unwrap();
    let sent = bus
        .publish(OrderEvent::Shipped { id: 7 })
        .correlation_id("req-1")
        .await
        .unwrap();

    let notice = tokio::time::timeout(Duration::from_secs(5), notices.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(notice.handler, "ship");
    assert_eq!(notice.seq, sent.seq());
    assert_eq!(notice.event_id, sent.id().to_string());
    assert_eq!(notice.topic, "order.shipped");
    assert_eq!(notice.attempts, 3);
    assert!(
        notice.error.contains("warehouse API is down"),
        "{}",
        notice.error
    );
    assert_eq!(
        notice.correlation_id(),
        Some("req-1"),
        "the announcement stays in the flow"
    );

    let dead = bus
        .dead_letters()
        .list(DeadLetterQuery::handler("ship"))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, notice.dead_letter_id);
    assert_eq!(dead[0].envelope.id(), sent.id());
    assert_eq!(
        *dead[0].envelope.decode::<OrderEvent>().unwrap(),
        OrderEvent::Shipped { id: 7 }
    );
    assert_eq!((dead[0].attempts, dead[0].retry_requested), (3, false));
    let stats = bus.stats().into_iter().find(|s| s.name == "ship").unwrap();
    assert_eq!((stats.failed, stats.dead_lettered), (1, 1));
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn replayed_failures_are_reported_not_dead_lettered() {
    let bus = isolated()
        .handler(FnHandler::new(
            "orders",
            |_ev: Envelope<OrderEvent>, _ctx: Context| async {},
        ))
        .build()
        .await
        .unwrap();
    let bad = RawEnvelope::from_cloudevent_json(
        br#"{"specversion":"1.0","id":"0190e0a0-0000-7000-8000-00000000dead","source":"js",
            "type":"order.shipped","data":{"id":"seven"}}"#,
    )
    .unwrap();
    // Written by a client outside Rust, in a shape the handler cannot decode.
    bus.store()
        .append(Draft::from_envelope(&bad))
        .await
        .unwrap();
    let report = bus.replay().run().await.unwrap();
    assert_eq!(report.failed, 1);
    assert_eq!(dead_count(&bus).await, 0, "replays never make dead letters");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn retrying_a_dead_letter_here_removes_it_once_it_succeeds() {
    let broken = Arc::new(AtomicBool::new(true));
    let bus = isolated()
        .handler(switchable("ship", &broken))
        .build()
        .await
        .unwrap();
    let id = publish_until_dead(&bus).await;

    // Still broken: it stays, with the attempts added up.
    assert!(!bus.dead_letters().retry(id).await.unwrap());
    let dead = bus
        .dead_letters()
        .list(DeadLetterQuery::id(id))
        .await
        .unwrap();
    assert_eq!(dead[0].attempts, 6);

    broken.store(false, Ordering::SeqCst);
    assert!(bus.dead_letters().retry(id).await.unwrap());
    assert_eq!(dead_count(&bus).await, 0);
    let missing = bus.dead_letters().retry(id).await.unwrap_err();
    assert!(
        missing
            .to_string()
            .contains(&format!("no dead letter {id}")),
        "{missing}"
    );
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_retry_requested_from_outside_is_made_by_the_bus_running_the_handler() {
    let broken = Arc::new(AtomicBool::new(true));
    let bus = isolated()
        .handler(switchable("ship", &broken))
        .dead_letter_poll(Duration::from_millis(10))
        .build()
        .await
        .unwrap();
    let id = publish_until_dead(&bus).await;
    broken.store(false, Ordering::SeqCst);
    // What `eventbus dlq retry ID` does, through the store.
    assert!(
        bus.store()
            .dead_letter_store()
            .unwrap()
            .request_retry(id)
            .await
            .unwrap()
    );
    assert!(
        !bus.store()
            .dead_letter_store()
            .unwrap()
            .request_retry(id + 100)
            .await
            .unwrap()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while dead_count(&bus).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the requested retry was not made"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(bus.stats()[0].handled, 1);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn dead_letters_survive_a_restart_on_sqlite_and_purge_by_handler() {
    let dir = std::env::temp_dir().join(format!("eventbus-dlq-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("events.db").display());
    let broken = Arc::new(AtomicBool::new(true));
    let bus = isolated()
        .store(&url)
        .handler(switchable("a", &broken))
        .handler(switchable("b", &broken))
        .build()
        .await
        .unwrap();
    let sent = bus
        .publish(OrderEvent::Placed { id: 3, cents: 30 })
        .header("tenant", "acme")
        .unwrap()
        .await
        .unwrap();
    eventually("two dead letters", Duration::from_secs(5), || {
        bus.stats().iter().all(|s| s.dead_lettered == 1)
    })
    .await;
    bus.shutdown().await.unwrap();

    let store = eventbus::store::open(&url).await.unwrap();
    let mut dead = store
        .dead_letter_store()
        .unwrap()
        .dead_letters(DeadLetterQuery::all())
        .await
        .unwrap();
    // The two handlers give up independently, in either order.
    dead.sort_by(|x, y| x.handler.cmp(&y.handler));
    assert_eq!(
        dead.iter().map(|d| d.handler.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let env = &dead[0].envelope;
    assert_eq!(
        (env.id(), env.seq(), env.header("tenant")),
        (sent.id(), sent.seq(), Some("acme"))
    );
    assert!(dead[0].error.contains("warehouse API is down"));
    assert_eq!(
        store
            .dead_letter_store()
            .unwrap()
            .purge_dead_letters(Some("a"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .dead_letter_store()
            .unwrap()
            .dead_letters(DeadLetterQuery::all())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .dead_letter_store()
            .unwrap()
            .purge_dead_letters(None)
            .await
            .unwrap(),
        1
    );
    store.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
