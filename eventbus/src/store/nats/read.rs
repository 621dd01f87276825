//! History on NATS: queries stream through ordered consumers, which the
//! server fills in flow-controlled batches, so a query over any amount of
//! history holds one channel's worth of events at a time.
//!
//! The subject filter and the start (by sequence or time) are pushed to
//! the server; the other filters are applied here. Newest-first reads the
//! stream backwards in windows of `WINDOW` sequences.

use std::sync::Arc;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::{self, message::StreamMessage};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{Shared, nats_error, wire};
use crate::envelope::RawEnvelope;
use crate::error::{Error, Result};
use crate::future::BoxStream;
use crate::store::admin::TopicSummary;
use crate::store::query::{Order, Query};

/// Events buffered between the reading task and the caller.
const BUFFER: usize = 512;
/// Sequences read per window when reading newest first.
const WINDOW: u64 = 1024;
/// How far a publisher's clock may run ahead of the server's.
const CLOCK_SLACK: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// Streams the events matching `query`.
pub(super) fn query(shared: Arc<Shared>, query: Query) -> BoxStream<'static, Result<RawEnvelope>> {
    let start = async move {
        let (tx, rx) = mpsc::channel(BUFFER);
        tokio::spawn(async move {
            let mut out = Output { tx, query, sent: 0 };
            if let Err(e) = produce(&shared, &mut out).await {
                let _ = out.tx.send(Err(e)).await;
            }
        });
        rx
    };
    Box::pin(futures_util::stream::once(start).flat_map(|rx| {
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) })
    }))
}

/// The caller's end, with the filters and the limit.
struct Output {
    tx: mpsc::Sender<Result<RawEnvelope>>,
    query: Query,
    sent: usize,
}

impl Output {
    /// Sends a matching event; false when the caller is gone or the limit
    /// is reached, so reading stops.
    async fn offer(&mut self, item: Result<RawEnvelope>) -> bool {
        let item = match item {
            Ok(env) if !self.query.matches(&env) => return true,
            Ok(env) if self.query.replay => Ok(env.as_replay()),
            other => other,
        };
        if self.tx.send(item).await.is_err() {
            return false;
        }
        self.sent += 1;
        self.query.limit.is_none_or(|limit| self.sent < limit)
    }
}

async fn produce(shared: &Shared, out: &mut Output) -> Result<()> {
    if out.query.limit == Some(0) {
        return Ok(());
    }
    let q = &out.query;
    // A consumer on this server takes one filter subject; with several
    // patterns every event is read and `Query::matches` picks.
    let filter = match (q.patterns.as_slice(), q.topics.as_slice()) {
        (_, [one]) => shared.config.subject(one),
        ([p], _) => shared.config.subject(p.as_str()),
        _ => shared.config.subject(">"),
    };
    let mut info = shared.stream.clone();
    let state = info
        .info()
        .await
        .map_err(nats_error("reading the stream's state"))?
        .state
        .clone();
    let before = q.before_seq.unwrap_or(u64::MAX);
    let last = state.last_sequence.min(before.saturating_sub(1));
    let after = q.after_seq.unwrap_or(0);
    // Nothing new: a tail polling an idle stream makes no consumer.
    if last <= after {
        return Ok(());
    }
    match q.order {
        Order::Oldest => {
            let start = match (q.after_seq, q.since) {
                (Some(seq), _) => DeliverPolicy::ByStartSequence {
                    start_sequence: seq + 1,
                },
                // The server starts by its own receive time, the filter
                // goes by the publisher's clock: a minute of slack keeps a
                // publisher whose clock runs ahead from being skipped.
                (None, Some(time)) => DeliverPolicy::ByStartTime {
                    start_time: time - CLOCK_SLACK,
                },
                (None, None) => DeliverPolicy::All,
            };
            read_range(shared, &filter, start, last, out, false)
                .await
                .map(drop)
        }
        Order::Newest => {
            let mut hi = last;
            let floor = state.first_sequence.max(after + 1);
            while hi >= floor && hi > 0 {
                let lo = hi.saturating_sub(WINDOW - 1).max(floor);
                let start = DeliverPolicy::ByStartSequence { start_sequence: lo };
                if !read_range(shared, &filter, start, hi, out, true).await? {
                    return Ok(());
                }
                hi = lo - 1;
            }
            Ok(())
        }
    }
}

