//! Durable handling on `sqlite://`, against raw SQLite doing the same work
//! in the same run (both with `synchronous=FULL` on the same disk):
//!
//! - `sqlite_transaction_handler`: a handler writes one row per event with
//!   `ctx.transaction` (exactly once), reading events stored beforehand;
//!   the raw consumer reads the same events a page at a time and inserts
//!   the same rows, committing once per page with its position.
//! - `sqlite_end_to_end`: 64 publishers publish (each waits for its
//!   durable acknowledgement) to a counting store-fed handler; the raw side
//!   is 64 tasks handing rows to a writer thread that commits what is
//!   queued in one transaction per round, and a reader polling every 1 ms.
//!   Also prints p50/p99 publish → handled latency for both.
//!
//! Prints `ratio NAME: X.XX` as bus throughput / raw throughput. Run:
//! `cargo bench -p benches --bench durable` (an argument runs only the
//! ratios whose name holds it).

#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use benches::{best_ratio, print_throughput_ratio};
use eventbus::prelude::*;
use eventbus::rusqlite::{Connection, params};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, oneshot};

#[derive(Event, Clone, Debug)]
#[event(topic = "order.placed")]
struct Placed {
    id: i64,
    cents: i64,
    /// When it was published, in ns since the Unix epoch.
    at: i64,
}

const TX_EVENTS: u64 = 5_000;
const E2E_EVENTS: u64 = 64 * 320;
const PUBLISHERS: u64 = 64;
const ROUNDS: usize = 3;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as i64
}

/// Database files in one temp dir under the target dir (the disk the
/// project builds on), removed with their `-wal` and `-shm`.
struct Files {
    dir: tempfile::TempDir,
    next: AtomicU64,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("durable-bench-")
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

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Counts handlings and wakes the waiter at the last one.
#[derive(Default)]
struct Count {
    handled: AtomicU64,
    all: Notify,
    latencies: Mutex<Vec<i64>>,
}

impl Count {
    fn hit(&self, published_at: Option<i64>, target: u64) {
        if let Some(at) = published_at {
            let mut latencies = self.latencies.lock().expect("latencies");
            latencies.push(now_ns() - at);
        }
        if self.handled.fetch_add(1, Ordering::AcqRel) + 1 == target {
            self.all.notify_one();
        }
    }

    async fn wait_for(&self, target: u64) {
        loop {
            let all = self.all.notified();
            if self.handled.load(Ordering::Acquire) >= target {
                return;
            }
            all.await;
        }
    }

    /// p50 and p99 in ms.
    fn percentiles(&self) -> (f64, f64) {
        let mut all = std::mem::take(&mut *self.latencies.lock().expect("latencies"));
        all.sort_unstable();
        let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)] as f64 / 1e6;
        (at(0.5), at(0.99))
    }
}

// ---------------------------------------------------------------------------
// A handler with ctx.transaction

/// A file holding `TX_EVENTS` events, written once and copied per round.
fn stored_events(rt: &Runtime, files: &Files) -> PathBuf {
    let path = files.fresh();
    rt.block_on(async {
        let bus = Bus::builder()
            .store(url(&path))
            .no_linked_handlers()
            .build()
            .await
            .expect("bus builds");
        let publishes = (0..TX_EVENTS as i64).map(|id| {
            let bus = bus.clone();
            async move {
                bus.publish(Placed {
                    id,
                    cents: id * 3,
                    at: 0,
                })
                .await
            }
        });
        for published in futures_util::future::join_all(publishes).await {
            published.expect("publish");
        }
        bus.shutdown().await.expect("shutdown");
    });
    path
}

fn copy_of(files: &Files, events: &Path) -> PathBuf {
    let path = files.fresh();
    std::fs::copy(events, &path).expect("copy the events file");
    path
}

fn create_revenue(path: &Path) {
    Connection::open(path)
        .expect("open")
        .execute_batch("CREATE TABLE revenue (order_id INTEGER PRIMARY KEY, cents INTEGER)")
        .expect("create");
}

fn bus_transaction_round(rt: &Runtime, files: &Files, events: &Path) -> Duration {
    let path = copy_of(files, events);
    create_revenue(&path);
    let elapsed = rt.block_on(async {
        let count = Arc::new(Count::default());
        let seen = Arc::clone(&count);
        let handler = FnHandler::new("revenue", move |ev: Envelope<Placed>, ctx: Context| {
            let seen = Arc::clone(&seen);
            async move {
                let (id, cents) = (ev.id, ev.cents);
                ctx.transaction(move |tx| {
                    tx.prepare_cached("INSERT INTO revenue (order_id, cents) VALUES (?1, ?2)")?
                        .execute(params![id, cents])
                })
                .await?;
                seen.hit(None, TX_EVENTS);
                Ok::<(), eventbus::Error>(())
            }
        })
        .start(eventbus::Start::Earliest);
        let start = Instant::now();
        let bus = Bus::builder()
            .store(url(&path))
            .no_linked_handlers()
            .handler(handler)
            .build()
            .await
            .expect("bus builds");
        count.wait_for(TX_EVENTS).await;
        let elapsed = start.elapsed();
        bus.shutdown().await.expect("shutdown");
        elapsed
    });
    check_revenue(&path);
    remove_db(&path);
    elapsed
}

