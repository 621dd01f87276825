//! Entity streams on NATS: each entity's events, appended only when the
//! entity is still at the version its writer loaded.
//!
//! NATS checks a writer's expectation per subject
//! (`Nats-Expected-Last-Subject-Sequence`), and a 2.9 server has no other
//! per-entity check and no atomic batch. One entity's events carry several
//! topics (`document.created`, `document.updated`), and handlers select
//! events by the topic in the subject, so no subject of the bus stream can
//! be both per topic and per entity. Entity streams therefore live in a
//! stream of their own beside the bus stream, `<STREAM>_entities`, on
//! subjects `eventbus-entities.<STREAM>.<kind>.<id>`: one subject per
//! entity, and one message per save holding that save's events as a
//! CloudEvents batch (a JSON array of structured events), so a save is
//! all or none and one header check guards it. Loading an entity reads
//! only its own subject.
//!
//! Once saved, the events are forwarded to the bus stream, where handlers,
//! subscriptions, history and replay find them as any other event: the
//! writer forwards its own save at once, and a durable consumer that every
//! bus process runs forwards any save whose writer died before it did.
//! `Nats-Msg-Id` (the event id) makes the server drop the second copy
//! within its duplicate window (2 minutes by default).
//!
//! Snapshots are kept in the key-value bucket `<STREAM>_snapshots`, one key
//! per entity and state version.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, AckKind, stream};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::OnceCell;

use super::bucket::LazyBucket;
use super::forward::Forward;
use super::{NatsConfig, nats_error};
use crate::envelope::{Draft, RawEnvelope};
use crate::error::{Error, Result};
use crate::store::streams::{self, Snapshot, StreamEntry, StreamId};

/// The versions a save holds, `FIRST-LAST`, read without parsing the body.
const VERSIONS: &str = "Eventbus-Versions";
/// A save this recent may still be on its way to the bus stream when the
/// next one is forwarded: the next writer forwards it again first (the
/// server drops the copy), so one entity's events reach handlers in order.
const RECENT: chrono::TimeDelta = chrono::TimeDelta::seconds(10);
/// How far a publisher's clock may run ahead of the server's.
const CLOCK_SLACK: chrono::TimeDelta = chrono::TimeDelta::minutes(1);
/// The durable consumer that forwards saves whose writer died first.
const FORWARDER: &str = "forwarder";
/// How long a save handed to a forwarder waits for its ack before the server
/// hands it to another process. The consumer lets one save out at a time,
/// so a forwarder that vanished mid-save holds all forwarding up this long.
const FORWARD_ACK_WAIT: Duration = Duration::from_secs(5);
/// How long closing the store waits for the save being forwarded.
const FORWARDER_STOP: Duration = Duration::from_secs(5);

/// The entity streams and snapshots of one bus stream.
pub(super) struct Entities {
    js: jetstream::Context,
    forward: Forward,
    bus_stream: String,
    name: String,
    subjects: String,
    replicas: usize,
    memory: bool,
    open: OnceCell<stream::Stream>,
    snapshots: LazyBucket,
    forwarder: std::sync::Mutex<Option<Forwarder>>,
}

/// This process's forwarding task and the way to ask it to stop.
struct Forwarder {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The last save of an entity.
struct LastSave {
    seq: u64,
    version: u64,
    time: DateTime<Utc>,
    events: Vec<RawEnvelope>,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    version: u64,
    state: Box<RawValue>,
}

impl Entities {
    pub(super) fn new(js: &jetstream::Context, config: &NatsConfig) -> Self {
        Entities {
            js: js.clone(),
            forward: Forward::new(js, config),
            bus_stream: config.stream.clone(),
            name: format!("{}_entities", config.stream),
            subjects: format!("eventbus-entities.{}", config.stream),
            replicas: config.limits.replicas.unwrap_or(1),
            memory: config.limits.memory_storage == Some(true),
            open: OnceCell::new(),
            snapshots: LazyBucket::new(
                js,
                format!("{}_snapshots", config.stream),
                format!("eventbus snapshots of stream {}", config.stream),
                config.limits.replicas.unwrap_or(1),
            ),
            forwarder: std::sync::Mutex::new(None),
        }
    }

    /// Starts forwarding if entity streams exist already, so a save whose
    /// writer died before forwarding it reaches the bus stream.
    pub(super) async fn resume_forwarding(&self) -> Result<()> {
        if self.existing().await?.is_some() {
            self.start_forwarder().await?;
        }
        Ok(())
    }

    fn subject(&self, stream: &StreamId) -> String {
        format!(
            "{}.{}.{}",
            self.subjects,
            token(&stream.kind),
            token(&stream.id)
        )
    }

