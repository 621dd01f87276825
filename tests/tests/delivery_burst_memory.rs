//! A 1,000,000-event burst with a slow handler and fast ones: memory stays
//! under a stated bound, on SQLite the fast handlers finish while the slow
//! one is far behind (it lags in the file and holds no one back), and on
//! `memory://` with `LagPolicy::Skip` the slow handler reports what it
//! missed.
//!
//! Each burst runs in a child process (this binary re-executed), so its
//! peak resident set (`VmHWM`) is its own and not the other tests'.
//! `EVENTBUS_BURST_EVENTS=N` runs a smaller burst, to try things out.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eventbus::prelude::*;
use eventbus::{HandlerStats, LagPolicy};
use tests::{OrderEvent, isolated};

const EVENTS: u64 = 1_000_000;

/// Durable publishes in a debug build go at about 8,000 events/s on these
/// machines (SQLite's C code unoptimized), so a million would take two
/// minutes: a debug build bursts a fifth of it. `cargo test --release`
/// runs the full million; the bounds hold for both, as memory must not
/// grow with the count.
const SQLITE_EVENTS: u64 = if cfg!(debug_assertions) {
    EVENTS / 5
} else {
    EVENTS
};

/// The peak resident set a burst may reach, in KiB: twice the peaks
/// measured on these machines (SQLite: 16.6 MiB for 1,000,000 events in a
/// release build, 16.5 MiB for 200,000 in debug; memory store: 8.3 MiB
/// release, 10.8 MiB debug, both for 1,000,000). Anything kept per event,
/// even 16 bytes, would cross them in a release build.
const SQLITE_BOUND_KB: u64 = 32 * 1024;
const MEMORY_BOUND_KB: u64 = 24 * 1024;

fn events(default: u64) -> u64 {
    std::env::var("EVENTBUS_BURST_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// `VmHWM` (peak) and `VmRSS` (now) of this process, in KiB.
fn memory_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn stats(bus: &Bus, name: &str) -> HandlerStats {
    bus.stats().into_iter().find(|s| s.name == name).unwrap()
}

fn counter(name: &'static str) -> FnHandler {
    FnHandler::new(name, |ev: Envelope<OrderEvent>, _ctx: Context| {
        std::hint::black_box(ev.seq());
        async {}
    })
}

fn slow(handled: &Arc<AtomicU64>) -> FnHandler {
    let handled = Arc::clone(handled);
    FnHandler::new("slow", move |_ev: Envelope<OrderEvent>, _ctx: Context| {
        let handled = Arc::clone(&handled);
        async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            handled.fetch_add(1, Ordering::Relaxed);
        }
    })
}

async fn publish_burst(bus: &Bus, events: u64, publishers: u64) {
    let tasks: Vec<_> = (0..publishers)
        .map(|p| {
            let bus = bus.clone();
            tokio::spawn(async move {
                for id in (p..events).step_by(publishers as usize) {
                    bus.publish(OrderEvent::Shipped { id }).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

async fn until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The SQLite burst, in the child: prints one `BURST key=value ...` line.
async fn sqlite_burst(dir: &str) {
    let events = events(SQLITE_EVENTS);
    let slow_handled = Arc::new(AtomicU64::new(0));
    // `synchronous=normal`: the burst is about memory and lag, not fsyncs.
    let url = format!("sqlite://{dir}/events.db?synchronous=normal");
    let bus = isolated()
        .store(url)
        .handler(slow(&slow_handled))
        .handler(counter("fast.a"))
        .handler(counter("fast.b"))
        .build()
        .await
        .unwrap();
    let start = Instant::now();
    publish_burst(&bus, events, 16).await;
    let published = start.elapsed();
    until("the fast handlers", Duration::from_secs(600), || {
        ["fast.a", "fast.b"]
            .iter()
            .all(|name| stats(&bus, name).handled == events)
    })
    .await;
    let fast = start.elapsed();
    let (hwm, rss) = memory_kb();
    println!(
        "BURST events={events} publish_ms={} fast_ms={} slow_handled={} hwm_kb={hwm} rss_kb={rss}",
        published.as_millis(),
        fast.as_millis(),
        slow_handled.load(Ordering::Relaxed),
    );
}

/// The memory-store burst, in the child: prints one `BURST ...` line.
async fn memory_burst() {
    let events = events(EVENTS);
    let slow_handled = Arc::new(AtomicU64::new(0));
    let bus = isolated()
        .lag_policy(LagPolicy::Skip)
        .handler(slow(&slow_handled))
        .handler(counter("fast.a"))
        .build()
        .await
        .unwrap();
    let start = Instant::now();
    publish_burst(&bus, events, 1).await;
    let published = start.elapsed();
    until("the fast handler", Duration::from_secs(600), || {
        let fast = stats(&bus, "fast.a");
        fast.handled + fast.missed == events
    })
    .await;
    let (hwm, rss) = memory_kb();
    let (slow, fast) = (stats(&bus, "slow"), stats(&bus, "fast.a"));
    println!(
        "BURST events={events} publish_ms={} slow_handled={} slow_missed={} fast_handled={} fast_missed={} hwm_kb={hwm} rss_kb={rss}",
        published.as_millis(),
        slow.handled,
        slow.missed,
        fast.handled,
        fast.missed,
    );
}

/// Runs a burst only when re-executed with `EVENTBUS_BURST` set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_child() {
    match std::env::var("EVENTBUS_BURST").as_deref() {
        Ok("memory") => memory_burst().await,
        Ok(dir) if !dir.is_empty() => sqlite_burst(dir).await,
        _ => {}
    }
}

/// Runs `burst_child` with `mode` and returns its report's values by key.
fn run_child(mode: &str) -> std::collections::HashMap<String, u64> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["burst_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("EVENTBUS_BURST", mode)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the burst child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("BURST ").map(|(_, report)| report))
        .unwrap_or_else(|| panic!("no report from the child:\n{stdout}"));
    println!("{line}");
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
        .collect()
}

#[test]
fn on_sqlite_a_slow_handler_lags_in_the_file_with_bounded_memory() {
    let dir =
        std::env::temp_dir().join(format!("eventbus-burst-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = run_child(dir.to_str().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    let events = report["events"];
    assert!(
        report["hwm_kb"] < SQLITE_BOUND_KB,
        "peak RSS {} KiB is over the bound of {SQLITE_BOUND_KB} KiB",
        report["hwm_kb"]
    );
    // The fast handlers got through the burst in the time the slow one
    // handled a small part of it: they did not go at its pace.
    assert!(
        report["slow_handled"] * 10 < events,
        "the slow handler handled {} of {events} events while the fast ones finished",
        report["slow_handled"]
    );
}

#[test]
fn on_memory_with_skip_a_slow_handler_reports_what_it_missed() {
    let report = run_child("memory");
    let events = report["events"];
    assert!(
        report["hwm_kb"] < MEMORY_BOUND_KB,
        "peak RSS {} KiB is over the bound of {MEMORY_BOUND_KB} KiB",
        report["hwm_kb"]
    );
    assert!(
        report["slow_missed"] > events / 2,
        "the slow handler missed only {} of {events} events",
        report["slow_missed"]
    );
    assert_eq!(report["fast_handled"] + report["fast_missed"], events);
}