fn check_revenue(path: &Path) {
    let rows: i64 = Connection::open(path)
        .expect("open")
        .query_row("SELECT count(*) FROM revenue", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows as u64, TX_EVENTS, "every event wrote its row once");
}

/// Reads a page of events after its position, inserts their rows and
/// saves its position, all in one transaction, until every event is done.
fn raw_transaction_round(files: &Files, events: &Path) -> Duration {
    let path = copy_of(files, events);
    create_revenue(&path);
    let mut conn = Connection::open(&path).expect("open");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous");
    conn.execute_batch("CREATE TABLE position (id INTEGER PRIMARY KEY, seq INTEGER)")
        .expect("create");
    let start = Instant::now();
    let mut last = 0_i64;
    let mut done = 0;
    while done < TX_EVENTS {
        let tx = conn
            .transaction_with_behavior(eventbus::rusqlite::TransactionBehavior::Immediate)
            .expect("begin");
        let page: Vec<(i64, String)> = tx
            .prepare_cached("SELECT seq, data FROM events WHERE seq > ?1 ORDER BY seq LIMIT 256")
            .expect("prepare")
            .query_map([last], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        for (seq, data) in &page {
            let placed: serde_json::Value = serde_json::from_str(data).expect("json");
            tx.prepare_cached("INSERT INTO revenue (order_id, cents) VALUES (?1, ?2)")
                .expect("prepare")
                .execute(params![placed["id"].as_i64(), placed["cents"].as_i64()])
                .expect("insert");
            last = *seq;
        }
        tx.execute(
            "INSERT INTO position (id, seq) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET seq = ?1",
            [last],
        )
        .expect("position");
        tx.commit().expect("commit");
        done += page.len() as u64;
    }
    let elapsed = start.elapsed();
    drop(conn);
    check_revenue(&path);
    remove_db(&path);
    elapsed
}

// ---------------------------------------------------------------------------
// End to end

async fn publish_all(bus: &Bus) {
    let publishers = (0..PUBLISHERS).map(|p| {
        let bus = bus.clone();
        async move {
            for n in 0..E2E_EVENTS / PUBLISHERS {
                let id = (p * E2E_EVENTS / PUBLISHERS + n) as i64;
                bus.publish(Placed {
                    id,
                    cents: id,
                    at: now_ns(),
                })
                .await
                .expect("publish");
            }
        }
    });
    futures_util::future::join_all(publishers.map(tokio::spawn)).await;
}

fn bus_end_to_end_round(rt: &Runtime, files: &Files, latency: &Mutex<(f64, f64)>) -> Duration {
    let path = files.fresh();
    let elapsed = rt.block_on(async {
        let count = Arc::new(Count::default());
        let seen = Arc::clone(&count);
        let handler = FnHandler::new("count", move |ev: Envelope<Placed>, _ctx: Context| {
            seen.hit(Some(ev.at), E2E_EVENTS);
            async {}
        });
        let bus = Bus::builder()
            .store(url(&path))
            .no_linked_handlers()
            .handler(handler)
            .build()
            .await
            .expect("bus builds");
        let start = Instant::now();
        publish_all(&bus).await;
        count.wait_for(E2E_EVENTS).await;
        let elapsed = start.elapsed();
        bus.shutdown().await.expect("shutdown");
        *latency.lock().expect("latency") = count.percentiles();
        elapsed
    });
    remove_db(&path);
    elapsed
}

type Row = (i64, String, oneshot::Sender<i64>);

/// Commits what is queued in one transaction per round, answering each
/// row with its seq once committed. The file is laid out by the bus's own
/// store (same schema and indexes), so both sides write the same b-trees.
fn raw_writer(path: PathBuf, rows: std::sync::mpsc::Receiver<Row>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let store = eventbus::store::SqliteStore::open(&url(&path))
                .await
                .expect("store creates the file");
            eventbus::store::Store::close(&store).await.expect("close");
        });
    let mut conn = Connection::open(path).expect("open");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous");
    while let Ok(first) = rows.recv() {
        let mut batch = vec![first];
        batch.extend(rows.try_iter().take(1023));
        let tx = conn.transaction().expect("begin");
        let mut seqs = Vec::with_capacity(batch.len());
        for (time_ns, data, _) in &batch {
            tx.prepare_cached(
                "INSERT INTO events (id, topic, time_ns, source, event_name, event_version, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .expect("prepare")
            .execute(params![
                uuid::Uuid::now_v7().hyphenated().to_string(),
                "order.placed",
                time_ns,
                "bench",
                <Placed as Event>::NAME,
                <Placed as Event>::VERSION,
                data
            ])
            .expect("insert");
            seqs.push(tx.last_insert_rowid());
        }
        tx.commit().expect("commit");
        for ((_, _, reply), seq) in batch.into_iter().zip(seqs) {
            let _ = reply.send(seq);
        }
    }
}

