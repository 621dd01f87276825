//! Event schemas that evolve: an event is stored with the version of its
//! type that wrote it, and read back as the current version through the
//! type's upcasters, everywhere events are read; a newer version is
//! refused, never misread.
//!
//! `InvoiceSent` went through three shapes: version 1 had `amount` and one
//! `customer` name; version 2 renamed `amount` to `cents` and added a
//! `currency` (raw upcaster, over the JSON); version 3 split `customer`
//! into first and last names (typed upcaster).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::store::DeadLetterQuery;
use eventbus::{CodecError, Start};
use serde_json::{Value, json};
use tests::{OrderEvent, eventually, isolated};

#[derive(Event, Clone, Debug, PartialEq)]
#[event(
    topic = "invoice.sent",
    version = 3,
    upcast(from = 1, raw = amount_to_cents_in_euros),
    upcast(from = 2, with = split_customer)
)]
struct InvoiceSent {
    id: u64,
    cents: u64,
    currency: String,
    first_name: String,
    last_name: String,
}

fn amount_to_cents_in_euros(mut data: Value) -> Value {
    if let Some(object) = data.as_object_mut() {
        if let Some(amount) = object.remove("amount") {
            object.insert("cents".into(), amount);
        }
        object.entry("currency").or_insert_with(|| "EUR".into());
    }
    data
}

#[derive(serde::Deserialize)]
struct InvoiceV2 {
    id: u64,
    cents: u64,
    currency: String,
    customer: String,
}

fn split_customer(old: InvoiceV2) -> InvoiceSent {
    let (first, last) = old.customer.split_once(' ').unwrap_or((&old.customer, ""));
    InvoiceSent {
        id: old.id,
        cents: old.cents,
        currency: old.currency,
        first_name: first.to_owned(),
        last_name: last.to_owned(),
    }
}

fn ada(id: u64) -> InvoiceSent {
    InvoiceSent {
        id,
        cents: 1250,
        currency: "EUR".into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
    }
}

/// Events as older builds stored them, written through the untyped API
/// with their `eventversion`.
async fn store_every_version(bus: &Bus) {
    bus.publish_json(
        "invoice.sent",
        &json!({ "id": 1, "amount": 1250, "customer": "Ada Lovelace" }),
    )
    .event_version(1)
    .await
    .unwrap();
    bus.publish_json(
        "invoice.sent",
        &json!({ "id": 2, "cents": 1250, "currency": "EUR", "customer": "Ada Lovelace" }),
    )
    .event_version(2)
    .await
    .unwrap();
    bus.publish(ada(3)).await.unwrap();
}

fn recording(seen: &Arc<Mutex<Vec<(InvoiceSent, u32)>>>) -> FnHandler {
    let seen = Arc::clone(seen);
    FnHandler::new("invoices", move |ev: Envelope<InvoiceSent>, _: Context| {
        seen.lock()
            .unwrap()
            .push(((*ev).clone(), ev.stored_version()));
        async {}
    })
    .start(Start::Earliest)
}

async fn every_reader_sees_the_current_version(url: &str) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let bus = isolated()
        .store(url)
        .handler(recording(&seen))
        .build()
        .await
        .unwrap();
    store_every_version(&bus).await;
    let expected = vec![(ada(1), 1), (ada(2), 2), (ada(3), 3)];

    eventually("the handler saw all three", Duration::from_secs(10), || {
        seen.lock().unwrap().len() == 3
    })
    .await;
    assert_eq!(*seen.lock().unwrap(), expected, "handler");

    let history: Vec<(InvoiceSent, u32)> = bus
        .history()
        .fetch_as::<InvoiceSent>()
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            (e.event().clone(), e.stored_version())
        })
        .collect();
    assert_eq!(history, expected, "history");

    seen.lock().unwrap().clear();
    let report = bus.replay().to_handler("invoices").run().await.unwrap();
    assert_eq!(report.failed, 0);
    assert_eq!(*seen.lock().unwrap(), expected, "replay");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_reader_sees_the_current_version_on_memory() {
    every_reader_sees_the_current_version("memory://").await;
}

#[tokio::test]
async fn every_reader_sees_the_current_version_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    every_reader_sees_the_current_version(&url).await;
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_a_consumer_sees_the_current_version() {
    let scope = tests::NatsScope::new("versions");
    every_reader_sees_the_current_version(&scope.url("")).await;
}

#[tokio::test]
async fn live_subscriptions_upcast_too() {
    let bus = isolated().build().await.unwrap();
    let mut live = bus.subscribe::<InvoiceSent>("invoice.sent").unwrap();
    store_every_version(&bus).await;
    for id in 1..=3 {
        let ev = tokio::time::timeout(Duration::from_secs(5), live.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            (ev.event().clone(), ev.stored_version()),
            (ada(id), id as u32)
        );
    }
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_event_from_a_newer_version_is_a_dead_letter_naming_both_versions() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let bus = isolated()
        .default_retry(0)
        .handler(recording(&seen))
        .build()
        .await
        .unwrap();
    bus.publish_json("invoice.sent", &json!({ "id": 4, "total": { "cents": 1 } }))
        .event_version(4)
        .await
        .unwrap();
    bus.publish(ada(5)).await.unwrap();
    eventually("the dead letter", Duration::from_secs(5), || {
        bus.stats()[0].dead_lettered == 1
    })
    .await;
    eventually("the current event", Duration::from_secs(5), || {
        seen.lock().unwrap().len() == 1
    })
    .await;
    assert_eq!(seen.lock().unwrap()[0], (ada(5), 3), "only the v3 event");
    let dead = bus
        .dead_letters()
        .list(DeadLetterQuery::all())
        .await
        .unwrap();
    assert!(
        dead[0]
            .error
            .contains("stored as version 4, newer than version 3"),
        "{}",
        dead[0].error
    );

    let history = bus.history().fetch_as::<InvoiceSent>().await.unwrap();
    let (seq, err) = history[0].as_ref().unwrap_err();
    assert_eq!(*seq, 1);
    assert!(
        matches!(
            err,
            CodecError::UnknownVersion {
                stored: 4,
                current: 3,
                ..
            }
        ),
        "{err}"
    );
    let zero = bus
        .publish_json("invoice.sent", &1)
        .event_version(0)
        .await
        .unwrap_err();
    assert!(zero.to_string().contains("versions start at 1"), "{zero}");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn old_data_that_does_not_fit_its_version_says_which_version_it_was_read_as() {
    let bus = isolated().build().await.unwrap();
    bus.publish_json(
        "invoice.sent",
        &json!({ "id": 1, "cents": 5, "currency": "EUR" }),
    )
    .event_version(2)
    .await
    .unwrap();
    let history = bus.history().fetch_as::<InvoiceSent>().await.unwrap();
    let (_, err) = history[0].as_ref().unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("as version 2") && text.contains("customer"),
        "{text}"
    );
    bus.shutdown().await.unwrap();
}

