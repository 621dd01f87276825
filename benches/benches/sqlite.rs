//! The `sqlite://` store against raw rusqlite on the same disk, in the same
//! run:
//!
//! - `sqlite_publish_{1,16,64}`: durable publishes (`synchronous=FULL`, WAL)
//!   from 1, 16 and 64 concurrent publisher tasks, against one thread
//!   inserting the same rows (same schema, same JSON data) into a file with
//!   the same pragmas, in transactions as large as the bus's own average
//!   batch for that publisher count (measured, see [`Calibration`]);
//! - `sqlite_replay`: `bus.replay().to_handler("h").run()` of a file of
//!   [`REPLAY_EVENTS`] events into a counting handler, against reading every
//!   column of the same rows with rusqlite and deserializing the JSON data.
//!
//! - `sqlite_checkpoint`: a store-fed handler reading the same file from
//!   the start (`Start::Earliest`) with its checkpoints and handled
//!   records, against the same handler on the same file through a store
//!   that keeps no checkpoints (every other call passed on), so the ratio
//!   is what checkpointing costs.
//!
//! Each prints `ratio NAME: X.XX` as bus *throughput* / raw throughput (so
//! higher is better, unlike the in-process bench), with events/s of both.
//! `cargo bench -p benches --bench sqlite -- only_ratios` skips criterion's
//! measurements (the filter matches none) and prints only the ratios.
//! Every publish measurement writes a fresh file under cargo's target tmp
//! dir (on the same disk as the build) and removes it afterwards.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use benches::{best_ratio, print_throughput_ratio};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use eventbus::prelude::*;
use eventbus::store::{BoxStream, CheckpointStore, DeadLetterStore, Query, SqliteStore, Store};
use eventbus::{BoxFuture, RawEnvelope};
use rusqlite::{Connection, OpenFlags, params};
use tokio::runtime::Runtime;

/// The bus's event.
#[derive(Event, Clone, Debug)]
#[event(topic = "bench.order.placed")]
struct Placed {
    publisher: u32,
    n: u64,
    customer: String,
    cents: u64,
}

/// The same data for the raw side, with plain serde.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct PlacedRow {
    publisher: u32,
    n: u64,
    customer: String,
    cents: u64,
}

fn placed(publisher: u32, n: u64) -> Placed {
    Placed {
        publisher,
        n,
        customer: format!("customer-{:06}", n % 100_000),
        cents: 1250 + n % 1000,
    }
}

fn placed_row(publisher: u32, n: u64) -> PlacedRow {
    let p = placed(publisher, n);
    PlacedRow {
        publisher: p.publisher,
        n: p.n,
        customer: p.customer,
        cents: p.cents,
    }
}

const TOPIC: &str = "bench.order.placed";
const SOURCE: &str = "bench";

/// Events per publish measurement, by publisher count: each publisher
/// waits for one fsynced commit per event, so fewer publishers get fewer
/// events to keep every round well under a second or two.
fn publish_events(publishers: u32) -> u64 {
    match publishers {
        1 => 2_000,
        16 => 16_000,
        _ => 32_000,
    }
}

const PUBLISHERS: [u32; 3] = [1, 16, 64];
/// A multiple of the 64 publishers that write the file.
const REPLAY_EVENTS: u64 = 64 * 800;
/// Alternating bus/raw rounds behind each printed ratio.
const RATIO_ROUNDS: usize = 9;

const INSERT: &str = "INSERT INTO events (id, topic, time_ns, source, correlation_id, \
    causation_id, idempotency_key, headers, event_name, event_version, data) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

const SELECT_ALL: &str = "SELECT seq, id, topic, time_ns, source, correlation_id, causation_id, \
    idempotency_key, headers, event_name, event_version, data FROM events ORDER BY seq";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Fresh database paths in one temp dir, removed (with their `-wal` and
/// `-shm`) after each use.
struct Files {
    dir: tempfile::TempDir,
    next: AtomicU64,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sqlite-bench-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temp dir under the target dir");
        Files {
            dir,
            next: AtomicU64::new(0),
        }
    }

    fn fresh(&self) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join(format!("bench-{n}.db"))
    }
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as i64
}

