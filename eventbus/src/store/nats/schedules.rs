//! Scheduled events on NATS. A 2.9 server has no message schedules, but
//! it does keep timers for redeliveries, and that is enough.
//!
//! A scheduled event waits in a stream beside the bus stream,
//! `<STREAM>_scheduled`, on its own subject
//! (`eventbus-scheduled.<STREAM>.<id>`), as CloudEvents structured JSON
//! with its due time in the header `Eventbus-Due`. Every running bus pulls
//! from one durable consumer on it (`scheduler`), so the server hands each
//! message to one process at a time. A message due later than a few
//! seconds is answered with `-NAK` and a delay: the server redelivers it
//! shortly before it is due, to whichever process pulls, without anyone
//! polling; one due sooner waits in the process on a local timer (the
//! server's redelivery comes about a second late). A due one is
//! published to the bus stream (`Nats-Msg-Id` = the event id), deleted
//! from the scheduled stream, and acknowledged; a process that dies in
//! between leaves the message to be redelivered after the ack wait (30 s),
//! and the second publish is dropped by the server's duplicate window.
//! Cancelling deletes the event's message.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, AckKind, stream};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{OnceCell, mpsc};

use super::entities::token;
use super::forward::Forward;
use super::{NatsConfig, nats_error};
use crate::envelope::{Draft, RawEnvelope};
use crate::error::{Error, Result};
use crate::future::BoxStream;
use crate::store::schedules::Scheduled;

/// The header holding when a scheduled event is due.
const DUE: &str = "Eventbus-Due";
/// The durable consumer every bus pulls due events from.
const SCHEDULER: &str = "scheduler";
/// How many not-yet-due events the server may hold for the scheduler; a
/// waiting event counts until it is published.
const MAX_WAITING: i64 = 1_000_000;
/// Events due within this wait in the process that pulled them, on a
/// local timer, well inside the ack wait (30 s).
const HOLD: Duration = Duration::from_secs(5);

/// The scheduled events of one bus stream.
pub(super) struct Schedules {
    js: jetstream::Context,
    forward: Forward,
    name: String,
    subjects: String,
    /// The stream's settings, should it be created.
    wanted: stream::Config,
    open: OnceCell<stream::Stream>,
}

impl Schedules {
    pub(super) fn new(js: &jetstream::Context, config: &NatsConfig) -> Self {
        let name = format!("{}_scheduled", config.stream);
        let subjects = format!("eventbus-scheduled.{}", config.stream);
        let wanted = super::side_stream(
            &name,
            format!("{subjects}.>"),
            format!("eventbus scheduled events of stream {}", config.stream),
            config.limits.replicas.unwrap_or(1),
            config.limits.memory_storage == Some(true),
        );
        Schedules {
            js: js.clone(),
            forward: Forward::new(js, config),
            name,
            subjects,
            wanted,
            open: OnceCell::new(),
        }
    }

    async fn existing(&self) -> Result<Option<&stream::Stream>> {
        if let Some(open) = self.open.get() {
            return Ok(Some(open));
        }
        match self.js.get_stream(&self.name).await {
            Ok(s) => Ok(Some(self.open.get_or_init(|| async { s }).await)),
            Err(e) if super::is_stream_not_found(&e) => Ok(None),
            Err(e) => Err(nats_error("opening the scheduled events")(e)),
        }
    }

    async fn created(&self) -> Result<&stream::Stream> {
        if let Some(open) = self.existing().await? {
            return Ok(open);
        }
        let s = super::get_or_create_stream(&self.js, self.wanted.clone()).await?;
        Ok(self.open.get_or_init(|| async { s }).await)
    }

    fn subject(&self, id: &str) -> String {
        format!("{}.{}", self.subjects, token(id))
    }

