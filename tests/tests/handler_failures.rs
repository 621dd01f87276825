//! Failing and panicking handlers: retried with the attempt number, counted,
//! and never a crash of the bus or a stall of the other handlers.

use eventbus::prelude::*;
use eventbus::testing::TestBus;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tests::{OrderEvent, isolated};

fn stat(bus: &Bus, name: &str) -> eventbus::HandlerStats {
    bus.stats().into_iter().find(|s| s.name == name).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_handler_failing_k_times_succeeds_on_attempt_k_plus_one() {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let flaky = {
        let attempts = Arc::clone(&attempts);
        FnHandler::new("flaky", move |_ev: Envelope<OrderEvent>, ctx: Context| {
            let attempts = Arc::clone(&attempts);
            async move {
                attempts.lock().unwrap().push(ctx.attempt());
                if ctx.attempt() <= 2 {
                    return Err(std::io::Error::other(format!(
                        "attempt {} fails",
                        ctx.attempt()
                    )));
                }
                Ok(())
            }
        })
        .retry(3)
    };
    let bus = TestBus::builder().closure(flaky).build().await.unwrap();
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    bus.settled().await.unwrap();
    assert_eq!(*attempts.lock().unwrap(), [1, 2, 3]);
    let s = stat(&bus, "flaky");
    assert_eq!((s.handled, s.retried, s.failed), (1, 2, 0));
}

#[tokio::test(start_paused = true)]
async fn a_handler_always_failing_gives_up_after_its_retries() {
    let calls = Arc::new(AtomicU32::new(0));
    let broken = {
        let calls = Arc::clone(&calls);
        FnHandler::new("broken", move |_ev: Envelope<OrderEvent>, _ctx: Context| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(anyhow_like("nope")) }
        })
        .retry(2)
    };
    let bus = TestBus::builder().closure(broken).build().await.unwrap();
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    bus.publish(OrderEvent::Shipped { id: 2 }).await.unwrap();
    bus.settled().await.unwrap();
    assert_eq!(stat(&bus, "broken").failed, 2, "both given up");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        6,
        "1 attempt + 2 retries per event"
    );
}

fn anyhow_like(msg: &str) -> Box<dyn std::error::Error + Send + Sync> {
    msg.into()
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_is_a_failure_and_others_keep_running() {
    let panicky = FnHandler::new(
        "panicky",
        |ev: Envelope<OrderEvent>, _ctx: Context| async move {
            if let OrderEvent::Shipped { id: 1 } = *ev {
                panic!("boom on order 1");
            }
        },
    )
    .retry(1);
    let counter = FnHandler::new(
        "counter",
        |_ev: Envelope<OrderEvent>, _ctx: Context| async {},
    );
    let bus = TestBus::builder()
        .closure(panicky)
        .closure(counter)
        .build()
        .await
        .unwrap();
    for id in 0..3 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    bus.settled().await.unwrap();
    let s = stat(&bus, "panicky");
    assert_eq!(
        (s.handled, s.failed),
        (2, 1),
        "the panicking handler moves on"
    );
    assert_eq!(s.panicked, 2, "first attempt and its retry");
    assert_eq!(
        bus.handled_by("counter").len(),
        3,
        "the other handler saw all"
    );
    // The bus still takes work.
    bus.publish(OrderEvent::Shipped { id: 9 }).await.unwrap();
    bus.settled().await.unwrap();
    assert_eq!(stat(&bus, "panicky").handled, 3);
}

#[tokio::test]
async fn undecodable_data_fails_without_retries_and_without_crashing() {
    let bus = isolated()
        .handler(
            FnHandler::new("orders", |_ev: Envelope<OrderEvent>, _ctx: Context| async {
            })
            .retry(5),
        )
        .build()
        .await
        .unwrap();
    // A client outside Rust published data that does not fit the topic.
    let bad = eventbus::RawEnvelope::from_cloudevent_json(
        br#"{"specversion":"1.0","id":"0190e0a0-0000-7000-8000-000000000001","source":"js",
            "type":"order.placed","data":{"id":"seven"}}"#,
    )
    .unwrap();
    let stored = bus
        .store()
        .append(eventbus::Draft::from_envelope(&bad))
        .await
        .unwrap();
    let handler = eventbus::Envelope::<OrderEvent>::from_raw(&stored).unwrap_err();
    assert!(handler.to_string().contains("order.placed"), "{handler}");
    // The bus's own routing of stored data goes through replay here.
    let report = bus.replay().run().await.unwrap();
    assert_eq!((report.events, report.failed), (1, 1));
    assert_eq!(
        stat(&bus, "orders").retried,
        0,
        "decode errors are not retried"
    );
    bus.shutdown().await.unwrap();
}