    async fn existing(&self) -> Result<Option<&stream::Stream>> {
        if let Some(open) = self.open.get() {
            return Ok(Some(open));
        }
        match self.js.get_stream(&self.name).await {
            Ok(s) => Ok(Some(self.open.get_or_init(|| async { s }).await)),
            Err(e) if super::is_stream_not_found(&e) => Ok(None),
            Err(e) => Err(nats_error("opening the entity streams")(e)),
        }
    }

    /// The entity streams, created if missing, with this process
    /// forwarding saves.
    async fn created(&self) -> Result<&stream::Stream> {
        if let Some(open) = self.existing().await? {
            self.start_forwarder().await?;
            return Ok(open);
        }
        let wanted = super::side_stream(
            &self.name,
            format!("{}.>", self.subjects),
            format!("eventbus entity streams of stream {}", self.bus_stream),
            self.replicas,
            self.memory,
        );
        let s = super::get_or_create_stream(&self.js, wanted).await?;
        let s = self.open.get_or_init(|| async { s }).await;
        self.start_forwarder().await?;
        Ok(s)
    }

    async fn start_forwarder(&self) -> Result<()> {
        let Some(entities) = self.open.get() else {
            return Ok(());
        };
        if self.forwarding() {
            return Ok(());
        }
        let consumer = entities
            .get_or_create_consumer(
                FORWARDER,
                pull::Config {
                    durable_name: Some(FORWARDER.to_owned()),
                    description: Some("forwards saves to the bus stream".to_owned()),
                    ack_policy: AckPolicy::Explicit,
                    // One save at a time keeps each entity's saves in order.
                    max_ack_pending: 1,
                    ack_wait: FORWARD_ACK_WAIT,
                    deliver_policy: DeliverPolicy::All,
                    ..Default::default()
                },
            )
            .await
            .map_err(nats_error("opening the entity forwarder"))?;
        let mut running = self
            .forwarder
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if running.is_none() {
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let task = tokio::spawn(run_forwarder(consumer, self.forward.clone(), stopped));
            *running = Some(Forwarder { stop, task });
        }
        Ok(())
    }

