//! JSON encoding that refuses non-finite floats.
//!
//! JSON has no NaN or infinity, and serde_json writes them as `null`. For
//! event data that is a trap: a `NaN` in an `f64` field would be stored as
//! `null`, which then never decodes back into an `f64` (or, in an
//! `Option<f64>`, silently reads back as `None`). [`to_vec`] fails instead,
//! with the path to the offending value.
//!
//! Publishing is the hot path, so the check costs nothing unless the output
//! contains a `null`: serde_json writes every NaN or infinity through its
//! formatter's `write_null`, the same call it makes for `None` and `()`, so
//! [`NullWatch`] notes whether that call happened at all. Only then does
//! [`FiniteCheck`] walk the value a second time, writing nothing, to tell a
//! float from a real `null`. It keeps no path on the way down; the error
//! collects the steps on its way back up, so a value without a bad float
//! costs only the walk.

use std::fmt;
use std::io;

use serde::ser::{self, Serialize};

/// Why a value does not encode.
#[derive(Debug)]
pub(crate) enum Unencodable {
    /// A `Serialize` implementation failed, or serde_json refused the
    /// value's shape (a map key that is not a string).
    Serialize(String),
    /// A float is NaN or infinite.
    NonFinite { path: Path, value: f64 },
}

impl Unencodable {
    /// Adds the step to a non-finite float's path, as the error passes
    /// through the compound that took that step.
    fn within(mut self, step: Step) -> Self {
        if let Unencodable::NonFinite { path, .. } = &mut self {
            path.0.push(step);
        }
        self
    }

    /// [`Unencodable::within`] the variant a compound belongs to, if any.
    fn within_variant(self, variant: Option<&'static str>) -> Self {
        match variant {
            Some(name) => self.within(Step::Name(name)),
            None => self,
        }
    }
}

impl fmt::Display for Unencodable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unencodable::Serialize(reason) => f.write_str(reason),
            Unencodable::NonFinite { path, value } => {
                let what = if value.is_nan() {
                    "NaN"
                } else if *value > 0.0 {
                    "infinity"
                } else {
                    "negative infinity"
                };
                if path.0.is_empty() {
                    write!(f, "the data is {what}")?;
                } else {
                    write!(f, "field `{path}` is {what}")?;
                }
                f.write_str(
                    "; JSON has no NaN or infinity, so eventbus refuses to encode it \
                     rather than store null, which would not read back as the value",
                )
            }
        }
    }
}

impl std::error::Error for Unencodable {}

impl ser::Error for Unencodable {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Unencodable::Serialize(msg.to_string())
    }
}

/// Where a value sits in the data, displayed like `readings[2].celsius` or
/// `by_room["hall"]`; empty when the value is the whole data.
#[derive(Debug, Default)]
pub(crate) struct Path(
    /// Innermost step first: the order in which the error collects them.
    Vec<Step>,
);

/// One step of a [`Path`].
#[derive(Debug)]
enum Step {
    /// A struct field or an enum variant.
    Name(&'static str),
    /// A position in a sequence, tuple, or tuple struct or variant.
    Index(usize),
    /// A map key as serde_json writes it: a string quoted, a number bare.
    Key(String),
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().rev().enumerate() {
            match step {
                Step::Name(name) if i == 0 => f.write_str(name)?,
                Step::Name(name) => write!(f, ".{name}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
                Step::Key(key) => write!(f, "[{key}]")?,
            }
        }
        Ok(())
    }
}

fn key_step<K: Serialize + ?Sized>(key: &K) -> Step {
    // serde_json accepted this key a moment ago, so writing it again
    // succeeds; the `?` is only a guard.
    Step::Key(serde_json::to_string(key).unwrap_or_else(|_| "?".to_owned()))
}

/// Compact JSON, byte for byte what `serde_json::to_vec` writes, or an
/// error when any float in `value` is NaN or infinite.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Unencodable> {
    // The capacity serde_json::to_vec starts with.
    let mut out = Vec::with_capacity(128);
    let mut wrote_null = false;
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        NullWatch {
            wrote_null: &mut wrote_null,
        },
    );
    value
        .serialize(&mut ser)
        .map_err(|e| Unencodable::Serialize(e.to_string()))?;
    if wrote_null {
        value.serialize(FiniteCheck)?;
    }
    Ok(out)
}

