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
            .dead_letters(DeadLetterQuery::all())
            .await
            .expect("listed")
    });
    assert!(left.is_empty(), "{left:?}");
}
