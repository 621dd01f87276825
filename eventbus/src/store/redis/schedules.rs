//! Scheduled events on Redis: the sorted set `PREFIX:scheduled` (event
//! ids scored by their due time in microseconds since 1970, exact in a
//! double until the year 2255) and, per event, the list
//! `PREFIX:scheduled:ID` holding its entry's fields as `XADD` will write
//! them. Releasing is one Lua script that takes the due ids, adds each
//! event to the stream and deletes it from the schedule, so of several
//! processes asking at once exactly one publishes each event, once; one
//! due while every process was down is published by the first to ask.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use super::entry::{self, Entry};
use super::{Shared, redis_error};
use crate::envelope::{Draft, RawEnvelope};
use crate::error::{Error, Result};
use crate::store::schedules::Scheduled;

/// How many due events one release moves at most; the bus asks again
/// at once when it got a full batch's worth.
const RELEASE_AT_MOST: usize = 1000;

/// Keeps an event's fields and due time, unless one with its id waits.
/// Makes the stream, empty, if there is none yet: scheduling makes a
/// store, as publishing does, so the tools find it.
/// KEYS: the schedule, the event's list, the stream. ARGV: id, due, the
/// fields.
static SCHEDULE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[3], 'eventbus-made', '$', 'MKSTREAM')
  redis.call('XGROUP', 'DESTROY', KEYS[3], 'eventbus-made')
end
redis.call('RPUSH', KEYS[2], unpack(ARGV, 3))
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
",
    )
});

/// Drops a waiting event. KEYS: the schedule, the event's list. ARGV: id.
static CANCEL: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
return 1
",
    )
});

/// Every waiting event, soonest first: `{{id, due, {fields}}, ...}`.
/// KEYS: the schedule. ARGV: the lists' key prefix (`PREFIX:scheduled:`).
static LIST: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local out = {}
local waiting = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #waiting, 2 do
  local fields = redis.call('LRANGE', ARGV[1] .. waiting[i], 0, -1)
  table.insert(out, {waiting[i], waiting[i + 1], fields})
end
return out
",
    )
});

/// Moves the due events into the stream, as `APPEND` adds an event
/// (trimming by count, then exactly by age); answers them as `XRANGE`
/// would, `{{entry id, {fields}}, ...}`. An id whose fields are gone is
/// dropped from the schedule.
///
/// KEYS: the schedule, the stream. ARGV: now, at most, the lists' key
/// prefix, MAXLEN or `''`, max age in ms or `''`.
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do
  local list = ARGV[3] .. id
  local fields = redis.call('LRANGE', list, 0, -1)
  redis.call('ZREM', KEYS[1], id)
  redis.call('DEL', list)
  if #fields > 0 then
    local add = {'XADD', KEYS[2]}
    if ARGV[4] ~= '' then
      table.insert(add, 'MAXLEN'); table.insert(add, '~'); table.insert(add, ARGV[4])
    end
    table.insert(add, '*')
    for _, f in ipairs(fields) do table.insert(add, f) end
    table.insert(out, {redis.call(unpack(add)), fields})
  end
end
if #out > 0 and ARGV[5] ~= '' then
  local t = redis.call('TIME')
  local cut = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[5])
  if cut > 0 then
    redis.call('XTRIM', KEYS[2], 'MINID', string.format('%.0f', cut))
  end
end
return out
",
    )
});

/// An entry's fields as read: names and values.
type Fields = Vec<(String, Vec<u8>)>;

fn schedule_key(shared: &Shared) -> String {
    shared.config.key("scheduled")
}

fn list_prefix(shared: &Shared) -> String {
    shared.config.key("scheduled:")
}

/// A due time as the schedule's score: microseconds, rounded up so an
/// event is never released before its time.
fn score(due: DateTime<Utc>) -> i64 {
    let micros = due.timestamp_micros();
    if due.timestamp_subsec_nanos().is_multiple_of(1000) {
        micros
    } else {
        micros.saturating_add(1)
    }
}

