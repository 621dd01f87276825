//! Aggregates on `sqlite://`, each against a raw baseline in the same run:
//!
//! - `aggregate_load_10_of_1m`: loading one entity's 10 events (decoded
//!   and applied) out of 1,000,000 stored, against a raw indexed SQLite
//!   query reading the same 10 rows' data; printed as raw time / load
//!   time (1.0: as fast as the query; target at least 0.5);
//! - `aggregate_save`: saving one event with an expected version, against
//!   publishing the same event (informational).

#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::time::{Duration, Instant};

use benches::{best_ratio, print_ratio, print_throughput_ratio};
use criterion::{Criterion, criterion_group};
use eventbus::aggregate::{Aggregate, Repository};
use eventbus::prelude::*;
use rusqlite::params;

#[derive(Event, Clone, Debug)]
#[event(namespace = "bench.counter")]
enum CounterEvent {
    Added { by: u64 },
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Counter {
    total: u64,
}

impl Aggregate for Counter {
    type Event = CounterEvent;

    fn apply(&mut self, event: &CounterEvent) {
        match event {
            CounterEvent::Added { by } => self.total += by,
        }
    }
}

const STORED: u64 = 1_000_000;
const ENTITY_EVENTS: u64 = 10;
const LOADS: u64 = 200;
const SAVES: u64 = 200;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Fills the file with a million events of 100,000 other entities, in one
/// transaction through SQL (publishing them one by one would take minutes
/// and measure something else), then the target entity's 10 events.
async fn filled(path: &std::path::Path) -> Bus {
    let url = format!("sqlite://{}", path.display());
    let bus = Bus::builder()
        .store(&url)
        .no_linked_handlers()
        .build()
        .await
        .expect("bus");
    let mut conn = rusqlite::Connection::open(path).expect("open");
    let tx = conn.transaction().expect("tx");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO events (id, topic, time_ns, source, headers, event_name,
                     event_version, data, subject, stream_version)
                 VALUES (?1, 'bench.counter.added', ?2, 'bench', NULL, 'CounterEvent', 1,
                     '{\"by\":1}', ?3, ?4)",
            )
            .expect("prepare");
        for n in 0..STORED - ENTITY_EVENTS {
            let entity = n % 100_000;
            insert
                .execute(params![
                    format!("filler-{n}"),
                    n as i64,
                    format!("other-{entity}"),
                    (n / 100_000 + 1) as i64
                ])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
    let counters = Repository::<Counter>::new(&bus);
    for version in 0..ENTITY_EVENTS {
        counters
            .save("target", version, vec![CounterEvent::Added { by: 2 }])
            .await
            .expect("save");
    }
    bus
}

fn aggregate(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::Builder::new()
        .prefix("aggregate-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    let path = dir.path().join("aggregates.db");
    let bus = rt.block_on(filled(&path));
    let counters = Repository::<Counter>::new(&bus);
    let raw = rusqlite::Connection::open(&path).expect("open");

    let load = || {
        rt.block_on(async {
            let started = Instant::now();
            for _ in 0..LOADS {
                let loaded = counters.load("target").await.expect("load");
                assert_eq!(loaded.state.total, 2 * ENTITY_EVENTS);
            }
            started.elapsed()
        })
    };
    let query = || {
        let started = Instant::now();
        for _ in 0..LOADS {
            let mut stmt = raw
                .prepare_cached(
                    "SELECT data FROM events WHERE event_name = ?1 AND subject = ?2
                     AND stream_version > 0 ORDER BY stream_version",
                )
                .expect("prepare");
            let rows: Vec<String> = stmt
                .query_map(params!["CounterEvent", "target"], |r| r.get(0))
                .expect("query")
                .collect::<rusqlite::Result<_>>()
                .expect("rows");
            assert_eq!(rows.len() as u64, ENTITY_EVENTS);
        }
        started.elapsed()
    };
    let mut group = c.benchmark_group("aggregate");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("load_10_of_1m", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| load()).sum::<Duration>() / LOADS as u32)
    });
    group.bench_function("raw_query_baseline", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| query()).sum::<Duration>() / LOADS as u32)
    });
    group.finish();
    let ratio = best_ratio(10, load, query);
    print_throughput_ratio(
        "aggregate_load_10_of_1m",
        ratio,
        LOADS,
        " (loads, target >= 0.5)",
    );

    let mut version = ENTITY_EVENTS;
    let mut save = || {
        rt.block_on(async {
            let started = Instant::now();
            for _ in 0..SAVES {
                counters
                    .save("target", version, vec![CounterEvent::Added { by: 1 }])
                    .await
                    .expect("save");
                version += 1;
            }
            started.elapsed()
        })
    };
    let publish = || {
        rt.block_on(async {
            let started = Instant::now();
            for _ in 0..SAVES {
                bus.publish(CounterEvent::Added { by: 1 })
                    .await
                    .expect("publish");
            }
            started.elapsed()
        })
    };
    let ratio = best_ratio(5, &mut save, publish);
    print_ratio("aggregate_save", ratio, SAVES);
    rt.block_on(bus.shutdown()).expect("shutdown");
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = aggregate
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
