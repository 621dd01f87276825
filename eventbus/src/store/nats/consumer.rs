//! Handlers as durable pull consumers.
//!
//! One consumer per handler name, filtered by the handler's pattern, with
//! explicit acks, no server-side backoff (retries are naks with the
//! handler's own delay) and unlimited deliveries (the bus enforces the
//! attempt limit and writes the dead letter). Every process running the
//! handler pulls from the same consumer, so they share its work; at most
//! `max_in_flight` (the handler's concurrency) deliveries are unacknowledged
//! at once across all of them, which keeps a concurrency-1 handler in
//! order even through retries. A handler's checkpoint is its consumer's
//! ack floor.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::message::{AckKind, Acker};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Shared, nats_error, read, wire};
use crate::error::Result;
use crate::future::BoxFuture;
use crate::future::BoxStream;
use crate::store::consumer::{Acknowledge, ConsumerSpec, Delivery, Start};

/// A handler's consumer name: its name with characters consumer names
/// cannot hold replaced, plus a hash of the full name so that two handlers
/// never share one. The full name is the consumer's description.
pub(super) fn consumer_name(handler: &str) -> String {
    let readable: String = handler
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = handler.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{readable}-{:08x}", hash as u32)
}

fn wanted_config(shared: &Shared, spec: &ConsumerSpec) -> pull::Config {
    pull::Config {
        durable_name: Some(consumer_name(&spec.handler)),
        description: Some(spec.handler.clone()),
        filter_subject: shared.config.subject(&spec.filter),
        ack_policy: AckPolicy::Explicit,
        ack_wait: shared.config.ack_wait,
        max_deliver: -1,
        max_ack_pending: i64::from(spec.max_in_flight.max(1)),
        deliver_policy: match spec.start {
            Start::Latest => DeliverPolicy::New,
            Start::Earliest => DeliverPolicy::All,
        },
        ..Default::default()
    }
}

/// The handler's consumer, created or brought in line with `spec`, and a
/// task pulling its deliveries into the returned stream.
pub(super) async fn open(
    shared: Arc<Shared>,
    spec: ConsumerSpec,
) -> Result<BoxStream<'static, Delivery>> {
    let wanted = wanted_config(&shared, &spec);
    let consumer = ensure(&shared, wanted.clone()).await?;
    // One delivery waits here at most: the server's max ack pending is the
    // real bound on what this process holds.
    let (tx, rx) = mpsc::channel(1);
    let feed = tx.clone();
    let task = tokio::spawn(pull_loop(Arc::clone(&shared), wanted, consumer, tx));
    shared.pullers.add(task, feed);
    Ok(Box::pin(futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|d| (d, rx)) },
    )))
}

/// The pull loops of one store. A loop ends soon after its bus drops the
/// stream, but until it has, its pull request stays open on the server,
/// which goes on handing it messages that no one will take until their ack
/// wait runs out (30 s by default), delaying them for the next process.
/// Closing the store therefore waits for the stopped loops to end, and
/// only then flushes, so their unsubscribes reach the server first.
#[derive(Default)]
pub(super) struct Pullers(Mutex<Vec<(JoinHandle<()>, mpsc::Sender<Delivery>)>>);

impl Pullers {
    fn add(&self, task: JoinHandle<()>, feed: mpsc::Sender<Delivery>) {
        let mut pullers = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        pullers.retain(|(task, _)| !task.is_finished());
        pullers.push((task, feed));
    }

