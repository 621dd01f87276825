//! `eventbus dlq list|show|retry|purge` on dead letters stored in a real
//! SQLite file, and a service in this process making the retry that the
//! command requested.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::store::{DeadLetterQuery, NewDeadLetter, Query};
use serde_json::Value;
use support::{Scratch, assert_error, ndjson, with_store};

/// An error longer than a table cell, with a cause on a second line.
const LONG_ERROR: &str = "payment gateway refused the charge for order 7: card declined by the \
                          issuing bank after three attempts\ncaused by: HTTP 402";

/// The dead letters [`seed`] stores, in id order.
struct Seeded {
    billing_long: u64,
    billing_short: u64,
    mailer: u64,
}

/// Two events published through the CLI, then three dead letters stored
/// directly: `billing` gave up on both events, `mailer` on the first.
fn seed(s: &Scratch) -> Seeded {
    s.publish(
        "order.placed",
        r#"{"id":7,"cents":1250}"#,
        &["--correlation-id", "req-7"],
    );
    s.publish("order.shipped", r#"{"id":7}"#, &[]);
    let ids = with_store(&s.url, async |store| {
        let events: Vec<_> = store
            .query(Query::default())
            .map(|e| e.expect("readable"))
            .collect()
            .await;
        let mut ids = Vec::new();
        for (handler, envelope, error, attempts) in [
            ("billing", &events[0], LONG_ERROR, 4),
            ("billing", &events[1], "warehouse API is down", 1),
            ("mailer", &events[0], "smtp: connection refused", 3),
        ] {
            let id = store
                .dead_letter_store()
                .unwrap()
                .add_dead_letter(NewDeadLetter {
                    handler: handler.into(),
                    envelope: envelope.clone(),
                    error: error.into(),
                    attempts,
                })
                .await
                .expect("stored");
            ids.push(id);
        }
        ids
    });
    Seeded {
        billing_long: ids[0],
        billing_short: ids[1],
        mailer: ids[2],
    }
}

/// Runs the command and returns (exit code, stdout, stderr).
fn run(s: &Scratch, args: &[&str]) -> (Option<i32>, String, String) {
    let out = s.cmd().args(args).output().expect("runs");
    (
        out.status.code(),
        String::from_utf8(out.stdout).expect("utf-8"),
        String::from_utf8(out.stderr).expect("utf-8"),
    )
}

fn fails(s: &Scratch, args: &[&str], code: i32) -> String {
    let out = s.cmd().args(args).output().expect("runs");
    assert_error(&out, code)
}

/// The RETRY REQUESTED and ERROR cells of each row of a `dlq list` table,
/// cut where the header's columns start.
fn retry_and_error(table: &str) -> Vec<(String, String)> {
    let mut lines = table.lines();
    let header = lines.next().expect("a header");
    let retry = header.find("RETRY REQUESTED").expect("retry column");
    let error = header.find("ERROR").expect("error column");
    lines
        .map(|l| {
            let cells: Vec<char> = l.chars().collect();
            let cut = |from: usize, to: usize| -> String {
                cells[from..to.min(cells.len())]
                    .iter()
                    .collect::<String>()
                    .trim()
                    .to_owned()
            };
            (cut(retry, error), cut(error, cells.len()))
        })
        .collect()
}

#[test]
fn list_prints_a_table_with_errors_cut_to_one_readable_line() {
    let s = Scratch::new();
    let ids = seed(&s);
    let table = s.ok(&["dlq", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID",
            "HANDLER",
            "SEQ",
            "TOPIC",
            "ATTEMPTS",
            "TIME",
            "RETRY",
            "REQUESTED",
            "ERROR"
        ]
    );
    let row = |i: usize| -> Vec<&str> { lines[i].split_whitespace().collect() };
    let first = row(1);
    assert_eq!(
        first[..5],
        [
            ids.billing_long.to_string().as_str(),
            "billing",
            "1",
            "order.placed",
            "4"
        ]
    );
    assert!(first[5].ends_with('Z'), "an RFC 3339 UTC time: {table}");
    assert_eq!(
        row(2)[..5],
        [
            ids.billing_short.to_string().as_str(),
            "billing",
            "2",
            "order.shipped",
            "1"
        ]
    );
    assert_eq!(row(3)[..2], [ids.mailer.to_string().as_str(), "mailer"]);

    let cells = retry_and_error(&table);
    // The long error is cut, on one line, ending with an ellipsis.
    let (retry, error) = &cells[0];
    assert_eq!(retry, "no");
    let flat = LONG_ERROR.replace('\n', " ");
    assert_eq!(error.chars().count(), 60, "{error}");
    assert!(error.ends_with('…'), "{error}");
    assert!(flat.starts_with(error.trim_end_matches('…')), "{error}");
    assert!(!table.contains("HTTP 402"), "{table}");
    assert_eq!(cells[1], ("no".into(), "warehouse API is down".into()));
    assert_eq!(cells[2], ("no".into(), "smtp: connection refused".into()));
}

#[test]
fn list_json_gives_every_field_and_the_event_as_a_cloudevent() {
    let s = Scratch::new();
    let ids = seed(&s);
    let dead = ndjson(&s.ok(&["dlq", "list", "--json"]));
    let events = s.history_json(&[]);
    assert_eq!(dead.len(), 3);
    let first = &dead[0];
    assert_eq!(first["id"], ids.billing_long);
    assert_eq!(first["handler"], "billing");
    assert_eq!(first["attempts"], 4);
    assert_eq!(first["error"], LONG_ERROR, "the whole error");
    assert_eq!(first["retry_requested"], false);
    assert!(first["time"].as_str().expect("time").ends_with('Z'));
    assert_eq!(first["envelope"], events[0], "the stored CloudEvent");
    assert_eq!(first["envelope"]["correlationid"], "req-7");
    assert_eq!(dead[1]["envelope"], events[1]);
    assert_eq!(dead[2]["id"], ids.mailer);
    assert_eq!(dead[2]["envelope"]["id"], events[0]["id"]);
    let keys: Vec<&String> = first.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 7, "{first}");
}

