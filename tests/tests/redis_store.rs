//! The `redis://` store against a real Redis server (`EVENTBUS_REDIS_URL`,
//! default `redis://127.0.0.1:6379`), each test under a key prefix of its
//! own: history both ways, idempotency, retention, plain clients on both
//! sides, retries, dead letters, admin, and tools that create nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::store::DeadLetterQuery;
use tests::{OrderEvent, RedisScope, eventually, isolated};

fn placed(id: u64) -> OrderEvent {
    OrderEvent::Placed { id, cents: 100 }
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_publish_then_read_history_both_ways() {
    let scope = RedisScope::new("history");
    let bus = isolated().store(scope.url("")).build().await.unwrap();
    let mut seqs = Vec::new();
    for id in 0..600 {
        let event = if id % 3 == 0 {
            OrderEvent::Shipped { id }
        } else {
            placed(id)
        };
        seqs.push(
            bus.publish(event)
                .correlation_id("req-1")
                .await
                .unwrap()
                .seq(),
        );
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seqs increase");

    // More than two pages each way, the pattern applied by the matcher.
    let all = bus.history().fetch().await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq()).collect::<Vec<_>>(), seqs);
    assert_eq!(all[0].correlation_id(), Some("req-1"));
    let newest = bus.history().newest_first().fetch().await.unwrap();
    assert_eq!(newest.len(), 600);
    assert!(newest.windows(2).all(|w| w[0].seq() > w[1].seq()));
    let shipped = bus.history().topic("order.shipped").fetch().await.unwrap();
    assert_eq!(shipped.len(), 200);
    let placed_after = bus
        .history()
        .topic("order.*")
        .after_seq(seqs[299])
        .limit(10)
        .fetch()
        .await
        .unwrap();
    assert_eq!(placed_after.first().map(|e| e.seq()), Some(seqs[300]));
    assert_eq!(placed_after.len(), 10);
    let last_two = bus.history().newest_first().limit(2).fetch().await.unwrap();
    assert_eq!(last_two[0].seq(), seqs[599]);
    let typed = bus
        .history()
        .before_seq(seqs[1])
        .fetch_as::<OrderEvent>()
        .await
        .unwrap();
    assert_eq!(typed.len(), 1);
    assert_eq!(
        *typed[0].as_ref().unwrap().event(),
        OrderEvent::Shipped { id: 0 }
    );
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_a_repeated_idempotency_key_stores_one_event() {
    let scope = RedisScope::new("idem");
    let bus = isolated().store(scope.url("")).build().await.unwrap();
    let first = bus
        .publish(placed(1))
        .idempotency_key("order-1")
        .await
        .unwrap();
    let again = bus
        .publish(OrderEvent::Placed { id: 1, cents: 999 })
        .idempotency_key("order-1")
        .await
        .unwrap();
    assert_eq!((again.seq(), again.id()), (first.seq(), first.id()));
    let len: u64 = redis::cmd("XLEN")
        .arg(scope.key("events"))
        .query(&mut scope.raw())
        .unwrap();
    assert_eq!(len, 1);

    // Clearing everything starts over: the key names no event any more,
    // so the same publish stores anew.
    bus.clear(">").await.unwrap();
    let after_clear = bus
        .publish(placed(1))
        .idempotency_key("order-1")
        .await
        .unwrap();
    assert_ne!(after_clear.id(), first.id());
    let history = bus.history().fetch().await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].id(), after_clear.id());
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_the_longest_windows_and_ages_work_without_overflow() {
    let scope = RedisScope::new("longest");
    let bus = isolated()
        .store(scope.url("&duplicate_window=100y&max_age=100y"))
        .build()
        .await
        .unwrap();
    let first = bus.publish(placed(1)).idempotency_key("k").await.unwrap();
    let again = bus.publish(placed(2)).idempotency_key("k").await.unwrap();
    assert_eq!(again.id(), first.id());
    assert_eq!(bus.history().fetch().await.unwrap().len(), 1);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_max_age_trims_what_is_older() {
    let scope = RedisScope::new("maxage");
    let mut raw = scope.raw();
    // An entry from 1970 by its id: older than any age.
    let _: String = redis::cmd("XADD")
        .arg(scope.key("events"))
        .arg("1-0")
        .arg("type")
        .arg("order.shipped")
        .arg("data")
        .arg(r#"{"id":1}"#)
        .query(&mut raw)
        .unwrap();
    let bus = isolated()
        .store(scope.url("&max_age=1h"))
        .build()
        .await
        .unwrap();
    let old = bus.history().fetch().await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].seq(), 1 << 20, "entry 1-0 is seq 1 << 20");
    let sent = bus.publish(placed(1)).await.unwrap();
    let kept = bus.history().fetch().await.unwrap();
    assert_eq!(
        kept.iter().map(|e| e.seq()).collect::<Vec<_>>(),
        [sent.seq()]
    );
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_max_events_trims_the_oldest() {
    let scope = RedisScope::new("retention");
    let bus = isolated()
        .store(scope.url("&max_events=10"))
        .build()
        .await
        .unwrap();
    for id in 0..2000 {
        bus.publish(placed(id)).await.unwrap();
    }
    let kept = bus.history().fetch().await.unwrap();
    // `MAXLEN ~` trims whole nodes (100 entries by default) at a time.
    assert!(kept.len() < 300, "{} kept", kept.len());
    assert_eq!(
        *kept.last().unwrap().decode::<OrderEvent>().unwrap().event(),
        placed(1999)
    );
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_plain_clients_interoperate_both_ways() {
    let scope = RedisScope::new("interop");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let seen = Arc::clone(&seen);
        FnHandler::new("billing", move |ev: Envelope<OrderEvent>, ctx: Context| {
            seen.lock()
                .unwrap()
                .push((ev.event().clone(), ev.source().to_owned(), ctx.attempt()));
            async {}
        })
    };
    let bus = isolated()
        .store(scope.url(""))
        .handler(handler)
        .build()
        .await
        .unwrap();

    // A client that knows nothing of eventbus adds plain fields.
    let mut raw = scope.raw();
    let _: String = redis::cmd("XADD")
        .arg(scope.key("events"))
        .arg("*")
        .arg("type")
        .arg("order.placed")
        .arg("data")
        .arg(r#"{"id":42,"cents":1250}"#)
        .query(&mut raw)
        .unwrap();
    eventually("the raw entry is handled", Duration::from_secs(10), || {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(
        seen.lock().unwrap()[0],
        (
            OrderEvent::Placed {
                id: 42,
                cents: 1250
            },
            "redis".to_owned(),
            1
        )
    );

    // And eventbus' entries read back as readable fields.
    let sent = bus
        .publish(OrderEvent::Shipped { id: 7 })
        .correlation_id("req-9")
        .await
        .unwrap();
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(scope.key("events"))
        .arg("-")
        .arg("+")
        .query(&mut raw)
        .unwrap();
    let (_, fields) = entries.last().unwrap();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("specversion"), Some("1.0"));
    assert_eq!(field("type"), Some("order.shipped"));
    assert_eq!(field("id"), Some(sent.id().to_string().as_str()));
    assert_eq!(field("correlationid"), Some("req-9"));
    assert_eq!(field("datacontenttype"), Some("application/json"));
    let data: serde_json::Value = serde_json::from_str(field("data").unwrap()).unwrap();
    assert_eq!(data, serde_json::json!({"id": 7}));
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_handlers_retry_and_end_in_the_dead_letters() {
    let scope = RedisScope::new("retries");
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let flaky = {
        let attempts = Arc::clone(&attempts);
        // Fails the first two attempts at every event.
        FnHandler::new("flaky", move |ev: Envelope<OrderEvent>, ctx: Context| {
            attempts.lock().unwrap().push((ev.seq(), ctx.attempt()));
            let attempt = ctx.attempt();
            async move {
                if attempt <= 2 {
                    Err(std::io::Error::other(format!("attempt {attempt} fails")))
                } else {
                    Ok(())
                }
            }
        })
        .retry(3)
        .backoff(Duration::from_millis(20), Duration::from_millis(50))
    };
    let broken = FnHandler::new("broken", |_ev: Envelope<OrderEvent>, _ctx: Context| async {
        Err::<(), _>(std::io::Error::other("warehouse API is down"))
    })
    .retry(2)
    .backoff(Duration::from_millis(20), Duration::from_millis(50));
    let bus = isolated()
        .store(scope.url(""))
        .handler(flaky)
        .handler(broken)
        .build()
        .await
        .unwrap();
    let sent = bus.publish(OrderEvent::Shipped { id: 5 }).await.unwrap();

    let stats = |name: &str| bus.stats().into_iter().find(|s| s.name == name).unwrap();
    eventually(
        "flaky succeeds on attempt 3",
        Duration::from_secs(10),
        || stats("flaky").handled == 1,
    )
    .await;
    assert_eq!(
        *attempts.lock().unwrap(),
        [(sent.seq(), 1), (sent.seq(), 2), (sent.seq(), 3)]
    );
    eventually("broken gives up", Duration::from_secs(10), || {
        stats("broken").dead_lettered == 1
    })
    .await;
    let dead = bus
        .dead_letters()
        .list(DeadLetterQuery::handler("broken"))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].envelope.id(), sent.id());
    assert!(
        dead[0].error.contains("warehouse API is down"),
        "{}",
        dead[0].error
    );

    // Retried from the dead letters, it fails again and stays there.
    assert!(!bus.dead_letters().retry(dead[0].id).await.unwrap());
    let after = bus
        .dead_letters()
        .list(DeadLetterQuery::all())
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].attempts, 6);
    assert_eq!(bus.dead_letters().purge(Some("broken")).await.unwrap(), 1);
    assert!(
        bus.dead_letters()
            .list(DeadLetterQuery::all())
            .await
            .unwrap()
            .is_empty()
    );
    // Both handlers' groups are past every event, nothing pending.
    let newest = bus.history().newest_first().limit(1).fetch().await.unwrap()[0].seq();
    let store = eventbus::store::open(&scope.url("")).await.unwrap();
    let floors = store
        .checkpoint_store()
        .unwrap()
        .checkpoints()
        .await
        .unwrap();
    assert_eq!(
        floors,
        [("broken".to_owned(), newest), ("flaky".to_owned(), newest)]
    );
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_admin_lists_topics_and_clears_by_pattern() {
    let scope = RedisScope::new("admin");
    let bus = isolated().store(scope.url("")).build().await.unwrap();
    for id in 0..5 {
        bus.publish(placed(id)).await.unwrap();
    }
    bus.publish(OrderEvent::Shipped { id: 9 }).await.unwrap();
    let store = eventbus::store::open(&scope.url("")).await.unwrap();
    let admin = store.admin().unwrap();
    let topics = admin.topics().await.unwrap();
    let counts: Vec<(&str, u64)> = topics.iter().map(|t| (t.topic.as_str(), t.count)).collect();
    assert_eq!(counts, [("order.placed", 5), ("order.shipped", 1)]);
    let pattern = eventbus::topic::Pattern::new("order.placed").unwrap();
    assert_eq!(admin.clear(&pattern).await.unwrap(), 5);
    assert_eq!(bus.history().fetch().await.unwrap().len(), 1);
    let everything = eventbus::topic::Pattern::new(">").unwrap();
    assert_eq!(admin.clear(&everything).await.unwrap(), 1);
    assert!(bus.history().fetch().await.unwrap().is_empty());
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_tools_that_only_read_create_nothing() {
    let scope = RedisScope::new("existing");
    let err = eventbus::store::open_existing(&scope.url(""))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, eventbus::Error::StoreNotFound { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&scope.key("events")), "{err}");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", scope.prefix))
        .query(&mut scope.raw())
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");

    let bus = isolated().store(scope.url("")).build().await.unwrap();
    let sent = bus.publish(placed(1)).await.unwrap();
    let store = eventbus::store::open_existing(&scope.url(""))
        .await
        .unwrap();
    let dead = store.dead_letter_store().unwrap();
    assert!(
        dead.dead_letters(DeadLetterQuery::all())
            .await
            .unwrap()
            .is_empty()
    );
    let back: Vec<_> = bus.history().fetch().await.unwrap();
    assert_eq!(back[0].seq(), sent.seq());
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_connection_errors_name_the_server_and_hide_secrets() {
    let err = eventbus::store::open("redis://app:hunter2@127.0.0.1:1/0")
        .await
        .err()
        .unwrap();
    let shown = format!("{} {err:?}", tests::chain(&err));
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("redis://app:***@127.0.0.1:1/0"), "{shown}");
    assert!(matches!(err, eventbus::Error::Unavailable { .. }), "{err}");

    // A wrong password is refused without showing it either.
    let url = tests::redis_server().replacen("redis://", "redis://nobody:hunter2@", 1);
    let err = eventbus::store::open(&url).await.err().unwrap();
    let shown = format!("{} {err:?}", tests::chain(&err));
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_follow_wakes_on_a_new_event_instead_of_polling() {
    use futures_util::StreamExt;
    let scope = RedisScope::new("follow");
    let bus = isolated().store(scope.url("")).build().await.unwrap();
    bus.publish(placed(1)).await.unwrap();
    // A poll far longer than the test may take: only XREAD BLOCK can wake
    // the follower in time.
    let mut shipped = bus
        .history()
        .topic("order.shipped")
        .follow(Duration::from_secs(3600));
    let other = bus.clone();
    let publisher = tokio::spawn(async move {
        // Non-matching traffic first: the follower must not spin on it.
        for id in 2..50 {
            other.publish(placed(id)).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        other.publish(OrderEvent::Shipped { id: 9 }).await.unwrap()
    });
    // Within 4 s: a blocked read gives up after 5 s, so only waking on the
    // new entry gets here in time.
    let got = tokio::time::timeout(Duration::from_secs(4), shipped.next())
        .await
        .expect("the follower woke within 4 s")
        .unwrap()
        .unwrap();
    let sent = publisher.await.unwrap();
    assert_eq!(got.seq(), sent.seq());
    drop(shipped);
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_a_stopped_bus_hands_back_what_it_read_uncounted() {
    const EVENTS: u64 = 40;
    let scope = RedisScope::new("handback");
    // Only a hand-back can bring the entries a stopped bus read back
    // within the test: the ack wait is far longer.
    let url = scope.url("&ack_wait=60s");
    let handled = Arc::new(Mutex::new(Vec::new()));
    // No retries: an entry handed back must not count as an attempt, or it
    // would go to the dead letters without ever being handled.
    let slow = |bus: &'static str| {
        let handled = Arc::clone(&handled);
        FnHandler::new("slow", move |ev: Envelope<OrderEvent>, ctx: Context| {
            handled.lock().unwrap().push((ev.seq(), ctx.attempt(), bus));
            async { tokio::time::sleep(Duration::from_millis(20)).await }
        })
        .retry(0)
        .concurrency(4)
        .start(eventbus::Start::Earliest)
    };
    let publisher = isolated().store(&url).build().await.unwrap();
    let mut sent = Vec::new();
    for id in 0..EVENTS {
        sent.push(publisher.publish(placed(id)).await.unwrap().seq());
    }

    let a = isolated()
        .store(&url)
        .handler(slow("a"))
        .build()
        .await
        .unwrap();
    eventually("bus a to be handling", Duration::from_secs(10), || {
        handled.lock().unwrap().len() >= 4
    })
    .await;
    // Closed before it hands them back, so it cannot take them itself
    // again and again meanwhile.
    tokio::time::timeout(Duration::from_secs(5), a.shutdown())
        .await
        .expect("bus a stops without chasing what it handed back")
        .unwrap();
    let by_a = handled.lock().unwrap().len() as u64;
    assert!(by_a < EVENTS, "bus a stopped before it handled everything");

    let b = isolated()
        .store(&url)
        .handler(slow("b"))
        .build()
        .await
        .unwrap();
    eventually(
        "bus b to handle the rest, long before the ack wait",
        Duration::from_secs(15),
        || handled.lock().unwrap().len() as u64 >= EVENTS,
    )
    .await;
    let mut seen = handled.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen.iter().map(|(seq, ..)| *seq).collect::<Vec<_>>(),
        sent,
        "each event handled once"
    );
    assert!(
        seen.iter().all(|(_, attempt, _)| *attempt == 1),
        "every handling is a first attempt: {seen:?}"
    );
    assert!(
        b.dead_letters()
            .list(DeadLetterQuery::all())
            .await
            .unwrap()
            .is_empty()
    );
    b.shutdown().await.unwrap();
    publisher.shutdown().await.unwrap();
}
