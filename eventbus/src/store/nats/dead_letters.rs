//! Dead letters on NATS, in a JetStream key-value bucket named
//! `<STREAM>_dead_letters` beside the event stream (JetStream itself has no
//! dead-letter queue: it only emits an advisory that is lost if nobody
//! listens).
//!
//! Keys: `d.<id>` holds a dead letter as JSON (its envelope in CloudEvents
//! form); `i.<consumer>.<seq>` maps a handler's failed event to its dead
//! letter, so a redelivery after a crash between burying and settling
//! finds the first one instead of adding a second; `r.<id>` marks one
//! whose retry was requested; `next` is the id
//! counter, advanced by compare-and-set so that processes sharing the
//! bucket never hand out one id twice.

use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::{NatsConfig, consumer::consumer_name, nats_error};
use crate::envelope::RawEnvelope;
use crate::error::{Error, Result};
use crate::store::dead_letter::{DeadLetter, DeadLetterQuery, NewDeadLetter};

/// The bucket of one event stream, found (or created) when first needed.
pub(super) struct Bucket {
    js: jetstream::Context,
    stream: String,
    name: String,
    /// The bucket's stream's replicas, should it be created.
    replicas: usize,
    /// Set once the bucket is known to exist. A store opened without
    /// creating anything looks for it again on every use until it does, so
    /// that a bus elsewhere creating it meanwhile is noticed.
    open: OnceCell<Open>,
}

/// The dead letters in a bucket that exists.
struct Open {
    kv: kv::Store,
}

#[derive(Serialize, Deserialize)]
struct Record {
    handler: String,
    envelope: RawEnvelope,
    error: String,
    attempts: u32,
    time: DateTime<Utc>,
    retry_requested: bool,
}

const NEXT: &str = "next";

impl Bucket {
    /// The stream's bucket, used only once it exists: until then there
    /// are no dead letters, and only adding one creates it.
    pub(super) fn when_it_exists(js: &jetstream::Context, config: &NatsConfig) -> Self {
        Bucket {
            js: js.clone(),
            stream: config.stream.clone(),
            name: format!("{}_dead_letters", config.stream),
            replicas: config.limits.replicas.unwrap_or(1),
            open: OnceCell::new(),
        }
    }

    /// The stream's bucket, created now if it is missing.
    pub(super) async fn open_or_create(
        js: &jetstream::Context,
        config: &NatsConfig,
    ) -> Result<Self> {
        let bucket = Self::when_it_exists(js, config);
        bucket.created().await?;
        Ok(bucket)
    }

