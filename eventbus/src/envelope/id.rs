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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
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
        Self::stamped().0
    }

    /// A fresh UUID v7 and the time it holds, from one reading of the
    /// clock: a publish needs both, and on a VM the clock is one of the
    /// dearer things it does. Ids made in one process sort in the order
    /// they were made, as with [`Uuid::now_v7`].
    ///
    /// The layout is RFC 9562's "fixed bit-length dedicated counter"
    /// (method 1): after the 48-bit millisecond come a 22-bit counter
    /// (`rand_a` and the top of `rand_b`) and 52 random bits. Each new
    /// millisecond starts its counter at a random place in the lower half,
    /// so two processes minting in one millisecond do not count alike, and
    /// more than two million ids fit in one before the counter carries
    /// into the next. It is one atomic word instead of `uuid`'s locked
    /// context and its nanosecond arithmetic, a fifth of a publish before.
    pub(crate) fn stamped() -> (Self, DateTime<Utc>) {
        const COUNTER_BITS: u32 = 22;
        const COUNTER: u64 = (1 << COUNTER_BITS) - 1;
        /// The last id's millisecond (high 42 bits: until the year 2109)
        /// and counter (low 22 bits).
        static LAST: AtomicU64 = AtomicU64::new(0);

        let since_epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let (secs, nanos) = (since_epoch.as_secs(), since_epoch.subsec_nanos());
        let random = Uuid::new_v4().as_u128();
        let millis = secs.wrapping_mul(1000) + u64::from(nanos / 1_000_000);
        let fresh = (millis << COUNTER_BITS) | (random as u64 & (COUNTER >> 1));
        let mut last = LAST.load(Ordering::Relaxed);
        let stamp = loop {
            let next = if fresh > last { fresh } else { last + 1 };
            match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break next,
                Err(seen) => last = seen,
            }
        };
        let (millis, counter) = (
            u128::from(stamp >> COUNTER_BITS),
            u128::from(stamp & COUNTER),
        );
        let uuid = Uuid::from_u128(
            millis << 80
                | 0x7 << 76
                | (counter >> 10) << 64
                | 0b10 << 62
                | (counter & 0x3ff) << 52
                | (random >> 64) & ((1 << 52) - 1),
        );
        let time = i64::try_from(secs)
            .ok()
            .and_then(|secs| DateTime::from_timestamp(secs, nanos))
            .unwrap_or_default();
        (EventId(Repr::Uuid(uuid)), time)
    }

    /// A UUID v5 named by `name`: the same name always gives the same id,
    /// so an effect retried after a crash is stored once.
    pub(crate) fn derived(name: &str) -> Self {
        /// The namespace of eventbus' derived ids (a v4 UUID made once).
        const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a7e_4d3b_4e0a_9b62_1f5c_8d0e_7a31);
        EventId(Repr::Uuid(Uuid::new_v5(&NAMESPACE, name.as_bytes())))
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
    fn stamped_ids_sort_as_made_and_hold_their_time() {
        let stamped: Vec<_> = (0..10_000).map(|_| EventId::stamped()).collect();
        let uuids: Vec<Uuid> = stamped
            .iter()
            .map(|(id, _)| match id.0 {
                Repr::Uuid(u) => u,
                Repr::Text(_) => panic!("a fresh id is a UUID"),
            })
            .collect();
        assert!(uuids.windows(2).all(|w| w[0] < w[1]), "ids out of order");
        for uuid in &uuids {
            assert_eq!(uuid.get_version_num(), 7, "{uuid}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{uuid}");
        }
        for (uuid, (_, time)) in uuids.iter().zip(&stamped) {
            let (secs, nanos) = uuid.get_timestamp().expect("a v7 timestamp").to_unix();
            let held = i64::try_from(secs).unwrap() * 1000 + i64::from(nanos / 1_000_000);
            // An id's millisecond may run past the clock's when a later id
            // was minted between reading the clock and counting (another
            // thread) or the counter carried; never behind it.
            let diff = held - time.timestamp_millis();
            assert!(
                (0..=1).contains(&diff),
                "{uuid} holds {held} ms, time is {time}"
            );
        }
        // Many threads at once (in this test: one minting thread may read
        // the clock, lose the processor and find a later id minted since,
        // which would fail the check above).
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..20_000)
                        .map(|_| EventId::stamped().0)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        for thread in threads {
            let ids = thread.join().unwrap();
            let uuids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid().unwrap()).collect();
            assert!(uuids.windows(2).all(|w| w[0] < w[1]), "ids out of order");
            all.extend(uuids);
        }
        assert_eq!(all.len(), 80_000, "an id was minted twice");
    }

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
