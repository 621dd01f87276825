//! On `memory://` a full handler feed either holds publishers back (the
//! default) or, with `LagPolicy::Skip`, skips events for that handler and
//! counts them; memory stays bounded either way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use eventbus::LagPolicy;
use eventbus::prelude::*;
use tests::{OrderEvent, eventually, isolated};
use tokio::sync::Semaphore;

/// A handler that counts the events it took and then waits for a permit
/// per event.
fn gated(gate: &Arc<Semaphore>, taken: &Arc<AtomicU32>) -> FnHandler {
    let (gate, taken) = (Arc::clone(gate), Arc::clone(taken));
    FnHandler::new("gated", move |_ev: Envelope<OrderEvent>, _ctx: Context| {
        taken.fetch_add(1, Ordering::SeqCst);
        let gate = Arc::clone(&gate);
        async move { gate.acquire().await.unwrap().forget() }
    })
}

fn stats(bus: &Bus) -> eventbus::HandlerStats {
    bus.stats().into_iter().find(|s| s.name == "gated").unwrap()
}

#[tokio::test]
async fn by_default_a_full_feed_holds_the_publisher_back() {
    let (gate, taken) = (Arc::new(Semaphore::new(0)), Arc::new(AtomicU32::new(0)));
    let bus = isolated()
        .feed_capacity(2)
        .handler(gated(&gate, &taken))
        .build()
        .await
        .unwrap();
    // One event in the handler, then two in the feed.
    bus.publish(OrderEvent::Shipped { id: 0 }).await.unwrap();
    eventually("the handler holds one", Duration::from_secs(5), || {
        taken.load(Ordering::SeqCst) == 1
    })
    .await;
    for id in 1..3 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    let publish = bus.publish(OrderEvent::Shipped { id: 3 });
    let held = tokio::time::timeout(Duration::from_millis(100), publish.into_future()).await;
    assert!(
        held.is_err(),
        "the fourth publish waits while the handler is stuck"
    );
    gate.add_permits(100);
    bus.publish(OrderEvent::Shipped { id: 4 }).await.unwrap();
    eventually("all handled", Duration::from_secs(5), || {
        stats(&bus).handled == 4
    })
    .await;
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_skip_a_lagging_handler_misses_events_and_counts_them() {
    let (gate, taken) = (Arc::new(Semaphore::new(0)), Arc::new(AtomicU32::new(0)));
    let bus = isolated()
        .feed_capacity(2)
        .lag_policy(LagPolicy::Skip)
        .handler(gated(&gate, &taken))
        .build()
        .await
        .unwrap();
    bus.publish(OrderEvent::Shipped { id: 0 }).await.unwrap();
    // Wait until the handler holds the first event, so the feed's two
    // places are all that is left.
    eventually("the handler holds one", Duration::from_secs(5), || {
        taken.load(Ordering::SeqCst) == 1
    })
    .await;
    tokio::time::timeout(Duration::from_secs(5), async {
        for id in 1..10 {
            bus.publish(OrderEvent::Shipped { id }).await.unwrap();
        }
    })
    .await
    .expect("publishers never wait with LagPolicy::Skip");
    gate.add_permits(100);
    bus.shutdown().await.unwrap();
    // One in the handler, two in the feed, the other seven skipped.
    let s = stats(&bus);
    assert_eq!((s.handled, s.missed), (3, 7), "{s:?}");
    assert_eq!(
        bus.history().fetch().await.unwrap().len(),
        10,
        "skipped events stay in history"
    );
}