    /// The bucket if it exists, without creating it.
    async fn existing(&self) -> Result<Option<&Open>> {
        if let Some(open) = self.open.get() {
            return Ok(Some(open));
        }
        match self.js.get_key_value(&self.name).await {
            Ok(kv) => Ok(Some(self.open.get_or_init(|| async { Open { kv } }).await)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(nats_error("opening the dead-letter bucket")(e)),
        }
    }

    /// The bucket, created if it is missing.
    async fn created(&self) -> Result<&Open> {
        if let Some(open) = self.existing().await? {
            return Ok(open);
        }
        let kv = open_or_create_bucket(
            &self.js,
            &self.name,
            format!("eventbus dead letters of stream {}", self.stream),
            self.replicas,
        )
        .await?;
        Ok(self.open.get_or_init(|| async { Open { kv } }).await)
    }

    pub(super) async fn add(&self, dead: NewDeadLetter) -> Result<u64> {
        self.created().await?.add(dead).await
    }

    /// A missing bucket holds no dead letters.
    pub(super) async fn list(&self, query: DeadLetterQuery) -> Result<Vec<DeadLetter>> {
        match self.existing().await? {
            Some(open) => open.list(query).await,
            None => Ok(Vec::new()),
        }
    }

    pub(super) async fn request_retry(&self, id: u64) -> Result<bool> {
        match self.existing().await? {
            Some(open) => open.request_retry(id).await,
            None => Ok(false),
        }
    }

    pub(super) async fn retry_failed(&self, id: u64, error: String, attempts: u32) -> Result<()> {
        match self.existing().await? {
            Some(open) => open.retry_failed(id, error, attempts).await,
            None => Ok(()),
        }
    }

    pub(super) async fn remove(&self, id: u64) -> Result<bool> {
        match self.existing().await? {
            Some(open) => open.remove(id).await,
            None => Ok(false),
        }
    }

    pub(super) async fn purge(&self, handler: Option<&str>) -> Result<u64> {
        match self.existing().await? {
            Some(open) => open.purge(handler).await,
            None => Ok(0),
        }
    }
}

/// Whether opening a bucket failed because its stream does not exist.
/// The key-value bucket `name`, created if it is missing. Its stream is
/// made by hand, as the key-value convention lays it out: the client's own
/// bucket creation first queries account details that a 2.9 server words
/// differently.
pub(super) async fn open_or_create_bucket(
    js: &jetstream::Context,
    name: &str,
    description: String,
    replicas: usize,
) -> Result<kv::Store> {
    let created = js
        .create_stream(stream::Config {
            name: format!("KV_{name}"),
            description: Some(description),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            num_replicas: replicas,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await;
    // Another process may have made it meanwhile; opening tells.
    if let Err(e) = created {
        tracing::debug!(bucket = name, error = %e, "creating a key-value bucket");
    }
    js.get_key_value(name)
        .await
        .map_err(nats_error("opening a key-value bucket"))
}

/// Whether opening a bucket failed because it does not exist.
pub(super) fn is_missing(e: &jetstream::context::KeyValueError) -> bool {
    use std::error::Error as _;
    e.kind() == jetstream::context::KeyValueErrorKind::GetBucket
        && e.source()
            .and_then(|source| source.downcast_ref::<jetstream::context::GetStreamError>())
            .is_some_and(super::is_stream_not_found)
}

impl Open {
    async fn add(&self, dead: NewDeadLetter) -> Result<u64> {
        let index = format!("i.{}.{}", consumer_name(&dead.handler), dead.envelope.seq());
        if let Some(id) = self.indexed(&index).await? {
            return Ok(id);
        }
        let id = self.next_id().await?;
        let record = Record {
            handler: dead.handler,
            envelope: dead.envelope,
            error: dead.error,
            attempts: dead.attempts,
            time: Utc::now(),
            retry_requested: false,
        };
        self.kv
            .put(format!("d.{id}"), encode(&record)?)
            .await
            .map_err(nats_error("storing a dead letter"))?;
        match self.kv.create(&index, Bytes::from(id.to_string())).await {
            Ok(_) => Ok(id),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                // Another process buried the same delivery first: keep theirs.
                self.kv
                    .purge(format!("d.{id}"))
                    .await
                    .map_err(nats_error("removing a duplicate dead letter"))?;
                self.indexed(&index).await?.ok_or_else(|| {
                    Error::store(
                        "nats",
                        format!("dead-letter index `{index}` vanished while being read"),
                    )
                })
            }
            Err(e) => Err(nats_error("indexing a dead letter")(e)),
        }
    }

    async fn indexed(&self, index: &str) -> Result<Option<u64>> {
        let value = self
            .kv
            .get(index)
            .await
            .map_err(nats_error("reading the dead-letter index"))?;
        Ok(value.and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok()))
    }

    async fn next_id(&self) -> Result<u64> {
        loop {
            let entry = self
                .kv
                .entry(NEXT)
                .await
                .map_err(nats_error("reading the dead-letter counter"))?;
            let outcome = match entry {
                None => self
                    .kv
                    .create(NEXT, Bytes::from_static(b"1"))
                    .await
                    .map(|_| 1)
                    .map_err(|e| e.kind() == kv::CreateErrorKind::AlreadyExists),
                Some(entry) => {
                    let next = std::str::from_utf8(&entry.value)
                        .ok()
                        .and_then(|t| t.parse::<u64>().ok())
                        .unwrap_or(0)
                        + 1;
                    self.kv
                        .update(NEXT, Bytes::from(next.to_string()), entry.revision)
                        .await
                        .map(|_| next)
                        .map_err(|e| e.kind() == kv::UpdateErrorKind::WrongLastRevision)
                }
            };
            match outcome {
                Ok(id) => return Ok(id),
                // Another process took this id: read the counter again.
                Err(true) => continue,
                Err(false) => {
                    return Err(Error::store(
                        "nats",
                        "could not advance the dead-letter counter",
                    ));
                }
            }
        }
    }

    async fn list(&self, query: DeadLetterQuery) -> Result<Vec<DeadLetter>> {
        let ids = match query.id {
            Some(id) => vec![id],
            None => {
                let mut keys = self
                    .kv
                    .keys()
                    .await
                    .map_err(nats_error("listing dead letters"))?;
                // Only the marked ones are read when that is all the
                // query wants: the bus polls for them every few seconds.
                let prefix = if query.retry_requested { "r." } else { "d." };
                let mut ids = Vec::new();
                while let Some(key) = keys.next().await {
                    let key = key.map_err(nats_error("listing dead letters"))?;
                    if let Some(id) = key.strip_prefix(prefix).and_then(|i| i.parse().ok()) {
                        ids.push(id);
                    }
                }
                ids.sort_unstable();
                ids
            }
        };
        let mut out = Vec::new();
        for id in ids {
            if query.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            if let Some((dead, _)) = self.get(id).await?
                && query.matches(&dead)
            {
                out.push(dead);
            }
        }
        Ok(out)
    }

    async fn get(&self, id: u64) -> Result<Option<(DeadLetter, u64)>> {
        let entry = self
            .kv
            .entry(format!("d.{id}"))
            .await
            .map_err(nats_error("reading a dead letter"))?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return Ok(None);
        };
        let record: Record = serde_json::from_slice(&entry.value).map_err(|e| {
            Error::store_source("nats", format!("dead letter {id} cannot be read"), e)
        })?;
        let dead = DeadLetter {
            id,
            handler: record.handler,
            envelope: record.envelope,
            error: record.error,
            attempts: record.attempts,
            time: record.time,
            retry_requested: record.retry_requested,
        };
        Ok(Some((dead, entry.revision)))
    }

