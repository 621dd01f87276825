//! One handler name in several processes on one `sqlite://` file: one
//! process runs it (it holds the handler's lease), the others stand by,
//! and when the runner is SIGKILLed mid-load a standby takes over from its
//! checkpoint; only the events in flight at the kill are handled twice.
//!
//! The test binary re-executes itself: with `EVENTBUS_LEASE_DB` and
//! `EVENTBUS_LEASE_LOG` set, `lease_worker_child` is a service instance
//! running handler `billing` until killed.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::store::CheckpointStore;
use eventbus::store::Store;
use tests::{TestChild, isolated};

#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "lease.tick")]
struct Tick {
    n: u64,
}

const LEASE_DB_VAR: &str = "EVENTBUS_LEASE_DB";
const LEASE_LOG_VAR: &str = "EVENTBUS_LEASE_LOG";
/// Events the lease test publishes while its workers run.
const LEASE_EVENTS: u64 = 2000;
/// The workers' lease: shorter than the default, so the takeover is quick
/// to test, and long enough that a loaded machine renews it in time.
const LEASE_TTL: Duration = Duration::from_secs(3);

/// A service instance running handler `billing` on the shared file until
/// killed, writing `start` and then one line per handled seq to its log.
#[tokio::test]
async fn lease_worker_child() {
    use std::io::Write;
    let (Ok(db), Ok(log)) = (std::env::var(LEASE_DB_VAR), std::env::var(LEASE_LOG_VAR)) else {
        return;
    };
    let file = std::sync::Arc::new(std::sync::Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap(),
    ));
    let handler = {
        let file = std::sync::Arc::clone(&file);
        FnHandler::new("billing", move |ev: Envelope<Tick>, _ctx: Context| {
            // One write per line, so a kill never splits one.
            let line = format!("{}\n", ev.seq());
            file.lock().unwrap().write_all(line.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_micros(300));
            async {}
        })
        .start(eventbus::Start::Earliest)
    };
    let _bus = isolated()
        .store(format!("sqlite://{db}"))
        .handler_lease(LEASE_TTL)
        .handler(handler)
        .build()
        .await
        .unwrap();
    file.lock().unwrap().write_all(b"start\n").unwrap();
    std::future::pending::<()>().await;
}

fn handled(log: &Path) -> Vec<u64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.parse().ok())
        .collect()
}

fn started(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|text| text.starts_with("start"))
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_runs_a_handler_and_a_standby_takes_over_when_it_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lease.db");
    let url = format!("sqlite://{}", db.display());
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let worker = |log: &Path| {
        TestChild::spawn(
            "lease_worker_child",
            &[
                (LEASE_DB_VAR, db.as_os_str()),
                (LEASE_LOG_VAR, log.as_os_str()),
            ],
        )
    };
    let publisher = isolated().store(&url).build().await.unwrap();
    let a = worker(&log_a);
    let b = worker(&log_b);
    wait_until("both workers to start", Duration::from_secs(30), || {
        started(&log_a) && started(&log_b)
    })
    .await;

    let publishing = {
        let publisher = publisher.clone();
        tokio::spawn(async move {
            for n in 0..LEASE_EVENTS {
                publisher.publish(Tick { n }).await.unwrap();
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        })
    };
    wait_until(
        "a worker to handle 300 events",
        Duration::from_secs(60),
        || handled(&log_a).len() >= 300 || handled(&log_b).len() >= 300,
    )
    .await;
    // Whichever took the lease first runs; the other stands by.
    let (mut runner, log_runner, log_standby) = if handled(&log_a).len() >= 300 {
        (a, &log_a, &log_b)
    } else {
        (b, &log_b, &log_a)
    };
    assert!(
        handled(log_standby).is_empty(),
        "the standby handled events while the lease holder ran"
    );
    runner.kill();
    let killed = std::time::Instant::now();
    assert!(!publishing.is_finished(), "the kill must land mid-load");
    // What the killed worker left: the standby starts from exactly this.
    let store = eventbus::store::SqliteStore::open(&url).await.unwrap();
    let checkpoint = store.load_checkpoint("billing").await.unwrap().unwrap();
    let recorded: BTreeSet<u64> = store
        .handled_after("billing", checkpoint)
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    store.close().await.unwrap();

    wait_until("the standby to take over", Duration::from_secs(30), || {
        !handled(log_standby).is_empty()
    })
    .await;
    let takeover = killed.elapsed();
    eprintln!("standby took over {takeover:.2?} after the SIGKILL (lease {LEASE_TTL:?})");
    publishing.await.unwrap();
    let by_a = handled(log_runner);
    wait_until("every event handled", Duration::from_secs(60), || {
        let all: BTreeSet<u64> = by_a.iter().chain(&handled(log_standby)).copied().collect();
        all.len() == LEASE_EVENTS as usize
    })
    .await;
    publisher.shutdown().await.unwrap();

    let by_b = handled(log_standby);
    for (name, seqs) in [("runner", &by_a), ("standby", &by_b)] {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "the {name} handles in order, each event once"
        );
    }
    let resume = (checkpoint + 1..).find(|s| !recorded.contains(s)).unwrap();
    assert_eq!(
        by_b.first().copied(),
        Some(resume),
        "the standby resumes after the checkpoint {checkpoint} and the events recorded after it"
    );
    let twice: Vec<u64> = by_b.iter().copied().filter(|s| by_a.contains(s)).collect();
    for seq in &twice {
        assert!(
            *seq > checkpoint && !recorded.contains(seq),
            "seq {seq} handled by both without being in flight at the kill"
        );
    }
    eprintln!(
        "{} events handled by the runner, {} by the standby, {} by both (in flight at the kill)",
        by_a.len(),
        by_b.len(),
        twice.len()
    );
}