#[test]
fn list_filters_by_handler_and_says_when_there_is_nothing() {
    let s = Scratch::new();
    let ids = seed(&s);
    let mailer = ndjson(&s.ok(&["dlq", "list", "--handler", "mailer", "--json"]));
    assert_eq!(mailer.len(), 1);
    assert_eq!(mailer[0]["id"], ids.mailer);
    let table = s.ok(&["dlq", "list", "--handler", "billing"]);
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(!table.contains("mailer"), "{table}");

    let (code, stdout, stderr) = run(&s, &["dlq", "list", "--handler", "nobody"]);
    assert_eq!(code, Some(0));
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.trim(), "no dead letters of handler `nobody`");
    let (code, stdout, _) = run(&s, &["dlq", "list", "--handler", "nobody", "--json"]);
    assert_eq!(code, Some(0));
    assert!(stdout.is_empty(), "{stdout}");

    let empty = Scratch::new();
    empty.publish("a.b", "1", &[]);
    let (code, stdout, stderr) = run(&empty, &["dlq", "list"]);
    assert_eq!(code, Some(0));
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.trim(), "no dead letters");
}

#[test]
fn show_prints_everything_with_the_event_as_pretty_json() {
    let s = Scratch::new();
    let ids = seed(&s);
    let id = ids.billing_long.to_string();
    let text = s.ok(&["dlq", "show", &id]);
    let events = s.history_json(&[]);
    let field = |label: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{label}:")))
            .unwrap_or_else(|| panic!("no `{label}:` in {text}"));
        line[label.len() + 1..].trim().to_owned()
    };
    assert_eq!(field("id"), id);
    assert_eq!(field("handler"), "billing");
    assert_eq!(field("attempts"), "4");
    assert_eq!(field("retry"), "not requested");
    assert_eq!(field("seq"), "1");
    assert_eq!(field("topic"), "order.placed");
    assert_eq!(field("event id"), events[0]["id"].as_str().expect("id"));
    // The full error, its second line aligned under the first.
    let (first, second) = LONG_ERROR.split_once('\n').expect("two lines");
    assert_eq!(field("error"), first);
    assert!(text.contains(&format!("\n{:17}{second}\n", "")), "{text}");
    let (_, envelope) = text.split_once("envelope:\n").expect("an envelope");
    assert!(
        envelope.starts_with("{\n  \"specversion\": \"1.0\",\n"),
        "{envelope}"
    );
    assert!(
        envelope.contains("\n  \"type\": \"order.placed\",\n"),
        "{envelope}"
    );
    // The data in the order it was published.
    assert!(
        envelope.contains("\n    \"id\": 7,\n    \"cents\": 1250\n"),
        "{envelope}"
    );
    let envelope: Value = serde_json::from_str(envelope).expect("JSON");
    assert_eq!(envelope, events[0]);

    let json: Value =
        serde_json::from_str(&s.ok(&["dlq", "show", &id, "--json"])).expect("one JSON object");
    let listed = ndjson(&s.ok(&["dlq", "list", "--json"]));
    assert_eq!(json, listed[0]);
}

