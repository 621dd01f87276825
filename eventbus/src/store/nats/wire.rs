//! The wire format on NATS: CloudEvents binary content mode.
//!
//! The body is the event's `data`, as JSON, exactly as a plain NATS client
//! would publish it; the metadata travels in `ce-` headers
//! (`ce-specversion`, `ce-id`, `ce-source`, `ce-type` = the topic,
//! `ce-time`, the extension attributes `ce-correlationid`,
//! `ce-causationid`, `ce-idempotencykey`, `ce-eventname`, `ce-eventversion`,
//! and every user header as `ce-NAME`) plus `content-type`. The subject is
//! the topic under the prefix, and the seq is the stream sequence, so it is
//! never written.
//!
//! Header values are escaped so that they come back exactly as they were
//! written: `%`, ASCII control characters (NATS headers cannot hold CR or
//! LF) and whitespace at either end (which clients trim when they read a
//! header) are percent-encoded as UTF-8 bytes; everything else is written
//! as is, so a plain client reads ordinary values unchanged. Reading
//! percent-decodes every value. Headers whose value is an integer or a
//! boolean are named, with their type, in one more header,
//! `eventbus-types: priority=integer,flag=boolean`, so the CloudEvent
//! comes back with the same types.
//!
//! A message without `ce-specversion` (published by a client that knows
//! nothing of eventbus) is read as an event all the same: the topic from
//! the subject, the time from the server, the source `nats`, and as id its
//! `Nats-Msg-Id`, or without one `nats-STREAM-CREATED-SEQ`: the stream's
//! name, its creation time (nanoseconds since 1970) and the stream
//! sequence, so every reading of the message agrees on it and no other
//! stream, nor a stream created again under the same name, repeats it.
//!
//! A message whose `ce-type` differs from the topic of its subject is
//! unreadable (a dead letter for handlers): it is routed by its subject,
//! and there is no telling which of the two its producer meant.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use async_nats::{HeaderMap, HeaderName};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use crate::envelope::cloudevent::{check_time, parse_time};
use crate::envelope::{
    Draft, EventId, HeaderKind, HeaderValue, Metadata, RawEnvelope, strict, validate_header_name,
};

const CE: &str = "ce-";
const MSG_ID: &str = "Nats-Msg-Id";
const TYPES: &str = "eventbus-types";
/// The source of events published by plain NATS clients.
pub(crate) const FOREIGN_SOURCE: &str = "nats";

// Names made once, without the check and copy a `&str` name costs per
// publish.
const H_MSG_ID: HeaderName = HeaderName::from_static(MSG_ID);
const H_SPECVERSION: HeaderName = HeaderName::from_static("ce-specversion");
const H_ID: HeaderName = HeaderName::from_static("ce-id");
const H_SOURCE: HeaderName = HeaderName::from_static("ce-source");
const H_TYPE: HeaderName = HeaderName::from_static("ce-type");
const H_TIME: HeaderName = HeaderName::from_static("ce-time");
const H_SUBJECT: HeaderName = HeaderName::from_static("ce-subject");
const H_DATASCHEMA: HeaderName = HeaderName::from_static("ce-dataschema");
const H_CONTENT_TYPE: HeaderName = HeaderName::from_static("content-type");
const H_EVENTNAME: HeaderName = HeaderName::from_static("ce-eventname");
const H_EVENTVERSION: HeaderName = HeaderName::from_static("ce-eventversion");
const H_STREAMVERSION: HeaderName = HeaderName::from_static("ce-streamversion");
const H_CORRELATION: HeaderName = HeaderName::from_static("ce-correlationid");
const H_CAUSATION: HeaderName = HeaderName::from_static("ce-causationid");
const H_IDEMPOTENCY: HeaderName = HeaderName::from_static("ce-idempotencykey");
const H_TYPES: HeaderName = HeaderName::from_static(TYPES);

/// Attributes with a header of their own; a `ce-` header with one of these
/// names is never a user header.
const ATTRIBUTES: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "dataschema",
    "eventname",
    "eventversion",
    "streamversion",
    "correlationid",
    "causationid",
    "idempotencykey",
    crate::envelope::REPLAY_HEADER,
];

