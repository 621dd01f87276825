//! Subscriptions: typed broadcast streams with run-time checked patterns,
//! unsubscribe on drop, and `Lagged` instead of silent loss.

use std::time::Duration;

use eventbus::prelude::*;
use eventbus::{Error, SubscriptionError};
use tests::{EntityCreated, OrderEvent, isolated};
use tokio::time::timeout;

async fn next<E: Event>(sub: &mut Subscription<E>) -> Result<Envelope<E>, SubscriptionError> {
    timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("an item within 5 s")
        .expect("the stream is open")
}

#[tokio::test]
async fn every_subscriber_sees_every_matching_event() {
    let bus = isolated().build().await.unwrap();
    let mut shipped = bus.subscribe::<OrderEvent>("order.shipped").unwrap();
    let mut all = bus.subscribe::<OrderEvent>("order.>").unwrap();
    let mut all_too = bus.subscribe::<OrderEvent>(">").unwrap();
    assert_eq!(
        all.topics(),
        [
            "order.placed",
            "order.shipped",
            "order.cancelled.by_customer"
        ]
    );

    bus.publish(OrderEvent::Placed { id: 1, cents: 2 })
        .await
        .unwrap();
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    bus.publish(EntityCreated {
        id: "x".into(),
        name: "not an order".into(),
    })
    .await
    .unwrap();

    assert_eq!(
        *next(&mut shipped).await.unwrap(),
        OrderEvent::Shipped { id: 1 }
    );
    for sub in [&mut all, &mut all_too] {
        assert_eq!(next(sub).await.unwrap().topic(), "order.placed");
        assert_eq!(next(sub).await.unwrap().topic(), "order.shipped");
    }
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn patterns_are_checked_when_subscribing() {
    let bus = isolated().build().await.unwrap();
    let bad = bus.subscribe::<OrderEvent>("order..placed").err().unwrap();
    assert!(matches!(bad, Error::InvalidTopic(_)), "{bad}");
    assert!(
        bad.to_string().contains("empty token at position 2"),
        "{bad}"
    );

    let none = bus.subscribe::<OrderEvent>("entity.*").err().unwrap();
    assert!(
        matches!(none, Error::PatternMatchesNothing { .. }),
        "{none}"
    );
    let msg = none.to_string();
    assert!(
        msg.contains("OrderEvent") && msg.contains("order.placed"),
        "{msg}"
    );
}

#[tokio::test]
async fn dropping_the_stream_unsubscribes() {
    let bus = isolated().build().await.unwrap();
    let first = bus.subscribe::<OrderEvent>("order.>").unwrap();
    let mut second = bus.subscribe::<OrderEvent>("order.shipped").unwrap();
    assert_eq!(bus.subscription_count(), 2);
    drop(first);
    assert_eq!(bus.subscription_count(), 1);
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    assert_eq!(next(&mut second).await.unwrap().seq(), 1);
    drop(second);
    assert_eq!(bus.subscription_count(), 0);
    bus.publish(OrderEvent::Shipped { id: 2 }).await.unwrap();
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_slow_subscriber_lags_instead_of_blocking_or_losing_silently() {
    let bus = isolated().subscriber_capacity(2).build().await.unwrap();
    let mut slow = bus.subscribe::<OrderEvent>("order.shipped").unwrap();
    // Five events into a buffer of two: 3, 4 and 5 are missed, and the
    // publisher is never held up.
    for id in 1..=5 {
        timeout(
            Duration::from_secs(5),
            bus.publish(OrderEvent::Shipped { id }),
        )
        .await
        .expect("publishing never waits for a subscriber")
        .unwrap();
    }
    assert_eq!(next(&mut slow).await.unwrap().seq(), 1);
    assert_eq!(next(&mut slow).await.unwrap().seq(), 2);
    // Event 6 finds room and is preceded by the gap report.
    bus.publish(OrderEvent::Shipped { id: 6 }).await.unwrap();
    assert_eq!(
        next(&mut slow).await.unwrap_err(),
        SubscriptionError::Lagged {
            missed: 3,
            from_seq: 3
        }
    );
    assert_eq!(next(&mut slow).await.unwrap().seq(), 6);
    // The missed events are in history, from `from_seq` on.
    let missed = bus
        .history()
        .after_seq(2)
        .before_seq(6)
        .fetch()
        .await
        .unwrap();
    assert_eq!(
        missed.iter().map(|e| e.seq()).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    bus.shutdown().await.unwrap();
}