/// serde_json's compact formatter, noting whether it wrote a `null`.
struct NullWatch<'a> {
    wrote_null: &'a mut bool,
}

impl serde_json::ser::Formatter for NullWatch<'_> {
    fn write_null<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        *self.wrote_null = true;
        writer.write_all(b"null")
    }
}

/// A serializer that writes nothing and fails at the first non-finite
/// float.
///
/// It accepts everything serde_json accepts and more: it runs only on
/// values serde_json has just encoded, so it need not repeat their checks.
#[derive(Clone, Copy)]
struct FiniteCheck;

impl FiniteCheck {
    fn check(value: f64) -> Result<(), Unencodable> {
        if value.is_finite() {
            return Ok(());
        }
        Err(Unencodable::NonFinite {
            path: Path::default(),
            value,
        })
    }
}

/// The elements of a sequence, tuple, or tuple struct or variant.
struct Elements {
    next: usize,
    variant: Option<&'static str>,
}

impl Elements {
    fn new(variant: Option<&'static str>) -> Self {
        Elements { next: 0, variant }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unencodable> {
        let index = self.next;
        self.next += 1;
        value
            .serialize(FiniteCheck)
            .map_err(|e| e.within(Step::Index(index)).within_variant(self.variant))
    }
}

/// The fields of a struct or struct variant.
struct Fields {
    variant: Option<&'static str>,
}

impl Fields {
    fn field<T: Serialize + ?Sized>(
        &self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Unencodable> {
        value
            .serialize(FiniteCheck)
            .map_err(|e| e.within(Step::Name(name)).within_variant(self.variant))
    }
}

/// The entries of a map.
struct Entries {
    /// The key of the value to come, kept only when a `Serialize`
    /// implementation sends key and value separately rather than as an
    /// entry (which all of serde's own do).
    key: Option<Step>,
}

/// Serializer methods for values that hold no float: nothing to check.
macro_rules! no_floats_in {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method(self, _: $ty) -> Result<(), Unencodable> {
                Ok(())
            }
        )*
    };
}

impl ser::Serializer for FiniteCheck {
    type Ok = ();
    type Error = Unencodable;
    type SerializeSeq = Elements;
    type SerializeTuple = Elements;
    type SerializeTupleStruct = Elements;
    type SerializeTupleVariant = Elements;
    type SerializeMap = Entries;
    type SerializeStruct = Fields;
    type SerializeStructVariant = Fields;

