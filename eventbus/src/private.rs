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
pub use crate::saga::{StepDef, StepKind, run_step};
pub use crate::store::Start;

use crate::event::{CodecError, Event, finite};

/// The `TypeId` of a value's type: of a `#[handler]` function item, which
/// has a type of its own that no one can write down.
pub fn type_id_of_val<T: 'static>(_: &T) -> std::any::TypeId {
    std::any::TypeId::of::<T>()
}

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

/// A type `#[derive(Event)]` can write and read as a field of an event's
/// data: one with serde's `Serialize` and `Deserialize`.
///
/// The derive reaches each field's serde impls through this trait, with the
/// path spanned on the field's type, so a field type without them is one
/// error there, in these words, rather than several inside serde's
/// generated code.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a field of an event: it must implement serde's `Serialize` and `Deserialize`",
    label = "needs `Serialize` and `Deserialize`",
    note = "an event's data is the JSON serde makes of its fields: derive `serde::Serialize` and \
            `serde::Deserialize` for `{Self}`, or give the field `#[serde(with = \"...\")]`, or \
            `#[serde(skip)]` to leave it out"
)]
pub trait EventField: Sized {
    /// Writes the field with its `Serialize`.
    ///
    /// # Errors
    ///
    /// Those of the serializer.
    fn serialize_field<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;

    /// Reads the field with its `Deserialize`.
    ///
    /// # Errors
    ///
    /// Those of the deserializer.
    fn deserialize_field<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Self, D::Error>;
}

// Without this, a field type that fails the bounds is reported as missing
// `Serialize`, in serde's words, instead of in `EventField`'s.
#[diagnostic::do_not_recommend]
impl<T: serde::Serialize + serde::de::DeserializeOwned> EventField for T {
    fn serialize_field<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.serialize(serializer)
    }

    fn deserialize_field<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Self, D::Error> {
        T::deserialize(deserializer)
    }
}

/// How the derive reads field number `I` of an event type: implemented by
/// a marker type per event, one impl per field, each calling
/// [`EventField::deserialize_field`] for its own field type.
///
/// The impls are not generic, so a field type without serde fails inside
/// its own impl, once; serde's generated code only sees [`Field`], which is
/// `Deserialize` whatever the field type.
pub trait FieldCodec<const I: usize> {
    /// The field's type.
    type Value;

    /// Reads the field.
    ///
    /// # Errors
    ///
    /// Those of the deserializer.
    fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Self::Value, D::Error>;
}

/// Field number `I` of an event type, in the struct the derive deserializes
/// the event's data into: it reads exactly as the field's own type does
/// (an `Option` that is missing is `None`), through `M`'s [`FieldCodec`].
pub struct Field<M: FieldCodec<I>, const I: usize>(pub M::Value);

impl<'de, M: FieldCodec<I>, const I: usize> serde::Deserialize<'de> for Field<M, I> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        M::deserialize(deserializer).map(Field)
    }
}

/// For `#[serde(default)]` on the field, which asks serde for the field
/// type's default.
impl<M: FieldCodec<I>, const I: usize> Default for Field<M, I>
where
    M::Value: Default,
{
    fn default() -> Self {
        Field(M::Value::default())
    }
}

impl<M: FieldCodec<I>, const I: usize> std::fmt::Debug for Field<M, I>
where
    M::Value: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The data of a unit struct as plain serde reads it: `null` or `{}`, as
/// [`decode_unit`] accepts (less the empty input, which is no JSON value).
#[derive(Debug)]
pub struct UnitData;

