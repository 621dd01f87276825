//! The codec that `#[derive(Event)]` generates, at run time: topics, names
//! and versions; data that is the value's own content (never serde's
//! externally tagged form); serde field attributes honored; decoding that
//! fails with an error naming the topic and the problem, never a panic; and
//! encoding that refuses NaN and infinities, naming where they sit.
//!
//! Every event type here has topics under `codec.`, apart from the shared
//! fixtures' `order.*` and `entity.created`.

use std::collections::BTreeMap;

use eventbus::topic::validate_topic;
use eventbus::{CodecError, Event};
use serde_json::{Value, json};

/// Amounts in cents written as decimal text, `1250` as `"12.50"`, for
/// `#[serde(with = "cents_as_text")]`.
mod cents_as_text {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(cents: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{}.{:02}", cents / 100, cents % 100))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parsed = text.split_once('.').and_then(|(whole, frac)| {
            let whole: u64 = whole.parse().ok()?;
            let frac: u64 = (frac.len() == 2).then(|| frac.parse().ok())??;
            whole.checked_mul(100)?.checked_add(frac)
        });
        parsed.ok_or_else(|| D::Error::custom(format!("amount `{text}` is not like `12.50`")))
    }
}

/// A struct with `rename_all` and field attributes.
#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "codec.account.opened")]
#[serde(rename_all = "camelCase")]
struct AccountOpened {
    account_id: u64,
    #[serde(rename = "holder")]
    holder_name: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    referrer: Option<String>,
    #[serde(with = "cents_as_text")]
    opening_balance: u64,
}

/// An enum with every variant shape, a name and version override, and
/// serde attributes on variants and fields. It also derives `Serialize`
/// (opting out of the derive's own with `serde = false`), to show that
/// serde's externally tagged form is not the wire form.
#[derive(Event, Clone, Debug, PartialEq, serde::Serialize)]
#[event(
    namespace = "codec.shape",
    name = "codec-shape",
    version = 3,
    upcast(from = 1, raw = same_data),
    upcast(from = 2, raw = same_data),
    serde = false
)]
enum Shape {
    /// Struct variant.
    Circle { radius: u32 },
    /// Struct variant with `rename_all`; its topic is the snake_case name.
    #[serde(rename_all = "camelCase")]
    RoundedRect {
        corner_radius: u32,
        #[serde(rename = "w")]
        width: u32,
    },
    /// Newtype variant.
    Square(u32),
    /// Tuple variant.
    Segment(i32, i32),
    /// Unit variant.
    Empty,
    /// Own topic; `default` and `skip_serializing_if` on fields.
    #[event(topic = "codec.shape.custom.polygon")]
    Polygon {
        sides: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// Newtype variant with `with`, which applies to its one field.
    #[serde(with = "cents_as_text")]
    Price(u64),
}

/// Versions 1 and 2 of `Shape` had the data of version 3.
fn same_data(_topic: &str, data: serde_json::Value) -> serde_json::Value {
    data
}

/// A unit struct.
#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "codec.heartbeat")]
struct Heartbeat;

/// A newtype struct: its data is the inner value.
#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "codec.temperature")]
struct Temperature(i32);

/// A tuple struct: its data is an array.
#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "codec.point")]
struct Point(i32, i32);

/// A struct that rejects unknown fields.
#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "codec.strict")]
#[serde(deny_unknown_fields)]
struct Strict {
    id: u64,
}

/// A struct whose data cannot be JSON: map keys that are not strings.
#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "codec.grid")]
struct Grid {
    cells: BTreeMap<(u8, u8), u8>,
}

/// A struct with a float, which JSON can hold only when finite.
#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "codec.reading")]
struct Reading {
    celsius: f64,
}

/// A float inside a `Vec` of structs, beside floats that are fine.
#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "codec.readings")]
struct Readings {
    readings: Vec<Sample>,
}

/// One of `Readings`: an ordinary serde struct, not an event.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Sample {
    at: u64,
    celsius: f64,
}

/// Floats as map values and in an `Option`.
#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "codec.climate")]
struct Climate {
    by_room: BTreeMap<String, f32>,
    offset: Option<f64>,
}

