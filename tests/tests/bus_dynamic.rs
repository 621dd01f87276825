//! The untyped side of the bus, next to the typed one: JSON published on a
//! topic chosen at run time, events imported with their own ids, raw live
//! subscriptions, and reading data without a type. Routed like any event,
//! on memory and on SQLite.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::{Error, Start};
use futures_util::StreamExt;
use tests::{OrderEvent, eventually, isolated};

type Got = Arc<Mutex<Vec<OrderEvent>>>;

fn typed_handler(got: &Got) -> FnHandler {
    let got = Arc::clone(got);
    FnHandler::new("typed", move |ev: Envelope<OrderEvent>, _ctx: Context| {
        got.lock().unwrap().push((*ev).clone());
        async {}
    })
    .start(Start::Earliest)
}

async fn next(sub: &mut RawSubscription) -> RawEnvelope {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("an event within 5 s")
        .expect("the subscription is open")
        .expect("no gap")
}

async fn json_reaches_typed_handlers_typed_and_raw_subscriptions(bus: Bus, got: Got) {
    let mut raw = bus.subscribe_raw("order.>").unwrap();
    let mut everything = bus.subscribe_raw(">").unwrap();
    let mut typed = bus.subscribe::<OrderEvent>("order.shipped").unwrap();

    let topic = ["order", "shipped"].join(".");
    let stored = bus
        .publish_json(topic, &serde_json::json!({ "id": 7 }))
        .subject("order-7")
        .correlation_id("req-1")
        .header("tenant", "acme")
        .unwrap()
        .await
        .unwrap();
    assert_eq!(stored.topic(), "order.shipped");
    assert_eq!(stored.subject(), Some("order-7"));
    assert_eq!(stored.event_name(), "");

    let seen = next(&mut raw).await;
    assert_eq!(seen.id(), stored.id());
    assert_eq!(seen.correlation_id(), Some("req-1"));
    assert_eq!(seen.header("tenant"), Some("acme"));
    assert_eq!(seen.data_value().unwrap(), serde_json::json!({ "id": 7 }));
    let typed_seen = tokio::time::timeout(Duration::from_secs(5), typed.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(*typed_seen, OrderEvent::Shipped { id: 7 });
    eventually(
        "the typed handler decoded it",
        Duration::from_secs(5),
        || got.lock().unwrap().as_slice() == [OrderEvent::Shipped { id: 7 }],
    )
    .await;

    // A topic no type has: stored, and seen by the patterns that match it.
    let other = bus
        .publish_json("sensor.kitchen", &serde_json::json!({ "celsius": 21.5 }))
        .await
        .unwrap();
    assert_eq!(next(&mut everything).await.id(), stored.id());
    let sensor = next(&mut everything).await;
    assert_eq!(sensor.id(), other.id());
    #[derive(serde::Deserialize)]
    struct Reading {
        celsius: f64,
    }
    assert_eq!(sensor.data::<Reading>().unwrap().celsius, 21.5);
    let history = bus.history().topic("sensor.*").fetch().await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].id(), other.id());

    // A typed event reads as plain JSON too.
    let typed_stored = bus.publish(OrderEvent::Shipped { id: 8 }).await.unwrap();
    assert_eq!(
        next(&mut raw).await.data_value().unwrap(),
        serde_json::json!({ "id": 8 })
    );
    assert_eq!(typed_stored.topic(), "order.shipped");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn json_on_a_run_time_topic_is_routed_on_memory() {
    let got = Got::default();
    let bus = isolated()
        .handler(typed_handler(&got))
        .build()
        .await
        .unwrap();
    json_reaches_typed_handlers_typed_and_raw_subscriptions(bus, got).await;
}

#[tokio::test]
async fn json_on_a_run_time_topic_is_routed_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    let got = Got::default();
    let bus = isolated()
        .store(url)
        .handler(typed_handler(&got))
        .build()
        .await
        .unwrap();
    json_reaches_typed_handlers_typed_and_raw_subscriptions(bus, got).await;
}