/// The headers and body for a draft; `Nats-Msg-Id` is the idempotency key
/// or, without one, the event id, so the server's duplicate window drops a
/// repeated publish.
pub(crate) fn encode(draft: &Draft) -> Result<(HeaderMap, Bytes), String> {
    let m = &draft.meta;
    check_time(m.time).map_err(|e| format!("the event's time {e}"))?;
    let mut h = HeaderMap::new();
    let id = m.id.to_string();
    h.insert(
        H_MSG_ID,
        escape(m.idempotency_key.as_deref().unwrap_or(&id)).as_ref(),
    );
    h.insert(H_SPECVERSION, "1.0");
    h.insert(H_ID, escape(&id).as_ref());
    h.insert(H_SOURCE, escape(&m.source).as_ref());
    h.insert(H_TYPE, m.topic.as_ref());
    h.insert(
        H_TIME,
        m.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    );
    h.insert(H_CONTENT_TYPE, "application/json");
    if !m.event_name.is_empty() {
        h.insert(H_EVENTNAME, escape(&m.event_name).as_ref());
    }
    // 1 is what a reader assumes when the header is absent.
    if m.event_version != 1 {
        h.insert(H_EVENTVERSION, m.event_version.to_string());
    }
    if let Some(v) = m.stream_version {
        h.insert(H_STREAMVERSION, v.to_string());
    }
    for (name, value) in [
        (H_SUBJECT, &m.subject),
        (H_DATASCHEMA, &m.dataschema),
        (H_CORRELATION, &m.correlation_id),
        (H_CAUSATION, &m.causation_id),
        (H_IDEMPOTENCY, &m.idempotency_key),
    ] {
        if let Some(v) = value {
            h.insert(name, escape(v).as_ref());
        }
    }
    let mut typed = Vec::new();
    for (name, value) in &m.headers {
        h.insert(
            format!("{CE}{name}").as_str(),
            escape(value.as_str()).as_ref(),
        );
        match value.kind() {
            HeaderKind::String => {}
            HeaderKind::Integer => typed.push(format!("{name}=integer")),
            HeaderKind::Boolean => typed.push(format!("{name}=boolean")),
        }
    }
    if !typed.is_empty() {
        h.insert(H_TYPES, typed.join(","));
    }
    let body = match draft.data_bytes().map_err(|e| e.to_string())? {
        Cow::Owned(bytes) => Bytes::from(bytes),
        Cow::Borrowed(bytes) => Bytes::copy_from_slice(bytes),
    };
    Ok((h, body))
}

/// Where a message was read: what a message without CloudEvents headers
/// needs for an id of its own.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// `nats-STREAM-CREATED`, to which `-SEQ` is added.
    foreign_ids: String,
}

impl Origin {
    /// The origin of messages in `stream`, created at `created`.
    pub(crate) fn new(stream: &str, created: DateTime<Utc>) -> Self {
        let created = created
            .timestamp_nanos_opt()
            .unwrap_or_else(|| created.timestamp());
        Origin {
            foreign_ids: format!("nats-{stream}-{created}"),
        }
    }

    fn foreign_id(&self, seq: u64) -> EventId {
        EventId::parse(&format!("{}-{seq}", self.foreign_ids)).expect("a non-empty id")
    }
}

/// An envelope from a stored message.
///
/// # Errors
///
/// What makes the message unreadable: a body that is not JSON, or
/// CloudEvents headers that are malformed or contradict the subject.
pub(crate) fn decode(
    origin: &Origin,
    topic: &str,
    seq: u64,
    published: DateTime<Utc>,
    headers: Option<&HeaderMap>,
    body: &[u8],
) -> Result<RawEnvelope, String> {
    eventbus_topic::validate_topic(topic).map_err(|e| e.describe(topic))?;
    let data = if body.is_empty() {
        RawValue::from_string("null".to_owned()).map_err(|e| e.to_string())?
    } else {
        std::str::from_utf8(body)
            .map_err(|e| format!("the body is not UTF-8 JSON: {e}"))
            .and_then(|text| {
                strict::validate(text).map_err(|e| format!("the body is not JSON: {e}"))?;
                RawValue::from_string(text.to_owned())
                    .map_err(|e| format!("the body is not JSON: {e}"))
            })
            .map_err(|e| format!("message seq {seq} on `{topic}`: {e}"))?
    };
    let get = |name: &str| -> Result<Option<String>, String> {
        headers
            .and_then(|h| h.get(name))
            .map(|v| unescape(v.as_str()).map_err(|e| format!("header `{name}`: {e}")))
            .transpose()
    };
    let meta = match get("ce-specversion")? {
        None => foreign(origin, topic, seq, published, get(MSG_ID)?),
        Some(v) if v == "1.0" => {
            let id_text = get("ce-id")?.ok_or("header `ce-id` is missing")?;
            let id = EventId::parse(&id_text).map_err(|e| format!("header `ce-id`: {e}"))?;
            if let Some(kind) = get("ce-type")?
                && kind != topic
            {
                return Err(format!(
                    "message seq {seq}: header `ce-type` is `{kind}` but its subject is topic \
                     `{topic}`; events are routed by subject, so the two must agree"
                ));
            }
            let source = get("ce-source")?.unwrap_or_else(|| FOREIGN_SOURCE.to_owned());
            if source.is_empty() {
                return Err(format!("message seq {seq}: header `ce-source` is empty"));
            }
            let time = match get("ce-time")? {
                None => published,
                Some(t) => parse_time(&t).map_err(|e| format!("header `ce-time`: {e}"))?,
            };
            let event_version = match get("ce-eventversion")? {
                None => 1,
                Some(v) => v
                    .parse()
                    .map_err(|_| format!("header `ce-eventversion` `{v}` is not a number"))?,
            };
            let stream_version = get("ce-streamversion")?
                .map(|v| {
                    v.parse()
                        .map_err(|_| format!("header `ce-streamversion` `{v}` is not a number"))
                })
                .transpose()?;
            let dataschema = get("ce-dataschema")?;
            if dataschema.as_deref() == Some("") {
                return Err(format!(
                    "message seq {seq}: header `ce-dataschema` is empty"
                ));
            }
            Metadata {
                id,
                topic: Cow::Owned(topic.to_owned()),
                time,
                source: Arc::from(source),
                subject: get("ce-subject")?,
                dataschema,
                correlation_id: get("ce-correlationid")?,
                causation_id: get("ce-causationid")?,
                idempotency_key: get("ce-idempotencykey")?,
                headers: user_headers(headers)?,
                seq,
                event_name: Cow::Owned(get("ce-eventname")?.unwrap_or_default()),
                event_version,
                stream_version,
            }
        }
        Some(other) => {
            return Err(format!(
                "message seq {seq}: CloudEvents specversion `{other}` is not supported; use `1.0`"
            ));
        }
    };
    Ok(RawEnvelope::from_parts(meta, data))
}

