//! Idempotency keys: publishing the same key again within the window
//! returns the first event and stores nothing new, on memory and SQLite.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use eventbus::prelude::*;
use tests::{OrderEvent, eventually, isolated};

fn counter(handled: &Arc<AtomicU64>) -> FnHandler {
    let handled = Arc::clone(handled);
    FnHandler::new("count", move |_ev: Envelope<OrderEvent>, _ctx: Context| {
        handled.fetch_add(1, Ordering::SeqCst);
        async {}
    })
}

async fn check_repeat_is_absorbed(url: &str) {
    let handled = Arc::new(AtomicU64::new(0));
    let bus = isolated()
        .store(url)
        .handler(counter(&handled))
        .build()
        .await
        .unwrap();
    let first = bus
        .publish(OrderEvent::Placed { id: 1, cents: 100 })
        .idempotency_key("order-1-placed")
        .await
        .unwrap();
    let again = bus
        .publish(OrderEvent::Placed { id: 1, cents: 100 })
        .idempotency_key("order-1-placed")
        .await
        .unwrap();
    let other = bus
        .publish(OrderEvent::Placed { id: 2, cents: 100 })
        .idempotency_key("order-2-placed")
        .await
        .unwrap();
    assert_eq!(
        (again.id(), again.seq()),
        (first.id(), first.seq()),
        "{url}"
    );
    assert_ne!(other.seq(), first.seq());
    let stored = bus.history().fetch().await.unwrap();
    assert_eq!(stored.len(), 2, "{url}: the repeat stored nothing");
    eventually("two handlings", Duration::from_secs(5), || {
        handled.load(Ordering::SeqCst) == 2
    })
    .await;
    bus.shutdown().await.unwrap();
    assert_eq!(
        handled.load(Ordering::SeqCst),
        2,
        "{url}: the repeat was not delivered"
    );
}

#[tokio::test]
async fn a_repeated_key_stores_one_event_on_memory() {
    check_repeat_is_absorbed("memory://").await;
}

#[tokio::test]
async fn a_repeated_key_stores_one_event_on_sqlite_even_after_a_restart() {
    let dir = std::env::temp_dir().join(format!("eventbus-idem-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("events.db").display());
    check_repeat_is_absorbed(&url).await;

    let bus = isolated().store(&url).build().await.unwrap();
    let after_restart = bus
        .publish(OrderEvent::Placed { id: 1, cents: 100 })
        .idempotency_key("order-1-placed")
        .await
        .unwrap();
    assert_eq!(after_restart.seq(), 1);
    assert_eq!(bus.history().fetch().await.unwrap().len(), 2);
    bus.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

async fn check_window_ends(url: &str) {
    let bus = isolated().store(url).build().await.unwrap();
    let first = bus
        .publish(OrderEvent::Shipped { id: 1 })
        .idempotency_key("k")
        .await
        .unwrap();
    // Let the 1 ms window pass: real time has to go by here.
    std::thread::sleep(Duration::from_millis(5));
    let later = bus
        .publish(OrderEvent::Shipped { id: 1 })
        .idempotency_key("k")
        .await
        .unwrap();
    assert_ne!(
        later.id(),
        first.id(),
        "{url}: outside the window it is a new event"
    );
    assert_eq!(bus.history().fetch().await.unwrap().len(), 2);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_window_is_configurable_and_ends() {
    check_window_ends("memory://?idempotency_window=1ms").await;
    let dir =
        std::env::temp_dir().join(format!("eventbus-idem-w-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    check_window_ends(&format!(
        "sqlite://{}?idempotency_window=1ms",
        dir.join("events.db").display()
    ))
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let bad = isolated()
        .store("memory://?idempotency_window=soon")
        .build()
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("idempotency_window"), "{bad}");
}
