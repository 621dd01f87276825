//! The order saga of `examples/order_saga.rs`, compiled into this test:
//! its four orders end as documented on every store, with every worker
//! SIGKILLed between steps on SQLite, and with two workers sharing the
//! saga on NATS and on Redis, one of them killed. No step is lost and
//! nothing the saga sends (compensations included) is stored twice.

#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/order_saga.rs"]
mod order_saga;

use std::collections::BTreeMap;
use std::time::Duration;

use eventbus::Start;
use eventbus::prelude::*;
use order_saga::{OrderFulfilment, Stage};
use tests::{NatsScope, RedisScope, TestChild};

/// What the saga sends, per order, in order: the commands and the outcome.
fn sent_by_the_saga(order: u64) -> Vec<&'static str> {
    match order {
        1 => vec![
            "stock.reserve_requested",
            "payment.charge_requested",
            "shipping.ship_requested",
            "order.confirmed",
        ],
        2 | 3 => vec![
            "stock.reserve_requested",
            "payment.charge_requested",
            "stock.release_requested",
            "order.cancelled",
        ],
        4 => vec![
            "stock.reserve_requested",
            "payment.charge_requested",
            "shipping.ship_requested",
            "payment.refund_requested",
            "stock.release_requested",
            "order.cancelled",
        ],
        _ => unreachable!(),
    }
}

