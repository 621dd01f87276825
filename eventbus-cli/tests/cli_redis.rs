//! The CLI against a Redis store: publish, history, tail, topics, stats,
//! dead letters, scheduled events, clear, export and import, under a key
//! prefix of the test's own; commands that only read create nothing.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use eventbus::store::{DeadLetterQuery, NewDeadLetter, Query};
use futures_util::StreamExt;
use support::{Scratch, ndjson, with_store};

fn server() -> String {
    std::env::var("EVENTBUS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A scratch directory whose store is a fresh key prefix on the shared
/// Redis server; every key under it goes when it is dropped.
struct RedisScratch {
    scratch: Scratch,
    prefix: String,
}

impl RedisScratch {
    fn new(test: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let prefix = format!("cli_{test}_{nanos:x}{}", std::process::id());
        let mut scratch = Scratch::new();
        scratch.url = format!("{}?prefix={prefix}", server());
        RedisScratch { scratch, prefix }
    }

    fn keys(&self) -> Vec<String> {
        let mut conn = redis::Client::open(server())
            .and_then(|c| c.get_connection())
            .expect("connect to Redis");
        redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query(&mut conn)
            .expect("KEYS")
    }
}

impl Drop for RedisScratch {
    fn drop(&mut self) {
        let Ok(mut conn) = redis::Client::open(server()).and_then(|c| c.get_connection()) else {
            return;
        };
        let keys = self.keys();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

#[test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
fn redis_publish_history_topics_stats_and_clear() {
    let r = RedisScratch::new("basics");
    let s = &r.scratch;
    let (first, _) = s.publish("order.placed", r#"{"id":1}"#, &[]);
    let (second, _) = s.publish("order.placed", r#"{"id":2}"#, &["--correlation-id", "c-2"]);
    let (third, _) = s.publish("order.shipped", r#"{"id":1}"#, &[]);
    assert!(first < second && second < third);

    let all = s.history_json(&[]);
    assert_eq!(all.len(), 3);
    assert_eq!(all[1]["data"], serde_json::json!({"id": 2}));
    assert_eq!(all[1]["correlationid"], "c-2");
    let shipped = s.history_json(&["order.shipped"]);
    assert_eq!(shipped.len(), 1);
    assert_eq!(shipped[0]["seq"], third.to_string());
    let newest = s.history_json(&["--reverse", "--limit", "1"]);
    assert_eq!(newest[0]["seq"], third.to_string());

    let topics = ndjson(&s.ok(&["topics", "--json"]));
    assert_eq!(topics.len(), 2);
    assert_eq!(topics[0]["topic"], "order.placed");
    assert_eq!(topics[0]["count"], 2);
    let stats = s.ok(&["stats"]);
    assert!(stats.contains("events:       3 in 2 topic(s)"), "{stats}");

    s.ok(&["clear", "order.shipped", "--yes"]);
    assert_eq!(s.history_json(&[]).len(), 2);
}

/// Kills the child when dropped, so a failing test leaves no `tail`.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
fn redis_tail_follows_what_others_publish() {
    let r = RedisScratch::new("tail");
    let s = &r.scratch;
    s.publish("order.placed", r#"{"id":1}"#, &[]);
    let mut tail = Killed(
        std::process::Command::new(assert_cmd::cargo::cargo_bin("eventbus"))
            .env("EVENTBUS_URL", &s.url)
            .args(["tail", "order.>", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tail starts"),
    );
    let stdout = tail.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(Ok(line)) = BufReader::new(stdout).lines().next() {
            let _ = tx.send(line);
        }
    });
    // The tail starts after the newest event it finds, so publish until it
    // prints one: the first may come before it has looked.
    let mut line = None;
    for id in 2..60 {
        s.publish("order.shipped", &format!(r#"{{"id":{id}}}"#), &[]);
        if let Ok(got) = rx.recv_timeout(std::time::Duration::from_millis(500)) {
            line = Some(got);
            break;
        }
    }
    let line = line.expect("the tail printed an event within 30 s");
    let event: serde_json::Value = serde_json::from_str(&line).expect("json");
    assert_eq!(event["type"], "order.shipped");
    assert!(
        event["data"]["id"].as_u64().is_some_and(|id| id >= 2),
        "{event}"
    );
}

#[test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
fn redis_dead_letters_list_show_and_purge() {
    let r = RedisScratch::new("dlq");
    let s = &r.scratch;
    s.publish("order.placed", r#"{"id":7}"#, &[]);
    let id = with_store(&s.url, async |store| {
        let env = store
            .query(Query::default())
            .next()
            .await
            .expect("one event")
            .expect("readable");
        store
            .dead_letter_store()
            .unwrap()
            .add_dead_letter(NewDeadLetter {
                handler: "billing".into(),
                envelope: env,
                error: "card declined".into(),
                attempts: 4,
            })
            .await
            .expect("stored")
    });
    let list = s.ok(&["dlq", "list"]);
    assert!(
        list.contains("billing") && list.contains("card declined"),
        "{list}"
    );
    let show = s.ok(&["dlq", "show", &id.to_string()]);
    assert!(
        show.contains("\"id\":7") || show.contains("\"id\": 7"),
        "{show}"
    );
    s.ok(&["dlq", "purge", "--handler", "billing", "--yes"]);
    let left = with_store(&s.url, async |store| {
        store
            .dead_letter_store()
            .unwrap()
            .dead_letters(DeadLetterQuery::all())
            .await
            .expect("listed")
    });
    assert!(left.is_empty(), "{left:?}");
}

#[test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
fn redis_export_then_import_into_another_prefix_keeps_every_event() {
    let from = RedisScratch::new("export");
    let to = RedisScratch::new("import");
    from.scratch
        .publish("order.placed", r#"{"id":1}"#, &["--idempotency-key", "k-1"]);
    from.scratch.publish("order.shipped", r#"{"id":1}"#, &[]);
    let dump = from.scratch.ok(&["export"]);
    let file = from.scratch.file("all.ndjson", &dump);
    let file = file.to_str().expect("path");
    let out = to.scratch.ok(&["import", file]);
    assert!(out.contains("imported 2 new event(s)"), "{out}");
    let (a, b) = (from.scratch.history_json(&[]), to.scratch.history_json(&[]));
    let strip = |events: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        events
            .into_iter()
            .map(|mut e| {
                e.as_object_mut().expect("object").remove("seq");
                e
            })
            .collect()
    };
    assert_eq!(strip(b), strip(a), "same ids, times, data and metadata");
    // Within the duplicate window, importing again adds nothing.
    let again = to.scratch.ok(&["import", file]);
    assert!(again.contains("imported 0 new event(s)"), "{again}");
}

#[test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
fn redis_scheduled_events_are_listed_and_cancelled() {
    let r = RedisScratch::new("scheduled");
    let s = &r.scratch;
    let out = s.ok(&[
        "publish",
        "reminder.due",
        "--data",
        r#"{"id":1}"#,
        "--deliver-after",
        "2h",
    ]);
    let id = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("id="))
        .expect("an id")
        .to_owned();
    assert!(
        s.history_json(&[]).is_empty(),
        "not in history before it is due"
    );
    let listed = s.ok(&["scheduled", "list", "--json"]);
    let line: serde_json::Value = serde_json::from_str(listed.trim()).expect("json");
    assert_eq!(line["envelope"]["id"], id.as_str());
    assert_eq!(line["envelope"]["data"], serde_json::json!({"id": 1}));
    let stats: serde_json::Value = serde_json::from_str(&s.ok(&["stats", "--json"])).expect("json");
    assert_eq!(stats["scheduled"], 1);
    s.ok(&["scheduled", "cancel", &id]);
    assert_eq!(s.ok(&["scheduled", "list", "--json"]), "");
    assert!(
        !r.keys().iter().any(|k| k.contains(":scheduled")),
        "cancelling leaves nothing scheduled: {:?}",
        r.keys()
    );
}

#[test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
fn redis_read_commands_on_a_missing_prefix_create_nothing() {
    let r = RedisScratch::new("missing");
    let s = &r.scratch;
    let commands: [&[&str]; 13] = [
        &["history"],
        &["history", "--json"],
        &["tail"],
        &["topics"],
        &["stats"],
        &["export"],
        &["replay", ">", "--since", "1h"],
        &["replay", ">", "--since", "1h", "--to-handler", "b", "--yes"],
        &["clear", ">", "--yes"],
        &["dlq", "list"],
        &["dlq", "show", "1"],
        &["dlq", "retry", "1"],
        &["dlq", "purge", "--yes"],
    ];
    for args in commands {
        let out = s.cmd().args(args).output().expect("runs");
        let e = support::assert_error(&out, 1);
        assert!(
            e.contains(&format!("no stream `{}:events` on redis://", r.prefix))
                && e.contains("check `?prefix=`"),
            "{args:?}: {e}"
        );
    }
    assert!(r.keys().is_empty(), "a read created {:?}", r.keys());
}

#[test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
fn redis_console_pages_and_live_feed() {
    let r = RedisScratch::new("console");
    // A runtime of its own: the scratch cleans up with one when dropped.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(support::console::every_page_works(&r.scratch));
}
