//! The CloudEvents 1.0 structured JSON form of envelopes, checked against
//! the real `cloudevents-sdk` crate: what the bus writes, the SDK reads with
//! every attribute and extension in place; what the SDK writes, the bus reads
//! and decodes into typed events; a trip through the SDK changes nothing; and
//! bad input gets an error that names the problem, never a panic.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cloudevents::event::{ExtensionValue, SpecVersion};
use cloudevents::{AttributesReader, Data, EventBuilder, EventBuilderV10};
use eventbus::prelude::*;
use eventbus::{CodecError, Draft, RawEnvelope};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tests::{EntityCreated, OrderEvent, isolated};
use uuid::Uuid;

/// Publishes `OrderEvent::Placed { id: 7, cents: 1250 }` on a fresh bus with
/// every piece of metadata set, returning the stored envelope.
async fn published_order() -> RawEnvelope {
    publish_on_fresh_bus(OrderEvent::Placed { id: 7, cents: 1250 }).await
}

async fn publish_on_fresh_bus(event: OrderEvent) -> RawEnvelope {
    let bus = isolated().source("svc").build().await.unwrap();
    let sent = bus
        .publish(event)
        .correlation_id("req-456")
        .causation_id("cause-1")
        .idempotency_key("key-1")
        .header("tenant", "acme")
        .unwrap()
        .await
        .unwrap();
    bus.shutdown().await.unwrap();
    sent
}

fn sdk_event(json: &str) -> cloudevents::Event {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("the SDK rejects {json}: {e}"))
}

fn extensions(event: &cloudevents::Event) -> BTreeMap<String, ExtensionValue> {
    event
        .iter_extensions()
        .map(|(name, value)| (name.to_owned(), value.clone()))
        .collect()
}

fn json_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Every piece of an envelope that the CloudEvents form carries.
fn assert_same_envelope(actual: &RawEnvelope, expected: &RawEnvelope) {
    assert_eq!(actual.id(), expected.id());
    assert_eq!(actual.topic(), expected.topic());
    assert_eq!(actual.time(), expected.time());
    assert_eq!(actual.source(), expected.source());
    assert_eq!(actual.correlation_id(), expected.correlation_id());
    assert_eq!(actual.causation_id(), expected.causation_id());
    assert_eq!(actual.idempotency_key(), expected.idempotency_key());
    assert_eq!(actual.headers(), expected.headers());
    assert_eq!(actual.seq(), expected.seq());
    assert_eq!(actual.event_name(), expected.event_name());
    assert_eq!(actual.event_version(), expected.event_version());
    assert_eq!(
        json_value(actual.data_json().unwrap().get()),
        json_value(expected.data_json().unwrap().get()),
    );
}

// (a) What the bus writes, the SDK reads.

