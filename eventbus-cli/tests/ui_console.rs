//! `eventbus ui` over HTTP against a real SQLite file: the pages, the
//! token and CSRF checks, escaping, the causation picture, the live feed
//! and a dead letter retried through the console by a service in this
//! process. The same scenarios in Chromium are in `ui_browser.rs`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::store::{DeadLetterQuery, NewDeadLetter, Query};
use support::console::{Console, eventually, in_store, input_value};
use support::{Scratch, assert_error, bin};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const TOKEN: &str = "correct-horse-battery-staple";

/// Data no page may render as markup.
const XSS: &str =
    r#"{"note":"<script>window.__pwned=1</script>\"><img src=x onerror=\"window.__pwned=2\">"}"#;

#[test]
fn a_non_loopback_address_without_token_refuses_to_start() {
    let s = Scratch::new();
    s.publish("order.placed", r#"{"id":1}"#, &[]);
    let out = s
        .cmd()
        .env_remove("EVENTBUS_UI_TOKEN")
        .args(["ui", "--listen", "0.0.0.0:0"])
        .output()
        .expect("runs");
    let line = assert_error(&out, 2);
    assert!(
        line.contains("0.0.0.0:0 is not a loopback address")
            && line.contains("--token or EVENTBUS_UI_TOKEN"),
        "{line}"
    );
    let out = s
        .cmd()
        .args(["ui", "--listen", "0.0.0.0:0", "--token", "short"])
        .output()
        .expect("runs");
    let line = assert_error(&out, 2);
    assert!(line.contains("at least 16"), "{line}");
    // The check comes before the store: no store needed to be told.
    let out = bin()
        .args([
            "--store",
            "sqlite:///nonexistent/x.db",
            "ui",
            "--listen",
            "[::]:0",
        ])
        .output()
        .expect("runs");
    assert!(assert_error(&out, 2).contains("--token"));
}

#[test]
fn a_missing_store_or_a_taken_port_is_named() {
    let s = Scratch::new();
    let out = s.cmd().args(["ui"]).output().expect("runs");
    let line = assert_error(&out, 1);
    assert!(line.contains("does not exist"), "{line}");

    s.publish("order.placed", r#"{"id":1}"#, &[]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("its address").to_string();
    let out = s
        .cmd()
        .args(["ui", "--listen", &addr])
        .output()
        .expect("runs");
    let line = assert_error(&out, 1);
    assert!(line.contains(&format!("cannot listen on {addr}")), "{line}");
}

#[tokio::test]
async fn with_a_token_every_request_needs_it_and_a_cookie_keeps_it() {
    let s = Scratch::new();
    s.publish("order.placed", r#"{"id":1}"#, &[]);
    let console = Console::start(&s.url, &["--token", TOKEN]);
    for path in [
        "/",
        "/history",
        "/metrics",
        "/live/events",
        "/assets/live.js",
    ] {
        let page = console.get(path, &[]).await.expect(401);
        assert!(page.body.contains("?token="), "{path}: {}", page.body);
    }
    console
        .get("/?token=wrong-token-of-same-len", &[])
        .await
        .expect(401);
    let first = console
        .get(&format!("/history?token={TOKEN}"), &[])
        .await
        .expect(200);
    let cookie = first.header("set-cookie").expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(TOKEN),
        "the token itself is not the cookie"
    );
    let session = cookie.split(';').next().expect("name=value");
    console
        .get("/history", &[("Cookie", session)])
        .await
        .expect(200);
    let bearer = format!("Bearer {TOKEN}");
    console
        .get("/metrics", &[("Authorization", &bearer)])
        .await
        .expect(200);
}

#[tokio::test]
async fn without_a_token_only_loopback_host_names_are_answered() {
    let s = Scratch::new();
    s.publish("order.placed", r#"{"id":1}"#, &[]);
    let console = Console::start(&s.url, &[]);
    let page = console.get("/", &[]).await.expect(200);
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    // What a browser sends after DNS rebinding evil.example to 127.0.0.1.
    let mut raw = tokio::net::TcpStream::connect(console.addr)
        .await
        .expect("connects");
    raw.write_all(b"GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        .await
        .expect("sends");
    let mut status = String::new();
    BufReader::new(raw)
        .read_line(&mut status)
        .await
        .expect("reads");
    assert!(status.contains(" 403 "), "{status}");
}

/// Two dead letters of `billing` stored directly: (ids).
async fn dead_letters(s: &Scratch) -> Vec<u64> {
    s.publish("order.placed", r#"{"id":7}"#, &[]);
    in_store(&s.url, async |store| {
        let env = store
            .query(Query::default())
            .next()
            .await
            .expect("an event")
            .expect("readable");
        let mut ids = Vec::new();
        for error in ["<b>gateway</b> down", "timeout"] {
            let dead = NewDeadLetter {
                handler: "billing".into(),
                envelope: env.clone(),
                error: error.into(),
                attempts: 3,
            };
            let id = store
                .dead_letter_store()
                .unwrap()
                .add_dead_letter(dead)
                .await;
            ids.push(id.expect("stored"));
        }
        ids
    })
    .await
}

#[tokio::test]
async fn forms_without_this_consoles_csrf_token_are_refused() {
    let s = Scratch::new();
    let ids = dead_letters(&s).await;
    let console = Console::start(&s.url, &[]);
    let retry = format!("/dead-letters/{}/retry", ids[0]);
    let confirm = console.get(&retry, &[]).await.expect(200);
    let csrf = input_value(&confirm.body, "csrf").expect("a csrf field");
    assert_eq!(csrf.len(), 64);
    for fields in [vec![], vec![("csrf", "forged")]] {
        let refused = console.post(&retry, &fields, &[]).await.expect(403);
        assert!(refused.body.contains("CSRF"), "{}", refused.body);
        console
            .post("/dead-letters/purge", &fields, &[])
            .await
            .expect(403);
    }
    let untouched = in_store(&s.url, async |store| {
        let all = store.dead_letter_store().unwrap();
        all.dead_letters(DeadLetterQuery::all())
            .await
            .expect("listed")
    })
    .await;
    assert_eq!(untouched.len(), 2);
    assert!(untouched.iter().all(|d| !d.retry_requested));

    // With the token: the retry is requested, and purge deletes the rest.
    let done = console
        .post(&retry, &[("csrf", &csrf)], &[])
        .await
        .expect(200);
    assert!(done.body.contains("Retry of dead letter"), "{}", done.body);
    let page = console.get("/dead-letters/purge", &[]).await.expect(200);
    assert!(
        page.body.contains("Delete 2 dead letter(s)"),
        "{}",
        page.body
    );
    let purged = console
        .post("/dead-letters/purge", &[("csrf", &csrf)], &[])
        .await
        .expect(200);
    assert!(
        purged.body.contains("Deleted 2 dead letter(s)"),
        "{}",
        purged.body
    );
    let list = console.get("/dead-letters", &[]).await.expect(200);
    assert!(
        list.body.contains(r#"id="no-dead-letters""#),
        "{}",
        list.body
    );
}

#[tokio::test]
async fn values_from_events_and_dead_letters_are_escaped() {
    let s = Scratch::new();
    s.publish(
        "order.placed",
        XSS,
        &[
            "--correlation-id",
            "<i>c</i>",
            "--subject",
            "\"><svg onload=x>",
            "--source",
            "<b>src</b>",
            "--header",
            "note=<script>h</script>",
        ],
    );
    in_store(&s.url, async |store| {
        let env = store.query(Query::default()).next().await.unwrap().unwrap();
        let dead = NewDeadLetter {
            handler: "<script>handler</script>".into(),
            envelope: env,
            error: "<img src=x onerror=alert(1)>".into(),
            attempts: 1,
        };
        store
            .dead_letter_store()
            .unwrap()
            .add_dead_letter(dead)
            .await
            .expect("stored");
    })
    .await;
    let console = Console::start(&s.url, &[]);
    for path in [
        "/history",
        "/events/1",
        "/causation?correlation_id=%3Ci%3Ec%3C%2Fi%3E",
        "/topics",
        "/handlers",
        "/dead-letters",
        "/dead-letters/1",
        "/dead-letters/1/retry",
        "/history?source=%3Cscript%3E",
    ] {
        let page = console.get(path, &[]).await.expect(200);
        for raw in ["<script>", "<img", "<svg onload", "<b>", "<i>"] {
            assert!(
                !page.body.contains(raw),
                "{path} holds raw {raw}: {}",
                page.body
            );
        }
    }
    let event = console.get("/events/1", &[]).await.expect(200);
    assert!(
        event
            .body
            .contains("&lt;script&gt;window.__pwned=1&lt;/script&gt;"),
        "{}",
        event.body
    );
    assert!(
        event.body.contains("&lt;script&gt;h&lt;/script&gt;"),
        "the header: {}",
        event.body
    );
}

#[tokio::test]
async fn history_filters_and_pages_by_seq() {
    let s = Scratch::new();
    s.publish(
        "order.placed",
        r#"{"id":7}"#,
        &["--correlation-id", "req-7"],
    );
    s.publish(
        "order.placed",
        r#"{"id":8}"#,
        &["--correlation-id", "req-8"],
    );
    s.publish(
        "order.shipped",
        r#"{"id":7}"#,
        &["--correlation-id", "req-7", "--subject", "o7"],
    );
    let console = Console::start(&s.url, &[]);
    let rows = |body: &str| body.matches(r#"<tr><td><a href="/events/"#).count();

    let found = console
        .get("/history?correlation_id=req-7", &[])
        .await
        .expect(200);
    assert_eq!(rows(&found.body), 2, "{}", found.body);
    assert!(
        found.body.contains(r#"href="/events/1""#) && found.body.contains(r#"href="/events/3""#)
    );
    let by_subject = console
        .get("/history?subject=o7&pattern=order.*", &[])
        .await
        .expect(200);
    assert_eq!(rows(&by_subject.body), 1);
    let none = console
        .get(
            "/history?since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z",
            &[],
        )
        .await;
    assert!(none.expect(200).body.contains("No events match"));
    let recent = console.get("/history?since=1h", &[]).await.expect(200);
    assert_eq!(rows(&recent.body), 3);

    // Newest first, one a page, then the next page below it.
    let first = console.get("/history?limit=1", &[]).await.expect(200);
    assert_eq!(rows(&first.body), 1);
    assert!(first.body.contains(r#"href="/events/3""#));
    assert!(
        first
            .body
            .contains(r#"href="/history?before=3&amp;limit=1""#),
        "{}",
        first.body
    );
    let second = console
        .get("/history?before=3&limit=1", &[])
        .await
        .expect(200);
    assert!(second.body.contains(r#"href="/events/2""#));
    let last = console
        .get("/history?before=2&limit=1", &[])
        .await
        .expect(200);
    assert!(
        !last.body.contains("next-page"),
        "no page after the first event"
    );

    for (path, status, says) in [
        ("/history?since=yesterday", 400, "is not a time"),
        ("/history?pattern=order..x", 400, "is not a topic pattern"),
        ("/history?since=1m&until=2h", 400, "is not before"),
        ("/history?before=x", 400, "is not a whole number"),
        ("/events/99", 404, "there is no event with seq 99"),
        ("/events/abc", 400, "is not an event seq"),
        ("/dead-letters/5", 404, "there is no dead letter 5"),
        ("/nowhere", 404, "there is no page at /nowhere"),
    ] {
        let page = console.get(path, &[]).await.expect(status);
        assert!(page.body.contains(says), "{path}: {}", page.body);
    }
}

/// An order a handler answers with a charge and a reservation.
#[derive(Event, Clone, Debug)]
#[event(topic = "order.placed")]
struct Placed {
    id: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_causation_picture_links_causes_to_effects() {
    let s = Scratch::new();
    // A real handler publishes the effects: the bus names it on each.
    let billing = FnHandler::new("billing", |ev: Envelope<Placed>, ctx: Context| async move {
        for topic in ["payment.charged", "stock.reserved"] {
            ctx.publish_json(topic, &serde_json::json!({ "id": ev.id }))
                .await?;
        }
        Ok::<_, eventbus::Error>(())
    });
    let bus = eventbus::Bus::builder()
        .store(&s.url)
        .no_linked_handlers()
        .handler(billing)
        .build()
        .await
        .expect("bus starts");
    bus.publish(Placed { id: 9 })
        .correlation_id("req-9")
        .await
        .expect("published");
    eventually(
        "the handler's two effects",
        Duration::from_secs(10),
        async || {
            bus.history()
                .correlation_id("req-9")
                .fetch()
                .await
                .expect("history")
                .len()
                == 3
        },
    )
    .await;
    bus.publish_json("order.placed", &serde_json::json!({"id": 10}))
        .correlation_id("req-10")
        .await
        .expect("published");
    bus.shutdown().await.expect("shuts down");

    let console = Console::start(&s.url, &[]);
    let page = console
        .get("/causation?correlation_id=req-9", &[])
        .await
        .expect(200);
    let svg = &page.body[page.body.find("<svg").expect("an svg")..];
    assert_eq!(svg.matches(r#"<g class="node""#).count(), 3, "{svg}");
    for seq in 1..=3 {
        assert!(svg.contains(&format!(r#"data-seq="{seq}""#)), "{svg}");
    }
    assert_eq!(svg.matches(r#"class="edge""#).count(), 2, "{svg}");
    assert!(
        svg.contains(r#"data-from="1" data-to="2""#)
            && svg.contains(r#"data-from="1" data-to="3""#)
    );
    assert!(
        svg.contains("payment.charged") && svg.contains("by billing"),
        "{svg}"
    );
    // Each event page links its cause and its effects.
    let effect = console.get("/events/2", &[]).await.expect(200);
    assert!(
        effect.body.contains(r#"id="cause" href="/events/1""#),
        "{}",
        effect.body
    );
    let cause = console.get("/events/1", &[]).await.expect(200);
    for seq in [2, 3] {
        let link = format!(r#"class="effect" href="/events/{seq}""#);
        assert!(cause.body.contains(&link), "{}", cause.body);
    }
    let empty = console
        .get("/causation?correlation_id=nobody", &[])
        .await
        .expect(200);
    assert!(empty.body.contains("No events have correlation id nobody"));
}

#[tokio::test]
async fn the_live_feed_sends_events_stored_after_it_connected() {
    let s = Scratch::new();
    s.publish("order.placed", r#"{"id":1}"#, &[]);
    let mut console = Console::start(&s.url, &[]);
    let mut stream = tokio::net::TcpStream::connect(console.addr)
        .await
        .expect("connects");
    let request = format!(
        "GET /live/events?pattern=order.* HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        console.addr
    );
    stream.write_all(request.as_bytes()).await.expect("sends");
    let mut lines = BufReader::new(stream).lines();
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("a line within 20 s")
            .expect("reads")
            .expect("the stream stays open")
    };
    while next_line().await != "event: ready" {}
    s.publish("audit.logged", r#"{"id":2}"#, &[]);
    s.publish(
        "order.shipped",
        r#"{"id":3}"#,
        &["--correlation-id", "req-3"],
    );
    let data = loop {
        let line = next_line().await;
        if let Some(data) = line.strip_prefix("data: ")
            && data.starts_with('{')
        {
            break data.to_owned();
        }
    };
    let event: serde_json::Value = serde_json::from_str(&data).expect("json");
    assert_eq!(
        event["topic"], "order.shipped",
        "the pattern left audit.logged out"
    );
    assert_eq!(event["seq"], 3);
    assert_eq!(event["correlationid"], "req-3");
    let live = console.get("/", &[]).await.expect(200);
    assert!(
        live.body
            .contains(r#"<script src="/assets/live.js" defer>"#)
    );
    let js = console.get("/assets/live.js", &[]).await.expect(200);
    assert!(js.body.contains("textContent") && !js.body.contains("innerHTML"));

    // Ctrl-C ends the open feed too, and the console stops.
    let status = console.interrupt(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
    drop(lines);
}

#[tokio::test]
async fn metrics_use_readme_names() {
    let s = Scratch::new();
    s.publish("order.placed", r#"{"id":1}"#, &[]);
    s.publish("order.placed", r#"{"id":2}"#, &[]);
    dead_letters(&s).await;
    in_store(&s.url, async |store| {
        let checkpoints = store.checkpoint_store().unwrap();
        checkpoints
            .save_checkpoint("billing", 1)
            .await
            .expect("saved");
    })
    .await;
    let console = Console::start(&s.url, &[]);
    let metrics = console.get("/metrics", &[]).await.expect(200);
    let text = metrics.body;
    for line in [
        r#"eventbus_published_total{topic="order.placed"} 3"#,
        r#"eventbus_handler_checkpoint{handler="billing"} 1"#,
        r#"eventbus_handler_lag{handler="billing"} 2"#,
        r#"eventbus_dead_letters{handler="billing"} 2"#,
        "eventbus_newest_seq 3",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    }
    let handlers = console.get("/handlers", &[]).await.expect(200);
    assert!(handlers.body.contains(r#"<svg id="handlers-throughput""#));
    let topics = console.get("/topics", &[]).await.expect(200);
    assert!(topics.body.contains(r#"<svg id="topics-counts""#));
}

#[derive(Event, Clone, Debug)]
#[event(topic = "order.placed")]
struct OrderPlaced {
    id: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_retried_from_the_console_is_gone_once_its_handler_succeeds() {
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
                            "gateway down (order {})",
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
    eventually("a dead letter", Duration::from_secs(10), async || {
        !dead().await.is_empty()
    })
    .await;
    let id = dead().await[0].id;

    let console = Console::start(&s.url, &[]);
    let list = console.get("/dead-letters", &[]).await.expect(200);
    assert!(
        list.body.contains("gateway down (order 7)"),
        "{}",
        list.body
    );
    broken.store(false, Ordering::SeqCst);
    let path = format!("/dead-letters/{id}/retry");
    let confirm = console.get(&path, &[]).await.expect(200);
    let csrf = input_value(&confirm.body, "csrf").expect("a csrf field");
    console
        .post(&path, &[("csrf", &csrf)], &[])
        .await
        .expect(200);
    eventually(
        "the service to retry it",
        Duration::from_secs(10),
        async || dead().await.is_empty(),
    )
    .await;
    let list = console.get("/dead-letters", &[]).await.expect(200);
    assert!(list.body.contains("No dead letters"), "{}", list.body);
    bus.shutdown().await.expect("shuts down");
}

#[tokio::test]
async fn sqlite_console_pages_and_live_feed() {
    support::console::every_page_works(&Scratch::new()).await;
}

#[tokio::test]
async fn the_handlers_page_charts_how_far_each_checkpoint_moved() {
    let s = Scratch::new();
    for id in 1..=3 {
        s.publish("order.placed", &format!(r#"{{"id":{id}}}"#), &[]);
    }
    let save = async |seq: u64| {
        in_store(&s.url, async |store| {
            let checkpoints = store.checkpoint_store().unwrap();
            checkpoints
                .save_checkpoint("billing", seq)
                .await
                .expect("saved");
        })
        .await;
    };
    save(1).await;
    let console = Console::start(&s.url, &[]);
    let page = console.get("/handlers", &[]).await.expect(200);
    assert!(
        page.body.contains("after the second sample"),
        "{}",
        page.body
    );
    save(3).await;
    // The next sample comes within 10 s.
    eventually("a progress chart", Duration::from_secs(30), async || {
        let page = console.get("/handlers", &[]).await.expect(200);
        page.body.contains(r#"<svg id="progress-0""#) && page.body.contains("<title>2</title>")
    })
    .await;
}