fn raw_end_to_end_round(rt: &Runtime, files: &Files, latency: &Mutex<(f64, f64)>) -> Duration {
    let path = files.fresh();
    let (tx, rows) = std::sync::mpsc::channel::<Row>();
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || raw_writer(path, rows))
    };
    let elapsed = rt.block_on(async {
        // The writer lays the file out; the first row waits for it.
        let (first, ready) = oneshot::channel();
        tx.send((
            now_ns(),
            r#"{"id":-1,"cents":0,"at":null}"#.to_owned(),
            first,
        ))
        .expect("writer");
        ready.await.expect("file laid out");
        let count = Arc::new(Count::default());
        let reader = {
            let (count, path) = (Arc::clone(&count), path.clone());
            tokio::task::spawn_blocking(move || {
                let conn = Connection::open(path).expect("open");
                let mut last = 1_i64;
                while count.handled.load(Ordering::Acquire) < E2E_EVENTS {
                    std::thread::sleep(Duration::from_millis(1));
                    let mut stmt = conn
                        .prepare_cached("SELECT seq, data FROM events WHERE seq > ?1 ORDER BY seq")
                        .expect("prepare");
                    let mut found = stmt.query([last]).expect("query");
                    while let Some(row) = found.next().expect("row") {
                        last = row.get(0).expect("seq");
                        let data: String = row.get(1).expect("data");
                        let placed: serde_json::Value = serde_json::from_str(&data).expect("json");
                        count.hit(placed["at"].as_i64(), E2E_EVENTS);
                    }
                }
            })
        };
        let start = Instant::now();
        let publishers = (0..PUBLISHERS).map(|p| {
            let tx = tx.clone();
            tokio::spawn(async move {
                for n in 0..E2E_EVENTS / PUBLISHERS {
                    let id = (p * E2E_EVENTS / PUBLISHERS + n) as i64;
                    let at = now_ns();
                    let data = serde_json::json!({ "id": id, "cents": id, "at": at }).to_string();
                    let (reply, stored) = oneshot::channel();
                    tx.send((at, data, reply)).expect("writer");
                    stored.await.expect("stored");
                }
            })
        });
        futures_util::future::join_all(publishers).await;
        count.wait_for(E2E_EVENTS).await;
        let elapsed = start.elapsed();
        reader.await.expect("reader");
        *latency.lock().expect("latency") = count.percentiles();
        elapsed
    });
    drop(tx);
    writer.join().expect("writer");
    remove_db(&path);
    elapsed
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let runs = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let rt = runtime();
    let files = Files::new();

    if runs("sqlite_transaction_handler") {
        let events = stored_events(&rt, &files);
        let times = best_ratio(
            ROUNDS,
            || bus_transaction_round(&rt, &files, &events),
            || raw_transaction_round(&files, &events),
        );
        print_throughput_ratio("sqlite_transaction_handler", times, TX_EVENTS, "");
    }

    if runs("sqlite_end_to_end") {
        let bus_latency = Mutex::new((f64::MAX, f64::MAX));
        let raw_latency = Mutex::new((f64::MAX, f64::MAX));
        let (mut bus_best, mut raw_best) = ((f64::MAX, f64::MAX), (f64::MAX, f64::MAX));
        let times = best_ratio(
            ROUNDS,
            || {
                let d = bus_end_to_end_round(&rt, &files, &bus_latency);
                let l = *bus_latency.lock().expect("latency");
                bus_best = (bus_best.0.min(l.0), bus_best.1.min(l.1));
                d
            },
            || {
                let d = raw_end_to_end_round(&rt, &files, &raw_latency);
                let l = *raw_latency.lock().expect("latency");
                raw_best = (raw_best.0.min(l.0), raw_best.1.min(l.1));
                d
            },
        );
        print_throughput_ratio(
            "sqlite_end_to_end",
            times,
            E2E_EVENTS,
            &format!(
                "; publish → handled p50/p99: bus {:.2}/{:.2} ms, raw {:.2}/{:.2} ms",
                bus_best.0, bus_best.1, raw_best.0, raw_best.1
            ),
        );
    }
}
