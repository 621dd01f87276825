//! The CloudEvents 1.0 structured JSON form of an envelope.
//!
//! ```json
//! {"specversion":"1.0","id":"0190…","source":"billing","type":"order.placed",
//!  "time":"2026-11-27T10:00:00Z","datacontenttype":"application/json",
//!  "data":{"id":7,"cents":1250},"seq":"42","eventname":"OrderEvent","eventversion":1,
//!  "correlationid":"req-456","tenant":"acme"}
//! ```
//!
//! `type` is the topic; `correlationid`, `causationid`, `idempotencykey`,
//! `seq`, `eventname` and `eventversion` are extension attributes, and every
//! header is one more extension attribute (header names follow the
//! CloudEvents extension-name rules for that reason), keeping its JSON type:
//! string, integer or boolean. `subject` and `dataschema` are kept as given.
//!
//! Reading accepts CloudEvents 1.0 JSON events with these rules, each
//! refused with a message naming the attribute:
//! - `id` is any non-empty string, `source` a non-empty string, and `type`
//!   an eventbus topic (dot-separated tokens of letters, digits, `_` and
//!   `-`), since it is the topic events are routed by;
//! - `time`, when present, is RFC 3339 within the years 0000 to 9999 (UTC),
//!   which every CloudEvents reader can write back;
//! - `data` is JSON (`data_base64` and non-JSON content types are
//!   refused), read with serde_json's own limits: strings must be valid
//!   Unicode (no lone surrogates), nesting at most 128 deep, and no
//!   object key one of serde_json's own names (`$serde_json::private::…`,
//!   which a serde_json reader takes for something else); its text is
//!   kept exactly as given;
//! - no attribute appears twice, and extension values are strings,
//!   integers or booleans.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::de::{Error as _, MapAccess, Visitor};
use serde::ser::{Error as _, SerializeMap};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Envelope, EventId, HeaderValue, Metadata, RawEnvelope, strict, validate_header_name};
use crate::event::Event;

const SPEC_VERSION: &str = "1.0";
const JSON: &str = "application/json";

impl Serialize for RawEnvelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let m = self.meta();
        let data = self.data_json().map_err(S::Error::custom)?;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("specversion", SPEC_VERSION)?;
        map.serialize_entry("id", &m.id)?;
        map.serialize_entry("source", &*m.source)?;
        map.serialize_entry("type", &*m.topic)?;
        if let Some(subject) = &m.subject {
            map.serialize_entry("subject", subject)?;
        }
        if let Some(schema) = &m.dataschema {
            map.serialize_entry("dataschema", schema)?;
        }
        map.serialize_entry(
            "time",
            &m.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        )?;
        map.serialize_entry("datacontenttype", JSON)?;
        map.serialize_entry("data", &*data)?;
        // CloudEvents integers are 32-bit; a seq can outgrow that, so it is a string.
        map.serialize_entry("seq", &m.seq.to_string())?;
        // Events published without a Rust type have no name to give.
        if !m.event_name.is_empty() {
            map.serialize_entry("eventname", &*m.event_name)?;
        }
        map.serialize_entry("eventversion", &m.event_version)?;
        if let Some(v) = m.stream_version {
            // A string, as `seq`: a stream can outgrow 32 bits too.
            map.serialize_entry("streamversion", &v.to_string())?;
        }
        if let Some(c) = &m.correlation_id {
            map.serialize_entry("correlationid", c)?;
        }
        if let Some(c) = &m.causation_id {
            map.serialize_entry("causationid", c)?;
        }
        if let Some(k) = &m.idempotency_key {
            map.serialize_entry("idempotencykey", k)?;
        }
        for (name, value) in &m.headers {
            map.serialize_entry(name, &value.to_json())?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RawEnvelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `data` stays the publisher's exact text; only the (small)
        // attributes are parsed.
        let Attributes { mut map, data } = deserializer.deserialize_map(AttributesVisitor)?;
        if let Some(data) = &data {
            strict::validate(data.get()).map_err(|e| D::Error::custom(format!("`data`: {e}")))?;
        }
        map.remove("data");
        from_map(map, data).map_err(D::Error::custom)
    }
}

impl<E> Serialize for Envelope<E> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw().serialize(serializer)
    }
}

impl<'de, E: Event> Deserialize<'de> for Envelope<E> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawEnvelope::deserialize(deserializer)?;
        raw.decode::<E>().map_err(D::Error::custom)
    }
}

fn take_string(map: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "CloudEvents attribute `{key}` must be a string, got {other}"
        )),
    }
}

fn require(map: &mut Map<String, Value>, key: &str) -> Result<String, String> {
    take_string(map, key)?.ok_or_else(|| format!("CloudEvents attribute `{key}` is missing"))
}

fn take_u64(map: &mut Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("extension `{key}` must be a non-negative integer, got {n}")),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| format!("extension `{key}` must be a non-negative integer, got {s:?}")),
        Some(other) => Err(format!(
            "extension `{key}` must be a non-negative integer, got {other}"
        )),
    }
}

