//! `eventbus::testing` tests itself: `settled()` waits for chains,
//! retries and due schedules; paused time runs long backoffs and schedules
//! at once; assertion failures say what was expected and what was seen;
//! injected faults reach the dead letters.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use eventbus::DeadLettered;
use eventbus::assert_published;
use eventbus::prelude::*;
use eventbus::testing::{InFlightState, TestBus};
use futures_util::FutureExt;
use tests::OrderEvent;

#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "chain.first")]
struct First {
    n: u32,
}

#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "chain.second")]
struct Second {
    n: u32,
}

#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "chain.third")]
struct Third {
    n: u32,
}

/// Each link works a while before it publishes the next, so a `settled()`
/// that returned early would find the chain unfinished.
async fn work() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[handler]
async fn first_link(ev: First, ctx: Context) -> eventbus::Result<()> {
    work().await;
    ctx.publish(Second { n: ev.n + 1 }).await?;
    Ok(())
}

#[handler]
async fn second_link(ctx: Context, ev: Envelope<Second>) -> eventbus::Result<()> {
    work().await;
    ctx.publish(Third { n: ev.n + 1 }).await?;
    Ok(())
}

#[handler(name = "third")]
async fn third_link(_ev: Third) {
    work().await;
}

async fn settles_after_a_chain_of_three_handlers(bus: TestBus) {
    bus.publish(First { n: 1 })
        .correlation_id("req-1")
        .await
        .unwrap();
    bus.settled().await.unwrap();
    assert_eq!(bus.published::<Third>(), [Third { n: 3 }]);
    let handled = bus.handled_by("third");
    assert_eq!(handled.len(), 1, "the last link finished");
    assert_eq!(handled[0].correlation_id(), Some("req-1"));
    let topics: Vec<String> = bus
        .recorded()
        .iter()
        .map(|e| e.topic().to_owned())
        .collect();
    assert_eq!(topics, ["chain.first", "chain.second", "chain.third"]);
}

#[tokio::test]
async fn settled_waits_for_a_chain_of_three_handlers_publishing_in_turn() {
    let bus = TestBus::builder()
        .handler(first_link)
        .handler(second_link)
        .handler(third_link)
        .build()
        .await
        .unwrap();
    settles_after_a_chain_of_three_handlers(bus).await;
}

#[tokio::test]
async fn settled_waits_for_the_chain_on_sqlite_too() {
    let bus = TestBus::builder()
        .handler(first_link)
        .handler(second_link)
        .handler(third_link)
        .sqlite()
        .build()
        .await
        .unwrap();
    assert!(bus.store().durable());
    settles_after_a_chain_of_three_handlers(bus).await;
}

#[tokio::test]
async fn only_the_named_handlers_run() {
    let bus = TestBus::builder()
        .handler(first_link)
        .build()
        .await
        .unwrap();
    let names: Vec<String> = bus.handlers().into_iter().map(|h| h.name).collect();
    assert_eq!(names, ["testing_kit::first_link"]);
    bus.publish(First { n: 1 }).await.unwrap();
    bus.settled().await.unwrap();
    assert_eq!(bus.published::<Second>(), [Second { n: 2 }]);
    assert!(
        bus.published::<Third>().is_empty(),
        "second_link is not running"
    );
}

/// A function with a handler's shape but no `#[handler]`.
async fn not_registered(_ev: First) {}

#[tokio::test]
async fn a_function_without_the_attribute_is_refused_by_name() {
    let error = TestBus::builder()
        .handler(not_registered)
        .build()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid configuration: `testing_kit::not_registered` is not a `#[handler]` function: \
         add `#[handler]` to it, or add a closure handler with `.closure(FnHandler::new(..))`"
    );
}

#[handler(name = "slow-retry", retry = 1, backoff = "10s..10s")]
async fn slow_retry(_ev: First) {}

#[tokio::test(start_paused = true)]
async fn a_retry_after_a_10_s_backoff_runs_at_once_under_paused_time() {
    let bus = TestBus::builder()
        .handler(slow_retry)
        .build()
        .await
        .unwrap();
    bus.fail_next("slow-retry", 1).unwrap();
    let (wall, virtual_start) = (Instant::now(), tokio::time::Instant::now());
    bus.publish(First { n: 1 }).await.unwrap();
    bus.settled().await.unwrap();
    assert!(
        wall.elapsed() < Duration::from_millis(500),
        "took {:?} of wall time",
        wall.elapsed()
    );
    // The backoff's jitter takes up to half of it off.
    assert!(virtual_start.elapsed() >= Duration::from_secs(5));
    assert_eq!(bus.handled_by("slow-retry").len(), 1);
    assert_eq!(bus.stats()[0].retried, 1);
    assert!(bus.dead_letters().is_empty());
}

