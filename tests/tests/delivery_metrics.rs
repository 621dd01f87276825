//! Metrics through the `metrics` facade: a recorder sees publishes,
//! deliveries, retries, failures and dead letters, per topic and handler,
//! and latency histograms.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use eventbus::prelude::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tests::{OrderEvent, eventually, isolated};

fn failing_first(name: &'static str, calls: &Arc<AtomicU32>) -> FnHandler {
    let calls = Arc::clone(calls);
    FnHandler::new(name, move |_ev: Envelope<OrderEvent>, ctx: Context| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            if ctx.attempt() == 1 {
                Err(std::io::Error::other("first attempts fail"))
            } else {
                Ok(())
            }
        }
    })
    .retry(1)
}

#[tokio::test]
async fn a_recorder_sees_every_outcome_per_topic_and_handler() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // The test runtime runs every task on this thread.
    let _guard = metrics::set_default_local_recorder(&recorder);

    let flaky_calls = Arc::new(AtomicU32::new(0));
    let bus = isolated()
        .metrics(true)
        .handler(FnHandler::new(
            "good",
            |_ev: Envelope<OrderEvent>, _ctx: Context| async {},
        ))
        .handler(failing_first("flaky", &flaky_calls))
        .handler(
            FnHandler::new("bad", |_ev: Envelope<OrderEvent>, _ctx: Context| async {
                Err::<(), _>(std::io::Error::other("always"))
            })
            .retry(1),
        )
        .build()
        .await
        .unwrap();
    for id in 0..2 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    eventually("every handler done", Duration::from_secs(5), || {
        let stats = bus.stats();
        let get = |n: &str| stats.iter().find(|s| s.name == n).unwrap().clone();
        get("good").handled == 2 && get("flaky").handled == 2 && get("bad").dead_lettered == 2
    })
    .await;
    bus.shutdown().await.unwrap();

    let mut counters = std::collections::BTreeMap::new();
    let mut samples = std::collections::BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        match value {
            DebugValue::Counter(n) => {
                counters.insert(name, n);
            }
            DebugValue::Histogram(values) => {
                samples.insert(name, values.len());
            }
            DebugValue::Gauge(_) => {}
        }
    }
    let counter = |name: &str| counters.get(name).copied().unwrap_or(0);
    assert_eq!(
        counter("eventbus_published_total{topic=order.shipped}"),
        2,
        "{counters:#?}"
    );
    assert_eq!(
        counter("eventbus_delivered_total{topic=order.shipped,handler=good}"),
        2
    );
    assert_eq!(
        counter("eventbus_delivered_total{topic=order.shipped,handler=flaky}"),
        2
    );
    assert_eq!(
        counter("eventbus_retried_total{topic=order.shipped,handler=flaky}"),
        2
    );
    assert_eq!(
        counter("eventbus_retried_total{topic=order.shipped,handler=bad}"),
        2
    );
    assert_eq!(
        counter("eventbus_failed_total{topic=order.shipped,handler=bad}"),
        2
    );
    assert_eq!(
        counter("eventbus_dead_lettered_total{topic=order.shipped,handler=bad}"),
        2
    );
    assert_eq!(
        counter("eventbus_failed_total{topic=order.shipped,handler=good}"),
        0
    );
    assert_eq!(samples["eventbus_publish_seconds{topic=order.shipped}"], 2);
    assert_eq!(
        samples["eventbus_handle_seconds{topic=order.shipped,handler=good}"],
        2
    );
    assert_eq!(
        samples["eventbus_handle_seconds{topic=order.shipped,handler=flaky}"], 4,
        "one sample per attempt"
    );
    assert_eq!(flaky_calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn metrics_are_off_unless_asked_for() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let bus = isolated().build().await.unwrap();
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    bus.shutdown().await.unwrap();
    assert!(snapshotter.snapshot().into_vec().is_empty());
}
