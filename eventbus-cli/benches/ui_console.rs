//! What a browser on `eventbus ui`'s live page costs a publisher: a bus
//! publishes to a `sqlite://` file at about 10,000 events/s (32
//! publishers, each on its own schedule) while the console, a separate
//! process as in production, follows the file; in alternate rounds an SSE
//! client reads its live feed. Prints `ratio publish_with_console_attached`
//! (publish rate with the client / without; 1.00 means no cost, below 0.95
//! fails the bar) from the best round of each side.
//!
//! Run: `cargo bench -p eventbus-cli --bench ui_console`. It lives here,
//! not in the `benches` crate, because it runs the `eventbus` binary, which
//! cargo builds and names only for this package's benches and tests.

#![allow(missing_docs)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use benches::best_ratio;
use eventbus::Bus;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

const RATE: f64 = 10_000.0;
const PUBLISHERS: u64 = 32;
const EVENTS: u64 = 9_600;
const ROUNDS: usize = 7;

struct Console(Child);

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_console(url: &str) -> (Console, SocketAddr) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_eventbus"))
        .args(["--store", url, "ui", "--listen", "127.0.0.1:0"])
        .env_remove("EVENTBUS_UI_TOKEN")
        .stdout(Stdio::piped())
        .spawn()
        .expect("eventbus ui starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = loop {
        let line = lines.next().expect("a line").expect("utf-8");
        if let Some(rest) = line.split(" on http://").nth(1) {
            break rest.trim_end_matches('/').parse().expect("an address");
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (Console(child), addr)
}

/// What the SSE client was sent.
#[derive(Default)]
struct Seen {
    events: AtomicU64,
    /// Events the console said it skipped because the client fell behind.
    skipped: AtomicU64,
}

/// An SSE client reading the live feed as fast as it comes.
async fn attach(addr: SocketAddr, seen: Arc<Seen>) -> tokio::task::JoinHandle<()> {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let request =
        format!("GET /live/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("sends");
    let mut lines = tokio::io::BufReader::new(stream).lines();
    // Connected once the first message is in.
    while let Ok(Some(line)) = lines.next_line().await {
        if line == "event: ready" {
            break;
        }
    }
    tokio::spawn(async move {
        let mut skipped_next = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if line == "event: skipped" {
                skipped_next = true;
            } else if let Some(data) = line.strip_prefix("data: ") {
                if skipped_next {
                    let n: u64 = data.parse().unwrap_or(0);
                    seen.skipped.fetch_add(n, Ordering::Relaxed);
                    skipped_next = false;
                } else if data.starts_with('{') {
                    seen.events.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    })
}

/// Publishes [`EVENTS`] on schedule at [`RATE`] in all; the time taken.
async fn paced_round(bus: &Bus) -> Duration {
    let start = Instant::now();
    let per_publisher = EVENTS / PUBLISHERS;
    let interval = Duration::from_secs_f64(PUBLISHERS as f64 / RATE);
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let bus = bus.clone();
            tokio::spawn(async move {
                for i in 0..per_publisher {
                    let due = start + interval * u32::try_from(i).expect("small");
                    tokio::time::sleep_until(due.into()).await;
                    bus.publish_json("bench.order", &json!({"publisher": p, "n": i}))
                        .await
                        .expect("published");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("publisher");
    }
    start.elapsed()
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let rt = Runtime::new().expect("runtime");
    let bus = rt.block_on(async {
        Bus::builder()
            .store(&url)
            .no_linked_handlers()
            .build()
            .await
            .expect("bus starts")
    });
    // The store file exists once the bus made it.
    let (_console, addr) = start_console(&url);
    let seen = Arc::new(Seen::default());
    let times = best_ratio(
        ROUNDS,
        || {
            rt.block_on(async {
                let told =
                    || seen.events.load(Ordering::Relaxed) + seen.skipped.load(Ordering::Relaxed);
                let before = told();
                let reader = attach(addr, Arc::clone(&seen)).await;
                let took = paced_round(&bus).await;
                // Untimed: the feed trails the store by up to one poll.
                let deadline = Instant::now() + Duration::from_secs(5);
                while told() < before + EVENTS && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                reader.abort();
                took
            })
        },
        || rt.block_on(paced_round(&bus)),
    );
    let (time_ratio, with, without) = times;
    let rate = |d: Duration| EVENTS as f64 / d.as_secs_f64();
    println!(
        "ratio publish_with_console_attached: {:.2}   (with a live client {:.0} events/s, \
         without {:.0} events/s, target {RATE:.0}; {} rounds a side; the client received {} events and was told it \
         skipped {})",
        1.0 / time_ratio,
        rate(with),
        rate(without),
        ROUNDS,
        seen.events.load(Ordering::Relaxed),
        seen.skipped.load(Ordering::Relaxed),
    );
    rt.block_on(bus.shutdown()).expect("shuts down");
}