#[test]
fn show_and_retry_of_an_unknown_id_fail() {
    let s = Scratch::new();
    seed(&s);
    for command in ["show", "retry"] {
        let e = fails(&s, &["dlq", command, "99"], 1);
        assert!(e.contains("there is no dead letter 99"), "{command}: {e}");
        let e = fails(&s, &["dlq", command, "seven"], 2);
        assert!(e.contains("invalid value 'seven'"), "{command}: {e}");
    }
    assert_eq!(ndjson(&s.ok(&["dlq", "list", "--json"])).len(), 3);
}

#[test]
fn retry_requests_it_from_the_service_running_the_handler() {
    let s = Scratch::new();
    let ids = seed(&s);
    let id = ids.billing_short.to_string();
    let out = s.ok(&["dlq", "retry", &id]);
    assert_eq!(
        out.trim(),
        format!(
            "retry of dead letter {id} (handler billing) requested; the service running \
             billing will retry it within its dead_letter_poll (2 s by default)"
        )
    );
    let requested: Vec<(u64, bool)> = ndjson(&s.ok(&["dlq", "list", "--json"]))
        .iter()
        .map(|d| {
            let id = d["id"].as_u64().expect("id");
            (id, d["retry_requested"].as_bool().expect("bool"))
        })
        .collect();
    assert_eq!(
        requested,
        [
            (ids.billing_long, false),
            (ids.billing_short, true),
            (ids.mailer, false)
        ]
    );
    let marked = with_store(&s.url, async |store| {
        store
            .dead_letter_store()
            .unwrap()
            .dead_letters(DeadLetterQuery::all().retry_requested())
            .await
            .expect("listed")
    });
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0].id, ids.billing_short);
    let retries: Vec<String> = retry_and_error(&s.ok(&["dlq", "list"]))
        .into_iter()
        .map(|(retry, _)| retry)
        .collect();
    assert_eq!(retries, ["no", "yes", "no"]);
    let shown = s.ok(&["dlq", "show", &id]);
    assert!(
        shown.contains(
            "\nretry:           requested; the service running billing has not made it yet\n"
        ),
        "{shown}"
    );

    // Asking twice is harmless, and says so.
    let out = s.ok(&["dlq", "retry", &id]);
    assert!(out.contains("was already requested;"), "{out}");
    let stats = s.ok(&["stats"]);
    assert!(
        stats.contains("dead letters: 3 (1 waiting for a retry)"),
        "{stats}"
    );
}

#[test]
fn purge_deletes_one_handlers_or_all_dead_letters_with_yes() {
    let s = Scratch::new();
    let ids = seed(&s);
    let out = s.ok(&["dlq", "purge", "--handler", "billing", "--yes"]);
    assert_eq!(out.trim(), "deleted 2 dead letter(s) of handler `billing`");
    let left = ndjson(&s.ok(&["dlq", "list", "--json"]));
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], ids.mailer);
    let out = s.ok(&["dlq", "purge", "--handler", "billing", "-y"]);
    assert_eq!(
        out.trim(),
        "no dead letters of handler `billing`; nothing deleted"
    );
    let out = s.ok(&["dlq", "purge", "--yes"]);
    assert_eq!(out.trim(), "deleted 1 dead letter(s)");
    assert!(s.ok(&["dlq", "list", "--json"]).is_empty());
    let out = s.ok(&["dlq", "purge", "--yes"]);
    assert_eq!(out.trim(), "no dead letters; nothing deleted");
    assert_eq!(s.history_json(&[]).len(), 2, "the events stay");
}

