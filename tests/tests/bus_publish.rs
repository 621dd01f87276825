//! Publishing: metadata, routing, fan-out, follow-ups through `Context`,
//! blocking publish and shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::testing::TestBus;
use eventbus::{Error, RawEnvelope, assert_published};
use tests::{EntityCreated, OrderEvent, eventually, isolated};

type Seen<T> = Arc<Mutex<Vec<T>>>;

fn collector<E: Event>(name: &str, seen: &Seen<Envelope<E>>) -> FnHandler {
    let seen = Arc::clone(seen);
    FnHandler::new(name.to_owned(), move |ev: Envelope<E>, _ctx: Context| {
        let seen = Arc::clone(&seen);
        async move { seen.lock().unwrap().push(ev) }
    })
}

fn len<T>(seen: &Seen<T>) -> usize {
    seen.lock().unwrap().len()
}

#[tokio::test]
async fn publish_reaches_the_handler_with_all_metadata() {
    let orders = FnHandler::new("orders", |_: Envelope<OrderEvent>, _: Context| async {});
    let bus = TestBus::builder()
        .closure(orders)
        .configure(|b| b.source("svc"))
        .build()
        .await
        .unwrap();
    let sent = bus
        .publish(OrderEvent::Placed { id: 7, cents: 1250 })
        .correlation_id("req-1")
        .causation_id("cause-1")
        .idempotency_key("key-1")
        .header("tenant", "acme")
        .unwrap()
        .await
        .unwrap();
    let other = bus
        .publish(OrderEvent::Shipped { id: 7 })
        .source("warehouse")
        .await
        .unwrap();
    bus.settled().await.unwrap();

    let seen = bus.handled_by("orders");
    let ev = seen[0].decode::<OrderEvent>().unwrap();
    assert_eq!(*ev.event(), OrderEvent::Placed { id: 7, cents: 1250 });
    assert_eq!(ev.id(), sent.id());
    let uuid = ev.id().as_uuid().expect("a published event's id is a UUID");
    assert_eq!(uuid.get_version_num(), 7, "ids are UUID v7");
    assert_eq!(ev.topic(), "order.placed");
    assert_eq!(ev.source(), "svc");
    assert_eq!(ev.correlation_id(), Some("req-1"));
    assert_eq!(ev.causation_id(), Some("cause-1"));
    assert_eq!(ev.idempotency_key(), Some("key-1"));
    assert_eq!(ev.header("tenant"), Some("acme"));
    assert_eq!(ev.raw().event_name(), "OrderEvent");
    assert_eq!(ev.raw().event_version(), 1);
    assert!(!ev.is_replay());
    assert_eq!(seen[1].source(), "warehouse");
    assert!(other.seq() > sent.seq(), "seqs increase in publish order");
    assert!(
        other.id().as_uuid() > sent.id().as_uuid(),
        "v7 ids sort by time"
    );
}

#[tokio::test]
async fn fan_out_shares_one_event_without_cloning() {
    let a: Seen<Envelope<EntityCreated>> = Seen::default();
    let b: Seen<Envelope<EntityCreated>> = Seen::default();
    let bus = isolated()
        .handler(collector("a", &a))
        .handler(collector("b", &b))
        .build()
        .await
        .unwrap();
    bus.publish(EntityCreated {
        id: "e-1".into(),
        name: "one".into(),
    })
    .await
    .unwrap();
    eventually("both handlers", Duration::from_secs(5), || {
        len(&a) == 1 && len(&b) == 1
    })
    .await;
    bus.shutdown().await.unwrap();
    let (a, b) = (a.lock().unwrap(), b.lock().unwrap());
    assert!(Arc::ptr_eq(a[0].event_arc(), b[0].event_arc()));
}

#[tokio::test]
async fn handlers_only_see_their_pattern() {
    let noop =
        |name: &'static str| FnHandler::new(name, |_: Envelope<OrderEvent>, _: Context| async {});
    let bus = TestBus::builder()
        .closure(noop("placed").topic("order.placed"))
        .closure(noop("all").topic("order.>"))
        .build()
        .await
        .unwrap();
    bus.publish(OrderEvent::Placed { id: 1, cents: 1 })
        .await
        .unwrap();
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    bus.publish(OrderEvent::Cancelled {
        id: 1,
        reason: "x".into(),
    })
    .await
    .unwrap();
    bus.settled().await.unwrap();
    assert_eq!(bus.handled_by("all").len(), 3);
    let topics: Vec<String> = bus
        .handled_by("placed")
        .iter()
        .map(|e| e.topic().to_owned())
        .collect();
    assert_eq!(topics, ["order.placed"]);
}

