//! Shared by the `ui_` tests: `eventbus ui` running on a free port, and a
//! small HTTP/1.1 client that says `Connection: close` and reads to the
//! end.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The console process, killed when dropped.
pub(crate) struct Console {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Console {
    /// Starts `eventbus ui` on the store at `url` on a port the system
    /// picks (on 127.0.0.1 unless `extra` has a `--listen`), with more
    /// arguments, and waits for the line naming its address.
    pub(crate) fn start(url: &str, extra: &[&str]) -> Console {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("eventbus"));
        cmd.env_remove("EVENTBUS_URL")
            .env_remove("EVENTBUS_UI_TOKEN")
            .args(["--store", url, "ui"]);
        if !extra.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("eventbus ui starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut addr: SocketAddr = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("eventbus ui exited before serving"))
                .expect("utf-8 stdout");
            if let Some(rest) = line.split(" on http://").nth(1) {
                break rest.trim_end_matches('/').parse().expect("an address");
            }
        };
        // Listening on every address: reach it through loopback.
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        // The rest of its output is not needed; reading it keeps the pipe
        // from filling.
        std::thread::spawn(move || lines.for_each(drop));
        Console { child, addr }
    }

    /// `http://127.0.0.1:PORT` and the path.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        request(self.addr, "GET", path, headers, None).await
    }

    /// Posts `fields` as an HTML form would.
    pub(crate) async fn post(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Response {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        request(self.addr, "POST", path, headers, Some(body)).await
    }
}

impl Console {
    /// Sends SIGINT (what Ctrl-C sends) and waits for the process to end.
    pub(crate) async fn interrupt(&mut self, within: Duration) -> std::process::ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("waits") {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "eventbus ui still runs {within:?} after SIGINT"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer: status, headers (names lower-case) and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Insists on a status, showing the body otherwise.
    #[track_caller]
    pub(crate) fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "body: {}", self.body);
        self
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = &body {
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body.as_deref().unwrap_or(""));
    stream.write_all(head.as_bytes()).await.expect("sends");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 30 s")
        .expect("reads");
    let raw = String::from_utf8(raw).expect("utf-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The value of the first `<input name="NAME" value="...">` in a page.
pub(crate) fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!(r#"name="{name}" value=""#))?;
    let rest = &html[at + name.len() + 15..];
    rest.split('"').next().map(str::to_owned)
}

/// Waits for `done` to hold, checking every 20 ms, failing after `timeout`.
pub(crate) async fn eventually<F: AsyncFnMut() -> bool>(
    what: &str,
    timeout: Duration,
    mut done: F,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens the store at `url`, hands it to `f` and closes it: `with_store`
/// for tests already inside a runtime.
pub(crate) async fn in_store<T>(
    url: &str,
    f: impl AsyncFnOnce(&dyn eventbus::store::Store) -> T,
) -> T {
    let store = eventbus::store::open(url).await.expect("store opens");
    let out = f(&*store).await;
    store.close().await.expect("store closes");
    out
}

/// Every page of a console on the store of `s`, which must be empty: the
/// same checks on each kind of store.
pub(crate) async fn every_page_works(s: &super::Scratch) {
    use eventbus::store::{NewDeadLetter, Query};
    use futures_util::StreamExt;
    use tokio::io::AsyncBufReadExt;

    s.publish(
        "order.placed",
        r#"{"id":7}"#,
        &["--correlation-id", "req-7"],
    );
    s.publish("order.placed", r#"{"id":8}"#, &[]);
    // Seqs are the store's: not 1, 2, 3 on every kind.
    let (shipped, _) = s.publish(
        "order.shipped",
        r#"{"id":7}"#,
        &["--correlation-id", "req-7"],
    );
    in_store(&s.url, async |store| {
        let env = store.query(Query::default()).next().await.unwrap().unwrap();
        let dead = NewDeadLetter {
            handler: "billing".into(),
            envelope: env,
            error: "card declined".into(),
            attempts: 4,
        };
        let dead_letters = store.dead_letter_store().unwrap();
        dead_letters.add_dead_letter(dead).await.expect("stored");
    })
    .await;
    let console = Console::start(&s.url, &[]);
    let found = console
        .get("/history?correlation_id=req-7", &[])
        .await
        .expect(200);
    assert_eq!(
        found.body.matches(r#"<tr><td><a href="/events/"#).count(),
        2,
        "{}",
        found.body
    );
    let event = console
        .get(&format!("/events/{shipped}"), &[])
        .await
        .expect(200);
    assert!(event.body.contains("order.shipped"), "{}", event.body);
    for (path, says) in [
        ("/topics", "order.shipped"),
        ("/handlers", "billing"),
        ("/dead-letters", "card declined"),
        (
            "/causation?correlation_id=req-7",
            &format!(r#"data-seq="{shipped}""#),
        ),
        (
            "/metrics",
            r#"eventbus_published_total{topic="order.placed"} 2"#,
        ),
    ] {
        let page = console.get(path, &[]).await.expect(200);
        assert!(page.body.contains(says), "{path}: {}", page.body);
    }

    let mut stream = TcpStream::connect(console.addr).await.expect("connects");
    let request = format!(
        "GET /live/events HTTP/1.1\r\nHost: {}\r\n\r\n",
        console.addr
    );
    stream.write_all(request.as_bytes()).await.expect("sends");
    let mut lines = tokio::io::BufReader::new(stream).lines();
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("a line within 20 s")
            .expect("reads")
            .expect("the stream stays open")
    };
    while next_line().await != "event: ready" {}
    s.publish("order.cancelled", r#"{"id":8}"#, &[]);
    while !next_line().await.contains(r#""topic":"order.cancelled""#) {}
}
