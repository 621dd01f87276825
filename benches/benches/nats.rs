//! The `nats://` store against raw `async-nats` JetStream on the same
//! server and stream, in the same run (needs `nats-server -js` at
//! `EVENTBUS_NATS_URL`, default `nats://127.0.0.1:4222`; without one the
//! bench says so and measures nothing):
//!
//! - `nats_publish`: [`PUBLISH_EVENTS`] publishes from [`IN_FLIGHT`] tasks,
//!   each awaiting its ack before the next, so both sides keep the same
//!   number of acks in flight; the raw side publishes the same message the
//!   bus does (JSON body, `Nats-Msg-Id` and the CloudEvents headers, built
//!   by hand), so the ratio is the bus's own overhead.
//! - `nats_publish_data_only`: the same, against a raw side that sends only
//!   the JSON body and a `Nats-Msg-Id`: the ratio adds what the CloudEvents
//!   metadata costs on the wire and in the server.
//! - `nats_consume`: a handler with concurrency [`CONSUME_IN_FLIGHT`]
//!   reading [`CONSUME_EVENTS`] stored events through its durable consumer
//!   and acking each, against a raw pull consumer with the same max ack
//!   pending acking each message.
//!
//! Each prints `ratio NAME: X.XX` as bus throughput / raw throughput
//! (higher is better), with events/s of both.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use benches::{best_ratio, print_throughput_ratio};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use eventbus::Start;
use eventbus::prelude::*;
use futures_util::StreamExt;
use tokio::runtime::Runtime;

#[derive(Event, Clone, Debug)]
#[event(topic = "bench.order.placed")]
struct Placed {
    n: u64,
    customer: String,
    cents: u64,
}

fn placed(n: u64) -> Placed {
    Placed {
        n,
        customer: format!("customer-{:06}", n % 100_000),
        cents: 1250 + n % 1000,
    }
}

const SOURCE: &str = "benches-nats";
const PUBLISH_EVENTS: u64 = 20_000;
const IN_FLIGHT: u64 = 256;
const CONSUME_EVENTS: u64 = 20_000;
const CONSUME_IN_FLIGHT: u32 = 256;
const RATIO_ROUNDS: usize = 7;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One stream and prefix for the whole run, deleted at the end.
struct Setup {
    server: String,
    stream: String,
    prefix: String,
    js: jetstream::Context,
    bus: Bus,
}

impl Setup {
    fn url(&self) -> String {
        format!(
            "{}?stream={}&prefix={}",
            self.server, self.stream, self.prefix
        )
    }

    fn subject(&self) -> String {
        format!("{}.bench.order.placed", self.prefix)
    }
}

async fn setup() -> Option<Setup> {
    let server =
        std::env::var("EVENTBUS_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let Ok(client) = async_nats::connect(server.trim_start_matches("nats://")).await else {
        println!("no NATS server at {server}: the nats bench measures nothing");
        return None;
    };
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (stream, prefix) = (format!("BENCH_{tag}"), format!("bench_{tag}"));
    let bus = Bus::builder()
        .no_linked_handlers()
        .tracing(false)
        .source(SOURCE)
        .store(format!("{server}?stream={stream}&prefix={prefix}"))
        .build()
        .await
        .expect("bus on NATS");
    Some(Setup {
        server,
        stream,
        prefix,
        js: jetstream::new(client),
        bus,
    })
}