#[tokio::test(start_paused = true)]
async fn not_settled_lists_what_is_in_flight() {
    let bus = TestBus::builder()
        .handler(slow_retry)
        .build()
        .await
        .unwrap();
    bus.fail_next("slow-retry", 1).unwrap();
    let sent = bus
        .publish(First { n: 1 })
        .correlation_id("req-9")
        .await
        .unwrap();
    let error = bus
        .settled_within(Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(error.in_flight.len(), 1);
    let stuck = &error.in_flight[0];
    assert_eq!(stuck.handler, "slow-retry");
    assert_eq!(stuck.topic, "chain.first");
    assert_eq!(stuck.event_id, sent.id().to_string());
    let InFlightState::Backoff {
        failed_attempt: 1,
        retry_in,
    } = stuck.state
    else {
        panic!("{:?}", stuck.state)
    };
    let text = error.to_string();
    assert_eq!(
        text,
        format!(
            "the bus did not settle within 1s; still in flight:\n  slow-retry: chain.first \
             (seq 1, id {}, correlation req-9), attempt 1 failed, attempt 2 in {retry_in:?}",
            sent.id()
        )
    );
    // Given the time, it settles.
    bus.settled().await.unwrap();
}

#[handler(name = "shipping")]
async fn shipping(ev: Envelope<OrderEvent>) {
    let _ = ev;
}

#[tokio::test(start_paused = true)]
async fn a_scheduled_event_runs_when_paused_time_reaches_it() {
    let bus = TestBus::builder().handler(shipping).build().await.unwrap();
    let wall = Instant::now();
    bus.publish(OrderEvent::Shipped { id: 1 })
        .deliver_after(Duration::from_secs(3600))
        .await
        .unwrap();
    bus.settled().await.unwrap();
    assert!(bus.handled_by("shipping").is_empty(), "not due yet");
    tokio::time::sleep(Duration::from_secs(3600)).await;
    bus.settled().await.unwrap();
    assert_eq!(bus.handled_by("shipping").len(), 1);
    assert_eq!(
        bus.published::<OrderEvent>(),
        [OrderEvent::Shipped { id: 1 }]
    );
    assert!(
        wall.elapsed() < Duration::from_millis(500),
        "{:?}",
        wall.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn injected_failures_and_panics_reach_the_dead_letters() {
    let bus = TestBus::builder()
        .handler(shipping)
        .configure(|b| b.default_retry(2))
        .build()
        .await
        .unwrap();
    bus.fail_next("shipping", 2).unwrap();
    bus.panic_next("shipping", 1).unwrap();
    let doomed = bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    bus.publish(OrderEvent::Shipped { id: 2 }).await.unwrap();
    bus.settled().await.unwrap();

    let dead = bus.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].handler, "shipping");
    assert_eq!(dead[0].event_id, doomed.id().to_string());
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(
        dead[0].error,
        "the handler panicked: injected panic of `shipping` (TestBus::panic_next)"
    );
    let handled: Vec<u64> = bus.handled_by("shipping").iter().map(|e| e.seq()).collect();
    assert_eq!(handled, [2], "the faults were used up on the first event");
    let stats = &bus.stats()[0];
    assert_eq!(
        (stats.retried, stats.panicked, stats.dead_lettered),
        (2, 1, 1)
    );
    // The announcement was published and is part of what settled waited for.
    assert_published!(bus, DeadLettered { handler, attempts: 3, .. } if handler == "shipping");
    assert_eq!(
        bus.bus()
            .dead_letters()
            .list(Default::default())
            .await
            .unwrap()
            .len(),
        1
    );

    let error = bus.fail_next("billing", 1).unwrap_err();
    assert_eq!(error.kind(), eventbus::ErrorKind::NotFound);
}

#[tokio::test]
async fn a_failed_assert_published_shows_what_was_expected_and_seen() {
    let bus = TestBus::new().await.unwrap();
    bus.publish(OrderEvent::Placed { id: 7, cents: 1250 })
        .correlation_id("req-1")
        .await
        .unwrap();
    bus.publish(First { n: 1 }).await.unwrap();
    bus.publish(OrderEvent::Shipped { id: 7 })
        .correlation_id("req-1")
        .await
        .unwrap();
    bus.settled().await.unwrap();

    let shipped = assert_published!(bus, OrderEvent::Shipped { id: 7 });
    assert_eq!(shipped.seq(), 3);
    let panic = std::panic::catch_unwind(AssertUnwindSafe(|| {
        assert_published!(
            bus,
            OrderEvent::Shipped { id: 8 } | OrderEvent::Cancelled { .. }
        );
    }))
    .unwrap_err();
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert_eq!(
        message,
        "expected a published `OrderEvent` matching \
         `OrderEvent::Shipped { id: 8 } | OrderEvent::Cancelled { .. }`, but none was.\n\
         published, in order (3 events, 2 of them `OrderEvent`):\n   \
         1. order.placed   seq 1   correlation req-1      Placed { id: 7, cents: 1250 }\n   \
         2. chain.first    seq 2   correlation -          {\"n\":1}\n   \
         3. order.shipped  seq 3   correlation req-1      Shipped { id: 7 }"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_expectation_waits_then_shows_what_was_seen() {
    let bus = TestBus::new().await.unwrap();
    bus.publish(OrderEvent::Shipped { id: 7 }).await.unwrap();
    let found = bus
        .expect::<OrderEvent>()
        .matching(|e| matches!(e, OrderEvent::Shipped { id: 7 }))
        .await;
    assert_eq!(found.seq(), 1);

    let late = bus.bus().clone();
    let publisher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        late.publish(OrderEvent::Shipped { id: 8 }).await.unwrap();
    });
    let found = bus
        .expect::<OrderEvent>()
        .matching(|e| matches!(e, OrderEvent::Shipped { id: 8 }))
        .within(Duration::from_secs(5))
        .await;
    assert_eq!(found.seq(), 2, "it waited for the event");
    publisher.await.unwrap();

    let expectation = bus
        .expect::<OrderEvent>()
        .matching(|e| matches!(e, OrderEvent::Cancelled { .. }))
        .within(Duration::from_secs(1));
    let panic = AssertUnwindSafe(expectation.into_future())
        .catch_unwind()
        .await
        .unwrap_err();
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        message.starts_with(
            "expected a published `OrderEvent` matching the predicate given to `matching` \
             within 1s, but none was.\npublished, in order (2 events, 2 of them `OrderEvent`):"
        ),
        "{message}"
    );
    assert!(message.ends_with("Shipped { id: 8 }"), "{message}");
}