#[tokio::test]
async fn context_publish_carries_correlation_and_causation() {
    let follow_up = FnHandler::new(
        "invoice",
        |ev: Envelope<OrderEvent>, ctx: Context| async move {
            if let OrderEvent::Placed { id, .. } = *ev {
                ctx.publish(EntityCreated {
                    id: format!("inv-{id}"),
                    name: "invoice".into(),
                })
                .await?;
            }
            Ok::<_, Error>(())
        },
    );
    let bus = TestBus::builder().closure(follow_up).build().await.unwrap();
    let with = bus
        .publish(OrderEvent::Placed { id: 1, cents: 5 })
        .correlation_id("req-9")
        .await
        .unwrap();
    let without = bus
        .publish(OrderEvent::Placed { id: 2, cents: 5 })
        .await
        .unwrap();
    bus.settled().await.unwrap();

    let first = assert_published!(bus, EntityCreated { id, .. } if id == "inv-1");
    assert_eq!(first.correlation_id(), Some("req-9"));
    assert_eq!(first.causation_id(), Some(with.id().to_string().as_str()));
    // Without a correlation id, the causing event's id starts the chain.
    let second = assert_published!(bus, EntityCreated { id, .. } if id == "inv-2");
    let root = without.id().to_string();
    assert_eq!(second.correlation_id(), Some(root.as_str()));
    assert_eq!(second.causation_id(), Some(root.as_str()));
    // Each names the handler that published it; the causing events,
    // published by the bus itself, name none.
    for follow_up in [&first, &second] {
        assert_eq!(
            follow_up.header(eventbus::envelope::HANDLER_HEADER),
            Some("invoice")
        );
    }
    assert_eq!(with.header(eventbus::envelope::HANDLER_HEADER), None);
}

#[tokio::test]
async fn a_bad_header_name_is_refused_where_it_is_set() {
    let bus = isolated().build().await.unwrap();
    let err = bus
        .publish(OrderEvent::Shipped { id: 1 })
        .header("X-Tenant", "acme")
        .unwrap_err();
    assert!(matches!(err, Error::InvalidHeader(_)), "{err}");
    assert!(err.to_string().contains("X-Tenant"), "{err}");
    let reserved = bus
        .publish(OrderEvent::Shipped { id: 1 })
        .header("seq", "1")
        .unwrap_err();
    assert!(reserved.to_string().contains("reserved"), "{reserved}");
    assert!(bus.history().fetch().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_publish_can_say_when_the_event_happened() {
    let bus = isolated().build().await.unwrap();
    let then = chrono::DateTime::parse_from_rfc3339("2024-02-29T12:00:00.5Z")
        .unwrap()
        .to_utc();
    let sent = bus
        .publish(OrderEvent::Shipped { id: 1 })
        .time(then)
        .await
        .unwrap();
    assert_eq!(sent.time(), then);
    let stored = bus.history().fetch().await.unwrap();
    assert_eq!(stored[0].time(), then);
    let json = bus
        .publish_json("sensor.kitchen", &21.5)
        .time(then)
        .await
        .unwrap();
    assert_eq!(json.time(), then);
}

#[tokio::test]
async fn publish_after_shutdown_is_refused() {
    let bus = isolated().build().await.unwrap();
    bus.shutdown().await.unwrap();
    let err = bus
        .publish(OrderEvent::Shipped { id: 1 })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ShutDown), "{err}");
}

#[tokio::test]
async fn shutdown_drains_queued_handlings() {
    let seen: Seen<u64> = Seen::default();
    let slow = {
        let seen = Arc::clone(&seen);
        FnHandler::new("slow", move |ev: Envelope<OrderEvent>, _ctx: Context| {
            let seen = Arc::clone(&seen);
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                seen.lock().unwrap().push(ev.seq());
            }
        })
    };
    let bus = isolated().handler(slow).build().await.unwrap();
    for id in 0..20 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    bus.shutdown().await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.len(),
        20,
        "every queued event is handled before shutdown returns"
    );
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "concurrency 1 keeps order"
    );
}

#[test]
fn blocking_publish_works_outside_async_and_refuses_inside() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bus = rt.block_on(isolated().build()).unwrap();
    let sent: RawEnvelope = std::thread::scope(|s| {
        s.spawn(|| {
            bus.publish(OrderEvent::Shipped { id: 3 })
                .correlation_id("sync")
                .blocking()
        })
        .join()
        .unwrap()
    })
    .unwrap();
    assert_eq!(sent.correlation_id(), Some("sync"));
    let inside = rt.block_on(async { bus.publish(OrderEvent::Shipped { id: 4 }).blocking() });
    assert!(matches!(inside, Err(Error::BlockingInsideRuntime)));
    let stored = rt.block_on(bus.history().fetch()).unwrap();
    assert_eq!(stored.len(), 1);
    rt.block_on(bus.shutdown()).unwrap();
}
