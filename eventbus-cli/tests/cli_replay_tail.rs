//! `eventbus replay` (paced printing, and moving a handler's checkpoint)
//! and `eventbus tail` (following another process's publishes).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Scratch, assert_error, datas, ndjson, with_store};

#[test]
fn replay_prints_matching_history_paced_by_the_speed_factor() {
    let s = Scratch::new();
    s.publish("order.placed", r#"{"n":1}"#, &[]);
    std::thread::sleep(Duration::from_millis(300));
    s.publish("user.created", r#"{"n":2}"#, &[]);
    s.publish("order.shipped", r#"{"n":3}"#, &[]);
    std::thread::sleep(Duration::from_millis(300));
    s.publish("order.placed", r#"{"n":4}"#, &[]);

    let started = Instant::now();
    let fast = ndjson(&s.ok(&[
        "replay", "order.>", "--since", "1h", "--speed", "1000", "--json",
    ]));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        datas(&fast),
        [json!({"n": 1}), json!({"n": 3}), json!({"n": 4})]
    );
    assert_eq!(
        fast,
        s.history_json(&["order.>"]),
        "the stored events, unchanged"
    );

    // The first and last event are at least 600 ms apart: at speed 2 the
    // replay takes at least 300 ms.
    let started = Instant::now();
    let text = s.ok(&["replay", "order.>", "--since", "1h", "--speed", "2"]);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("1 ") && lines[0].contains("order.placed"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("3 ") && lines[1].contains("order.shipped"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("4 ") && lines[2].ends_with(r#"{"n":4}"#),
        "{text}"
    );

    // --since and --until bound what is replayed.
    let t3 = fast[1]["time"].as_str().expect("time").to_owned();
    let t4 = fast[2]["time"].as_str().expect("time").to_owned();
    let window = ndjson(&s.ok(&[
        "replay", ">", "--since", &t3, "--until", &t4, "--speed", "1000", "--json",
    ]));
    assert_eq!(datas(&window), [json!({"n": 3})]);
}

#[test]
fn replay_to_a_handler_moves_its_checkpoint_to_just_before_since() {
    let s = Scratch::new();
    s.publish("order.placed", "1", &[]);
    s.publish("order.placed", "2", &[]);
    s.publish("order.placed", "3", &[]);
    s.publish("order.shipped", "4", &[]);
    let events = s.history_json(&[]);
    let third = events[2]["time"].as_str().expect("time").to_owned();
    with_store(&s.url, async |store| {
        store
            .checkpoint_store()
            .unwrap()
            .save_checkpoint("billing", 4)
            .await
            .expect("saved");
    });

    // Without --yes and with no terminal to ask on, nothing moves.
    let out = s
        .cmd()
        .args([
            "replay",
            "order.>",
            "--since",
            &third,
            "--to-handler",
            "billing",
        ])
        .output()
        .expect("runs");
    let e = assert_error(&out, 2);
    assert!(e.contains("stdin is not a terminal; pass --yes"), "{e}");
    let checkpoint = |name: &'static str| {
        with_store(&s.url, async move |store| {
            store
                .checkpoint_store()
                .unwrap()
                .load_checkpoint(name)
                .await
                .expect("loads")
        })
    };
    assert_eq!(checkpoint("billing"), Some(4));

    let out = s.ok(&[
        "replay",
        "order.>",
        "--since",
        &third,
        "--to-handler",
        "billing",
        "--yes",
    ]);
    assert!(
        out.contains("handler `billing`: checkpoint 4 -> 2"),
        "{out}"
    );
    assert!(out.contains("2 event(s) matching `order.>`"), "{out}");
    assert_eq!(checkpoint("billing"), Some(2));
    let stats = s.ok(&["stats"]);
    let row = stats.lines().find(|l| l.contains("billing")).expect("row");
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["billing", "2", "2", "0"]
    );

    // Before all history: the handler starts from the beginning.
    let out = s.ok(&[
        "replay",
        ">",
        "--since",
        "1h",
        "--to-handler",
        "billing",
        "--yes",
    ]);
    assert!(out.contains("checkpoint 2 -> 0"), "{out}");
    assert_eq!(checkpoint("billing"), Some(0));

    // A handler that never ran gets a checkpoint, with a note naming the known ones.
    let out = s
        .cmd()
        .args([
            "replay",
            ">",
            "--since",
            "now",
            "--to-handler",
            "new-one",
            "--yes",
        ])
        .output()
        .expect("runs");
    support::assert_success(&out, &["replay --to-handler new-one"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("checkpoint none -> 4"));
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("`new-one` has no checkpoint yet (handlers with one: billing)"),
        "{note}"
    );
    assert_eq!(checkpoint("new-one"), Some(4));
}

/// Kills the child if the test fails before it is stopped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn next_line(lines: &mpsc::Receiver<String>) -> String {
    lines
        .recv_timeout(Duration::from_secs(10))
        .expect("tail printed nothing within 10 s")
}

#[test]
fn tail_follows_new_events_from_other_processes_until_ctrl_c() {
    let s = Scratch::new();
    s.publish("order.placed", r#""before""#, &[]);
    let child = Command::new(env!("CARGO_BIN_EXE_eventbus"))
        .args(["--store", &s.url, "tail", "order.>", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tail starts");
    let mut tail = Running(child);
    let stdout = tail.0.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    // Publish until tail shows it is following (it starts after the
    // newest event, which it reads when it starts).
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        s.publish("order.ping", r#""ping""#, &[]);
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(300)) {
            break line;
        }
        assert!(Instant::now() < deadline, "tail never printed a new event");
    };
    let first: serde_json::Value = serde_json::from_str(&first).expect("NDJSON");
    assert_eq!(
        first["type"], "order.ping",
        "the event stored before tail started is not shown"
    );
    while lines.recv_timeout(Duration::from_millis(300)).is_ok() {}

    s.publish("user.created", r#""other topic""#, &[]);
    let (seq1, id1) = s.publish("order.placed", r#"{"n":1}"#, &[]);
    let (seq2, _) = s.publish("order.shipped", r#"{"n":2}"#, &["--correlation-id", "c"]);
    // Skips pings that were still on their way.
    let next_event = || loop {
        let event: serde_json::Value = serde_json::from_str(&next_line(&lines)).expect("NDJSON");
        if event["type"] != "order.ping" {
            return event;
        }
    };
    let one = next_event();
    let two = next_event();
    assert_eq!(one["id"], id1);
    assert_eq!(one["seq"], seq1.to_string());
    assert_eq!(one["data"], json!({"n": 1}));
    assert_eq!(two["seq"], seq2.to_string());
    assert_eq!(two["correlationid"], "c");

    // Ctrl-C (SIGINT) ends it cleanly.
    let status = Command::new("kill")
        .args(["-INT", &tail.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = tail.0.try_wait().expect("waits") {
            break status;
        }
        assert!(Instant::now() < deadline, "tail did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut tail.0.stderr.take().expect("stderr"), &mut stderr)
        .expect("reads");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn tail_prints_lines_for_people_by_default() {
    let s = Scratch::new();
    s.publish("a.b", "0", &[]);
    let child = Command::new(env!("CARGO_BIN_EXE_eventbus"))
        .args(["--store", &s.url, "tail"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tail starts");
    let mut tail = Running(child);
    let stdout = tail.0.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        s.publish("a.b", r#"{"k":"v"}"#, &["--source", "me"]);
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(300)) {
            break line;
        }
        assert!(Instant::now() < deadline, "tail never printed a new event");
    };
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cells[2..],
        ["a.b", "1", "me", "-", r#"{"k":"v"}"#],
        "{line}"
    );
    assert!(cells[0].parse::<u64>().expect("seq") >= 2);
}
