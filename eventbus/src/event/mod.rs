//! The [`Event`] trait: what `#[derive(Event)]` implements.

pub(crate) mod finite;

use std::fmt;

/// A type that can travel on the bus.
///
/// Implement it with `#[derive(Event)]`, which also generates the codec,
/// and serde impls that write and read the same data (`Serialize`, and
/// `Deserialize` for structs; `#[event(serde = false)]` leaves them to the
/// type's own derive); see the [crate docs](crate) for the attribute keys. On the wire an event is its
/// topic plus `data`, the JSON of the value's own content: for an enum variant
/// `OrderEvent::Placed { id: 7, cents: 1250 }` the data is
/// `{"id":7,"cents":1250}`, not serde's externally tagged form, so a client in
/// any language can produce and read events.
///
/// # Examples
///
/// ```
/// use eventbus::prelude::*;
///
/// #[derive(Event, Clone, Debug, PartialEq)]
/// #[event(namespace = "order")]
/// enum OrderEvent {
///     Placed { id: u64, cents: u64 },
///     Shipped(u64),
///     #[event(topic = "order.cancelled.by_customer")]
///     Cancelled { id: u64, reason: String },
/// }
///
/// assert_eq!(
///     OrderEvent::TOPICS,
///     ["order.placed", "order.shipped", "order.cancelled.by_customer"]
/// );
/// let placed = OrderEvent::Placed { id: 7, cents: 1250 };
/// assert_eq!(placed.topic(), "order.placed");
/// assert_eq!(placed.encode_data()?, br#"{"id":7,"cents":1250}"#);
/// assert_eq!(OrderEvent::decode_data("order.shipped", b"9")?, OrderEvent::Shipped(9));
/// // serde writes the same data.
/// assert_eq!(serde_json::to_string(&placed).unwrap(), r#"{"id":7,"cents":1250}"#);
/// # Ok::<(), eventbus::CodecError>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an eventbus event",
    label = "not an `Event`",
    note = "an event is a struct or enum with `#[derive(Event)]` and `#[event(topic = \"...\")]`, \
            passed by value rather than behind a reference or inside a wrapper"
)]
pub trait Event: Send + Sync + Sized + 'static {
    /// A stable name for the type, stored with every event (default: the
    /// type's identifier; set it with `#[event(name = "...")]`).
    const NAME: &'static str;
    /// The schema version, stored with every event so old events can be
    /// upcast later (default 1; set it with `#[event(version = N)]`).
    const VERSION: u32;
    /// Every concrete topic a value of this type can have.
    const TOPICS: &'static [&'static str];

    /// The topic of this value.
    fn topic(&self) -> &'static str;

    /// Encodes the value's own content as JSON (the CloudEvents `data`).
    ///
    /// # Errors
    ///
    /// Fails when a field's `Serialize` implementation fails, or when a
    /// float is NaN or infinite: JSON cannot hold those, and serde_json's
    /// `null` in their place would not read back as the value.
    fn encode_data(&self) -> Result<Vec<u8>, CodecError>;

    /// Decodes a value from its topic and JSON `data`.
    ///
    /// # Errors
    ///
    /// Fails, never panics, when the topic is not one of [`Event::TOPICS`]
    /// or the data does not fit the topic's shape.
    fn decode_data(topic: &str, data: &[u8]) -> Result<Self, CodecError>;
}

/// Why an event could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The topic does not belong to the event type.
    #[error("topic `{topic}` is not a topic of event type `{event}` (its topics: {})", .topics.join(", "))]
    UnknownTopic {
        /// The topic that was given.
        topic: String,
        /// The event type's [`Event::NAME`].
        event: &'static str,
        /// The event type's topics.
        topics: &'static [&'static str],
    },
    /// The data is not valid JSON or does not fit the topic's shape.
    #[error("data for `{topic}` does not decode into `{event}`: {reason}")]
    Decode {
        /// The topic being decoded.
        topic: String,
        /// The event type's [`Event::NAME`].
        event: &'static str,
        /// serde_json's explanation, with line and column.
        reason: String,
    },
    /// A field failed to serialize, or holds a NaN or infinite float.
    #[error("event `{event}` does not encode: {reason}")]
    Encode {
        /// The event type's [`Event::NAME`].
        event: &'static str,
        /// serde_json's explanation, or the path to the non-finite float
        /// (`readings[2].celsius`).
        reason: String,
    },
}

impl CodecError {
    /// The error for a topic that `E` does not have.
    pub fn unknown_topic<E: Event>(topic: &str) -> Self {
        CodecError::UnknownTopic {
            topic: topic.to_owned(),
            event: E::NAME,
            topics: E::TOPICS,
        }
    }

    pub(crate) fn decode<E: Event>(topic: &str, reason: impl fmt::Display) -> Self {
        CodecError::Decode {
            topic: topic.to_owned(),
            event: E::NAME,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn encode<E: Event>(reason: impl fmt::Display) -> Self {
        CodecError::Encode {
            event: E::NAME,
            reason: reason.to_string(),
        }
    }
}
