//! Envelopes: an event plus its metadata, shared through `Arc` so fan-out to
//! any number of handlers never clones or re-serializes it.
//!
//! [`RawEnvelope`] is the type-erased form the bus, the stores and history
//! work with; [`Envelope<E>`] is the typed view a handler or subscriber gets.
//! Both serialize as CloudEvents 1.0 structured events (see [`cloudevent`]).

pub mod cloudevent;
mod headers;
mod id;
mod scope;
pub(crate) mod strict;

use std::any::Any;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use crate::event::{CodecError, Event};

pub use headers::{
    HANDLER_HEADER, HeaderKind, HeaderValue, IntoHeaderValue, REPLAY_HEADER, validate_header_name,
};
pub use id::EventId;
pub use scope::{SCOPE_HEADER, Scope};

/// Everything about an event except its data.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Metadata {
    pub(crate) id: EventId,
    pub(crate) topic: Cow<'static, str>,
    pub(crate) time: DateTime<Utc>,
    pub(crate) source: Arc<str>,
    /// The CloudEvents `subject`: what the event is about within its
    /// source, such as an entity id.
    pub(crate) subject: Option<String>,
    /// The CloudEvents `dataschema`: a URI naming the data's schema.
    pub(crate) dataschema: Option<String>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) causation_id: Option<String>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) headers: BTreeMap<String, HeaderValue>,
    pub(crate) seq: u64,
    pub(crate) event_name: Cow<'static, str>,
    pub(crate) event_version: u32,
    /// Its position in its entity's stream (1, 2, ...), for events
    /// appended through an aggregate repository.
    pub(crate) stream_version: Option<u64>,
}

#[cfg(any(feature = "nats", feature = "redis"))]
impl Metadata {
    /// The metadata of data that came without any: from a client that
    /// wrote a bare message or entry, or an entry that no longer reads.
    pub(crate) fn bare(
        id: EventId,
        topic: String,
        time: DateTime<Utc>,
        source: &str,
        seq: u64,
    ) -> Self {
        Metadata {
            id,
            topic: Cow::Owned(topic),
            time,
            source: Arc::from(source),
            subject: None,
            dataschema: None,
            correlation_id: None,
            causation_id: None,
            idempotency_key: None,
            headers: BTreeMap::new(),
            seq,
            event_name: Cow::Borrowed(""),
            event_version: 1,
            stream_version: None,
        }
    }
}

/// A typed event kept as the value itself, so in-process delivery never
/// serializes it.
pub(crate) trait AnyEvent: Any + Send + Sync {
    fn encode(&self) -> Result<Vec<u8>, CodecError>;
}

impl<E: Event> AnyEvent for E {
    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        self.encode_data()
    }
}

#[derive(Clone)]
pub(crate) enum Payload {
    /// Published in this process: the value itself.
    Typed(Arc<dyn AnyEvent>),
    /// Read from a store or the wire: JSON, decoded by each reader's type.
    Json(Box<RawValue>),
}

impl Payload {
    fn to_json(&self) -> Result<Cow<'_, RawValue>, CodecError> {
        match self {
            Payload::Json(raw) => Ok(Cow::Borrowed(raw)),
            Payload::Typed(value) => {
                let bytes = value.encode()?;
                // Event::encode_data produces JSON text; RawValue only re-checks it.
                let text = String::from_utf8(bytes).map_err(|e| CodecError::Encode {
                    event: "unknown",
                    reason: e.to_string(),
                })?;
                RawValue::from_string(text)
                    .map(Cow::Owned)
                    .map_err(|e| CodecError::Encode {
                        event: "unknown",
                        reason: e.to_string(),
                    })
            }
        }
    }
}

struct Inner {
    meta: Metadata,
    payload: Payload,
    /// Set when a draft is sealed, taken by the first to route it: an
    /// envelope a store hands back for a repeat (an import of a stored id,
    /// a repeated idempotency key) was routed already, or was read back.
    unrouted: AtomicBool,
}