    pub(super) async fn schedule(&self, draft: Draft, due: DateTime<Utc>) -> Result<()> {
        self.created().await?;
        let id = draft.id().to_string();
        let body = draft
            .seal(0)
            .to_cloudevent_json()
            .map_err(|e| Error::store_source("nats", "encoding a scheduled event failed", e))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            DUE,
            due.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        );
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
        headers.insert("content-type", "application/cloudevents+json");
        self.js
            .publish_with_headers(self.subject(&id), headers, Bytes::from(body))
            .await
            .map_err(nats_error("scheduling an event"))?
            .await
            .map_err(nats_error(
                "waiting for JetStream to acknowledge a schedule",
            ))?;
        Ok(())
    }

    pub(super) async fn cancel(&self, id: &str) -> Result<bool> {
        let Some(scheduled) = self.existing().await? else {
            return Ok(false);
        };
        let message = match scheduled
            .get_last_raw_message_by_subject(&self.subject(id))
            .await
        {
            Ok(m) => m,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(false),
            Err(e) => return Err(nats_error("finding a scheduled event")(e)),
        };
        // One message deleted, not the subject purged: a purge moves the
        // scheduler's consumer past the events it holds back until due.
        match scheduled.delete_message(message.sequence).await {
            Ok(deleted) => Ok(deleted),
            // Published (and deleted) meanwhile.
            Err(e) => {
                tracing::debug!(id, error = %e, "cancelling a scheduled event");
                Ok(false)
            }
        }
    }

    /// Every waiting event, soonest first. Read one message at a time by
    /// sequence: the scheduler deletes messages while this reads, which
    /// would leave a consumer waiting for messages counted but gone.
    pub(super) async fn list(&self) -> Result<Vec<Scheduled>> {
        let Some(scheduled) = self.existing().await? else {
            return Ok(Vec::new());
        };
        let all = format!("{}.>", self.subjects);
        let mut out = Vec::new();
        let mut from = 1;
        loop {
            let message = match scheduled
                .raw_message_builder()
                .sequence(from)
                .next_by_subject(all.clone())
                .send()
                .await
            {
                Ok(m) => m,
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => break,
                Err(e) => return Err(nats_error("listing scheduled events")(e)),
            };
            from = message.sequence + 1;
            match decode(Some(&message.headers), &message.payload) {
                Ok((due, envelope)) => out.push(Scheduled { due, envelope }),
                Err(reason) => {
                    tracing::warn!(seq = message.sequence, %reason, "an unreadable scheduled event");
                }
            }
        }
        out.sort_by_key(|s| s.due);
        Ok(out)
    }

    /// The events this process publishes as they come due, for as long as
    /// the stream is followed.
    pub(super) fn released(&self) -> BoxStream<'static, Result<RawEnvelope>> {
        let (js, wanted, forward) = (self.js.clone(), self.wanted.clone(), self.forward.clone());
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            if let Err(e) = follow(&js, &wanted, &forward, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        let state = (rx, StopOnDrop(task.abort_handle()));
        Box::pin(futures_util::stream::unfold(
            state,
            |(mut rx, stop)| async move { rx.recv().await.map(|item| (item, (rx, stop))) },
        ))
    }
}

