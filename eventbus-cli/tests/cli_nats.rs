//! The CLI against a NATS JetStream store: publish, history, topics,
//! stats, dead letters and clear, in a stream of the test's own.

mod support;

use eventbus::store::{DeadLetterQuery, NewDeadLetter, Query};
use futures_util::StreamExt;
use support::{Scratch, ndjson, with_store};

/// A scratch directory whose store is a fresh stream on the shared NATS
/// server; the stream and its dead-letter bucket go when it is dropped.
struct NatsScratch {
    scratch: Scratch,
    stream: String,
}

impl NatsScratch {
    fn new(test: &str) -> Self {
        let server = std::env::var("EVENTBUS_NATS_URL")
            .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
        let tag = uuid_tag();
        let stream = format!("CLI_{test}_{tag}");
        let mut scratch = Scratch::new();
        scratch.url = format!("{server}?stream={stream}&prefix=cli_{test}_{tag}");
        NatsScratch { scratch, stream }
    }
}

fn uuid_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{:x}{}", nanos, std::process::id())
}

impl Drop for NatsScratch {
    fn drop(&mut self) {
        let server = std::env::var("EVENTBUS_NATS_URL")
            .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            if let Ok(client) = async_nats::connect(server.trim_start_matches("nats://")).await {
                let js = async_nats::jetstream::new(client);
                let _ = js.delete_stream(&self.stream).await;
                let _ = js
                    .delete_key_value(format!("{}_dead_letters", self.stream))
                    .await;
            }
        });
    }
}

#[test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
fn nats_publish_history_topics_and_stats() {
    let n = NatsScratch::new("basics");
    let s = &n.scratch;
    assert_eq!(s.publish("order.placed", r#"{"id":1}"#, &[]).0, 1);
    assert_eq!(
        s.publish("order.placed", r#"{"id":2}"#, &["--correlation-id", "c-2"])
            .0,
        2
    );
    assert_eq!(s.publish("order.shipped", r#"{"id":1}"#, &[]).0, 3);

    let all = s.history_json(&[]);
    assert_eq!(all.len(), 3);
    assert_eq!(all[1]["data"], serde_json::json!({"id": 2}));
    assert_eq!(all[1]["correlationid"], "c-2");
    let shipped = s.history_json(&["order.shipped"]);
    assert_eq!(shipped.len(), 1);
    assert_eq!(shipped[0]["seq"], "3");

    let topics = ndjson(&s.ok(&["topics", "--json"]));
    assert_eq!(topics.len(), 2);
    assert_eq!(topics[0]["topic"], "order.placed");
    assert_eq!(topics[0]["count"], 2);
    let stats = s.ok(&["stats"]);
    assert!(stats.contains("events:       3 in 2 topic(s)"), "{stats}");

    s.ok(&["clear", "order.shipped", "--yes"]);
    assert_eq!(s.history_json(&[]).len(), 2);
}

#[test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
fn nats_dead_letters_list_show_and_purge() {
    let n = NatsScratch::new("dlq");
    let s = &n.scratch;
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

/// Whether the server has a stream by this name.
fn stream_exists(name: &str) -> bool {
    let server =
        std::env::var("EVENTBUS_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = async_nats::connect(server.trim_start_matches("nats://"))
            .await
            .expect("connect to NATS");
        let js = async_nats::jetstream::new(client);
        match js.get_stream(name).await {
            Ok(_) => true,
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains("stream not found"),
                    "looking up {name}: {text}"
                );
                false
            }
        }
    })
}

#[test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
fn nats_read_commands_on_a_missing_stream_create_nothing() {
    let n = NatsScratch::new("missing");
    let s = &n.scratch;
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
            e.contains(&format!("stream `{}` does not exist on nats://", n.stream))
                && e.contains("check `?stream=`"),
            "{args:?}: {e}"
        );
    }
    assert!(!stream_exists(&n.stream), "a read created the stream");
    assert!(
        !stream_exists(&format!("KV_{}_dead_letters", n.stream)),
        "a read created the dead-letter bucket"
    );
}

#[test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
fn nats_dead_letter_commands_without_a_bucket_find_none_and_create_none() {
    let n = NatsScratch::new("nobucket");
    let s = &n.scratch;
    s.publish("order.placed", r#"{"id":7}"#, &[]);
    let bucket = format!("KV_{}_dead_letters", n.stream);
    assert!(stream_exists(&bucket), "publishing makes the bucket");
    // As left by an older eventbus, or by someone tidying the server.
    let server =
        std::env::var("EVENTBUS_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let client = async_nats::connect(server.trim_start_matches("nats://"))
                .await
                .expect("connect to NATS");
            async_nats::jetstream::new(client)
                .delete_stream(&bucket)
                .await
                .expect("bucket deleted");
        });

    let out = s.cmd().args(["dlq", "list"]).output().expect("runs");
    support::assert_success(&out, &["dlq", "list"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no dead letters"));
    assert!(ndjson(&s.ok(&["dlq", "list", "--json"])).is_empty());
    assert!(
        s.ok(&["dlq", "purge", "--yes"])
            .contains("no dead letters; nothing deleted")
    );
    for args in [["dlq", "show", "1"], ["dlq", "retry", "1"]] {
        let out = s.cmd().args(args).output().expect("runs");
        let e = support::assert_error(&out, 1);
        assert!(e.contains("there is no dead letter 1"), "{args:?}: {e}");
    }
    let stats = s.ok(&["stats"]);
    assert!(stats.contains("dead letters: 0"), "{stats}");
    assert_eq!(s.history_json(&[]).len(), 1);
    assert!(!stream_exists(&bucket), "a read made the bucket again");
}

#[test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
fn nats_an_event_over_max_payload_is_refused_naming_the_limit() {
    let n = NatsScratch::new("payload");
    let s = &n.scratch;
    // nats-server's default max_payload is 1 MiB, headers included.
    let big = format!("\"{}\"", "x".repeat(1024 * 1024));
    let file = s.file("big.json", &big);
    let out = s
        .cmd()
        .args(["publish", "a.b", "--data", &format!("@{}", file.display())])
        .output()
        .expect("runs");
    let e = support::assert_error(&out, 1);
    assert!(
        e.contains("max payload size exceeded") && e.contains("limit of 1048576"),
        "{e}"
    );
    assert!(s.history_json(&[]).is_empty());
}

#[test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
fn nats_console_pages_and_live_feed() {
    let n = NatsScratch::new("console");
    // A runtime of its own: the scratch cleans up with one when dropped.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(support::console::every_page_works(&n.scratch));
}

#[test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
fn nats_console_never_shows_the_password() {
    let mut n = NatsScratch::new("console_secret");
    n.scratch.url = n
        .scratch
        .url
        .replacen("nats://", "nats://ops:s3cret-pw@", 1);
    n.scratch.publish("order.placed", r#"{"id":1}"#, &[]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let console = support::console::Console::start(&n.scratch.url, &[]);
        for path in [
            "/",
            "/history",
            "/events/1",
            "/topics",
            "/handlers",
            "/dead-letters",
        ] {
            let page = console.get(path, &[]).await.expect(200);
            assert!(page.body.contains("nats://"), "{path}: {}", page.body);
            assert!(
                !page.body.contains("s3cret-pw"),
                "{path} shows the password"
            );
        }
    });
}