/// A stored event whose type is not known statically: metadata plus data.
///
/// History queries return these; [`RawEnvelope::decode`] turns one into an
/// [`Envelope<E>`]. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct RawEnvelope {
    inner: Arc<Inner>,
}

/// An event that is not yet stored: everything but its seq.
///
/// [`Store`](crate::store::Store) implementations receive drafts and turn
/// them into [`RawEnvelope`]s with [`Draft::seal`] once they have a seq.
/// Cloning one shares its data.
#[derive(Clone)]
pub struct Draft {
    pub(crate) meta: Metadata,
    pub(crate) payload: Payload,
    /// Made from an envelope stored before (an import), so its id may
    /// already be in the store; a fresh publish has a fresh id.
    pub(crate) imported: bool,
}

impl fmt::Debug for Draft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.meta;
        f.debug_struct("Draft")
            .field("id", &m.id)
            .field("topic", &m.topic)
            .field("time", &m.time)
            .field("source", &m.source)
            .field("subject", &m.subject)
            .field("imported", &self.imported)
            .finish_non_exhaustive()
    }
}

impl Draft {
    pub(crate) fn new<E: Event>(event: E, source: Arc<str>) -> Self {
        let topic = Cow::Borrowed(event.topic());
        let name = Cow::Borrowed(E::NAME);
        Self::fresh(
            topic,
            name,
            E::VERSION,
            source,
            Payload::Typed(Arc::new(event)),
        )
    }

    /// A draft of JSON data for a topic chosen at run time, with no Rust
    /// type behind it (its `eventname` is empty).
    pub(crate) fn json(
        topic: crate::topic::Topic,
        data: Box<RawValue>,
        version: u32,
        source: Arc<str>,
    ) -> Self {
        let topic = Cow::Owned(topic.as_str().to_owned());
        Self::fresh(
            topic,
            Cow::Borrowed(""),
            version,
            source,
            Payload::Json(data),
        )
    }

    /// A new event: a fresh id and time, no optional metadata yet.
    fn fresh(
        topic: Cow<'static, str>,
        event_name: Cow<'static, str>,
        event_version: u32,
        source: Arc<str>,
        payload: Payload,
    ) -> Self {
        let (id, time) = EventId::stamped();
        Draft {
            meta: Metadata {
                id,
                topic,
                time,
                source,
                subject: None,
                dataschema: None,
                correlation_id: None,
                causation_id: None,
                idempotency_key: None,
                headers: BTreeMap::new(),
                seq: 0,
                event_name,
                event_version,
                stream_version: None,
            },
            payload,
            imported: false,
        }
    }

    /// A draft with the same metadata and data as a stored envelope, for
    /// moving history between stores; the seq is assigned anew.
    pub fn from_envelope(envelope: &RawEnvelope) -> Self {
        let mut meta = envelope.inner.meta.clone();
        meta.seq = 0;
        Draft {
            meta,
            payload: envelope.inner.payload.clone(),
            imported: true,
        }
    }

    /// The event id.
    pub fn id(&self) -> &EventId {
        &self.meta.id
    }

    /// The concrete topic.
    pub fn topic(&self) -> &str {
        &self.meta.topic
    }

    /// Whether the draft copies an envelope stored before (see
    /// [`Draft::from_envelope`]), so that its id may already be stored.
    pub fn is_imported(&self) -> bool {
        self.imported
    }

    /// When the event happened (for a scheduled one, when it is due).
    pub fn time(&self) -> DateTime<Utc> {
        self.meta.time
    }