/// The `ce-` headers that are not attributes, with the types that
/// `eventbus-types` names.
fn user_headers(headers: Option<&HeaderMap>) -> Result<BTreeMap<String, HeaderValue>, String> {
    let Some(headers) = headers else {
        return Ok(BTreeMap::new());
    };
    let mut kinds = BTreeMap::new();
    if let Some(types) = headers.get(TYPES) {
        for entry in types.as_str().split(',').filter(|e| !e.is_empty()) {
            let kind = match entry.split_once('=') {
                Some((name, "integer")) => (name, HeaderKind::Integer),
                Some((name, "boolean")) => (name, HeaderKind::Boolean),
                _ => {
                    return Err(format!(
                        "header `{TYPES}` has `{entry}`; expected NAME=integer or NAME=boolean"
                    ));
                }
            };
            kinds.insert(kind.0.to_owned(), kind.1);
        }
    }
    let mut out = BTreeMap::new();
    for (name, values) in headers.iter() {
        let name: &str = name.as_ref();
        let Some(ext) = name.strip_prefix(CE) else {
            continue;
        };
        if ATTRIBUTES.contains(&ext) {
            continue;
        }
        validate_header_name(ext).map_err(|e| format!("header `{name}`: {e}"))?;
        if let Some(value) = values.last() {
            let text = unescape(value.as_str()).map_err(|e| format!("header `{name}`: {e}"))?;
            let kind = kinds.get(ext).copied().unwrap_or(HeaderKind::String);
            let value =
                HeaderValue::from_text(text, kind).map_err(|e| format!("header `{name}`: {e}"))?;
            out.insert(ext.to_owned(), value);
        }
    }
    Ok(out)
}

/// What can be kept of a message that is not a readable event, for the
/// dead letters: its body as JSON when it is JSON, else as a JSON string.
pub(crate) fn unreadable(
    origin: &Origin,
    topic: &str,
    seq: u64,
    published: DateTime<Utc>,
    body: &[u8],
) -> RawEnvelope {
    let text = String::from_utf8_lossy(body);
    let data = strict::validate(&text)
        .ok()
        .and_then(|()| RawValue::from_string(text.to_string()).ok())
        .or_else(|| serde_json::value::to_raw_value(&text).ok())
        .unwrap_or_default();
    RawEnvelope::from_parts(foreign(origin, topic, seq, published, None), data)
}

/// The metadata of a message published without CloudEvents headers.
fn foreign(
    origin: &Origin,
    topic: &str,
    seq: u64,
    published: DateTime<Utc>,
    msg_id: Option<String>,
) -> Metadata {
    let id = msg_id
        .and_then(|m| EventId::parse(&m).ok())
        .unwrap_or_else(|| origin.foreign_id(seq));
    Metadata::bare(id, topic.to_owned(), published, FOREIGN_SOURCE, seq)
}

