//! `eventbus export` and `eventbus import`: history moves between stores
//! unchanged, and importing twice adds nothing.

mod support;

use serde_json::{Value, json};
use support::{Scratch, assert_error, assert_success, bin, ndjson};

/// Everything but the seq, which the receiving store assigns.
fn without_seq(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.as_object_mut().expect("object").remove("seq");
            e
        })
        .collect()
}

fn seed(s: &Scratch) {
    s.publish(
        "order.placed",
        r#"{"id":1}"#,
        &["--correlation-id", "r1", "--header", "tenant=acme"],
    );
    s.publish("order.shipped", r#"{"id":1}"#, &["--source", "warehouse"]);
    s.publish(
        "user.created",
        r#"{"name":"ada"}"#,
        &["--idempotency-key", "u-ada"],
    );
    s.publish("order.placed", r#"{"id":2}"#, &[]);
}

#[test]
fn export_then_import_into_a_new_store_keeps_every_event() {
    let s = Scratch::new();
    seed(&s);
    let out = s.cmd().arg("export").output().expect("runs");
    assert_success(&out, &["export"]);
    // Only the summary on stderr: no progress bar in a pipe.
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "exported 4 event(s)\n"
    );
    let dump = s.file("all.ndjson", &String::from_utf8(out.stdout).expect("utf-8"));

    let (copy_url, copy_path) = s.other("copy.db");
    let file = dump.to_str().expect("path");
    let out = bin()
        .args(["--store", &copy_url, "import", file])
        .output()
        .expect("runs");
    assert_success(&out, &["import"]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 4 new event(s)"));
    assert!(copy_path.exists());

    let original = s.history_json(&[]);
    let copy = ndjson(&String::from_utf8_lossy(
        &bin()
            .args(["--store", &copy_url, "history", "--json"])
            .output()
            .expect("runs")
            .stdout,
    ));
    assert_eq!(
        copy, original,
        "same ids, seqs, times, data and metadata, in order"
    );
    assert_eq!(copy[0]["tenant"], "acme");

    // Twice adds nothing.
    let out = bin()
        .args(["--store", &copy_url, "import", file])
        .output()
        .expect("runs");
    assert_success(&out, &["import again"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("imported 0 new event(s) from"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 already present"));
    let again = bin()
        .args(["--store", &copy_url, "history", "--json"])
        .output()
        .expect("runs");
    assert_eq!(ndjson(&String::from_utf8_lossy(&again.stdout)), original);
}

#[test]
fn import_reads_stdin_and_adds_only_what_is_missing() {
    let s = Scratch::new();
    seed(&s);
    let placed = s.ok(&["export", "order.placed"]);
    let all = s.ok(&["export"]);
    let (copy_url, _) = s.other("copy.db");
    let import = |input: &str| {
        let out = bin()
            .args(["--store", &copy_url, "import", "-"])
            .write_stdin(input.to_owned())
            .output()
            .expect("runs");
        assert_success(&out, &["import", "-"]);
        String::from_utf8(out.stdout).expect("utf-8")
    };
    assert!(import(&placed).contains("imported 2 new event(s) from stdin; 0 already present"));
    assert!(import(&all).contains("imported 2 new event(s) from stdin; 2 already present"));
    let copy = ndjson(&String::from_utf8_lossy(
        &bin()
            .args(["--store", &copy_url, "history", "--json"])
            .output()
            .expect("runs")
            .stdout,
    ));
    // The ids arrive in the order they were imported; seqs are the copy's own.
    let ids = |events: &[Value]| events.iter().map(|e| e["id"].clone()).collect::<Vec<_>>();
    let original = s.history_json(&[]);
    assert_eq!(
        ids(&copy),
        [&original[0], &original[3], &original[1], &original[2]].map(|e| e["id"].clone())
    );
    let seqs: Vec<u64> = copy
        .iter()
        .map(|e| e["seq"].as_str().expect("seq").parse().expect("number"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] == 1,
        "{seqs:?}"
    );
    let mut sorted = without_seq(&copy);
    sorted.sort_by_key(|e| e["id"].as_str().map(str::to_owned));
    assert_eq!(sorted, without_seq(&original));
}

#[test]
fn export_filters_by_pattern_and_time() {
    let s = Scratch::new();
    seed(&s);
    let orders = ndjson(&s.ok(&["export", "order.>"]));
    assert_eq!(orders.len(), 3);
    assert!(
        orders
            .iter()
            .all(|e| e["type"].as_str().expect("type").starts_with("order."))
    );
    assert_eq!(ndjson(&s.ok(&["export", "--since", "1h"])).len(), 4);
    assert!(ndjson(&s.ok(&["export", "--until", "1h"])).is_empty());
    let shipped = ndjson(&s.ok(&["export", "--source", "warehouse"]));
    assert_eq!(shipped.len(), 1);
    assert_eq!(shipped[0]["data"], json!({"id": 1}));
}

#[test]
fn a_bad_line_is_named_and_what_came_before_is_kept() {
    let s = Scratch::new();
    seed(&s);
    let mut text = s.ok(&["export", "order.placed"]);
    text.push('\n'); // blank lines are skipped
    text.push_str("{\"specversion\": \"1.0\", oops}\n");
    let bad = s.file("bad.ndjson", &text);
    let (copy_url, _) = s.other("copy.db");
    let out = bin()
        .args(["--store", &copy_url, "import", bad.to_str().expect("path")])
        .output()
        .expect("runs");
    let e = assert_error(&out, 1);
    assert!(
        e.contains("bad.ndjson line 4, column 24: not JSON: key must be a string"),
        "{e}"
    );
    assert!(e.contains("2 new event(s) before it were imported"), "{e}");

    let missing = s.file(
        "missing.ndjson",
        "{\"specversion\":\"1.0\",\"source\":\"x\",\"type\":\"a.b\"}\n",
    );
    let out = bin()
        .args([
            "--store",
            &copy_url,
            "import",
            missing.to_str().expect("path"),
        ])
        .output()
        .expect("runs");
    let e = assert_error(&out, 1);
    assert!(
        e.contains("missing.ndjson line 1: not an event: CloudEvents attribute `id` is missing"),
        "{e}"
    );

    let out = bin()
        .args(["--store", &copy_url, "history", "--json"])
        .output()
        .expect("runs");
    assert_eq!(ndjson(&String::from_utf8_lossy(&out.stdout)).len(), 2);

    let out = bin()
        .args(["--store", &copy_url, "import", "/nonexistent/file.ndjson"])
        .output()
        .expect("runs");
    let e = assert_error(&out, 1);
    assert!(e.contains("cannot read `/nonexistent/file.ndjson`"), "{e}");
}

#[test]
fn import_skips_a_byte_order_mark_at_the_start() {
    let s = Scratch::new();
    seed(&s);
    let with_bom = format!("\u{feff}{}", s.ok(&["export"]));
    let file = s.file("bom.ndjson", &with_bom);
    let (copy_url, _) = s.other("copy.db");
    let out = bin()
        .args(["--store", &copy_url, "import", file.to_str().expect("path")])
        .output()
        .expect("runs");
    assert_success(&out, &["import", "bom.ndjson"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 4 new event(s)"));
    let (stdin_url, _) = s.other("stdin.db");
    let out = bin()
        .args(["--store", &stdin_url, "import", "-"])
        .write_stdin(with_bom)
        .output()
        .expect("runs");
    assert_success(&out, &["import", "-"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 4 new event(s)"));
}
