//! At-least-once across crashes: a consuming process is SIGKILLed mid-load
//! several times and restarted; every event is handled, a restarted run
//! skips what the killed one recorded as handled after its checkpoint, and
//! the only events handled twice are those in flight at the kill (handled,
//! but neither checkpointed nor recorded yet).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::Start;
use eventbus::prelude::*;
use eventbus::store::CheckpointStore;
use eventbus::store::{SqliteStore, Store};
use tests::{OrderEvent, TestChild, isolated};

const EVENTS: u64 = 3000;
const KILLS: usize = 6;

/// The consumer: handles every `order.*` event from the start, writing one
/// line per handling, until killed. Runs only when re-executed with
/// `EVENTBUS_CONSUMER_DB` and `EVENTBUS_CONSUMER_LOG` set.
#[tokio::test]
async fn consumer_child() {
    let (Ok(url), Ok(log)) = (
        std::env::var("EVENTBUS_CONSUMER_DB"),
        std::env::var("EVENTBUS_CONSUMER_LOG"),
    ) else {
        return;
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let file = Arc::new(Mutex::new(file));
    writeln!(file.lock().unwrap(), "start").unwrap();
    let handler = {
        let file = Arc::clone(&file);
        FnHandler::new(
            "consumer",
            move |ev: Envelope<OrderEvent>, _ctx: Context| {
                // One unbuffered write per line: the kernel keeps it even
                // when the process is killed right after, and a kill never
                // splits a line (`writeln!` may take two writes).
                let line = format!("{}\n", ev.seq());
                file.lock().unwrap().write_all(line.as_bytes()).unwrap();
                // Slow enough that every kill lands mid-load (a test child
                // may block its own runtime).
                std::thread::sleep(Duration::from_micros(500));
                async {}
            },
        )
        .start(Start::Earliest)
    };
    // A restarted consumer waits for its killed predecessor's lease to
    // expire; a short one keeps the test quick.
    let bus = isolated()
        .store(url)
        .handler_lease(Duration::from_secs(1))
        .handler(handler)
        .build()
        .await
        .unwrap();
    // Run until killed.
    std::future::pending::<()>().await;
    drop(bus);
}

/// One session per consumer run: the seqs it handled, in order.
fn sessions(log: &Path) -> Vec<Vec<u64>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut out: Vec<Vec<u64>> = Vec::new();
    for line in text.lines() {
        if line == "start" {
            out.push(Vec::new());
        } else if let (Some(current), Ok(seq)) = (out.last_mut(), line.parse()) {
            current.push(seq);
        }
    }
    out
}

/// A consumer process running `consumer_child` on the store at `url`.
fn spawn_consumer(url: &str, log: &Path) -> TestChild {
    TestChild::spawn(
        "consumer_child",
        &[
            ("EVENTBUS_CONSUMER_DB", Path::new(url)),
            ("EVENTBUS_CONSUMER_LOG", log),
        ],
    )
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_consumer_resumes_after_its_checkpoint_and_misses_nothing() {
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "eventbus-crash-consumer-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("events.db").display());
    let log = dir.join("handled.log");

    let bus = isolated().store(&url).build().await.unwrap();
    for id in 0..EVENTS {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    bus.shutdown().await.unwrap();

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    println!("kill delays seeded with {seed}");
    // At each kill: the saved checkpoint and the seqs recorded as handled after it.
    let mut at_kill: Vec<(u64, Vec<u64>)> = Vec::new();
    for kill in 0..KILLS {
        let before: usize = sessions(&log).iter().map(Vec::len).sum();
        let mut child = spawn_consumer(&url, &log);
        // Let it handle a few events, then kill it at a varying moment.
        wait_for("the consumer to make progress", || {
            sessions(&log).iter().map(Vec::len).sum::<usize>() >= before + 50
        })
        .await;
        let extra = (seed.wrapping_mul(kill as u32 + 1) % 20) as u64;
        tokio::time::sleep(Duration::from_millis(extra)).await;
        child.kill();
        let store = SqliteStore::open(&url).await.unwrap();
        let checkpoint = store
            .load_checkpoint("consumer")
            .await
            .unwrap()
            .unwrap_or(0);
        let recorded = store
            .handled_after("consumer", checkpoint)
            .await
            .unwrap()
            .into_iter()
            .flatten()
            .filter(|seq| *seq > checkpoint)
            .collect();
        at_kill.push((checkpoint, recorded));
        store.close().await.unwrap();
    }

    // The last run goes to the end.
    let mut child = spawn_consumer(&url, &log);
    wait_for("every event to be handled", || {
        sessions(&log)
            .last()
            .is_some_and(|s| s.last() == Some(&EVENTS))
    })
    .await;
    child.kill();

    let sessions = sessions(&log);
    assert_eq!(sessions.len(), KILLS + 1);
    let mut times: BTreeMap<u64, u32> = BTreeMap::new();
    for session in &sessions {
        assert!(
            session.windows(2).all(|w| w[0] < w[1]),
            "each run handles in seq order"
        );
        for seq in session {
            *times.entry(*seq).or_default() += 1;
        }
    }
    assert_eq!(
        times.keys().copied().collect::<Vec<u64>>(),
        (1..=EVENTS).collect::<Vec<u64>>(),
        "every event handled at least once"
    );
    // A run after a kill starts at the first event after the checkpoint
    // saved before it that the killed run had not recorded as handled, and
    // handles none of the recorded ones: an event is handled twice only if
    // a killed run handled it without either being saved.
    for (kill, (checkpoint, recorded)) in at_kill.iter().enumerate() {
        let resume = (checkpoint + 1..)
            .find(|seq| !recorded.contains(seq))
            .unwrap();
        assert_eq!(
            sessions[kill + 1].first().copied(),
            Some(resume),
            "run {} resumes after checkpoint {checkpoint} and the {} events recorded after it",
            kill + 1,
            recorded.len()
        );
        let again: Vec<&u64> = sessions[kill + 1]
            .iter()
            .filter(|seq| recorded.contains(seq))
            .collect();
        assert!(
            again.is_empty(),
            "run {} handled recorded events again: {again:?}",
            kill + 1
        );
    }
    let recorded: usize = at_kill.iter().map(|(_, r)| r.len()).sum();
    assert!(
        recorded > 0,
        "no kill found events recorded after the checkpoint, so skipping them went untested"
    );
    for (seq, count) in &times {
        if *count > 1 {
            let in_flight = at_kill
                .iter()
                .enumerate()
                .any(|(kill, (checkpoint, recorded))| {
                    seq > checkpoint && !recorded.contains(seq) && sessions[kill].contains(seq)
                });
            assert!(
                in_flight,
                "seq {seq} was handled {count} times without being in flight at a kill"
            );
        }
    }
    let duplicates = times.values().filter(|c| **c > 1).count();
    println!(
        "{KILLS} kills, {recorded} events skipped as recorded, {duplicates} handled more than once"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
