//! Plumbing for the code `eventbus-macros` generates. Not public API: names
//! and signatures here change without notice.

pub use inventory;
pub use serde;
pub use serde_json;

pub use crate::future::BoxFuture;
pub use crate::handler::{
    Backoff, EventParam, HandlerOptions, HandlerRegistration, HandlerReturn, StateRequirement,
};
pub use crate::store::Start;

use crate::event::{CodecError, Event, finite};

/// Serializes with the derive's generated `Serialize` wrapper.
///
/// # Errors
///
/// [`CodecError::Encode`] when a field fails to serialize or a float is NaN
/// or infinite.
pub fn encode_json<E: Event, T: serde::Serialize + ?Sized>(
    value: &T,
) -> Result<Vec<u8>, CodecError> {
    finite::to_vec(value).map_err(CodecError::encode::<E>)
}

/// Deserializes `data` with the derive's generated function, rejecting
/// trailing input.
///
/// # Errors
///
/// [`CodecError::Decode`] naming the topic and serde_json's line and column.
pub fn decode_json<E: Event, T>(
    topic: &str,
    data: &[u8],
    f: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
    ) -> Result<T, serde_json::Error>,
) -> Result<T, CodecError> {
    let mut de = serde_json::Deserializer::from_slice(data);
    let value = f(&mut de).map_err(|e| CodecError::decode::<E>(topic, e))?;
    de.end().map_err(|e| CodecError::decode::<E>(topic, e))?;
    Ok(value)
}

/// Accepts the data of a unit variant: empty, `null` or `{}`.
///
/// # Errors
///
/// [`CodecError::Decode`] for anything else.
pub fn decode_unit<E: Event>(topic: &str, data: &[u8]) -> Result<(), CodecError> {
    let trimmed = data.trim_ascii();
    if trimmed.is_empty() {
        return Ok(());
    }
    match serde_json::from_slice::<serde_json::Value>(trimmed) {
        Ok(serde_json::Value::Null) => Ok(()),
        Ok(serde_json::Value::Object(map)) if map.is_empty() => Ok(()),
        Ok(other) => Err(CodecError::decode::<E>(
            topic,
            format_args!("a unit variant carries no data (null or {{}}), got {other}"),
        )),
        Err(e) => Err(CodecError::decode::<E>(topic, e)),
    }
}

const MESSAGE_CAPACITY: usize = 1024;

/// A compile-time message, built in `const fn`s so that a failed check can
/// `panic!("{}", ...)` during const evaluation with a precise text.
pub struct ConstMessage {
    buf: [u8; MESSAGE_CAPACITY],
    len: usize,
}

impl std::fmt::Debug for ConstMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ConstMessage").field(&self.as_str()).finish()
    }
}

impl ConstMessage {
    const fn new() -> Self {
        ConstMessage {
            buf: [0; MESSAGE_CAPACITY],
            len: 0,
        }
    }

    const fn push(mut self, s: &str) -> Self {
        let bytes = s.as_bytes();
        let mut i = 0;
        // Pushing whole strings only keeps the buffer valid UTF-8.
        if self.len + bytes.len() > MESSAGE_CAPACITY {
            return self;
        }
        while i < bytes.len() {
            self.buf[self.len] = bytes[i];
            self.len += 1;
            i += 1;
        }
        self
    }

    /// Whether the check found a problem.
    pub const fn is_error(&self) -> bool {
        self.len > 0
    }

    /// The message text.
    pub const fn as_str(&self) -> &str {
        match core::str::from_utf8(self.buf.split_at(self.len).0) {
            Ok(s) => s,
            Err(_) => "",
        }
    }
}

/// Checks at compile time that a handler's pattern matches at least one of
/// `topics`, those of the event type named `event`; the message names the
/// type and all its topics.
pub const fn check_handler_pattern(pattern: &str, event: &str, topics: &[&str]) -> ConstMessage {
    let mut msg = ConstMessage::new();
    if eventbus_topic::matches_any(pattern, topics) {
        return msg;
    }
    msg = msg.push("handler pattern `").push(pattern);
    msg = msg.push("` matches no topic of event type `").push(event);
    msg = msg.push("`; its topics are: ");
    let mut i = 0;
    while i < topics.len() {
        if i > 0 {
            msg = msg.push(", ");
        }
        msg = msg.push("`").push(topics[i]).push("`");
        i += 1;
    }
    msg
}

/// Ways in for the fuzz targets (the `fuzz/` crate) to parsers and codecs
/// that are not public API: thin wrappers, no logic of their own.
#[doc(hidden)]
pub mod fuzz {
    #[cfg(feature = "nats")]
    pub use async_nats::HeaderMap;
    #[cfg(feature = "nats")]
    use chrono::{DateTime, Utc};

    #[cfg(feature = "nats")]
    use crate::envelope::{Draft, RawEnvelope};
    #[cfg(feature = "nats")]
    use crate::store::nats::wire;

    /// Checks a store URL as opening it would, opening nothing.
    ///
    /// # Errors
    ///
    /// What opening the store would report about the URL.
    #[cfg(all(feature = "sqlite", feature = "nats"))]
    pub fn check_store_url(url: &str) -> crate::Result<()> {
        crate::store::check_url(url)
    }

    /// The headers and body the `nats://` store publishes for a draft.
    ///
    /// # Errors
    ///
    /// When the draft's time or data cannot be written.
    #[cfg(feature = "nats")]
    pub fn nats_encode(draft: &Draft) -> Result<(HeaderMap, bytes::Bytes), String> {
        wire::encode(draft)
    }

    /// The envelope the `nats://` store reads from a message stored at
    /// `seq` on `topic`'s subject, in a stream created at `published`.
    ///
    /// # Errors
    ///
    /// What makes the message unreadable.
    #[cfg(feature = "nats")]
    pub fn nats_decode(
        topic: &str,
        seq: u64,
        published: DateTime<Utc>,
        headers: Option<&HeaderMap>,
        body: &[u8],
    ) -> Result<RawEnvelope, String> {
        let origin = wire::Origin::new("FUZZ", published);
        wire::decode(&origin, topic, seq, published, headers, body)
    }
}
