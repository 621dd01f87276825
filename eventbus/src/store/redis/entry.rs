//! Stream entries: an event's fields, and its seq from the entry id.
//!
//! An entry holds the CloudEvents attributes as fields named as in
//! CloudEvents (`specversion`, `id`, `source`, `type` = the topic, `time`,
//! `datacontenttype`, and when set `subject`, `dataschema`, `eventname`,
//! `eventversion`, `streamversion`, `correlationid`, `causationid`,
//! `idempotencykey`), each user header as a field of its own name, and
//! `data`, the JSON text, last; `redis-cli XRANGE` shows them as they
//! are, since field values are binary-safe and need no escaping. Headers
//! whose value is an integer or a boolean are named, with their type, in
//! one more field, `eventbus-types: priority=integer,flag=boolean` (its
//! `-` keeps it apart from header names, which are letters and digits).
//!
//! An entry added by another client needs only `type` (and `data`, else
//! the data is `null`): without `specversion` its id is the `id` field or
//! `redis-PREFIX-ENTRYID`, its source the `source` field or `redis`, and
//! its time the `time` field or the entry id's milliseconds.
//!
//! The seq of entry `MS-N` is `MS << 20 | N`: strictly increasing in
//! stream order, since Redis orders ids by `MS` then `N`, and readable back
//! into the id for range reads. `N` below 2^20 (a million entries in one
//! millisecond) and `MS` below 2^44 (the year 2527) always hold for ids
//! Redis makes; an explicit id outside them is an unreadable entry.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::DateTime;
use serde_json::value::RawValue;

use crate::envelope::cloudevent::{check_time, parse_time};
use crate::envelope::{
    Draft, EventId, HeaderKind, HeaderValue, Metadata, RawEnvelope, strict, validate_header_name,
};

const N_BITS: u32 = 20;
const N_MASK: u64 = (1 << N_BITS) - 1;
const MS_LIMIT: u64 = 1 << (64 - N_BITS);
const TYPES: &str = "eventbus-types";
/// The source of entries added without one by other clients.
pub(crate) const FOREIGN_SOURCE: &str = "redis";

/// Fields with a meaning of their own; any other field is a user header.
const ATTRIBUTES: &[&str] = &[
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
    TYPES,
    crate::envelope::REPLAY_HEADER,
];

/// The seq of an entry id `MS-N`.
pub(crate) fn seq_of(id: &str) -> Result<u64, String> {
    // Digits only: `str::parse` would also take a sign, and costs more
    // than the rest of reading a publish's reply.
    fn number(digits: &str) -> Option<u64> {
        if digits.is_empty() {
            return None;
        }
        digits.bytes().try_fold(0u64, |n, b| {
            b.is_ascii_digit()
                .then(|| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))?
        })
    }
    let parsed = id
        .split_once('-')
        .and_then(|(ms, n)| Some((number(ms)?, number(n)?)));
    match parsed {
        Some((ms, n)) if ms < MS_LIMIT && n <= N_MASK => Ok(ms << N_BITS | n),
        Some(_) => Err(format!(
            "entry id `{id}` is beyond what a seq can carry (MS below 2^44, N below 2^20)"
        )),
        None => Err(format!("`{id}` is not a stream entry id `MS-N`")),
    }
}

/// The entry id of a seq.
pub(crate) fn id_of(seq: u64) -> String {
    format!("{}-{}", seq >> N_BITS, seq & N_MASK)
}

/// The milliseconds part of a seq, when its entry was added.
pub(crate) fn millis_of(seq: u64) -> u64 {
    seq >> N_BITS
}

/// The first seq of a millisecond.
pub(crate) fn first_seq_at(ms: u64) -> u64 {
    ms.min(MS_LIMIT - 1) << N_BITS
}