async fn bus_publish_round(s: &Setup) -> Duration {
    let start = Instant::now();
    let per_task = PUBLISH_EVENTS / IN_FLIGHT;
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|t| {
            let bus = s.bus.clone();
            tokio::spawn(async move {
                for i in 0..per_task {
                    bus.publish(placed(t * per_task + i))
                        .await
                        .expect("publish");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("publisher");
    }
    start.elapsed()
}

/// What the raw publisher sends besides the data.
#[derive(Clone, Copy, PartialEq)]
enum RawMessage {
    /// The same CloudEvents headers the bus writes (its wire format, by hand).
    SameAsBus,
    /// Only `Nats-Msg-Id`: the least a deduplicating publisher sends.
    DataOnly,
}

async fn raw_publish_round(s: &Setup, kind: RawMessage) -> Duration {
    let start = Instant::now();
    let per_task = PUBLISH_EVENTS / IN_FLIGHT;
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|t| {
            let (js, subject) = (s.js.clone(), s.subject());
            tokio::spawn(async move {
                for i in 0..per_task {
                    let body = serde_json::to_vec(&placed(t * per_task + i)).expect("json");
                    let id = uuid::Uuid::now_v7().to_string();
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert("Nats-Msg-Id", id.as_str());
                    if kind == RawMessage::SameAsBus {
                        let time =
                            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
                        headers.insert("ce-specversion", "1.0");
                        headers.insert("ce-id", id.as_str());
                        headers.insert("ce-source", SOURCE);
                        headers.insert("ce-type", "bench.order.placed");
                        headers.insert("ce-time", time.as_str());
                        headers.insert("content-type", "application/json");
                        headers.insert("ce-eventname", "Placed");
                    }
                    let publish = jetstream::message::PublishMessage::build()
                        .payload(body.into())
                        .headers(headers);
                    js.send_publish(subject.clone(), publish)
                        .await
                        .expect("publish")
                        .await
                        .expect("ack");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("publisher");
    }
    start.elapsed()
}

/// A bus whose one handler reads everything stored so far, through a
/// consumer of its own; returns the time until it handled `CONSUME_EVENTS`.
async fn bus_consume_round(s: &Setup, round: u64) -> Duration {
    let handled = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&handled);
    let handler = FnHandler::new(
        format!("bench-consume-{round}"),
        move |_e: Envelope<Placed>, _c: Context| {
            counter.fetch_add(1, Ordering::Relaxed);
            async {}
        },
    )
    .concurrency(CONSUME_IN_FLIGHT)
    .start(Start::Earliest);
    let start = Instant::now();
    let bus = Bus::builder()
        .no_linked_handlers()
        .tracing(false)
        .store(s.url())
        .handler(handler)
        .build()
        .await
        .expect("consuming bus");
    while handled.load(Ordering::Relaxed) < CONSUME_EVENTS {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let took = start.elapsed();
    bus.shutdown().await.expect("shutdown");
    took
}

async fn raw_consume_round(s: &Setup, round: u64) -> Duration {
    let start = Instant::now();
    let stream = s.js.get_stream(&s.stream).await.expect("stream");
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(format!("raw-consume-{round}")),
            filter_subject: s.subject(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            max_ack_pending: i64::from(CONSUME_IN_FLIGHT),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut handled = 0;
    while handled < CONSUME_EVENTS {
        let message = messages.next().await.expect("a message").expect("pull");
        let _: serde_json::Value = serde_json::from_slice(&message.payload).expect("json");
        message.ack().await.expect("ack");
        handled += 1;
    }
    start.elapsed()
}

fn nats(c: &mut Criterion) {
    let rt = runtime();
    let Some(s) = rt.block_on(setup()) else {
        return;
    };
    let mut group = c.benchmark_group("nats");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(PUBLISH_EVENTS));
    group.bench_function("publish", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| rt.block_on(bus_publish_round(&s))).sum())
    });
    group.bench_function("raw_publish", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| rt.block_on(raw_publish_round(&s, RawMessage::SameAsBus)))
                .sum()
        })
    });
    group.finish();

    for (name, kind, note) in [
        (
            "nats_publish",
            RawMessage::SameAsBus,
            "raw sends the same message",
        ),
        (
            "nats_publish_data_only",
            RawMessage::DataOnly,
            "raw sends the data without CloudEvents headers",
        ),
    ] {
        let times = best_ratio(
            RATIO_ROUNDS,
            || rt.block_on(bus_publish_round(&s)),
            || rt.block_on(raw_publish_round(&s, kind)),
        );
        print_throughput_ratio(
            name,
            times,
            PUBLISH_EVENTS,
            &format!(", {IN_FLIGHT} acks in flight, {note}"),
        );
    }

    // Consumers read the stream from its start, so it must hold exactly
    // the events each round counts.
    rt.block_on(async {
        let stream = s.js.get_stream(&s.stream).await.expect("stream");
        stream.purge().await.expect("purge");
        for n in 0..CONSUME_EVENTS {
            s.bus.publish(placed(n)).await.expect("publish");
        }
    });
    let round = AtomicU64::new(0);
    let times = best_ratio(
        RATIO_ROUNDS,
        || rt.block_on(bus_consume_round(&s, round.fetch_add(1, Ordering::Relaxed))),
        || rt.block_on(raw_consume_round(&s, round.fetch_add(1, Ordering::Relaxed))),
    );
    print_throughput_ratio(
        "nats_consume",
        times,
        CONSUME_EVENTS,
        &format!(", handled and acked, max ack pending {CONSUME_IN_FLIGHT}"),
    );

    rt.block_on(async {
        s.bus.shutdown().await.expect("shutdown");
        let _ = s.js.delete_stream(&s.stream).await;
        let _ =
            s.js.delete_key_value(format!("{}_dead_letters", s.stream))
                .await;
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = nats
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
