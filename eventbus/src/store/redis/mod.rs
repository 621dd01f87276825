//! `redis://`: events in a Redis stream, for a bus that spans processes
//! and machines on a Redis server many teams already run.
//!
//! Keys, all under the prefix (`eventbus` by default):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `PREFIX:events` | stream | every event, one entry each (see `entry`) |
//! | `PREFIX:seen:KEY` | string, expiring | the entry id of the event with idempotency key (or, without one, event id) `KEY`, for the duplicate window |
//! | `PREFIX:retry:HANDLER` | sorted set | entries a handler failed, scored by when to deliver them again |
//! | `PREFIX:dead:ids`, `PREFIX:dead:ID`, `PREFIX:dead:index`, `PREFIX:dead:next` | sorted set, hashes, hash, counter | dead letters (see `dead_letters`) |
//! | `PREFIX:scheduled`, `PREFIX:scheduled:ID` | sorted set, lists | events waiting for their time (see `schedules`) |
//! | `PREFIX:saga:SAGA`, `PREFIX:sagas` | hashes, set | saga instances (see `sagas`) |
//! | `PREFIX:entity:KIND:ID` | list | the entry ids of an entity's events in version order, its length the entity's version (see `streams`) |
//! | `PREFIX:snapshot:STATE_VERSION:KIND:ID` | hash | an entity's newest snapshot of a state shape: `version`, `state` (see `streams`) |
//!
//! An event's seq is derived from its entry id (see `entry`). Publishing
//! an event that may be a duplicate (an idempotency key, an imported id)
//! runs one Lua script that checks the duplicate key, `XADD`s, trims and
//! sets the key, so no crash leaves one without the other; a fresh event
//! is one `XADD`. Concurrent publishes share one multiplexed connection,
//! which pipelines them.
//! Handlers are consumer groups (see `consumer`); history reads pages of
//! `XRANGE`/`XREVRANGE` (see `read`). Aggregates' entity streams are
//! events of the bus stream indexed per entity (see `streams`).

mod config;
mod consumer;
mod dead_letters;
pub(crate) mod entry;
mod read;
mod sagas;
mod schedules;
mod streams;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use config::RedisConfig;

use super::admin::{StoreAdmin, TopicSummary};
use super::checkpoints::CheckpointStore;
use super::consumer::{ConsumerSpec, Delivery, ServerConsumers};
use super::core::{Create, Store};
use super::dead_letter::{DeadLetter, DeadLetterQuery, DeadLetterStore, NewDeadLetter};
use super::query::Query;
use super::sagas::{SagaStore, StoredSaga};
use super::schedules::{ScheduleStore, Scheduled};
use super::streams::StreamStore;
use crate::envelope::{Draft, RawEnvelope};
use crate::error::{Error, Result};
use crate::future::{BoxFuture, BoxStream};
use crate::topic::Pattern;

/// A bus store on a Redis stream. Open it with
/// `Bus::builder().store("redis://127.0.0.1:6379")`, or with
/// [`RedisStore::connect`] for settings built by hand.
///
/// `publish().await` returns once Redis added the entry, which is then in
/// the server's memory: whether it survives a crash of the server is the
/// server's persistence setting (`appendonly yes` with `appendfsync
/// always` keeps every acknowledged event; the default `everysec` may
/// lose the last second; without AOF, what came after the last snapshot).
pub struct RedisStore {
    shared: Arc<Shared>,
}

struct Shared {
    config: RedisConfig,
    client: redis::Client,
    /// One multiplexed connection for everything but blocking reads;
    /// it reconnects by itself after the server restarts.
    conn: ConnectionManager,
    /// A connection of its own for followers' `XREAD BLOCK`, made when
    /// first needed: a blocked read would hold up everything behind it.
    blocking: tokio::sync::OnceCell<ConnectionManager>,
    /// `PREFIX:events`.
    stream: String,
}

/// Adds an event unless its duplicate key names one already, atomically.
/// Trimming by count is approximate (`~`, whole nodes, cheap); by age it
/// is exact, so that no event older than `max_age` is read.
///
/// KEYS: the stream, the duplicate key. ARGV: the window in ms, MAXLEN or
/// `''`, the max age in ms or `''`, then the fields and values.
static APPEND: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local first = redis.call('GET', KEYS[2])
if first then return {0, first} end
local add = {'XADD', KEYS[1]}
if ARGV[2] ~= '' then
  table.insert(add, 'MAXLEN'); table.insert(add, '~'); table.insert(add, ARGV[2])