fn from_map(
    mut map: Map<String, Value>,
    data: Option<Box<RawValue>>,
) -> Result<RawEnvelope, String> {
    let spec = require(&mut map, "specversion")?;
    if spec != SPEC_VERSION {
        return Err(format!(
            "CloudEvents specversion `{spec}` is not supported; use `1.0`"
        ));
    }
    let id_text = require(&mut map, "id")?;
    let id = EventId::parse(&id_text).map_err(|e| format!("CloudEvents attribute `id`: {e}"))?;
    let source = require(&mut map, "source")?;
    if source.is_empty() {
        return Err("CloudEvents attribute `source` must not be empty".into());
    }
    let topic = require(&mut map, "type")?;
    eventbus_topic::validate_topic(&topic).map_err(|e| e.describe(&topic))?;
    let time = match take_string(&mut map, "time")? {
        None => Utc::now(),
        Some(t) => parse_time(&t).map_err(|e| format!("CloudEvents attribute `time`: {e}"))?,
    };
    let subject = take_string(&mut map, "subject")?;
    let dataschema = take_string(&mut map, "dataschema")?;
    if dataschema.as_deref() == Some("") {
        return Err("CloudEvents attribute `dataschema` must not be empty".into());
    }
    if let Some(ct) = take_string(&mut map, "datacontenttype")?
        && !is_json_media_type(&ct)
    {
        return Err(format!(
            "datacontenttype `{ct}` is not supported; eventbus carries JSON data"
        ));
    }
    if map.contains_key("data_base64") {
        return Err(
            "`data_base64` (binary data) is not supported; eventbus carries JSON data".into(),
        );
    }
    let data = match data {
        Some(data) => data,
        None => RawValue::from_string("null".to_owned()).map_err(|e| e.to_string())?,
    };
    let seq = take_u64(&mut map, "seq")?.unwrap_or(0);
    let event_version = match take_u64(&mut map, "eventversion")? {
        None => 1,
        Some(v) => u32::try_from(v).map_err(|_| format!("eventversion {v} is too large"))?,
    };
    let stream_version = take_u64(&mut map, "streamversion")?;
    let event_name = take_string(&mut map, "eventname")?.unwrap_or_default();
    let correlation_id = take_string(&mut map, "correlationid")?;
    let causation_id = take_string(&mut map, "causationid")?;
    let idempotency_key = take_string(&mut map, "idempotencykey")?;
    let mut headers = BTreeMap::new();
    for (name, value) in map {
        // A null attribute is unset; the replay mark only means something
        // inside the process that replays, so it is never taken from outside.
        if value.is_null() || name == super::REPLAY_HEADER {
            continue;
        }
        validate_header_name(&name)?;
        let value = HeaderValue::from_json(value)
            .map_err(|e| format!("extension attribute `{name}`: {e}"))?;
        headers.insert(name, value);
    }
    let meta = Metadata {
        id,
        topic: Cow::Owned(topic),
        time,
        source: Arc::from(source),
        subject,
        dataschema,
        correlation_id,
        causation_id,
        idempotency_key,
        headers,
        seq,
        event_name: Cow::Owned(event_name),
        event_version,
        stream_version,
    };
    Ok(RawEnvelope::from_parts(meta, data))
}

/// An RFC 3339 time, refused outside the years 0000 to 9999 in UTC: a
/// reader (the CloudEvents SDKs, eventbus itself) cannot read such a time
/// back once written in UTC.
pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let time = DateTime::parse_from_rfc3339(text)
        .map_err(|e| format!("`{text}` is not an RFC 3339 time: {e}"))?
        .with_timezone(&Utc);
    check_time(time).map_err(|e| format!("`{text}` {e}"))?;
    Ok(time)
}

/// Whether a time is one RFC 3339 can write in UTC (years 0000 to 9999).
pub(crate) fn check_time(time: DateTime<Utc>) -> Result<(), String> {
    use chrono::Datelike;
    if (0..=9999).contains(&time.year()) {
        Ok(())
    } else {
        Err(format!(
            "is in the year {} (UTC); times must fall within the years 0000 to 9999",
            time.year()
        ))
    }
}

/// A CloudEvent's attributes, each parsed, and its `data` as raw text.
struct Attributes {
    map: Map<String, Value>,
    data: Option<Box<RawValue>>,
}

/// Reads the top-level object, refusing an attribute given twice: with
/// `"type":"a","type":"b"` there is no telling which the producer meant.
struct AttributesVisitor;

impl<'de> Visitor<'de> for AttributesVisitor {
    type Value = Attributes;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map: a CloudEvents event is a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Attributes, A::Error> {
        let mut map = Map::new();
        let mut data = None;
        while let Some(name) = access.next_key::<String>()? {
            if map.contains_key(&name) || (name == "data" && data.is_some()) {
                return Err(A::Error::custom(format!(
                    "CloudEvents attribute `{name}` appears twice"
                )));
            }
            if name == "data" {
                data = Some(access.next_value::<Box<RawValue>>()?);
                // Marks `data` as seen; removed before the attributes are read.
                map.insert(name, Value::Null);
            } else {
                let value = access.next_value::<Value>()?;
                map.insert(name, value);
            }
        }
        Ok(Attributes { map, data })
    }
}

/// JSON media types are `*/json` and `*/*+json`, without parameters and in
/// any case.
fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some((_, subtype)) => subtype == "json" || subtype.ends_with("+json"),
        None => false,
    }
}

impl RawEnvelope {
    /// The envelope as CloudEvents 1.0 structured JSON.
    ///
    /// # Errors
    ///
    /// When a typed event does not serialize.
    pub fn to_cloudevent_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Reads a CloudEvents 1.0 structured JSON event.
    ///
    /// # Errors
    ///
    /// When the text is not JSON, or a required attribute is missing or
    /// malformed; the message names the attribute.
    pub fn from_cloudevent_json(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }
}