#[test]
fn purge_without_yes_refuses_when_no_one_can_confirm() {
    let s = Scratch::new();
    seed(&s);
    for args in [
        &["dlq", "purge"][..],
        &["dlq", "purge", "--handler", "mailer"],
    ] {
        let out = s
            .cmd()
            .args(args)
            .write_stdin("yes\n")
            .output()
            .expect("runs");
        let e = assert_error(&out, 2);
        assert!(
            e.contains("`dlq purge` needs confirmation and stdin is not a terminal; pass --yes"),
            "{e}"
        );
    }
    assert_eq!(
        ndjson(&s.ok(&["dlq", "list", "--json"])).len(),
        3,
        "nothing deleted"
    );
}

#[test]
fn dlq_commands_never_create_a_store() {
    let s = Scratch::new();
    let commands: [&[&str]; 6] = [
        &["dlq", "list"],
        &["dlq", "list", "--json"],
        &["dlq", "show", "1"],
        &["dlq", "retry", "1"],
        &["dlq", "purge", "--yes"],
        &["dlq", "purge", "--handler", "billing", "--yes"],
    ];
    for args in commands {
        let e = fails(&s, args, 1);
        assert!(
            e.contains(&format!("store file {} does not exist", s.path.display())),
            "{args:?}: {e}"
        );
    }
    assert!(!s.path.exists());
    assert_eq!(std::fs::read_dir(s.dir.path()).expect("dir").count(), 0);
}

#[derive(Event, Clone, Debug)]
#[event(topic = "order.placed")]
struct OrderPlaced {
    id: u64,
}

/// Waits until `done()` holds, failing after `timeout`.
async fn eventually<F: AsyncFnMut() -> bool>(what: &str, timeout: Duration, mut done: F) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs the binary off the runtime's threads, insisting on success.
async fn output(s: &Scratch, args: &[&str]) -> std::process::Output {
    let mut cmd = s.cmd();
    cmd.args(args);
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = cmd.output().expect("runs");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        support::assert_success(&out, &args);
        out
    })
    .await
    .expect("joined")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_makes_the_retry_the_command_requested() {
    let s = Scratch::new();
    let broken = Arc::new(AtomicBool::new(true));
    let billing = {
        let broken = Arc::clone(&broken);
        FnHandler::new(
            "billing",
            move |ev: Envelope<OrderPlaced>, _ctx: Context| {
                let broken = broken.load(Ordering::SeqCst);
                async move {
                    if broken {
                        Err(std::io::Error::other(format!(
                            "payment gateway is down (order {})",
                            ev.id
                        )))
                    } else {
                        Ok(())
                    }
                }
            },
        )
        .retry(0)
    };
    let bus = eventbus::Bus::builder()
        .store(&s.url)
        .no_linked_handlers()
        .handler(billing)
        .dead_letter_poll(Duration::from_millis(20))
        .build()
        .await
        .expect("bus starts");
    let stats = |bus: &eventbus::Bus| {
        bus.stats()
            .into_iter()
            .find(|h| h.name == "billing")
            .expect("billing runs")
    };
    bus.publish(OrderPlaced { id: 7 }).await.expect("published");
    eventually("a dead letter", Duration::from_secs(10), async || {
        stats(&bus).dead_lettered == 1
    })
    .await;

    // The command, in its own process, reads the file the service writes.
    let listed = output(&s, &["dlq", "list", "--json"]).await;
    let listed = ndjson(&String::from_utf8(listed.stdout).expect("utf-8"));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["handler"], "billing");
    assert!(
        listed[0]["error"]
            .as_str()
            .expect("error")
            .contains("payment gateway is down (order 7)"),
        "{}",
        listed[0]
    );
    let id = listed[0]["id"].as_u64().expect("id");
    let dead = bus
        .dead_letters()
        .list(DeadLetterQuery::all())
        .await
        .expect("listed");
    assert_eq!(dead[0].id, id);

    broken.store(false, Ordering::SeqCst);
    let out = output(&s, &["dlq", "retry", &id.to_string()]).await;
    let said = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        said.contains("the service running billing will retry it"),
        "{said}"
    );

    eventually(
        "the service to retry the dead letter",
        Duration::from_secs(10),
        async || {
            let left = bus
                .dead_letters()
                .list(DeadLetterQuery::all())
                .await
                .expect("listed");
            left.is_empty() && stats(&bus).handled == 1
        },
    )
    .await;
    assert_eq!(stats(&bus).dead_lettered, 1, "no new dead letter");
    bus.shutdown().await.expect("shuts down");
    let (code, stdout, stderr) = run(&s, &["dlq", "list"]);
    assert_eq!(code, Some(0));
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.trim(), "no dead letters");
}
