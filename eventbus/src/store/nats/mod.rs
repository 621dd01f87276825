//! `nats://`: events in a NATS JetStream stream, for a bus that spans
//! processes and machines.
//!
//! One stream (`limits` retention, file storage by default) holds subjects
//! `PREFIX.>`; topic `order.placed` is subject `PREFIX.order.placed`, and an
//! event's seq is its stream sequence. Publishing sets `Nats-Msg-Id` (the
//! idempotency key, or the event id), so the server's duplicate window
//! drops a repeated publish. Each handler is a durable pull consumer named
//! after it (see `consumer`), so every process running the handler shares
//! its work; history and replay read through ordered consumers (`read`);
//! dead letters live in a key-value bucket beside the stream
//! (`dead_letters`), and entity streams in a stream of their own
//! (`entities`). The wire format is CloudEvents binary mode (`wire`).

mod bucket;
mod config;
mod consumer;
mod dead_letters;
mod entities;
mod forward;
mod read;
mod sagas;
mod schedules;
pub(crate) mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use chrono::{DateTime, Utc};

pub use config::NatsConfig;

use super::admin::{StoreAdmin, TopicSummary};
use super::checkpoints::CheckpointStore;
use super::consumer::{ConsumerSpec, Delivery, ServerConsumers};
use super::core::{Create, Store};
use super::dead_letter::{DeadLetter, DeadLetterQuery, DeadLetterStore, NewDeadLetter};
use super::query::Query;
use super::sagas::{SagaStore, StoredSaga};
use super::schedules::{ScheduleStore, Scheduled};
use super::streams::{Snapshot, StreamEntry, StreamId, StreamStore};
use crate::envelope::{Draft, RawEnvelope};
use crate::error::{Error, Result};
use crate::future::BoxFuture;
use crate::future::BoxStream;
use crate::topic::Pattern;

/// A bus store on a NATS JetStream stream. Open it with
/// `Bus::builder().store("nats://127.0.0.1:4222")`, or with
/// [`NatsStore::connect`] for settings a URL cannot carry.
///
/// `publish().await` returns once JetStream acknowledged the message. By
/// default the server acknowledges before its data reaches the disk (it
/// syncs every two minutes); run it with `sync_interval: always` where an
/// acknowledged event must survive a machine crash.
pub struct NatsStore {
    shared: Arc<Shared>,
}

struct Shared {
    config: NatsConfig,
    client: async_nats::Client,
    js: jetstream::Context,
    stream: stream::Stream,
    /// What ids of messages without CloudEvents headers are made of.
    origin: wire::Origin,
    dead: dead_letters::Bucket,
    entities: entities::Entities,
    schedules: schedules::Schedules,
    sagas: sagas::Sagas,
    /// The handlers' pull loops, so that closing waits for those whose bus
    /// stopped to unsubscribe before it flushes (see `consumer::Pullers`).
    pullers: consumer::Pullers,
}

impl NatsStore {
    /// Connects, creates the stream if it is missing (or checks the
    /// settings of the one that exists), and opens the dead-letter bucket,
    /// creating it too if it is missing.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the server cannot be reached, JetStream is not
    /// enabled, or the existing stream's settings differ from those asked
    /// for; [`Error::Config`] when a credentials or certificate file cannot
    /// be read.
    pub async fn connect(config: NatsConfig) -> Result<Self> {
        Self::connect_with(config, Create::IfMissing).await
    }

    /// Connects to a stream that must already exist (and checks its
    /// settings as [`NatsStore::connect`] does), creating nothing on the
    /// server. The dead-letter bucket is used if it exists; while it does
    /// not, there are no dead letters to list, retry or purge, and adding
    /// the first one creates it.
    ///
    /// # Errors
    ///
    /// [`Error::StoreNotFound`] when the stream does not exist; otherwise
    /// those of [`NatsStore::connect`].
    pub async fn connect_existing(config: NatsConfig) -> Result<Self> {
        Self::connect_with(config, Create::Never).await
    }

