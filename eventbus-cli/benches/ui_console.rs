//! What a browser on `eventbus ui`'s live page costs a publisher: a bus
//! publishes to a `sqlite://` file at about 10,000 events/s (eight
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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

const RATE: f64 = 10_000.0;
const PUBLISHERS: u64 = 8;
const EVENTS: u64 = 10_000;
const ROUNDS: usize = 5;

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

/// An SSE client reading the live feed as fast as it comes; counts the
/// events (`data: {` lines, never split: one event is well under a read).
async fn attach(addr: SocketAddr, seen: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let request =
        format!("GET /live/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("sends");
    let mut buf = vec![0u8; 64 * 1024];
    // Connected once the first message (`event: ready`) is in.
    let n = stream.read(&mut buf).await.expect("reads");
    assert!(n > 0, "the console closed the feed");
    tokio::spawn(async move {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&buf[..n]);
            seen.fetch_add(text.matches("data: {").count() as u64, Ordering::Relaxed);
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
    let seen = Arc::new(AtomicU64::new(0));
    let times = best_ratio(
        ROUNDS,
        || {
            rt.block_on(async {
                let before = seen.load(Ordering::Relaxed);
                let reader = attach(addr, Arc::clone(&seen)).await;
                let took = paced_round(&bus).await;
                // Untimed: the feed trails the store by up to one poll.
                let deadline = Instant::now() + Duration::from_secs(5);
                while seen.load(Ordering::Relaxed) < before + EVENTS && Instant::now() < deadline {
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
         without {:.0} events/s, target {RATE:.0}; the client got {} of {} events)",
        1.0 / time_ratio,
        rate(with),
        rate(without),
        seen.load(Ordering::Relaxed),
        EVENTS * ROUNDS as u64,
    );
    rt.block_on(bus.shutdown()).expect("shuts down");
}