impl<'de> serde::Deserialize<'de> for UnitData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UnitData;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("no data (null or {})")
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<UnitData, E> {
                Ok(UnitData)
            }

            fn visit_none<E: serde::de::Error>(self) -> Result<UnitData, E> {
                Ok(UnitData)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UnitData, A::Error> {
                match map.next_key::<serde::de::IgnoredAny>()? {
                    None => Ok(UnitData),
                    Some(_) => Err(serde::de::Error::invalid_length(1, &self)),
                }
            }
        }

        deserializer.deserialize_any(Visitor)
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

    /// Appends `n` in decimal.
    const fn push_count(self, n: usize) -> Self {
        let mut digits = [0u8; 20];
        let mut len = 0;
        let mut rest = n;
        loop {
            digits[digits.len() - 1 - len] = b'0' + (rest % 10) as u8;
            len += 1;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        match core::str::from_utf8(digits.split_at(digits.len() - len).1) {
            Ok(text) => self.push(text),
            Err(_) => self,
        }
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
    explain_no_match(msg, pattern, topics)
}

/// Says why `pattern` matched none of `topics`, when a near miss shows it:
/// a difference in case, a `>` with nothing left to stand for, or a
/// pattern longer or shorter than every topic.
const fn explain_no_match(msg: ConstMessage, pattern: &str, topics: &[&str]) -> ConstMessage {
    let mut i = 0;
    while i < topics.len() {
        if eventbus_topic::matches_ignore_ascii_case(pattern, topics[i]) {
            return msg
                .push("; topics are case-sensitive, and ignoring case the pattern would match `")
                .push(topics[i])
                .push("`");
        }
        i += 1;
    }
    let bytes = pattern.as_bytes();
    let tail = bytes.len() > 2 && bytes[bytes.len() - 1] == b'>' && bytes[bytes.len() - 2] == b'.';
    if tail && let Ok(head) = core::str::from_utf8(bytes.split_at(bytes.len() - 2).0) {
        let mut i = 0;
        while i < topics.len() {
            if eventbus_topic::matches(head, topics[i]) {
                return msg
                    .push("; `>` stands for one or more further tokens, so `")
                    .push(pattern)
                    .push("` does not match `")
                    .push(topics[i])
                    .push("` itself: write `")
                    .push(head)
                    .push("` to receive it");
            }
            i += 1;
        }
    }
    let needed = token_count(pattern);
    let (mut shortest, mut longest) = (usize::MAX, 0);
    let mut i = 0;
    while i < topics.len() {
        let n = token_count(topics[i]);
        if n < shortest {
            shortest = n;
        }
        if n > longest {
            longest = n;
        }
        i += 1;
    }
    if needed > longest {
        let (at_least, wildcards) = if tail {
            ("at least ", " (`>` stands for one or more)")
        } else {
            ("", "")
        };
        return msg
            .push("; the pattern needs ")
            .push(at_least)
            .push_count(needed)
            .push(" tokens")
            .push(wildcards)
            .push(" and no topic has more than ")
            .push_count(longest);
    }
    if !tail && needed < shortest {
        let under = ConstMessage::new().push(pattern).push(".>");
        if eventbus_topic::matches_any(under.as_str(), topics) {
            return msg
                .push("; a pattern matches whole topics, and `")
                .push(pattern)
                .push("` is shorter than every one: `")
                .push(under.as_str())
                .push("` would match those under it");
        }
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

    /// The schema of `null`, the data of a unit struct or variant.
    pub fn null() -> serde_json::Value {
        serde_json::json!({ "type": "null" })
    }

    /// A schema that accepts anything, for data read as another type.
    pub fn any() -> serde_json::Value {
        serde_json::json!({ "description": "any JSON: the type reads its data as another type" })
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

/// The number of dot-separated tokens in a topic or pattern.
const fn token_count(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut count = 1;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'.' {
            count += 1;
        }
        i += 1;
    }
    count
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
    #[cfg(feature = "redis")]
    use crate::store::redis::entry;

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

    /// The fields the `redis://` store writes for an event, in order.
    ///
    /// # Errors
    ///
    /// When the draft's time or data cannot be written.
    #[cfg(feature = "redis")]
    pub fn redis_encode(draft: &crate::envelope::Draft) -> Result<Vec<(String, Vec<u8>)>, String> {
        let data = draft.data_bytes().map_err(|e| e.to_string())?;
        let mut fields = Vec::new();
        entry::encode(draft, &data, |name, value| {
            fields.push((name.to_owned(), value.to_vec()));
        })?;
        Ok(fields)
    }

    /// The envelope the `redis://` store under `prefix` reads from the
    /// stream entry `id` with these fields, or, when it is not a readable
    /// event, the reason and what the dead letters would keep of it.
    #[cfg(feature = "redis")]
    pub fn redis_decode(
        prefix: &str,
        id: &str,
        fields: Vec<(String, Vec<u8>)>,
    ) -> Result<crate::envelope::RawEnvelope, (String, crate::envelope::RawEnvelope)> {
        let entry = entry::Entry {
            id: id.to_owned(),
            fields,
        };
        entry::decode(prefix, &entry).map_err(|reason| {
            let seq = entry::seq_of(id).unwrap_or(0);
            (reason, entry::unreadable(prefix, &entry, seq))
        })
    }
}

/// A field every variant of an event type has, with one type (`T`),
/// named by the hash of its name ([`field_hash`]): `#[derive(Event)]`
/// implements it for each such field, and `#[saga(key = "...")]` reads a
/// step's correlation value through it. The field's type is a parameter,
/// not an associated type, so a private field type stays private.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no field named by the saga's `key` (in every variant, with one type)",
    label = "this event does not carry the saga's correlation field",
    note = "each `#[start]` and `#[on]` event needs the field `#[saga(key = \"...\")]` names, \
            in every variant of an enum; or put the method on an event type that has it"
)]
pub trait HasField<const NAME: u64, T: ?Sized> {
    /// The field.
    fn field(&self) -> &T;
}

/// FNV-1a of a field's name: the `NAME` of [`HasField`]; the macros compute
/// the same at expansion time.
pub const fn field_hash(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// A correlation value as the text saga instances are keyed by.
#[diagnostic::on_unimplemented(
    message = "a saga's correlation field must be displayable text or a number, not `{Self}`",
    label = "this field cannot key a saga instance"
)]
pub trait CorrelationValue {
    /// The value as text.
    fn correlation_text(&self) -> String;
}