end
table.insert(add, '*')
for i = 4, #ARGV do table.insert(add, ARGV[i]) end
local id = redis.call(unpack(add))
if ARGV[3] ~= '' then
  local t = redis.call('TIME')
  local cut = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[3])
  if cut > 0 then
    redis.call('XTRIM', KEYS[1], 'MINID', string.format('%.0f', cut))
  end
end
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return {1, id}
",
    )
});

impl RedisStore {
    /// Connects; the stream is made by the first event or handler.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the server cannot be reached or refuses
    /// the credentials.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        Self::connect_with(config, Create::IfMissing).await
    }

    /// Connects to a store that must already hold events or handlers,
    /// creating nothing: for tools that only read or change what exists.
    ///
    /// # Errors
    ///
    /// [`Error::StoreNotFound`] when `PREFIX:events` does not exist;
    /// otherwise those of [`RedisStore::connect`].
    pub async fn connect_existing(config: RedisConfig) -> Result<Self> {
        Self::connect_with(config, Create::Never).await
    }

    async fn connect_with(config: RedisConfig, create: Create) -> Result<Self> {
        let client = client(&config)?;
        let conn = connection(&client, &config).await?;
        let stream = config.key("events");
        let store = RedisStore {
            shared: Arc::new(Shared {
                config,
                client,
                conn,
                blocking: tokio::sync::OnceCell::new(),
                stream,
            }),
        };
        if create == Create::Never {
            let exists: bool = redis::cmd("EXISTS")
                .arg(&store.shared.stream)
                .query_async(&mut store.shared.conn.clone())
                .await
                .map_err(redis_error("looking for the events stream"))?;
            if !exists {
                return Err(Error::StoreNotFound {
                    store: "redis",
                    message: format!(
                        "no stream `{}` on {}; check `?prefix=` in the store URL (only \
                         publishing, scheduling, import and a running bus create it)",
                        store.shared.stream,
                        store.shared.config.describe()
                    ),
                });
            }
        }
        Ok(store)
    }

    /// The settings this store was opened with.
    pub fn config(&self) -> &RedisConfig {
        &self.shared.config
    }

    async fn append_draft(&self, draft: Draft) -> Result<RawEnvelope> {
        let s = &self.shared;
        let data = draft.data_bytes()?;
        // A fresh event without an idempotency key has an id made just now,
        // which no stored event can have: nothing to look up, so a plain
        // `XADD`, pipelined with the others, instead of the script. Imports
        // and saga effects (ids that may be stored already), idempotency
        // keys, and exact trimming by age take the script.
        if draft.meta.idempotency_key.is_none()
            && !draft.is_imported()
            && s.config.max_age.is_none()
        {
            // Sized up front: grown argument by argument, the command's
            // buffers were reallocated about ten times per event.
            let (args, bytes) = entry::encoded_size(&draft, data.len());
            let mut add = redis::Cmd::with_capacity(args, bytes);
            add.arg("XADD").arg(&s.stream);
            if let Some(n) = s.config.max_events {
                add.arg("MAXLEN").arg("~").arg(n);
            }
            add.arg("*");
            entry::encode(&draft, &data, |name, value| {
                add.arg(name).arg(value);
            })
            .map_err(|e| Error::store("redis", e))?;
            drop(data);
            let id: String = add
                .query_async(&mut s.conn.clone())
                .await
                .map_err(redis_error("publishing"))?;
            let seq = entry::seq_of(&id).map_err(|e| Error::store("redis", e))?;
            return Ok(draft.seal(seq));
        }
        let key = match &draft.meta.idempotency_key {
            Some(k) => s.config.key(&format!("seen:{k}")),
            None => s.config.key(&format!("seen:{}", draft.meta.id)),
        };
        let mut call = APPEND.key(&s.stream);
        call.key(key)
            .arg(s.config.duplicate_window.as_millis().max(1) as u64)
            .arg(
                s.config
                    .max_events
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
            )
            .arg(
                s.config
                    .max_age
                    .map(|a| a.as_millis().to_string())
                    .unwrap_or_default(),
            );
        entry::encode(&draft, &data, |name, value| {
            call.arg(name).arg(value);
        })
        .map_err(|e| Error::store("redis", e))?;
        drop(data);
        let (added, id): (bool, String) = call
            .invoke_async(&mut s.conn.clone())
            .await
            .map_err(redis_error("publishing"))?;
        let seq = entry::seq_of(&id).map_err(|e| Error::store("redis", e))?;
        if added {
            return Ok(draft.seal(seq));
        }
        // Within the duplicate window: answer with the first event, as the
        // other stores do, or with this one under its seq if it was trimmed.
        Ok(read::entry_at(s, &id)
            .await?
            .unwrap_or_else(|| draft.seal(seq)))
    }
}