/// Reads from `start` through sequence `last`; oldest first, or newest
/// first within the range when `reverse`. False when reading should stop.
async fn read_range(
    shared: &Shared,
    filter: &str,
    start: DeliverPolicy,
    last: u64,
    out: &mut Output,
    reverse: bool,
) -> Result<bool> {
    let consumer = shared
        .stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: filter.to_owned(),
            deliver_policy: start,
            ..Default::default()
        })
        .await
        .map_err(nats_error("opening a history reader"))?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(true);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(nats_error("reading history"))?;
    let mut window = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.map_err(nats_error("reading history"))?;
        let info = message.info().map_err(nats_error("reading history"))?;
        let (seq, pending) = (info.stream_sequence, info.pending);
        if seq > last {
            break;
        }
        let item =
            decode_message(shared, &message, seq).map_err(|reason| Error::BadRow { seq, reason });
        if reverse {
            window.push(item);
        } else if !out.offer(item).await {
            return Ok(false);
        }
        if pending == 0 || seq == last {
            break;
        }
    }
    for item in window.into_iter().rev() {
        if !out.offer(item).await {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The envelope of a message a consumer delivered.
pub(super) fn decode_message(
    shared: &Shared,
    message: &jetstream::Message,
    seq: u64,
) -> std::result::Result<RawEnvelope, String> {
    let published = message
        .info()
        .map(|i| i.published)
        .unwrap_or_else(|_| chrono::Utc::now());
    let topic = shared
        .config
        .topic_of(&message.subject)
        .ok_or_else(|| format!("subject `{}` is outside the prefix", message.subject))?;
    wire::decode(
        &shared.origin,
        topic,
        seq,
        published,
        message.headers.as_ref(),
        &message.payload,
    )
}

/// The envelope of a message read directly from the stream.
pub(super) fn decode_stored(
    shared: &Shared,
    message: StreamMessage,
) -> std::result::Result<RawEnvelope, String> {
    let topic = shared
        .config
        .topic_of(&message.subject)
        .ok_or_else(|| format!("subject `{}` is outside the prefix", message.subject))?;
    wire::decode(
        &shared.origin,
        topic,
        message.sequence,
        message.time,
        Some(&message.headers),
        &message.payload,
    )
}

/// Each topic with its count and the times of its first and last events.
pub(super) async fn topics(shared: &Shared) -> Result<Vec<TopicSummary>> {
    let mut subjects = shared
        .stream
        .info_with_subjects(shared.config.subject(">"))
        .await
        .map_err(nats_error("listing subjects"))?;
    let mut counts = Vec::new();
    while let Some(entry) = subjects.next().await {
        counts.push(entry.map_err(nats_error("listing subjects"))?);
    }
    let mut out = Vec::with_capacity(counts.len());
    for (subject, count) in counts {
        let Some(topic) = shared.config.topic_of(&subject) else {
            continue;
        };
        let first = shared
            .stream
            .get_first_raw_message_by_subject(&subject, 1)
            .await
            .map_err(nats_error("reading a topic's first event"))?;
        let last = shared
            .stream
            .get_last_raw_message_by_subject(&subject)
            .await
            .map_err(nats_error("reading a topic's last event"))?;
        // The server's time stands in for an event time that cannot be read.
        let time = |m: StreamMessage| {
            let stored = m.time;
            decode_stored(shared, m).map_or(stored, |e| e.time())
        };
        out.push(TopicSummary {
            topic: topic.to_owned(),
            count: count as u64,
            first: time(first),
            last: time(last),
        });
    }
    out.sort_by(|a, b| a.topic.cmp(&b.topic));
    Ok(out)
}
