//! Bad input anywhere gets one clear `error: ` line on stderr and the right
//! exit code: 2 for a wrong command line, 1 for a failed operation. No bad
//! publish creates the store, and no read-only command ever does.

mod support;

use support::{Scratch, assert_error, bin};

/// Runs with the scratch store and returns the one error line.
fn fails(s: &Scratch, args: &[&str], code: i32) -> String {
    let out = s.cmd().args(args).output().expect("runs");
    assert_error(&out, code)
}

#[test]
fn wildcard_and_malformed_topics_are_refused_naming_the_token() {
    let s = Scratch::new();
    let e = fails(&s, &["publish", "order.*", "--data", "1"], 2);
    assert!(e.contains("wildcard `*` at token 2"), "{e}");
    let e = fails(&s, &["publish", "order.>", "--data", "1"], 2);
    assert!(e.contains("wildcard `>`"), "{e}");
    let e = fails(&s, &["publish", "order..placed", "--data", "1"], 2);
    assert!(e.contains("empty token at position 2"), "{e}");
    let e = fails(&s, &["publish", "order.pl@ced", "--data", "1"], 2);
    assert!(e.contains("'@'") && e.contains("token 2 (`pl@ced`)"), "{e}");
    let e = fails(&s, &["publish", "", "--data", "1"], 2);
    assert!(e.contains("topic is empty"), "{e}");
    assert!(!s.path.exists(), "a refused publish created the store");
}

#[test]
fn malformed_patterns_are_refused_by_every_command() {
    let s = Scratch::new();
    s.publish("a.b", "1", &[]);
    for args in [
        &["history", "order.>.x"][..],
        &["tail", "order.>.x"],
        &["export", "order.>.x"],
        &["replay", "order.>.x", "--since", "1h"],
        &["clear", "order.>.x", "--yes"],
    ] {
        let e = fails(&s, args, 2);
        assert!(
            e.contains("`>` at token 2, which is not the last"),
            "{args:?}: {e}"
        );
    }
    let e = fails(&s, &["history", "order.pl*"], 2);
    assert!(e.contains("wildcard inside token 2 (`pl*`)"), "{e}");
}

