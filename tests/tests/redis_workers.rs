//! Competing consumers on Redis: two processes run the same handler (one
//! consumer group, a consumer each) and share its work. With nothing failing, every event is handled exactly
//! once across them; with one SIGKILLed mid-load, every event is still
//! handled at least once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::Start;
use eventbus::prelude::*;
use tests::{OrderEvent, RedisScope, TestChild, eventually, eventually_async, isolated};

/// A worker: handles `order.*` with the shared handler name, one line per
/// handling, until killed. Runs only when re-executed with
/// `EVENTBUS_REDIS_WORKER_URL` and `EVENTBUS_REDIS_WORKER_LOG` set.
#[tokio::test]
async fn redis_worker_child() {
    let (Ok(url), Ok(log)) = (
        std::env::var("EVENTBUS_REDIS_WORKER_URL"),
        std::env::var("EVENTBUS_REDIS_WORKER_LOG"),
    ) else {
        return;
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let file = Arc::new(Mutex::new(file));
    let handler = {
        let file = Arc::clone(&file);
        FnHandler::new(
            "shared-worker",
            move |ev: Envelope<OrderEvent>, _ctx: Context| {
                // One unbuffered write per line: the kernel keeps it when the
                // process is killed, and a kill never splits a line.
                let line = format!("{}\n", ev.seq());
                file.lock().unwrap().write_all(line.as_bytes()).unwrap();
                async { tokio::time::sleep(Duration::from_millis(2)).await }
            },
        )
        .concurrency(2)
        .start(Start::Earliest)
    };
    let bus = isolated()
        .store(url)
        .handler(handler)
        .build()
        .await
        .unwrap();
    writeln!(file.lock().unwrap(), "ready").unwrap();
    std::future::pending::<()>().await;
    drop(bus);
}

/// A worker process and the log it writes.
struct Worker {
    child: TestChild,
    log: PathBuf,
}

impl Worker {
    fn spawn(url: &str, log: PathBuf) -> Self {
        let child = TestChild::spawn(
            "redis_worker_child",
            &[
                ("EVENTBUS_REDIS_WORKER_URL", Path::new(url)),
                ("EVENTBUS_REDIS_WORKER_LOG", &log),
            ],
        );
        Worker { child, log }
    }

    fn ready(&self) -> bool {
        read(&self.log).0
    }

    fn handled(&self) -> Vec<u64> {
        read(&self.log).1
    }
}

fn read(log: &Path) -> (bool, Vec<u64>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let ready = text.lines().any(|l| l == "ready");
    (ready, text.lines().filter_map(|l| l.parse().ok()).collect())
}

/// Waits up to a minute: worker processes start and drain at their own pace.
async fn wait_for(what: &str, done: impl FnMut() -> bool) {
    eventually(what, Duration::from_secs(60), done).await;
}

async fn wait_for_floor(url: &str, seq: u64) {
    let store = eventbus::store::open(url).await.unwrap();
    eventually_async(
        &format!("the group's floor to reach {seq}"),
        Duration::from_secs(60),
        || async {
            store
                .checkpoint_store()
                .unwrap()
                .load_checkpoint("shared-worker")
                .await
                .unwrap()
                == Some(seq)
        },
    )
    .await;
}

fn temp_dir(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("eventbus-{test}-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn counts(workers: &[&Worker]) -> BTreeMap<u64, u32> {
    let mut times = BTreeMap::new();
    for w in workers {
        for seq in w.handled() {
            *times.entry(seq).or_default() += 1;
        }
    }
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_two_processes_share_a_handler_and_handle_each_event_once() {
    const EVENTS: u64 = 400;
    let scope = RedisScope::new("share");
    let url = scope.url("");
    let dir = temp_dir("redis-share");
    let publisher = isolated().store(&url).build().await.unwrap();
    let a = Worker::spawn(&url, dir.join("a.log"));
    let b = Worker::spawn(&url, dir.join("b.log"));
    wait_for("both workers to start", || a.ready() && b.ready()).await;

    let mut sent = Vec::new();
    for id in 0..EVENTS {
        sent.push(
            publisher
                .publish(OrderEvent::Shipped { id })
                .await
                .unwrap()
                .seq(),
        );
    }
    wait_for("every event to be handled", || {
        counts(&[&a, &b]).len() as u64 == EVENTS
    })
    .await;
    wait_for_floor(&url, sent[sent.len() - 1]).await;

    let times = counts(&[&a, &b]);
    assert_eq!(times.keys().copied().collect::<Vec<_>>(), sent);
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    let (na, nb) = (a.handled().len(), b.handled().len());
    println!("worker a handled {na}, worker b handled {nb}");
    assert!(
        na > 0 && nb > 0,
        "both workers share the load: {na} and {nb}"
    );
    publisher.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_a_killed_worker_loses_no_event() {
    const EVENTS: u64 = 600;
    let scope = RedisScope::new("kill");
    // A short ack wait, so what the killed worker held pending is taken
    // over soon.
    let url = scope.url("&ack_wait=2s");
    let dir = temp_dir("redis-kill");
    let publisher = isolated().store(&url).build().await.unwrap();
    let mut a = Worker::spawn(&url, dir.join("a.log"));
    let b = Worker::spawn(&url, dir.join("b.log"));
    wait_for("both workers to start", || a.ready() && b.ready()).await;

    let mut sent = Vec::new();
    for id in 0..EVENTS {
        sent.push(
            publisher
                .publish(OrderEvent::Shipped { id })
                .await
                .unwrap()
                .seq(),
        );
    }
    wait_for("worker a to be mid-load", || a.handled().len() >= 50).await;
    a.child.kill();
    let killed_with = a.handled().len();
    wait_for("every event to be handled", || {
        counts(&[&a, &b]).len() as u64 == EVENTS
    })
    .await;
    wait_for_floor(&url, sent[sent.len() - 1]).await;

    let times = counts(&[&a, &b]);
    assert_eq!(
        times.keys().copied().collect::<Vec<_>>(),
        sent,
        "every event handled at least once"
    );
    // Only what the killed worker held pending can come twice: at most its
    // concurrency (2) in handling and two batches (of 2) read for its bus.
    let twice = times.values().filter(|n| **n > 1).count();
    println!("killed after {killed_with} handlings; {twice} events handled twice");
    assert!(twice <= 6, "{twice} events handled twice");
    let pending: (u64, Option<String>, Option<String>, redis::Value) = redis::cmd("XPENDING")
        .arg(scope.key("events"))
        .arg("shared-worker")
        .query(&mut scope.raw())
        .unwrap();
    assert_eq!(pending.0, 0, "nothing is left pending to the killed worker");
    publisher.shutdown().await.unwrap();
}
