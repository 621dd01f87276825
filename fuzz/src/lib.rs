//! Helpers shared by the fuzz targets in `fuzz_targets/`.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use eventbus::RawEnvelope;

/// Asserts that two envelopes hold the same event: every attribute, the
/// header types and the data text. `RawEnvelope` has no `PartialEq` (its
/// data may be a typed value), so the comparison goes through what a
/// reader of the envelope can see.
pub fn assert_same(a: &RawEnvelope, b: &RawEnvelope, trip: &str) {
    assert_same_but_data(a, b, trip);
    assert_eq!(data(a), data(b), "{trip}: data");
}

/// [`assert_same`] without the data, for trips that change its white space.
pub fn assert_same_but_data(a: &RawEnvelope, b: &RawEnvelope, trip: &str) {
    assert_eq!(a.id(), b.id(), "{trip}: id");
    assert_eq!(a.id().to_string(), b.id().to_string(), "{trip}: id text");
    assert_eq!(a.topic(), b.topic(), "{trip}: topic");
    assert_eq!(a.time(), b.time(), "{trip}: time");
    assert_eq!(a.source(), b.source(), "{trip}: source");
    assert_eq!(a.subject(), b.subject(), "{trip}: subject");
    assert_eq!(a.dataschema(), b.dataschema(), "{trip}: dataschema");
    assert_eq!(
        a.correlation_id(),
        b.correlation_id(),
        "{trip}: correlation id"
    );
    assert_eq!(a.causation_id(), b.causation_id(), "{trip}: causation id");
    assert_eq!(
        a.idempotency_key(),
        b.idempotency_key(),
        "{trip}: idempotency key"
    );
    assert_eq!(a.headers(), b.headers(), "{trip}: headers");
    assert_eq!(a.event_name(), b.event_name(), "{trip}: event name");
    assert_eq!(
        a.event_version(),
        b.event_version(),
        "{trip}: event version"
    );
    assert_eq!(a.seq(), b.seq(), "{trip}: seq");
}

/// The data's JSON text; an envelope read from outside always has it.
pub fn data(env: &RawEnvelope) -> String {
    env.data_json()
        .expect("data read from JSON is JSON")
        .get()
        .to_owned()
}

/// Text over the topic alphabet plus the wildcards and a character no
/// token may hold, so that random bytes become topics and patterns often
/// enough to reach matching instead of being refused outright.
pub fn grammar_text(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 8] = b"ab.*>-_ ";
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b % 8)]))
        .collect()
}

/// The output of a future that needs no waking, such as an append to a
/// memory store.
///
/// # Panics
///
/// When the future is not ready at its first poll.
pub fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the future waits, though nothing here can wake it"),
    }
}
