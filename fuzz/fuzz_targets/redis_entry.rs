//! The `redis://` entry codec: stream entries are outside input, since any
//! client may `XADD` fields. An entry of arbitrary fields (named mostly
//! after the attributes the reader looks for) and id is read: it must be
//! refused cleanly, with what the dead letters keep of it, or read as an
//! event; such an event, written back as the store writes events and read
//! again, must come back the same.

#![no_main]

use arbitrary::Arbitrary;
use eventbus::__private::fuzz::{redis_decode, redis_encode};
use eventbus::Draft;
use eventbus_fuzz::assert_same;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    id: Id,
    fields: Vec<(Name, Value)>,
}

#[derive(Arbitrary, Debug)]
enum Id {
    /// `MS-N`, both taken modulo a little more than a seq carries.
    Parts(u64, u32),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Value {
    Text(String),
    Number(i64),
    Bytes(Vec<u8>),
}

/// What the reader looks for, and user headers valid and not.
const NAMES: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "datacontenttype",
    "subject",
    "dataschema",
    "eventname",
    "eventversion",
    "streamversion",
    "correlationid",
    "causationid",
    "idempotencykey",
    "data",
    "eventbus-types",
    "eventbus-replay",
    "tenant",
    "priority",
    "Bad_Name",
];

fuzz_target!(|input: Input| {
    let id = match &input.id {
        Id::Parts(ms, n) => format!("{}-{}", ms % (1 << 45), n % (1 << 21)),
        Id::Text(text) => text.clone(),
    };
    let fields: Vec<(String, Vec<u8>)> = input
        .fields
        .iter()
        .map(|(name, value)| {
            let name = match name {
                Name::Known(i) => NAMES[usize::from(*i) % NAMES.len()].to_owned(),
                Name::Other(name) => name.clone(),
            };
            let value = match value {
                Value::Text(text) => text.clone().into_bytes(),
                Value::Number(n) => n.to_string().into_bytes(),
                Value::Bytes(bytes) => bytes.clone(),
            };
            (name, value)
        })
        .collect();
    let read = match redis_decode("fuzz", &id, fields) {
        Ok(read) => read,
        // Refused; what the dead letters keep was built without panicking.
        Err((_reason, _kept)) => return,
    };
    let written = redis_encode(&Draft::from_envelope(&read))
        .unwrap_or_else(|e| panic!("an entry that reads does not write back: {e}"));
    let again = redis_decode("fuzz", &id, written.clone())
        .unwrap_or_else(|(e, _)| panic!("an entry written back does not read: {e}\n{written:?}"));
    assert_same(
        &read,
        &again,
        "read from an entry, written back, read again",
    );
});