/// Writes the fields of a draft's entry, its data given as `data` (see
/// [`Draft::data_bytes`]), in the order `XRANGE` shows them, each as
/// `put(name, value)`: straight into the command, with no list of fields
/// in between.
pub(crate) fn encode(
    draft: &Draft,
    data: &[u8],
    mut put: impl FnMut(&str, &[u8]),
) -> Result<(), String> {
    let m = &draft.meta;
    check_time(m.time).map_err(|e| format!("the event's time {e}"))?;
    put("specversion", b"1.0");
    let mut uuid = uuid::Uuid::encode_buffer();
    match m.id.as_uuid() {
        Some(id) => put("id", id.hyphenated().encode_lower(&mut uuid).as_bytes()),
        None => put("id", m.id.to_string().as_bytes()),
    }
    put("source", m.source.as_bytes());
    put("type", m.topic.as_bytes());
    put(
        "time",
        m.time
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            .as_bytes(),
    );
    put("datacontenttype", b"application/json");
    for (name, value) in [
        ("subject", &m.subject),
        ("dataschema", &m.dataschema),
        ("correlationid", &m.correlation_id),
        ("causationid", &m.causation_id),
        ("idempotencykey", &m.idempotency_key),
    ] {
        if let Some(v) = value {
            put(name, v.as_bytes());
        }
    }
    if !m.event_name.is_empty() {
        put("eventname", m.event_name.as_bytes());
    }
    // 1 is what a reader assumes when the field is absent.
    if m.event_version != 1 {
        put("eventversion", m.event_version.to_string().as_bytes());
    }
    if let Some(v) = m.stream_version {
        put("streamversion", v.to_string().as_bytes());
    }
    let mut typed = Vec::new();
    for (name, value) in &m.headers {
        // Header names are checked when set, and none is an attribute.
        put(name, value.as_str().as_bytes());
        match value.kind() {
            HeaderKind::String => {}
            HeaderKind::Integer => typed.push(format!("{name}=integer")),
            HeaderKind::Boolean => typed.push(format!("{name}=boolean")),
        }
    }
    if !typed.is_empty() {
        put(TYPES, typed.join(",").as_bytes());
    }
    put("data", data);
    Ok(())
}

/// At least how many arguments, and about how many bytes, a command
/// holding what [`encode`] writes for a draft whose data takes `data`
/// bytes needs (with `XADD`, the key, trimming and `*`), so it can be
/// sized once.
pub(crate) fn encoded_size(draft: &Draft, data: usize) -> (usize, usize) {
    let m = &draft.meta;
    let optional = [
        &m.subject,
        &m.dataschema,
        &m.correlation_id,
        &m.causation_id,
        &m.idempotency_key,
    ];
    let headers: usize = m
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.as_str().len())
        .sum();
    let bytes = 256
        + data
        + m.source.len()
        + m.topic.len()
        + m.event_name.len()
        + optional
            .iter()
            .flat_map(|v| v.as_deref())
            .map(str::len)
            .sum::<usize>()
        + headers;
    // Six fixed attributes, five optional ones, the name, two versions,
    // the header types and the data: 16 fields besides the headers.
    (6 + 2 * (16 + m.headers.len()), bytes)
}

/// An entry as read: its id and fields, values as bytes.
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) fields: Vec<(String, Vec<u8>)>,
}

impl Entry {
    /// The value of a field, the last if it is given twice.
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The value of a field as text.
    fn text(&self, name: &str) -> Result<Option<String>, String> {
        self.get(name)
            .map(|v| {
                String::from_utf8(v.to_vec()).map_err(|_| format!("field `{name}` is not UTF-8"))
            })
            .transpose()
    }

    /// The topic the entry names, when it names a valid one.
    pub(crate) fn topic(&self) -> Option<&str> {
        let topic = std::str::from_utf8(self.get("type")?).ok()?;
        eventbus_topic::validate_topic(topic).ok().map(|()| topic)
    }
}

/// The envelope of an entry of the stream under `prefix`.
///
/// # Errors
///
/// What makes the entry unreadable: an id beyond a seq, no `type`, data
/// that is not JSON, or malformed attributes.
pub(crate) fn decode(prefix: &str, entry: &Entry) -> Result<RawEnvelope, String> {
    let seq = seq_of(&entry.id)?;
    let at = |e: String| format!("entry {}: {e}", entry.id);
    decode_fields(prefix, entry, seq).map_err(at)
}