    /// Waits for the loops whose bus is gone; those of a bus still running
    /// on this store carry on.
    pub(super) async fn join_stopped(&self) {
        let stopped: Vec<JoinHandle<()>> = {
            let mut pullers = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            let (stopped, running) = std::mem::take(&mut *pullers)
                .into_iter()
                .partition(|(_, feed)| feed.is_closed());
            *pullers = running;
            stopped.into_iter().map(|(task, _)| task).collect()
        };
        for task in stopped {
            // A loop stuck on an unreachable server is not worth hanging
            // the shutdown for: its pull request ends with the connection.
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// The consumer as `wanted` describes it. An existing one with other
/// settings (the handler's pattern or concurrency changed) is made anew
/// from its ack floor, since Debian's server 2.9 cannot update them.
async fn ensure(shared: &Shared, wanted: pull::Config) -> Result<consumer::Consumer<pull::Config>> {
    let name = wanted.durable_name.clone().unwrap_or_default();
    match shared.stream.consumer_info(&name).await {
        Ok(info) => {
            let have = &info.config;
            if have.filter_subject == wanted.filter_subject
                && have.max_ack_pending == wanted.max_ack_pending
                && have.ack_wait == wanted.ack_wait
                && have.ack_policy == AckPolicy::Explicit
            {
                return shared
                    .stream
                    .get_consumer(&name)
                    .await
                    .map_err(nats_error("opening a handler's consumer"));
            }
            tracing::warn!(
                consumer = %name, from = %have.filter_subject, to = %wanted.filter_subject,
                "handler settings changed; remaking its consumer from its ack floor"
            );
            let floor = info.ack_floor.stream_sequence;
            remake(shared, wanted, floor).await
        }
        Err(e) if e.kind() == consumer_not_found() => shared
            .stream
            .create_consumer(wanted)
            .await
            .map_err(nats_error("creating a handler's consumer")),
        Err(e) => Err(nats_error("looking up a handler's consumer")(e)),
    }
}

fn consumer_not_found() -> async_nats::jetstream::context::ConsumerInfoErrorKind {
    async_nats::jetstream::context::ConsumerInfoErrorKind::NotFound
}

/// Deletes the consumer and makes it again with `config`, starting after
/// `floor`.
async fn remake(
    shared: &Shared,
    mut config: pull::Config,
    floor: u64,
) -> Result<consumer::Consumer<pull::Config>> {
    let name = config.durable_name.clone().unwrap_or_default();
    // Gone already is fine: another process may have remade it first.
    let _ = shared.stream.delete_consumer(&name).await;
    config.deliver_policy = DeliverPolicy::ByStartSequence {
        start_sequence: floor + 1,
    };
    shared
        .stream
        .create_consumer(config)
        .await
        .map_err(nats_error("remaking a handler's consumer"))
}

/// Hands back, for redelivery at once, the messages the server already
/// sent this loop that the bus will not take now that it stopped.
async fn release_buffered(mut messages: pull::Stream) {
    while let Some(Some(Ok(message))) = messages.next().now_or_never() {
        let _ = message.ack_with(AckKind::Nak(None)).await;
    }
}

/// Pulls deliveries until the bus drops the stream; survives server
/// restarts and a consumer remade from outside (`eventbus replay
/// --to-handler` moves a checkpoint that way).
async fn pull_loop(
    shared: Arc<Shared>,
    wanted: pull::Config,
    mut consumer: consumer::Consumer<pull::Config>,
    tx: mpsc::Sender<Delivery>,
) {
    let progress_every = shared.config.ack_wait / 3;
    loop {
        let messages = tokio::select! {
            () = tx.closed() => return,
            m = consumer.messages() => m,
        };
        match messages {
            Ok(mut messages) => loop {
                let next = tokio::select! {
                    () = tx.closed() => return release_buffered(messages).await,
                    next = messages.next() => next,
                };
                let message = match next {
                    None => break,
                    Some(Ok(message)) => message,
                    Some(Err(e)) if e.kind() == pull::MessagesErrorKind::ConsumerDeleted => {
                        tracing::info!(error = %e, "a handler's consumer was deleted; opening it again");
                        break;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "pulling a handler's deliveries failed; going on");
                        continue;
                    }
                };
                let Some(delivery) = delivery(&shared, message, progress_every) else {
                    continue;
                };
                if let Err(refused) = tx.send(delivery).await {
                    // The bus stopped: let another process have it now
                    // rather than after the ack wait.
                    let _ = refused.0.ack.hand_back().await;
                    return release_buffered(messages).await;
                }
            },
            Err(e) => tracing::warn!(error = %e, "cannot pull a handler's deliveries; retrying"),
        }
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        match ensure(&shared, wanted.clone()).await {
            Ok(fresh) => consumer = fresh,
            Err(e) => tracing::warn!(error = %e, "cannot open a handler's consumer; retrying"),
        }
    }
}

fn delivery(
    shared: &Shared,
    message: async_nats::jetstream::Message,
    progress_every: Duration,
) -> Option<Delivery> {
    let (seq, attempt, published) = match message.info() {
        Ok(info) => (info.stream_sequence, info.delivered, info.published),
        Err(e) => {
            tracing::warn!(error = %e, subject = %message.subject, "a delivery without JetStream metadata; skipping it");
            return None;
        }
    };
    let (envelope, unreadable) = match read::decode_message(shared, &message, seq) {
        Ok(env) => (env, None),
        Err(reason) => {
            let topic = shared
                .config
                .topic_of(&message.subject)
                .unwrap_or(&message.subject);
            let env = wire::unreadable(&shared.origin, topic, seq, published, &message.payload);
            (env, Some(reason))
        }
    };
    let (_, acker) = message.split();
    Some(Delivery {
        envelope,
        unreadable,
        attempt: u32::try_from(attempt.max(1)).unwrap_or(u32::MAX),
        progress_every,
        ack: Box::new(NatsAck(acker)),
    })
}

struct NatsAck(Acker);

impl NatsAck {
    async fn send(&self, kind: AckKind) -> Result<()> {
        self.0
            .ack_with(kind)
            .await
            .map_err(nats_error("settling a delivery"))
    }
}

impl Acknowledge for NatsAck {
    fn ack(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.send(AckKind::Ack))
    }

    fn retry_after(&self, delay: Duration) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.send(AckKind::Nak((!delay.is_zero()).then_some(delay))))
    }

    fn give_up(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.send(AckKind::Term))
    }

    fn in_progress(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.send(AckKind::Progress))
    }
}

