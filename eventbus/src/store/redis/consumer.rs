//! Handlers as consumer groups.
//!
//! One group per handler name on `PREFIX:events`, made at the stream's
//! end (`$`, start latest) or start (`0`, start earliest) when the handler
//! first runs; each process running the handler is a consumer of its own
//! in the group, so they share its work, reading new entries with
//! `XREADGROUP` on a connection of their own (its reads block). Success
//! is `XACK`; entries outside the handler's topics are acked unhandled.
//!
//! A failed entry stays pending, and its redelivery time goes into the
//! sorted set `PREFIX:retry:HANDLER`; once it is due, whichever process
//! asks first claims it (`XCLAIM`, which counts the delivery, so the
//! delivery count is the attempt). An entry pending longer than the ack
//! wait without news (its process crashed; running handlings signal
//! progress, which resets the idle time) is claimed the same way by
//! another process. Both claims run in one Lua script, so one process
//! wins each entry. The bus writes the dead letter after the last attempt
//! and acks. A handler's checkpoint is the group's floor: below its
//! oldest pending entry, or its last-delivered id when none is pending.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use super::entry::{self, Entry};
use super::{Shared, connection, redis_error};
use crate::error::{Error, Result};
use crate::future::{BoxFuture, BoxStream};
use crate::store::consumer::{Acknowledge, ConsumerSpec, Delivery, Start};
use crate::topic::Pattern;

/// The longest a read waits for new entries before looking for due
/// retries and abandoned entries again.
const BLOCK: Duration = Duration::from_millis(100);
/// How many pending entries one claim looks at.
const SCAN: usize = 100;

/// Claims the due retries, then the entries idle past the ack wait that no
/// retry waits for, up to a count; answers `{entries, next due or -1}`,
/// each entry `{id, fields, delivery count}`.
///
/// KEYS: the stream, the retry set. ARGV: group, consumer, ack wait in ms,
/// count.
static CLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local count = tonumber(ARGV[4])
local out = {}
local function claim(id, idle)
  local got = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], idle, id)
  if got[1] and got[1][2] then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    table.insert(out, {got[1][1], got[1][2], p[1] and p[1][4] or 1})
  elseif idle == 0 then
    redis.call('XACK', KEYS[1], ARGV[1], id)
  end
end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, count)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[2], id)
  claim(id, 0)
end
if #out < count then
  local stale = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', 100)
  for _, p in ipairs(stale) do
    if #out >= count then break end
    if not redis.call('ZSCORE', KEYS[2], p[1]) then claim(p[1], ARGV[3]) end
  end
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local wait = -1
if nxt[2] then wait = math.max(0, tonumber(nxt[2]) - now) end
return {out, wait}
",
    )
});

/// Schedules a pending entry's redelivery by the server's clock.
/// KEYS: the retry set. ARGV: entry id, delay in ms.
static RETRY: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
",
    )
});

/// Gives a pending entry back for any process to claim now, without
/// counting the delivery that was never attempted: the claim that hands
/// it out again counts one.
/// KEYS: the stream, the retry set. ARGV: group, consumer, entry id.
static HAND_BACK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if not p[1] then return 0 end
local count = math.max(0, tonumber(p[1][4]) - 1)
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'RETRYCOUNT', count, 'JUSTID')
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[3])
return 1
",
    )
});

/// The key of a handler's retry set.
fn retry_key(shared: &Shared, handler: &str) -> String {
    shared.config.key(&format!("retry:{handler}"))
}

/// Makes the handler's group unless it exists.
async fn ensure_group(shared: &Shared, handler: &str, start: &str) -> Result<()> {
    let made: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&shared.stream)
        .arg(handler)
        .arg(start)
        .arg("MKSTREAM")
        .query_async(&mut shared.conn.clone())
        .await;
    match made {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other.map_err(redis_error("creating a handler's consumer group")),
    }
}