// ---------------------------------------------------------------------------
// Durable publish

/// What one bus round saw of the writer's commits, read from the WAL.
///
/// The store gives no commit count, so a calibration round holds a read
/// transaction open on a separate connection for the whole round: the WAL
/// can then be neither checkpointed past it nor restarted, so every commit
/// of the round stays in the `-wal` file as a frame with a non-zero
/// "database size after commit" field. Counting those frames (with the
/// WAL's current salts) before and after gives the number of commits.
#[derive(Debug, Clone, Copy, Default)]
struct Calibration {
    events: u64,
    commits: u64,
}

impl Calibration {
    fn average_batch(&self) -> f64 {
        self.events as f64 / self.commits.max(1) as f64
    }
}

/// The WAL's salts and how many commit frames carry them.
fn wal_commits(db: &Path) -> ((u32, u32), u64) {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let wal = std::fs::read(wal).unwrap_or_default();
    if wal.len() < 32 {
        return ((0, 0), 0);
    }
    let be = |at: usize| u32::from_be_bytes(wal[at..at + 4].try_into().expect("4 bytes"));
    let page_size = be(8) as usize;
    let salts = (be(16), be(20));
    let mut commits = 0;
    let mut at = 32;
    while at + 24 + page_size <= wal.len() && (be(at + 8), be(at + 12)) == salts {
        if be(at + 4) != 0 {
            commits += 1;
        }
        at += 24 + page_size;
    }
    (salts, commits)
}