/// Stops the following task when its stream is dropped.
struct StopOnDrop(tokio::task::AbortHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Pulls scheduled events and publishes each when due: one due later than
/// [`HOLD`] goes back to the server until shortly before it is due, one
/// due sooner waits here on a timer (the server redelivers a deferred
/// message about a second late, a local timer does not).
async fn follow(
    js: &jetstream::Context,
    wanted: &stream::Config,
    forward: &Forward,
    tx: &mpsc::Sender<Result<RawEnvelope>>,
) -> Result<()> {
    let scheduled = super::get_or_create_stream(js, wanted.clone()).await?;
    let consumer = scheduled
        .get_or_create_consumer(
            SCHEDULER,
            pull::Config {
                durable_name: Some(SCHEDULER.to_owned()),
                description: Some("publishes scheduled events when due".to_owned()),
                ack_policy: AckPolicy::Explicit,
                max_ack_pending: MAX_WAITING,
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            },
        )
        .await
        .map_err(nats_error("opening the scheduler's consumer"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(nats_error("reading scheduled events"))?;
    let mut held = FuturesUnordered::new();
    // Released side by side: one at a time, each publish, delete and ack
    // waiting on the server, would fall behind a thousand events a second.
    let mut releasing = FuturesUnordered::new();
    loop {
        tokio::select! {
            next = messages.next() => {
                let Some(message) = next else { return Ok(()) };
                let message = message.map_err(nats_error("reading scheduled events"))?;
                if let Some((wait, due)) = hold_or_defer(message).await? {
                    held.push(async move {
                        tokio::time::sleep(wait).await;
                        due
                    });
                }
            }
            Some(due) = held.next(), if !held.is_empty() => {
                releasing.push(release(&scheduled, forward, due));
            }
            Some(released) = releasing.next(), if !releasing.is_empty() => {
                if let Some(stored) = released?
                    && tx.send(Ok(stored)).await.is_err()
                {
                    return Ok(());
                }
            }
        }
    }
}

/// A delivered scheduled event that is due within [`HOLD`].
struct Due {
    message: jetstream::Message,
    seq: u64,
    envelope: RawEnvelope,
}

/// Hands a message due later back to the server, drops one that cannot be
/// read, and returns one due soon with the time left until it is.
async fn hold_or_defer(message: jetstream::Message) -> Result<Option<(Duration, Due)>> {
    let seq = message
        .info()
        .map_err(nats_error("reading scheduled events"))?
        .stream_sequence;
    let (due, envelope) = match decode(message.headers.as_ref(), &message.payload) {
        Ok(decoded) => decoded,
        Err(reason) => {
            tracing::error!(seq, %reason, "a scheduled event that cannot be read is dropped");
            message
                .ack_with(AckKind::Term)
                .await
                .map_err(|e| Error::store("nats", format!("dropping a scheduled event: {e}")))?;
            return Ok(None);
        }
    };
    let wait = (due - Utc::now()).to_std().unwrap_or_default();
    if wait > HOLD {
        message
            .ack_with(AckKind::Nak(Some(wait - HOLD / 2)))
            .await
            .map_err(|e| Error::store("nats", format!("deferring a scheduled event: {e}")))?;
        return Ok(None);
    }
    Ok(Some((
        wait,
        Due {
            message,
            seq,
            envelope,
        },
    )))
}

/// Publishes a due event to the bus stream and returns it as stored;
/// `None` when it was cancelled while it waited here.
async fn release(
    scheduled: &stream::Stream,
    forward: &Forward,
    due: Due,
) -> Result<Option<RawEnvelope>> {
    match scheduled.get_raw_message(due.seq).await {
        Ok(_) => {}
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
            due.message.ack().await.map_err(|e| {
                Error::store("nats", format!("acknowledging a cancelled event: {e}"))
            })?;
            return Ok(None);
        }
        Err(e) => return Err(nats_error("checking a scheduled event")(e)),
    }
    let draft = Draft::from_envelope(&due.envelope);
    let stored = forward.events(std::slice::from_ref(&draft)).await?;
    // Deleted before the ack: were the ack lost, the redelivery finds
    // nothing to publish twice; were the delete lost, the duplicate window
    // drops the second publish.
    if let Err(e) = scheduled.delete_message(due.seq).await {
        tracing::debug!(seq = due.seq, error = %e, "deleting a published scheduled event");
    }
    due.message
        .ack()
        .await
        .map_err(|e| Error::store("nats", format!("acknowledging a scheduled event: {e}")))?;
    Ok(Some(draft.seal(stored[0])))
}

fn decode(
    headers: Option<&HeaderMap>,
    payload: &[u8],
) -> std::result::Result<(DateTime<Utc>, RawEnvelope), String> {
    let due = headers
        .and_then(|h| h.get(DUE))
        .ok_or_else(|| format!("header `{DUE}` is missing"))?;
    let due = DateTime::parse_from_rfc3339(due.as_str())
        .map_err(|e| format!("header `{DUE}`: {e}"))?
        .with_timezone(&Utc);
    let envelope = RawEnvelope::from_cloudevent_json(payload)
        .map_err(|e| format!("not a CloudEvents event: {e}"))?;
    Ok((due, envelope))
}