    async fn connect_with(config: NatsConfig, create: Create) -> Result<Self> {
        let client = connect_client(&config).await?;
        let js = jetstream::new(client.clone());
        let stream = ensure_stream(&js, &config, create).await?;
        let dead = match create {
            Create::IfMissing => dead_letters::Bucket::open_or_create(&js, &config).await?,
            Create::Never => dead_letters::Bucket::when_it_exists(&js, &config),
        };
        let entities = entities::Entities::new(&js, &config);
        let schedules = schedules::Schedules::new(&js, &config);
        let sagas = sagas::Sagas::new(&js, &config);
        if create == Create::IfMissing {
            entities.resume_forwarding().await?;
        }
        let origin = wire::Origin::new(&config.stream, stream.cached_info().created);
        Ok(NatsStore {
            shared: Arc::new(Shared {
                config,
                client,
                js,
                stream,
                origin,
                dead,
                entities,
                schedules,
                sagas,
                pullers: consumer::Pullers::default(),
            }),
        })
    }

    /// The settings this store was opened with.
    pub fn config(&self) -> &NatsConfig {
        &self.shared.config
    }

    async fn append_draft(&self, draft: Draft) -> Result<RawEnvelope> {
        let s = &self.shared;
        let (headers, body) = wire::encode(&draft).map_err(nats_error("encoding an event"))?;
        let subject = s.config.subject(draft.topic());
        let ack =
            s.js.publish_with_headers(subject, headers, body)
                .await
                .map_err(nats_error("publishing"))?
                .await
                .map_err(nats_error("waiting for JetStream to acknowledge a publish"))?;
        if !ack.duplicate {
            return Ok(draft.seal(ack.sequence));
        }
        // Inside the duplicate window the server names the first message's
        // sequence: answer with that event, as the other stores do.
        let first = s
            .stream
            .get_raw_message(ack.sequence)
            .await
            .map_err(nats_error("reading the first publish of a repeated event"))?;
        read::decode_stored(s, first).map_err(|reason| Error::BadRow {
            seq: ack.sequence,
            reason,
        })
    }
}

