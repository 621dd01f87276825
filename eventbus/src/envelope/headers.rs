//! Header names are CloudEvents extension attribute names, so every header
//! survives the trip through the CloudEvents form and NATS headers; header
//! values keep their CloudEvents type (string, integer or boolean), so an
//! event imported with `"priority": 5` is exported with `5`, not `"5"`.

use std::fmt;

/// The header marking an envelope delivered by a replay (`"true"`).
pub const REPLAY_HEADER: &str = "replay";

/// The header naming what published an event while handling another: the
/// handler, for an event published through [`Context`](crate::Context),
/// or the saga, for an event a saga step sent. With the causation id it
/// tells what produced each event of a flow; a publisher may set its own.
pub const HANDLER_HEADER: &str = "handler";

/// Attribute names the envelope itself uses; a header cannot take them.
pub(crate) const RESERVED: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
    "correlationid",
    "causationid",
    "idempotencykey",
    "seq",
    "eventname",
    "eventversion",
    "streamversion",
    REPLAY_HEADER,
];

const MAX_NAME_LEN: usize = 20;

/// Checks a header name: 1 to 20 lower-case ASCII letters or digits, as
/// CloudEvents asks of extension names, and not one of the envelope's own.
///
/// # Errors
///
/// A message naming the header and what is valid.
pub fn validate_header_name(name: &str) -> Result<(), String> {
    let shape_ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !shape_ok {
        return Err(format!(
            "header name `{name}` is invalid: header names are CloudEvents extension names, \
             1 to {MAX_NAME_LEN} lower-case ASCII letters or digits (for example `tenant` or `traceparent`)"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "header name `{name}` is reserved for the envelope's own attribute; choose another name"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_follow_cloudevents_extension_rules() {
        assert!(validate_header_name("tenant").is_ok());
        assert!(validate_header_name("traceparent").is_ok());
        assert!(validate_header_name("Tenant").is_err());
        assert!(validate_header_name("x-tenant").is_err());
        assert!(validate_header_name("").is_err());
        assert!(validate_header_name(&"a".repeat(21)).is_err());
        let reserved = validate_header_name("seq").expect_err("seq is reserved");
        assert!(reserved.contains("reserved"));
    }
}

/// A header's value, with the CloudEvents type it has in JSON.
///
/// Every value has a text form ([`HeaderValue::as_str`]), which is what
/// [`RawEnvelope::header`](crate::RawEnvelope::header) returns and what
/// travels in NATS headers; integers and booleans are written back as
/// JSON numbers and booleans in the CloudEvents form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HeaderValue {
    text: String,
    kind: HeaderKind,
}

/// The CloudEvents type of a header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderKind {
    /// A string (CloudEvents String, URI, URI-reference, Timestamp or
    /// Binary, which JSON carries as strings).
    String,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
}

impl HeaderValue {
    /// The value as text: the string itself, or the number or boolean
    /// written in JSON.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value's CloudEvents type.
    pub fn kind(&self) -> HeaderKind {
        self.kind
    }

    /// The value as an integer, when it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self.kind {
            HeaderKind::Integer => self.text.parse().ok(),
            _ => None,
        }
    }

    /// The value as a boolean, when it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self.kind {
            HeaderKind::Boolean => self.text.parse().ok(),
            _ => None,
        }
    }

    /// A value of `kind` from its text form, as NATS headers carry it.
    #[cfg(any(feature = "nats", feature = "redis"))]
    pub(crate) fn from_text(text: String, kind: HeaderKind) -> Result<Self, String> {
        let valid = match kind {
            HeaderKind::String => true,
            HeaderKind::Integer => text.parse::<i64>().is_ok(),
            HeaderKind::Boolean => text == "true" || text == "false",
        };
        if valid {
            Ok(HeaderValue { text, kind })
        } else {
            Err(format!("`{text}` is not a {kind:?} value"))
        }
    }

    /// The value from a JSON attribute value.
    pub(crate) fn from_json(value: serde_json::Value) -> Result<Self, String> {
        match value {
            serde_json::Value::String(text) => Ok(HeaderValue::from(text)),
            serde_json::Value::Bool(b) => Ok(HeaderValue::from(b)),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(n) => Ok(HeaderValue::from(n)),
                None => Err(format!(
                    "{n} is not a whole number that fits 64 bits; CloudEvents extension \
                     values are strings, integers or booleans"
                )),
            },
            other => Err(format!(
                "{other} is not a string, integer or boolean, the types CloudEvents \
                 extension values have"
            )),
        }
    }

    /// The value as JSON, with its type.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self.kind {
            HeaderKind::String => serde_json::Value::String(self.text.clone()),
            HeaderKind::Integer => self
                .as_i64()
                .map_or_else(|| self.text.clone().into(), serde_json::Value::from),
            HeaderKind::Boolean => serde_json::Value::Bool(self.text == "true"),
        }
    }
}

impl From<String> for HeaderValue {
    fn from(text: String) -> Self {
        HeaderValue {
            text,
            kind: HeaderKind::String,
        }
    }
}

impl From<&str> for HeaderValue {
    fn from(text: &str) -> Self {
        HeaderValue::from(text.to_owned())
    }
}

impl From<&String> for HeaderValue {
    fn from(text: &String) -> Self {
        HeaderValue::from(text.clone())
    }
}

impl From<bool> for HeaderValue {
    fn from(b: bool) -> Self {
        HeaderValue {
            text: b.to_string(),
            kind: HeaderKind::Boolean,
        }
    }
}

macro_rules! integer_header_values {
    ($($t:ty),*) => {$(
        impl From<$t> for HeaderValue {
            fn from(n: $t) -> Self {
                HeaderValue { text: n.to_string(), kind: HeaderKind::Integer }
            }
        }
    )*};
}
integer_header_values!(i8, i16, i32, i64, u8, u16, u32);

/// What can be a header value: strings (`&str`, `String`), whole numbers
/// that fit an `i64` (`i8` to `i64`, `u8` to `u32`), booleans, and
/// [`HeaderValue`] itself. Anything else is formatted first, for example
/// with `.to_string()`; a `u64` or `usize` may not fit and needs
/// `i64::try_from` or text.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a header value",
    label = "not a string, integer or boolean",
    note = "header values are CloudEvents extension values: strings (`&str`, `String`), \
            integers (`i8` to `i64`, `u8` to `u32`) or `bool`",
    note = "format other values first, for example with `.to_string()`"
)]
pub trait IntoHeaderValue {
    /// The value with its CloudEvents type.
    fn into_header_value(self) -> HeaderValue;
}

macro_rules! into_header_values {
    ($($t:ty),*) => {$(
        impl IntoHeaderValue for $t {
            fn into_header_value(self) -> HeaderValue {
                HeaderValue::from(self)
            }
        }
    )*};
}
into_header_values!(&str, String, &String, bool, i8, i16, i32, i64, u8, u16, u32);

impl IntoHeaderValue for HeaderValue {
    fn into_header_value(self) -> HeaderValue {
        self
    }
}

impl fmt::Display for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            HeaderKind::String => fmt::Debug::fmt(&self.text, f),
            _ => f.write_str(&self.text),
        }
    }
}

impl PartialEq<str> for HeaderValue {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for HeaderValue {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}
