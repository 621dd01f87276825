//! Entity streams and snapshots on Redis.
//!
//! An entity's events are ordinary entries of `PREFIX:events`, so
//! handlers, subscriptions, history and replay see a save as any publish.
//! What makes them one entity's stream is an index beside it, the list
//! `PREFIX:entity:KIND:ID` of their entry ids in version order: its
//! length is the entity's version, and loading reads only the entries it
//! names, never the rest of the bus. A save is one Lua script, so the
//! version check, the `XADD`s and the index grow together or not at all,
//! with no other writer in between: that is the optimistic concurrency
//! check, with no lock held between loading and saving.
//!
//! Trimming (`max_events`, `max_age`) and clearing by topic remove
//! entries but not the index naming them. An entity whose history is
//! incomplete cannot be folded into its state, so reading it is an error
//! naming the missing version rather than a silently wrong state; an
//! event-sourced store should not be trimmed. Clearing the whole store
//! deletes the indexes and snapshots with the events.
//!
//! Snapshots are hashes `PREFIX:snapshot:STATE_VERSION:KIND:ID` with the
//! fields `version` and `state` (JSON text), one per entity and state
//! shape, replaced only by a newer version, so a slow writer's older
//! snapshot never hides a newer one.

use std::sync::LazyLock;

use serde_json::value::RawValue;

use super::{RedisStore, Shared, entry, redis_error};
use crate::envelope::{Draft, RawEnvelope};
use crate::error::{Error, Result};
use crate::future::BoxFuture;
use crate::store::streams::{self, Snapshot, StreamId, StreamStore};

/// Appends a save's events if the entity is at the expected version.
/// Trims as `APPEND` in `mod.rs` does.
///
/// KEYS: the events stream, the entity's index. ARGV: the expected
/// version, MAXLEN or `''`, the max age in ms or `''`, then per event the
/// number of field and value arguments followed by them. Returns the
/// actual version (an integer) on a conflict, else the new entry ids.
static SAVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local actual = redis.call('LLEN', KEYS[2])
if actual ~= tonumber(ARGV[1]) then return actual end
local ids = {}
local i = 4
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local add = {'XADD', KEYS[1]}
  if ARGV[2] ~= '' then
    table.insert(add, 'MAXLEN'); table.insert(add, '~'); table.insert(add, ARGV[2])
  end
  table.insert(add, '*')
  for j = i + 1, i + n do table.insert(add, ARGV[j]) end
  local id = redis.call(unpack(add))
  redis.call('RPUSH', KEYS[2], id)
  table.insert(ids, id)
  i = i + n + 1
end
if ARGV[3] ~= '' and #ids > 0 then
  local t = redis.call('TIME')
  local cut = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[3])
  if cut > 0 then
    redis.call('XTRIM', KEYS[1], 'MINID', string.format('%.0f', cut))
  end
end
return ids
",
    )
});

/// Reads the entries an entity's index names between two positions.
///
/// KEYS: the events stream, the entity's index. ARGV: the `LRANGE` start
/// and stop. Returns `[[id, fields], ...]` as `XRANGE` does, with
/// `[id, nil]` for an entry no longer in the stream.
static READ: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local ids = redis.call('LRANGE', KEYS[2], ARGV[1], ARGV[2])
local out = {}
for i, id in ipairs(ids) do
  local found = redis.call('XRANGE', KEYS[1], id, id)
  if found[1] then out[i] = found[1] else out[i] = {id, false} end
end
return out
",
    )
});

/// Keeps a snapshot unless the stored one is as new.
///
/// KEYS: the snapshot's hash. ARGV: its version, its state.
static SNAPSHOT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local stored = redis.call('HGET', KEYS[1], 'version')
if stored and tonumber(stored) and tonumber(stored) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'state', ARGV[2])
return 1
",
    )
});

fn index_key(shared: &Shared, stream: &StreamId) -> String {
    shared
        .config
        .key(&format!("entity:{}:{}", stream.kind, stream.id))
}

fn snapshot_key(shared: &Shared, stream: &StreamId, state_version: u32) -> String {
    shared.config.key(&format!(
        "snapshot:{state_version}:{}:{}",
        stream.kind, stream.id
    ))
}

async fn append(
    shared: &Shared,
    stream: &StreamId,
    expected: u64,
    mut drafts: Vec<Draft>,
) -> Result<Vec<RawEnvelope>> {
    streams::place(stream, expected, &mut drafts);
    let config = &shared.config;
    let mut call = SAVE.key(&shared.stream);
    call.key(index_key(shared, stream))
        .arg(expected)
        .arg(config.max_events.map(|n| n.to_string()).unwrap_or_default())
        .arg(
            config
                .max_age
                .map(|a| a.as_millis().to_string())
                .unwrap_or_default(),
        );
    for draft in &drafts {
        let data = draft.data_bytes()?;
        let mut args = 0usize;
        entry::encode(draft, &data, |_, _| args += 2).map_err(|e| Error::store("redis", e))?;
        call.arg(args);
        entry::encode(draft, &data, |name, value| {
            call.arg(name).arg(value);
        })
        .map_err(|e| Error::store("redis", e))?;
    }
    let reply: redis::Value = call
        .invoke_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("appending to an entity stream"))?;
    if let redis::Value::Int(actual) = reply {
        return Err(Error::Conflict {
            stream: stream.to_string(),
            expected,
            actual: actual as u64,
        });
    }
    let ids: Vec<String> = redis::from_owned_redis_value(reply)
        .map_err(redis_error("reading the ids of an entity's new events"))?;
    drafts
        .into_iter()
        .zip(&ids)
        .map(|(draft, id)| {
            let seq = entry::seq_of(id).map_err(|e| Error::store("redis", e))?;
            Ok(draft.seal(seq))
        })
        .collect()
}

