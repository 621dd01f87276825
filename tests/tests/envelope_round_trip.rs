//! A CloudEvent comes back exactly as it went in, through the JSON form and
//! every local store: string ids, `subject` and `dataschema`, extension
//! values with their types, floats to the last bit. What cannot come back
//! exactly (attributes given twice, times outside the years 0000 to 9999,
//! data serde_json refuses, times a store cannot keep) is refused with a
//! message naming it, never stored changed.

use cloudevents::AttributesReader;
use cloudevents::event::ExtensionValue;
use eventbus::store::Query;
use eventbus::{Draft, Error, Event, HeaderKind, RawEnvelope};
use serde_json::{Value, json};
use tests::{OrderEvent, isolated};

/// A CloudEvent using every attribute eventbus keeps.
fn full_event() -> Value {
    json!({
        "specversion": "1.0",
        "id": "A234-1234-1234",
        "source": "/warehouse/3",
        "type": "order.placed",
        "subject": "order-7",
        "dataschema": "https://example.com/schemas/order-placed.json",
        "time": "2026-11-27T10:00:00.123456789Z",
        "datacontenttype": "application/json",
        "data": {"id": 7, "cents": 1250},
        "correlationid": "req-1",
        "priority": 5,
        "flag": true,
        "tenant": "acme",
        "big": -9007199254740993_i64,
    })
}

fn parse(value: &Value) -> RawEnvelope {
    RawEnvelope::from_cloudevent_json(value.to_string().as_bytes()).expect("a valid CloudEvent")
}

fn as_json(env: &RawEnvelope) -> Value {
    serde_json::from_str(&env.to_cloudevent_json().unwrap()).unwrap()
}

/// The attributes that describe the event itself, not where a store put it.
fn portable(mut event: Value) -> Value {
    let map = event.as_object_mut().unwrap();
    for stored in ["seq", "eventversion", "eventname"] {
        map.remove(stored);
    }
    event
}

async fn through_store(url: &str, env: &RawEnvelope) -> RawEnvelope {
    let store = eventbus::store::open(url).await.unwrap();
    store.append(Draft::from_envelope(env)).await.unwrap();
    let mut read = futures_util::StreamExt::collect::<Vec<_>>(store.query(Query::default())).await;
    store.close().await.unwrap();
    assert_eq!(read.len(), 1);
    read.remove(0).unwrap()
}

#[tokio::test]
async fn every_attribute_comes_back_unchanged_through_json_memory_and_sqlite() {
    let original = full_event();
    let env = parse(&original);
    assert_eq!(env.id().to_string(), "A234-1234-1234");
    assert_eq!(env.subject(), Some("order-7"));
    assert_eq!(
        env.dataschema(),
        Some("https://example.com/schemas/order-placed.json")
    );
    let priority = env.header_value("priority").unwrap();
    assert_eq!(
        (priority.kind(), priority.as_i64()),
        (HeaderKind::Integer, Some(5))
    );
    assert_eq!(env.header_value("flag").unwrap().as_bool(), Some(true));
    assert_eq!(env.header("tenant"), Some("acme"));
    assert_eq!(portable(as_json(&env)), original);

    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("e.db").display());
    for url in ["memory://", sqlite.as_str()] {
        let back = through_store(url, &env).await;
        assert_eq!(portable(as_json(&back)), original, "through {url}");
    }
}

#[test]
fn the_cloudevents_sdk_reads_subject_dataschema_and_typed_extensions() {
    let env = parse(&full_event());
    let sdk: cloudevents::Event = serde_json::from_str(&env.to_cloudevent_json().unwrap()).unwrap();
    assert_eq!(sdk.id(), "A234-1234-1234");
    assert_eq!(sdk.subject(), Some("order-7"));
    assert_eq!(
        sdk.dataschema().map(ToString::to_string).as_deref(),
        Some("https://example.com/schemas/order-placed.json")
    );
    assert_eq!(sdk.extension("priority"), Some(&ExtensionValue::Integer(5)));
    assert_eq!(sdk.extension("flag"), Some(&ExtensionValue::Boolean(true)));
    assert_eq!(
        sdk.extension("tenant"),
        Some(&ExtensionValue::String("acme".into()))
    );
}

#[tokio::test]
async fn publish_sets_the_subject_and_history_filters_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("s.db").display());
    for url in ["memory://", sqlite.as_str()] {
        let bus = isolated().store(url).build().await.unwrap();
        for id in [7, 8, 7] {
            bus.publish(OrderEvent::Shipped { id })
                .subject(format!("order-{id}"))
                .header("attempt", 2)
                .unwrap()
                .header("urgent", true)
                .unwrap()
                .await
                .unwrap();
        }
        let seven = bus.history().subject("order-7").fetch().await.unwrap();
        assert_eq!(seven.len(), 2, "on {url}");
        assert!(seven.iter().all(|e| e.subject() == Some("order-7")));
        let typed = as_json(&seven[0]);
        assert_eq!(
            (&typed["attempt"], &typed["urgent"]),
            (&json!(2), &json!(true))
        );
        bus.shutdown().await.unwrap();
    }
}