fn decode_fields(prefix: &str, entry: &Entry, seq: u64) -> Result<RawEnvelope, String> {
    let topic = entry
        .text("type")?
        .ok_or("field `type` (the topic) is missing")?;
    eventbus_topic::validate_topic(&topic)
        .map_err(|e| format!("field `type`: {}", e.describe(&topic)))?;
    let data = match entry.get("data") {
        None | Some(b"") => RawValue::from_string("null".to_owned()).map_err(|e| e.to_string())?,
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|_| "field `data` is not UTF-8 JSON")?;
            strict::validate(text).map_err(|e| format!("field `data` is not JSON: {e}"))?;
            RawValue::from_string(text.to_owned())
                .map_err(|e| format!("field `data` is not JSON: {e}"))?
        }
    };
    let added = DateTime::from_timestamp_millis(millis_of(seq) as i64).unwrap_or_default();
    let foreign = match entry.text("specversion")?.as_deref() {
        None => true,
        Some("1.0") => false,
        Some(other) => {
            return Err(format!(
                "CloudEvents specversion `{other}` is not supported; use `1.0`"
            ));
        }
    };
    let id = match entry.text("id")? {
        Some(id) => EventId::parse(&id).map_err(|e| format!("field `id`: {e}"))?,
        None if foreign => EventId::parse(&format!("redis-{prefix}-{}", entry.id))
            .map_err(|e| format!("entry id: {e}"))?,
        None => return Err("field `id` is missing".to_owned()),
    };
    let source = entry
        .text("source")?
        .unwrap_or_else(|| FOREIGN_SOURCE.to_owned());
    if source.is_empty() {
        return Err("field `source` is empty".to_owned());
    }
    let time = match entry.text("time")? {
        None => added,
        Some(t) => parse_time(&t).map_err(|e| format!("field `time`: {e}"))?,
    };
    let number = |name: &str| -> Result<Option<u64>, String> {
        entry
            .text(name)?
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("field `{name}` `{v}` is not a number"))
            })
            .transpose()
    };
    let event_version = number("eventversion")?
        .map(|v| u32::try_from(v).map_err(|_| format!("field `eventversion` `{v}` is too big")))
        .transpose()?
        .unwrap_or(1);
    let dataschema = entry.text("dataschema")?;
    if dataschema.as_deref() == Some("") {
        return Err("field `dataschema` is empty".to_owned());
    }
    let meta = Metadata {
        id,
        topic: Cow::Owned(topic),
        time,
        source: Arc::from(source),
        subject: entry.text("subject")?,
        dataschema,
        correlation_id: entry.text("correlationid")?,
        causation_id: entry.text("causationid")?,
        idempotency_key: entry.text("idempotencykey")?,
        headers: user_headers(entry)?,
        seq,
        event_name: Cow::Owned(entry.text("eventname")?.unwrap_or_default()),
        event_version,
        stream_version: number("streamversion")?,
    };
    Ok(RawEnvelope::from_parts(meta, data))
}

