//! Saga instances on Redis: a hash per saga type, `PREFIX:saga:SAGA`, one
//! field per instance key, and the set `PREFIX:sagas` naming the types
//! (so listing every instance reads a few hashes, never a `SCAN` of the
//! keyspace). A value is `VERSION:OPEN:RECORD` (`OPEN` is `1` or `0`):
//! the version comes first so the save script reads it without decoding
//! the record. A save is one Lua script that checks the version and
//! replaces the value, so two processes saving one instance at once
//! cannot both succeed.

use std::sync::LazyLock;

use super::{Shared, redis_error};
use crate::error::{Error, Result};
use crate::store::sagas::{self, StoredSaga};

/// Replaces an instance if it is at the expected version; answers the
/// version found (the new one after a save) and whether it saved.
///
/// KEYS: the saga type's hash, the set of types. ARGV: instance key,
/// expected version, new value, saga type.
static SAVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local current = redis.call('HGET', KEYS[1], ARGV[1])
local actual = 0
if current then actual = tonumber(string.match(current, '^(%d+):')) or -1 end
if actual ~= tonumber(ARGV[2]) then return {0, actual} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return {1, actual + 1}
",
    )
});

fn hash_key(shared: &Shared, saga: &str) -> String {
    shared.config.key(&format!("saga:{saga}"))
}

fn types_key(shared: &Shared) -> String {
    shared.config.key("sagas")
}

/// Reads a stored value back, naming the instance when it does not read.
fn parse(saga: &str, key: &str, value: &str) -> Result<StoredSaga> {
    let bad = || {
        Error::store(
            "redis",
            format!("saga instance `{saga}` `{key}` is not VERSION:OPEN:RECORD"),
        )
    };
    let (version, rest) = value.split_once(':').ok_or_else(bad)?;
    let (open, record) = rest.split_once(':').ok_or_else(bad)?;
    Ok(StoredSaga {
        saga: saga.to_owned(),
        key: key.to_owned(),
        version: version.parse().map_err(|_| bad())?,
        open: match open {
            "1" => true,
            "0" => false,
            _ => return Err(bad()),
        },
        record: record.to_owned(),
    })
}

pub(super) async fn load(shared: &Shared, saga: &str, key: &str) -> Result<Option<StoredSaga>> {
    let value: Option<String> = redis::cmd("HGET")
        .arg(hash_key(shared, saga))
        .arg(key)
        .query_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("reading a saga instance"))?;
    value.map(|v| parse(saga, key, &v)).transpose()
}

pub(super) async fn save(
    shared: &Shared,
    saga: &str,
    key: &str,
    expected: u64,
    open: bool,
    record: String,
) -> Result<u64> {
    let value = format!("{}:{}:{record}", expected + 1, u8::from(open));
    let (saved, actual): (bool, i64) = SAVE
        .key(hash_key(shared, saga))
        .key(types_key(shared))
        .arg(key)
        .arg(expected)
        .arg(value)
        .arg(saga)
        .invoke_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("saving a saga instance"))?;
    if saved {
        return Ok(expected + 1);
    }
    let actual = u64::try_from(actual).map_err(|_| {
        Error::store(
            "redis",
            format!("saga instance `{saga}` `{key}` has no version to check"),
        )
    })?;
    Err(sagas::conflict(saga, key, expected, actual))
}

pub(super) async fn list(
    shared: &Shared,
    saga: Option<&str>,
    open_only: bool,
) -> Result<Vec<StoredSaga>> {
    let mut conn = shared.conn.clone();
    let types: Vec<String> = match saga {
        Some(saga) => vec![saga.to_owned()],
        None => redis::cmd("SMEMBERS")
            .arg(types_key(shared))
            .query_async(&mut conn)
            .await
            .map_err(redis_error("listing saga types"))?,
    };
    let mut found = Vec::new();
    for saga in types {
        let instances: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(hash_key(shared, &saga))
            .query_async(&mut conn)
            .await
            .map_err(redis_error("listing saga instances"))?;
        for (key, value) in instances {
            let stored = parse(&saga, &key, &value)?;
            if stored.open || !open_only {
                found.push(stored);
            }
        }
    }
    found.sort_by(|a, b| (&a.saga, &a.key).cmp(&(&b.saga, &b.key)));
    Ok(found)
}

/// Removes every instance (clearing the whole bus starts them over).
pub(super) async fn purge(shared: &Shared) -> Result<()> {
    let mut conn = shared.conn.clone();
    let types: Vec<String> = redis::cmd("SMEMBERS")
        .arg(types_key(shared))
        .query_async(&mut conn)
        .await
        .map_err(redis_error("listing saga types"))?;
    let mut keys: Vec<String> = types.iter().map(|t| hash_key(shared, t)).collect();
    keys.push(types_key(shared));
    redis::cmd("UNLINK")
        .arg(keys)
        .query_async::<()>(&mut conn)
        .await
        .map_err(redis_error("removing saga instances"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_and_bad_ones_are_named() {
        let s = parse("order", "o-1", "3:1:{\"a\":\"x:y\"}").unwrap();
        assert_eq!(
            (s.version, s.open, s.record.as_str()),
            (3, true, "{\"a\":\"x:y\"}")
        );
        assert!(!parse("order", "o-1", "4:0:{}").unwrap().open);
        for bad in ["", "3", "3:1", "x:1:{}", "3:2:{}"] {
            let e = parse("order", "o-1", bad).unwrap_err().to_string();
            assert!(e.contains("`order` `o-1`"), "{bad}: {e}");
        }
    }
}