/// Floats in an enum's variants.
#[derive(Event, Clone, Debug, PartialEq)]
#[event(namespace = "codec.sensor")]
enum Sensor {
    Reading { id: u32, celsius: f64 },
    Range(f64, f64),
    Level(f64),
}

/// Every kind of `null` serde_json writes besides a float, next to floats
/// that are fine. It derives `Serialize` too (`serde = false`), to compare
/// with what serde's own derive makes serde_json write.
#[derive(Event, Clone, Debug, PartialEq, serde::Serialize)]
#[event(topic = "codec.nulls", serde = false)]
struct Nulls {
    missing: Option<f64>,
    present: Option<f64>,
    nothing: (),
    marker: Marker,
    gaps: Vec<Option<f32>>,
    extremes: [f64; 4],
    note: String,
}

/// A unit struct inside the data, written as `null`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Marker;

fn account() -> AccountOpened {
    AccountOpened {
        account_id: 42,
        holder_name: "Ada".into(),
        tags: vec![],
        referrer: None,
        opening_balance: 1250,
    }
}

fn all_shapes() -> Vec<Shape> {
    vec![
        Shape::Circle { radius: 3 },
        Shape::RoundedRect {
            corner_radius: 2,
            width: 10,
        },
        Shape::Square(4),
        Shape::Segment(-1, 5),
        Shape::Empty,
        Shape::Polygon {
            sides: 6,
            label: None,
        },
        Shape::Polygon {
            sides: 5,
            label: Some("pent\u{e1}gono \"5\"".into()),
        },
        Shape::Price(1999),
    ]
}

fn data<E: Event>(event: &E) -> String {
    String::from_utf8(event.encode_data().unwrap()).unwrap()
}

fn data_value<E: Event>(event: &E) -> Value {
    serde_json::from_slice(&event.encode_data().unwrap()).unwrap()
}

/// The reason of an `Encode` error for `E`, failing the test otherwise.
fn encode_reason<E: Event + std::fmt::Debug>(event: &E) -> String {
    match event.encode_data() {
        Err(CodecError::Encode { event, reason }) if event == E::NAME => reason,
        other => panic!("{event:?} should not encode, got {other:?}"),
    }
}

/// Decodes expecting an error; a panic would fail the test too.
fn decode_error<E: Event + std::fmt::Debug>(topic: &str, data: &[u8]) -> CodecError {
    match E::decode_data(topic, data) {
        Ok(value) => panic!(
            "{topic} {:?} decoded into {value:?}",
            String::from_utf8_lossy(data)
        ),
        Err(e) => e,
    }
}