    fn forwarding(&self) -> bool {
        self.forwarder
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// Stops forwarding once the save in hand is forwarded and acked, so
    /// the server does not hold it for another process until its ack wait
    /// runs out; saves left are forwarded by another process or the next
    /// start.
    pub(super) async fn stop(&self) {
        let running = self
            .forwarder
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(Forwarder { stop, mut task }) = running {
            let _ = stop.send(true);
            if tokio::time::timeout(FORWARDER_STOP, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    pub(super) async fn append(
        &self,
        stream: &StreamId,
        expected: u64,
        mut drafts: Vec<Draft>,
    ) -> Result<Vec<RawEnvelope>> {
        let entities = self.created().await?;
        let subject = self.subject(stream);
        let last = last_save(entities, &subject).await?;
        let actual = last.as_ref().map_or(0, |l| l.version);
        let conflict = |actual| Error::Conflict {
            stream: stream.to_string(),
            expected,
            actual,
        };
        if actual != expected {
            return Err(conflict(actual));
        }
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        streams::place(stream, expected, &mut drafts);
        let batch: Vec<RawEnvelope> = drafts.iter().cloned().map(|d| d.seal(0)).collect();
        let body = serde_json::to_vec(&batch)
            .map_err(|e| Error::store_source("nats", "encoding a save failed", e))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            last.as_ref().map_or(0, |l| l.seq).to_string(),
        );
        headers.insert(
            VERSIONS,
            format!("{}-{}", expected + 1, expected + drafts.len() as u64),
        );
        headers.insert("content-type", "application/cloudevents-batch+json");
        let stored = async {
            self.js
                .publish_with_headers(subject.clone(), headers, Bytes::from(body))
                .await?
                .await
        }
        .await;
        match stored {
            Ok(_) => {}
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                let actual = last_save(entities, &subject)
                    .await?
                    .map_or(0, |l| l.version);
                return Err(conflict(actual));
            }
            Err(e) => return Err(nats_error("saving to an entity stream")(e)),
        }
        if let Some(previous) = last.filter(|l| l.time > Utc::now() - RECENT) {
            let previous: Vec<Draft> = previous.events.iter().map(Draft::from_envelope).collect();
            self.forward
                .events(&previous)
                .await
                .map_err(forward_failed)?;
        }
        let seqs = self.forward.events(&drafts).await.map_err(forward_failed)?;
        Ok(drafts
            .into_iter()
            .zip(seqs)
            .map(|(draft, seq)| draft.seal(seq))
            .collect())
    }

    /// The entity's events in `(after, until]`, as stored in its saves.
    pub(super) async fn read(
        &self,
        stream: &StreamId,
        after: u64,
        until: Option<u64>,
    ) -> Result<Vec<RawEnvelope>> {
        let Some(entities) = self.existing().await? else {
            return Ok(Vec::new());
        };
        let until = until.unwrap_or(u64::MAX);
        let consumer = entities
            .create_consumer(pull::OrderedConfig {
                filter_subject: self.subject(stream),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(nats_error("opening an entity stream"))?;
        if consumer.cached_info().num_pending == 0 {
            return Ok(Vec::new());
        }
        let mut messages = consumer
            .messages()
            .await
            .map_err(nats_error("reading an entity stream"))?;
        let mut out = Vec::new();
        while let Some(message) = messages.next().await {
            let message = message.map_err(nats_error("reading an entity stream"))?;
            let info = message
                .info()
                .map_err(nats_error("reading an entity stream"))?;
            let (seq, pending) = (info.stream_sequence, info.pending);
            let (first, last) = versions(message.headers.as_ref()).unwrap_or((1, u64::MAX));
            if last > after && first <= until {
                let events = decode_save(&message.payload).map_err(|reason| Error::BadRow {
                    seq,
                    reason: format!("entity stream {stream}: {reason}"),
                })?;
                out.extend(events.into_iter().filter(|e| {
                    let v = e.stream_version().unwrap_or_default();
                    v > after && v <= until
                }));
            }
            if pending == 0 || first > until {
                break;
            }
        }
        Ok(out)
    }

    /// [`Entities::read`] with each event's seq in the bus stream, found
    /// by reading the bus stream from the entity's first event on (the
    /// time the saves carry); an event whose copy is gone from it (its
    /// retention removed it) keeps seq 0.
    pub(super) async fn read_with_seqs(
        &self,
        shared: &super::Shared,
        stream: &StreamId,
        after: u64,
        until: Option<u64>,
    ) -> Result<Vec<RawEnvelope>> {
        let events = self.read(stream, after, until).await?;
        let Some(start) = events.iter().map(RawEnvelope::time).min() else {
            return Ok(events);
        };
        let mut topics: Vec<&str> = events.iter().map(RawEnvelope::topic).collect();
        topics.sort_unstable();
        topics.dedup();
        let filter = match topics.as_slice() {
            [one] => shared.config.subject(one),
            _ => shared.config.subject(">"),
        };
        let mut wanted: std::collections::HashMap<String, usize> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id().to_string(), i))
            .collect();
        let mut seqs = vec![0; events.len()];
        let consumer = shared
            .stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: filter,
                deliver_policy: DeliverPolicy::ByStartTime {
                    start_time: start - CLOCK_SLACK,
                },
                ..Default::default()
            })
            .await
            .map_err(nats_error("finding an entity's events"))?;
        if consumer.cached_info().num_pending > 0 {
            let mut messages = consumer
                .messages()
                .await
                .map_err(nats_error("finding an entity's events"))?;
            while let Some(message) = messages.next().await {
                let message = message.map_err(nats_error("finding an entity's events"))?;
                let info = message
                    .info()
                    .map_err(nats_error("finding an entity's events"))?;
                let (seq, pending) = (info.stream_sequence, info.pending);
                if let Ok(env) = super::read::decode_message(shared, &message, seq)
                    && let Some(i) = wanted.remove(&env.id().to_string())
                {
                    seqs[i] = seq;
                }
                if wanted.is_empty() || pending == 0 {
                    break;
                }
            }
        }
        Ok(events
            .into_iter()
            .zip(seqs)
            .map(|(env, seq)| env.with_seq(seq))
            .collect())
    }

    pub(super) async fn read_data(
        &self,
        stream: &StreamId,
        after: u64,
        until: Option<u64>,
    ) -> Result<Vec<StreamEntry>> {
        self.read(stream, after, until)
            .await?
            .iter()
            .map(StreamEntry::of)
            .collect()
    }

    /// Removes every entity stream and snapshot (clearing the whole bus).
    pub(super) async fn purge(&self) -> Result<()> {
        if let Some(entities) = self.existing().await? {
            entities
                .purge()
                .await
                .map_err(nats_error("purging the entity streams"))?;
        }
        self.snapshots.purge_all().await?;
        Ok(())
    }

    fn snapshot_key(stream: &StreamId, state_version: u32) -> String {
        format!(
            "{}.{}.{state_version}",
            token(&stream.kind),
            token(&stream.id)
        )
    }

    pub(super) async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        let kv = self.snapshots.created().await?;
        let value = serde_json::to_vec(&StoredSnapshot {
            version: snapshot.version,
            state: snapshot.state,
        })
        .map_err(|e| Error::store_source("nats", "encoding a snapshot failed", e))?;
        kv.put(
            Self::snapshot_key(&snapshot.stream, snapshot.state_version),
            value.into(),
        )
        .await
        .map_err(nats_error("saving a snapshot"))?;
        Ok(())
    }