/// Checks each order's final stage, and that the saga's events of each
/// order are in history once each, in order, the compensations last.
async fn assert_orders_ended_as_documented(bus: &Bus) {
    let saga_topics = [
        "stock.reserve_requested",
        "stock.release_requested",
        "payment.charge_requested",
        "payment.refund_requested",
        "shipping.ship_requested",
        "order.confirmed",
        "order.cancelled",
    ];
    let instances = bus
        .saga_instances(Some("order_fulfilment"), false)
        .await
        .unwrap();
    let stages: BTreeMap<u64, Stage> = instances
        .iter()
        .map(|i| {
            let state: OrderFulfilment = serde_json::from_value(i.state.clone()).unwrap();
            (state.order_id, state.stage)
        })
        .collect();
    let expected: BTreeMap<u64, Stage> = order_saga::orders()
        .into_iter()
        .map(|(order, stage)| match order {
            order_saga::OrderEvent::Placed { order_id, .. } => (order_id, stage),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(stages, expected);
    for instance in &instances {
        assert!(!instance.open, "order {} is still open", instance.key);
        assert!(instance.timers.is_empty(), "{instance:?}");
        assert_eq!(instance.pending, 0, "{instance:?}");
        let mut history = bus
            .history()
            .correlation_id(instance.correlation_id.clone())
            .stream();
        let mut sent = Vec::new();
        let mut story = String::new();
        while let Some(ev) = history.next().await {
            let ev = ev.unwrap();
            story.push_str(&format!(
                "\n  {} {} {} caused by {:?}",
                ev.seq(),
                ev.topic(),
                ev.id(),
                ev.causation_id()
            ));
            if saga_topics.contains(&ev.topic()) {
                sent.push(ev.topic().to_owned());
            }
        }
        let order: u64 = instance.key.parse().unwrap();
        assert_eq!(sent, sent_by_the_saga(order), "order {order}:{story}");
    }
    assert!(bus.open_sagas().await.unwrap().is_empty());
}

async fn run_in_one_process(url: &str) {
    let bus = Bus::builder().store(url).build().await.unwrap();
    order_saga::place_orders(&bus).await.unwrap();
    assert!(
        order_saga::settled(&bus, Duration::from_secs(30))
            .await
            .unwrap(),
        "the orders did not settle"
    );
    assert_orders_ended_as_documented(&bus).await;
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_the_four_orders_end_as_documented() {
    run_in_one_process("memory://").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_four_orders_end_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    run_in_one_process(&format!(
        "sqlite://{}",
        dir.path().join("orders.db").display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_the_four_orders_end_as_documented() {
    let scope = RedisScope::new("saga_one");
    run_in_one_process(&scope.url("")).await;
}

/// A worker running every handler and the saga until killed. Only when
/// re-executed with `EVENTBUS_ORDER_WORKER` set to a store URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_worker_child() {
    let Ok(url) = std::env::var("EVENTBUS_ORDER_WORKER") else {
        return;
    };
    // A restarted worker waits for its killed predecessor's handler
    // leases to expire; short ones keep the test quick.
    // From the start of history: the orders may be placed before the
    // first worker's handlers first run.
    let _bus = Bus::builder()
        .store(url)
        .default_start(Start::Earliest)
        .handler_lease(Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    std::future::pending::<()>().await;
}

/// A worker process on `url`. The payment timeout is longer than the
/// pauses kills and lease expiries make, so only the order whose payment
/// provider never answers times out.
fn worker(url: &str) -> TestChild {
    TestChild::spawn(
        "order_worker_child",
        &[
            ("EVENTBUS_ORDER_WORKER", url),
            ("ORDER_SAGA_PAYMENT_TIMEOUT_MS", "10000"),
        ],
    )
}

/// Counts the events in history.
async fn stored(bus: &Bus) -> usize {
    bus.history().stream().count().await
}

/// Kills a worker each time history grew past the next mark, starts a new
/// one, and lets the last one finish.
async fn killed_between_steps(url: &str, observer: &Bus, marks: &[usize]) {
    for &mark in marks {
        let mut worker = worker(url);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while stored(observer).await < mark {
            assert!(
                tokio::time::Instant::now() < deadline,
                "stuck before {mark} events"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        worker.kill();
        println!(
            "killed a worker at {} stored events",
            stored(observer).await
        );
    }
    let _last = worker(url);
    assert!(
        order_saga::settled(observer, Duration::from_secs(60))
            .await
            .unwrap(),
        "the orders did not settle after the kills"
    );
    assert_orders_ended_as_documented(observer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_orders_survive_workers_killed_between_steps() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("orders.db").display());
    // Publishes and watches; runs no handler.
    let observer = Bus::builder()
        .store(&url)
        .no_linked_handlers()
        .build()
        .await
        .unwrap();
    order_saga::place_orders(&observer).await.unwrap();
    killed_between_steps(&url, &observer, &[8, 16, 24]).await;
    observer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_two_workers_share_the_saga_and_one_is_killed() {
    let scope = NatsScope::new("saga");
    two_workers_share_the_saga(&scope.url("&ack_wait=2s")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_two_workers_share_the_saga_and_one_is_killed() {
    let scope = RedisScope::new("saga");
    two_workers_share_the_saga(&scope.url("&ack_wait=2s")).await;
}

/// A steady worker and one killed between steps share the saga on a
/// server; the store URL's short ack wait brings back soon what the
/// killed one held.
async fn two_workers_share_the_saga(url: &str) {
    let observer = Bus::builder()
        .store(url)
        .no_linked_handlers()
        .build()
        .await
        .unwrap();
    let _steady = worker(url);
    order_saga::place_orders(&observer).await.unwrap();
    killed_between_steps(url, &observer, &[10, 20]).await;
    observer.shutdown().await.unwrap();
}

mod fixtures {
    //! The saga's decisions, step by step, with `SagaFixture`: no bus.

    use eventbus::testing::SagaFixture;

    use super::order_saga::{OrderEvent, OrderFulfilment, PaymentEvent, ShippingEvent, StockEvent};

    fn placed() -> OrderEvent {
        OrderEvent::Placed {
            order_id: 4,
            item: "piano".into(),
            quantity: 1,
            cents: 40_000,
        }
    }

    #[test]
    fn a_placed_order_reserves_stock() {
        SagaFixture::<OrderFulfilment>::new()
            .when(placed())
            .then_sent([StockEvent::ReserveRequested {
                order_id: 4,
                item: "piano".into(),
                quantity: 1,
            }])
            .and_still_open();
    }

    #[test]
    fn reserved_stock_charges_with_a_timeout_and_the_charge_cancels_it() {
        SagaFixture::<OrderFulfilment>::new()
            .given([placed()])
            .when(StockEvent::Reserved { order_id: 4 })
            .then_sent([PaymentEvent::ChargeRequested {
                order_id: 4,
                cents: 40_000,
            }])
            .and_scheduled([(
                PaymentEvent::TimedOut { order_id: 4 },
                super::order_saga::payment_timeout(),
            )]);
        let reserved = SagaFixture::<OrderFulfilment>::new()
            .given([placed()])
            .given([StockEvent::Reserved { order_id: 4 }]);
        let timeout = reserved.state().unwrap().payment_timeout.clone();
        let charged = reserved
            .when(PaymentEvent::Charged { order_id: 4 })
            .then_sent([ShippingEvent::ShipRequested {
                order_id: 4,
                item: "piano".into(),
            }]);
        assert_eq!(charged.cancelled(), [timeout.expect("set").to_string()]);
    }

    #[test]
    fn a_failed_shipment_refunds_then_releases_then_cancels() {
        let fixture = || {
            SagaFixture::<OrderFulfilment>::new()
                .given([placed()])
                .given([StockEvent::Reserved { order_id: 4 }])
                .given([PaymentEvent::Charged { order_id: 4 }])
        };
        let failed = ShippingEvent::Failed {
            order_id: 4,
            reason: "no courier takes pianos".into(),
        };
        fixture()
            .when(failed.clone())
            .then_sent([PaymentEvent::RefundRequested {
                order_id: 4,
                cents: 40_000,
            }])
            .and_still_open();
        fixture()
            .given([failed.clone()])
            .when(PaymentEvent::Refunded { order_id: 4 })
            .then_sent([StockEvent::ReleaseRequested {
                order_id: 4,
                item: "piano".into(),
                quantity: 1,
            }]);
        fixture()
            .given([failed])
            .given([PaymentEvent::Refunded { order_id: 4 }])
            .when(StockEvent::Released { order_id: 4 })
            .then_sent([OrderEvent::Cancelled {
                order_id: 4,
                reason: "shipping failed: no courier takes pianos".into(),
            }])
            .and_completed();
    }

    #[test]
    #[should_panic(expected = "expected:\n    1. stock.release_requested")]
    fn a_wrong_expectation_prints_both_lists() {
        SagaFixture::<OrderFulfilment>::new()
            .when(placed())
            .then_sent([StockEvent::ReleaseRequested {
                order_id: 4,
                item: "piano".into(),
                quantity: 1,
            }]);
    }

    #[test]
    fn an_event_for_no_instance_runs_nothing() {
        let outcome =
            SagaFixture::<OrderFulfilment>::new().when(StockEvent::Reserved { order_id: 9 });
        assert_eq!(outcome.ran(), None);
    }
}