    /// The idempotency key, if the publisher set one.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.meta.idempotency_key.as_deref()
    }

    /// The headers (CloudEvents extension attributes).
    pub fn headers(&self) -> &BTreeMap<String, HeaderValue> {
        &self.meta.headers
    }

    /// Sets a header; names were validated by the publisher.
    pub fn set_header(&mut self, name: impl Into<String>, value: impl Into<HeaderValue>) {
        self.meta.headers.insert(name.into(), value.into());
    }

    /// The CloudEvents `subject`, if the publisher set one.
    pub fn subject(&self) -> Option<&str> {
        self.meta.subject.as_deref()
    }

    /// The event data as JSON, encoding a typed value if needed.
    ///
    /// # Errors
    ///
    /// [`CodecError::Encode`] when the value does not serialize.
    pub fn data_json(&self) -> Result<Cow<'_, RawValue>, CodecError> {
        self.payload.to_json()
    }

    /// The event data as JSON text, without the check and copy that
    /// [`Draft::data_json`] makes of a freshly encoded value: for stores
    /// that only write the bytes.
    #[cfg(any(feature = "nats", feature = "redis"))]
    pub(crate) fn data_bytes(&self) -> Result<Cow<'_, [u8]>, CodecError> {
        match &self.payload {
            Payload::Json(raw) => Ok(Cow::Borrowed(raw.get().as_bytes())),
            Payload::Typed(value) => value.encode().map(Cow::Owned),
        }
    }

    /// Seals the draft into a stored envelope with its seq.
    pub fn seal(self, seq: u64) -> RawEnvelope {
        let mut meta = self.meta;
        meta.seq = seq;
        RawEnvelope {
            inner: Arc::new(Inner {
                meta,
                payload: self.payload,
                unrouted: AtomicBool::new(true),
            }),
        }
    }
}

impl RawEnvelope {
    pub(crate) fn meta(&self) -> &Metadata {
        &self.inner.meta
    }

    /// The event id: a UUID v7 for events published here (so they sort
    /// by creation time), any non-empty string for imported ones.
    pub fn id(&self) -> &EventId {
        &self.inner.meta.id
    }

    /// The concrete topic (the CloudEvents `type`).
    pub fn topic(&self) -> &str {
        &self.inner.meta.topic
    }

    /// When the event was published.
    pub fn time(&self) -> DateTime<Utc> {
        self.inner.meta.time
    }

    /// Who published it (the bus's source unless the publisher set one).
    pub fn source(&self) -> &str {
        &self.inner.meta.source
    }

    /// The CloudEvents `subject`: what the event is about within its
    /// source, such as the id of the entity it changes.
    pub fn subject(&self) -> Option<&str> {
        self.inner.meta.subject.as_deref()
    }

    /// The CloudEvents `dataschema`: a URI naming the schema of the data.
    pub fn dataschema(&self) -> Option<&str> {
        self.inner.meta.dataschema.as_deref()
    }

    /// The correlation id tying this event to a request or flow.
    pub fn correlation_id(&self) -> Option<&str> {
        self.inner.meta.correlation_id.as_deref()
    }

    /// The id of the event whose handling published this one.
    pub fn causation_id(&self) -> Option<&str> {
        self.inner.meta.causation_id.as_deref()
    }