#[test]
fn extension_values_of_other_json_types_are_refused_by_name() {
    for value in [
        json!(5.5),
        json!({"a": 1}),
        json!([1]),
        json!(18446744073709551615_u64),
    ] {
        let mut event = full_event();
        event["weird"] = value.clone();
        let err = RawEnvelope::from_cloudevent_json(event.to_string().as_bytes()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`weird`"), "{value}: {text}");
    }
}

#[test]
fn an_attribute_given_twice_is_refused() {
    let base = r#""specversion":"1.0","id":"x","source":"s","data":{"id":1,"cents":2}"#;
    for (text, name) in [
        (
            format!(r#"{{{base},"type":"order.placed","type":"order.shipped"}}"#),
            "type",
        ),
        (
            format!(r#"{{{base},"type":"order.placed","data":{{"id":2}}}}"#),
            "data",
        ),
        (
            format!(r#"{{{base},"type":"order.placed","id":"y"}}"#),
            "id",
        ),
        (
            format!(r#"{{{base},"type":"order.placed","tenant":"a","tenant":"b"}}"#),
            "tenant",
        ),
    ] {
        let err = RawEnvelope::from_cloudevent_json(text.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains(&format!("`{name}` appears twice")),
            "{text}: {err}"
        );
    }
}

#[test]
fn times_outside_the_years_0000_to_9999_are_refused() {
    for time in ["0000-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"] {
        let mut event = full_event();
        event["time"] = json!(time);
        let err = RawEnvelope::from_cloudevent_json(event.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("0000 to 9999"), "{time}: {err}");
    }
    for time in ["0000-01-01T00:30:00Z", "9999-12-31T23:59:59Z"] {
        let mut event = full_event();
        event["time"] = json!(time);
        let env = parse(&event);
        assert_eq!(as_json(&env)["time"], json!(time));
    }
}

#[tokio::test]
async fn sqlite_refuses_a_time_it_cannot_keep_exactly_and_stores_nothing() {
    let mut event = full_event();
    event["time"] = json!("3000-01-01T00:00:00Z");
    let env = parse(&event);
    let dir = tempfile::tempdir().unwrap();
    let store = eventbus::store::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let err = store.append(Draft::from_envelope(&env)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidEvent { .. }), "{err:?}");
    assert!(err.to_string().contains("3000-01-01"), "{err}");
    assert!(
        futures_util::StreamExt::collect::<Vec<_>>(store.query(Query::default()))
            .await
            .is_empty()
    );
    store.close().await.unwrap();
    // Memory keeps it as it is.
    let back = through_store("memory://", &env).await;
    assert_eq!(as_json(&back)["time"], json!("3000-01-01T00:00:00Z"));
}

#[test]
fn data_is_held_to_serde_json_limits() {
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    for data in [r#""\ud800""#, r#"{"a":"x\udc00"}"#, deep.as_str()] {
        let text = format!(
            r#"{{"specversion":"1.0","id":"x","source":"s","type":"order.placed","data":{data}}}"#
        );
        let err = RawEnvelope::from_cloudevent_json(text.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("`data`"), "{data}: {err}");
    }
}

#[test]
fn data_using_serde_json_private_names_as_keys_is_refused() {
    // serde_json built with `raw_value` (eventbus builds it so) reads an
    // object whose first key is its raw-value name as that value's text:
    // a `serde_json::Value` (a handler's field, the CloudEvents SDK) gets
    // `[1]` from the second object and an error from the first. The number
    // name means the same under `arbitrary_precision`, which any crate in a
    // program may turn on.
    for data in [
        r#"{"$serde_json::private::RawValue":6}"#,
        r#"{"a":[{"$serde_json::private::RawValue":"[1]"}]}"#,
        r#"{"a":1,"$serde_json::private::Number":"1"}"#,
    ] {
        let text = format!(
            r#"{{"specversion":"1.0","id":"x","source":"s","type":"order.placed","data":{data}}}"#
        );
        let err = RawEnvelope::from_cloudevent_json(text.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("`data`") && err.to_string().contains("serde_json"),
            "{data}: {err}"
        );
    }
    let text = r#"{"specversion":"1.0","id":"x","source":"s","type":"order.placed",
        "data":{"$serde_json::private::RawValu":1,"serde_json::private::RawValue":2}}"#;
    assert!(RawEnvelope::from_cloudevent_json(text.as_bytes()).is_ok());
}

#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "sensor.reading")]
struct Reading {
    value: f64,
}

#[test]
fn floats_decode_to_the_nearest_double_and_encode_back_to_it() {
    for text in [
        "118446744073709551615",
        "0.1",
        "2.2250738585072014e-308",
        "1.7976931348623157e308",
    ] {
        let data = format!(r#"{{"value":{text}}}"#);
        let decoded = Reading::decode_data("sensor.reading", data.as_bytes()).unwrap();
        assert_eq!(decoded.value, text.parse::<f64>().unwrap(), "{text}");
        let again =
            Reading::decode_data("sensor.reading", &decoded.encode_data().unwrap()).unwrap();
        assert_eq!(again.value.to_bits(), decoded.value.to_bits(), "{text}");
    }
}
