//! `eventbus topics`, `eventbus stats` and `eventbus clear`.

mod support;

use eventbus::store::{DeadLetterQuery, NewDeadLetter, Query};
use futures_util::StreamExt;
use serde_json::Value;
use support::{Scratch, assert_error, ndjson, with_store};

fn seed(s: &Scratch) {
    s.publish("order.placed", "1", &[]);
    s.publish("order.placed", "2", &[]);
    s.publish("order.shipped", "3", &[]);
    s.publish("user.created", "4", &[]);
}

#[test]
fn topics_lists_counts_and_first_and_last_times() {
    let s = Scratch::new();
    seed(&s);
    let table = s.ok(&["topics"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["TOPIC", "EVENTS", "FIRST", "LAST"]);
    assert_eq!(rows.len(), 4, "{table}");
    assert_eq!(rows[1][..2], ["order.placed", "2"]);
    assert_eq!(rows[2][..2], ["order.shipped", "1"]);
    assert_eq!(rows[3][..2], ["user.created", "1"]);
    assert!(rows[1][2] < rows[1][3], "first before last: {table}");

    let json = ndjson(&s.ok(&["topics", "--json"]));
    let events = s.history_json(&[]);
    assert_eq!(json.len(), 3);
    assert_eq!(json[0]["topic"], "order.placed");
    assert_eq!(json[0]["count"], 2);
    let millis = |v: &Value| v.as_str().expect("time")[..23].to_owned();
    assert_eq!(millis(&json[0]["first"]), millis(&events[0]["time"]));
    assert_eq!(millis(&json[0]["last"]), millis(&events[1]["time"]));
}

#[test]
fn stats_shows_totals_checkpoints_lag_and_size() {
    let s = Scratch::new();
    seed(&s);
    with_store(&s.url, async |store| {
        store
            .checkpoint_store()
            .unwrap()
            .save_checkpoint("billing", 1)
            .await
            .expect("saved");
        store
            .checkpoint_store()
            .unwrap()
            .save_checkpoint("indexer", 4)
            .await
            .expect("saved");
    });
    let text = s.ok(&["stats"]);
    assert!(text.contains("events:       4 in 3 topic(s)"), "{text}");
    assert!(text.contains("seqs:         1 to 4"), "{text}");
    assert!(
        text.contains("dead letters: 0 (0 waiting for a retry)"),
        "{text}"
    );
    assert!(text.contains("size:"), "{text}");
    let billing: Vec<&str> = text
        .lines()
        .find(|l| l.trim_start().starts_with("billing"))
        .expect("billing row")
        .split_whitespace()
        .collect();
    assert_eq!(billing, ["billing", "1", "3", "0"]);
    let indexer = text.lines().find(|l| l.contains("indexer")).expect("row");
    assert_eq!(
        indexer.split_whitespace().collect::<Vec<_>>(),
        ["indexer", "4", "0", "0"]
    );

    let json: Value = serde_json::from_str(&s.ok(&["stats", "--json"])).expect("json");
    assert_eq!(json["events"], 4);
    assert_eq!(json["topics"], 3);
    assert_eq!(json["newest_seq"], 4);
    assert!(json["size_bytes"].as_u64().expect("size") > 0);
    assert_eq!(json["handlers"][0]["name"], "billing");
    assert_eq!(json["handlers"][0]["lag"], 3);
    assert_eq!(json["handlers"][1]["lag"], 0);
}

#[test]
fn stats_of_a_store_without_handlers_says_so() {
    let s = Scratch::new();
    s.publish("a.b", "1", &[]);
    let text = s.ok(&["stats"]);
    assert!(
        text.contains("handlers:     none has a checkpoint yet"),
        "{text}"
    );
}

#[test]
fn clear_with_yes_deletes_only_what_matches() {
    let s = Scratch::new();
    seed(&s);
    let out = s.ok(&["clear", "order.*", "--yes"]);
    assert_eq!(out.trim(), "deleted 3 event(s) matching `order.*`");
    let left = s.history_json(&[]);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["type"], "user.created");
    let out = s.ok(&["clear", "order.*", "-y"]);
    assert_eq!(out.trim(), "no events match `order.*`; nothing deleted");
    // A new event after a clear never reuses a seq.
    let (seq, _) = s.publish("order.placed", "5", &[]);
    assert_eq!(seq, 5);
}