    /// The publisher's idempotency key.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.inner.meta.idempotency_key.as_deref()
    }

    /// Free-form headers (CloudEvents extension attributes).
    pub fn headers(&self) -> &BTreeMap<String, HeaderValue> {
        &self.inner.meta.headers
    }

    /// One header by name, as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.meta.headers.get(name).map(HeaderValue::as_str)
    }

    /// One header by name, with its type.
    pub fn header_value(&self, name: &str) -> Option<&HeaderValue> {
        self.inner.meta.headers.get(name)
    }

    /// The scope the event was published in (`tenant-a/eu`), or `None`
    /// when it was published on a root bus; see [`Bus::scope`](crate::Bus::scope).
    pub fn scope(&self) -> Option<&str> {
        self.header(SCOPE_HEADER)
    }

    /// The position the store assigned; increasing in publish order.
    pub fn seq(&self) -> u64 {
        self.inner.meta.seq
    }

    /// The event type's stable name ([`Event::NAME`]) at publish time.
    pub fn event_name(&self) -> &str {
        &self.inner.meta.event_name
    }

    /// The version of its type the event was stored as (the publisher's
    /// [`Event::VERSION`]); decoding an older one runs the type's upcasters.
    pub fn event_version(&self) -> u32 {
        self.inner.meta.event_version
    }

    /// Its position in its entity's stream (1, 2, ...), when it was
    /// appended through an aggregate [`Repository`](crate::aggregate::Repository);
    /// the stream is its type's name and its `subject`.
    pub fn stream_version(&self) -> Option<u64> {
        self.inner.meta.stream_version
    }

    /// Whether this envelope is being replayed from history.
    pub fn is_replay(&self) -> bool {
        self.header(REPLAY_HEADER) == Some("true")
    }

    /// The event data as JSON.
    ///
    /// # Errors
    ///
    /// [`CodecError::Encode`] when a typed value does not serialize.
    pub fn data_json(&self) -> Result<Cow<'_, RawValue>, CodecError> {
        self.inner.payload.to_json()
    }

    /// The event data as a JSON value.
    ///
    /// # Errors
    ///
    /// [`CodecError::Encode`] when a typed value does not serialize.
    pub fn data_value(&self) -> Result<serde_json::Value, CodecError> {
        self.data::<serde_json::Value>()
    }

    /// The event data read as any serde type, whatever type published it.
    ///
    /// # Errors
    ///
    /// [`CodecError::Decode`] when the data does not fit `T`, and
    /// [`CodecError::Encode`] when a typed value does not serialize.
    pub fn data<T: serde::de::DeserializeOwned>(&self) -> Result<T, CodecError> {
        let json = self.data_json()?;
        serde_json::from_str(json.get()).map_err(|e| CodecError::Decode {
            topic: self.topic().to_owned(),
            event: std::any::type_name::<T>(),
            reason: e.to_string(),
        })
    }

    /// Decodes into a typed envelope. In-process events of type `E` are
    /// shared, not decoded.
    ///
    /// # Errors
    ///
    /// [`CodecError`] when the topic is not one of `E`'s or the data does not fit.
    pub fn decode<E: Event>(&self) -> Result<Envelope<E>, CodecError> {
        Envelope::from_raw(self)
    }

    /// Whether this envelope was just stored and nobody routed it yet;
    /// true once only.
    pub(crate) fn take_unrouted(&self) -> bool {
        self.inner.unrouted.swap(false, Ordering::AcqRel)
    }

    /// A copy marked as replayed, sharing the data.
    pub(crate) fn as_replay(&self) -> RawEnvelope {
        let mut meta = self.inner.meta.clone();
        meta.headers
            .insert(REPLAY_HEADER.to_owned(), HeaderValue::from("true"));
        RawEnvelope {
            inner: Arc::new(Inner {
                meta,
                payload: self.inner.payload.clone(),
                unrouted: AtomicBool::new(false),
            }),
        }
    }

    /// A copy with `seq` as its seq, for a store that learns an event's
    /// seq apart from the event (NATS entity streams).
    #[cfg(feature = "nats")]
    pub(crate) fn with_seq(&self, seq: u64) -> RawEnvelope {
        let mut meta = self.inner.meta.clone();
        meta.seq = seq;
        RawEnvelope {
            inner: Arc::new(Inner {
                meta,
                payload: self.inner.payload.clone(),
                unrouted: AtomicBool::new(false),
            }),
        }
    }

    pub(crate) fn from_parts(meta: Metadata, data: Box<RawValue>) -> Self {
        RawEnvelope {
            inner: Arc::new(Inner {
                meta,
                payload: Payload::Json(data),
                unrouted: AtomicBool::new(false),
            }),
        }
    }
}

impl fmt::Debug for RawEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.inner.meta;
        f.debug_struct("RawEnvelope")
            .field("seq", &m.seq)
            .field("id", &m.id)
            .field("topic", &m.topic)
            .field("time", &m.time)
            .field("source", &m.source)
            .field("subject", &m.subject)
            .field("correlation_id", &m.correlation_id)
            .field("causation_id", &m.causation_id)
            .field("idempotency_key", &m.idempotency_key)
            .field("headers", &m.headers)
            .finish_non_exhaustive()
    }
}

