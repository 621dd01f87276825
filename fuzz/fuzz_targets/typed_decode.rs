//! Typed data: arbitrary JSON decoded into `#[derive(Event)]` types (a
//! struct, an enum with struct, newtype, tuple and unit variants, nested
//! values, floats and integers at their limits). A value that decodes
//! encodes, decodes to an equal value and encodes to the same bytes; a
//! lossy float or integer codec fails here. The same data read as the
//! enum's version 1, through its raw upcaster, never panics.
//!
//! Input: a byte choosing the topic among all the types' topics and one
//! that none has, then the data.

#![no_main]

use eventbus::{CodecError, Event};
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};

#[derive(Event, Debug, Clone, PartialEq)]
#[event(topic = "fuzz.reading.taken")]
struct Reading {
    celsius: f64,
    count: u64,
    offset: i64,
    label: String,
    note: Option<String>,
    samples: Vec<f64>,
    valid: bool,
}

#[derive(Event, Debug, Clone, PartialEq)]
#[event(namespace = "fuzz.order", version = 2, upcast(from = 1, raw = weight_in_grams))]
enum Order {
    Placed {
        id: u64,
        cents: u64,
        items: Vec<Item>,
        coupon: Option<String>,
    },
    Weighed(f64),
    Moved(i32, Option<u8>, f32),
    Cancelled,
}

/// Version 1 weighed in grams: a raw upcaster over any JSON at all.
fn weight_in_grams(topic: &str, data: serde_json::Value) -> serde_json::Value {
    match (topic, data.as_f64()) {
        ("fuzz.order.weighed", Some(grams)) => serde_json::json!(grams / 1000.0),
        _ => data,
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Item {
    sku: String,
    quantity: u32,
    weight: Option<f64>,
    tags: Vec<String>,
}

fuzz_target!(|input: &[u8]| {
    let Some((&which, data)) = input.split_first() else {
        return;
    };
    let topics: Vec<&str> = Reading::TOPICS
        .iter()
        .chain(Order::TOPICS)
        .copied()
        .chain(["fuzz.unknown"])
        .collect();
    let topic = topics[usize::from(which) % topics.len()];
    round_trip::<Reading>(topic, data);
    round_trip::<Order>(topic, data);
    // The upcaster chain takes any stored data without panicking, and what
    // it reads is a value of the current version.
    if let Ok(upcast) = Order::decode_stored(topic, 1, data) {
        assert_eq!(upcast.topic(), topic);
        upcast
            .encode_data()
            .unwrap_or_else(|e| panic!("{upcast:?} upcast but does not encode: {e}"));
    }
});

fn round_trip<E: Event + PartialEq + std::fmt::Debug>(topic: &str, data: &[u8]) {
    let first = match E::decode_data(topic, data) {
        Ok(value) => value,
        Err(CodecError::UnknownTopic { .. }) => {
            assert!(
                !E::TOPICS.contains(&topic),
                "`{topic}` is a topic of {}",
                E::NAME
            );
            return;
        }
        Err(_) => return,
    };
    assert_eq!(first.topic(), topic);
    // Decoded JSON holds no NaN or infinity, the only values that refuse
    // to encode.
    let encoded = first
        .encode_data()
        .unwrap_or_else(|e| panic!("{first:?} decoded but does not encode: {e}"));
    let second = E::decode_data(topic, &encoded).unwrap_or_else(|e| {
        panic!(
            "{first:?} encodes as {} which does not decode: {e}",
            String::from_utf8_lossy(&encoded)
        )
    });
    assert_eq!(
        first,
        second,
        "through {}",
        String::from_utf8_lossy(&encoded)
    );
    assert_eq!(
        second.encode_data().unwrap(),
        encoded,
        "encoding is stable for {second:?}"
    );
}
