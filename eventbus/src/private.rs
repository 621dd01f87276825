//! Plumbing for the code `eventbus-macros` generates. Not public API: names
//! and signatures here change without notice.

pub use inventory;
pub use serde;
pub use serde_json;

pub use crate::event::{EventRegistration, UpgradeFn};
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

/// Checks at compile time that a handler's pattern matches at least one topic
/// of its event type; the message names the type and all its topics.
pub const fn check_handler_pattern<E: Event>(pattern: &str) -> ConstMessage {
    let mut msg = ConstMessage::new();
    if eventbus_topic::matches_any(pattern, E::TOPICS) {
        return msg;
    }
    msg = msg.push("handler pattern `").push(pattern);
    msg = msg.push("` matches no topic of event type `").push(E::NAME);
    msg = msg.push("`; its topics are: ");
    let mut i = 0;
    while i < E::TOPICS.len() {
        if i > 0 {
            msg = msg.push(", ");
        }
        msg = msg.push("`").push(E::TOPICS[i]).push("`");
        i += 1;
    }
    msg
}

/// Reads data stored by any version of `E` this build knows and writes it
/// as the current version: the catalog's entry point for migrations.
///
/// # Errors
///
/// Those of [`Event::decode_stored`] and [`Event::encode_data`].
pub fn upgrade<E: Event>(topic: &str, version: u32, data: &[u8]) -> Result<Vec<u8>, CodecError> {
    E::decode_stored(topic, version, data)?.encode_data()
}

/// The schemas of a type built without the `schema` feature: none.
pub fn no_schemas() -> Vec<serde_json::Value> {
    Vec::new()
}

/// The steps of the upcaster chains the derive writes in
/// `decode_stored`: reading the stored data, and moving between typed
/// shapes and JSON; every failure names the version being read.
pub mod upcast {
    pub use serde_json::Value;

    use crate::event::{CodecError, Event};

    fn failed<E: Event>(topic: &str, version: u32, e: impl std::fmt::Display) -> CodecError {
        CodecError::decode::<E>(topic, format!("as version {version}: {e}"))
    }

    /// The stored data as JSON, for a raw upcaster.
    ///
    /// # Errors
    ///
    /// [`CodecError::Decode`] when the data is not JSON.
    pub fn json<E: Event>(topic: &str, version: u32, data: &[u8]) -> Result<Value, CodecError> {
        serde_json::from_slice(data).map_err(|e| failed::<E>(topic, version, e))
    }

    /// The stored data as the old shape a typed upcaster takes.
    ///
    /// # Errors
    ///
    /// [`CodecError::Decode`] when the data does not fit that shape.
    pub fn typed<E: Event, T: serde::de::DeserializeOwned>(
        topic: &str,
        version: u32,
        data: &[u8],
    ) -> Result<T, CodecError> {
        serde_json::from_slice(data).map_err(|e| failed::<E>(topic, version, e))
    }

    /// A raw upcaster's JSON as the shape the next, typed, one takes.
    ///
    /// # Errors
    ///
    /// [`CodecError::Decode`] when the JSON does not fit that shape.
    pub fn from_json<E: Event, T: serde::de::DeserializeOwned>(
        topic: &str,
        version: u32,
        value: Value,
    ) -> Result<T, CodecError> {
        serde_json::from_value(value).map_err(|e| failed::<E>(topic, version, e))
    }

    /// A typed upcaster's output as JSON, for the next, raw, one.
    ///
    /// # Errors
    ///
    /// [`CodecError::Decode`] when the value does not serialize.
    pub fn to_json<E: Event, T: serde::Serialize>(
        topic: &str,
        version: u32,
        value: &T,
    ) -> Result<Value, CodecError> {
        serde_json::to_value(value).map_err(|e| failed::<E>(topic, version, e))
    }

    /// The last raw upcaster's JSON, read as the current version.
    ///
    /// # Errors
    ///
    /// Those of [`Event::decode_data`].
    pub fn finish<E: Event>(topic: &str, value: Value) -> Result<E, CodecError> {
        let data = serde_json::to_vec(&value).map_err(|e| CodecError::decode::<E>(topic, e))?;
        E::decode_data(topic, &data)
    }
}

/// The JSON Schemas the derive writes into the catalog (feature `schema`).
#[cfg(feature = "schema")]
pub mod schema {
    use std::marker::PhantomData;

    pub use schemars;
    use schemars::generate::SchemaSettings;
    use schemars::{JsonSchema, Schema, SchemaGenerator};

    /// A field type, probed for a JSON Schema by method resolution:
    /// `(&&Probe::<T>(PhantomData)).field_schema(g)` finds [`ViaJsonSchema`]
    /// when `T: JsonSchema`, and [`ViaAnything`] otherwise, so a field of a
    /// type without a schema never fails the build.
    #[derive(Debug)]
    pub struct Probe<T: ?Sized>(pub PhantomData<T>);

    /// The schema of a field type that has one.
    pub trait ViaJsonSchema {
        /// The field's schema.
        fn field_schema(&self, generator: &mut SchemaGenerator) -> Schema;
    }

    impl<T: JsonSchema + ?Sized> ViaJsonSchema for &Probe<T> {
        fn field_schema(&self, generator: &mut SchemaGenerator) -> Schema {
            generator.subschema_for::<T>()
        }
    }

    /// A schema that accepts anything, for a field type without one.
    pub trait ViaAnything {
        /// A schema saying why it accepts anything.
        fn field_schema(&self, generator: &mut SchemaGenerator) -> Schema;
    }

    impl<T: ?Sized> ViaAnything for Probe<T> {
        fn field_schema(&self, _: &mut SchemaGenerator) -> Schema {
            let why = format!(
                "any JSON: `{}` does not implement schemars::JsonSchema",
                std::any::type_name::<T>()
            );
            schemars::json_schema!({ "description": why })
        }
    }

    /// The schema of one topic's data, from its shadow type: JSON Schema
    /// draft 07 (what AsyncAPI 3.0 payloads are), with every subschema
    /// inlined so that it stands alone inside any document.
    pub fn of<T: JsonSchema>() -> serde_json::Value {
        let generator = SchemaSettings::draft07()
            .with(|s| s.inline_subschemas = true)
            .into_generator();
        let mut schema = generator.into_root_schema_for::<T>().to_value();
        if let Some(object) = schema.as_object_mut() {
            object.remove("$schema");
        }
        schema
    }
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