    pub(super) async fn load_snapshot(
        &self,
        stream: &StreamId,
        state_version: u32,
    ) -> Result<Option<Snapshot>> {
        let Some(kv) = self.snapshots.existing().await? else {
            return Ok(None);
        };
        let Some(value) = kv
            .get(Self::snapshot_key(stream, state_version))
            .await
            .map_err(nats_error("loading a snapshot"))?
        else {
            return Ok(None);
        };
        // A snapshot that cannot be read is only a lost shortcut.
        match serde_json::from_slice::<StoredSnapshot>(&value) {
            Ok(stored) => Ok(Some(Snapshot {
                stream: stream.clone(),
                state_version,
                version: stored.version,
                state: stored.state,
            })),
            Err(e) => {
                tracing::warn!(stream = %stream, error = %e, "an unreadable snapshot; loading from the events");
                Ok(None)
            }
        }
    }
}

impl Drop for Entities {
    fn drop(&mut self) {
        let running = self
            .forwarder
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(forwarder) = running {
            forwarder.task.abort();
        }
    }
}

fn forward_failed(e: Error) -> Error {
    Error::store(
        "nats",
        format!(
            "the events were saved to their entity stream, but forwarding them to the bus \
             stream failed ({e}); a running bus forwards them once NATS answers again, so do \
             not save them a second time"
        ),
    )
}

/// Forwards every save to the bus stream, restarting after NATS errors,
/// until told to stop.
async fn run_forwarder(
    consumer: jetstream::consumer::PullConsumer,
    forward: Forward,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = forward_saves(&consumer, &forward, &mut stopped).await {
            tracing::warn!(error = %e, "forwarding entity saves failed; retrying in a second");
        }
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Forwards saves until NATS fails or the forwarder is told to stop; a save
/// in hand is always finished first.
async fn forward_saves(
    consumer: &jetstream::consumer::PullConsumer,
    forward: &Forward,
    stopped: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let mut messages = consumer
        .messages()
        .await
        .map_err(nats_error("reading entity saves"))?;
    loop {
        let message = tokio::select! {
            biased;
            _ = stopped.wait_for(|stop| *stop) => return Ok(()),
            message = messages.next() => message,
        };
        let Some(message) = message else {
            return Ok(());
        };
        let message = message.map_err(nats_error("reading entity saves"))?;
        match decode_save(&message.payload) {
            Ok(events) => {
                let drafts: Vec<Draft> = events.iter().map(Draft::from_envelope).collect();
                if let Err(e) = forward.events(&drafts).await {
                    let _ = message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                        .await;
                    return Err(e);
                }
            }
            Err(reason) => {
                tracing::error!(subject = %message.subject, %reason, "an entity save that cannot be read is not forwarded");
            }
        }
        message
            .ack()
            .await
            .map_err(|e| Error::store("nats", format!("acknowledging a forwarded save: {e}")))?;
    }
}

async fn last_save(entities: &stream::Stream, subject: &str) -> Result<Option<LastSave>> {
    let message: StreamMessage = match entities.get_last_raw_message_by_subject(subject).await {
        Ok(m) => m,
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
        Err(e) => return Err(nats_error("reading an entity's last save")(e)),
    };
    let events = decode_save(&message.payload).map_err(|reason| Error::BadRow {
        seq: message.sequence,
        reason: format!("the last save on `{subject}`: {reason}"),
    })?;
    let version = events
        .last()
        .and_then(RawEnvelope::stream_version)
        .ok_or_else(|| Error::BadRow {
            seq: message.sequence,
            reason: format!("the last save on `{subject}` has no stream version"),
        })?;
    Ok(Some(LastSave {
        seq: message.sequence,
        version,
        time: message.time,
        events,
    }))
}

fn decode_save(payload: &[u8]) -> std::result::Result<Vec<RawEnvelope>, String> {
    serde_json::from_slice(payload).map_err(|e| format!("not a CloudEvents batch: {e}"))
}

fn versions(headers: Option<&HeaderMap>) -> Option<(u64, u64)> {
    let text = headers?.get(VERSIONS)?.as_str();
    let (first, last) = text.split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()?))
}

/// A subject token (and key-value key part) for any text: letters, digits,
/// `_` and `-` stay, every other byte is `=` and two hex digits, and the
/// empty text is `=`. Distinct texts give distinct tokens.
pub(super) fn token(text: &str) -> String {
    if text.is_empty() {
        return "=".to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("={byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::token;

    #[test]
    fn tokens_keep_plain_ids_and_escape_the_rest() {
        assert_eq!(token("doc-1_a"), "doc-1_a");
        assert_eq!(token("a.b c"), "a=2Eb=20c");
        assert_eq!(token("="), "=3D");
        assert_eq!(token(""), "=");
        assert_eq!(token("é"), "=C3=A9");
        assert_ne!(token("a.b"), token("a=2Eb"));
    }
}