async fn connect_client(config: &NatsConfig) -> Result<async_nats::Client> {
    let mut options = async_nats::ConnectOptions::new()
        .name("eventbus")
        .connection_timeout(Duration::from_secs(5))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                async_nats::Event::Disconnected => {
                    tracing::warn!("disconnected from NATS; reconnecting")
                }
                other => tracing::debug!(event = %other, "NATS connection event"),
            }
        });
    options = match &config.auth {
        config::Auth::None => options,
        config::Auth::UserPassword(user, password) => {
            options.user_and_password(user.clone(), password.clone())
        }
        config::Auth::Token(token) => options.token(token.clone()),
    };
    if let Some(path) = &config.credentials_file {
        options = options.credentials_file(path).await.map_err(|e| {
            Error::Config(format!(
                "cannot read the NATS credentials file {}: {e}",
                path.display()
            ))
        })?;
    }
    if config.tls_required {
        options = options.require_tls(true);
    }
    if let Some(ca) = &config.tls_ca {
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &config.tls_client {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    options
        .connect(config.servers.as_slice())
        .await
        .map_err(|e| {
            Error::unavailable(
                "nats",
                format!(
                    "cannot connect to {}; is nats-server running there?",
                    config.servers()
                ),
                Some(Box::new(e)),
            )
        })
}

/// The stream the config names: created when missing (if `create` allows);
/// when present, its retention, subjects and any limit the config sets
/// must agree.
async fn ensure_stream(
    js: &jetstream::Context,
    config: &NatsConfig,
    create: Create,
) -> Result<stream::Stream> {
    let all = config.subject(">");
    match js.get_stream(&config.stream).await {
        Ok(mut existing) => {
            let info = existing
                .info()
                .await
                .map_err(nats_error("reading the stream's settings"))?;
            let problems = stream_mismatches(&info.config, config, &all);
            if !problems.is_empty() {
                return Err(Error::store(
                    "nats",
                    format!(
                        "stream `{}` exists with other settings: {}; point the URL at another \
                         stream (`?stream=NAME`) or change the stream (`nats stream edit`)",
                        config.stream,
                        problems.join("; ")
                    ),
                ));
            }
            Ok(existing)
        }
        Err(e) if is_stream_not_found(&e) && create == Create::Never => Err(Error::StoreNotFound {
            store: "nats",
            message: format!(
                "stream `{}` does not exist on {}; check `?stream=` in the store URL (only \
                 publishing, import and a running bus create it)",
                config.stream,
                config.servers()
            ),
        }),
        Err(e) if is_stream_not_found(&e) => {
            let l = &config.limits;
            let wanted = stream::Config {
                name: config.stream.clone(),
                subjects: vec![all],
                retention: stream::RetentionPolicy::Limits,
                storage: if l.memory_storage == Some(true) {
                    stream::StorageType::Memory
                } else {
                    stream::StorageType::File
                },
                max_age: l.max_age.unwrap_or_default(),
                max_bytes: l.max_bytes.unwrap_or(-1),
                num_replicas: l.replicas.unwrap_or(1),
                duplicate_window: l.duplicate_window.unwrap_or(Duration::from_secs(120)),
                description: Some("eventbus events".to_owned()),
                ..Default::default()
            };
            js.create_stream(wanted)
                .await
                .map_err(nats_error("creating the stream"))
        }
        Err(e) => Err(Error::store_source(
            "nats",
            format!(
                "looking up stream `{}` failed; is JetStream enabled on the server \
                 (`nats-server -js`)?",
                config.stream
            ),
            e,
        )),
    }
}

fn stream_mismatches(have: &stream::Config, config: &NatsConfig, all: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if have.retention != stream::RetentionPolicy::Limits {
        problems.push(format!(
            "retention is {:?}, but history needs `limits`",
            have.retention
        ));
    }
    if !have.subjects.iter().any(|s| s == all || s == ">") {
        problems.push(format!(
            "subjects are {:?}, which do not hold `{all}`",
            have.subjects
        ));
    }
    let l = &config.limits;
    let mut differs = |what: &str, have: String, want: Option<String>| {
        if let Some(want) = want
            && want != have
        {
            problems.push(format!("{what} is {have}, the URL asks {want}"));
        }
    };
    differs(
        "max_age",
        format!("{:?}", have.max_age),
        l.max_age.map(|d| format!("{d:?}")),
    );
    differs(
        "max_bytes",
        have.max_bytes.to_string(),
        l.max_bytes.map(|b| b.to_string()),
    );
    differs(
        "replicas",
        have.num_replicas.to_string(),
        l.replicas.map(|r| r.to_string()),
    );
    differs(
        "duplicate_window",
        format!("{:?}", have.duplicate_window),
        l.duplicate_window.map(|d| format!("{d:?}")),
    );
    differs(
        "storage",
        format!("{:?}", have.storage).to_lowercase(),
        l.memory_storage
            .map(|m| if m { "memory" } else { "file" }.to_owned()),
    );
    problems
}

/// The settings of a stream beside the bus stream (entity streams,
/// scheduled events): `limits` retention, the bus stream's storage and
/// replicas, no age or size limit.
fn side_stream(
    name: &str,
    subjects: String,
    description: String,
    replicas: usize,
    memory: bool,
) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        description: Some(description),
        subjects: vec![subjects],
        retention: stream::RetentionPolicy::Limits,
        storage: if memory {
            stream::StorageType::Memory
        } else {
            stream::StorageType::File
        },
        num_replicas: replicas,
        ..Default::default()
    }
}

