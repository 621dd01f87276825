//! The `sqlite://` store: the same API as `memory://` on a real file, plus
//! persistence, pushdown queries, retention, readers in other processes and
//! rows that no longer decode.

use std::path::{Path, PathBuf};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::store::{CheckpointStore, DeadLetterStore, StoreAdmin};
use eventbus::store::{SqliteStore, Store};
use eventbus::{Draft, Error};
use tests::{EntityCreated, OrderEvent, eventually, isolated};

/// A fresh directory under the target dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "eventbus-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn url(&self, options: &str) -> String {
        format!("sqlite://{}{options}", self.db().display())
    }

    fn db(&self) -> PathBuf {
        self.0.join("events.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn raw_conn(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[tokio::test]
async fn history_survives_a_restart_and_seqs_continue() {
    let dir = TempDir::new("restart");
    let bus = isolated().store(dir.url("")).build().await.unwrap();
    let first = bus
        .publish(OrderEvent::Placed { id: 1, cents: 250 })
        .correlation_id("req-1")
        .header("tenant", "acme")
        .unwrap()
        .await
        .unwrap();
    bus.publish(EntityCreated {
        id: "e".into(),
        name: "n".into(),
    })
    .await
    .unwrap();
    bus.shutdown().await.unwrap();

    let bus = isolated().store(dir.url("")).build().await.unwrap();
    let stored = bus.history().fetch().await.unwrap();
    assert_eq!(stored.len(), 2);
    let back = stored[0].decode::<OrderEvent>().unwrap();
    assert_eq!(*back, OrderEvent::Placed { id: 1, cents: 250 });
    assert_eq!(back.id(), first.id());
    assert_eq!(back.seq(), first.seq());
    assert_eq!(back.time(), first.time());
    assert_eq!(back.source(), first.source());
    assert_eq!(back.correlation_id(), Some("req-1"));
    assert_eq!(back.header("tenant"), Some("acme"));
    assert_eq!(back.raw().event_name(), "OrderEvent");
    let next = bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    assert_eq!(next.seq(), 3);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn handlers_and_subscriptions_work_as_on_memory() {
    let dir = TempDir::new("same-api");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let handler = {
        let seen = std::sync::Arc::clone(&seen);
        FnHandler::new("h", move |ev: Envelope<OrderEvent>, _ctx: Context| {
            let seen = std::sync::Arc::clone(&seen);
            async move { seen.lock().unwrap().push(ev.seq()) }
        })
    };
    let bus = isolated()
        .store(dir.url(""))
        .handler(handler)
        .build()
        .await
        .unwrap();
    let mut live = bus.subscribe::<OrderEvent>("order.>").unwrap();
    for id in 0..10 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    let first = live.next().await.unwrap().unwrap();
    assert_eq!(*first, OrderEvent::Shipped { id: 0 });
    eventually("ten handlings", Duration::from_secs(5), || {
        seen.lock().unwrap().len() == 10
    })
    .await;
    bus.shutdown().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), (1..=10).collect::<Vec<u64>>());
}

#[tokio::test]
async fn the_file_is_private_wal_and_versioned() {
    let dir = TempDir::new("file");
    let bus = isolated().store(dir.url("")).build().await.unwrap();
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.db()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let conn = raw_conn(&dir.db());
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 9);
    assert_eq!(
        bus.store().describe(),
        format!("sqlite://{}?synchronous=full", dir.db().display())
    );
    bus.shutdown().await.unwrap();

    let normal = isolated()
        .store(dir.url("?synchronous=normal"))
        .build()
        .await
        .unwrap();
    assert!(normal.store().describe().ends_with("synchronous=normal"));
    normal.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_sqlite_urls_and_files_get_clear_errors() {
    let dir = TempDir::new("bad");
    for (url, needle) in [
        ("sqlite://".to_owned(), "no file named"),
        (dir.url("?synchronous=sometimes"), "synchronous `sometimes`"),
        (dir.url("?max_age=forever"), "max_age"),
        (dir.url("?max_events=-1"), "max_events `-1`"),
        (dir.url("?wal=off"), "unknown option `wal`"),
        (
            format!("sqlite://{}/missing/events.db", dir.0.display()),
            "does not exist",
        ),
    ] {
        let err = tests::chain(&isolated().store(&url).build().await.err().unwrap());
        assert!(err.contains(needle), "{url}: {err}");
    }

    // A file written by a newer eventbus is refused, not misread.
    drop(
        isolated()
            .store(dir.url(""))
            .build()
            .await
            .unwrap()
            .shutdown()
            .await,
    );
    raw_conn(&dir.db())
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let err = tests::chain(&isolated().store(dir.url("")).build().await.err().unwrap());
    assert!(err.contains("schema version 99"), "{err}");
}

#[tokio::test]
async fn queries_are_pushed_down_and_paged() {
    let dir = TempDir::new("query");
    let bus = isolated().store(dir.url("")).build().await.unwrap();
    // More than one page (512 rows) of events, three topics, two sources.
    for id in 0..1300u64 {
        let b = bus.publish(match id % 3 {
            0 => OrderEvent::Placed { id, cents: id },
            1 => OrderEvent::Shipped { id },
            _ => OrderEvent::Cancelled {
                id,
                reason: "r".into(),
            },
        });
        let b = if id % 2 == 0 {
            b.source("even")
        } else {
            b.source("odd")
        };
        let b = if id == 700 {
            b.correlation_id("needle")
        } else {
            b
        };
        b.await.unwrap();
    }
    let count = |q: eventbus::HistoryQuery| async move { q.fetch().await.unwrap().len() };
    assert_eq!(count(bus.history()).await, 1300);
    assert_eq!(count(bus.history().topic("order.*")).await, 867);
    assert_eq!(count(bus.history().topic("order.>")).await, 1300);
    assert_eq!(count(bus.history().topic("order.cancelled.*")).await, 433);
    assert_eq!(count(bus.history().topic("*.shipped")).await, 433);
    assert_eq!(count(bus.history().source("even")).await, 650);
    assert_eq!(count(bus.history().limit(1000)).await, 1000);
    assert_eq!(
        count(bus.history().after_seq(100).before_seq(1201)).await,
        1100
    );

    let needle = bus
        .history()
        .correlation_id("needle")
        .fetch()
        .await
        .unwrap();
    assert_eq!(needle.len(), 1);
    assert_eq!(needle[0].seq(), 701);
    let newest = bus
        .history()
        .newest_first()
        .limit(600)
        .fetch()
        .await
        .unwrap();
    let seqs: Vec<u64> = newest.iter().map(|e| e.seq()).collect();
    assert_eq!(seqs, (701..=1300).rev().collect::<Vec<u64>>());
    let t = needle[0].time();
    assert_eq!(count(bus.history().since(t)).await, 600);
    assert_eq!(count(bus.history().until(t)).await, 700);
    bus.shutdown().await.unwrap();
}

fn old_event(seq: u32) -> Draft {
    let json = format!(
        r#"{{"specversion":"1.0","id":"0190e0a0-0000-7000-8000-0000000{seq:05}","source":"import",
            "type":"order.shipped","time":"2020-01-01T00:00:00Z","data":{{"id":{seq}}}}}"#
    );
    Draft::from_envelope(&RawEnvelope::from_cloudevent_json(json.as_bytes()).unwrap())
}