    /// Changes a dead letter; false when there is none with that id.
    async fn modify(&self, id: u64, change: impl Fn(&mut DeadLetter)) -> Result<bool> {
        loop {
            let Some((mut dead, revision)) = self.get(id).await? else {
                return Ok(false);
            };
            change(&mut dead);
            let record = Record {
                handler: dead.handler,
                envelope: dead.envelope,
                error: dead.error,
                attempts: dead.attempts,
                time: dead.time,
                retry_requested: dead.retry_requested,
            };
            match self
                .kv
                .update(format!("d.{id}"), encode(&record)?, revision)
                .await
            {
                Ok(_) => return Ok(true),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(nats_error("updating a dead letter")(e)),
            }
        }
    }

    /// Marks a dead letter for retry: the flag in it, and an `r.<id>` key
    /// so that finding the marked ones reads no others.
    async fn request_retry(&self, id: u64) -> Result<bool> {
        if !self.modify(id, |d| d.retry_requested = true).await? {
            return Ok(false);
        }
        self.kv
            .put(format!("r.{id}"), Bytes::new())
            .await
            .map_err(nats_error("marking a dead letter for retry"))?;
        Ok(true)
    }

    /// Records a failed retry and clears the retry mark.
    async fn retry_failed(&self, id: u64, error: String, attempts: u32) -> Result<()> {
        self.modify(id, move |d| {
            d.error = error.clone();
            d.attempts = d.attempts.saturating_add(attempts);
            d.retry_requested = false;
        })
        .await?;
        self.kv
            .purge(format!("r.{id}"))
            .await
            .map_err(nats_error("clearing a dead letter's retry mark"))
    }

    async fn remove(&self, id: u64) -> Result<bool> {
        let Some((dead, _)) = self.get(id).await? else {
            return Ok(false);
        };
        let index = format!("i.{}.{}", consumer_name(&dead.handler), dead.envelope.seq());
        for key in [format!("d.{id}"), format!("r.{id}"), index] {
            self.kv
                .purge(key)
                .await
                .map_err(nats_error("removing a dead letter"))?;
        }
        Ok(true)
    }

    async fn purge(&self, handler: Option<&str>) -> Result<u64> {
        let query = match handler {
            Some(h) => DeadLetterQuery::handler(h),
            None => DeadLetterQuery::all(),
        };
        let mut removed = 0;
        for dead in self.list(query).await? {
            if self.remove(dead.id).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn encode(record: &Record) -> Result<Bytes> {
    serde_json::to_vec(record)
        .map(Bytes::from)
        .map_err(|e| Error::store_source("nats", "a dead letter cannot be encoded", e))
}