/// Asserts a `Decode` error for `topic` and `E` whose message holds `needles`.
fn assert_decode_error<E: Event + std::fmt::Debug>(topic: &str, data: &[u8], needles: &[&str]) {
    let err = decode_error::<E>(topic, data);
    match &err {
        CodecError::Decode {
            topic: t, event, ..
        } => {
            assert_eq!(t, topic);
            assert_eq!(*event, E::NAME);
        }
        other => panic!("expected a Decode error, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("`{topic}`")) && message.contains(&format!("`{}`", E::NAME)),
        "the message names the topic and the type: {message}"
    );
    for needle in needles {
        assert!(
            message.contains(needle),
            "decoding {topic} {:?}: expected {needle:?} in: {message}",
            String::from_utf8_lossy(data)
        );
    }
}

// Topics, names and versions.

#[test]
fn topics_follow_namespace_variant_names_and_overrides() {
    assert_eq!(
        Shape::TOPICS,
        [
            "codec.shape.circle",
            "codec.shape.rounded_rect",
            "codec.shape.square",
            "codec.shape.segment",
            "codec.shape.empty",
            "codec.shape.custom.polygon",
            "codec.shape.price",
        ]
    );
    assert_eq!(AccountOpened::TOPICS, ["codec.account.opened"]);
    assert_eq!(Heartbeat::TOPICS, ["codec.heartbeat"]);
    assert_eq!(Temperature::TOPICS, ["codec.temperature"]);
    assert_eq!(Point::TOPICS, ["codec.point"]);

    for topic in Shape::TOPICS {
        validate_topic(topic).unwrap();
    }
}

#[test]
fn topic_of_each_value_is_its_variants() {
    let topics: Vec<&str> = all_shapes().iter().map(Event::topic).collect();
    assert_eq!(
        topics,
        [
            "codec.shape.circle",
            "codec.shape.rounded_rect",
            "codec.shape.square",
            "codec.shape.segment",
            "codec.shape.empty",
            "codec.shape.custom.polygon",
            "codec.shape.custom.polygon",
            "codec.shape.price",
        ]
    );
    assert_eq!(account().topic(), "codec.account.opened");
    assert_eq!(Heartbeat.topic(), "codec.heartbeat");
    assert_eq!(Point(1, 2).topic(), "codec.point");
}

#[test]
fn name_and_version_default_to_the_identifier_and_1() {
    assert_eq!(AccountOpened::NAME, "AccountOpened");
    assert_eq!(AccountOpened::VERSION, 1);
    assert_eq!(Heartbeat::NAME, "Heartbeat");
    assert_eq!(Temperature::VERSION, 1);
}

#[test]
fn name_and_version_overrides() {
    assert_eq!(Shape::NAME, "codec-shape");
    assert_eq!(Shape::VERSION, 3);
}

// Encoding: the value's own content.

#[test]
fn enum_data_is_the_variants_own_content() {
    let expected = [
        r#"{"radius":3}"#,
        r#"{"cornerRadius":2,"w":10}"#,
        "4",
        "[-1,5]",
        "null",
        r#"{"sides":6}"#,
        r#"{"sides":5,"label":"pentágono \"5\""}"#,
        r#""19.99""#,
    ];
    for (shape, expected) in all_shapes().iter().zip(expected) {
        assert_eq!(data(shape), expected, "{shape:?}");
    }
}

#[test]
fn enum_data_is_not_serdes_externally_tagged_form() {
    let circle = Shape::Circle { radius: 3 };
    assert_eq!(
        serde_json::to_value(&circle).unwrap(),
        json!({"Circle": {"radius": 3}}),
        "serde's own Serialize is externally tagged"
    );
    assert_eq!(data_value(&circle), json!({"radius": 3}));

    let square = Shape::Square(4);
    assert_eq!(serde_json::to_value(&square).unwrap(), json!({"Square": 4}));
    assert_eq!(data_value(&square), json!(4));

    assert_eq!(serde_json::to_value(Shape::Empty).unwrap(), json!("Empty"));
    assert_eq!(data_value(&Shape::Empty), Value::Null);

    // And the tagged form does not decode as the variant.
    assert_decode_error::<Shape>(
        "codec.shape.circle",
        br#"{"Circle":{"radius":3}}"#,
        &["missing field `radius`"],
    );
}

#[test]
fn struct_data_honors_serde_field_attributes() {
    assert_eq!(
        data(&account()),
        r#"{"accountId":42,"holder":"Ada","tags":[],"openingBalance":"12.50"}"#,
        "rename_all, rename, skip_serializing_if and with"
    );
    let with_referrer = AccountOpened {
        tags: vec!["vip".into()],
        referrer: Some("bob".into()),
        ..account()
    };
    assert_eq!(
        data_value(&with_referrer),
        json!({
            "accountId": 42,
            "holder": "Ada",
            "tags": ["vip"],
            "referrer": "bob",
            "openingBalance": "12.50",
        })
    );
}

#[test]
fn struct_shapes_encode_like_serde() {
    assert_eq!(data(&Heartbeat), "null");
    assert_eq!(data(&Temperature(-4)), "-4");
    assert_eq!(data(&Point(1, 2)), "[1,2]");
    assert_eq!(data(&Strict { id: 1 }), r#"{"id":1}"#);
}

#[test]
fn a_field_that_cannot_be_json_is_an_encode_error() {
    let grid = Grid {
        cells: BTreeMap::from([((0, 0), 1)]),
    };
    let err = grid.encode_data().unwrap_err();
    assert!(
        matches!(err, CodecError::Encode { event: "Grid", .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("`Grid`") && message.contains("key must be a string"),
        "{message}"
    );
}

#[test]
fn plain_serde_writes_and_reads_the_data_form() {
    fn same<E>(event: &E)
    where
        E: Event + serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let json = serde_json::to_string(event).unwrap();
        assert_eq!(json, data(event), "{event:?}");
        assert_eq!(&serde_json::from_str::<E>(&json).unwrap(), event);
    }
    same(&account());
    same(&Temperature(-4));
    same(&Point(1, 2));
    same(&Strict { id: 1 });
    same(&Heartbeat);
    assert_eq!(serde_json::from_str::<Heartbeat>("{}").unwrap(), Heartbeat);
    // An enum writes the variant's content; which variant it is, is the
    // topic's to say, so enums are not `Deserialize`.
    for sensor in [
        Sensor::Reading {
            id: 1,
            celsius: 20.5,
        },
        Sensor::Range(-1.0, 1.0),
        Sensor::Level(0.5),
    ] {
        assert_eq!(serde_json::to_string(&sensor).unwrap(), data(&sensor));
    }
}

#[test]
fn events_sit_inside_other_serde_types() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Snapshot {
        accounts: Vec<AccountOpened>,
        last: Option<Point>,
    }
    let snapshot = Snapshot {
        accounts: vec![account()],
        last: Some(Point(3, 4)),
    };
    let json = serde_json::to_value(&snapshot).unwrap();
    assert_eq!(
        json,
        json!({"accounts": [data_value(&account())], "last": [3, 4]})
    );
    assert_eq!(serde_json::from_value::<Snapshot>(json).unwrap(), snapshot);
}

#[test]
fn opting_out_of_serde_keeps_the_types_own_derive() {
    // `Shape` derives `Serialize` itself, with `serde = false`: serde's
    // form is its own, the data form is the derive's.
    let square = Shape::Square(4);
    assert_eq!(serde_json::to_value(&square).unwrap(), json!({"Square": 4}));
    assert_eq!(data_value(&square), json!(4));
}

// Decoding.

#[test]
fn a_missing_option_field_decodes_as_none() {
    let climate = Climate::decode_data("codec.climate", br#"{"by_room":{}}"#).unwrap();
    assert_eq!(
        climate,
        Climate {
            by_room: BTreeMap::new(),
            offset: None,
        }
    );
    let reading = Sensor::decode_data("codec.sensor.reading", br#"{"celsius":1.5}"#);
    assert!(
        reading
            .unwrap_err()
            .to_string()
            .contains("missing field `id`"),
        "a missing field that is no `Option` is an error"
    );
}

#[test]
fn decode_round_trips_every_shape() {
    for shape in all_shapes() {
        let bytes = shape.encode_data().unwrap();
        let back = Shape::decode_data(shape.topic(), &bytes).unwrap();
        assert_eq!(back, shape);
    }
    for event in [
        account(),
        AccountOpened {
            tags: vec!["a".into(), "b".into()],
            referrer: Some("r".into()),
            opening_balance: 7,
            ..account()
        },
    ] {
        let back =
            AccountOpened::decode_data(event.topic(), &event.encode_data().unwrap()).unwrap();
        assert_eq!(back, event);
    }
    assert_eq!(
        Heartbeat::decode_data("codec.heartbeat", &Heartbeat.encode_data().unwrap()).unwrap(),
        Heartbeat
    );
    assert_eq!(
        Temperature::decode_data("codec.temperature", b"21").unwrap(),
        Temperature(21)
    );
    assert_eq!(
        Point::decode_data("codec.point", b" [3, -4] ").unwrap(),
        Point(3, -4)
    );
}

#[test]
fn decode_reads_what_other_clients_write() {
    // Keys in another order, whitespace, and fields left to their defaults.
    let decoded = AccountOpened::decode_data(
        "codec.account.opened",
        b"{\n  \"openingBalance\": \"0.05\",\n  \"holder\": \"Grace\",\n  \"accountId\": 9\n}",
    )
    .unwrap();
    assert_eq!(
        decoded,
        AccountOpened {
            account_id: 9,
            holder_name: "Grace".into(),
            tags: vec![],
            referrer: None,
            opening_balance: 5,
        }
    );
    assert_eq!(
        Shape::decode_data("codec.shape.custom.polygon", br#"{"sides":3}"#).unwrap(),
        Shape::Polygon {
            sides: 3,
            label: None
        }
    );
    assert_eq!(
        Shape::decode_data(
            "codec.shape.rounded_rect",
            br#"{"w":1,"cornerRadius":8,"extra":true}"#
        )
        .unwrap(),
        Shape::RoundedRect {
            corner_radius: 8,
            width: 1
        },
        "unknown fields are ignored unless denied"
    );
}

#[test]
fn renamed_fields_are_read_only_by_their_wire_names() {
    assert_decode_error::<AccountOpened>(
        "codec.account.opened",
        br#"{"account_id":1,"holder_name":"Ada","opening_balance":"1.00"}"#,
        &["missing field `accountId`"],
    );
    assert_decode_error::<Shape>(
        "codec.shape.rounded_rect",
        br#"{"corner_radius":1,"width":2}"#,
        &["missing field `cornerRadius`"],
    );
}

#[test]
fn with_module_errors_come_through() {
    assert_decode_error::<AccountOpened>(
        "codec.account.opened",
        br#"{"accountId":1,"holder":"Ada","openingBalance":"12"}"#,
        &["amount `12` is not like `12.50`"],
    );
    assert_decode_error::<Shape>(
        "codec.shape.price",
        br#""cheap""#,
        &["amount `cheap` is not like `12.50`"],
    );
    assert_eq!(
        Shape::decode_data("codec.shape.price", br#""0.99""#).unwrap(),
        Shape::Price(99)
    );
}

#[test]
fn deny_unknown_fields_is_honored() {
    assert_decode_error::<Strict>(
        "codec.strict",
        br#"{"id":1,"idd":2}"#,
        &["unknown field `idd`", "expected `id`"],
    );
    assert_eq!(
        Strict::decode_data("codec.strict", br#"{"id":1}"#).unwrap(),
        Strict { id: 1 }
    );
}

#[test]
fn unknown_topic_names_the_topic_the_type_and_its_topics() {
    let err = decode_error::<Shape>("codec.shape.hexagon", b"{}");
    assert!(
        matches!(
            &err,
            CodecError::UnknownTopic { topic, event: "codec-shape", topics }
                if topic == "codec.shape.hexagon" && *topics == Shape::TOPICS
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("`codec.shape.hexagon`")
            && message.contains("`codec-shape`")
            && message.contains("codec.shape.circle, codec.shape.rounded_rect"),
        "{message}"
    );

    for topic in [
        "order.placed",
        "codec.account",
        "",
        "codec.*",
        "codec.account.opened.x",
    ] {
        let err = decode_error::<AccountOpened>(topic, br#"{"accountId":1}"#);
        assert!(
            matches!(&err, CodecError::UnknownTopic { topic: t, .. } if t == topic),
            "{err:?}"
        );
    }
    let err = decode_error::<Heartbeat>("codec.temperature", b"null");
    assert!(err.to_string().contains("`codec.temperature`"), "{err}");
}

#[test]
fn malformed_json_names_line_and_column() {
    assert_decode_error::<Shape>(
        "codec.shape.circle",
        br#"{"radius": }"#,
        &["expected value", "line 1 column 12"],
    );
    assert_decode_error::<Shape>(
        "codec.shape.circle",
        b"{\n  \"radius\": 3,\n  \"oops\" 4\n}",
        &["expected `:`", "line 3 column 10"],
    );
    assert_decode_error::<AccountOpened>(
        "codec.account.opened",
        b"",
        &["EOF while parsing a value", "line 1 column 0"],
    );
    assert_decode_error::<Point>("codec.point", b"[1, 2", &["EOF", "line 1 column 5"]);
    assert_decode_error::<Temperature>("codec.temperature", b"\xff", &["line 1 column 1"]);
}

#[test]
fn wrong_typed_data_names_what_was_expected() {
    assert_decode_error::<Shape>(
        "codec.shape.circle",
        br#"{"radius":"big"}"#,
        &[
            "invalid type: string \"big\", expected u32",
            "line 1 column 15",
        ],
    );
    assert_decode_error::<Shape>(
        "codec.shape.circle",
        br#"{"radius":-1}"#,
        &["invalid value: integer `-1`, expected u32"],
    );
    assert_decode_error::<Shape>("codec.shape.circle", b"{}", &["missing field `radius`"]);
    assert_decode_error::<Shape>(
        "codec.shape.square",
        br#""four""#,
        &["invalid type: string \"four\", expected u32"],
    );
    assert_decode_error::<Shape>(
        "codec.shape.segment",
        b"[1]",
        &["invalid length 1", "Segment"],
    );
    assert_decode_error::<Shape>(
        "codec.shape.segment",
        br#"{"a":1}"#,
        &["invalid type: map", "Segment"],
    );
    assert_decode_error::<Shape>(
        "codec.shape.custom.polygon",
        br#"{"sides":300}"#,
        &["invalid value: integer `300`, expected u8"],
    );
    assert_decode_error::<AccountOpened>(
        "codec.account.opened",
        br#"{"accountId":1,"holder":"Ada","tags":"vip","openingBalance":"1.00"}"#,
        &["invalid type: string \"vip\", expected a sequence"],
    );
    assert_decode_error::<Temperature>(
        "codec.temperature",
        b"21.5",
        &["invalid type: floating point `21.5`, expected i32"],
    );
    assert_decode_error::<Point>("codec.point", b"[1,2,3]", &["trailing characters"]);
}

#[test]
fn trailing_garbage_is_rejected() {
    assert_decode_error::<Shape>(
        "codec.shape.circle",
        br#"{"radius":3} x"#,
        &["trailing characters", "line 1 column 14"],
    );
    assert_decode_error::<Shape>(
        "codec.shape.square",
        b"4 4",
        &["trailing characters", "line 1 column 3"],
    );
    assert_decode_error::<Temperature>("codec.temperature", b"21}", &["trailing characters"]);
    // Whitespace after the value is fine.
    assert_eq!(
        Shape::decode_data("codec.shape.square", b"4 \n\t").unwrap(),
        Shape::Square(4)
    );
}

#[test]
fn unit_variant_accepts_null_empty_object_and_no_data() {
    for data in [&b"null"[..], b"{}", b"", b"  \n ", b" { } "] {
        assert_eq!(
            Shape::decode_data("codec.shape.empty", data).unwrap(),
            Shape::Empty,
            "{:?}",
            String::from_utf8_lossy(data)
        );
        assert_eq!(
            Heartbeat::decode_data("codec.heartbeat", data).unwrap(),
            Heartbeat
        );
    }
}

#[test]
fn unit_variant_rejects_data() {
    for data in [&b"5"[..], b"\"x\"", b"[]", br#"{"a":1}"#, b"true"] {
        assert_decode_error::<Shape>(
            "codec.shape.empty",
            data,
            &["a unit variant carries no data"],
        );
        assert_decode_error::<Heartbeat>("codec.heartbeat", data, &["carries no data"]);
    }
    assert_decode_error::<Shape>("codec.shape.empty", b"{", &["EOF"]);
    assert_decode_error::<Shape>("codec.shape.empty", b"null null", &["trailing characters"]);
}

// Floats: JSON holds only finite ones.

#[test]
fn finite_floats_round_trip() {
    for celsius in [0.0, -273.15, 21.5, f64::MAX, f64::MIN_POSITIVE] {
        let reading = Reading { celsius };
        let back = Reading::decode_data("codec.reading", &reading.encode_data().unwrap()).unwrap();
        assert_eq!(back, reading);
    }
}

#[test]
fn non_finite_floats_are_an_encode_error_not_undecodable_data() {
    for celsius in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let reading = Reading { celsius };
        match reading.encode_data() {
            Err(err) => assert!(
                matches!(
                    err,
                    CodecError::Encode {
                        event: "Reading",
                        ..
                    }
                ),
                "{err:?}"
            ),
            Ok(bytes) => {
                let back = Reading::decode_data("codec.reading", &bytes);
                assert!(
                    back.is_ok(),
                    "{celsius} encodes as {} which does not decode: {back:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
    }
}

#[test]
fn a_non_finite_struct_field_is_named() {
    let reason = encode_reason(&Reading { celsius: f64::NAN });
    assert!(
        reason.starts_with("field `celsius` is NaN; JSON has no NaN or infinity"),
        "{reason}"
    );
    let message = Reading {
        celsius: f64::NEG_INFINITY,
    }
    .encode_data()
    .unwrap_err()
    .to_string();
    assert!(
        message
            .starts_with("event `Reading` does not encode: field `celsius` is negative infinity;"),
        "{message}"
    );
}

#[test]
fn a_non_finite_float_in_a_vec_of_structs_is_named_by_index() {
    let readings = Readings {
        readings: [21.5, 22.0, f64::INFINITY, f64::NAN]
            .into_iter()
            .zip(0..)
            .map(|(celsius, at)| Sample { at, celsius })
            .collect(),
    };
    let reason = encode_reason(&readings);
    assert!(
        reason.starts_with("field `readings[2].celsius` is infinity;"),
        "{reason}"
    );
}

#[test]
fn a_non_finite_map_value_is_named_by_its_key() {
    let climate = Climate {
        by_room: BTreeMap::from([("hall".into(), f32::NAN), ("attic".into(), 12.5)]),
        offset: None,
    };
    let reason = encode_reason(&climate);
    assert!(
        reason.starts_with(r#"field `by_room["hall"]` is NaN;"#),
        "{reason}"
    );
}

#[test]
fn a_non_finite_float_in_an_option_is_named() {
    let climate = Climate {
        by_room: BTreeMap::from([("hall".into(), 19.0)]),
        offset: Some(f64::NAN),
    };
    let reason = encode_reason(&climate);
    assert!(reason.starts_with("field `offset` is NaN;"), "{reason}");
}

#[test]
fn a_non_finite_variant_field_is_named() {
    let reading = Sensor::Reading {
        id: 1,
        celsius: f64::NAN,
    };
    let reason = encode_reason(&reading);
    assert!(reason.starts_with("field `celsius` is NaN;"), "{reason}");
    let reason = encode_reason(&Sensor::Range(0.0, f64::INFINITY));
    assert!(reason.starts_with("field `[1]` is infinity;"), "{reason}");
    // A newtype variant's data is the float itself.
    let reason = encode_reason(&Sensor::Level(f64::NAN));
    assert!(reason.starts_with("the data is NaN;"), "{reason}");
}

#[test]
fn nulls_and_finite_floats_encode_exactly_as_serde_json_writes_them() {
    let nulls = Nulls {
        missing: None,
        present: Some(-0.5),
        nothing: (),
        marker: Marker,
        gaps: vec![None, Some(1.25), None],
        extremes: [f64::MAX, f64::MIN_POSITIVE, -0.0, 1e-300],
        note: "null".into(),
    };
    let bytes = nulls.encode_data().unwrap();
    assert_eq!(bytes, serde_json::to_vec(&nulls).unwrap());
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"{"missing":null,"present":-0.5,"nothing":null,"marker":null,"gaps":[null,1.25,null],"extremes":[1.7976931348623157e+308,2.2250738585072014e-308,-0.0,1e-300],"note":"null"}"#
    );
    assert_eq!(data(&Heartbeat), "null");
    assert_eq!(data(&Shape::Empty), "null");
    let climate = Climate {
        by_room: BTreeMap::from([("hall".into(), 19.5)]),
        offset: None,
    };
    assert_eq!(data(&climate), r#"{"by_room":{"hall":19.5},"offset":null}"#);
}

#[tokio::test]
async fn publishing_a_non_finite_float_to_sqlite_fails_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    let bus = tests::isolated().store(url).build().await.unwrap();
    let result = bus.publish(Reading { celsius: f64::NAN }).await;
    match result {
        Err(eventbus::Error::Codec(CodecError::Encode { event, reason })) => {
            assert_eq!(event, "Reading");
            assert!(reason.starts_with("field `celsius` is NaN;"), "{reason}");
        }
        other => panic!("expected an encode error, got {other:?}"),
    }
    assert!(bus.history().fetch().await.unwrap().is_empty());
    bus.shutdown().await.unwrap();
}

/// `memory://` keeps a published value as it is and never encodes it, so
/// NaN is no problem in-process; the error comes only where the data must
/// become JSON (here `data_json`, as a CloudEvents export or a copy into a
/// durable store would).
#[tokio::test]
async fn memory_keeps_a_non_finite_float_in_process_and_refuses_it_as_json() {
    let bus = tests::isolated().build().await.unwrap();
    bus.publish(Reading { celsius: f64::NAN }).await.unwrap();
    let history = bus.history().fetch().await.unwrap();
    assert_eq!(history.len(), 1);
    assert!(
        history[0]
            .decode::<Reading>()
            .unwrap()
            .event()
            .celsius
            .is_nan()
    );
    let err = history[0].data_json().unwrap_err();
    assert!(err.to_string().contains("field `celsius` is NaN;"), "{err}");
    bus.shutdown().await.unwrap();
}
