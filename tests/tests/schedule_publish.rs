//! Scheduled publishes: stored at once, routed when due and not before,
//! cancellable, durable across a SIGKILL on SQLite, NATS and Redis, and
//! published once by one of several processes sharing the file or the
//! server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use eventbus::Start;
use eventbus::prelude::*;
use tests::{NatsScope, OrderEvent, RedisScope, TestChild, eventually, eventually_async, isolated};

type Seen = Arc<Mutex<Vec<(u64, chrono::DateTime<Utc>)>>>;

/// Records each shipped order's id and when the handler got it.
fn recorder(seen: &Seen) -> FnHandler {
    let seen = Arc::clone(seen);
    FnHandler::new("shipping", move |ev: Envelope<OrderEvent>, _: Context| {
        if let OrderEvent::Shipped { id } = *ev {
            seen.lock().unwrap().push((id, Utc::now()));
        }
        async {}
    })
    .start(Start::Earliest)
}

async fn wait_past(time: chrono::DateTime<Utc>) {
    while Utc::now() <= time {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn a_scheduled_event_is_routed_when_due_and_a_cancelled_one_never(url: &str) {
    let seen = Seen::default();
    let bus = isolated()
        .store(url)
        .handler(recorder(&seen))
        .build()
        .await
        .unwrap();
    let mut live = bus.subscribe::<OrderEvent>("order.shipped").unwrap();
    let due = Utc::now() + chrono::Duration::milliseconds(300);
    let scheduled = bus
        .publish(OrderEvent::Shipped { id: 1 })
        .deliver_at(due)
        .await
        .unwrap();
    assert_eq!(scheduled.seq(), 0, "not stored as an event yet");
    assert_eq!(scheduled.time(), due);
    let cancelled = bus
        .publish(OrderEvent::Shipped { id: 2 })
        .deliver_after(Duration::from_millis(200))
        .await
        .unwrap();
    let waiting = bus.scheduled().await.unwrap();
    assert_eq!(waiting.len(), 2);
    assert!(bus.history().fetch().await.unwrap().is_empty());
    assert!(
        bus.cancel_scheduled(&cancelled.id().to_string())
            .await
            .unwrap()
    );
    assert!(!bus.cancel_scheduled("no-such-id").await.unwrap());

    let delivered = tokio::time::timeout(Duration::from_secs(10), live.next())
        .await
        .expect("delivered within 10 s")
        .unwrap()
        .unwrap();
    assert_eq!(delivered.id(), scheduled.id());
    assert!(delivered.seq() > 0);
    eventually("the handler got it", Duration::from_secs(10), || {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    let (id, at) = seen.lock().unwrap()[0];
    assert_eq!(id, 1);
    assert!(at >= due, "handled at {at}, before it was due at {due}");

    // A marker due after the cancelled one: once it is handled, the
    // cancelled one would have been too.
    bus.publish(OrderEvent::Shipped { id: 3 })
        .deliver_after(Duration::from_millis(100))
        .await
        .unwrap();
    eventually("the marker", Duration::from_secs(10), || {
        seen.lock().unwrap().len() == 2
    })
    .await;
    let ids: Vec<u64> = seen.lock().unwrap().iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [1, 3], "the cancelled event never came");
    assert!(bus.scheduled().await.unwrap().is_empty());
    assert_eq!(bus.history().fetch().await.unwrap().len(), 2);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_scheduled_event_is_routed_when_due_and_a_cancelled_one_never_on_memory() {
    a_scheduled_event_is_routed_when_due_and_a_cancelled_one_never("memory://").await;
}

#[tokio::test]
async fn a_scheduled_event_is_routed_when_due_and_a_cancelled_one_never_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    a_scheduled_event_is_routed_when_due_and_a_cancelled_one_never(&url).await;
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_a_scheduled_event_is_routed_when_due_and_a_cancelled_one_never() {
    let scope = NatsScope::new("sched_due");
    a_scheduled_event_is_routed_when_due_and_a_cancelled_one_never(&scope.url("")).await;
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_a_scheduled_event_is_routed_when_due_and_a_cancelled_one_never() {
    let scope = RedisScope::new("sched_due");
    a_scheduled_event_is_routed_when_due_and_a_cancelled_one_never(&scope.url("")).await;
}

const CHILD_URL: &str = "EVENTBUS_TEST_SCHEDULE_URL";

/// The child's part: schedule an event a second away, then wait to be killed.
#[tokio::test]
async fn child_schedules_and_waits_to_be_killed() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let bus = isolated().store(url).build().await.unwrap();
    bus.publish(OrderEvent::Shipped { id: 9 })
        .deliver_after(Duration::from_secs(1))
        .await
        .unwrap();
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn a_scheduled_event_survives_a_sigkill_and_fires_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let url = format!("sqlite://{}", db.display());
    let mut child = TestChild::spawn(
        "child_schedules_and_waits_to_be_killed",
        &[(CHILD_URL, url.as_str())],
    );
    let stored = || {
        rusqlite::Connection::open(&db)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM scheduled", [], |r| r.get::<_, i64>(0)))
            .unwrap_or(0)
    };
    eventually("the child scheduled it", Duration::from_secs(30), || {
        stored() == 1
    })
    .await;
    child.kill();
    // Down while it comes due.
    wait_past(Utc::now() + chrono::Duration::milliseconds(1100)).await;

    let seen = Seen::default();
    let bus = isolated()
        .store(&url)
        .handler(recorder(&seen))
        .build()
        .await
        .unwrap();
    eventually("delivered on start", Duration::from_secs(10), || {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    bus.shutdown().await.unwrap();
    let bus = isolated()
        .store(&url)
        .handler(recorder(&seen))
        .build()
        .await
        .unwrap();
    let history = bus.history().fetch().await.unwrap();
    assert_eq!(history.len(), 1, "published once");
    assert_eq!(stored(), 0);
    bus.shutdown().await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1, "handled once");
}

/// The NATS side of the SIGKILL test: the scheduled event waits on the
/// server while no bus runs, and the next bus publishes it once.
#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_a_scheduled_event_survives_a_sigkill_and_fires_once_after_restart() {
    let scope = NatsScope::new("sched_kill");
    survives_a_sigkill_on_a_server(&scope.url("")).await;
}

/// The Redis side of the SIGKILL test: the same, with the event waiting
/// in the server's sorted set.
#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_a_scheduled_event_survives_a_sigkill_and_fires_once_after_restart() {
    let scope = RedisScope::new("sched_kill");
    survives_a_sigkill_on_a_server(&scope.url("")).await;
}

async fn survives_a_sigkill_on_a_server(url: &str) {
    let url = url.to_owned();
    let mut child = TestChild::spawn(
        "child_schedules_and_waits_to_be_killed",
        &[(CHILD_URL, url.as_str())],
    );
    eventually_async(
        "the child scheduled it",
        Duration::from_secs(30),
        || async {
            match eventbus::store::open_existing(&url).await {
                Ok(store) => store.schedules().unwrap().scheduled().await.unwrap().len() == 1,
                Err(_) => false,
            }
        },
    )
    .await;
    child.kill();
    wait_past(Utc::now() + chrono::Duration::milliseconds(1100)).await;

    let seen = Seen::default();
    let bus = isolated()
        .store(&url)
        .handler(recorder(&seen))
        .build()
        .await
        .unwrap();
    eventually("delivered on start", Duration::from_secs(60), || {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    assert!(bus.scheduled().await.unwrap().is_empty());
    bus.shutdown().await.unwrap();
    let bus = isolated()
        .store(&url)
        .handler(recorder(&seen))
        .build()
        .await
        .unwrap();
    let history = bus.history().fetch().await.unwrap();
    assert_eq!(history.len(), 1, "published once");
    bus.shutdown().await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1, "handled once");
}

#[tokio::test]
async fn of_two_processes_sharing_a_file_one_publishes_each_due_event() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    two_buses_publish_each_due_event_once(&url).await;
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_of_two_buses_one_publishes_each_due_event() {
    let scope = NatsScope::new("sched_two");
    two_buses_publish_each_due_event_once(&scope.url("")).await;
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_of_two_buses_one_publishes_each_due_event() {
    let scope = RedisScope::new("sched_two");
    two_buses_publish_each_due_event_once(&scope.url("")).await;
}

const FOLLOWER_URL: &str = "EVENTBUS_TEST_SCHEDULE_FOLLOWER_URL";

/// The child's part of the two-process server tests: a bus that publishes
/// due events too, until the parent's 20 are all in history.
#[tokio::test]
async fn child_runs_a_bus_until_twenty_events_are_published() {
    let Ok(url) = std::env::var(FOLLOWER_URL) else {
        return;
    };
    let bus = isolated().store(url).build().await.unwrap();
    eventually_async("20 published", Duration::from_secs(60), || async {
        bus.history().fetch().await.unwrap().len() >= 20
    })
    .await;
    bus.shutdown().await.unwrap();
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_of_two_processes_one_publishes_each_due_event() {
    let scope = NatsScope::new("sched_procs");
    two_processes_publish_each_due_event_once(&scope.url("")).await;
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_of_two_processes_one_publishes_each_due_event() {
    let scope = RedisScope::new("sched_procs");
    two_processes_publish_each_due_event_once(&scope.url("")).await;
}

async fn two_processes_publish_each_due_event_once(url: &str) {
    let url = url.to_owned();
    let bus = isolated().store(&url).build().await.unwrap();
    let mut child = TestChild::spawn(
        "child_runs_a_bus_until_twenty_events_are_published",
        &[(FOLLOWER_URL, url.as_str())],
    );
    let due = Utc::now() + chrono::Duration::milliseconds(1500);
    for id in 0..20 {
        bus.publish(OrderEvent::Shipped { id })
            .deliver_at(due)
            .await
            .unwrap();
    }
    child.wait_success(Duration::from_secs(90)).unwrap();
    let history = bus.history().fetch().await.unwrap();
    let mut ids: Vec<String> = history.iter().map(|e| e.id().to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((history.len(), ids.len()), (20, 20), "each once");
    assert!(bus.scheduled().await.unwrap().is_empty());
    bus.shutdown().await.unwrap();
}

async fn two_buses_publish_each_due_event_once(url: &str) {
    let a = isolated().store(url).build().await.unwrap();
    let b = isolated().store(url).build().await.unwrap();
    let due = Utc::now() + chrono::Duration::milliseconds(500);
    for id in 0..20 {
        let bus = if id % 2 == 0 { &a } else { &b };
        bus.publish(OrderEvent::Shipped { id })
            .deliver_at(due)
            .await
            .unwrap();
    }
    eventually_async("all published", Duration::from_secs(15), || async {
        a.scheduled().await.unwrap().is_empty()
    })
    .await;
    let history = a.history().fetch().await.unwrap();
    let mut ids: Vec<String> = history.iter().map(|e| e.id().to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((history.len(), ids.len()), (20, 20), "each once");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_handler_schedules_a_follow_up_in_its_flow() {
    let bus = isolated()
        .handler(FnHandler::new(
            "reminder",
            |ev: Envelope<OrderEvent>, ctx: Context| async move {
                if let OrderEvent::Placed { id, .. } = *ev {
                    ctx.schedule(OrderEvent::Shipped { id }, Duration::from_millis(50))
                        .await
                        .map(drop)
                } else {
                    Ok(())
                }
            },
        ))
        .build()
        .await
        .unwrap();
    let mut live = bus.subscribe::<OrderEvent>("order.shipped").unwrap();
    let placed = bus
        .publish(OrderEvent::Placed { id: 4, cents: 1 })
        .correlation_id("req-4")
        .await
        .unwrap();
    let shipped = tokio::time::timeout(Duration::from_secs(10), live.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(shipped.correlation_id(), Some("req-4"));
    assert_eq!(
        shipped.causation_id(),
        Some(placed.id().to_string().as_str())
    );
    bus.shutdown().await.unwrap();
}
