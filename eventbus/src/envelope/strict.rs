//! Strict validation of JSON `data` that came from outside.
//!
//! `data` is kept as the producer's exact text, read as a `RawValue`, which
//! only checks the syntax: a lone surrogate escape (`"\ud800"`) or nesting
//! deeper than serde_json's limit of 128 passes, and an export of such an
//! event is then refused by other CloudEvents readers. Walking the value
//! with serde_json's own decoder applies its rules (strings decode to
//! valid Unicode, nesting is bounded) without building the value.
//!
//! Object keys that serde_json keeps for itself are refused too: with its
//! `raw_value` feature (which eventbus turns on, so every program using
//! eventbus has it) a `Value` reads `{"$serde_json::private::RawValue":
//! "[1]"}` as `[1]`, and `arbitrary_precision` does the same with its
//! number name; such data would decode as something else than was sent.

use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};

/// The names serde_json gives a raw value and an arbitrary-precision
/// number when it passes them through serde as one-key objects.
const PRIVATE_KEYS: &[&str] = &[
    "$serde_json::private::RawValue",
    "$serde_json::private::Number",
];

/// Checks that `text` is one JSON value that serde_json reads in full.
///
/// # Errors
///
/// serde_json's message, with the line and column.
pub(crate) fn validate(text: &str) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_str(text);
    Strict::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())
}

/// Any JSON value, decoded and dropped.
struct Strict;

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `deserialize_any`, unlike `deserialize_ignored_any`, decodes
        // strings and counts nesting.
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        while seq.next_element::<Strict>()?.is_some() {}
        Ok(Strict)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        while map.next_entry::<Key, Strict>()?.is_some() {}
        Ok(Strict)
    }
}

/// An object key, decoded and dropped unless it is one of [`PRIVATE_KEYS`].
struct Key;

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: Error>(self, key: &str) -> Result<Key, E> {
        if PRIVATE_KEYS.contains(&key) {
            return Err(E::custom(format!(
                "the key `{key}` is a name serde_json keeps for itself, and a serde_json \
                 reader would take its object for something else"
            )));
        }
        Ok(Key)
    }
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn what_serde_json_refuses_is_refused() {
        for good in [
            r#"{"a":[1,2.5,"x",null,true]}"#,
            "12345678901234567890123",
            "\"\\ud83d\\ude00\"",
        ] {
            assert_eq!(validate(good), Ok(()), "{good}");
        }
        let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        for bad in [
            r#""\ud800""#,
            r#"{"a":"\udc00"}"#,
            deep.as_str(),
            "1 2",
            r#"[{"$serde_json::private::RawValue":"1"}]"#,
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}
