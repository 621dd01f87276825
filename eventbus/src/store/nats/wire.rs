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
//! A message without `ce-specversion` (published by a client that knows
//! nothing of eventbus) is read as an event all the same: the topic from
//! the subject, the time from the server, the source `nats`, and an id that
//! is the `Nats-Msg-Id` when that is a UUID, else one derived from the
//! stream sequence so that every reading of the message agrees on it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use async_nats::{HeaderMap, HeaderName};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::envelope::{Draft, Metadata, RawEnvelope, validate_header_name};

const CE: &str = "ce-";
const MSG_ID: &str = "Nats-Msg-Id";
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
const H_CONTENT_TYPE: HeaderName = HeaderName::from_static("content-type");
const H_EVENTNAME: HeaderName = HeaderName::from_static("ce-eventname");
const H_EVENTVERSION: HeaderName = HeaderName::from_static("ce-eventversion");
const H_CORRELATION: HeaderName = HeaderName::from_static("ce-correlationid");
const H_CAUSATION: HeaderName = HeaderName::from_static("ce-causationid");
const H_IDEMPOTENCY: HeaderName = HeaderName::from_static("ce-idempotencykey");

/// The headers and body for a draft; `Nats-Msg-Id` is the idempotency key
/// or, without one, the event id, so the server's duplicate window drops a
/// repeated publish.
pub(crate) fn encode(draft: &Draft) -> Result<(HeaderMap, Bytes), String> {
    let m = &draft.meta;
    let mut h = HeaderMap::new();
    let id = m.id.to_string();
    h.insert(H_MSG_ID, m.idempotency_key.as_deref().unwrap_or(&id));
    h.insert(H_SPECVERSION, "1.0");
    h.insert(H_ID, id);
    h.insert(H_SOURCE, escape(&m.source).as_ref());
    h.insert(H_TYPE, m.topic.as_ref());
    h.insert(
        H_TIME,
        m.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    );
    h.insert(H_CONTENT_TYPE, "application/json");
    if !m.event_name.is_empty() {
        h.insert(H_EVENTNAME, m.event_name.as_ref());
    }
    // 1 is what a reader assumes when the header is absent.
    if m.event_version != 1 {
        h.insert(H_EVENTVERSION, m.event_version.to_string());
    }
    for (name, value) in [
        (H_CORRELATION, &m.correlation_id),
        (H_CAUSATION, &m.causation_id),
        (H_IDEMPOTENCY, &m.idempotency_key),
    ] {
        if let Some(v) = value {
            h.insert(name, escape(v).as_ref());
        }
    }
    for (name, value) in &m.headers {
        h.insert(format!("{CE}{name}").as_str(), escape(value).as_ref());
    }
    let body = match draft.data_bytes().map_err(|e| e.to_string())? {
        Cow::Owned(bytes) => Bytes::from(bytes),
        Cow::Borrowed(bytes) => Bytes::copy_from_slice(bytes),
    };
    Ok((h, body))
}