#[test]
fn invalid_json_is_refused_with_line_and_column() {
    let s = Scratch::new();
    let e = fails(&s, &["publish", "a.b", "--data", r#"{"id": 7,}"#], 2);
    assert!(
        e.contains("--data is not valid JSON: line 1, column 10"),
        "{e}"
    );
    let e = fails(&s, &["publish", "a.b", "--data", "not json"], 2);
    assert!(e.contains("line 1, column 2"), "{e}");

    let file = s.file("bad.json", "{\n  \"id\": 7,\n  \"name\": tru\n}\n");
    let arg = format!("@{}", file.display());
    let e = fails(&s, &["publish", "a.b", "--data", &arg], 2);
    assert!(
        e.contains("bad.json` is not valid JSON: line 3, column"),
        "{e}"
    );

    let out = s
        .cmd()
        .args(["publish", "a.b", "--data", "-"])
        .write_stdin("[1, 2,\n 3\n")
        .output()
        .expect("runs");
    let e = assert_error(&out, 2);
    assert!(
        e.contains("--data from stdin is not valid JSON: line 2"),
        "{e}"
    );
    assert!(!s.path.exists(), "a refused publish created the store");
}

#[test]
fn an_unreadable_data_file_is_an_operational_error() {
    let s = Scratch::new();
    let e = fails(&s, &["publish", "a.b", "--data", "@/nonexistent/x.json"], 1);
    assert!(e.contains("cannot read `/nonexistent/x.json`"), "{e}");
}

#[test]
fn bad_headers_are_refused() {
    let s = Scratch::new();
    let publish =
        |header: &str| ["publish", "a.b", "--data", "1", "--header", header].map(String::from);
    let e = fails(&s, &publish("tenant").each_ref().map(String::as_str), 2);
    assert!(
        e.contains("`tenant` is not a header; write `name=value`"),
        "{e}"
    );
    let e = fails(&s, &publish("=acme").each_ref().map(String::as_str), 2);
    assert!(e.contains("write `name=value`"), "{e}");
    let e = fails(
        &s,
        &publish("Tenant=acme").each_ref().map(String::as_str),
        2,
    );
    assert!(e.contains("header name `Tenant` is invalid"), "{e}");
    let e = fails(
        &s,
        &publish("x-tenant=acme").each_ref().map(String::as_str),
        2,
    );
    assert!(e.contains("header name `x-tenant` is invalid"), "{e}");
    for reserved in ["source", "seq", "id", "replay", "data"] {
        let header = format!("{reserved}=x");
        let e = fails(&s, &publish(&header).each_ref().map(String::as_str), 2);
        assert!(
            e.contains(&format!("header name `{reserved}` is reserved")),
            "{e}"
        );
    }
    let e = fails(
        &s,
        &[
            "publish", "a.b", "--data", "1", "--header", "t=1", "--header", "t=2",
        ],
        2,
    );
    assert!(e.contains("header `t` is given twice"), "{e}");
    let e = fails(&s, &["publish", "a.b", "--data", "1", "--source", ""], 2);
    assert!(e.contains("source"), "{e}");
    assert!(!s.path.exists(), "a refused publish created the store");
}

#[test]
fn bad_times_and_numbers_are_refused() {
    let s = Scratch::new();
    s.publish("a.b", "1", &[]);
    for bad in ["yesterday", "10", "10 minutes", "2026-13-01T00:00:00Z"] {
        let e = fails(&s, &["history", "--since", bad], 2);
        assert!(
            e.contains(&format!("`{bad}` is not a time")) && e.contains("RFC 3339"),
            "{e}"
        );
    }
    let e = fails(&s, &["history", "--until", "soon"], 2);
    assert!(e.contains("`soon` is not a time"), "{e}");
    let e = fails(&s, &["history", "--since", "1h", "--until", "2h"], 2);
    assert!(e.contains("is not before --until"), "{e}");
    let e = fails(&s, &["replay", ">", "--since", "later"], 2);
    assert!(e.contains("`later` is not a time"), "{e}");
    let e = fails(&s, &["history", "--limit", "many"], 2);
    assert!(e.contains("--limit"), "{e}");
    for speed in ["0", "-2", "fast"] {
        let e = fails(&s, &["replay", ">", "--since", "1h", "--speed", speed], 2);
        assert!(e.contains("is not a positive number"), "{e}");
    }
}

#[test]
fn bad_store_urls_are_usage_errors() {
    let s = Scratch::new();
    let cases = [
        ("events.db", "expected `scheme://...`"),
        ("postgres://db", "unknown store `postgres://`"),
        ("sqlite://", "no file named"),
    ];
    for (url, says) in cases {
        let out = bin()
            .args(["--store", url, "publish", "a.b", "--data", "1"])
            .current_dir(s.dir.path())
            .output()
            .expect("runs");
        let e = assert_error(&out, 2);
        assert!(e.contains("invalid store URL") && e.contains(says), "{e}");
    }
    let (url, _) = s.other("x.db");
    let out = bin()
        .args([
            "--store",
            &format!("{url}?bogus=1"),
            "publish",
            "a.b",
            "--data",
            "1",
        ])
        .output()
        .expect("runs");
    let e = assert_error(&out, 2);
    assert!(e.contains("unknown option `bogus`"), "{e}");
    let out = bin()
        .args([
            "--store",
            "sqlite:///nonexistent-dir/x.db",
            "publish",
            "a.b",
            "--data",
            "1",
        ])
        .output()
        .expect("runs");
    let e = assert_error(&out, 1);
    assert!(
        e.contains("directory `/nonexistent-dir` does not exist"),
        "{e}"
    );
}

#[test]
fn read_only_commands_never_create_a_store() {
    let s = Scratch::new();
    let commands: [&[&str]; 13] = [
        &["history"],
        &["tail"],
        &["topics"],
        &["stats"],
        &["export"],
        &["replay", ">", "--since", "1h"],
        &[
            "replay",
            ">",
            "--since",
            "1h",
            "--to-handler",
            "billing",
            "--yes",
        ],
        &["clear", ">", "--yes"],
        &["history", "--json"],
        &["dlq", "list"],
        &["dlq", "show", "1"],
        &["dlq", "retry", "1"],
        &["dlq", "purge", "--yes"],
    ];
    for args in commands {
        let e = fails(&s, args, 1);
        assert!(
            e.contains(&format!("store file {} does not exist", s.path.display()))
                && e.contains("--store or EVENTBUS_URL"),
            "{args:?}: {e}"
        );
    }
    assert!(!s.path.exists());
    assert_eq!(std::fs::read_dir(s.dir.path()).expect("dir").count(), 0);
}

#[test]
fn command_line_mistakes_exit_2_with_one_line() {
    let s = Scratch::new();
    s.publish("a.b", "1", &[]);
    let e = fails(&s, &["history", "--bogus"], 2);
    assert!(e.contains("unexpected argument '--bogus'"), "{e}");
    let e = fails(&s, &["publish", "a.b"], 2);
    assert!(
        e.contains("required arguments were not provided") && e.contains("--data"),
        "{e}"
    );
    let e = fails(&s, &["frobnicate"], 2);
    assert!(e.contains("unrecognized subcommand 'frobnicate'"), "{e}");
    let e = fails(&s, &["replay", ">"], 2);
    assert!(e.contains("--since"), "{e}");
    let e = fails(
        &s,
        &[
            "replay",
            ">",
            "--since",
            "1h",
            "--to-handler",
            "h",
            "--json",
        ],
        2,
    );
    assert!(e.contains("cannot be used with"), "{e}");
    let e = fails(&s, &["dlq", "frobnicate"], 2);
    assert!(e.contains("unrecognized subcommand 'frobnicate'"), "{e}");
    let e = fails(&s, &["dlq", "show"], 2);
    assert!(
        e.contains("required arguments were not provided") && e.contains("<ID>"),
        "{e}"
    );
    // No subcommand at all shows the help on stderr, as a usage error...
    let out = bin().output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: eventbus"));
    // ...or, once some option is given, says what is missing.
    let e = fails(&s, &[], 2);
    assert!(e.contains("requires a subcommand"), "{e}");
}

#[test]
fn help_and_version_succeed_on_stdout() {
    let out = bin().arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in [
        "publish", "tail", "history", "replay", "topics", "stats", "dlq", "export", "import",
        "clear",
    ] {
        assert!(help.contains(command), "{command} missing from {help}");
    }
    let out = bin().args(["history", "--help"]).output().expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--correlation-id"));
    let out = bin().args(["dlq", "--help"]).output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["list", "show", "retry", "purge"] {
        assert!(help.contains(command), "{command} missing from {help}");
    }
    let out = bin().arg("--version").output().expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("eventbus "));
}

#[test]
fn memory_stores_are_refused_by_every_command() {
    let s = Scratch::new();
    let data = s.file("events.ndjson", "");
    let data = data.to_str().expect("path");
    let commands: [&[&str]; 12] = [
        &["publish", "a.b", "--data", "1"],
        &["import", data],
        &["history"],
        &["tail"],
        &["topics"],
        &["stats"],
        &["export"],
        &["replay", ">", "--since", "1h"],
        &["clear", ">", "--yes"],
        &["dlq", "list"],
        &["dlq", "retry", "1"],
        &["dlq", "purge", "--yes"],
    ];
    for url in ["memory://", "memory://?capacity=5"] {
        for args in commands {
            let out = bin()
                .args(["--store", url])
                .args(args)
                .output()
                .expect("runs");
            let e = assert_error(&out, 2);
            assert!(
                e.contains("cannot use a `memory://` store")
                    && e.contains("vanish when it exits")
                    && e.contains("sqlite://FILE")
                    && e.contains("nats://HOST:PORT")
                    && e.contains("redis://HOST:PORT"),
                "{url} {args:?}: {e}"
            );
            assert!(out.stdout.is_empty(), "{url} {args:?}");
        }
    }
    let out = bin()
        .env("EVENTBUS_URL", "memory://")
        .args(["publish", "a.b", "--data", "1"])
        .output()
        .expect("runs");
    assert!(assert_error(&out, 2).contains("`memory://`"));
}

#[test]
fn the_store_help_names_sqlite_nats_and_redis_and_refuses_memory() {
    let out = bin().arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    // Clap wraps long help; compare with the line breaks undone.
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "sqlite://PATH",
        "nats://HOST:PORT",
        "nats://127.0.0.1:4222?stream=EVENTBUS",
        "redis://HOST:PORT/DB",
        "redis://127.0.0.1:6379/0?prefix=eventbus",
        "`memory://` is refused",
    ] {
        assert!(help.contains(needle), "{needle} missing from {help}");
    }
}
