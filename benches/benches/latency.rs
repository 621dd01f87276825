//! Publish → handled latency on `memory://`, against one raw
//! `tokio::sync::mpsc` hop in the same run, on a 2-worker and on a
//! `current_thread` runtime:
//!
//! - max throughput: a burst published back to back, until all is handled;
//! - closed loop: publish one event, wait until it is handled, repeat;
//! - open loop: events sent on a schedule at 50% and 10% of each side's own
//!   maximum, latency counted from the scheduled time (so a sender held up
//!   by a backlog cannot hide it).
//!
//! Prints p50/p99/p99.9 per side and `ratio latency_p99_open50`,
//! `ratio latency_p50_closed`, `ratio max_throughput` (bus/raw; for
//! throughput higher is better, for latency lower). Each figure is the best
//! of alternating rounds. Run: `cargo bench -p benches --bench latency`;
//! an argument runs only the parts whose name holds it, e.g.
//! `-- max_throughput` or `-- current_thread`.

#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use eventbus::prelude::*;
use tokio::runtime::Runtime;
use tokio::sync::{Notify, mpsc};

#[derive(Event, Clone, Debug)]
#[event(topic = "bench.ping")]
struct Ping {
    /// The event's index in the run.
    n: u64,
    /// When it was due, in ns after [`base`].
    due: u64,
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    base().elapsed().as_nanos() as u64
}

const BURST: u64 = 20_000;
const CLOSED: u64 = 5_000;
const OPEN: u64 = 20_000;
const ROUNDS: usize = 5;

/// Latencies of one run, written by the consumer, one slot per event.
struct Record {
    /// Whether latencies are taken: a burst measures throughput alone,
    /// without two clock reads per event on each side.
    timed: bool,
    latencies: Box<[AtomicU64]>,
    handled: AtomicUsize,
    done: Notify,
}

impl Record {
    fn new(load: Load) -> Arc<Self> {
        let events = load.events();
        Arc::new(Record {
            timed: !matches!(load, Load::Burst),
            latencies: (0..events).map(|_| AtomicU64::new(0)).collect(),
            handled: AtomicUsize::new(0),
            done: Notify::new(),
        })
    }

    fn hit(&self, ping: &Ping) {
        if self.timed {
            let latency = now_ns().saturating_sub(ping.due);
            self.latencies[ping.n as usize].store(latency, Ordering::Relaxed);
        }
        self.handled.fetch_add(1, Ordering::Release);
        self.done.notify_one();
    }

    async fn wait_for(&self, count: usize) {
        loop {
            let woken = self.done.notified();
            if self.handled.load(Ordering::Acquire) >= count {
                return;
            }
            woken.await;
        }
    }

    /// p50, p99 and p99.9 in µs.
    fn percentiles(&self) -> [f64; 3] {
        let mut all: Vec<u64> = self
            .latencies
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .collect();
        all.sort_unstable();
        let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)] as f64 / 1e3;
        [at(0.50), at(0.99), at(0.999)]
    }
}

/// How the sender sends: every event at once, one after the other was
/// handled, or on a schedule (one every `interval`).
#[derive(Clone, Copy)]
enum Load {
    Burst,
    Closed,
    Paced(Duration),
}

impl Load {
    fn events(self) -> u64 {
        match self {
            Load::Burst => BURST,
            Load::Closed => CLOSED,
            Load::Paced(_) => OPEN,
        }
    }
}

/// The two sides, behind one shape: something that sends a ping and
/// something that records it on the other end.
trait Side {
    async fn send(&self, ping: Ping);
}

struct BusSide(Bus);

impl Side for BusSide {
    async fn send(&self, ping: Ping) {
        self.0.publish(ping).await.expect("publish");
    }
}

struct RawSide(mpsc::Sender<Ping>);

impl Side for RawSide {
    async fn send(&self, ping: Ping) {
        self.0.send(ping).await.expect("send");
    }
}

async fn drive(side: &impl Side, record: &Record, load: Load) -> Duration {
    let events = load.events();
    let start = Instant::now();
    let start_ns = now_ns();
    for n in 0..events {
        let due = match load {
            Load::Paced(interval) => {
                let due = start_ns + interval.as_nanos() as u64 * n;
                // Sleeping has millisecond resolution; yielding lets a
                // handler on this thread run while the sender waits.
                while now_ns() < due {
                    tokio::task::yield_now().await;
                }
                due
            }
            Load::Closed => now_ns(),
            Load::Burst => 0,
        };
        side.send(Ping { n, due }).await;
        if let Load::Closed = load {
            record.wait_for(n as usize + 1).await;
        }
    }
    record.wait_for(events as usize).await;
    start.elapsed()
}

