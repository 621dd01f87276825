//! `eventbus ui` in headless Chromium, driven through chromedriver: what
//! an operator sees, scripts included. Ignored by default (they need
//! Debian's `chromium` and `chromium-driver`); CI runs them with
//! `cargo test --workspace -- --ignored browser_`. Each saves screenshots
//! under `target/ui-screenshots/`.

mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::store::DeadLetterQuery;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use support::Scratch;
use support::console::{Console, eventually};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "correct-horse-battery-staple";

/// chromedriver on a free port and one headless Chromium session with a
/// fresh profile; both end when dropped.
struct Browser {
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = std::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("temp dir");
        let mut browser = Browser {
            client: None,
            driver,
            _profile: profile,
        };
        let addr = format!("127.0.0.1:{port}");
        eventually("chromedriver to listen", WAIT, async || {
            tokio::net::TcpStream::connect(&addr).await.is_ok()
        })
        .await;
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=1280,860".to_owned(),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await
            .expect("a Chromium session");
        browser.client = Some(client);
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("connected")
    }

    async fn goto(&self, url: &str) {
        self.client().goto(url).await.expect("page loads");
    }

    async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client()
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` within {WAIT:?}: {e}"))
    }

    async fn count(&self, css: &str) -> usize {
        self.client()
            .find_all(Locator::Css(css))
            .await
            .expect("query")
            .len()
    }

    async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.expect("text")
    }

    /// Saves the page as `target/ui-screenshots/NAME.png`.
    async fn screenshot(&self, name: &str) {
        let png = self.client().screenshot().await.expect("screenshot");
        let dir = screenshots();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot saved");
    }

    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("ui-screenshots")
}

/// A few events under two correlation ids, one chain with causes, as a
/// service would leave them.
async fn orders(s: &Scratch) {
    let bus = eventbus::Bus::builder()
        .store(&s.url)
        .source("shop")
        .no_linked_handlers()
        .build()
        .await
        .expect("bus starts");
    let placed = bus
        .publish_json("order.placed", &json!({"id": 7, "cents": 1250}))
        .correlation_id("req-7")
        .subject("order-7")
        .await
        .expect("published");
    let charged = bus
        .publish_json("payment.charged", &json!({"order": 7, "cents": 1250}))
        .correlation_id("req-7")
        .causation_id(placed.id().to_string())
        .header("handler", "billing")
        .expect("header")
        .await
        .expect("published");
    for (topic, cause) in [("order.shipped", &charged), ("invoice.sent", &charged)] {
        bus.publish_json(topic, &json!({"order": 7}))
            .correlation_id("req-7")
            .causation_id(cause.id().to_string())
            .header(
                "handler",
                if topic == "order.shipped" {
                    "shipping"
                } else {
                    "mailer"
                },
            )
            .expect("header")
            .await
            .expect("published");
    }
    bus.publish_json("order.placed", &json!({"id": 8, "cents": 990}))
        .correlation_id("req-8")
        .await
        .expect("published");
    bus.shutdown().await.expect("shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium at /usr/bin/chromium"]
async fn browser_live_page_shows_an_event_published_after_it_opened() {
    let s = Scratch::new();
    orders(&s).await;
    let console = Console::start(&s.url, &[]);
    let browser = Browser::start().await;
    browser.goto(&console.url("/?pattern=order.>")).await;
    eventually("the live page to connect", WAIT, async || {
        browser.text("#status").await.starts_with("following")
    })
    .await;
    s.publish("audit.logged", r#"{"who":"ops"}"#, &[]);
    s.publish(
        "order.cancelled",
        r#"{"id":8,"reason":"changed mind"}"#,
        &["--correlation-id", "req-8"],
    );
    eventually("the event on the page", WAIT, async || {
        browser.count("#live-rows tr").await == 1
    })
    .await;
    let row = browser.text("#live-rows tr").await;
    assert!(
        row.contains("order.cancelled") && row.contains("changed mind"),
        "{row}"
    );
    assert!(!row.contains("audit.logged"));

    // Paused, new events wait; resumed, they show.
    browser
        .wait_for("#pause")
        .await
        .click()
        .await
        .expect("pause");
    s.publish("order.placed", r#"{"id":9}"#, &[]);
    eventually("the held count", WAIT, async || {
        browser
            .text("#status")
            .await
            .contains("1 held while paused")
    })
    .await;
    assert_eq!(browser.count("#live-rows tr").await, 1);
    browser
        .wait_for("#pause")
        .await
        .click()
        .await
        .expect("resume");
    eventually("the held event shown", WAIT, async || {
        browser.count("#live-rows tr").await == 2
    })
    .await;
    browser.screenshot("live").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium at /usr/bin/chromium"]
async fn browser_live_page_stays_responsive_through_a_burst() {
    const BURST: u64 = 20_000;
    const PUBLISHERS: u64 = 32;
    let s = Scratch::new();
    s.publish("order.placed", r#"{"id":0}"#, &[]);
    let console = Console::start(&s.url, &[]);
    let browser = Browser::start().await;
    browser.goto(&console.url("/")).await;
    eventually("the live page to connect", WAIT, async || {
        browser.text("#status").await.starts_with("following")
    })
    .await;
    let bus = eventbus::Bus::builder()
        .store(&s.url)
        .no_linked_handlers()
        .build()
        .await
        .expect("bus starts");
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let bus = bus.clone();
            tokio::spawn(async move {
                for n in 0..BURST / PUBLISHERS {
                    bus.publish_json("order.placed", &json!({"publisher": p, "n": n}))
                        .await
                        .expect("published");
                }
            })
        })
        .collect();
    // While the burst arrives, the page answers a script at once.
    let mut slowest = Duration::ZERO;
    while !publishers.iter().all(|p| p.is_finished()) {
        let asked = std::time::Instant::now();
        browser
            .client()
            .execute(
                "return document.getElementById('live-rows').children.length;",
                vec![],
            )
            .await
            .expect("script runs");
        slowest = slowest.max(asked.elapsed());
    }
    for p in publishers {
        p.await.expect("publisher");
    }
    bus.shutdown().await.expect("shuts down");
    assert!(
        slowest < Duration::from_secs(2),
        "the page took {slowest:?} to answer"
    );
    // Every event arrived, or was counted as skipped.
    let status_js = "const t = document.getElementById('status').textContent; \
         const n = (re) => Number((t.match(re) || [0, 0])[1]); \
         return n(/(\\d+) received/) + n(/skipped (\\d+)/);";
    eventually("every event received or counted", WAIT, async || {
        let told = browser
            .client()
            .execute(status_js, vec![])
            .await
            .expect("script runs");
        told == json!(BURST)
    })
    .await;
    assert_eq!(
        browser.count("#live-rows tr").await,
        500,
        "the table keeps 500 rows"
    );
    browser.screenshot("live-burst").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium at /usr/bin/chromium"]
async fn browser_history_search_by_correlation_id_finds_the_two_events() {
    let s = Scratch::new();
    s.publish(
        "order.placed",
        r#"{"id":7,"cents":1250}"#,
        &["--correlation-id", "req-7"],
    );
    s.publish(
        "order.placed",
        r#"{"id":8,"cents":990}"#,
        &["--correlation-id", "req-8"],
    );
    s.publish(
        "order.shipped",
        r#"{"id":7}"#,
        &["--correlation-id", "req-7"],
    );
    let console = Console::start(&s.url, &[]);
    let browser = Browser::start().await;
    browser.goto(&console.url("/history")).await;
    let input = browser.wait_for("input[name=correlation_id]").await;
    input.send_keys("req-7").await.expect("typed");
    browser
        .wait_for("form.filters button[type=submit]")
        .await
        .click()
        .await
        .expect("submitted");
    eventually("the results", WAIT, async || {
        browser
            .client()
            .current_url()
            .await
            .is_ok_and(|u| u.as_str().contains("correlation_id=req-7"))
    })
    .await;
    browser.wait_for("#history").await;
    assert_eq!(browser.count("#history tbody tr").await, 2);
    let table = browser.text("#history").await;
    assert!(
        table.contains("order.placed") && table.contains("order.shipped"),
        "{table}"
    );
    assert!(!table.contains("req-8"));
    browser.screenshot("history").await;

    // A row opens its event.
    browser
        .wait_for("#history tbody tr:last-child a")
        .await
        .click()
        .await
        .expect("opened");
    let data = browser.text("#data").await;
    assert!(data.contains("\"cents\": 1250"), "{data}");
    browser.screenshot("event").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium at /usr/bin/chromium"]
async fn browser_causation_picture_has_the_nodes_and_edges() {
    let s = Scratch::new();
    orders(&s).await;
    let console = Console::start(&s.url, &[]);
    let browser = Browser::start().await;
    browser
        .goto(&console.url("/causation?correlation_id=req-7"))
        .await;
    browser.wait_for("svg#causation").await;
    assert_eq!(browser.count("svg#causation g.node").await, 4);
    let edges = browser
        .client()
        .execute(
            "return [...document.querySelectorAll('svg#causation line.edge')]\
             .map(e => e.dataset.from + '->' + e.dataset.to).sort();",
            vec![],
        )
        .await
        .expect("script runs");
    assert_eq!(edges, json!(["1->2", "2->3", "2->4"]));
    let picture = browser.text("svg#causation").await;
    assert!(
        picture.contains("payment.charged") && picture.contains("by billing"),
        "{picture}"
    );
    browser.screenshot("causation").await;

    for (path, name) in [("/topics", "topics"), ("/handlers", "handlers")] {
        browser.goto(&console.url(path)).await;
        browser.wait_for("svg.chart").await;
        browser.screenshot(name).await;
    }
    browser.close().await;
}

#[derive(Event, Clone, Debug)]
#[event(topic = "order.placed")]
struct OrderPlaced {
    id: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium at /usr/bin/chromium"]
async fn browser_retrying_a_dead_letter_from_the_page_removes_it() {
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
    bus.publish(OrderPlaced { id: 7 }).await.expect("published");
    let dead = async || {
        bus.dead_letters()
            .list(DeadLetterQuery::all())
            .await
            .expect("listed")
    };
    eventually("a dead letter", WAIT, async || dead().await.len() == 1).await;

    let console = Console::start(&s.url, &[]);
    let browser = Browser::start().await;
    browser.goto(&console.url("/dead-letters")).await;
    assert_eq!(browser.count("#dead-letters tbody tr").await, 1);
    browser.screenshot("dead-letters").await;
    browser
        .wait_for("#dead-letters tbody tr a")
        .await
        .click()
        .await
        .expect("opened");
    let error = browser.text("#error").await;
    assert!(
        error.contains("payment gateway is down (order 7)"),
        "{error}"
    );
    browser.screenshot("dead-letter").await;

    broken.store(false, Ordering::SeqCst);
    browser
        .wait_for("#retry")
        .await
        .click()
        .await
        .expect("retry");
    browser
        .wait_for("#confirm")
        .await
        .click()
        .await
        .expect("confirmed");
    let done = browser.text("#done").await;
    assert!(done.contains("Retry of dead letter"), "{done}");
    eventually("the service to retry it", WAIT, async || {
        dead().await.is_empty()
    })
    .await;
    browser.goto(&console.url("/dead-letters")).await;
    browser.wait_for("#no-dead-letters").await;
    bus.shutdown().await.expect("shuts down");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium at /usr/bin/chromium"]
async fn browser_xss_event_renders_as_text_and_no_script_runs() {
    let payload = r#"<script>window.__pwned=1;document.title='pwned'</script>"><img src=x onerror="window.__pwned=2;document.title='pwned'">"#;
    let data = serde_json::to_string(&json!({ "note": payload })).expect("json");
    let s = Scratch::new();
    s.publish(
        "order.placed",
        &data,
        &[
            "--correlation-id",
            payload,
            "--subject",
            payload,
            "--header",
            &format!("note={payload}"),
        ],
    );
    let console = Console::start(&s.url, &[]);
    let browser = Browser::start().await;
    // The live page first, so the event also arrives through the script.
    browser.goto(&console.url("/")).await;
    eventually("the live page to connect", WAIT, async || {
        browser.text("#status").await.starts_with("following")
    })
    .await;
    s.publish("order.placed", &data, &["--source", payload]);
    eventually("the event on the live page", WAIT, async || {
        browser.count("#live-rows tr").await == 1
    })
    .await;
    let pages = [
        "/",
        "/history",
        "/events/1",
        "/causation?correlation_id=%3Cscript%3E",
        "/topics",
    ];
    for path in pages {
        if path != "/" {
            browser.goto(&console.url(path)).await;
            browser.wait_for("main h1").await;
        }
        let pwned = browser
            .client()
            .execute(
                "return window.__pwned === undefined && document.title !== 'pwned';",
                vec![],
            )
            .await
            .expect("script runs");
        assert_eq!(pwned, json!(true), "a script from the event ran on {path}");
        assert_eq!(browser.count("main img, main script").await, 0, "{path}");
    }
    browser.goto(&console.url("/events/1")).await;
    let shown = browser.text("#data").await;
    assert!(
        shown.contains("<script>window.__pwned=1"),
        "shown as text: {shown}"
    );
    browser.screenshot("xss-event").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium at /usr/bin/chromium"]
async fn browser_without_the_token_a_non_loopback_console_refuses() {
    let s = Scratch::new();
    s.publish("order.placed", r#"{"id":1}"#, &[]);
    let refused = s
        .cmd()
        .env_remove("EVENTBUS_UI_TOKEN")
        .args(["ui", "--listen", "0.0.0.0:0"])
        .output()
        .expect("runs");
    assert_eq!(refused.status.code(), Some(2));

    let console = Console::start(&s.url, &["--listen", "0.0.0.0:0", "--token", TOKEN]);
    let browser = Browser::start().await;
    browser.goto(&console.url("/history")).await;
    assert_eq!(browser.text("main h1").await, "Token needed");
    browser.screenshot("token-needed").await;
    browser
        .goto(&console.url(&format!("/history?token={TOKEN}")))
        .await;
    assert_eq!(browser.text("main h1").await, "History");
    // The cookie carries it from here on.
    browser.goto(&console.url("/topics")).await;
    assert_eq!(browser.text("main h1").await, "Topics");
    browser.close().await;
}