/// An envelope from a stored message.
///
/// # Errors
///
/// What makes the message unreadable: a body that is not JSON, or
/// CloudEvents headers that are malformed.
pub(crate) fn decode(
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
                serde_json::from_str::<&RawValue>(text)
                    .map(|raw| raw.to_owned())
                    .map_err(|e| format!("the body is not JSON: {e}"))
            })
            .map_err(|e| format!("message seq {seq} on `{topic}`: {e}"))?
    };
    let get = |name: &str| -> Option<String> {
        headers
            .and_then(|h| h.get(name))
            .map(|v| unescape(v.as_str()))
    };
    let meta = match get("ce-specversion") {
        None => foreign(topic, seq, published, get(MSG_ID)),
        Some(v) if v == "1.0" => {
            let id_text = get("ce-id").ok_or("header `ce-id` is missing")?;
            let id = Uuid::parse_str(&id_text)
                .map_err(|e| format!("header `ce-id` `{id_text}` is not a UUID: {e}"))?;
            let time = match get("ce-time") {
                None => published,
                Some(t) => DateTime::parse_from_rfc3339(&t)
                    .map_err(|e| format!("header `ce-time` `{t}` is not RFC 3339: {e}"))?
                    .with_timezone(&Utc),
            };
            let event_version = match get("ce-eventversion") {
                None => 1,
                Some(v) => v
                    .parse()
                    .map_err(|_| format!("header `ce-eventversion` `{v}` is not a number"))?,
            };
            let mut user_headers = BTreeMap::new();
            for (name, values) in headers.into_iter().flat_map(|h| h.iter()) {
                let name: &str = name.as_ref();
                let Some(ext) = name.strip_prefix(CE) else {
                    continue;
                };
                if matches!(
                    ext,
                    "specversion"
                        | "id"
                        | "source"
                        | "type"
                        | "time"
                        | "eventname"
                        | "eventversion"
                        | "correlationid"
                        | "causationid"
                        | "idempotencykey"
                        | "subject"
                        | "dataschema"
                ) || ext == crate::envelope::REPLAY_HEADER
                {
                    continue;
                }
                validate_header_name(ext).map_err(|e| format!("header `{name}`: {e}"))?;
                if let Some(value) = values.last() {
                    user_headers.insert(ext.to_owned(), unescape(value.as_str()));
                }
            }
            Metadata {
                id,
                topic: Cow::Owned(topic.to_owned()),
                time,
                source: Arc::from(get("ce-source").unwrap_or_else(|| FOREIGN_SOURCE.to_owned())),
                correlation_id: get("ce-correlationid"),
                causation_id: get("ce-causationid"),
                idempotency_key: get("ce-idempotencykey"),
                headers: user_headers,
                seq,
                event_name: Cow::Owned(get("ce-eventname").unwrap_or_default()),
                event_version,
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

/// What can be kept of a message that is not a readable event, for the
/// dead letters: its body as JSON when it is JSON, else as a JSON string.
pub(crate) fn unreadable(
    topic: &str,
    seq: u64,
    published: DateTime<Utc>,
    body: &[u8],
) -> RawEnvelope {
    let text = String::from_utf8_lossy(body);
    let data = serde_json::from_str::<&RawValue>(&text)
        .map(|raw| raw.to_owned())
        .or_else(|_| serde_json::value::to_raw_value(&text))
        .unwrap_or_default();
    RawEnvelope::from_parts(foreign(topic, seq, published, None), data)
}

/// The metadata of a message published without CloudEvents headers.
fn foreign(topic: &str, seq: u64, published: DateTime<Utc>, msg_id: Option<String>) -> Metadata {
    let id = msg_id
        .and_then(|m| Uuid::parse_str(&m).ok())
        // Version-less and variant-less on purpose: it names a stream
        // position, it is not a generated UUID.
        .unwrap_or_else(|| Uuid::from_u64_pair(0x6e61_7473_0000_0000, seq));
    Metadata {
        id,
        topic: Cow::Owned(topic.to_owned()),
        time: published,
        source: Arc::from(FOREIGN_SOURCE),
        correlation_id: None,
        causation_id: None,
        idempotency_key: None,
        headers: BTreeMap::new(),
        seq,
        event_name: Cow::Borrowed(""),
        event_version: 1,
    }
}

/// NATS header values cannot hold CR or LF; like the CloudEvents HTTP
/// binding, such characters (and `%` itself) are percent-encoded.
fn escape(value: &str) -> Cow<'_, str> {
    if !value.contains(['%', '\r', '\n']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn unescape(value: &str) -> String {
    if !value.contains('%') {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3);
        match code {
            Some("25") => out.push('%'),
            Some("0D") | Some("0d") => out.push('\r'),
            Some("0A") | Some("0a") => out.push('\n'),
            _ => {
                out.push('%');
                rest = &rest[at + 1..];
                continue;
            }
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_with_line_breaks_survive() {
        for v in ["plain", "50%", "a\r\nb", "%25 literal", "%"] {
            assert_eq!(unescape(&escape(v)), v);
        }
    }

    #[test]
    fn cloudevents_headers_are_read_and_defaults_filled() {
        let id = Uuid::now_v7();
        let mut h = HeaderMap::new();
        h.insert("ce-specversion", "1.0");
        h.insert("ce-id", id.to_string().as_str());
        h.insert("ce-source", "billing");
        h.insert("ce-type", "order.placed");
        h.insert("ce-tenant", "acme%0Aco");
        let env = decode("order.placed", 3, Utc::now(), Some(&h), b"{}").unwrap();
        assert_eq!((env.id(), env.source(), env.seq()), (id, "billing", 3));
        assert_eq!(env.event_version(), 1, "absent means version 1");
        assert_eq!(env.header("tenant"), Some("acme\nco"));
        h.insert("ce-eventversion", "3");
        let env = decode("order.placed", 3, Utc::now(), Some(&h), b"{}").unwrap();
        assert_eq!(env.event_version(), 3);
        h.insert("ce-id", "not-a-uuid");
        let err = decode("order.placed", 3, Utc::now(), Some(&h), b"{}").unwrap_err();
        assert!(err.contains("`ce-id`"), "{err}");
    }

    #[test]
    fn foreign_messages_get_a_stable_id() {
        let now = Utc::now();
        let a = decode("order.placed", 7, now, None, br#"{"id":1}"#).unwrap();
        let b = decode("order.placed", 7, now, None, br#"{"id":1}"#).unwrap();
        assert_eq!(a.id(), b.id());
        assert_eq!(a.source(), FOREIGN_SOURCE);
        assert_eq!(a.seq(), 7);
        let bad = decode("order.placed", 8, now, None, b"not json").unwrap_err();
        assert!(bad.contains("seq 8") && bad.contains("not JSON"), "{bad}");
    }
}