/// The handler's group, made if needed, and a task reading its
/// deliveries into the returned stream.
pub(super) async fn open(
    shared: Arc<Shared>,
    spec: ConsumerSpec,
) -> Result<BoxStream<'static, Delivery>> {
    let start = match spec.start {
        Start::Latest => "$",
        Start::Earliest => "0",
    };
    ensure_group(&shared, &spec.handler, start).await?;
    let filter = Pattern::new(spec.filter.clone())
        .map_err(|e| Error::Config(format!("handler `{}`: filter {e}", spec.handler)))?;
    let reader = connection(&shared.client, &shared.config).await?;
    let consumer = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
    let batch = spec.max_in_flight.clamp(1, 100) as usize;
    // Room for two batches: the reader hands a batch over without waiting
    // for the bus to take each delivery (two wake-ups apiece), and reads
    // the next while the bus still starts the last.
    let (tx, rx) = mpsc::channel(2 * batch);
    let group = Group {
        handler: Arc::from(spec.handler.as_str()),
        consumer: Arc::from(consumer.as_str()),
        retries: retry_key(&shared, &spec.handler),
        start,
        filter,
        batch,
        shared,
    };
    tokio::spawn(group.run(reader, tx));
    Ok(Box::pin(Deliveries { rx }))
}

/// The deliveries the reader task hands over. Dropped (the bus stopped),
/// it gives the ones it still holds back at once, for another process,
/// rather than leaving them pending until the ack wait.
struct Deliveries {
    rx: mpsc::Receiver<Delivery>,
}

impl futures_util::Stream for Deliveries {
    type Item = Delivery;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Delivery>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Deliveries {
    fn drop(&mut self) {
        // Closed first, so the reader sends nothing more and gives back
        // what it read but did not send itself.
        self.rx.close();
        let mut left = Vec::new();
        while let Ok(delivery) = self.rx.try_recv() {
            left.push(delivery);
        }
        if left.is_empty() {
            return;
        }
        // Without a runtime they stay pending, and the ack wait brings
        // them back.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for delivery in left {
                    if let Err(e) = delivery.ack.hand_back().await {
                        tracing::debug!(error = %e, "could not give a delivery back");
                    }
                }
            });
        }
    }
}

/// One process's consumer in a handler's group.
struct Group {
    shared: Arc<Shared>,
    handler: Arc<str>,
    consumer: Arc<str>,
    /// `PREFIX:retry:HANDLER`.
    retries: String,
    start: &'static str,
    filter: Pattern,
    /// Entries read at once: the handler's concurrency.
    batch: usize,
}

impl Group {
    /// Hands out deliveries until the bus drops the stream; survives
    /// server restarts, and a group deleted meanwhile is made again.
    async fn run(self, mut reader: ConnectionManager, tx: mpsc::Sender<Delivery>) {
        loop {
            // Room for a whole batch before reading one: what is read goes
            // to the bus at once, so a process holds at most its handlings
            // and two batches.
            let Ok(mut room) = tx.reserve_many(self.batch).await else {
                return self.leave().await;
            };
            // Not cut short when the bus stops: entries the server handed
            // out in a reply never read would stay pending until the ack
            // wait. A read waits at most `BLOCK`.
            let batch = match self.next_batch(&mut reader).await {
                Ok(batch) => batch,
                Err(e) => {
                    drop(room);
                    tracing::warn!(handler = %self.handler, error = %e, "reading a handler's deliveries failed; retrying");
                    tokio::select! {
                        () = tx.closed() => return self.leave().await,
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    if let Err(e) = ensure_group(&self.shared, &self.handler, self.start).await {
                        tracing::debug!(error = %e, "cannot make a handler's group yet");
                    }
                    continue;
                }
            };
            let mut batch = batch.into_iter();
            while let Some((entry, attempt)) = batch.next() {
                let Some(delivery) = self.delivery(entry, attempt).await else {
                    continue;
                };
                match room.next() {
                    Some(permit) if !tx.is_closed() => permit.send(delivery),
                    _ => {
                        // The bus stopped: let another process have these
                        // now rather than after the ack wait.
                        let _ = delivery.ack.hand_back().await;
                        for (entry, _) in batch {
                            let _ = self.ack_for(entry.id).hand_back().await;
                        }
                        return self.leave().await;
                    }
                }
            }
        }
    }

    /// Due retries and abandoned entries first, else new entries, waiting
    /// at most until the next retry is due.
    async fn next_batch(
        &self,
        reader: &mut ConnectionManager,
    ) -> redis::RedisResult<Vec<(Entry, u32)>> {
        let s = &self.shared;
        let (claimed, wait_ms): (Vec<redis::Value>, i64) = CLAIM
            .key(&s.stream)
            .key(&self.retries)
            .arg(&*self.handler)
            .arg(&*self.consumer)
            .arg(s.config.ack_wait.as_millis() as u64)
            .arg(self.batch)
            .invoke_async(&mut s.conn.clone())
            .await?;
        if !claimed.is_empty() {
            let mut out = Vec::with_capacity(claimed.len());
            for item in claimed {
                let (id, fields, count): (redis::Value, redis::Value, u32) =
                    redis::from_owned_redis_value(item)?;
                let entries = entry::entries(redis::Value::Array(vec![redis::Value::Array(vec![
                    id, fields,
                ])]))
                .map_err(bad_reply)?;
                out.extend(entries.into_iter().map(|e| (e, count)));
            }
            return Ok(out);
        }
        let block = match u64::try_from(wait_ms) {
            Ok(ms) => Duration::from_millis(ms).clamp(Duration::from_millis(1), BLOCK),
            Err(_) => BLOCK,
        };
        let reply: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&*self.handler)
            .arg(&*self.consumer)
            .arg("COUNT")
            .arg(self.batch)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(&s.stream)
            .arg(">")
            .query_async(reader)
            .await?;
        // `[[stream, entries]]`, or nil when the wait ran out.
        let entries = match reply {
            redis::Value::Array(mut streams) if !streams.is_empty() => {
                let (_, entries): (redis::Value, redis::Value) =
                    redis::from_owned_redis_value(streams.swap_remove(0))?;
                entry::entries(entries).map_err(bad_reply)?
            }
            _ => Vec::new(),
        };
        Ok(entries.into_iter().map(|e| (e, 1)).collect())
    }