/// The stream `wanted` names, created if it is missing; another process
/// may create it at the same moment, and getting it again tells.
async fn get_or_create_stream(
    js: &jetstream::Context,
    wanted: stream::Config,
) -> Result<stream::Stream> {
    let name = wanted.name.clone();
    match js.get_or_create_stream(wanted).await {
        Ok(s) => Ok(s),
        Err(_) => js
            .get_stream(&name)
            .await
            .map_err(nats_error("creating a stream")),
    }
}

pub(super) fn is_stream_not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(
        e.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(js)
            if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// Wraps a client error, kept as the source, with what was being done.
pub(crate) fn nats_error<E: Into<crate::error::BoxError>>(
    doing: &'static str,
) -> impl Fn(E) -> Error {
    move |e| Error::store_source("nats", format!("{doing} failed"), e)
}

impl Store for NatsStore {
    fn append(&self, draft: Draft) -> BoxFuture<'_, Result<RawEnvelope>> {
        Box::pin(self.append_draft(draft))
    }

    fn query(&self, query: Query) -> BoxStream<'static, Result<RawEnvelope>> {
        read::query(Arc::clone(&self.shared), query)
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.shared.entities.stop().await;
            self.shared.pullers.join_stopped().await;
            self.shared
                .client
                .flush()
                .await
                .map_err(nats_error("flushing the connection"))
        })
    }

    fn durable(&self) -> bool {
        true
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

    fn as_streams(&self) -> Option<&dyn StreamStore> {
        Some(self)
    }

    fn as_schedules(&self) -> Option<&dyn ScheduleStore> {
        Some(self)
    }

    fn as_sagas(&self) -> Option<&dyn SagaStore> {
        Some(self)
    }
}

impl ScheduleStore for NatsStore {
    fn schedule(&self, draft: Draft, due: DateTime<Utc>) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.shared.schedules.schedule(draft, due))
    }

    fn cancel(&self, id: &str) -> BoxFuture<'_, Result<bool>> {
        let id = id.to_owned();
        Box::pin(async move { self.shared.schedules.cancel(&id).await })
    }

    fn scheduled(&self) -> BoxFuture<'_, Result<Vec<Scheduled>>> {
        Box::pin(self.shared.schedules.list())
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<DateTime<Utc>>>> {
        Box::pin(async move {
            let waiting = self.shared.schedules.list().await?;
            Ok(waiting.first().map(|s| s.due))
        })
    }

    /// The server publishes what is due (see `schedules`), through
    /// [`ScheduleStore::released`]: there is nothing to release here.
    fn release_due(&self, _now: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<RawEnvelope>>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn released(&self) -> Option<BoxStream<'static, Result<RawEnvelope>>> {
        Some(self.shared.schedules.released())
    }
}

impl StreamStore for NatsStore {
    fn append_to_stream(
        &self,
        stream: &StreamId,
        expected: u64,
        drafts: Vec<Draft>,
    ) -> BoxFuture<'_, Result<Vec<RawEnvelope>>> {
        let stream = stream.clone();
        Box::pin(async move { self.shared.entities.append(&stream, expected, drafts).await })
    }

    fn read_stream(
        &self,
        stream: &StreamId,
        after: u64,
        until: Option<u64>,
    ) -> BoxFuture<'_, Result<Vec<RawEnvelope>>> {
        let stream = stream.clone();
        Box::pin(async move {
            let s = &self.shared;
            s.entities.read_with_seqs(s, &stream, after, until).await
        })
    }

    fn read_stream_data(
        &self,
        stream: &StreamId,
        after: u64,
        until: Option<u64>,
    ) -> BoxFuture<'_, Result<Vec<StreamEntry>>> {
        let stream = stream.clone();
        Box::pin(async move { self.shared.entities.read_data(&stream, after, until).await })
    }

    fn save_snapshot(&self, snapshot: Snapshot) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.shared.entities.save_snapshot(snapshot))
    }

    fn load_snapshot(
        &self,
        stream: &StreamId,
        state_version: u32,
    ) -> BoxFuture<'_, Result<Option<Snapshot>>> {
        let stream = stream.clone();
        Box::pin(async move {
            self.shared
                .entities
                .load_snapshot(&stream, state_version)
                .await
        })
    }
}