/// A client for the server `config` names, trusting its `tls_ca` file
/// when it names one.
fn client(config: &RedisConfig) -> Result<redis::Client> {
    let refused = |e: redis::RedisError| {
        Error::unavailable(
            "redis",
            format!("cannot use {}", config.describe()),
            Some(Box::new(e)),
        )
    };
    let Some(ca) = config.tls_ca.as_ref().filter(|_| config.tls) else {
        return redis::Client::open(config.connection_info()).map_err(refused);
    };
    let root_cert = std::fs::read(ca).map_err(|e| {
        Error::Config(format!(
            "cannot read the CA certificates `{}` given as `tls_ca` for {}: {e}",
            ca.display(),
            config.describe()
        ))
    })?;
    redis::Client::build_with_tls(
        config.connection_info(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert),
        },
    )
    .map_err(refused)
}

/// A connection that reconnects after the server restarts: a few quick
/// attempts (so a mistyped address fails in seconds), and operations that
/// time out rather than hang on a server that stopped answering.
async fn connection(client: &redis::Client, config: &RedisConfig) -> Result<ConnectionManager> {
    let settings = ConnectionManagerConfig::new()
        .set_number_of_retries(3)
        .set_max_delay(1000)
        .set_connection_timeout(Duration::from_secs(5))
        .set_response_timeout(Duration::from_secs(10));
    ConnectionManager::new_with_config(client.clone(), settings)
        .await
        .map_err(|e| {
            Error::unavailable(
                "redis",
                format!(
                    "cannot connect to {}; is redis-server running there?",
                    config.describe()
                ),
                Some(Box::new(e)),
            )
        })
}

/// Wraps a client error, kept as the source, with what was being done.
/// The client's errors name commands and keys, never the password.
fn redis_error(doing: &'static str) -> impl Fn(redis::RedisError) -> Error {
    move |e| {
        if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
            Error::unavailable("redis", format!("{doing} failed"), Some(Box::new(e)))
        } else {
            Error::store_source("redis", format!("{doing} failed"), e)
        }
    }
}

impl Store for RedisStore {
    fn append(&self, draft: Draft) -> BoxFuture<'_, Result<RawEnvelope>> {
        Box::pin(self.append_draft(draft))
    }

    fn query(&self, query: Query) -> BoxStream<'static, Result<RawEnvelope>> {
        read::query(Arc::clone(&self.shared), query)
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        // Every write was acknowledged before its call returned.
        Box::pin(async { Ok(()) })
    }

    fn durable(&self) -> bool {
        true
    }

    fn wait_for_more(&self, after: Option<u64>, at_most: Duration) -> BoxFuture<'_, Option<u64>> {
        Box::pin(read::wait_for_more(&self.shared, after, at_most))
    }

    fn describe(&self) -> String {
        self.shared.config.describe()
    }

    fn as_checkpoint_store(&self) -> Option<&dyn CheckpointStore> {
        Some(self)
    }

    fn as_dead_letter_store(&self) -> Option<&dyn DeadLetterStore> {
        Some(self)
    }

    fn as_admin(&self) -> Option<&dyn StoreAdmin> {
        Some(self)
    }

    fn as_server_consumers(&self) -> Option<&dyn ServerConsumers> {
        Some(self)
    }

    fn as_schedules(&self) -> Option<&dyn ScheduleStore> {
        Some(self)
    }

    fn as_sagas(&self) -> Option<&dyn SagaStore> {
        Some(self)
    }

    fn as_streams(&self) -> Option<&dyn StreamStore> {
        Some(self)
    }
}