    /// The delivery of an entry, or `None` when it is outside the
    /// handler's topics (acked here, unhandled).
    async fn delivery(&self, entry: Entry, attempt: u32) -> Option<Delivery> {
        let prefix = &self.shared.config.prefix;
        if entry.topic().is_some_and(|t| !self.filter.matches(t)) {
            let ack = self.ack_for(entry.id);
            if let Err(e) = ack.ack().await {
                tracing::warn!(error = %e, "could not ack an entry outside a handler's topics");
            }
            return None;
        }
        let (envelope, unreadable) = match entry::decode(prefix, &entry) {
            Ok(env) => (env, None),
            Err(reason) => {
                let seq = entry::seq_of(&entry.id).unwrap_or(0);
                (entry::unreadable(prefix, &entry, seq), Some(reason))
            }
        };
        Some(Delivery {
            envelope,
            unreadable,
            attempt: attempt.max(1),
            progress_every: self.shared.config.ack_wait / 3,
            ack: Box::new(self.ack_for(entry.id)),
        })
    }

    fn ack_for(&self, id: String) -> RedisAck {
        RedisAck {
            shared: Arc::clone(&self.shared),
            handler: Arc::clone(&self.handler),
            consumer: Arc::clone(&self.consumer),
            retries: self.retries.clone(),
            id,
        }
    }

    /// Leaves the group when nothing is pending to this consumer, so that
    /// consumers of stopped processes do not pile up in it.
    async fn leave(self) {
        let s = &self.shared;
        let pending: redis::RedisResult<redis::Value> = redis::cmd("XPENDING")
            .arg(&s.stream)
            .arg(&*self.handler)
            .arg("-")
            .arg("+")
            .arg(1)
            .arg(&*self.consumer)
            .query_async(&mut s.conn.clone())
            .await;
        if matches!(pending, Ok(redis::Value::Array(ref p)) if p.is_empty()) {
            let _: redis::RedisResult<i64> = redis::cmd("XGROUP")
                .arg("DELCONSUMER")
                .arg(&s.stream)
                .arg(&*self.handler)
                .arg(&*self.consumer)
                .query_async(&mut s.conn.clone())
                .await;
        }
    }
}

fn bad_reply(reason: String) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::TypeError, "unexpected reply", reason))
}

/// Settles one delivery.
struct RedisAck {
    shared: Arc<Shared>,
    handler: Arc<str>,
    consumer: Arc<str>,
    retries: String,
    id: String,
}

impl RedisAck {
    /// Acks the entry. No retry can be planned for it meanwhile: a retry
    /// is planned only by settling a delivery, and the claim that hands it
    /// out again takes it off the plan.
    async fn done(&self) -> Result<()> {
        let s = &self.shared;
        redis::cmd("XACK")
            .arg(&s.stream)
            .arg(&*self.handler)
            .arg(&self.id)
            .query_async::<()>(&mut s.conn.clone())
            .await
            .map_err(redis_error("settling a delivery"))
    }
}

