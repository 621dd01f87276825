//! `eventbus publish` in all its forms, then `eventbus history` as a table
//! and as NDJSON, with every filter.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Scratch, bin, datas, parse_published};

#[test]
fn publish_prints_id_and_seq_and_creates_the_store() {
    let s = Scratch::new();
    assert!(!s.path.exists());
    let (seq, id) = s.publish("order.placed", r#"{"id":7,"cents":1250}"#, &[]);
    assert_eq!(seq, 1);
    assert!(s.path.exists());
    let (seq2, id2) = s.publish("order.placed", r#"{"id":8}"#, &[]);
    assert_eq!(seq2, 2);
    assert_ne!(id, id2);
    let events = s.history_json(&[]);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["id"], id);
    assert_eq!(events[0]["seq"], "1");
    assert_eq!(events[0]["specversion"], "1.0");
    assert_eq!(events[0]["type"], "order.placed");
    assert_eq!(events[0]["source"], "eventbus-cli");
    assert_eq!(events[0]["datacontenttype"], "application/json");
    assert_eq!(events[0]["data"], json!({"id": 7, "cents": 1250}));
    // Ids are UUID v7.
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "7");
}

#[test]
fn data_comes_from_a_file_or_stdin() {
    let s = Scratch::new();
    let file = s.file(
        "order.json",
        "{\n  \"id\": 1,\n  \"items\": [\"a\", \"b\"]\n}\n",
    );
    s.publish("order.placed", &format!("@{}", file.display()), &[]);
    let out = s
        .cmd()
        .args(["publish", "order.placed", "--data", "-"])
        .write_stdin(r#"{"id": 2}"#)
        .output()
        .expect("runs");
    support::assert_success(&out, &["publish", "--data", "-"]);
    let (seq, _) = parse_published(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(seq, 2);
    assert_eq!(
        datas(&s.history_json(&[])),
        [json!({"id": 1, "items": ["a", "b"]}), json!({"id": 2})]
    );
}

#[test]
fn metadata_travels_as_cloudevents_attributes() {
    let s = Scratch::new();
    let (_, id) = s.publish(
        "order.placed",
        "42",
        &[
            "--source",
            "shop",
            "--correlation-id",
            "req-456",
            "--idempotency-key",
            "order-7-placed",
            "--header",
            "tenant=acme",
            "--header",
            "traceparent=00-abc=def",
        ],
    );
    let events = s.history_json(&[]);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["id"], id);
    assert_eq!(e["source"], "shop");
    assert_eq!(e["correlationid"], "req-456");
    assert_eq!(e["idempotencykey"], "order-7-placed");
    assert_eq!(e["tenant"], "acme");
    assert_eq!(e["traceparent"], "00-abc=def");
    assert_eq!(e["data"], 42);
}

#[test]
fn the_store_flag_wins_over_the_environment() {
    let s = Scratch::new();
    let (other_url, other_path) = s.other("other.db");
    s.cmd()
        .args(["--store", &other_url, "publish", "a.b", "--data", "1"])
        .assert()
        .success();
    assert!(other_path.exists());
    assert!(!s.path.exists());
    // The flag also goes after the subcommand.
    let out = bin()
        .args(["history", "--json", "--store", &other_url])
        .output()
        .expect("runs");
    assert_eq!(
        support::ndjson(&String::from_utf8_lossy(&out.stdout)).len(),
        1
    );
}

#[test]
fn history_prints_a_table_for_people() {
    let s = Scratch::new();
    s.publish(
        "order.placed",
        r#"{"id":7}"#,
        &["--correlation-id", "req-1"],
    );
    s.publish("order.shipped", r#"{"id":7}"#, &["--source", "warehouse"]);
    let table = s.ok(&["history"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "SEQ",
            "TIME",
            "TOPIC",
            "VER",
            "SOURCE",
            "CORRELATION",
            "DATA"
        ]
    );
    let first: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(first[0], "1");
    assert_eq!(first[2], "order.placed");
    assert_eq!(first[3], "1", "the stored version");
    assert_eq!(first[4], "eventbus-cli");
    assert_eq!(first[5], "req-1");
    assert_eq!(first[6], r#"{"id":7}"#);
    let second: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        second[..5],
        ["2", second[1], "order.shipped", "1", "warehouse"]
    );
    // Columns line up: every row starts its TOPIC where the header does.
    let topic_at = lines[0].find("TOPIC").expect("header");
    assert_eq!(lines[1].find("order.placed"), Some(topic_at));
    assert_eq!(lines[2].find("order.shipped"), Some(topic_at));
}

#[test]
fn history_of_an_empty_store_says_so() {
    let s = Scratch::new();
    s.publish("a.b", "1", &[]);
    let out = s.cmd().args(["history", "x.>"]).output().expect("runs");
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "no events match"
    );
}

#[test]
fn history_filters_by_pattern_source_correlation_limit_and_order() {
    let s = Scratch::new();
    s.publish(
        "order.placed",
        "1",
        &["--source", "shop", "--correlation-id", "r1"],
    );
    s.publish(
        "order.shipped",
        "2",
        &["--source", "warehouse", "--correlation-id", "r1"],
    );
    s.publish("order.cancelled.by_customer", "3", &["--source", "shop"]);
    s.publish(
        "user.created",
        "4",
        &["--source", "accounts", "--correlation-id", "r2"],
    );
    let data = |args: &[&str]| datas(&s.history_json(args));
    assert_eq!(data(&[]), [json!(1), json!(2), json!(3), json!(4)]);
    assert_eq!(data(&["order.*"]), [json!(1), json!(2)]);
    assert_eq!(data(&["order.>"]), [json!(1), json!(2), json!(3)]);
    assert_eq!(data(&["*.created"]), [json!(4)]);
    assert_eq!(data(&["--source", "shop"]), [json!(1), json!(3)]);
    assert_eq!(data(&["--correlation-id", "r1"]), [json!(1), json!(2)]);
    assert_eq!(
        data(&["order.>", "--source", "shop", "--correlation-id", "r1"]),
        [json!(1)]
    );
    assert_eq!(data(&["--limit", "2"]), [json!(1), json!(2)]);
    assert_eq!(
        data(&["--reverse"]),
        [json!(4), json!(3), json!(2), json!(1)]
    );
    assert_eq!(data(&["--reverse", "--limit", "2"]), [json!(4), json!(3)]);
    assert_eq!(data(&["order.>", "--reverse", "--limit", "1"]), [json!(3)]);
    assert!(data(&["--source", "nobody"]).is_empty());
}

#[test]
fn history_filters_by_time_relative_and_rfc3339() {
    let s = Scratch::new();
    s.publish("tick", r#""old""#, &[]);
    std::thread::sleep(Duration::from_millis(2100));
    s.publish("tick", r#""new""#, &[]);
    let data = |args: &[&str]| datas(&s.history_json(args));
    assert_eq!(data(&["--since", "1h"]), [json!("old"), json!("new")]);
    assert_eq!(data(&["--since", "1s"]), [json!("new")]);
    assert_eq!(data(&["--until", "1s"]), [json!("old")]);
    assert!(data(&["--until", "1h"]).is_empty());
    assert!(data(&["--since", "now"]).is_empty());

    let events = s.history_json(&[]);
    let (old, new) = (
        events[0]["time"].as_str().expect("time"),
        events[1]["time"].as_str().expect("time"),
    );
    assert_eq!(data(&["--since", old]), [json!("old"), json!("new")]);
    assert_eq!(data(&["--since", new]), [json!("new")]);
    assert_eq!(data(&["--until", new]), [json!("old")]);
    assert_eq!(data(&["--since", old, "--until", new]), [json!("old")]);
    // Any UTC offset names the same instant.
    assert_eq!(data(&["--since", "2000-01-01T01:00:00+01:00"]).len(), 2);
}

#[test]
fn a_repeated_idempotency_key_stores_nothing_new() {
    let s = Scratch::new();
    let first = s.ok(&[
        "publish",
        "order.placed",
        "--data",
        "1",
        "--idempotency-key",
        "k1",
    ]);
    let again = s.ok(&[
        "publish",
        "order.placed",
        "--data",
        "2",
        "--idempotency-key",
        "k1",
    ]);
    assert!(
        first.starts_with("published order.placed seq=1 "),
        "{first}"
    );
    assert!(
        again.starts_with("already published order.placed seq=1 "),
        "{again}"
    );
    assert_eq!(parse_published(&first), parse_published(&again));
    let other = s.ok(&[
        "publish",
        "order.placed",
        "--data",
        "3",
        "--idempotency-key",
        "k2",
    ]);
    assert!(other.starts_with("published order.placed seq="), "{other}");
    assert_eq!(datas(&s.history_json(&[])), [json!(1), json!(3)]);
}

/// The `"data":...` member of an NDJSON line, as text.
fn data_text(line: &str) -> &str {
    let start = line.find(r#""data":"#).expect("a data member") + r#""data":"#.len();
    // `seq` always follows `data`.
    let end = start + line[start..].find(r#","seq":"#).expect("a seq member");
    &line[start..end]
}

#[test]
fn data_is_stored_as_written_byte_for_byte() {
    let s = Scratch::new();
    // Parsed and written again, the keys would be sorted, the big number
    // rounded to 1.2345678901234568e+22 and the repeated key merged.
    let written = r#"{"b":1,"a":12345678901234567890123,"b":2.50}"#;
    s.publish("order.placed", &format!("  {written}\n"), &[]);
    let history = s.ok(&["history", "--json"]);
    assert_eq!(data_text(history.trim_end()), written, "{history}");
    let export = s.ok(&["export"]);
    assert_eq!(data_text(export.trim_end()), written, "{export}");
    let asked = r#"{"b":1,"a":12345678901234567890123}"#;
    s.publish("order.placed", asked, &["--correlation-id", "c"]);
    let history = s.ok(&["history", "--json", "--correlation-id", "c"]);
    assert_eq!(data_text(history.trim_end()), asked, "{history}");
}

#[test]
fn data_across_lines_still_prints_one_event_a_line() {
    let s = Scratch::new();
    let file = s.file(
        "pretty.json",
        "{\n  \"id\": 1,\r\n  \"note\": \"a\\nb\"\n}\n",
    );
    s.publish("order.placed", &format!("@{}", file.display()), &[]);
    let history = s.ok(&["history", "--json"]);
    assert_eq!(history.lines().count(), 1, "{history}");
    assert_eq!(
        data_text(history.trim_end()),
        r#"{   "id": 1,    "note": "a\nb" }"#
    );
    let table = s.ok(&["history"]);
    assert_eq!(table.lines().count(), 2, "{table}");
    // An export of it imports again.
    let dump = s.file("dump.ndjson", &s.ok(&["export"]));
    let (copy_url, _) = s.other("copy.db");
    let out = bin()
        .args(["--store", &copy_url, "import", dump.to_str().expect("path")])
        .output()
        .expect("runs");
    support::assert_success(&out, &["import"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 1 new event(s)"));
}

#[test]
fn subjects_are_published_filtered_and_kept_with_typed_extensions_through_import() {
    let s = Scratch::new();
    s.publish("order.placed", r#"{"id":7}"#, &["--subject", "order-7"]);
    s.publish("order.placed", r#"{"id":8}"#, &["--subject", "order-8"]);
    let seven = s.history_json(&["--subject", "order-7"]);
    assert_eq!(seven.len(), 1);
    assert_eq!(seven[0]["subject"], "order-7");
    assert_eq!(seven[0]["data"]["id"], 7);

    // An event from elsewhere with a spec example id, a schema and typed
    // extensions comes out of export as it went into import.
    let line = r#"{"specversion":"1.0","id":"A234-1234-1234","source":"/w/3","type":"order.shipped","subject":"order-9","dataschema":"urn:s","time":"2026-01-02T03:04:05Z","datacontenttype":"application/json","data":{"id":9},"priority":5,"flag":true}"#;
    let file = s.file("in.ndjson", &format!("{line}\n"));
    s.ok(&["import", file.to_str().expect("utf-8")]);
    let out = s.ok(&["export", "order.shipped"]);
    let mut exported: serde_json::Value = serde_json::from_str(out.trim_end()).expect("json");
    let map = exported.as_object_mut().expect("object");
    for added in ["seq", "eventversion"] {
        map.remove(added);
    }
    assert_eq!(
        exported,
        serde_json::from_str::<serde_json::Value>(line).expect("json")
    );
}

#[test]
fn the_stored_version_is_published_and_shown() {
    let s = Scratch::new();
    s.publish("order.placed", r#"{"id":1}"#, &["--event-version", "2"]);
    let json = s.history_json(&[]);
    assert_eq!(json[0]["eventversion"], 2);
    let table = s.ok(&["history"]);
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .expect("row")
        .split_whitespace()
        .collect();
    assert_eq!(row[3], "2", "{table}");
    let out = bin()
        .args(["--store", &s.url, "publish", "order.placed", "--data", "1"])
        .args(["--event-version", "0"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
}

#[test]
fn scopes_are_published_and_filtered_below_their_path() {
    let s = Scratch::new();
    s.publish("invoice.sent", "1", &["--scope", "tenant-a/eu"]);
    s.publish("invoice.sent", "2", &["--scope", "tenant-ab"]);
    s.publish("invoice.sent", "3", &[]);
    let a = s.history_json(&["--scope", "tenant-a"]);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["scope"], "tenant-a/eu");
    assert_eq!(a[0]["data"], 1);
    assert_eq!(s.history_json(&[]).len(), 3);
    let out = bin()
        .args(["--store", &s.url, "publish", "invoice.sent", "--data", "4"])
        .args(["--header", "scope=tenant-b"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--scope"));
    let bad = bin()
        .args(["--store", &s.url, "history", "--scope", "a//b"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`a//b` is invalid"));
}

#[test]
fn scheduled_events_are_listed_and_cancelled() {
    let s = Scratch::new();
    let out = s.ok(&[
        "publish",
        "reminder.due",
        "--data",
        r#"{"id":1}"#,
        "--deliver-after",
        "2h",
    ]);
    assert!(out.starts_with("scheduled reminder.due id="), "{out}");
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
    assert_eq!(line["envelope"]["type"], "reminder.due");
    let table = s.ok(&["scheduled", "list"]);
    assert!(table.contains(&id) && table.contains("DUE"), "{table}");
    let stats: serde_json::Value = serde_json::from_str(&s.ok(&["stats", "--json"])).expect("json");
    assert_eq!(stats["scheduled"], 1);
    assert!(s.ok(&["stats"]).contains("scheduled:    1 (next due "));
    s.ok(&["scheduled", "cancel", &id]);
    assert_eq!(s.ok(&["scheduled", "list", "--json"]), "");
    let again = bin()
        .args(["--store", &s.url, "scheduled", "cancel", &id])
        .output()
        .expect("runs");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no scheduled event"));
}
