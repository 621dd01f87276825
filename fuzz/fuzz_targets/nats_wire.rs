//! The `nats://` wire codec (CloudEvents binary mode: `ce-` headers and
//! the data as body). An event is built from structured input and read
//! through the CloudEvents JSON reader, so it is one that import or
//! publish could hand the store; then it is encoded as the store
//! publishes it, carried as NATS carries headers, and decoded: it must
//! come back the same.
//!
//! The carrying follows async-nats 0.51: a header value holding CR or LF
//! makes `HeaderMap::insert` panic (so does a bad name), the protocol
//! writes `name: value` lines, and reading trims each value with
//! `str::trim`. Afterwards headers and body are tampered with and decoded
//! again, which must fail cleanly or succeed, never panic.

#![no_main]

use arbitrary::Arbitrary;
use eventbus::__private::fuzz::{HeaderMap, nats_decode, nats_encode};
use eventbus::{Draft, RawEnvelope};
use eventbus_fuzz::{assert_same, grammar_text};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

#[derive(Arbitrary, Debug)]
struct Input {
    id: String,
    source: String,
    topic: Vec<u8>,
    time: Time,
    subject: Option<String>,
    dataschema: Option<String>,
    correlation_id: Option<String>,
    causation_id: Option<String>,
    idempotency_key: Option<String>,
    event_name: Option<String>,
    event_version: Option<u32>,
    headers: Vec<(Vec<u8>, Header)>,
    data: Data,
    tampered_headers: Vec<(u8, String)>,
    tampered_body: Option<Vec<u8>>,
}

#[derive(Arbitrary, Debug)]
enum Time {
    Absent,
    At(i64, u32),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Header {
    Text(String),
    Integer(i64),
    Boolean(bool),
}

#[derive(Arbitrary, Debug)]
enum Data {
    Absent,
    Text(String),
    Number(f64),
    /// JSON text as written, which the reader may refuse.
    Raw(String),
}

/// Header names a tampering picks from: the attributes the decoder reads,
/// the types header, and user headers valid and not.
const TAMPERED: &[&str] = &[
    "ce-specversion",
    "ce-id",
    "ce-source",
    "ce-type",
    "ce-time",
    "ce-subject",
    "ce-dataschema",
    "ce-eventname",
    "ce-eventversion",
    "ce-idempotencykey",
    "eventbus-types",
    "Nats-Msg-Id",
    "ce-tenant",
    "ce-priority",
    "ce-Bad_Name",
    "content-type",
];

fuzz_target!(|input: Input| {
    let Some(sent) = cloudevent(&input) else {
        return;
    };
    let (headers, body) = nats_encode(&Draft::from_envelope(&sent))
        .unwrap_or_else(|e| panic!("an event that JSON accepts does not encode: {e}"));
    let received = carried(&headers);
    let back = nats_decode(
        sent.topic(),
        sent.seq(),
        sent.time(),
        Some(&received),
        &body,
    )
    .unwrap_or_else(|e| panic!("an encoded event does not decode: {e}\n{headers:?}"));
    assert_same(
        &sent,
        &back,
        "encoded to NATS headers and body, carried, decoded",
    );

    let mut tampered = received;
    for (which, value) in &input.tampered_headers {
        let name = TAMPERED[usize::from(*which) % TAMPERED.len()];
        tampered.insert(name, value.replace(['\r', '\n'], ""));
    }
    let body = input.tampered_body.as_deref().unwrap_or(&body);
    let _ = nats_decode(sent.topic(), sent.seq(), sent.time(), Some(&tampered), body);
    let _ = nats_decode(sent.topic(), sent.seq(), sent.time(), None, body);
});

/// The event the input describes, when the CloudEvents reader accepts it.
fn cloudevent(input: &Input) -> Option<RawEnvelope> {
    let mut event = Map::new();
    event.insert("specversion".into(), json!("1.0"));
    event.insert("id".into(), json!(input.id));
    event.insert("source".into(), json!(input.source));
    event.insert("type".into(), json!(grammar_text(&input.topic)));
    match &input.time {
        Time::Absent => {}
        Time::At(secs, nanos) => {
            let time = chrono::DateTime::from_timestamp(*secs, *nanos)?;
            event.insert("time".into(), json!(time.to_rfc3339()));
        }
        Time::Text(text) => {
            event.insert("time".into(), json!(text));
        }
    }
    for (key, value) in [
        ("subject", &input.subject),
        ("dataschema", &input.dataschema),
        ("correlationid", &input.correlation_id),
        ("causationid", &input.causation_id),
        ("idempotencykey", &input.idempotency_key),
        ("eventname", &input.event_name),
    ] {
        if let Some(value) = value {
            event.insert(key.into(), json!(value));
        }
    }
    if let Some(version) = input.event_version {
        event.insert("eventversion".into(), json!(version));
    }
    for (name, value) in &input.headers {
        // Names over the extension-name alphabet, so that most are valid.
        let name: String = name
            .iter()
            .map(|b| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[usize::from(b % 36)]))
            .collect();
        let value = match value {
            Header::Text(text) => json!(text),
            Header::Integer(n) => json!(n),
            Header::Boolean(b) => json!(b),
        };
        event.insert(name, value);
    }
    let text = match &input.data {
        Data::Absent => Value::Object(event).to_string(),
        Data::Text(text) => {
            event.insert("data".into(), json!(text));
            Value::Object(event).to_string()
        }
        Data::Number(n) => {
            event.insert("data".into(), json!(n));
            Value::Object(event).to_string()
        }
        Data::Raw(raw) => {
            let mut text = Value::Object(event).to_string();
            text.pop();
            format!("{text},\"data\":{raw}}}")
        }
    };
    RawEnvelope::from_cloudevent_json(text.as_bytes()).ok()
}

/// The headers as a subscriber receives them: each value on one protocol
/// line, trimmed by the reader.
fn carried(sent: &HeaderMap) -> HeaderMap {
    let mut received = HeaderMap::new();
    for (name, values) in sent.iter() {
        let name: &str = name.as_ref();
        for value in values {
            let value = value.as_str();
            assert!(
                !value.contains(['\r', '\n']),
                "{name}: {value:?} would break the protocol line"
            );
            received.append(name, value.trim());
        }
    }
    received
}