/// A typed event with its metadata.
///
/// Dereferences to the event, so `ev.cents` reads a field of the event while
/// `ev.id()` is the envelope's id. Cloning is cheap (two `Arc`s).
pub struct Envelope<E> {
    raw: RawEnvelope,
    event: Arc<E>,
}

impl<E: Event> Envelope<E> {
    /// The typed view of a stored envelope.
    ///
    /// # Errors
    ///
    /// [`CodecError`] when the topic is not one of `E`'s or the data does not fit.
    pub fn from_raw(raw: &RawEnvelope) -> Result<Self, CodecError> {
        Self::from_raw_owned(raw.clone())
    }

    /// The typed view of a stored envelope, taking it over.
    ///
    /// # Errors
    ///
    /// [`CodecError`] when the topic is not one of `E`'s or the data does not fit.
    pub fn from_raw_owned(raw: RawEnvelope) -> Result<Self, CodecError> {
        let event = match &raw.inner.payload {
            Payload::Typed(value) => {
                let any: Arc<dyn Any + Send + Sync> = value.clone();
                match any.downcast::<E>() {
                    Ok(event) => event,
                    // Another type published this topic: go through the wire form.
                    Err(_) => Arc::new(E::decode_stored(
                        raw.topic(),
                        raw.event_version(),
                        &value.encode()?,
                    )?),
                }
            }
            Payload::Json(data) => Arc::new(E::decode_stored(
                raw.topic(),
                raw.event_version(),
                data.get().as_bytes(),
            )?),
        };
        Ok(Envelope { raw, event })
    }
}

impl<E> Envelope<E> {
    /// The event.
    pub fn event(&self) -> &E {
        &self.event
    }

    /// The event, shared.
    pub fn event_arc(&self) -> &Arc<E> {
        &self.event
    }

    /// The untyped envelope, with the metadata accessors.
    pub fn raw(&self) -> &RawEnvelope {
        &self.raw
    }

    /// The untyped envelope.
    pub fn into_raw(self) -> RawEnvelope {
        self.raw
    }

    /// The event id (a UUID v7 when published here).
    pub fn id(&self) -> &EventId {
        self.raw.id()
    }

    /// The concrete topic.
    pub fn topic(&self) -> &str {
        self.raw.topic()
    }

    /// When the event was published.
    pub fn time(&self) -> DateTime<Utc> {
        self.raw.time()
    }

    /// Who published it.
    pub fn source(&self) -> &str {
        self.raw.source()
    }

    /// The CloudEvents `subject`, such as the id of the entity it changes.
    pub fn subject(&self) -> Option<&str> {
        self.raw.subject()
    }

    /// The correlation id.
    pub fn correlation_id(&self) -> Option<&str> {
        self.raw.correlation_id()
    }

    /// The id of the event whose handling published this one.
    pub fn causation_id(&self) -> Option<&str> {
        self.raw.causation_id()
    }

    /// The publisher's idempotency key.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.raw.idempotency_key()
    }

    /// One header by name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.raw.header(name)
    }

    /// The scope the event was published in, if any.
    pub fn scope(&self) -> Option<&str> {
        self.raw.scope()
    }

    /// Its position in its entity's stream, for aggregate events.
    pub fn stream_version(&self) -> Option<u64> {
        self.raw.stream_version()
    }

    /// The version of `E` the event was stored as. The event itself is
    /// always the current version: an older one was upcast on the way.
    pub fn stored_version(&self) -> u32 {
        self.raw.event_version()
    }

    /// The position the store assigned.
    pub fn seq(&self) -> u64 {
        self.raw.seq()
    }

    /// Whether this envelope is being replayed from history.
    pub fn is_replay(&self) -> bool {
        self.raw.is_replay()
    }
}

impl<E> Deref for Envelope<E> {
    type Target = E;

    fn deref(&self) -> &E {
        &self.event
    }
}

impl<E> Clone for Envelope<E> {
    fn clone(&self) -> Self {
        Envelope {
            raw: self.raw.clone(),
            event: Arc::clone(&self.event),
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for Envelope<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("seq", &self.seq())
            .field("id", &self.id())
            .field("topic", &self.topic())
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}