#[test]
fn clear_without_yes_refuses_when_no_one_can_confirm() {
    let s = Scratch::new();
    seed(&s);
    let out = s
        .cmd()
        .args(["clear", ">"])
        .write_stdin("yes\n")
        .output()
        .expect("runs");
    let e = assert_error(&out, 2);
    assert!(e.contains("stdin is not a terminal; pass --yes"), "{e}");
    assert_eq!(s.history_json(&[]).len(), 4, "nothing was deleted");
}

#[test]
fn stats_counts_dead_letters_per_handler() {
    let s = Scratch::new();
    seed(&s);
    with_store(&s.url, async |store| {
        let mut events = store.query(Query::default());
        let first = events.next().await.expect("one event").expect("readable");
        let second = events.next().await.expect("two events").expect("readable");
        drop(events);
        store
            .checkpoint_store()
            .unwrap()
            .save_checkpoint("billing", 4)
            .await
            .expect("saved");
        for (handler, envelope) in [
            ("billing", &first),
            ("billing", &second),
            ("mailer", &first),
        ] {
            store
                .dead_letter_store()
                .unwrap()
                .add_dead_letter(NewDeadLetter {
                    handler: handler.into(),
                    envelope: envelope.clone(),
                    error: "boom".into(),
                    attempts: 4,
                })
                .await
                .expect("stored");
        }
        let mailer = store
            .dead_letter_store()
            .unwrap()
            .dead_letters(DeadLetterQuery::handler("mailer"))
            .await
            .expect("listed");
        assert!(
            store
                .dead_letter_store()
                .unwrap()
                .request_retry(mailer[0].id)
                .await
                .expect("requested")
        );
    });
    let text = s.ok(&["stats"]);
    assert!(
        text.contains("dead letters: 3 (1 waiting for a retry)"),
        "{text}"
    );
    let row = |name: &str| -> Vec<String> {
        let line = text.lines().find(|l| l.contains(name)).expect("row");
        line.split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(row("billing"), ["billing", "4", "0", "2"]);
    assert_eq!(row("mailer"), ["mailer", "-", "-", "1"]);
    let json: Value = serde_json::from_str(&s.ok(&["stats", "--json"])).expect("json");
    assert_eq!(json["dead_letters"], 3);
    assert_eq!(json["dead_letters_retrying"], 1);
    assert_eq!(json["handlers"][1]["name"], "mailer");
    assert_eq!(json["handlers"][1]["checkpoint"], Value::Null);
    assert_eq!(json["handlers"][1]["dead_letters"], 1);
}

fn sidecars(db: &std::path::Path) -> Vec<String> {
    ["-wal", "-shm"]
        .iter()
        .map(|suffix| format!("{}{suffix}", db.display()))
        .filter(|name| std::path::Path::new(name).exists())
        .collect()
}

#[test]
fn commands_leave_the_db_file_alone_holding_everything() {
    let s = Scratch::new();
    seed(&s);
    assert_eq!(sidecars(&s.path), Vec::<String>::new(), "left by publish");
    for args in [
        &["history"][..],
        &["topics"],
        &["stats"],
        &["dlq", "list"],
        &["export"],
    ] {
        s.ok(args);
        assert_eq!(sidecars(&s.path), Vec::<String>::new(), "left by {args:?}");
    }
    // The .db alone is a complete store.
    let (copy_url, copy) = s.other("copy.db");
    std::fs::copy(&s.path, &copy).expect("copy");
    let mut cmd = support::bin();
    let out = cmd
        .args(["--store", &copy_url, "history", "--json"])
        .output()
        .expect("runs");
    assert_eq!(ndjson(&String::from_utf8_lossy(&out.stdout)).len(), 4);
}

#[test]
fn backup_copies_the_store_into_a_new_file() {
    let s = Scratch::new();
    seed(&s);
    let (copy_url, copy) = s.other("backup.db");
    let out = s.ok(&["backup", copy.to_str().expect("utf-8")]);
    assert!(out.starts_with("backed up"), "{out}");
    let mut cmd = support::bin();
    let out = cmd
        .args(["--store", &copy_url, "history", "--json"])
        .output()
        .expect("runs");
    assert_eq!(
        ndjson(&String::from_utf8_lossy(&out.stdout)),
        s.history_json(&[])
    );

    let again = s
        .cmd()
        .args(["backup", copy.to_str().expect("utf-8")])
        .output()
        .expect("runs");
    assert!(assert_error(&again, 1).contains("exists already"));
    let missing = support::bin()
        .args(["--store", "sqlite:///nonexistent/x.db", "backup", "y.db"])
        .output()
        .expect("runs");
    assert!(assert_error(&missing, 1).contains("does not exist"));
}