impl<T: std::fmt::Display + ?Sized> CorrelationValue for T {
    fn correlation_text(&self) -> String {
        self.to_string()
    }
}

/// A saga step's event, decoded; `E` comes from `decode`, the event
/// type's `decode_data`, named through a path spanned on the type the step
/// takes, so a step taking no event is one error there.
///
/// # Errors
///
/// [`HandlingError::Decode`](crate::HandlingError::Decode).
pub fn decode_step<E: Event>(
    raw: &crate::RawEnvelope,
    decode: fn(&str, &[u8]) -> Result<E, CodecError>,
) -> Result<crate::Envelope<E>, crate::HandlingError> {
    let _ = decode;
    crate::Envelope::<E>::from_raw(raw).map_err(crate::HandlingError::Decode)
}

/// The correlation value of a saga step's event, read with `field`, the
/// event type's [`HasField`] for the field `#[saga(key = "...")]` names.
///
/// # Errors
///
/// The event's decode error.
pub fn saga_key<E, T>(raw: &crate::RawEnvelope, field: fn(&E) -> &T) -> Result<String, CodecError>
where
    E: Event,
    T: CorrelationValue + ?Sized,
{
    let envelope = crate::Envelope::<E>::from_raw(raw)?;
    Ok(field(envelope.event()).correlation_text())
}

#[cfg(test)]
mod tests {
    use super::check_handler_pattern;

    const TOPICS: &[&str] = &[
        "order.placed",
        "order.shipped",
        "order.cancelled.by_customer",
    ];

    fn message(pattern: &str) -> String {
        check_handler_pattern(pattern, "OrderEvent", TOPICS)
            .as_str()
            .to_owned()
    }

    #[test]
    fn a_matching_pattern_is_no_error() {
        for pattern in ["order.*", "order.>", "order.placed", ">"] {
            assert!(!check_handler_pattern(pattern, "OrderEvent", TOPICS).is_error());
        }
    }

    #[test]
    fn the_message_lists_the_topics() {
        assert_eq!(
            message("invoice.*"),
            "handler pattern `invoice.*` matches no topic of event type `OrderEvent`; its topics \
             are: `order.placed`, `order.shipped`, `order.cancelled.by_customer`"
        );
    }

    #[test]
    fn near_misses_are_explained() {
        let explained = [
            (
                "Order.Placed",
                "topics are case-sensitive, and ignoring case the pattern would match \
                 `order.placed`",
            ),
            (
                "order.placed.>",
                "`>` stands for one or more further tokens, so `order.placed.>` does not match \
                 `order.placed` itself: write `order.placed` to receive it",
            ),
            (
                "order.*.x.>",
                "the pattern needs at least 4 tokens (`>` stands for one or more) and no topic \
                 has more than 3",
            ),
            (
                "a.b.c.d",
                "the pattern needs 4 tokens and no topic has more than 3",
            ),
            (
                "order",
                "a pattern matches whole topics, and `order` is shorter than every one: \
                 `order.>` would match those under it",
            ),
        ];
        for (pattern, why) in explained {
            let message = message(pattern);
            assert!(message.ends_with(&format!("; {why}")), "{message}");
        }
    }
}