    fn serialize_f32(self, v: f32) -> Result<(), Unencodable> {
        FiniteCheck::check(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), Unencodable> {
        FiniteCheck::check(v)
    }

    no_floats_in! {
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        // serde's default for these is an error; serde_json takes them.
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    }

    // Skips formatting the value into a string, which the default does.
    fn collect_str<T: fmt::Display + ?Sized>(self, _: &T) -> Result<(), Unencodable> {
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Unencodable> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unencodable> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Unencodable> {
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), Unencodable> {
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Unencodable> {
        value.serialize(self)
    }

    // serde_json writes `{"Variant":value}`, so the variant is a step of
    // the path, as it is for tuple and struct variants. (An event enum's own
    // variants are not: its data is the variant's content alone.)
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unencodable> {
        value
            .serialize(self)
            .map_err(|e| e.within(Step::Name(variant)))
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Elements, Unencodable> {
        Ok(Elements::new(None))
    }

    fn serialize_tuple(self, _: usize) -> Result<Elements, Unencodable> {
        Ok(Elements::new(None))
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Elements, Unencodable> {
        Ok(Elements::new(None))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Elements, Unencodable> {
        Ok(Elements::new(Some(variant)))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Entries, Unencodable> {
        Ok(Entries { key: None })
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields, Unencodable> {
        Ok(Fields { variant: None })
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Fields, Unencodable> {
        Ok(Fields {
            variant: Some(variant),
        })
    }
}

impl ser::SerializeSeq for Elements {
    type Ok = ();
    type Error = Unencodable;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unencodable> {
        self.element(value)
    }

    fn end(self) -> Result<(), Unencodable> {
        Ok(())
    }
}

impl ser::SerializeTuple for Elements {
    type Ok = ();
    type Error = Unencodable;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unencodable> {
        self.element(value)
    }

    fn end(self) -> Result<(), Unencodable> {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Elements {
    type Ok = ();
    type Error = Unencodable;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unencodable> {
        self.element(value)
    }

    fn end(self) -> Result<(), Unencodable> {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for Elements {
    type Ok = ();
    type Error = Unencodable;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unencodable> {
        self.element(value)
    }

    fn end(self) -> Result<(), Unencodable> {
        Ok(())
    }
}

impl ser::SerializeMap for Entries {
    type Ok = ();
    type Error = Unencodable;

    fn serialize_entry<K, V>(&mut self, key: &K, value: &V) -> Result<(), Unencodable>
    where
        K: Serialize + ?Sized,
        V: Serialize + ?Sized,
    {
        value
            .serialize(FiniteCheck)
            .map_err(|e| e.within(key_step(key)))
    }

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unencodable> {
        self.key = Some(key_step(key));
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unencodable> {
        let key = self.key.take();
        value.serialize(FiniteCheck).map_err(|e| match key {
            Some(key) => e.within(key),
            None => e,
        })
    }

    fn end(self) -> Result<(), Unencodable> {
        Ok(())
    }
}

impl ser::SerializeStruct for Fields {
    type Ok = ();
    type Error = Unencodable;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Unencodable> {
        self.field(name, value)
    }

    fn end(self) -> Result<(), Unencodable> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Fields {
    type Ok = ();
    type Error = Unencodable;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Unencodable> {
        self.field(name, value)
    }

    fn end(self) -> Result<(), Unencodable> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn path_of<T: Serialize + ?Sized>(value: &T) -> String {
        match to_vec(value) {
            Err(Unencodable::NonFinite { path, .. }) => path.to_string(),
            other => panic!("expected a non-finite float, got {other:?}"),
        }
    }

    #[test]
    fn output_is_serde_jsons() {
        let value = (
            Some(1.5f64),
            None::<u8>,
            (),
            vec![f32::MIN_POSITIVE],
            "null \u{e9}\"",
            u128::MAX,
            BTreeMap::from([(3u8, -0.0f64)]),
        );
        assert_eq!(to_vec(&value).unwrap(), serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn paths_name_elements_keys_and_variants() {
        #[derive(serde::Serialize)]
        enum Kind {
            Unit,
            Newtype(f32),
            Tuple(u8, f64),
            Struct { x: f64 },
        }
        assert_eq!(path_of(&f64::NAN), "");
        assert_eq!(path_of(&(1.0, None::<f64>, Some(f64::INFINITY))), "[2]");
        assert_eq!(
            path_of(&[Kind::Unit, Kind::Newtype(f32::NAN)]),
            "[1].Newtype"
        );
        assert_eq!(path_of(&Kind::Tuple(0, f64::NAN)), "Tuple[1]");
        assert_eq!(path_of(&vec![Kind::Struct { x: f64::NAN }]), "[0].Struct.x");
        let nested = BTreeMap::from([("a", BTreeMap::from([(7u16, vec![f64::NAN])]))]);
        assert_eq!(path_of(&nested), r#"["a"][7][0]"#);
    }

    #[test]
    fn a_key_sent_apart_from_its_value_still_names_it() {
        struct KeyThenValue;
        impl Serialize for KeyThenValue {
            fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use ser::SerializeMap as _;
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_key("fine")?;
                map.serialize_value(&1.0)?;
                map.serialize_key("bad")?;
                map.serialize_value(&f64::INFINITY)?;
                map.end()
            }
        }
        assert_eq!(path_of(&KeyThenValue), r#"["bad"]"#);
    }

    #[test]
    fn message_names_the_field_and_the_value() {
        #[derive(serde::Serialize)]
        struct Reading {
            celsius: f64,
        }
        for (celsius, says) in [
            (
                f64::NAN,
                "field `celsius` is NaN; JSON has no NaN or infinity",
            ),
            (f64::INFINITY, "field `celsius` is infinity;"),
            (f64::NEG_INFINITY, "field `celsius` is negative infinity;"),
        ] {
            let err = to_vec(&Reading { celsius }).unwrap_err().to_string();
            assert!(err.starts_with(says), "{err}");
        }
        let err = to_vec(&f32::NAN).unwrap_err().to_string();
        assert!(err.starts_with("the data is NaN;"), "{err}");
    }
}
