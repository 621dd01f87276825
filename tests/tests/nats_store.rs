//! The NATS JetStream store against a real server: publishing, history,
//! idempotency, the wire format with plain NATS clients, handlers as
//! durable consumers, retries and dead letters. Each test works in a
//! stream and subject prefix of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::store::{DeadLetterQuery, NewDeadLetter, Query};
use eventbus::{Draft, Error, Start};
use tests::{NatsScope, OrderEvent, Seen, eventually, eventually_async, isolated, recorder};

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_publish_then_read_history_both_ways() {
    let scope = NatsScope::new("history");
    let bus = isolated().store(scope.url("")).build().await.unwrap();
    let mut seqs = Vec::new();
    for id in 1..=5 {
        let env = bus
            .publish(OrderEvent::Placed {
                id,
                cents: id * 100,
            })
            .correlation_id(format!("c{}", id % 2))
            .await
            .unwrap();
        seqs.push(env.seq());
    }
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "seqs are stream sequences");

    let all = bus.history().fetch().await.unwrap();
    assert_eq!(all.len(), 6);
    let placed = bus
        .history()
        .topic("order.placed")
        .fetch_as::<OrderEvent>()
        .await
        .unwrap();
    let ids: Vec<u64> = placed
        .iter()
        .map(|e| match e.as_ref().unwrap().event() {
            OrderEvent::Placed { id, .. } => *id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    let newest: Vec<u64> = bus
        .history()
        .newest_first()
        .limit(3)
        .fetch()
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq())
        .collect();
    assert_eq!(newest, [6, 5, 4]);
    let odd = bus.history().correlation_id("c1").fetch().await.unwrap();
    assert_eq!(odd.iter().map(|e| e.seq()).collect::<Vec<_>>(), [1, 3, 5]);
    let either = bus
        .history()
        .topics(["order.shipped", "entity.*"])
        .fetch()
        .await
        .unwrap();
    assert_eq!(either.iter().map(|e| e.seq()).collect::<Vec<_>>(), [6]);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_a_repeated_idempotency_key_stores_one_message() {
    let scope = NatsScope::new("idem");
    let bus = isolated().store(scope.url("")).build().await.unwrap();
    let first = bus
        .publish(OrderEvent::Placed { id: 1, cents: 100 })
        .idempotency_key("order-1")
        .await
        .unwrap();
    let again = bus
        .publish(OrderEvent::Placed { id: 1, cents: 999 })
        .idempotency_key("order-1")
        .await
        .unwrap();
    assert_eq!(again.id(), first.id(), "the first envelope comes back");
    assert_eq!(again.seq(), first.seq());
    let stored = bus.history().fetch_as::<OrderEvent>().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        *stored[0].as_ref().unwrap().event(),
        OrderEvent::Placed { id: 1, cents: 100 }
    );
    // The same guard holds for the server's own count.
    let js = async_nats::jetstream::new(scope.raw_client().await);
    let mut stream = js.get_stream(&scope.stream).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_plain_clients_interoperate_both_ways() {
    let scope = NatsScope::new("interop");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let seen = Arc::clone(&seen);
        FnHandler::new("billing", move |ev: Envelope<OrderEvent>, _ctx: Context| {
            seen.lock()
                .unwrap()
                .push((ev.event().clone(), ev.source().to_owned()));
            async {}
        })
    };
    let bus = isolated()
        .store(scope.url(""))
        .handler(handler)
        .build()
        .await
        .unwrap();
    let client = scope.raw_client().await;

    // A client that knows nothing of eventbus publishes plain JSON.
    let js = async_nats::jetstream::new(client.clone());
    js.publish(
        scope.subject("order.placed"),
        r#"{"id":42,"cents":1250}"#.into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    eventually(
        "the raw message is handled",
        Duration::from_secs(10),
        || !seen.lock().unwrap().is_empty(),
    )
    .await;
    assert_eq!(
        seen.lock().unwrap()[0],
        (
            OrderEvent::Placed {
                id: 42,
                cents: 1250
            },
            "nats".to_owned()
        )
    );

    // And reads what eventbus publishes: the body is the data, the
    // metadata is in CloudEvents headers.
    let sent = bus
        .publish(OrderEvent::Shipped { id: 42 })
        .correlation_id("req-9")
        .header("tenant", "acme")
        .unwrap()
        .await
        .unwrap();
    let stream = js.get_stream(&scope.stream).await.unwrap();
    let message = stream.get_raw_message(sent.seq()).await.unwrap();
    assert_eq!(message.subject.as_str(), scope.subject("order.shipped"));
    let body: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(body, serde_json::json!({"id": 42}));
    let headers = message.headers;
    let header = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
    assert_eq!(header("ce-specversion").as_deref(), Some("1.0"));
    assert_eq!(header("ce-type").as_deref(), Some("order.shipped"));
    assert_eq!(header("ce-id"), Some(sent.id().to_string()));
    assert_eq!(header("ce-correlationid").as_deref(), Some("req-9"));
    assert_eq!(header("ce-tenant").as_deref(), Some("acme"));
    assert_eq!(header("Nats-Msg-Id"), Some(sent.id().to_string()));
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_handlers_retry_with_naks_and_end_in_the_dead_letters() {
    let scope = NatsScope::new("retries");
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
    bus.shutdown().await.unwrap();
}

/// A handler named `ship` that gives up at once while `broken` is set, and
/// records the seqs it handled once it is not.
fn switchable() -> (FnHandler, Arc<AtomicBool>, Arc<Mutex<Vec<u64>>>) {
    let broken = Arc::new(AtomicBool::new(true));
    let handled = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let (broken, handled) = (Arc::clone(&broken), Arc::clone(&handled));
        FnHandler::new("ship", move |ev: Envelope<OrderEvent>, _ctx: Context| {
            let fail = broken.load(Ordering::SeqCst);
            if !fail {
                handled.lock().unwrap().push(ev.seq());
            }
            async move {
                if fail {
                    Err(std::io::Error::other("down"))
                } else {
                    Ok(())
                }
            }
        })
        .retry(0)
    };
    (handler, broken, handled)
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_retry_from_the_dead_letters_delivers_again() {
    let scope = NatsScope::new("dlqretry");
    let (handler, broken, handled) = switchable();
    let bus = isolated()
        .store(scope.url(""))
        .handler(handler)
        .build()
        .await
        .unwrap();
    let sent = bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    eventually("a dead letter", Duration::from_secs(10), || {
        bus.stats()[0].dead_lettered == 1
    })
    .await;
    let id = bus
        .dead_letters()
        .list(DeadLetterQuery::all())
        .await
        .unwrap()[0]
        .id;
    broken.store(false, Ordering::SeqCst);
    assert!(bus.dead_letters().retry(id).await.unwrap());
    assert_eq!(*handled.lock().unwrap(), [sent.seq()]);
    assert!(
        bus.dead_letters()
            .list(DeadLetterQuery::all())
            .await
            .unwrap()
            .is_empty()
    );
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_undecodable_messages_go_to_the_dead_letters_at_once() {
    let scope = NatsScope::new("undecodable");
    let calls = Arc::new(Mutex::new(0));
    let handler = {
        let calls = Arc::clone(&calls);
        FnHandler::new(
            "billing",
            move |_ev: Envelope<OrderEvent>, _ctx: Context| {
                *calls.lock().unwrap() += 1;
                async {}
            },
        )
    };
    let bus = isolated()
        .store(scope.url(""))
        .handler(handler)
        .build()
        .await
        .unwrap();
    let js = async_nats::jetstream::new(scope.raw_client().await);
    for body in ["not json at all", r#"{"id":"seven"}"#] {
        js.publish(scope.subject("order.placed"), body.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    eventually("both are dead letters", Duration::from_secs(10), || {
        bus.stats()[0].dead_lettered == 2
    })
    .await;
    let dead = bus
        .dead_letters()
        .list(DeadLetterQuery::all())
        .await
        .unwrap();
    assert_eq!(dead.len(), 2);
    assert!(dead.iter().all(|d| d.attempts == 1), "{dead:?}");
    assert!(dead[0].error.contains("not JSON"), "{}", dead[0].error);
    assert!(
        dead[1].error.contains("does not decode"),
        "{}",
        dead[1].error
    );
    assert_eq!(*calls.lock().unwrap(), 0);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_a_handler_resumes_after_its_ack_floor() {
    let scope = NatsScope::new("resume");
    // A stopped bus's pull request can outlive it on the server for a
    // moment (its unsubscribe is flushed at close, but a loaded CI machine
    // has shown the next events reaching it); the server hands such a
    // delivery out again after the ack wait, kept short here so that this
    // tests resuming, not the default 30 s.
    let url = scope.url("&ack_wait=2s");
    let seen = Seen::default();
    let publisher = isolated().store(url.clone()).build().await.unwrap();
    publisher
        .publish(OrderEvent::Shipped { id: 0 })
        .await
        .unwrap();

    // First run: starts at `latest`, so the event before it is not seen.
    let bus = isolated()
        .store(url.clone())
        .handler(recorder("audit", &seen))
        .build()
        .await
        .unwrap();
    publisher
        .publish(OrderEvent::Shipped { id: 1 })
        .await
        .unwrap();
    eventually("seq 2 handled", Duration::from_secs(10), || {
        seen.lock().unwrap().len() == 1
    })
    .await;
    bus.shutdown().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [2]);

    // Published while the handler is down: delivered when it is back.
    for id in 2..=4 {
        publisher.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    let store = eventbus::store::open(&url).await.unwrap();
    assert_eq!(
        store
            .checkpoint_store()
            .unwrap()
            .load_checkpoint("audit")
            .await
            .unwrap(),
        Some(2)
    );
    let bus = isolated()
        .store(url.clone())
        .handler(recorder("audit", &seen))
        .build()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < 4 {
        if tokio::time::Instant::now() >= deadline {
            let handled = seen.lock().unwrap().clone();
            let server = consumers(&scope).await;
            panic!(
                "timed out waiting for seqs 3 to 5; handled {handled:?}; the server's consumers: {server}"
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(*seen.lock().unwrap(), [2, 3, 4, 5]);
    // Acks travel on their own: wait for the server to count the last one.
    eventually_async(
        "the ack floor to reach 5",
        Duration::from_secs(10),
        || async {
            store
                .checkpoint_store()
                .unwrap()
                .load_checkpoint("audit")
                .await
                .unwrap()
                == Some(5)
        },
    )
    .await;
    bus.shutdown().await.unwrap();
    publisher.shutdown().await.unwrap();
}

/// What the server says of each consumer of the scope's stream, for a
/// failure message.
async fn consumers(scope: &NatsScope) -> String {
    use futures_util::StreamExt;
    let js = async_nats::jetstream::new(scope.raw_client().await);
    let Ok(stream) = js.get_stream(&scope.stream).await else {
        return "(the stream cannot be read)".to_owned();
    };
    let mut out = Vec::new();
    let mut infos = stream.consumers();
    while let Some(Ok(info)) = infos.next().await {
        out.push(format!(
            "{}: delivered {}, ack floor {}, ack pending {}, pending {}, waiting {}, redelivered {}",
            info.name,
            info.delivered.stream_sequence,
            info.ack_floor.stream_sequence,
            info.num_ack_pending,
            info.num_pending,
            info.num_waiting,
            info.num_redelivered
        ));
    }
    out.join("; ")
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_replay_by_time_returns_exactly_the_events_in_order() {
    let scope = NatsScope::new("replay");
    let replayed = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let replayed = Arc::clone(&replayed);
        FnHandler::new(
            "projection",
            move |ev: Envelope<OrderEvent>, ctx: Context| {
                if ctx.is_replay() {
                    replayed.lock().unwrap().push(ev.seq());
                }
                async {}
            },
        )
        .start(Start::Earliest)
    };
    let bus = isolated()
        .store(scope.url(""))
        .handler(handler)
        .build()
        .await
        .unwrap();
    for id in 1..=3 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t0 = chrono::Utc::now();
    let mut expected = Vec::new();
    for id in 4..=8 {
        expected.push(bus.publish(OrderEvent::Shipped { id }).await.unwrap().seq());
    }
    let since = bus.history().since(t0).fetch().await.unwrap();
    assert_eq!(since.iter().map(|e| e.seq()).collect::<Vec<_>>(), expected);
    let report = bus
        .replay()
        .since(t0)
        .to_handler("projection")
        .run()
        .await
        .unwrap();
    assert_eq!(report.events, 5);
    assert_eq!(*replayed.lock().unwrap(), expected);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_an_existing_stream_with_other_settings_is_refused() {
    let scope = NatsScope::new("settings");
    let first = eventbus::store::open(&scope.url("&max_age=1h"))
        .await
        .unwrap();
    first.close().await.unwrap();
    let err = eventbus::store::open(&scope.url("&max_age=2h"))
        .await
        .err()
        .expect("a stream with another max_age is refused")
        .to_string();
    assert!(
        err.contains("max_age is 3600s, the URL asks 7200s"),
        "{err}"
    );
    assert!(err.contains(&scope.stream), "{err}");
    // Not asking for a setting accepts what the stream has.
    eventbus::store::open(&scope.url("")).await.unwrap();
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_connection_errors_name_the_server_and_hide_secrets() {
    let err = eventbus::store::open("nats://alice:s3cret@127.0.0.1:1?stream=S")
        .await
        .err()
        .expect("nothing listens on port 1")
        .to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_a_long_handling_signals_progress_and_is_not_redelivered() {
    let scope = NatsScope::new("progress");
    // An ack wait far shorter than the handling: without progress signals
    // the server would deliver the event again after one second.
    let url = scope.url("&ack_wait=1s");
    let calls = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let calls = Arc::clone(&calls);
        FnHandler::new("slow", move |ev: Envelope<OrderEvent>, ctx: Context| {
            calls.lock().unwrap().push((ev.seq(), ctx.attempt()));
            async { tokio::time::sleep(Duration::from_millis(2500)).await }
        })
        .concurrency(2)
    };
    let bus = isolated()
        .store(&url)
        .handler(handler)
        .build()
        .await
        .unwrap();
    let sent = bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    let store = eventbus::store::open(&url).await.unwrap();
    eventually_async("the ack", Duration::from_secs(20), || async {
        store
            .checkpoint_store()
            .unwrap()
            .load_checkpoint("slow")
            .await
            .unwrap()
            == Some(sent.seq())
    })
    .await;
    assert_eq!(*calls.lock().unwrap(), [(sent.seq(), 1)]);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_a_history_tail_follows_what_other_processes_publish() {
    let scope = NatsScope::new("follow");
    let reader = isolated().store(scope.url("")).build().await.unwrap();
    let writer = isolated().store(scope.url("")).build().await.unwrap();
    writer.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    let mut tail = reader
        .history()
        .topic("order.*")
        .follow(Duration::from_millis(20));
    assert_eq!(next_seq(&mut tail).await, 1);
    writer.publish(OrderEvent::Shipped { id: 2 }).await.unwrap();
    writer.publish(OrderEvent::Shipped { id: 3 }).await.unwrap();
    assert_eq!(next_seq(&mut tail).await, 2);
    assert_eq!(next_seq(&mut tail).await, 3);
    writer.shutdown().await.unwrap();
    reader.shutdown().await.unwrap();
}

async fn next_seq(
    tail: &mut eventbus::store::BoxStream<'static, eventbus::Result<RawEnvelope>>,
) -> u64 {
    use futures_util::StreamExt;
    tokio::time::timeout(Duration::from_secs(10), tail.next())
        .await
        .expect("the tail yields within 10 s")
        .expect("the tail goes on")
        .expect("a readable event")
        .seq()
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_a_retry_requested_elsewhere_is_made_by_the_bus_running_the_handler() {
    let scope = NatsScope::new("dlqrequest");
    let (handler, broken, handled) = switchable();
    let bus = isolated()
        .store(scope.url(""))
        .handler(handler)
        .dead_letter_poll(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    bus.publish(OrderEvent::Shipped { id: 2 }).await.unwrap();
    eventually("two dead letters", Duration::from_secs(10), || {
        bus.stats()[0].dead_lettered == 2
    })
    .await;
    broken.store(false, Ordering::SeqCst);
    // As `eventbus dlq retry` does, from another connection.
    let operator = eventbus::store::open(&scope.url("")).await.unwrap();
    let dead = operator
        .dead_letter_store()
        .unwrap()
        .dead_letters(DeadLetterQuery::all())
        .await
        .unwrap();
    assert!(
        operator
            .dead_letter_store()
            .unwrap()
            .request_retry(dead[0].id)
            .await
            .unwrap()
    );
    let marked = operator
        .dead_letter_store()
        .unwrap()
        .dead_letters(DeadLetterQuery::all().retry_requested())
        .await
        .unwrap();
    assert_eq!(
        marked.iter().map(|d| d.id).collect::<Vec<_>>(),
        [dead[0].id]
    );
    eventually("the marked one is retried", Duration::from_secs(10), || {
        handled.lock().unwrap().len() == 1
    })
    .await;
    eventually_async(
        "the retried one to leave",
        Duration::from_secs(10),
        || async {
            operator
                .dead_letter_store()
                .unwrap()
                .dead_letters(DeadLetterQuery::all())
                .await
                .unwrap()
                .len()
                == 1
        },
    )
    .await;
    let left = operator
        .dead_letter_store()
        .unwrap()
        .dead_letters(DeadLetterQuery::all())
        .await
        .unwrap();
    assert_eq!(left[0].id, dead[1].id, "only the unmarked one is left");
    assert!(
        operator
            .dead_letter_store()
            .unwrap()
            .dead_letters(DeadLetterQuery::all().retry_requested())
            .await
            .unwrap()
            .is_empty()
    );
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_open_existing_needs_the_stream_and_creates_nothing() {
    let scope = NatsScope::new("existing");
    let js = async_nats::jetstream::new(scope.raw_client().await);
    let bucket_stream = format!("KV_{}_dead_letters", scope.stream);
    let exists = async |name: &str| match js.get_stream(name).await {
        Ok(_) => true,
        Err(e) if e.to_string().contains("stream not found") => false,
        Err(e) => panic!("looking up {name}: {e}"),
    };

    let err = eventbus::store::open_existing(&scope.url(""))
        .await
        .err()
        .expect("no such stream");
    assert!(
        matches!(err, Error::StoreNotFound { store: "nats", .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "stream `{}` does not exist on nats://",
            scope.stream
        )) && text.contains("check `?stream=`"),
        "{text}"
    );
    assert!(!exists(&scope.stream).await, "the stream was created");
    assert!(!exists(&bucket_stream).await, "the bucket was created");

    // A stream whose dead-letter bucket is gone: none to list, retry or
    // purge, and looking creates none.
    let creating = eventbus::store::open(&scope.url("")).await.unwrap();
    let env = creating
        .append(Draft::from_envelope(
            &RawEnvelope::from_cloudevent_json(
                format!(
                    r#"{{"specversion":"1.0","id":"{}","source":"t","type":"order.placed","data":{{"id":1}}}}"#,
                    uuid::Uuid::now_v7()
                )
                .as_bytes(),
            )
            .unwrap(),
        ))
        .await
        .unwrap();
    js.delete_stream(&bucket_stream).await.unwrap();
    let existing = eventbus::store::open_existing(&scope.url(""))
        .await
        .unwrap();
    assert_eq!(existing.query(Query::default()).count().await, 1);
    assert!(
        existing
            .dead_letter_store()
            .unwrap()
            .dead_letters(DeadLetterQuery::all())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !existing
            .dead_letter_store()
            .unwrap()
            .request_retry(1)
            .await
            .unwrap()
    );
    assert!(
        !existing
            .dead_letter_store()
            .unwrap()
            .remove_dead_letter(1)
            .await
            .unwrap()
    );
    assert_eq!(
        existing
            .dead_letter_store()
            .unwrap()
            .purge_dead_letters(None)
            .await
            .unwrap(),
        0
    );
    assert!(!exists(&bucket_stream).await, "looking created the bucket");

    // Once a bus elsewhere makes the bucket and buries an event there, it
    // is found.
    creating.close().await.unwrap();
    let burying = eventbus::store::open(&scope.url("")).await.unwrap();
    let dead = NewDeadLetter {
        handler: "billing".into(),
        envelope: env,
        error: "declined".into(),
        attempts: 3,
    };
    let id = burying
        .dead_letter_store()
        .unwrap()
        .add_dead_letter(dead)
        .await
        .unwrap();
    let listed = existing
        .dead_letter_store()
        .unwrap()
        .dead_letters(DeadLetterQuery::all())
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|d| d.id).collect::<Vec<_>>(), [id]);
    burying.close().await.unwrap();
    existing.close().await.unwrap();

    // Burying through a store opened this way makes the bucket, as `open`
    // would have.
    js.delete_stream(&bucket_stream).await.unwrap();
    let existing = eventbus::store::open_existing(&scope.url(""))
        .await
        .unwrap();
    let first = listed.into_iter().next().expect("one dead letter");
    let dead = NewDeadLetter {
        handler: first.handler,
        envelope: first.envelope,
        error: first.error,
        attempts: first.attempts,
    };
    let id = existing
        .dead_letter_store()
        .unwrap()
        .add_dead_letter(dead)
        .await
        .unwrap();
    assert!(exists(&bucket_stream).await);
    let listed = existing
        .dead_letter_store()
        .unwrap()
        .dead_letters(DeadLetterQuery::all())
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|d| d.id).collect::<Vec<_>>(), [id]);
    existing.close().await.unwrap();
}