impl Acknowledge for RedisAck {
    fn ack(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.done())
    }

    fn retry_after(&self, delay: Duration) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            RETRY
                .key(&self.retries)
                .arg(&self.id)
                .arg(delay.as_millis() as u64)
                .invoke_async::<()>(&mut self.shared.conn.clone())
                .await
                .map_err(redis_error("planning a retry"))
        })
    }

    fn give_up(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.done())
    }

    fn hand_back(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let s = &self.shared;
            HAND_BACK
                .key(&s.stream)
                .key(&self.retries)
                .arg(&*self.handler)
                .arg(&*self.consumer)
                .arg(&self.id)
                .invoke_async::<()>(&mut s.conn.clone())
                .await
                .map_err(redis_error("handing a delivery back"))
        })
    }

    fn in_progress(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let s = &self.shared;
            // Claiming its own entry again resets its idle time; JUSTID
            // leaves the delivery count alone.
            redis::cmd("XCLAIM")
                .arg(&s.stream)
                .arg(&*self.handler)
                .arg(&*self.consumer)
                .arg(0)
                .arg(&self.id)
                .arg("JUSTID")
                .query_async::<()>(&mut s.conn.clone())
                .await
                .map_err(redis_error("signalling progress"))
        })
    }
}

/// The handler's checkpoint: below its group's oldest pending entry, or
/// the group's last-delivered id when nothing is pending.
pub(super) async fn floor(shared: &Shared, handler: &str) -> Result<Option<u64>> {
    Ok(all_floors(shared)
        .await?
        .into_iter()
        .find(|(name, _)| name == handler)
        .map(|(_, seq)| seq))
}

/// Every handler's checkpoint, by handler name.
pub(super) async fn all_floors(shared: &Shared) -> Result<Vec<(String, u64)>> {
    let mut conn = shared.conn.clone();
    let groups: redis::RedisResult<Vec<std::collections::HashMap<String, redis::Value>>> =
        redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&shared.stream)
            .query_async(&mut conn)
            .await;
    let groups = match groups {
        Ok(groups) => groups,
        // No stream: no handler ever ran.
        Err(e)
            if e.kind() == redis::ErrorKind::ResponseError
                && e.to_string().contains("no such key") =>
        {
            return Ok(Vec::new());
        }
        Err(e) => return Err(redis_error("listing consumer groups")(e)),
    };
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let text = |name: &str| -> Option<String> {
            g.get(name).and_then(|v| redis::from_redis_value(v).ok())
        };
        let (Some(name), Some(last)) = (text("name"), text("last-delivered-id")) else {
            continue;
        };
        let pending: redis::Value = redis::cmd("XPENDING")
            .arg(&shared.stream)
            .arg(&name)
            .arg("-")
            .arg("+")
            .arg(1)
            .query_async(&mut conn)
            .await
            .map_err(redis_error("reading a handler's pending entries"))?;
        let oldest: Option<String> = match &pending {
            redis::Value::Array(p) => p
                .first()
                .and_then(|first| redis::from_redis_value::<(String, String, u64, u64)>(first).ok())
                .map(|(id, ..)| id),
            _ => None,
        };
        let seq = match oldest {
            Some(id) => entry::seq_of(&id).map(|s| s.saturating_sub(1)),
            None => entry::seq_of(&last),
        }
        .map_err(|e| Error::store("redis", e))?;
        out.push((name, seq));
    }
    out.sort();
    Ok(out)
}

/// Moves a handler's checkpoint: its group delivers what comes after
/// `seq` next, and what is pending up to `seq` counts as handled.
pub(super) async fn move_to(shared: &Shared, handler: &str, seq: u64) -> Result<()> {
    let id = entry::id_of(seq);
    ensure_group(shared, handler, &id).await?;
    let mut conn = shared.conn.clone();
    let _: () = redis::cmd("XGROUP")
        .arg("SETID")
        .arg(&shared.stream)
        .arg(handler)
        .arg(&id)
        .query_async(&mut conn)
        .await
        .map_err(redis_error("moving a handler's position"))?;
    loop {
        let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(&shared.stream)
            .arg(handler)
            .arg("-")
            .arg(&id)
            .arg(SCAN)
            .query_async(&mut conn)
            .await
            .map_err(redis_error("reading a handler's pending entries"))?;
        if pending.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = pending.iter().map(|(id, ..)| id.as_str()).collect();
        let _: () = redis::pipe()
            .cmd("XACK")
            .arg(&shared.stream)
            .arg(handler)
            .arg(&ids)
            .ignore()
            .cmd("ZREM")
            .arg(retry_key(shared, handler))
            .arg(&ids)
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(redis_error("settling a handler's pending entries"))?;
    }
}