/// `publishers` tasks publish `events` events in all through a bus on a
/// fresh file; returns the time from the first publish to the last ack,
/// and, when `calibrate`, the commits the writer made meanwhile.
fn bus_publish_round(
    rt: &Runtime,
    files: &Files,
    publishers: u32,
    events: u64,
    calibrate: bool,
) -> (Duration, Option<Calibration>) {
    let path = files.fresh();
    let out = rt.block_on(async {
        let bus = Bus::builder()
            .no_linked_handlers()
            .source(SOURCE)
            .store(sqlite_url(&path))
            .build()
            .await
            .expect("bus builds");
        let pin = calibrate.then(|| {
            let conn = Connection::open(&path).expect("pinning connection");
            conn.execute_batch("BEGIN; SELECT count(*) FROM events;")
                .expect("read transaction");
            let before = wal_commits(&path);
            (conn, before)
        });
        let per_task = events / u64::from(publishers);
        let start = Instant::now();
        let tasks: Vec<_> = (0..publishers)
            .map(|p| {
                let bus = bus.clone();
                tokio::spawn(async move {
                    for n in 0..per_task {
                        bus.publish(placed(p, n)).await.expect("publish");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("publisher task");
        }
        let elapsed = start.elapsed();
        let calibration = pin.map(|(conn, (salts_before, before))| {
            let (salts, after) = wal_commits(&path);
            drop(conn);
            let commits = if salts == salts_before {
                after - before
            } else {
                after
            };
            Calibration {
                events: per_task * u64::from(publishers),
                commits,
            }
        });
        bus.shutdown().await.expect("shutdown");
        (elapsed, calibration)
    });
    remove_db(&path);
    out
}

/// A fresh file laid out by the bus's own store (schema, indexes, WAL,
/// auto-vacuum), so both sides update the same b-trees, then opened raw
/// with the same `synchronous=FULL`.
fn raw_open(path: &Path) -> Connection {
    let url = format!("sqlite://{}", path.display());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let store = SqliteStore::open(&url)
                .await
                .expect("store creates the file");
            store.close().await.expect("close");
        });
    let conn = Connection::open(path).expect("raw open");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous");
    conn
}

/// One thread inserts `events` rows into a fresh file in about
/// `events / batch` transactions (boundaries spread evenly, so the average
/// transaction holds `batch` rows); each row is built (v7 id, JSON data)
/// inside the timing, as the bus builds its rows inside its own.
fn raw_publish_round(files: &Files, publishers: u32, events: u64, batch: f64) -> Duration {
    let path = files.fresh();
    let mut conn = raw_open(&path);
    let commits = ((events as f64 / batch).round() as u64).clamp(1, events);
    let start = Instant::now();
    let mut done = 0;
    for c in 0..commits {
        let end = events * (c + 1) / commits;
        let tx = conn.transaction().expect("begin");
        {
            let mut insert = tx.prepare_cached(INSERT).expect("prepare");
            for n in done..end {
                let publisher = (n % u64::from(publishers)) as u32;
                let data = serde_json::to_string(&placed_row(publisher, n / u64::from(publishers)))
                    .expect("json");
                insert
                    .execute(params![
                        uuid::Uuid::now_v7().hyphenated().to_string(),
                        TOPIC,
                        now_ns(),
                        SOURCE,
                        None::<String>,
                        None::<String>,
                        None::<String>,
                        None::<String>,
                        <Placed as Event>::NAME,
                        <Placed as Event>::VERSION,
                        data,
                    ])
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
        done = end;
    }
    let elapsed = start.elapsed();
    drop(conn);
    remove_db(&path);
    elapsed
}

/// The bus's average batch for each publisher count, from two calibration
/// rounds each; also checks that both sides store the same row.
fn calibrate(rt: &Runtime, files: &Files) -> Vec<(u32, f64)> {
    check_same_rows(rt, files);
    PUBLISHERS
        .iter()
        .map(|&publishers| {
            let events = publish_events(publishers);
            let mut total = Calibration::default();
            for _ in 0..2 {
                let (_, c) = bus_publish_round(rt, files, publishers, events, true);
                let c = c.expect("calibration round");
                total.events += c.events;
                total.commits += c.commits;
            }
            let batch = total.average_batch();
            println!(
                "sqlite_publish_{publishers}: the bus committed {} events in {} commits: \
                 average batch {batch:.1}; the raw baseline uses the same",
                total.events, total.commits
            );
            (publishers, batch)
        })
        .collect()
}

/// The rows the raw side writes match the bus's, column by column, except
/// the id and the time.
fn check_same_rows(rt: &Runtime, files: &Files) {
    let path = files.fresh();
    rt.block_on(async {
        let bus = Bus::builder()
            .no_linked_handlers()
            .source(SOURCE)
            .store(sqlite_url(&path))
            .build()
            .await
            .expect("bus builds");
        bus.publish(placed(0, 7)).await.expect("publish");
        bus.shutdown().await.expect("shutdown");
    });
    let conn = Connection::open(&path).expect("open");
    let (topic, source, name, version, data): (String, String, String, u32, String) = conn
        .query_row(
            "SELECT topic, source, event_name, event_version, data FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .expect("the bus's row");
    assert_eq!(
        (topic.as_str(), source.as_str(), name.as_str(), version),
        (
            TOPIC,
            SOURCE,
            <Placed as Event>::NAME,
            <Placed as Event>::VERSION
        )
    );
    assert_eq!(
        data,
        serde_json::to_string(&placed_row(0, 7)).expect("json")
    );
    drop(conn);
    remove_db(&path);
}

// ---------------------------------------------------------------------------
// Replay

/// A file of `REPLAY_EVENTS` events written by the bus (with
/// `synchronous=normal`, only to build it faster).
fn replay_file(rt: &Runtime, files: &Files) -> PathBuf {
    let path = files.fresh();
    rt.block_on(async {
        let bus = Bus::builder()
            .no_linked_handlers()
            .source(SOURCE)
            .store(format!("{}?synchronous=normal", sqlite_url(&path)))
            .build()
            .await
            .expect("bus builds");
        let publishers = 64u32;
        let per_task = REPLAY_EVENTS / u64::from(publishers);
        let tasks: Vec<_> = (0..publishers)
            .map(|p| {
                let bus = bus.clone();
                tokio::spawn(async move {
                    for n in 0..per_task {
                        bus.publish(placed(p, n)).await.expect("publish");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("publisher task");
        }
        bus.shutdown().await.expect("shutdown");
    });
    path
}

struct ReplayBus {
    bus: Bus,
    handled: Arc<AtomicU64>,
}

fn replay_bus(rt: &Runtime, path: &Path) -> ReplayBus {
    let handled = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&handled);
    let handler = FnHandler::new("h", move |ev: Envelope<Placed>, _ctx: Context| {
        let counter = Arc::clone(&counter);
        async move {
            std::hint::black_box(ev.cents);
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let bus = rt.block_on(async {
        Bus::builder()
            .no_linked_handlers()
            .handler(handler)
            .store(sqlite_url(path))
            .build()
            .await
            .expect("bus builds")
    });
    ReplayBus { bus, handled }
}

fn bus_replay_round(rt: &Runtime, replay: &ReplayBus, events: u64) -> Duration {
    rt.block_on(async {
        let before = replay.handled.load(Ordering::Relaxed);
        let start = Instant::now();
        let report = replay
            .bus
            .replay()
            .to_handler("h")
            .run()
            .await
            .expect("replay");
        let elapsed = start.elapsed();
        assert_eq!(
            (report.events, report.delivered, report.failed),
            (events, events, 0)
        );
        assert_eq!(replay.handled.load(Ordering::Relaxed) - before, events);
        elapsed
    })
}

fn raw_replay_round(conn: &Connection, events: u64) -> Duration {
    let start = Instant::now();
    let mut stmt = conn.prepare_cached(SELECT_ALL).expect("prepare");
    let mut rows = stmt.query([]).expect("query");
    let mut count = 0;
    while let Some(row) = rows.next().expect("row") {
        let seq: i64 = row.get(0).expect("seq");
        let id: String = row.get(1).expect("id");
        let topic: String = row.get(2).expect("topic");
        let time_ns: i64 = row.get(3).expect("time_ns");
        let source: String = row.get(4).expect("source");
        let correlation_id: Option<String> = row.get(5).expect("correlation_id");
        let causation_id: Option<String> = row.get(6).expect("causation_id");
        let idempotency_key: Option<String> = row.get(7).expect("idempotency_key");
        let headers: Option<String> = row.get(8).expect("headers");
        let event_name: String = row.get(9).expect("event_name");
        let event_version: i64 = row.get(10).expect("event_version");
        let data: String = row.get(11).expect("data");
        let event: PlacedRow = serde_json::from_str(&data).expect("data decodes");
        std::hint::black_box((
            seq,
            id,
            topic,
            time_ns,
            source,
            correlation_id,
            causation_id,
            idempotency_key,
            headers,
            event_name,
            event_version,
            event.cents,
        ));
        count += 1;
    }
    let elapsed = start.elapsed();
    assert_eq!(count, events);
    elapsed
}

// ---------------------------------------------------------------------------
// Store-fed handler, with and without checkpoints

/// A SQLite store that keeps no checkpoints and no handled records: a
/// handler on it reads its feed exactly as on the real store, minus those
/// writes. Every other call goes to the real store.
struct NoCheckpoints(SqliteStore);

impl Store for NoCheckpoints {
    fn append(&self, draft: eventbus::Draft) -> BoxFuture<'_, eventbus::Result<RawEnvelope>> {
        self.0.append(draft)
    }
    fn query(&self, query: Query) -> BoxStream<'static, eventbus::Result<RawEnvelope>> {
        self.0.query(query)
    }
    fn close(&self) -> BoxFuture<'_, eventbus::Result<()>> {
        self.0.close()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn durable(&self) -> bool {
        self.0.durable()
    }
    fn as_checkpoint_store(&self) -> Option<&dyn CheckpointStore> {
        Some(self)
    }
    fn as_dead_letter_store(&self) -> Option<&dyn DeadLetterStore> {
        self.0.as_dead_letter_store()
    }
}

impl CheckpointStore for NoCheckpoints {
    fn load_checkpoint(&self, _handler: &str) -> BoxFuture<'_, eventbus::Result<Option<u64>>> {
        Box::pin(async { Ok(None) })
    }
    fn save_checkpoint(&self, _handler: &str, _seq: u64) -> BoxFuture<'_, eventbus::Result<()>> {
        Box::pin(async { Ok(()) })
    }
    fn checkpoints(&self) -> BoxFuture<'_, eventbus::Result<Vec<(String, u64)>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// A store-fed handler reads all `events` of the file at `path` from the
/// start; returns the time from building its bus to its last handling.
/// With `checkpoints`, each round uses a new handler name, so that it
/// starts from the beginning with no checkpoint of its own.
fn feed_round(rt: &Runtime, path: &Path, round: u64, checkpoints: bool, events: u64) -> Duration {
    rt.block_on(async {
        let real = SqliteStore::open(&sqlite_url(path))
            .await
            .expect("store opens");
        let store: Arc<dyn Store> = if checkpoints {
            Arc::new(real)
        } else {
            Arc::new(NoCheckpoints(real))
        };
        let handled = Arc::new(AtomicU64::new(0));
        let all = Arc::new(tokio::sync::Notify::new());
        let handler = {
            let (handled, all) = (Arc::clone(&handled), Arc::clone(&all));
            FnHandler::new(
                format!("feed-{round}"),
                move |ev: Envelope<Placed>, _ctx: Context| {
                    std::hint::black_box(ev.cents);
                    if handled.fetch_add(1, Ordering::Relaxed) + 1 == events {
                        all.notify_one();
                    }
                    async {}
                },
            )
            .start(eventbus::Start::Earliest)
        };
        let start = Instant::now();
        let bus = Bus::builder()
            .no_linked_handlers()
            .handler(handler)
            .store_impl(store)
            .build()
            .await
            .expect("bus builds");
        all.notified().await;
        let elapsed = start.elapsed();
        bus.shutdown().await.expect("shutdown");
        assert_eq!(handled.load(Ordering::Relaxed), events);
        elapsed
    })
}

// ---------------------------------------------------------------------------

fn sqlite(c: &mut Criterion) {
    let rt = runtime();
    let files = Files::new();
    let batches = calibrate(&rt, &files);

    let mut group = c.benchmark_group("sqlite");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(4));
    for &(publishers, batch) in &batches {
        let events = publish_events(publishers);
        group.throughput(Throughput::Elements(events));
        group.bench_function(format!("publish_{publishers}"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| bus_publish_round(&rt, &files, publishers, events, false).0)
                    .sum()
            })
        });
        group.bench_function(format!("raw_publish_{publishers}"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| raw_publish_round(&files, publishers, events, batch))
                    .sum()
            })
        });
    }

    let replay_path = replay_file(&rt, &files);
    let replay = replay_bus(&rt, &replay_path);
    let raw_conn = Connection::open_with_flags(
        &replay_path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("raw reader");
    group.throughput(Throughput::Elements(REPLAY_EVENTS));
    group.bench_function("replay", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| bus_replay_round(&rt, &replay, REPLAY_EVENTS))
                .sum()
        })
    });
    group.bench_function("raw_read", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| raw_replay_round(&raw_conn, REPLAY_EVENTS))
                .sum()
        })
    });
    group.finish();

    for &(publishers, batch) in &batches {
        let events = publish_events(publishers);
        let times = best_ratio(
            RATIO_ROUNDS,
            || bus_publish_round(&rt, &files, publishers, events, false).0,
            || raw_publish_round(&files, publishers, events, batch),
        );
        print_throughput_ratio(
            &format!("sqlite_publish_{publishers}"),
            times,
            events,
            &format!(", raw batch {batch:.1} = the bus's average"),
        );
    }
    let times = best_ratio(
        RATIO_ROUNDS,
        || bus_replay_round(&rt, &replay, REPLAY_EVENTS),
        || raw_replay_round(&raw_conn, REPLAY_EVENTS),
    );
    print_throughput_ratio("sqlite_replay", times, REPLAY_EVENTS, "");

    let mut round = 0;
    let (time_ratio, with, without) = best_ratio(
        RATIO_ROUNDS,
        || {
            round += 1;
            feed_round(&rt, &replay_path, round, true, REPLAY_EVENTS)
        },
        || feed_round(&rt, &replay_path, 0, false, REPLAY_EVENTS),
    );
    let rate = |d: Duration| REPLAY_EVENTS as f64 / d.as_secs_f64();
    println!(
        "ratio sqlite_checkpoint: {:.2}   (store-fed handler with checkpoints {:.0} events/s, without {:.0} events/s)",
        1.0 / time_ratio,
        rate(with),
        rate(without)
    );

    drop(raw_conn);
    rt.block_on(replay.bus.shutdown()).expect("shutdown");
    remove_db(&replay_path);
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = sqlite
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
