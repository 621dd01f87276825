//! Scheduled publishes on `memory://`, `sqlite://` and `nats://` (when a
//! server answers at `EVENTBUS_NATS_URL`, default 127.0.0.1:4222): how late each event
//! reaches a subscriber after it is due, 10,000 events due over 10 s,
//! against the raw baseline of 10,000 tokio timers set for the same times.
//! Prints `ratio scheduled_lateness_p99` per store (bus p99 / timer p99)
//! with both p99s in ms; the bar is 100 ms after due, unloaded.

#![allow(missing_docs)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "bench.reminder")]
struct Reminder {
    n: u64,
}

const EVENTS: u64 = 10_000;
const SPREAD_MS: u64 = 10_000;

fn due_times(start: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    (0..EVENTS)
        .map(|i| start + chrono::Duration::milliseconds((i * SPREAD_MS / EVENTS) as i64))
        .collect()
}

fn p99(mut lateness_ms: Vec<f64>) -> (f64, f64) {
    lateness_ms.sort_by(f64::total_cmp);
    let at = |q: f64| lateness_ms[((lateness_ms.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99))
}

/// Schedules every event first, then waits: `lead` must cover scheduling
/// them all (on SQLite each is its own durable write), or the late ones
/// would be due before they are scheduled.
async fn bus_lateness(url: &str, lead: Duration) -> Vec<f64> {
    let bus = Bus::builder()
        .store(url)
        .no_linked_handlers()
        .build()
        .await
        .expect("bus");
    let mut live = bus
        .subscribe::<Reminder>("bench.reminder")
        .expect("subscribe");
    let start = Utc::now() + chrono::Duration::from_std(lead).expect("lead");
    for (n, due) in due_times(start).into_iter().enumerate() {
        bus.publish(Reminder { n: n as u64 })
            .deliver_at(due)
            .await
            .expect("schedule");
    }
    let mut lateness = Vec::with_capacity(EVENTS as usize);
    while (lateness.len() as u64) < EVENTS {
        let ev = tokio::time::timeout(Duration::from_secs(60), live.next())
            .await
            .expect("every event within a minute")
            .expect("open")
            .expect("no gap");
        let late = (Utc::now() - ev.time())
            .num_microseconds()
            .unwrap_or(i64::MAX);
        lateness.push(late as f64 / 1000.0);
    }
    bus.shutdown().await.expect("shutdown");
    lateness
}

async fn timer_lateness() -> Vec<f64> {
    let start = Utc::now() + chrono::Duration::seconds(2);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for due in due_times(start) {
        let tx = tx.clone();
        tokio::spawn(async move {
            let wait = (due - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            let _ = tx.send(due);
        });
    }
    drop(tx);
    let mut lateness = Vec::with_capacity(EVENTS as usize);
    while let Some(due) = rx.recv().await {
        let late = (Utc::now() - due).num_microseconds().unwrap_or(i64::MAX);
        lateness.push(late as f64 / 1000.0);
    }
    lateness
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::Builder::new()
        .prefix("scheduled-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    let timers = p99(rt.block_on(timer_lateness()));
    let nats_server =
        std::env::var("EVENTBUS_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let stream = format!("SCHEDULED_BENCH_{}", std::process::id());
    let nats = rt
        .block_on(async_nats::connect(
            nats_server.trim_start_matches("nats://"),
        ))
        .ok();
    if nats.is_none() {
        println!("scheduled_lateness_p99 (nats): skipped, no server at {nats_server}");
    }
    let nats_url = nats
        .as_ref()
        .map(|_| format!("{nats_server}?stream={stream}&prefix=scheduled-bench"));
    for (store, url, lead) in [
        ("memory", "memory://".to_owned(), Duration::from_secs(2)),
        (
            "sqlite",
            format!("sqlite://{}", dir.path().join("scheduled.db").display()),
            Duration::from_secs(60),
        ),
    ]
    .into_iter()
    .chain(nats_url.map(|url| ("nats", url, Duration::from_secs(60))))
    {
        let bus = p99(rt.block_on(bus_lateness(&url, lead)));
        println!(
            "ratio scheduled_lateness_p99 ({store}): {:.2}   (bus p50/p99 {:.1}/{:.1} ms after due, \
             tokio timers {:.1}/{:.1} ms)",
            bus.1 / timers.1.max(0.001),
            bus.0,
            bus.1,
            timers.0,
            timers.1
        );
    }
    if let Some(client) = nats {
        rt.block_on(async {
            let js = async_nats::jetstream::new(client);
            for name in [stream.clone(), format!("{stream}_scheduled")] {
                let _ = js.delete_stream(name).await;
            }
            let _ = js.delete_key_value(format!("{stream}_dead_letters")).await;
        });
    }
}