#[tokio::test]
async fn bad_topics_and_data_fail_the_publish_naming_them() {
    let bus = isolated().build().await.unwrap();
    let err = bus
        .publish_json("order..placed", &serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTopic(_)), "{err}");
    assert!(err.to_string().contains("order..placed"), "{err}");

    // serde_json refuses maps whose keys are not strings.
    let data = std::collections::BTreeMap::from([((1, 2), "x")]);
    let err = bus.publish_json("order.placed", &data).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("order.placed"), "{err}");
    // Nor data that would read back as something else.
    let data = serde_json::json!({ "$serde_json::private::RawValue": 6 });
    let err = bus.publish_json("order.placed", &data).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(bus.history().fetch().await.unwrap().is_empty());
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn json_a_typed_handler_cannot_decode_is_a_dead_letter() {
    let got = Got::default();
    let bus = isolated()
        .handler(typed_handler(&got))
        .build()
        .await
        .unwrap();
    bus.publish_json("order.shipped", &serde_json::json!({ "id": "seven" }))
        .await
        .unwrap();
    let mut dead = Vec::new();
    for _ in 0..500 {
        dead = bus.dead_letters().list(Default::default()).await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].error.contains("decode"), "{}", dead[0].error);
    assert!(got.lock().unwrap().is_empty());
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_imported_event_keeps_its_id_and_is_routed_once() {
    let source = isolated().build().await.unwrap();
    let original = source
        .publish(OrderEvent::Placed { id: 1, cents: 250 })
        .correlation_id("req-9")
        .await
        .unwrap();
    source.shutdown().await.unwrap();

    let got = Got::default();
    let bus = isolated()
        .handler(typed_handler(&got))
        .build()
        .await
        .unwrap();
    let mut raw = bus.subscribe_raw("order.*").unwrap();
    let imported = bus.import(&original).await.unwrap();
    assert_eq!(imported.id(), original.id());
    assert_eq!(imported.time(), original.time());
    assert_eq!(imported.correlation_id(), Some("req-9"));
    assert_eq!(next(&mut raw).await.id(), original.id());
    eventually("the typed handler got it", Duration::from_secs(5), || {
        got.lock().unwrap().len() == 1
    })
    .await;

    // Again: nothing is added and nothing routed.
    let again = bus.import(&original).await.unwrap();
    assert_eq!(again.seq(), imported.seq());
    assert_eq!(bus.history().fetch().await.unwrap().len(), 1);
    let marker = bus.publish(OrderEvent::Shipped { id: 2 }).await.unwrap();
    assert_eq!(
        next(&mut raw).await.id(),
        marker.id(),
        "the repeat was not routed"
    );
    bus.shutdown().await.unwrap();
    assert_eq!(
        got.lock().unwrap().as_slice(),
        [
            OrderEvent::Placed { id: 1, cents: 250 },
            OrderEvent::Shipped { id: 2 }
        ]
    );
}

#[tokio::test]
async fn a_dropped_raw_subscription_unsubscribes_and_bad_patterns_are_refused() {
    let bus = isolated().build().await.unwrap();
    let sub = bus.subscribe_raw("a.*").unwrap();
    assert_eq!(sub.pattern(), "a.*");
    assert_eq!(bus.subscription_count(), 1);
    drop(sub);
    assert_eq!(bus.subscription_count(), 0);
    let err = bus.subscribe_raw("a.>.b").unwrap_err();
    assert!(matches!(err, Error::InvalidTopic(_)), "{err}");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_handler_publishes_json_follow_ups_in_its_flow() {
    let bus = isolated()
        .handler(FnHandler::new(
            "forwarder",
            |ev: Envelope<OrderEvent>, ctx: Context| async move {
                let OrderEvent::Shipped { id } = *ev else {
                    return Ok(());
                };
                ctx.publish_json(format!("audit.order{id}"), &serde_json::json!({ "id": id }))
                    .await
                    .map(drop)
            },
        ))
        .build()
        .await
        .unwrap();
    let mut audit = bus.subscribe_raw("audit.>").unwrap();
    let shipped = bus
        .publish(OrderEvent::Shipped { id: 4 })
        .correlation_id("req-4")
        .await
        .unwrap();
    let follow_up = next(&mut audit).await;
    assert_eq!(follow_up.topic(), "audit.order4");
    assert_eq!(follow_up.correlation_id(), Some("req-4"));
    assert_eq!(
        follow_up.causation_id(),
        Some(shipped.id().to_string().as_str())
    );
    assert_eq!(follow_up.data_value().unwrap()["id"], 4);
    bus.shutdown().await.unwrap();
}