#[tokio::test]
async fn retention_keeps_by_count_and_age_and_clear_reclaims_space() {
    let dir = TempDir::new("retention");
    let store = std::sync::Arc::new(
        SqliteStore::open(&dir.url("?max_events=10&max_age=30d"))
            .await
            .unwrap(),
    );
    for seq in 0..5 {
        store.append(old_event(seq)).await.unwrap();
    }
    let bus = isolated().store_impl(store.clone()).build().await.unwrap();
    for id in 0..20 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    // Count first: the newest ten of 25; the five 2020 events are long gone.
    assert_eq!(store.apply_retention().await.unwrap(), 15);
    let seqs: Vec<u64> = bus
        .history()
        .fetch()
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq())
        .collect();
    assert_eq!(seqs, (16..=25).collect::<Vec<u64>>());

    // Clear by pattern, and the freed pages go back to the file system.
    for id in 0..2000 {
        bus.publish(EntityCreated {
            id: format!("{id:0>200}"),
            name: "padding".repeat(20),
        })
        .await
        .unwrap();
    }
    let cleared = bus
        .store()
        .admin()
        .unwrap()
        .clear(&eventbus::topic::Pattern::new("entity.>").unwrap())
        .await
        .unwrap();
    assert_eq!(cleared, 2000);
    assert_eq!(bus.history().fetch().await.unwrap().len(), 10);
    let free: i64 = raw_conn(&dir.db())
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    assert_eq!(free, 0, "incremental vacuum returned the pages");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn rows_that_no_longer_decode_are_per_item_errors() {
    let dir = TempDir::new("bad-rows");
    let ok = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counting = {
        let ok = std::sync::Arc::clone(&ok);
        FnHandler::new(
            "counting",
            move |_ev: Envelope<EntityCreated>, _ctx: Context| {
                ok.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async {}
            },
        )
    };
    let bus = isolated()
        .store(dir.url(""))
        .handler(FnHandler::new(
            "orders",
            |_ev: Envelope<OrderEvent>, _ctx: Context| async {},
        ))
        .handler(counting)
        .build()
        .await
        .unwrap();
    for id in 0..3 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    bus.publish(EntityCreated {
        id: "e".into(),
        name: "n".into(),
    })
    .await
    .unwrap();
    eventually("live handling", Duration::from_secs(5), || {
        ok.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    // Hand edits: broken JSON in seq 1, a schema drift in seq 2.
    let conn = raw_conn(&dir.db());
    conn.execute("UPDATE events SET data = '{broken' WHERE seq = 1", [])
        .unwrap();
    conn.execute(
        r#"UPDATE events SET data = '{"id":"two"}' WHERE seq = 2"#,
        [],
    )
    .unwrap();

    let rows: Vec<_> = bus.history().stream().collect().await;
    assert_eq!(rows.len(), 4);
    match &rows[0] {
        Err(Error::BadRow { seq: 1, reason }) => {
            assert!(reason.contains("not valid JSON"), "{reason}")
        }
        other => panic!("expected a bad row, got {other:?}"),
    }
    let typed = bus.history().fetch_as::<OrderEvent>().await.unwrap_err();
    assert!(matches!(typed, Error::BadRow { seq: 1, .. }), "{typed}");
    let whole = bus.history().fetch().await.unwrap_err();
    assert!(matches!(whole, Error::BadRow { seq: 1, .. }), "{whole}");
    let readable = bus.history().skip_unreadable().fetch().await.unwrap();
    let seqs: Vec<u64> = readable.iter().map(RawEnvelope::seq).collect();
    assert_eq!(
        seqs,
        [2, 3, 4],
        "the damaged row is left out, the rest come"
    );
    let streamed: Vec<_> = bus.history().skip_unreadable().stream().collect().await;
    assert!(streamed.iter().all(Result::is_ok) && streamed.len() == 3);
    let either = bus
        .history()
        .topics(["entity.*", "order.shipped"])
        .skip_unreadable()
        .fetch()
        .await
        .unwrap();
    let seqs: Vec<u64> = either.iter().map(RawEnvelope::seq).collect();
    assert_eq!(seqs, [2, 3, 4], "several patterns, in SQL");
    let drift = bus
        .history()
        .after_seq(1)
        .fetch_as::<OrderEvent>()
        .await
        .unwrap();
    let (seq, err) = drift[0].as_ref().unwrap_err();
    assert_eq!(*seq, 2);
    assert!(err.to_string().contains("order.shipped"), "{err}");

    // Replaying them fails those handlings only; the other handler is fine.
    let report = bus.replay().after_seq(1).run().await.unwrap();
    assert_eq!((report.events, report.delivered, report.failed), (3, 2, 1));
    assert_eq!(ok.load(std::sync::atomic::Ordering::SeqCst), 2);
    bus.shutdown().await.unwrap();
}

/// The reader side of `a_second_process_follows_the_file_while_it_is_written`:
/// runs only when re-executed with `EVENTBUS_FOLLOW_DB` set.
#[tokio::test]
async fn follow_child() {
    let Ok(url) = std::env::var("EVENTBUS_FOLLOW_DB") else {
        return;
    };
    let store = SqliteStore::open(&url).await.unwrap();
    let bus = isolated()
        .store_impl(std::sync::Arc::new(store))
        .build()
        .await
        .unwrap();
    let mut tail = bus
        .history()
        .topic("order.>")
        .follow(Duration::from_millis(10));
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    while let Some(env) = tail.next().await {
        let env = env.unwrap();
        writeln!(out, "follow-seq {}", env.seq()).unwrap();
        out.flush().unwrap();
        if env.seq() == 60 {
            break;
        }
    }
}

/// Ends the child process if the test fails before it exits by itself.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn next_seq(lines: &mut tokio::sync::mpsc::UnboundedReceiver<u64>) -> u64 {
    tokio::time::timeout(Duration::from_secs(20), lines.recv())
        .await
        .expect("the child reports within 20 s")
        .expect("the child is still running")
}

#[tokio::test]
async fn a_second_process_follows_the_file_while_it_is_written() {
    use std::io::BufRead;
    let dir = TempDir::new("follow");
    let bus = isolated().store(dir.url("")).build().await.unwrap();
    for id in 0..30 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    let mut child = KillOnDrop(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["follow_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("EVENTBUS_FOLLOW_DB", dir.url(""))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            // The test harness may print its own text on the same line.
            if let Some((_, seq)) = line.split_once("follow-seq ") {
                let _ = lines_tx.send(seq.trim().parse::<u64>().unwrap());
            }
        }
    });
    // The child reads what exists...
    for want in 1..=30 {
        assert_eq!(next_seq(&mut lines).await, want);
    }
    // ...then follows what this process writes after it started.
    for id in 30..60 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    for want in 31..=60 {
        assert_eq!(next_seq(&mut lines).await, want);
    }
    let status = tokio::task::spawn_blocking(move || child.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn appending_a_stored_event_id_again_adds_nothing() {
    let dir = TempDir::new("same-id");
    let store = SqliteStore::open(&dir.url("")).await.unwrap();
    let first = store.append(old_event(1)).await.unwrap();
    store.append(old_event(2)).await.unwrap();
    let again = store.append(old_event(1)).await.unwrap();
    assert_eq!((first.seq(), again.seq()), (1, 1));
    let next = store.append(old_event(3)).await.unwrap();
    assert_eq!(next.seq(), 3, "a repeated id uses up no seq");
    assert_eq!(again.id(), first.id());
    let topics = store.topics().await.unwrap();
    assert_eq!(topics.len(), 1);
    assert_eq!(
        (topics[0].topic.as_str(), topics[0].count),
        ("order.shipped", 3)
    );
    store.save_checkpoint("b", 2).await.unwrap();
    store.save_checkpoint("a", 1).await.unwrap();
    assert_eq!(
        store.checkpoints().await.unwrap(),
        [("a".to_owned(), 1), ("b".to_owned(), 2)]
    );
    assert!(store.size_bytes().unwrap() > 0);
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_version_1_file_is_migrated_in_place() {
    let dir = TempDir::new("migrate");
    let bus = isolated().store(dir.url("")).build().await.unwrap();
    let sent = bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    bus.shutdown().await.unwrap();
    // Turn the file back into what version 1 wrote.
    raw_conn(&dir.db())
        .execute_batch(
            "DROP TABLE dead_letters; DROP INDEX events_by_idempotency_key; DROP TABLE handled;
             DROP TABLE leases; DROP INDEX events_by_subject; DROP INDEX events_by_stream;
             DROP TABLE snapshots; DROP TABLE scheduled; DROP TABLE sagas;
             ALTER TABLE events DROP COLUMN stream_version;
             ALTER TABLE events DROP COLUMN subject; ALTER TABLE events DROP COLUMN dataschema;
             PRAGMA user_version = 1;",
        )
        .unwrap();

    let store = SqliteStore::open(&dir.url("")).await.unwrap();
    let version: i64 = raw_conn(&dir.db())
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 9);
    let kept: Vec<RawEnvelope> = store
        .query(Default::default())
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(kept[0].id(), sent.id(), "events survive the migration");
    let id = store
        .add_dead_letter(eventbus::store::NewDeadLetter {
            handler: "h".into(),
            envelope: kept[0].clone(),
            error: "e".into(),
            attempts: 1,
        })
        .await
        .unwrap();
    assert_eq!(id, 1);
    store.record_handled(&"h".into(), 1..=1);
    // Writes run in order, so once this one is done the mark is stored.
    store.save_checkpoint("h", 0).await.unwrap();
    assert_eq!(store.handled_after("h", 0).await.unwrap(), [1..=1]);
    store.close().await.unwrap();
}

#[tokio::test]
async fn open_existing_needs_the_file_and_creates_nothing() {
    let dir = TempDir::new("existing");
    let err = eventbus::store::open_existing(&dir.url(""))
        .await
        .err()
        .expect("no file yet");
    assert!(
        matches!(
            err,
            Error::StoreNotFound {
                store: "sqlite",
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("store file {} does not exist", dir.db().display())),
        "{text}"
    );
    assert_eq!(
        std::fs::read_dir(&dir.0).unwrap().count(),
        0,
        "nothing made"
    );
    // The URL is checked before the file is looked for.
    let err = eventbus::store::open_existing(&dir.url("?bogus=1"))
        .await
        .err()
        .expect("unknown option");
    assert!(matches!(err, Error::InvalidStoreUrl { .. }), "{err:?}");

    let created = eventbus::store::open(&dir.url("")).await.unwrap();
    created.close().await.unwrap();
    let existing = eventbus::store::open_existing(&dir.url("")).await.unwrap();
    assert!(existing.admin().unwrap().topics().await.unwrap().is_empty());
    existing.close().await.unwrap();

    let err = eventbus::store::open_existing("memory://")
        .await
        .err()
        .expect("memory:// is never there to find");
    assert!(
        matches!(
            err,
            Error::StoreNotFound {
                store: "memory",
                ..
            }
        ),
        "{err:?}"
    );
}
