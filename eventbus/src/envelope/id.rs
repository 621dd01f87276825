//! Event ids: any non-empty string, as CloudEvents allows.
//!
//! Publishing mints a UUID v7 (time-ordered), kept as the 16 bytes it is;
//! an imported event keeps whatever id its producer gave it (the
//! CloudEvents spec's own example is `A234-1234-1234`). Text that is
//! exactly the canonical form of a UUID (lower-case, hyphenated) is kept
//! as a UUID, which prints back the same; anything else is kept as text,
//! so every id round-trips unchanged.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// The id of an event: unique per store (a store never keeps two events
/// with one id), compared as text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EventId(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Uuid(Uuid),
    Text(Arc<str>),
}

impl EventId {
    /// A fresh UUID v7, which sorts by creation time.
    pub fn new_v7() -> Self {
        EventId(Repr::Uuid(Uuid::now_v7()))
    }

    /// An id from its text.
    ///
    /// # Errors
    ///
    /// A message when the text is empty (CloudEvents requires an id).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("an event id must not be empty".to_owned());
        }
        if text.len() == 36
            && let Ok(uuid) = Uuid::try_parse(text)
            && uuid.hyphenated().to_string() == text
        {
            return Ok(EventId(Repr::Uuid(uuid)));
        }
        Ok(EventId(Repr::Text(Arc::from(text))))
    }

    /// The UUID, when the id is one.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match &self.0 {
            Repr::Uuid(uuid) => Some(*uuid),
            Repr::Text(_) => None,
        }
    }
}

impl From<Uuid> for EventId {
    fn from(uuid: Uuid) -> Self {
        EventId(Repr::Uuid(uuid))
    }
}

impl PartialEq<Uuid> for EventId {
    fn eq(&self, other: &Uuid) -> bool {
        self.as_uuid() == Some(*other)
    }
}

impl PartialEq<Uuid> for &EventId {
    fn eq(&self, other: &Uuid) -> bool {
        **self == *other
    }
}

impl PartialEq<str> for EventId {
    fn eq(&self, other: &str) -> bool {
        match &self.0 {
            Repr::Uuid(uuid) => other.len() == 36 && uuid.hyphenated().to_string() == other,
            Repr::Text(text) => &**text == other,
        }
    }
}

impl PartialEq<&str> for EventId {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Uuid(uuid) => fmt::Display::fmt(&uuid.hyphenated(), f),
            Repr::Text(text) => f.write_str(text),
        }
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        EventId::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_round_trips_as_the_same_text() {
        let uuid = Uuid::now_v7();
        for text in [
            uuid.hyphenated().to_string(),
            "A234-1234-1234".to_owned(),
            uuid.hyphenated().to_string().to_uppercase(),
            uuid.simple().to_string(),
            " padded ".to_owned(),
        ] {
            let id = EventId::parse(&text).unwrap();
            assert_eq!(id.to_string(), text);
            assert_eq!(id, *text.as_str());
        }
        assert_eq!(EventId::parse(&uuid.to_string()).unwrap(), uuid);
        assert_eq!(
            EventId::parse(&uuid.to_string().to_uppercase())
                .unwrap()
                .as_uuid(),
            None,
            "a UUID in another spelling is kept as that text"
        );
        assert!(EventId::parse("").is_err());
    }
}