pub(super) async fn schedule(shared: &Shared, draft: Draft, due: DateTime<Utc>) -> Result<()> {
    let id = draft.id().to_string();
    let data = draft.data_bytes()?;
    let mut call = SCHEDULE.key(schedule_key(shared));
    call.key(format!("{}{id}", list_prefix(shared)))
        .key(&shared.stream)
        .arg(&id)
        .arg(score(due));
    entry::encode(&draft, &data, |name, value| {
        call.arg(name).arg(value);
    })
    .map_err(|reason| Error::InvalidEvent {
        reason: format!("it does not encode for scheduling: {reason}"),
    })?;
    call.invoke_async::<()>(&mut shared.conn.clone())
        .await
        .map_err(redis_error("scheduling an event"))
}

pub(super) async fn cancel(shared: &Shared, id: &str) -> Result<bool> {
    CANCEL
        .key(schedule_key(shared))
        .key(format!("{}{id}", list_prefix(shared)))
        .arg(id)
        .invoke_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("cancelling a scheduled event"))
}

pub(super) async fn list(shared: &Shared) -> Result<Vec<Scheduled>> {
    let waiting: Vec<(String, f64, Fields)> = LIST
        .key(schedule_key(shared))
        .arg(list_prefix(shared))
        .invoke_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("listing scheduled events"))?;
    let prefix = &shared.config.prefix;
    Ok(waiting
        .into_iter()
        .filter_map(|(id, due, fields)| {
            // Seq 0 until it is published, as the entry id `0-0` reads.
            let waiting = Entry {
                id: "0-0".to_owned(),
                fields,
            };
            match entry::decode(prefix, &waiting) {
                Ok(envelope) => Some(Scheduled {
                    due: DateTime::from_timestamp_micros(due as i64).unwrap_or_default(),
                    envelope,
                }),
                Err(e) => {
                    tracing::error!(id, error = %e, "a scheduled event does not read");
                    None
                }
            }
        })
        .collect())
}

pub(super) async fn next_due(shared: &Shared) -> Result<Option<DateTime<Utc>>> {
    let soonest: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(schedule_key(shared))
        .arg(0)
        .arg(0)
        .arg("WITHSCORES")
        .query_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("reading the next due time"))?;
    Ok(soonest
        .first()
        .and_then(|(_, due)| DateTime::from_timestamp_micros(*due as i64)))
}

pub(super) async fn release_due(shared: &Shared, now: DateTime<Utc>) -> Result<Vec<RawEnvelope>> {
    let c = &shared.config;
    let released: redis::Value = RELEASE
        .key(schedule_key(shared))
        .key(&shared.stream)
        .arg(now.timestamp_micros())
        .arg(RELEASE_AT_MOST)
        .arg(list_prefix(shared))
        .arg(c.max_events.map(|n| n.to_string()).unwrap_or_default())
        .arg(
            c.max_age
                .map(|a| a.as_millis().to_string())
                .unwrap_or_default(),
        )
        .invoke_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("publishing due events"))?;
    let entries = entry::entries(released).map_err(|e| Error::store("redis", e))?;
    let mut out = Vec::with_capacity(entries.len());
    for released in entries {
        match entry::decode(&c.prefix, &released) {
            // Sealed anew, so the bus routes it as it routes a publish.
            Ok(env) => out.push(Draft::from_envelope(&env).seal(env.seq())),
            // In the stream now, unreadable: the handlers' consumer groups
            // bury it as they bury any unreadable entry.
            Err(e) => {
                tracing::error!(entry = released.id, error = %e, "a released event does not read")
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_round_up_to_the_microsecond() {
        let at = |ns: i64| DateTime::from_timestamp_nanos(ns);
        assert_eq!(score(at(1_700_000_000_000_001_000)), 1_700_000_000_000_001);
        assert_eq!(score(at(1_700_000_000_000_001_001)), 1_700_000_000_000_002);
        assert_eq!(score(at(1_700_000_000_000_001_999)), 1_700_000_000_000_002);
    }
}