/// Percent-encodes what a NATS header cannot carry or a reader would
/// change: `%`, ASCII control characters, and whitespace at either end.
fn escape(value: &str) -> Cow<'_, str> {
    let last = value.chars().count().saturating_sub(1);
    let needs = |i: usize, c: char| {
        c == '%' || c.is_ascii_control() || ((i == 0 || i == last) && c.is_whitespace())
    };
    if !value.chars().enumerate().any(|(i, c)| needs(i, c)) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    let mut buf = [0u8; 4];
    for (i, c) in value.chars().enumerate() {
        if needs(i, c) {
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Decodes every `%XX`; a `%` not followed by two hex digits is kept.
fn unescape(value: &str) -> Result<String, String> {
    if !value.contains('%') {
        return Ok(value.to_owned());
    }
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|e| format!("`{value}` percent-decodes to text that is not UTF-8: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin::new(
            "S",
            DateTime::from_timestamp_nanos(1_700_000_000_000_000_000),
        )
    }

    #[test]
    fn header_values_survive_whatever_they_hold() {
        for v in [
            "plain",
            "50%",
            "a\r\nb",
            "%25 literal",
            "%",
            " svc",
            "req-1 ",
            "\tacme ",
            "\u{2003}em space\u{2003}",
            "inner  spaces stay",
            "caf\u{e9}",
            "nul\0byte",
        ] {
            let escaped = escape(v);
            assert!(!escaped.contains(['\r', '\n']), "{escaped:?}");
            assert_eq!(
                escaped.trim(),
                escaped,
                "{v:?} escapes with no whitespace at the ends"
            );
            assert_eq!(unescape(&escaped).unwrap(), v);
        }
        assert_eq!(escape("inner  spaces stay"), "inner  spaces stay");
    }

    #[test]
    fn cloudevents_headers_are_read_and_defaults_filled() {
        let id = uuid::Uuid::now_v7();
        let mut h = HeaderMap::new();
        h.insert("ce-specversion", "1.0");
        h.insert("ce-id", id.to_string().as_str());
        h.insert("ce-source", "billing");
        h.insert("ce-type", "order.placed");
        h.insert("ce-tenant", "acme%0Aco");
        h.insert("ce-priority", "5");
        h.insert("eventbus-types", "priority=integer");
        let env = decode(&origin(), "order.placed", 3, Utc::now(), Some(&h), b"{}").unwrap();
        assert_eq!(
            (env.id(), env.source(), env.seq()),
            (&EventId::from(id), "billing", 3)
        );
        assert_eq!(env.event_version(), 1, "absent means version 1");
        assert_eq!(env.header("tenant"), Some("acme\nco"));
        assert_eq!(
            env.header_value("priority").and_then(HeaderValue::as_i64),
            Some(5)
        );
        h.insert("ce-eventversion", "3");
        let env = decode(&origin(), "order.placed", 3, Utc::now(), Some(&h), b"{}").unwrap();
        assert_eq!(env.event_version(), 3);
        h.insert("ce-id", "A234-1234-1234");
        let env = decode(&origin(), "order.placed", 3, Utc::now(), Some(&h), b"{}").unwrap();
        assert_eq!(env.id().to_string(), "A234-1234-1234");
        h.insert("ce-type", "order.shipped");
        let err = decode(&origin(), "order.placed", 3, Utc::now(), Some(&h), b"{}").unwrap_err();
        assert!(
            err.contains("`order.shipped`") && err.contains("`order.placed`"),
            "{err}"
        );
        h.insert("ce-type", "order.placed");
        h.insert("ce-source", "");
        let err = decode(&origin(), "order.placed", 3, Utc::now(), Some(&h), b"{}").unwrap_err();
        assert!(err.contains("`ce-source` is empty"), "{err}");
    }

    #[test]
    fn foreign_messages_get_an_id_unique_to_stream_and_position() {
        let now = Utc::now();
        let a = decode(&origin(), "order.placed", 7, now, None, br#"{"id":1}"#).unwrap();
        let b = decode(&origin(), "order.placed", 7, now, None, br#"{"id":1}"#).unwrap();
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().to_string(), "nats-S-1700000000000000000-7");
        let recreated = Origin::new(
            "S",
            DateTime::from_timestamp_nanos(1_800_000_000_000_000_000),
        );
        let c = decode(&recreated, "order.placed", 7, now, None, br#"{"id":1}"#).unwrap();
        assert_ne!(a.id(), c.id(), "a stream made again under the same name");
        assert_eq!(a.source(), FOREIGN_SOURCE);
        assert_eq!(a.seq(), 7);
        let bad = decode(&origin(), "order.placed", 8, now, None, b"not json").unwrap_err();
        assert!(bad.contains("seq 8") && bad.contains("not JSON"), "{bad}");
        let surrogate = decode(&origin(), "order.placed", 9, now, None, br#""\ud800""#);
        assert!(surrogate.is_err());
    }
}