async fn read(
    shared: &Shared,
    stream: &StreamId,
    after: u64,
    until: Option<u64>,
) -> Result<Vec<RawEnvelope>> {
    if until.is_some_and(|until| until <= after) {
        return Ok(Vec::new());
    }
    let index = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let stop = until.map_or(-1, |until| index(until) - 1);
    let reply: redis::Value = READ
        .key(&shared.stream)
        .key(index_key(shared, stream))
        .arg(index(after))
        .arg(stop)
        .invoke_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("reading an entity stream"))?;
    if let redis::Value::Array(items) = &reply {
        for (i, item) in items.iter().enumerate() {
            if let redis::Value::Array(pair) = item
                && let [id, redis::Value::Nil] = pair.as_slice()
            {
                let id: String = redis::from_redis_value(id).unwrap_or_default();
                return Err(Error::store(
                    "redis",
                    format!(
                        "entity stream {stream} lost its version {} (entry {id} of `{}`): \
                         trimming (`max_events`, `max_age`) or clearing removed it, so the \
                         entity's state cannot be rebuilt; do not trim a store that keeps \
                         aggregates",
                        after + 1 + i as u64,
                        shared.stream
                    ),
                ));
            }
        }
    }
    let entries = entry::entries(reply).map_err(|e| Error::store("redis", e))?;
    entries
        .iter()
        .map(|e| {
            entry::decode(&shared.config.prefix, e).map_err(|reason| Error::BadRow {
                seq: entry::seq_of(&e.id).unwrap_or(0),
                reason,
            })
        })
        .collect()
}

async fn save_snapshot(shared: &Shared, snapshot: Snapshot) -> Result<()> {
    SNAPSHOT
        .key(snapshot_key(
            shared,
            &snapshot.stream,
            snapshot.state_version,
        ))
        .arg(snapshot.version)
        .arg(snapshot.state.get())
        .invoke_async::<i64>(&mut shared.conn.clone())
        .await
        .map_err(redis_error("saving a snapshot"))
        .map(drop)
}

async fn load_snapshot(
    shared: &Shared,
    stream: &StreamId,
    state_version: u32,
) -> Result<Option<Snapshot>> {
    let (version, state): (Option<String>, Option<String>) = redis::cmd("HMGET")
        .arg(snapshot_key(shared, stream, state_version))
        .arg("version")
        .arg("state")
        .query_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("loading a snapshot"))?;
    let (Some(version), Some(state)) = (version, state) else {
        return Ok(None);
    };
    // A snapshot only saves time: one that does not read is as good as
    // none.
    let Ok(version) = version.parse::<u64>() else {
        tracing::warn!(%stream, %version, "a snapshot's version is not a number; loading without it");
        return Ok(None);
    };
    match RawValue::from_string(state) {
        Ok(state) => Ok(Some(Snapshot {
            stream: stream.clone(),
            state_version,
            version,
            state,
        })),
        Err(e) => {
            tracing::warn!(%stream, error = %e, "a snapshot is not JSON; loading without it");
            Ok(None)
        }
    }
}

impl StreamStore for RedisStore {
    fn append_to_stream(
        &self,
        stream: &StreamId,
        expected: u64,
        drafts: Vec<Draft>,
    ) -> BoxFuture<'_, Result<Vec<RawEnvelope>>> {
        let stream = stream.clone();
        Box::pin(async move { append(&self.shared, &stream, expected, drafts).await })
    }

    fn read_stream(
        &self,
        stream: &StreamId,
        after: u64,
        until: Option<u64>,
    ) -> BoxFuture<'_, Result<Vec<RawEnvelope>>> {
        let stream = stream.clone();
        Box::pin(async move { read(&self.shared, &stream, after, until).await })
    }

    fn save_snapshot(&self, snapshot: Snapshot) -> BoxFuture<'_, Result<()>> {
        Box::pin(save_snapshot(&self.shared, snapshot))
    }

    fn load_snapshot(
        &self,
        stream: &StreamId,
        state_version: u32,
    ) -> BoxFuture<'_, Result<Option<Snapshot>>> {
        let stream = stream.clone();
        Box::pin(async move { load_snapshot(&self.shared, &stream, state_version).await })
    }
}
