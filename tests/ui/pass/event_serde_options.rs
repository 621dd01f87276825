//! serde's options shape an event's data exactly as they would shape the
//! type's own serde form, and a type may derive serde's traits too.

use eventbus::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
struct Meta {
    region: String,
}

#[derive(Event, Debug, PartialEq)]
#[event(topic = "entity.created")]
struct Flattened {
    id: u64,
    #[serde(flatten)]
    meta: Meta,
    #[serde(skip)]
    cache: Option<u64>,
}

#[derive(Event, Debug, PartialEq)]
#[event(topic = "entity.weighed")]
#[serde(transparent)]
struct Weight {
    grams: u64,
}

#[derive(Event, Debug, PartialEq)]
#[event(topic = "entity.tagged")]
#[serde(tag = "kind")]
struct Tagged {
    id: u64,
}

#[derive(Event, Debug, PartialEq, Default)]
#[event(topic = "entity.defaulted")]
#[serde(default)]
struct Defaulted {
    id: u64,
    name: String,
}

mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{n:x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        u64::from_str_radix(&s, 16).map_err(serde::de::Error::custom)
    }
}

/// Both derives: the user's `Serialize` keeps serde's tagged form, the
/// event's data is still the variant's content. `serde = false` leaves
/// serde's traits to the user's derive.
#[derive(Event, Serialize, Deserialize, Debug, PartialEq)]
#[event(namespace = "tree", serde = false)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TreeEvent {
    #[serde(rename = "grown")]
    Grew {
        #[serde(with = "hex")]
        id: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        children: Vec<Box<Self>>,
    },
    Cut {
        id: u64,
    },
}

fn roundtrip<E: Event + PartialEq + std::fmt::Debug>(value: E, json: &str) {
    let data = value.encode_data().expect("encodes");
    assert_eq!(std::str::from_utf8(&data).unwrap(), json, "{value:?}");
    assert_eq!(E::decode_data(value.topic(), &data).expect("decodes"), value);
}

fn main() {
    roundtrip(
        Flattened { id: 1, meta: Meta { region: "eu".into() }, cache: None },
        r#"{"id":1,"region":"eu"}"#,
    );
    roundtrip(Weight { grams: 5 }, "5");
    roundtrip(Tagged { id: 2 }, r#"{"kind":"Tagged","id":2}"#);
    roundtrip(Defaulted { id: 3, name: "x".into() }, r#"{"id":3,"name":"x"}"#);
    assert_eq!(
        Defaulted::decode_data("entity.defaulted", b"{}").unwrap(),
        Defaulted::default()
    );

    let tree = TreeEvent::Grew {
        id: 255,
        children: vec![Box::new(TreeEvent::Cut { id: 1 })],
    };
    roundtrip(tree, r#"{"id":"ff","children":[{"type":"cut","id":1}]}"#);
    roundtrip(TreeEvent::Grew { id: 16, children: vec![] }, r#"{"id":"10"}"#);
    assert_eq!(
        serde_json::to_string(&TreeEvent::Cut { id: 1 }).unwrap(),
        r#"{"type":"cut","id":1}"#
    );
}