#[derive(Event, Clone, Debug, PartialEq)]
#[event(namespace = "parcel", version = 2, upcast(from = 1, raw = grams_to_kilos))]
enum ParcelEvent {
    Weighed { id: u64, kilos: f64 },
    Sent { id: u64 },
}

fn grams_to_kilos(topic: &str, mut data: Value) -> Value {
    if topic == "parcel.weighed"
        && let Some(grams) = data.get("grams").and_then(Value::as_f64)
    {
        data["kilos"] = json!(grams / 1000.0);
    }
    data
}

#[tokio::test]
async fn an_enum_raw_upcaster_is_told_the_topic() {
    let bus = isolated().build().await.unwrap();
    bus.publish_json("parcel.weighed", &json!({ "id": 1, "grams": 1500 }))
        .await
        .unwrap();
    bus.publish_json("parcel.sent", &json!({ "id": 1 }))
        .await
        .unwrap();
    let events: Vec<ParcelEvent> = bus
        .history()
        .fetch_as::<ParcelEvent>()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.unwrap().event().clone())
        .collect();
    assert_eq!(
        events,
        [
            ParcelEvent::Weighed { id: 1, kilos: 1.5 },
            ParcelEvent::Sent { id: 1 }
        ]
    );
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_current_version_still_reads_without_upcasting() {
    let bus = isolated().build().await.unwrap();
    let sent = bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    assert_eq!(sent.event_version(), 1);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn migrate_rewrites_old_events_to_the_current_version_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    let bus = isolated().store(&url).build().await.unwrap();
    store_every_version(&bus).await;
    bus.publish_json("invoice.sent", &json!({ "id": 9 }))
        .event_version(7)
        .await
        .unwrap();
    bus.publish_json("invoice.sent", &json!({ "id": 10, "amount": "lots" }))
        .event_version(1)
        .await
        .unwrap();
    bus.publish_json("audit.note", &"no type reads this")
        .await
        .unwrap();
    let first = bus.history().limit(1).fetch().await.unwrap().remove(0);
    let before: Vec<u32> = bus
        .history()
        .fetch()
        .await
        .unwrap()
        .iter()
        .map(RawEnvelope::event_version)
        .collect();
    assert_eq!(before, [1, 2, 3, 7, 1, 1]);

    let dry = eventbus::migrate(&bus, ">").dry_run().run().await.unwrap();
    assert_eq!(
        (
            dry.read,
            dry.upgraded,
            dry.current,
            dry.newer,
            dry.unknown_type
        ),
        (6, 2, 1, 1, 1),
        "{dry:?}"
    );
    assert_eq!(dry.failed.len(), 1, "{dry:?}");
    assert_eq!(dry.failed[0].0, 5);
    assert!(dry.failed[0].1.contains("as version 2"), "{dry:?}");
    let versions = |bus: &Bus| {
        let bus = bus.clone();
        async move {
            bus.history()
                .fetch()
                .await
                .unwrap()
                .iter()
                .map(RawEnvelope::event_version)
                .collect::<Vec<u32>>()
        }
    };
    assert_eq!(versions(&bus).await, before, "a dry run writes nothing");

    let mut progress = Vec::new();
    let report = eventbus::migrate(&bus, "invoice.>")
        .batch_size(1)
        .on_progress(|r| progress.push(r.upgraded))
        .run()
        .await
        .unwrap();
    assert_eq!((report.read, report.upgraded), (5, 2));
    assert_eq!(progress, [1, 2]);
    assert_eq!(versions(&bus).await, [3, 3, 3, 7, 1, 1]);
    let stored = bus.history().fetch().await.unwrap();
    assert_eq!(
        stored[0].data_value().unwrap(),
        json!({ "id": 1, "cents": 1250, "currency": "EUR", "first_name": "Ada", "last_name": "Lovelace" })
    );
    assert_eq!(stored[0].id(), first.id(), "the same event, with its id");
    let again = eventbus::migrate(&bus, "invoice.>").run().await.unwrap();
    assert_eq!(
        (again.upgraded, again.current),
        (0, 3),
        "nothing left to do"
    );
    let typed = bus.history().fetch_as::<InvoiceSent>().await.unwrap();
    assert_eq!(typed[0].as_ref().unwrap().event(), &ada(1));
    bus.shutdown().await.unwrap();

    let memory = isolated().build().await.unwrap();
    let err = eventbus::migrate(&memory, ">").run().await.unwrap_err();
    assert!(err.to_string().contains("migrations"), "{err}");
    memory.shutdown().await.unwrap();
}
