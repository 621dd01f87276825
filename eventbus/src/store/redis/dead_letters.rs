//! Dead letters on Redis, in keys beside the events stream.
//!
//! `PREFIX:dead:ID` is a hash per dead letter (`handler`, `envelope` in
//! CloudEvents JSON, `error`, `attempts`, `time`, `retry`, and `index`,
//! its key below); `PREFIX:dead:ids` orders the ids (score = id);
//! `PREFIX:dead:index` maps `SEQ:HANDLER` to the id, so a redelivery after
//! a crash between burying and settling finds the first dead letter
//! instead of adding a second; `PREFIX:dead:next` hands out ids. Each
//! change is one Lua script, so processes sharing the server never see
//! half of one.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use super::{Shared, redis_error};
use crate::envelope::RawEnvelope;
use crate::error::{Error, Result};
use crate::store::dead_letter::{DeadLetter, DeadLetterQuery, NewDeadLetter};

/// KEYS: ids, index, next, the dead-letter key prefix (`PREFIX:dead:`).
/// ARGV: index field, handler, envelope, error, attempts, time.
static ADD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local known = redis.call('HGET', KEYS[2], ARGV[1])
if known then return tonumber(known) end
local id = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[4] .. id, 'handler', ARGV[2], 'envelope', ARGV[3], 'error', ARGV[4],
  'attempts', ARGV[5], 'time', ARGV[6], 'retry', 0, 'index', ARGV[1])
redis.call('ZADD', KEYS[1], id, id)
redis.call('HSET', KEYS[2], ARGV[1], id)
return id
",
    )
});

/// KEYS: ids, index, the dead letter. Deletes it; 1 if it existed.
static REMOVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local index = redis.call('HGET', KEYS[3], 'index')
if not index then return 0 end
redis.call('HDEL', KEYS[2], index)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3])
return 1
",
    )
});

/// KEYS: the dead letter. ARGV: field, value, ... Sets them if it exists.
static UPDATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
",
    )
});

fn key(shared: &Shared, id: u64) -> String {
    shared.config.key(&format!("dead:{id}"))
}

pub(super) async fn add(shared: &Shared, dead: NewDeadLetter) -> Result<u64> {
    let envelope = serde_json::to_string(&dead.envelope)
        .map_err(|e| Error::store_source("redis", "writing a dead letter", e))?;
    let index = format!("{}:{}", dead.envelope.seq(), dead.handler);
    ADD.key(shared.config.key("dead:ids"))
        .key(shared.config.key("dead:index"))
        .key(shared.config.key("dead:next"))
        .key(shared.config.key("dead:"))
        .arg(index)
        .arg(&dead.handler)
        .arg(envelope)
        .arg(&dead.error)
        .arg(dead.attempts)
        .arg(Utc::now().to_rfc3339())
        .invoke_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("adding a dead letter"))
}

/// Dead letters oldest first, read a page of ids at a time.
pub(super) async fn list(shared: &Shared, query: DeadLetterQuery) -> Result<Vec<DeadLetter>> {
    let mut conn = shared.conn.clone();
    if let Some(id) = query.id {
        return Ok(read(shared, id)
            .await?
            .filter(|d| query.matches(d))
            .into_iter()
            .collect());
    }
    let limit = query.limit.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let mut after = 0u64;
    while out.len() < limit {
        let ids: Vec<u64> = redis::cmd("ZRANGEBYSCORE")
            .arg(shared.config.key("dead:ids"))
            .arg(format!("({after}"))
            .arg("+inf")
            .arg("LIMIT")
            .arg(0)
            .arg(100)
            .query_async(&mut conn)
            .await
            .map_err(redis_error("listing dead letters"))?;
        let Some(&last) = ids.last() else { break };
        after = last;
        for id in ids {
            if let Some(dead) = read(shared, id).await?
                && query.matches(&dead)
                && out.len() < limit
            {
                out.push(dead);
            }
        }
    }
    Ok(out)
}

async fn read(shared: &Shared, id: u64) -> Result<Option<DeadLetter>> {
    let fields: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(key(shared, id))
        .query_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("reading a dead letter"))?;
    if fields.is_empty() {
        return Ok(None);
    }
    let bad = |what: &str| Error::store("redis", format!("dead letter {id}: {what}"));
    let field = |name: &str| fields.get(name).ok_or_else(|| bad(&format!("no `{name}`")));
    let envelope: RawEnvelope =
        serde_json::from_str(field("envelope")?).map_err(|e| bad(&format!("envelope: {e}")))?;
    Ok(Some(DeadLetter {
        id,
        handler: field("handler")?.clone(),
        envelope,
        error: field("error")?.clone(),
        attempts: field("attempts")?
            .parse()
            .map_err(|_| bad("`attempts` is not a number"))?,
        time: DateTime::parse_from_rfc3339(field("time")?)
            .map_err(|_| bad("`time` is not a time"))?
            .with_timezone(&Utc),
        retry_requested: field("retry")? == "1",
    }))
}

pub(super) async fn request_retry(shared: &Shared, id: u64) -> Result<bool> {
    UPDATE
        .key(key(shared, id))
        .arg("retry")
        .arg(1)
        .invoke_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("requesting a dead letter's retry"))
}

pub(super) async fn retry_failed(
    shared: &Shared,
    id: u64,
    error: String,
    attempts: u32,
) -> Result<()> {
    let Some(dead) = read(shared, id).await? else {
        return Ok(());
    };
    let _: bool = UPDATE
        .key(key(shared, id))
        .arg("retry")
        .arg(0)
        .arg("error")
        .arg(error)
        .arg("attempts")
        .arg(dead.attempts.saturating_add(attempts))
        .invoke_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("recording a failed retry"))?;
    Ok(())
}

pub(super) async fn remove(shared: &Shared, id: u64) -> Result<bool> {
    REMOVE
        .key(shared.config.key("dead:ids"))
        .key(shared.config.key("dead:index"))
        .key(key(shared, id))
        .arg(id)
        .invoke_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("removing a dead letter"))
}

pub(super) async fn purge(shared: &Shared, handler: Option<&str>) -> Result<u64> {
    let query = match handler {
        Some(h) => DeadLetterQuery::handler(h),
        None => DeadLetterQuery::all(),
    };
    let mut removed = 0;
    for dead in list(shared, query).await? {
        if remove(shared, dead.id).await? {
            removed += 1;
        }
    }
    Ok(removed)
}