#[tokio::test]
async fn published_envelope_reads_as_an_sdk_event_with_every_attribute() {
    let sent = published_order().await;
    let ce = sdk_event(&sent.to_cloudevent_json().unwrap());

    assert_eq!(ce.specversion(), SpecVersion::V10);
    assert_eq!(ce.id(), sent.id().to_string());
    assert_eq!(ce.source(), "svc");
    assert_eq!(ce.ty(), "order.placed");
    assert_eq!(ce.time(), Some(&sent.time()));
    assert_eq!(ce.datacontenttype(), Some("application/json"));
    assert_eq!(ce.subject(), None);
    assert_eq!(ce.dataschema(), None);
    assert_eq!(
        ce.data(),
        Some(&Data::Json(json!({"id": 7, "cents": 1250})))
    );

    let seq = sent.seq();
    assert!(seq > 0, "the store assigns a seq, got {seq}");
    let expected: BTreeMap<String, ExtensionValue> = [
        ("correlationid", ExtensionValue::from("req-456")),
        ("causationid", ExtensionValue::from("cause-1")),
        ("idempotencykey", ExtensionValue::from("key-1")),
        // A string: CloudEvents integers are 32-bit, seqs are not.
        ("seq", ExtensionValue::from(seq.to_string())),
        ("eventname", ExtensionValue::from("OrderEvent")),
        ("eventversion", ExtensionValue::Integer(1)),
        ("tenant", ExtensionValue::from("acme")),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    assert_eq!(extensions(&ce), expected);
}

#[tokio::test]
async fn unset_metadata_is_omitted_not_written_as_empty() {
    let bus = isolated().source("svc").build().await.unwrap();
    let sent = bus.publish(OrderEvent::Shipped { id: 7 }).await.unwrap();
    bus.shutdown().await.unwrap();

    let ce = sdk_event(&sent.to_cloudevent_json().unwrap());
    let names: Vec<String> = extensions(&ce).into_keys().collect();
    assert_eq!(names, ["eventname", "eventversion", "seq"]);
    assert_eq!(ce.data(), Some(&Data::Json(json!({"id": 7}))));
}

#[tokio::test]
async fn attribute_names_and_values_follow_the_json_format() {
    let sent = published_order().await;
    let value = json_value(&sent.to_cloudevent_json().unwrap());
    let object = value
        .as_object()
        .expect("a structured event is a JSON object");

    assert_eq!(object["specversion"], "1.0");
    for (name, value) in object {
        if name == "data" {
            continue;
        }
        assert!(
            !name.is_empty()
                && name.len() <= 20
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "attribute name `{name}` is not 1-20 lower-case ASCII letters or digits"
        );
        assert!(!value.is_null(), "attribute `{name}` is written as null");
        assert!(
            value.is_string() || value.is_i64(),
            "attribute `{name}` is {value}, not a CloudEvents String or Integer"
        );
    }
    let time = object["time"].as_str().unwrap();
    assert_eq!(
        DateTime::parse_from_rfc3339(time).unwrap(),
        sent.time(),
        "time is RFC 3339 and exact"
    );
    assert!(time.ends_with('Z'), "time {time} is in UTC");
    assert!(
        object["data"].is_object(),
        "JSON data is stored as a JSON value, not a string"
    );
}

// (b) What the SDK writes, the bus reads.

#[test]
fn sdk_built_event_decodes_into_the_typed_event_with_its_metadata() {
    let id = Uuid::now_v7();
    let time = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap() + TimeDelta::milliseconds(123);
    let ce = EventBuilderV10::new()
        .id(id.to_string())
        .source("https://shop.example/orders")
        .ty("order.placed")
        .time(time)
        .data("application/json", json!({"id": 7, "cents": 1250}))
        .extension("correlationid", "req-9")
        .build()
        .unwrap();
    let json = serde_json::to_string(&ce).unwrap();

    let raw = RawEnvelope::from_cloudevent_json(json.as_bytes()).unwrap();
    let env = raw.decode::<OrderEvent>().unwrap();
    assert_eq!(*env, OrderEvent::Placed { id: 7, cents: 1250 });
    assert_eq!(env.id(), id);
    assert_eq!(env.topic(), "order.placed");
    assert_eq!(env.source(), "https://shop.example/orders");
    assert_eq!(env.time(), time);
    assert_eq!(env.correlation_id(), Some("req-9"));
    assert_eq!(env.causation_id(), None);
    assert_eq!(env.idempotency_key(), None);
    assert!(raw.headers().is_empty(), "headers: {:?}", raw.headers());
    assert_eq!(raw.event_version(), 1, "a missing eventversion means 1");
    assert!(!env.is_replay());

    let err = raw.decode::<EntityCreated>().unwrap_err();
    assert!(matches!(err, CodecError::UnknownTopic { .. }), "{err:?}");
    assert!(err.to_string().contains("`order.placed`"), "{err}");
}

#[test]
fn sdk_extensions_of_every_type_are_read() {
    let id = Uuid::now_v7();
    let mut ce = EventBuilderV10::new()
        .id(id.to_string())
        .source("/warehouse/3")
        .ty("order.cancelled.by_customer")
        .extension("seq", 42_i64)
        .extension("eventversion", 2_i64)
        .extension("eventname", "OrderEvent")
        .extension("causationid", "cause-7")
        .extension("idempotencykey", "cancel-7")
        .extension("urgent", true)
        .extension("priority", 5_i64)
        .extension("tenant", "acme")
        .build()
        .unwrap();
    // No datacontenttype: JSON data is implied.
    ce.set_data_unchecked(json!({"id": 7, "reason": "changed my mind \u{1f937}"}));
    assert_eq!(ce.datacontenttype(), None);
    let json = serde_json::to_string(&ce).unwrap();

    let before = Utc::now();
    let raw = RawEnvelope::from_cloudevent_json(json.as_bytes()).unwrap();
    let after = Utc::now();
    assert_eq!(raw.id(), id);
    assert!(
        before <= raw.time() && raw.time() <= after,
        "a missing time means now"
    );
    assert_eq!(raw.seq(), 42);
    assert_eq!(raw.event_version(), 2);
    assert_eq!(raw.event_name(), "OrderEvent");
    assert_eq!(raw.causation_id(), Some("cause-7"));
    assert_eq!(raw.idempotency_key(), Some("cancel-7"));
    let headers: Vec<(&str, &str)> = raw
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        headers,
        [("priority", "5"), ("tenant", "acme"), ("urgent", "true")],
        "non-string extensions become headers in their JSON text form"
    );
    assert_eq!(
        raw.data_value().unwrap(),
        json!({"id": 7, "reason": "changed my mind \u{1f937}"})
    );
    // Version 2 of `OrderEvent` is newer than this build's version 1: it
    // is refused, never misread.
    let err = raw.decode::<OrderEvent>().unwrap_err();
    assert!(
        matches!(
            err,
            eventbus::CodecError::UnknownVersion {
                stored: 2,
                current: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn sdk_event_keeps_its_attributes_through_our_form() {
    let id = Uuid::now_v7();
    let time = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap() + TimeDelta::nanoseconds(6);
    let original = EventBuilderV10::new()
        .id(id.to_string())
        .source("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66")
        .ty("entity.created")
        .time(time)
        .data(
            "application/json",
            json!({"id": "e-1", "name": "caf\u{e9} \"quoted\""}),
        )
        .extension("correlationid", "req-1")
        .extension("tenant", "acme")
        .build()
        .unwrap();

    let raw =
        RawEnvelope::from_cloudevent_json(serde_json::to_string(&original).unwrap().as_bytes())
            .unwrap();
    let again = sdk_event(&raw.to_cloudevent_json().unwrap());
    assert_eq!(again.id(), original.id());
    assert_eq!(again.source(), original.source());
    assert_eq!(again.ty(), original.ty());
    assert_eq!(again.time(), original.time());
    assert_eq!(again.datacontenttype(), original.datacontenttype());
    assert_eq!(again.data(), original.data());
    for name in ["correlationid", "tenant"] {
        assert_eq!(again.extension(name), original.extension(name), "{name}");
    }
    assert_eq!(
        *raw.decode::<EntityCreated>().unwrap(),
        EntityCreated {
            id: "e-1".into(),
            name: "caf\u{e9} \"quoted\"".into()
        }
    );
}

// (c) Ours -> SDK -> ours changes nothing.

#[tokio::test]
async fn round_trip_through_the_sdk_keeps_everything() {
    let events = [
        OrderEvent::Placed { id: 7, cents: 1250 },
        OrderEvent::Shipped { id: 7 },
        OrderEvent::Cancelled {
            id: 7,
            reason: "line\nbreak, \"quotes\" and \u{e9}".into(),
        },
    ];
    for event in events {
        let sent = publish_on_fresh_bus(event.clone()).await;
        let ours = sent.to_cloudevent_json().unwrap();
        let ce = sdk_event(&ours);
        let via_sdk = serde_json::to_string(&ce).unwrap();

        let back = RawEnvelope::from_cloudevent_json(via_sdk.as_bytes()).unwrap();
        assert_same_envelope(&back, &sent);
        assert_eq!(*back.decode::<OrderEvent>().unwrap(), event);

        let ours_again = back.to_cloudevent_json().unwrap();
        assert_eq!(json_value(&ours_again), json_value(&ours));
        assert_eq!(sdk_event(&ours_again), ce);
    }
}

#[tokio::test]
async fn reading_our_own_form_keeps_everything() {
    let sent = published_order().await;
    let back =
        RawEnvelope::from_cloudevent_json(sent.to_cloudevent_json().unwrap().as_bytes()).unwrap();
    assert_same_envelope(&back, &sent);
    assert_eq!(
        *back.decode::<OrderEvent>().unwrap(),
        OrderEvent::Placed { id: 7, cents: 1250 }
    );
}

// Envelope<E> serde.

#[tokio::test]
async fn typed_envelope_serializes_as_its_cloudevent_and_back() {
    let sent = published_order().await;
    let env: Envelope<OrderEvent> = sent.decode().unwrap();

    let text = serde_json::to_string(&env).unwrap();
    assert_eq!(text, sent.to_cloudevent_json().unwrap());

    let back: Envelope<OrderEvent> = serde_json::from_str(&text).unwrap();
    assert_same_envelope(back.raw(), &sent);
    assert_eq!(*back, OrderEvent::Placed { id: 7, cents: 1250 });

    let err = serde_json::from_str::<Envelope<EntityCreated>>(&text).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("`order.placed`") && message.contains("EntityCreated"),
        "{message}"
    );
}

#[tokio::test]
async fn envelopes_nest_in_serde_types() {
    #[derive(Serialize, Deserialize)]
    struct Batch {
        name: String,
        events: Vec<Envelope<OrderEvent>>,
        raw: Option<RawEnvelope>,
    }

    let placed = published_order().await;
    let shipped = publish_on_fresh_bus(OrderEvent::Shipped { id: 7 }).await;
    let batch = Batch {
        name: "b-1".into(),
        events: vec![placed.decode().unwrap(), shipped.decode().unwrap()],
        raw: Some(placed.clone()),
    };
    let text = serde_json::to_string(&batch).unwrap();
    let back: Batch = serde_json::from_str(&text).unwrap();

    assert_eq!(back.name, "b-1");
    assert_eq!(back.events.len(), 2);
    assert_same_envelope(back.events[0].raw(), &placed);
    assert_same_envelope(back.events[1].raw(), &shipped);
    assert_eq!(*back.events[1], OrderEvent::Shipped { id: 7 });
    assert_same_envelope(back.raw.as_ref().unwrap(), &placed);
}

// (d) Bad input: a clear error, never a panic.

fn valid() -> Map<String, Value> {
    let value = json!({
        "specversion": "1.0",
        "id": "0190f5a2-7c3e-7d4a-9b1e-2f3a4b5c6d7e",
        "source": "svc",
        "type": "order.placed",
        "time": "2026-11-27T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {"id": 7, "cents": 1250},
        "seq": 3,
        "eventname": "OrderEvent",
        "eventversion": 1,
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

fn with(changes: &[(&str, Option<Value>)]) -> Vec<u8> {
    let mut map = valid();
    for (key, value) in changes {
        match value {
            Some(value) => map.insert((*key).to_owned(), value.clone()),
            None => map.remove(*key),
        };
    }
    serde_json::to_vec(&map).unwrap()
}

fn error_for(json: &[u8]) -> String {
    match RawEnvelope::from_cloudevent_json(json) {
        Ok(raw) => panic!("accepted {}: {raw:?}", String::from_utf8_lossy(json)),
        Err(e) => e.to_string(),
    }
}

fn assert_error(json: &[u8], needles: &[&str]) {
    let message = error_for(json);
    for needle in needles {
        assert!(
            message.contains(needle),
            "error for {} should mention {needle:?}, got: {message}",
            String::from_utf8_lossy(json)
        );
    }
}

#[test]
fn the_valid_baseline_is_accepted() {
    let raw = RawEnvelope::from_cloudevent_json(&with(&[])).unwrap();
    assert_eq!(
        *raw.decode::<OrderEvent>().unwrap(),
        OrderEvent::Placed { id: 7, cents: 1250 }
    );
    assert_eq!(raw.seq(), 3);
    let _ = sdk_event(std::str::from_utf8(&with(&[])).unwrap());
}

#[test]
fn missing_required_attributes_are_named() {
    for name in ["id", "source", "type", "specversion"] {
        assert_error(&with(&[(name, None)]), &[&format!("`{name}`"), "missing"]);
        assert_error(
            &with(&[(name, Some(Value::Null))]),
            &[&format!("`{name}`"), "missing"],
        );
    }
}

#[test]
fn any_non_empty_string_is_an_id_and_comes_back_unchanged() {
    // The CloudEvents spec's own example id, and other non-UUID texts.
    for id in ["A234-1234-1234", "order-7", "0190ABCD-not-canonical", " x "] {
        let raw = RawEnvelope::from_cloudevent_json(&with(&[("id", Some(json!(id)))])).unwrap();
        assert_eq!(raw.id().to_string(), id);
        assert_eq!(raw.id().as_uuid(), None);
        let back: Value = serde_json::from_str(&raw.to_cloudevent_json().unwrap()).unwrap();
        assert_eq!(back["id"], id);
    }
    assert_error(
        &with(&[("id", Some(json!("")))]),
        &["`id`", "must not be empty"],
    );
}

#[test]
fn attributes_of_the_wrong_json_type_are_named() {
    assert_error(
        &with(&[("id", Some(json!(7)))]),
        &["`id`", "must be a string"],
    );
    assert_error(
        &with(&[("source", Some(json!({"host": "svc"})))]),
        &["`source`", "must be a string"],
    );
    assert_error(
        &with(&[("correlationid", Some(json!(["a"])))]),
        &["`correlationid`", "must be a string"],
    );
    assert_error(
        &with(&[("seq", Some(json!(-1)))]),
        &["`seq`", "non-negative integer", "-1"],
    );
    assert_error(&with(&[("seq", Some(json!("three")))]), &["`seq`", "three"]);
    assert_error(
        &with(&[("eventversion", Some(json!(5_000_000_000_u64)))]),
        &["eventversion", "5000000000", "too large"],
    );
}

#[test]
fn other_specversions_are_rejected() {
    for version in ["0.3", "1.1", "2.0"] {
        assert_error(
            &with(&[("specversion", Some(json!(version)))]),
            &[&format!("`{version}`"), "`1.0`"],
        );
    }
}

#[test]
fn malformed_type_names_the_bad_token() {
    assert_error(
        &with(&[("type", Some(json!("order.pla$ced")))]),
        &["`order.pla$ced`", "'$'", "`pla$ced`"],
    );
    assert_error(
        &with(&[("type", Some(json!("order..placed")))]),
        &["`order..placed`", "empty token at position 2"],
    );
    assert_error(
        &with(&[("type", Some(json!("order.*")))]),
        &["`order.*`", "wildcard `*`"],
    );
    assert_error(
        &with(&[("type", Some(json!("com.example/someevent")))]),
        &["'/'", "`example/someevent`"],
    );
    assert_error(&with(&[("type", Some(json!("")))]), &["topic is empty"]);
}

#[test]
fn binary_data_is_rejected() {
    let json = with(&[("data", None), ("data_base64", Some(json!("eyJpZCI6N30=")))]);
    assert_error(&json, &["`data_base64`", "not supported", "JSON data"]);

    // The same, written by the SDK.
    let ce = EventBuilderV10::new()
        .id(Uuid::now_v7().to_string())
        .source("svc")
        .ty("order.placed")
        .data("application/octet-stream", vec![0_u8, 159, 146, 150])
        .build()
        .unwrap();
    let json = serde_json::to_vec(&ce).unwrap();
    let message = error_for(&json);
    assert!(
        message.contains("application/octet-stream") || message.contains("data_base64"),
        "{message}"
    );
}

#[test]
fn non_json_content_type_is_rejected() {
    for ct in ["text/plain", "application/xml", "application/octet-stream"] {
        assert_error(
            &with(&[
                ("datacontenttype", Some(json!(ct))),
                ("data", Some(json!("<much wow=\"xml\"/>"))),
            ]),
            &[&format!("`{ct}`"), "not supported", "JSON"],
        );
    }
    // JSON content types, with and without parameters, are accepted.
    for ct in [
        "application/json",
        "application/json; charset=utf-8",
        "application/cloudevents+json",
    ] {
        let raw = RawEnvelope::from_cloudevent_json(&with(&[("datacontenttype", Some(json!(ct)))]))
            .unwrap_or_else(|e| panic!("{ct}: {e}"));
        assert_eq!(raw.decode::<OrderEvent>().unwrap().topic(), "order.placed");
    }
}

#[test]
fn bad_time_is_named() {
    assert_error(
        &with(&[("time", Some(json!("yesterday")))]),
        &["`yesterday`", "RFC 3339"],
    );
    assert_error(
        &with(&[("time", Some(json!("2026-11-27 10:00")))]),
        &["`2026-11-27 10:00`", "RFC 3339"],
    );
}

#[test]
fn text_that_is_not_a_json_object_is_rejected() {
    let cases: [&[u8]; 7] = [
        b"",
        b"{",
        b"[1, 2]",
        b"null",
        b"\"order.placed\"",
        b"{\"specversion\": \"1.0\",}",
        b"\xff\xfe",
    ];
    for json in cases {
        let message = error_for(json);
        assert!(!message.is_empty());
    }
    assert_error(b"{\n  \"id\": \n}", &["line 3 column 1"]);
    assert_error(b"[1, 2]", &["expected a map"]);
}

#[test]
fn data_that_does_not_fit_the_type_fails_at_decode_with_the_topic() {
    let raw = RawEnvelope::from_cloudevent_json(&with(&[(
        "data",
        Some(json!({"id": "seven", "cents": 1250})),
    )]))
    .expect("the envelope itself is well formed");
    let err = raw.decode::<OrderEvent>().unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, CodecError::Decode { .. }), "{err:?}");
    assert!(
        message.contains("`order.placed`") && message.contains("invalid type: string \"seven\""),
        "{message}"
    );
}

// Corners of the CloudEvents spec.

#[tokio::test]
async fn large_seq_stays_a_valid_cloudevents_attribute() {
    let sent = published_order().await;
    let big = Draft::from_envelope(&sent).seal(3_000_000_000);
    let value = json_value(&big.to_cloudevent_json().unwrap());
    let seq = &value["seq"];
    let conforming = match seq {
        Value::String(text) => text == "3000000000",
        Value::Number(n) => n.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        _ => false,
    };
    assert!(
        conforming,
        "seq {seq} is outside the CloudEvents Integer range and not a String"
    );
    // However it is written, it reads back.
    let back =
        RawEnvelope::from_cloudevent_json(big.to_cloudevent_json().unwrap().as_bytes()).unwrap();
    assert_eq!(back.seq(), 3_000_000_000);
}

#[test]
fn null_extension_is_unset() {
    let json = with(&[("unsetextension", Some(Value::Null))]);
    let ce = sdk_event(std::str::from_utf8(&json).unwrap());
    assert_eq!(ce.extension("unsetextension"), None, "the SDK drops it");

    let raw = RawEnvelope::from_cloudevent_json(&json).unwrap();
    assert_eq!(raw.header("unsetextension"), None);
    assert!(raw.headers().is_empty(), "{:?}", raw.headers());
}

#[test]
fn every_json_media_type_is_accepted() {
    for ct in [
        "text/json",
        "application/vnd.api+json; charset=utf-8",
        "Application/JSON",
    ] {
        let raw = RawEnvelope::from_cloudevent_json(&with(&[("datacontenttype", Some(json!(ct)))]))
            .unwrap_or_else(|e| panic!("{ct} is a JSON media type, but: {e}"));
        assert_eq!(
            *raw.decode::<OrderEvent>().unwrap(),
            OrderEvent::Placed { id: 7, cents: 1250 }
        );
    }
}

#[tokio::test]
async fn empty_source_is_rejected() {
    assert_error(&with(&[("source", Some(json!("")))]), &["source"]);

    let bus = isolated().source("svc").build().await.unwrap();
    let result = bus.publish(OrderEvent::Shipped { id: 1 }).source("").await;
    bus.shutdown().await.unwrap();
    match result {
        Err(e) => assert!(e.to_string().contains("source"), "{e}"),
        Ok(sent) => panic!(
            "published with an empty source: {}",
            sent.to_cloudevent_json().unwrap()
        ),
    }
}

#[test]
fn invalid_extension_names_are_rejected_on_read() {
    for name in ["Tenant", "x-tenant", "tenant_id"] {
        let json = with(&[(name, Some(json!("acme")))]);
        match RawEnvelope::from_cloudevent_json(&json) {
            Err(e) => assert!(e.to_string().contains(name), "{e}"),
            Ok(raw) => panic!(
                "accepted the attribute name `{name}`, and writes it back: {}",
                raw.to_cloudevent_json().unwrap()
            ),
        }
    }
}

#[test]
fn foreign_data_keeps_its_exact_text_and_no_empty_event_name_is_written() {
    let json = br#"{"specversion":"1.0","id":"0190f5a2-7c3e-7d4a-9b1e-2f3a4b5c6d70","source":"js",
        "type":"order.placed","data":{"id":7,"cents":1250}}"#;
    let raw = RawEnvelope::from_cloudevent_json(json).unwrap();
    assert_eq!(raw.data_json().unwrap().get(), r#"{"id":7,"cents":1250}"#);
    let back = json_value(&raw.to_cloudevent_json().unwrap());
    assert!(back.get("eventname").is_none(), "{back}");
    assert!(
        raw.to_cloudevent_json()
            .unwrap()
            .contains(r#""data":{"id":7,"cents":1250}"#)
    );
}
