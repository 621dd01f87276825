//! History queries and replay on the memory store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::{Draft, Error};
use tests::{EntityCreated, OrderEvent, eventually, isolated};

async fn seqs(q: eventbus::HistoryQuery) -> Vec<u64> {
    q.fetch().await.unwrap().iter().map(|e| e.seq()).collect()
}

#[tokio::test]
async fn history_filters_combine() {
    let bus = isolated().source("shop").build().await.unwrap();
    let e1 = bus
        .publish(OrderEvent::Placed { id: 1, cents: 1 })
        .correlation_id("a")
        .await
        .unwrap();
    bus.publish(OrderEvent::Shipped { id: 1 })
        .correlation_id("a")
        .source("warehouse")
        .await
        .unwrap();
    let e3 = bus
        .publish(EntityCreated {
            id: "x".into(),
            name: "y".into(),
        })
        .correlation_id("b")
        .await
        .unwrap();
    bus.publish(OrderEvent::Cancelled {
        id: 1,
        reason: "r".into(),
    })
    .await
    .unwrap();

    assert_eq!(seqs(bus.history()).await, [1, 2, 3, 4]);
    assert_eq!(seqs(bus.history().topic("order.*")).await, [1, 2]);
    assert_eq!(seqs(bus.history().topic("order.>")).await, [1, 2, 4]);
    assert_eq!(seqs(bus.history().source("warehouse")).await, [2]);
    assert_eq!(seqs(bus.history().correlation_id("a")).await, [1, 2]);
    assert_eq!(seqs(bus.history().after_seq(1).before_seq(4)).await, [2, 3]);
    assert_eq!(seqs(bus.history().newest_first().limit(2)).await, [4, 3]);
    assert_eq!(seqs(bus.history().topic("order.>").limit(2)).await, [1, 2]);
    assert_eq!(seqs(bus.history().since(e3.time())).await, [3, 4]);
    assert_eq!(seqs(bus.history().until(e3.time())).await, [1, 2]);
    assert_eq!(
        seqs(bus.history().since(e1.time()).source("shop")).await,
        [1, 3, 4]
    );

    let err = bus.history().topic("order.>.x").fetch().await.unwrap_err();
    assert!(matches!(err, Error::InvalidTopic(_)), "{err}");

    let either = bus.history().topics(["entity.*", "order.cancelled.>"]);
    assert_eq!(seqs(either).await, [3, 4]);
    let replaced = bus.history().topic("entity.*").topics(["order.placed"]);
    assert_eq!(seqs(replaced).await, [1]);
    let err = bus
        .history()
        .topics(["order.*", "order..x"])
        .fetch()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("order..x"), "{err}");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_bus_lists_and_clears_topics() {
    let bus = isolated().build().await.unwrap();
    for id in 0..3 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    bus.publish(EntityCreated {
        id: "x".into(),
        name: "y".into(),
    })
    .await
    .unwrap();
    let counts = |topics: Vec<eventbus::store::TopicSummary>| {
        topics
            .into_iter()
            .map(|t| (t.topic, t.count))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        counts(bus.topics().await.unwrap()),
        [("entity.created".into(), 1), ("order.shipped".into(), 3)]
    );
    assert_eq!(bus.clear("order.>").await.unwrap(), 3);
    assert_eq!(
        counts(bus.topics().await.unwrap()),
        [("entity.created".to_owned(), 1)]
    );
    let err = bus.clear("order.>.x").await.unwrap_err();
    assert!(matches!(err, Error::InvalidTopic(_)), "{err}");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn replay_into_a_function_sees_history_in_order_and_counts_failures() {
    let bus = isolated().build().await.unwrap();
    for id in 0..4 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    bus.publish(EntityCreated {
        id: "x".into(),
        name: "y".into(),
    })
    .await
    .unwrap();
    let mut seen = Vec::new();
    let report = bus
        .replay()
        .topics(["order.shipped"])
        .run_with(|env| {
            let replayed = env.is_replay();
            let id = env.data::<serde_json::Value>().unwrap()["id"].as_u64();
            seen.push((env.seq(), replayed));
            async move {
                match id {
                    Some(2) => Err("id 2 is refused"),
                    _ => Ok(()),
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(seen, [(1, true), (2, true), (3, true), (4, true)]);
    assert_eq!((report.events, report.delivered, report.failed), (4, 3, 1));
    let err = bus
        .replay()
        .to_handler("audit")
        .run_with(|_| async { Ok::<(), String>(()) })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("audit"), "{err}");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_memory_ring_keeps_the_newest_events() {
    let bus = isolated()
        .store("memory://?capacity=3")
        .build()
        .await
        .unwrap();
    for id in 0..5 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    assert_eq!(seqs(bus.history()).await, [3, 4, 5]);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_store_urls_are_refused_with_the_reason() {
    for (url, needle) in [
        ("memory://somewhere", "takes no path"),
        ("memory://?capacity=0", "capacity `0`"),
        ("memory://?capasity=3", "unknown option `capasity`"),
        ("memory://?capacity", "has no value"),
        ("postgres://localhost", "unknown store `postgres://`"),
        ("events.db", "expected `scheme://"),
    ] {
        let err = isolated().store(url).build().await.err().unwrap();
        assert!(matches!(err, Error::InvalidStoreUrl { .. }), "{url}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(needle) && msg.contains(url), "{url}: {msg}");
    }
}

#[tokio::test]
async fn fetch_as_reports_undecodable_rows_by_seq_and_keeps_the_rest() {
    let bus = isolated().build().await.unwrap();
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    let bad = eventbus::RawEnvelope::from_cloudevent_json(
        br#"{"specversion":"1.0","id":"0190e0a0-0000-7000-8000-000000000002","source":"js",
            "type":"order.shipped","data":{"id":"one"}}"#,
    )
    .unwrap();
    bus.store()
        .append(Draft::from_envelope(&bad))
        .await
        .unwrap();
    bus.publish(OrderEvent::Shipped { id: 3 }).await.unwrap();

    let rows = bus.history().fetch_as::<OrderEvent>().await.unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(**rows[0].as_ref().unwrap(), OrderEvent::Shipped { id: 1 });
    let (seq, err) = rows[1].as_ref().unwrap_err();
    assert_eq!(*seq, 2);
    assert!(err.to_string().contains("order.shipped"), "{err}");
    assert_eq!(**rows[2].as_ref().unwrap(), OrderEvent::Shipped { id: 3 });
    bus.shutdown().await.unwrap();
}

type Log = Arc<Mutex<Vec<(String, u64, bool)>>>;

fn recorder(name: &'static str, log: &Log) -> FnHandler {
    let log = Arc::clone(log);
    FnHandler::new(name, move |ev: Envelope<OrderEvent>, ctx: Context| {
        let log = Arc::clone(&log);
        async move {
            assert_eq!(ctx.is_replay(), ev.is_replay());
            log.lock()
                .unwrap()
                .push((name.to_owned(), ev.seq(), ctx.is_replay()));
        }
    })
}

fn replays(log: &Log) -> Vec<(String, u64)> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(_, _, replay)| *replay)
        .map(|(n, s, _)| (n.clone(), *s))
        .collect()
}

#[tokio::test]
async fn replay_into_one_handler_marks_the_envelopes() {
    let log = Log::default();
    let bus = isolated()
        .handler(recorder("a", &log))
        .handler(recorder("b", &log).topic("order.shipped"))
        .build()
        .await
        .unwrap();
    bus.publish(OrderEvent::Placed { id: 1, cents: 1 })
        .await
        .unwrap();
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    eventually("live handlings", Duration::from_secs(5), || {
        log.lock().unwrap().len() == 3
    })
    .await;
    assert!(replays(&log).is_empty(), "live deliveries are not marked");

    let report = bus.replay().to_handler("a").run().await.unwrap();
    assert_eq!((report.events, report.delivered, report.failed), (2, 2, 0));
    assert_eq!(replays(&log), [("a".to_owned(), 1), ("a".to_owned(), 2)]);

    // Every handler that takes replays, filtered by topic.
    log.lock().unwrap().clear();
    let report = bus.replay().topic("order.shipped").run().await.unwrap();
    assert_eq!((report.events, report.delivered), (1, 2));
    assert_eq!(replays(&log), [("a".to_owned(), 2), ("b".to_owned(), 2)]);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn replay_skips_handlers_declared_replay_false() {
    let log = Log::default();
    let bus = isolated()
        .handler(recorder("mailer", &log).replay(false))
        .handler(recorder("audit", &log))
        .build()
        .await
        .unwrap();
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    eventually("live handlings", Duration::from_secs(5), || {
        log.lock().unwrap().len() == 2
    })
    .await;

    bus.replay().run().await.unwrap();
    assert_eq!(replays(&log), [("audit".to_owned(), 1)]);

    let refused = bus.replay().to_handler("mailer").run().await.unwrap_err();
    assert!(refused.to_string().contains("replay = false"), "{refused}");
    let unknown = bus.replay().to_handler("nobody").run().await.unwrap_err();
    assert!(matches!(unknown, Error::UnknownHandler { .. }), "{unknown}");
    assert!(unknown.to_string().contains("audit, mailer"), "{unknown}");
    let speed = bus.replay().speed(0.0).run().await.unwrap_err();
    assert!(speed.to_string().contains("positive"), "{speed}");
    bus.shutdown().await.unwrap();
}

fn at(seconds: u32) -> Draft {
    let json = format!(
        r#"{{"specversion":"1.0","id":"0190e0a0-0000-7000-8000-0000000000{seconds:02}",
            "source":"import","type":"order.shipped","time":"2026-01-01T00:00:{seconds:02}Z",
            "data":{{"id":{seconds}}}}}"#
    );
    Draft::from_envelope(&eventbus::RawEnvelope::from_cloudevent_json(json.as_bytes()).unwrap())
}

#[tokio::test(start_paused = true)]
async fn replay_speed_scales_the_original_spacing() {
    let log = Log::default();
    let bus = isolated()
        .handler(recorder("a", &log))
        .build()
        .await
        .unwrap();
    // Three events 10 s apart: at speed 10 the replay takes 2 s of (paused,
    // auto-advancing) tokio time.
    for s in [0, 10, 20] {
        bus.store().append(at(s)).await.unwrap();
    }
    let start = tokio::time::Instant::now();
    let report = bus.replay().speed(10.0).run().await.unwrap();
    let took = start.elapsed();
    assert_eq!(report.delivered, 3);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(2100),
        "{took:?}"
    );
    let start = tokio::time::Instant::now();
    bus.replay().run().await.unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "no speed: flat out"
    );
    let start = tokio::time::Instant::now();
    let report = bus
        .replay()
        .speed(20.0)
        .run_with(|_| async { Ok::<(), String>(()) })
        .await
        .unwrap();
    let took = start.elapsed();
    assert_eq!(report.delivered, 3);
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(1100),
        "a function is paced alike: {took:?}"
    );
    bus.shutdown().await.unwrap();
}
