//! CloudEvents structured JSON, as `RawEnvelope::from_cloudevent_json`
//! reads it: whatever is accepted writes back to JSON that reads as the
//! same event, writes the same text again, and keeps what the input said.

#![no_main]

use eventbus::RawEnvelope;
use eventbus_fuzz::{assert_same, data};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|input: &[u8]| {
    let Ok(first) = RawEnvelope::from_cloudevent_json(input) else {
        return;
    };
    let json = first
        .to_cloudevent_json()
        .expect("an event read from JSON writes as JSON");
    let second = RawEnvelope::from_cloudevent_json(json.as_bytes())
        .unwrap_or_else(|e| panic!("eventbus refuses its own output: {e}\n{json}"));
    assert_same(&first, &second, "read, written and read again");
    assert_eq!(
        second.to_cloudevent_json().unwrap(),
        json,
        "writing again gives the same text"
    );

    // The reader refuses repeated attributes, so the input reads the same
    // as a plain JSON object, and the envelope must say what it said.
    let Value::Object(given) = serde_json::from_slice::<Value>(input).expect("accepted is JSON")
    else {
        panic!("an accepted event is a JSON object");
    };
    let text = |key: &str| given.get(key).and_then(Value::as_str);
    assert_eq!(text("id"), Some(first.id().to_string().as_str()));
    assert_eq!(text("source"), Some(first.source()));
    assert_eq!(text("type"), Some(first.topic()));
    assert_eq!(text("subject"), first.subject());
    let data_value: Value = serde_json::from_str(&data(&first)).unwrap();
    assert_eq!(given.get("data").unwrap_or(&Value::Null), &data_value);
});