impl StoreAdmin for RedisStore {
    fn clear(&self, pattern: &Pattern) -> BoxFuture<'_, Result<u64>> {
        let pattern = pattern.clone();
        Box::pin(async move {
            let cleared = read::clear(&self.shared, &pattern).await?;
            // Clearing everything starts the saga instances over, as on
            // the other stores.
            if pattern.as_str() == ">" {
                sagas::purge(&self.shared).await?;
            }
            Ok(cleared)
        })
    }

    fn topics(&self) -> BoxFuture<'_, Result<Vec<TopicSummary>>> {
        Box::pin(read::topics(&self.shared))
    }

    fn size_bytes(&self) -> Option<u64> {
        None
    }
}

impl DeadLetterStore for RedisStore {
    fn add_dead_letter(&self, dead: NewDeadLetter) -> BoxFuture<'_, Result<u64>> {
        Box::pin(dead_letters::add(&self.shared, dead))
    }

    fn dead_letters(&self, query: DeadLetterQuery) -> BoxFuture<'_, Result<Vec<DeadLetter>>> {
        Box::pin(dead_letters::list(&self.shared, query))
    }

    fn request_retry(&self, id: u64) -> BoxFuture<'_, Result<bool>> {
        Box::pin(dead_letters::request_retry(&self.shared, id))
    }

    fn record_retry_failure(
        &self,
        id: u64,
        error: String,
        attempts: u32,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(dead_letters::retry_failed(
            &self.shared,
            id,
            error,
            attempts,
        ))
    }

    fn remove_dead_letter(&self, id: u64) -> BoxFuture<'_, Result<bool>> {
        Box::pin(dead_letters::remove(&self.shared, id))
    }

    fn purge_dead_letters(&self, handler: Option<&str>) -> BoxFuture<'_, Result<u64>> {
        let handler = handler.map(str::to_owned);
        Box::pin(async move { dead_letters::purge(&self.shared, handler.as_deref()).await })
    }
}

impl CheckpointStore for RedisStore {
    fn load_checkpoint(&self, handler: &str) -> BoxFuture<'_, Result<Option<u64>>> {
        let handler = handler.to_owned();
        Box::pin(async move { consumer::floor(&self.shared, &handler).await })
    }

    fn save_checkpoint(&self, handler: &str, seq: u64) -> BoxFuture<'_, Result<()>> {
        let handler = handler.to_owned();
        Box::pin(async move { consumer::move_to(&self.shared, &handler, seq).await })
    }

    fn checkpoints(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>>> {
        Box::pin(consumer::all_floors(&self.shared))
    }
}

impl ScheduleStore for RedisStore {
    fn schedule(&self, draft: Draft, due: DateTime<Utc>) -> BoxFuture<'_, Result<()>> {
        Box::pin(schedules::schedule(&self.shared, draft, due))
    }

    fn cancel(&self, id: &str) -> BoxFuture<'_, Result<bool>> {
        let id = id.to_owned();
        Box::pin(async move { schedules::cancel(&self.shared, &id).await })
    }

    fn scheduled(&self) -> BoxFuture<'_, Result<Vec<Scheduled>>> {
        Box::pin(schedules::list(&self.shared))
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<DateTime<Utc>>>> {
        Box::pin(schedules::next_due(&self.shared))
    }

    fn release_due(&self, now: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<RawEnvelope>>> {
        Box::pin(schedules::release_due(&self.shared, now))
    }
}

impl SagaStore for RedisStore {
    fn load_saga(&self, saga: &str, key: &str) -> BoxFuture<'_, Result<Option<StoredSaga>>> {
        let (saga, key) = (saga.to_owned(), key.to_owned());
        Box::pin(async move { sagas::load(&self.shared, &saga, &key).await })
    }

    fn save_saga(
        &self,
        saga: &str,
        key: &str,
        expected: u64,
        open: bool,
        record: String,
    ) -> BoxFuture<'_, Result<u64>> {
        let (saga, key) = (saga.to_owned(), key.to_owned());
        Box::pin(
            async move { sagas::save(&self.shared, &saga, &key, expected, open, record).await },
        )
    }

    fn saga_instances(
        &self,
        saga: Option<&str>,
        open_only: bool,
    ) -> BoxFuture<'_, Result<Vec<StoredSaga>>> {
        let saga = saga.map(str::to_owned);
        Box::pin(async move { sagas::list(&self.shared, saga.as_deref(), open_only).await })
    }
}

impl ServerConsumers for RedisStore {
    fn consume(&self, spec: ConsumerSpec) -> BoxFuture<'_, Result<BoxStream<'static, Delivery>>> {
        Box::pin(consumer::open(Arc::clone(&self.shared), spec))
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}