/// The handler's checkpoint: its consumer's ack floor.
pub(super) async fn ack_floor(shared: &Shared, handler: &str) -> Result<Option<u64>> {
    match shared.stream.consumer_info(consumer_name(handler)).await {
        Ok(info) => Ok(Some(info.ack_floor.stream_sequence)),
        Err(e) if e.kind() == consumer_not_found() => Ok(None),
        Err(e) => Err(nats_error("reading a handler's consumer")(e)),
    }
}

/// Moves a handler's checkpoint: its consumer is made anew to deliver
/// what comes after `seq`.
pub(super) async fn move_to(shared: &Shared, handler: &str, seq: u64) -> Result<()> {
    let name = consumer_name(handler);
    let config = match shared.stream.consumer_info(&name).await {
        Ok(info) => pull::Config {
            durable_name: Some(name),
            description: info.config.description,
            filter_subject: info.config.filter_subject,
            ack_policy: AckPolicy::Explicit,
            ack_wait: info.config.ack_wait,
            max_deliver: info.config.max_deliver,
            max_ack_pending: info.config.max_ack_pending,
            ..Default::default()
        },
        // A handler that never ran: made here, it delivers every topic
        // until the handler first runs and narrows it.
        Err(e) if e.kind() == consumer_not_found() => wanted_config(
            shared,
            &ConsumerSpec {
                handler: handler.to_owned(),
                filter: ">".to_owned(),
                start: Start::Earliest,
                max_in_flight: 1,
            },
        ),
        Err(e) => return Err(nats_error("reading a handler's consumer")(e)),
    };
    remake(shared, config, seq).await.map(drop)
}

/// Every handler's checkpoint, by handler name.
pub(super) async fn all_ack_floors(shared: &Shared) -> Result<Vec<(String, u64)>> {
    let mut consumers = shared.stream.consumers();
    let mut out = Vec::new();
    while let Some(info) = consumers.next().await {
        let info = info.map_err(nats_error("listing consumers"))?;
        if info.config.durable_name.is_none() {
            continue;
        }
        if let Some(handler) = info
            .config
            .description
            .filter(|d| consumer_name(d) == info.name)
        {
            out.push((handler, info.ack_floor.stream_sequence));
        }
    }
    out.sort();
    Ok(out)
}