fn bus_run(rt: &Runtime, load: Load) -> (Duration, [f64; 3]) {
    rt.block_on(async {
        let record = Record::new(load);
        let seen = Arc::clone(&record);
        let bus = Bus::builder()
            .no_linked_handlers()
            .handler(FnHandler::new(
                "latency",
                move |ev: Envelope<Ping>, _ctx: Context| {
                    seen.hit(&ev);
                    async {}
                },
            ))
            .build()
            .await
            .expect("bus builds");
        let side = BusSide(bus);
        let elapsed = drive(&side, &record, load).await;
        side.0.shutdown().await.expect("shutdown");
        (elapsed, record.percentiles())
    })
}

fn raw_run(rt: &Runtime, load: Load) -> (Duration, [f64; 3]) {
    rt.block_on(async {
        let record = Record::new(load);
        let seen = Arc::clone(&record);
        let (tx, mut rx) = mpsc::channel::<Ping>(1024);
        let consumer = tokio::spawn(async move {
            while let Some(ping) = rx.recv().await {
                seen.hit(&ping);
            }
        });
        let elapsed = drive(&RawSide(tx.clone()), &record, load).await;
        drop(tx);
        consumer.await.expect("consumer");
        (elapsed, record.percentiles())
    })
}

/// The best of `ROUNDS` alternating rounds of each side: the shortest time
/// and, separately, the lowest of each percentile.
fn best(rt: &Runtime, load: impl Fn(bool) -> Load) -> [(Duration, [f64; 3]); 2] {
    let mut sides = [(Duration::MAX, [f64::MAX; 3]); 2];
    for _ in 0..ROUNDS {
        for (i, run) in [bus_run(rt, load(true)), raw_run(rt, load(false))]
            .into_iter()
            .enumerate()
        {
            sides[i].0 = sides[i].0.min(run.0);
            for (b, p) in sides[i].1.iter_mut().zip(run.1) {
                *b = b.min(p);
            }
        }
    }
    sides
}

fn print_latencies(what: &str, flavor: &str, [bus, raw]: [(Duration, [f64; 3]); 2]) {
    let [b50, b99, b999] = bus.1;
    let [r50, r99, r999] = raw.1;
    println!(
        "{flavor:>13} {what:<11} bus p50 {b50:8.1} µs  p99 {b99:8.1} µs  p99.9 {b999:8.1} µs | \
         raw p50 {r50:8.1} µs  p99 {r99:8.1} µs  p99.9 {r999:8.1} µs"
    );
}

/// The parts to run: those whose name (`max_throughput`, `closed`,
/// `open50`, `open10`, each with its runtime flavor) holds the filter.
struct Filter(Option<String>);

impl Filter {
    fn from_args() -> Self {
        Filter(std::env::args().skip(1).find(|a| !a.starts_with("--")))
    }

    fn runs(&self, part: &str, flavor: &str) -> bool {
        self.0
            .as_deref()
            .is_none_or(|f| format!("{part} {flavor}").contains(f))
    }
}

fn flavor(name: &str, rt: &Runtime, filter: &Filter) {
    // The open loops are paced from the maximum, so that runs whenever they do.
    let open_parts = ["open50", "open10"].map(|p| filter.runs(p, name));
    if !filter.runs("max_throughput", name)
        && !open_parts.contains(&true)
        && !filter.runs("closed", name)
    {
        return;
    }
    let [bus_max, raw_max] = best(rt, |_| Load::Burst);
    let rate = |d: Duration| BURST as f64 / d.as_secs_f64();
    let (bus_rate, raw_rate) = (rate(bus_max.0), rate(raw_max.0));
    println!(
        "ratio max_throughput ({name}): {:.2}   (bus {bus_rate:.0} events/s, raw {raw_rate:.0} events/s)",
        bus_rate / raw_rate
    );

    if filter.runs("closed", name) {
        let closed = best(rt, |_| Load::Closed);
        print_latencies("closed", name, closed);
        println!(
            "ratio latency_p50_closed ({name}): {:.2}",
            closed[0].1[0] / closed[1].1[0]
        );
    }

    for (percent, runs) in [50.0, 10.0].into_iter().zip(open_parts) {
        if !runs {
            continue;
        }
        let interval = |rate: f64| Duration::from_secs_f64(100.0 / (percent * rate));
        let open = best(rt, |bus| {
            Load::Paced(interval(if bus { bus_rate } else { raw_rate }))
        });
        print_latencies(&format!("open {percent:.0}%"), name, open);
        println!(
            "ratio latency_p99_open{percent:.0} ({name}): {:.2}",
            open[0].1[1] / open[1].1[1]
        );
    }
}

fn main() {
    let filter = Filter::from_args();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    flavor("multi_thread", &multi, &filter);
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    flavor("current_thread", &current, &filter);
}
