//! Shared by the `cli_*` tests: a temporary directory holding a real SQLite
//! store, and the `eventbus` binary run against it.

// Each test file uses its own part of these helpers.
#![allow(dead_code)]

pub(crate) mod console;

use std::path::PathBuf;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

/// A temporary directory with one SQLite store URL in it (the file is
/// created by the first command that writes).
pub(crate) struct Scratch {
    pub(crate) dir: TempDir,
    pub(crate) path: PathBuf,
    pub(crate) url: String,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("events.db");
        let url = format!("sqlite://{}", path.display());
        Scratch { dir, path, url }
    }

    /// Another store in the same directory: (url, path).
    pub(crate) fn other(&self, name: &str) -> (String, PathBuf) {
        let path = self.dir.path().join(name);
        (format!("sqlite://{}", path.display()), path)
    }

    /// A file in the directory.
    pub(crate) fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }

    /// The binary, pointed at this store through `EVENTBUS_URL`.
    pub(crate) fn cmd(&self) -> Command {
        let mut cmd = bin();
        cmd.env("EVENTBUS_URL", &self.url);
        cmd
    }

    /// Runs the binary and insists on success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("runs");
        assert_success(&out, args);
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Publishes and returns (seq, id) as the command printed them.
    pub(crate) fn publish(&self, topic: &str, data: &str, extra: &[&str]) -> (u64, String) {
        let mut args = vec!["publish", topic, "--data", data];
        args.extend_from_slice(extra);
        parse_published(&self.ok(&args))
    }

    /// `history --json` with more arguments, parsed.
    pub(crate) fn history_json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["history", "--json"];
        all.extend_from_slice(args);
        ndjson(&self.ok(&all))
    }
}

/// The `eventbus` binary with no store set in the environment.
pub(crate) fn bin() -> Command {
    let mut cmd = Command::cargo_bin("eventbus").expect("binary built");
    cmd.env_remove("EVENTBUS_URL");
    cmd
}

pub(crate) fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "eventbus {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads `published TOPIC seq=N id=UUID`.
pub(crate) fn parse_published(stdout: &str) -> (u64, String) {
    let field = |name: &str| {
        stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .unwrap_or_else(|| panic!("no `{name}` in {stdout:?}"))
            .to_owned()
    };
    let seq = field("seq=").parse().expect("seq is a number");
    (seq, field("id="))
}

pub(crate) fn ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Insists on the exit code and on stderr being one `error: ` line;
/// returns that line.
pub(crate) fn assert_error(out: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}; stderr: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr: {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr:?}");
    lines[0].to_owned()
}

/// The `data` of each event, in order.
pub(crate) fn datas(events: &[Value]) -> Vec<Value> {
    events.iter().map(|e| e["data"].clone()).collect()
}

/// Runs `f` on the store opened in this process, then closes it.
pub(crate) fn with_store<T>(url: &str, f: impl AsyncFnOnce(&dyn eventbus::store::Store) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = eventbus::store::open(url).await.expect("store opens");
        let out = f(&*store).await;
        store.close().await.expect("store closes");
        out
    })
}
