//! The `redis://` store against the raw `redis` crate on the same server
//! and stream, in the same run (needs Redis at `EVENTBUS_REDIS_URL`,
//! default `redis://127.0.0.1:6379`; without one the bench says so and
//! measures nothing):
//!
//! - `redis_publish`: [`PUBLISH_EVENTS`] publishes from [`IN_FLIGHT`]
//!   tasks on one multiplexed connection (which pipelines them), each
//!   awaiting its reply before the next; the raw side `XADD`s the same
//!   fields the bus writes, built by hand in a command sized up front, so
//!   the ratio is the bus's own overhead (a fresh event is one `XADD` on
//!   both sides).
//! - `redis_consume`: a handler with concurrency [`CONSUME_IN_FLIGHT`]
//!   reading [`CONSUME_EVENTS`] stored events through its consumer group
//!   and acking each, against a raw `XREADGROUP` loop reading as many at
//!   once, decoding each entry's data and acking each while it reads the
//!   next batch, as the bus does.
//!
//! Each prints `ratio NAME: X.XX` as bus throughput / raw throughput
//! (higher is better), with events/s of both.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use benches::{best_ratio, print_throughput_ratio};
use criterion::{Criterion, criterion_group};
use eventbus::Start;
use eventbus::prelude::*;
use redis::aio::ConnectionManager;
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

const SOURCE: &str = "benches-redis";
const PUBLISH_EVENTS: u64 = 20_000;
const IN_FLIGHT: u64 = 256;
const CONSUME_EVENTS: u64 = 20_000;
const CONSUME_IN_FLIGHT: u32 = 100;
const RATIO_ROUNDS: usize = 5;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One key prefix for the whole run, deleted at the end.
struct Setup {
    server: String,
    prefix: String,
    conn: ConnectionManager,
    bus: Bus,
}

impl Setup {
    fn url(&self) -> String {
        format!("{}?prefix={}", self.server, self.prefix)
    }

    fn stream(&self) -> String {
        format!("{}:events", self.prefix)
    }
}

async fn setup() -> Option<Setup> {
    let server =
        std::env::var("EVENTBUS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let client = redis::Client::open(server.as_str()).ok()?;
    let Ok(conn) = ConnectionManager::new(client).await else {
        println!("no Redis server at {server}: the redis bench measures nothing");
        return None;
    };
    let prefix = format!("bench_{}", uuid::Uuid::now_v7().simple());
    let bus = Bus::builder()
        .no_linked_handlers()
        .tracing(false)
        .source(SOURCE)
        .store(format!("{server}?prefix={prefix}"))
        .build()
        .await
        .expect("bus on Redis");
    Some(Setup {
        server,
        prefix,
        conn,
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

async fn raw_publish_round(s: &Setup) -> Duration {
    let start = Instant::now();
    let per_task = PUBLISH_EVENTS / IN_FLIGHT;
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|t| {
            let (mut conn, stream) = (s.conn.clone(), s.stream());
            tokio::spawn(async move {
                for i in 0..per_task {
                    let data = serde_json::to_vec(&placed(t * per_task + i)).expect("json");
                    let id = uuid::Uuid::now_v7().to_string();
                    let time =
                        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
                    let _: String = redis::Cmd::with_capacity(20, 320)
                        .arg("XADD")
                        .arg(&stream)
                        .arg("*")
                        .arg(&[
                            ("specversion", "1.0"),
                            ("id", id.as_str()),
                            ("source", SOURCE),
                            ("type", "bench.order.placed"),
                            ("time", time.as_str()),
                            ("datacontenttype", "application/json"),
                            ("eventname", "Placed"),
                        ])
                        .arg("data")
                        .arg(data)
                        .query_async(&mut conn)
                        .await
                        .expect("XADD");
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
/// group of its own; returns the time until it handled `CONSUME_EVENTS`.
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

type Entries = Vec<(String, Vec<(String, Vec<u8>)>)>;

async fn raw_consume_round(s: &Setup, round: u64) -> Duration {
    let start = Instant::now();
    let (mut conn, stream, group) = (s.conn.clone(), s.stream(), format!("raw-consume-{round}"));
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg(&group)
        .arg("0")
        .query_async(&mut conn)
        .await
        .expect("group");
    let mut handled = 0;
    let mut acking = None;
    while handled < CONSUME_EVENTS {
        let reply: Vec<(String, Entries)> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&group)
            .arg("raw")
            .arg("COUNT")
            .arg(CONSUME_IN_FLIGHT)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(&mut conn)
            .await
            .expect("XREADGROUP");
        let acks = reply
            .into_iter()
            .flat_map(|(_, entries)| entries)
            .map(|(id, fields)| {
                let mut conn = conn.clone();
                let (stream, group) = (stream.clone(), group.clone());
                async move {
                    let data = fields.iter().find(|(n, _)| n == "data").expect("data");
                    let _: serde_json::Value = serde_json::from_slice(&data.1).expect("json");
                    let _: u64 = redis::cmd("XACK")
                        .arg(&stream)
                        .arg(&group)
                        .arg(&id)
                        .query_async(&mut conn)
                        .await
                        .expect("XACK");
                }
            });
        let acks: Vec<_> = acks.collect();
        handled += acks.len() as u64;
        // Acked while the next batch is read, as the bus overlaps them.
        if let Some(previous) = acking.replace(tokio::spawn(futures_util::future::join_all(acks))) {
            previous.await.expect("acks");
        }
    }
    if let Some(last) = acking {
        last.await.expect("acks");
    }
    start.elapsed()
}

fn redis_bench(_c: &mut Criterion) {
    let rt = runtime();
    let Some(s) = rt.block_on(setup()) else {
        return;
    };
    let times = best_ratio(
        RATIO_ROUNDS,
        || rt.block_on(bus_publish_round(&s)),
        || rt.block_on(raw_publish_round(&s)),
    );
    print_throughput_ratio(
        "redis_publish",
        times,
        PUBLISH_EVENTS,
        &format!(", {IN_FLIGHT} publishes in flight on one connection, same fields"),
    );

    // Consumers read the stream from its start, so it must hold exactly
    // the events each round counts.
    rt.block_on(async {
        let mut conn = s.conn.clone();
        let _: u64 = redis::cmd("XTRIM")
            .arg(s.stream())
            .arg("MAXLEN")
            .arg(0)
            .query_async(&mut conn)
            .await
            .expect("trim");
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
        "redis_consume",
        times,
        CONSUME_EVENTS,
        &format!(", handled and acked, {CONSUME_IN_FLIGHT} read at once"),
    );

    rt.block_on(async {
        s.bus.shutdown().await.expect("shutdown");
        let mut conn = s.conn.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", s.prefix))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> =
                redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
        }
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = redis_bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
