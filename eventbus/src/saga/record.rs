//! The JSON record a store keeps per saga instance: the state, where the
//! instance came from, which events it has handled, its timers, and the
//! effects of its last step until they are done.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::context::Effect;
use crate::envelope::{Draft, RawEnvelope};
use crate::error::{Error, Result};

/// How many handled event ids a record remembers, to skip a redelivered
/// one: an event is redelivered only while unacknowledged, long before
/// that many newer events of one instance are handled.
const REMEMBERED: usize = 256;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) correlation_id: String,
    pub(crate) started: DateTime<Utc>,
    pub(crate) updated: DateTime<Utc>,
    pub(crate) state: Box<RawValue>,
    /// Ids of the events handled, oldest first.
    pub(crate) handled: VecDeque<String>,
    /// Ids of the events it scheduled that have neither fired nor been
    /// cancelled.
    #[serde(default)]
    pub(crate) timers: Vec<String>,
    /// The last step's effects, while they may not all be done.
    #[serde(default)]
    pub(crate) pending: Vec<StoredEffect>,
}

/// An effect as the record keeps it: events in CloudEvents JSON, so the
/// record reads in any tool and needs no Rust type to be replayed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StoredEffect {
    Publish {
        event: Box<RawValue>,
    },
    Schedule {
        event: Box<RawValue>,
        due: DateTime<Utc>,
    },
    Cancel {
        id: String,
    },
}

impl Record {
    pub(crate) fn parse(saga: &str, key: &str, json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| Error::InvalidEvent {
            reason: format!("the record of saga {saga} instance {key} does not read: {e}"),
        })
    }

    pub(crate) fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::InvalidEvent {
            reason: format!("a saga record does not encode: {e}"),
        })
    }

    pub(crate) fn has_handled(&self, id: &str) -> bool {
        self.handled.iter().any(|h| h == id)
    }

    pub(crate) fn remember(&mut self, id: String) {
        if self.handled.len() == REMEMBERED {
            self.handled.pop_front();
        }
        self.handled.push_back(id);
    }
}

impl StoredEffect {
    pub(crate) fn of(effect: Effect) -> Result<Self> {
        // Raw text, so the data keeps its fields' order (an externally
        // tagged enum, since serde cannot keep raw text in a tagged one).
        let encode = |draft: Draft| -> Result<Box<RawValue>> {
            serde_json::value::to_raw_value(&draft.seal(0)).map_err(|e| Error::InvalidEvent {
                reason: format!("an event a saga sends does not encode: {e}"),
            })
        };
        Ok(match effect {
            Effect::Publish(draft) => StoredEffect::Publish {
                event: encode(draft)?,
            },
            Effect::Schedule(draft, due) => StoredEffect::Schedule {
                event: encode(draft)?,
                due,
            },
            Effect::Cancel(id) => StoredEffect::Cancel { id },
        })
    }

    /// The event of a publish or a schedule, as a draft that keeps its id.
    pub(crate) fn draft(event: &RawValue) -> Result<Draft> {
        let envelope = RawEnvelope::from_cloudevent_json(event.get().as_bytes()).map_err(|e| {
            Error::InvalidEvent {
                reason: format!("an event a saga kept to send does not read: {e}"),
            }
        })?;
        Ok(Draft::from_envelope(&envelope))
    }
}