/// The fields that are not attributes, with the types `eventbus-types`
/// names.
fn user_headers(entry: &Entry) -> Result<BTreeMap<String, HeaderValue>, String> {
    let mut kinds = BTreeMap::new();
    if let Some(types) = entry.text(TYPES)? {
        for item in types.split(',').filter(|e| !e.is_empty()) {
            let (name, kind) = match item.split_once('=') {
                Some((name, "integer")) => (name, HeaderKind::Integer),
                Some((name, "boolean")) => (name, HeaderKind::Boolean),
                _ => {
                    return Err(format!(
                        "field `{TYPES}` has `{item}`; expected NAME=integer or NAME=boolean"
                    ));
                }
            };
            kinds.insert(name.to_owned(), kind);
        }
    }
    let mut out = BTreeMap::new();
    for (name, _) in &entry.fields {
        if ATTRIBUTES.contains(&name.as_str()) || out.contains_key(name) {
            continue;
        }
        validate_header_name(name).map_err(|e| format!("field `{name}`: {e}"))?;
        let text = entry.text(name)?.unwrap_or_default();
        let kind = kinds.get(name).copied().unwrap_or(HeaderKind::String);
        let value =
            HeaderValue::from_text(text, kind).map_err(|e| format!("field `{name}`: {e}"))?;
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// What can be kept of an entry that is not a readable event, for the
/// dead letters: its `data` as JSON when it is JSON, else as a JSON
/// string, under its topic (or `unreadable` without one).
pub(crate) fn unreadable(prefix: &str, entry: &Entry, seq: u64) -> RawEnvelope {
    let text = String::from_utf8_lossy(entry.get("data").unwrap_or_default());
    let data = strict::validate(&text)
        .ok()
        .and_then(|()| RawValue::from_string(text.to_string()).ok())
        .or_else(|| serde_json::value::to_raw_value(&text).ok())
        .unwrap_or_default();
    let id = EventId::parse(&format!("redis-{prefix}-{}", entry.id))
        .unwrap_or_else(|_| EventId::from(uuid::Uuid::now_v7()));
    let topic = entry.topic().unwrap_or("unreadable").to_owned();
    let time = DateTime::from_timestamp_millis(millis_of(seq) as i64).unwrap_or_default();
    let meta = Metadata::bare(id, topic, time, FOREIGN_SOURCE, seq);
    RawEnvelope::from_parts(meta, data)
}

/// The entries of an `XRANGE`, `XREVRANGE`, `XREADGROUP` or `XCLAIM` reply:
/// `[[id, [field, value, ...]], ...]`. Entries the server already deleted
/// come as `[id, nil]` and are left out.
pub(crate) fn entries(value: redis::Value) -> Result<Vec<Entry>, String> {
    use redis::Value;
    let Value::Array(items) = value else {
        return match value {
            Value::Nil => Ok(Vec::new()),
            other => Err(format!("expected stream entries, got {other:?}")),
        };
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(mut pair) = item else {
            return Err("a stream entry is not [id, fields]".to_owned());
        };
        if pair.len() != 2 {
            return Err("a stream entry is not [id, fields]".to_owned());
        }
        // Owned conversions move the bytes out of the reply; the borrowing
        // ones copy every field, and a page of entries is mostly bytes.
        let fields = pair.pop().unwrap_or(Value::Nil);
        let id: String = pair
            .pop()
            .map(redis::from_owned_redis_value)
            .transpose()
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let Value::Array(flat) = fields else {
            continue;
        };
        let mut fields = Vec::with_capacity(flat.len() / 2);
        let mut flat = flat.into_iter();
        while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
            let name: String = redis::from_owned_redis_value(name).map_err(|e| e.to_string())?;
            let value: Vec<u8> = redis::from_owned_redis_value(value).map_err(|e| e.to_string())?;
            fields.push((name, value));
        }
        out.push(Entry { id, fields });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_follow_entry_ids_and_map_back() {
        for id in ["0-1", "1-0", "1700000000000-0", "1700000000000-1048575"] {
            assert_eq!(id_of(seq_of(id).unwrap()), id);
        }
        assert!(seq_of("1700000000000-0").unwrap() < seq_of("1700000000000-1").unwrap());
        assert!(seq_of("1700000000000-1048575").unwrap() < seq_of("1700000000001-0").unwrap());
        assert!(seq_of("1-1048576").unwrap_err().contains("beyond"));
        assert!(seq_of("17592186044416-0").unwrap_err().contains("beyond"));
        assert!(seq_of("x").unwrap_err().contains("not a stream entry id"));
        for bad in [
            "-1",
            "1-",
            "+1-0",
            "1-+0",
            "1-0-0",
            "1a-0",
            "99999999999999999999999-0",
        ] {
            assert!(seq_of(bad).is_err(), "{bad}");
        }
    }

    fn entry(fields: &[(&str, &str)]) -> Entry {
        Entry {
            id: "1700000000000-5".to_owned(),
            fields: fields
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn foreign_entries_need_only_a_type() {
        let env = decode(
            "p",
            &entry(&[("type", "order.placed"), ("data", r#"{"id":1}"#)]),
        )
        .unwrap();
        assert_eq!(env.topic(), "order.placed");
        assert_eq!(env.id().to_string(), "redis-p-1700000000000-5");
        assert_eq!(env.source(), FOREIGN_SOURCE);
        assert_eq!(env.time().timestamp_millis(), 1_700_000_000_000);
        assert_eq!(env.seq(), seq_of("1700000000000-5").unwrap());
        let e = decode("p", &entry(&[("data", "{}")])).unwrap_err();
        assert!(e.contains("`type`"), "{e}");
        let e = decode("p", &entry(&[("type", "a.b"), ("data", "nope")])).unwrap_err();
        assert!(
            e.contains("not JSON") && e.contains("1700000000000-5"),
            "{e}"
        );
        let e = decode("p", &entry(&[("type", "a.b"), ("specversion", "0.3")])).unwrap_err();
        assert!(e.contains("`0.3`"), "{e}");
        let e = decode("p", &entry(&[("type", "a..b")])).unwrap_err();
        assert!(e.contains("`type`"), "{e}");
    }

    #[test]
    fn typed_headers_come_back_typed() {
        let env = decode(
            "p",
            &entry(&[
                ("specversion", "1.0"),
                ("id", "e-1"),
                ("type", "a.b"),
                ("tenant", "acme"),
                ("priority", "5"),
                (TYPES, "priority=integer"),
            ]),
        )
        .unwrap();
        assert_eq!(env.header("tenant"), Some("acme"));
        assert_eq!(
            env.header_value("priority").and_then(HeaderValue::as_i64),
            Some(5)
        );
        let e = decode("p", &entry(&[("type", "a.b"), ("Bad-Name", "x")])).unwrap_err();
        assert!(e.contains("`Bad-Name`"), "{e}");
    }
}