impl CheckpointStore for NatsStore {
    fn load_checkpoint(&self, handler: &str) -> BoxFuture<'_, Result<Option<u64>>> {
        let handler = handler.to_owned();
        Box::pin(async move { consumer::ack_floor(&self.shared, &handler).await })
    }

    fn save_checkpoint(&self, handler: &str, seq: u64) -> BoxFuture<'_, Result<()>> {
        let handler = handler.to_owned();
        Box::pin(async move { consumer::move_to(&self.shared, &handler, seq).await })
    }

    fn checkpoints(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>>> {
        Box::pin(consumer::all_ack_floors(&self.shared))
    }
}

impl DeadLetterStore for NatsStore {
    fn add_dead_letter(&self, dead: NewDeadLetter) -> BoxFuture<'_, Result<u64>> {
        Box::pin(self.shared.dead.add(dead))
    }

    fn dead_letters(&self, query: DeadLetterQuery) -> BoxFuture<'_, Result<Vec<DeadLetter>>> {
        Box::pin(self.shared.dead.list(query))
    }

    fn request_retry(&self, id: u64) -> BoxFuture<'_, Result<bool>> {
        Box::pin(self.shared.dead.request_retry(id))
    }

    fn record_retry_failure(
        &self,
        id: u64,
        error: String,
        attempts: u32,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.shared.dead.retry_failed(id, error, attempts))
    }

    fn remove_dead_letter(&self, id: u64) -> BoxFuture<'_, Result<bool>> {
        Box::pin(self.shared.dead.remove(id))
    }

    fn purge_dead_letters(&self, handler: Option<&str>) -> BoxFuture<'_, Result<u64>> {
        let handler = handler.map(str::to_owned);
        Box::pin(async move { self.shared.dead.purge(handler.as_deref()).await })
    }
}

impl StoreAdmin for NatsStore {
    fn clear(&self, pattern: &Pattern) -> BoxFuture<'_, Result<u64>> {
        let subject = self.shared.config.subject(pattern.as_str());
        let everything = pattern.as_str() == ">";
        Box::pin(async move {
            let purged = self
                .shared
                .stream
                .purge()
                .filter(subject)
                .await
                .map_err(nats_error("purging the stream"))?;
            // Clearing everything clears the entity streams too, as it
            // does on the other stores, where they are the same events,
            // and starts the saga instances over.
            if everything {
                self.shared.entities.purge().await?;
                self.shared.sagas.purge().await?;
            }
            Ok(purged.purged)
        })
    }

    fn topics(&self) -> BoxFuture<'_, Result<Vec<TopicSummary>>> {
        Box::pin(read::topics(&self.shared))
    }

    fn size_bytes(&self) -> Option<u64> {
        None
    }
}

impl ServerConsumers for NatsStore {
    fn consume(&self, spec: ConsumerSpec) -> BoxFuture<'_, Result<BoxStream<'static, Delivery>>> {
        Box::pin(consumer::open(Arc::clone(&self.shared), spec))
    }
}

impl std::fmt::Debug for NatsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsStore")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl SagaStore for NatsStore {
    fn load_saga(&self, saga: &str, key: &str) -> BoxFuture<'_, Result<Option<StoredSaga>>> {
        let (saga, key) = (saga.to_owned(), key.to_owned());
        Box::pin(async move { self.shared.sagas.load(&saga, &key).await })
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
        Box::pin(async move {
            self.shared
                .sagas
                .save(&saga, &key, expected, open, record)
                .await
        })
    }

    fn saga_instances(
        &self,
        saga: Option<&str>,
        open_only: bool,
    ) -> BoxFuture<'_, Result<Vec<StoredSaga>>> {
        let saga = saga.map(str::to_owned);
        Box::pin(async move { self.shared.sagas.list(saga.as_deref(), open_only).await })
    }
}
