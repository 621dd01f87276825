//! Every shape `derive(Event)` accepts, with the JSON each one puts on the
//! wire and serde options honored, without the type implementing serde.

use eventbus::{CodecError, Event};

#[derive(Event, Debug, PartialEq)]
#[event(topic = "entity.created")]
struct Named {
    id: u64,
    #[serde(rename = "displayName")]
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Event, Debug, PartialEq)]
#[event(
    topic = "entity.renamed",
    name = "billing.Renamed",
    version = 3,
    upcast(from = 1, raw = same_data),
    upcast(from = 2, raw = same_data)
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Renamed {
    entity_id: u64,
    new_name: String,
}

fn same_data(data: serde_json::Value) -> serde_json::Value {
    data
}

#[derive(Event, Debug, PartialEq)]
#[event(topic = "meter.tick")]
struct Tick(u64);

#[derive(Event, Debug, PartialEq)]
#[event(topic = "point.moved")]
struct Moved(i32, i32);

#[derive(Event, Debug, PartialEq)]
#[event(topic = "system.ping")]
struct Ping;

mod as_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&n.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Event, Debug, PartialEq)]
#[event(namespace = "order")]
#[serde(tag = "ignored", rename_all_fields = "camelCase")]
enum OrderEvent {
    Placed { id: u64, total_cents: u64 },
    Shipped(u64),
    Moved(i32, i32),
    #[event(topic = "order.cancelled.by_customer")]
    #[serde(rename_all = "UPPERCASE")]
    CancelledByCustomer { id: u64, reason: String },
    #[serde(with = "as_string")]
    Refunded(u64),
    Tagged(#[serde(with = "as_string")] u64),
    Archived,
}

fn roundtrip<E: Event + PartialEq + std::fmt::Debug>(value: E, json: &str) {
    let data = value.encode_data().expect("encodes");
    assert_eq!(std::str::from_utf8(&data).unwrap(), json, "{value:?}");
    let back = E::decode_data(value.topic(), &data).expect("decodes");
    assert_eq!(back, value);
}

fn main() {
    roundtrip(
        Named { id: 1, name: "a".into(), note: None },
        r#"{"id":1,"displayName":"a"}"#,
    );
    roundtrip(
        Renamed { entity_id: 2, new_name: "b".into() },
        r#"{"entityId":2,"newName":"b"}"#,
    );
    roundtrip(Tick(3), "3");
    roundtrip(Moved(4, -5), "[4,-5]");
    roundtrip(Ping, "null");

    roundtrip(
        OrderEvent::Placed { id: 7, total_cents: 1250 },
        r#"{"id":7,"totalCents":1250}"#,
    );
    roundtrip(OrderEvent::Shipped(9), "9");
    roundtrip(OrderEvent::Moved(1, 2), "[1,2]");
    roundtrip(
        OrderEvent::CancelledByCustomer { id: 1, reason: "late".into() },
        r#"{"ID":1,"REASON":"late"}"#,
    );
    roundtrip(OrderEvent::Refunded(10), r#""10""#);
    roundtrip(OrderEvent::Tagged(11), r#""11""#);
    roundtrip(OrderEvent::Archived, "null");

    assert_eq!(Named::NAME, "Named");
    assert_eq!(Named::VERSION, 1);
    assert_eq!(Renamed::NAME, "billing.Renamed");
    assert_eq!(Renamed::VERSION, 3);
    assert_eq!(
        OrderEvent::TOPICS,
        [
            "order.placed",
            "order.shipped",
            "order.moved",
            "order.cancelled.by_customer",
            "order.refunded",
            "order.tagged",
            "order.archived",
        ]
    );

    // Defaults, unit data in every accepted form, and errors instead of panics.
    let named = Named::decode_data("entity.created", br#"{"id":1,"displayName":"a"}"#).unwrap();
    assert_eq!(named.note, None);
    for unit in [&b""[..], b"null", b"{}", b" null "] {
        assert_eq!(OrderEvent::decode_data("order.archived", unit).unwrap(), OrderEvent::Archived);
        assert_eq!(Ping::decode_data("system.ping", unit).unwrap(), Ping);
    }
    assert!(matches!(
        OrderEvent::decode_data("order.unknown", b"{}"),
        Err(CodecError::UnknownTopic { .. })
    ));
    assert!(matches!(Named::decode_data("order.placed", b"{}"), Err(CodecError::UnknownTopic { .. })));
    for bad in [&b"{"[..], b"[1]", b"{\"id\":1,\"displayName\":\"a\"} trailing", b"\xff"] {
        assert!(matches!(Named::decode_data("entity.created", bad), Err(CodecError::Decode { .. })));
    }
    assert!(matches!(
        Renamed::decode_data("entity.renamed", br#"{"entityId":2,"newName":"b","extra":1}"#),
        Err(CodecError::Decode { .. })
    ));
    assert!(matches!(
        OrderEvent::decode_data("order.archived", b"[1]"),
        Err(CodecError::Decode { .. })
    ));
    let err = OrderEvent::decode_data("order.placed", br#""x""#).unwrap_err().to_string();
    assert!(err.contains("expected struct variant OrderEvent::Placed"), "{err}");
}
