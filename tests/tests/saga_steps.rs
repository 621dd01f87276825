//! Saga steps on memory and SQLite: an instance per key, steps of one
//! instance never interleaving, a redelivered event handled once, timers
//! cancelled on completion, and events for no instance ignored.

use std::time::Duration;

use eventbus::prelude::*;
use eventbus::saga::{SagaContext, saga};
use eventbus::testing::TestBus;
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, PartialEq)]
#[event(namespace = "tally")]
enum Tally {
    Opened { tally: u64 },
    Added { tally: u64, n: u64 },
    Reminder { tally: u64 },
    Closed { tally: u64 },
    Total { tally: u64, sum: u64, adds: u64 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Tallying {
    sum: u64,
    adds: u64,
    reminders: u32,
}

#[saga(name = "tallying", key = "tally")]
impl Tallying {
    #[start(topic = "tally.opened")]
    fn opened(&mut self, ev: &Tally, saga: &mut SagaContext) {
        if let Tally::Opened { tally } = *ev {
            saga.schedule(Tally::Reminder { tally }, Duration::from_secs(3600));
        }
    }

    /// Eight at once, so steps of one instance meet and must take turns.
    #[on(topic = "tally.added", concurrency = 8)]
    fn added(&mut self, ev: &Envelope<Tally>) {
        if let Tally::Added { n, .. } = **ev {
            self.sum += n;
            self.adds += 1;
        }
    }

    #[on(topic = "tally.reminder")]
    fn reminded(&mut self, _ev: &Tally) {
        self.reminders += 1;
    }

    #[on(topic = "tally.closed")]
    fn closed(&mut self, ev: &Tally, saga: &mut SagaContext) {
        saga.send(Tally::Total {
            tally: ev.tally(),
            sum: self.sum,
            adds: self.adds,
        });
        saga.complete();
    }
}

impl Tally {
    fn tally(&self) -> u64 {
        match self {
            Tally::Opened { tally }
            | Tally::Added { tally, .. }
            | Tally::Reminder { tally }
            | Tally::Closed { tally }
            | Tally::Total { tally, .. } => *tally,
        }
    }
}

async fn bus(sqlite: bool) -> TestBus {
    let builder = TestBus::builder().saga::<Tallying>();
    let builder = if sqlite { builder.sqlite() } else { builder };
    builder.build().await.unwrap()
}

fn totals(bus: &TestBus) -> Vec<Tally> {
    bus.published::<Tally>()
        .into_iter()
        .filter(|t| matches!(t, Tally::Total { .. }))
        .collect()
}

async fn concurrent_steps_of_one_instance_never_lose_an_update(sqlite: bool) {
    let bus = bus(sqlite).await;
    bus.publish(Tally::Opened { tally: 1 }).await.unwrap();
    bus.settled().await.unwrap();
    let publishes = (1..=200).map(|n| bus.publish(Tally::Added { tally: 1, n }).into_future());
    for published in futures_util::future::join_all(publishes).await {
        published.unwrap();
    }
    bus.settled().await.unwrap();
    bus.publish(Tally::Closed { tally: 1 }).await.unwrap();
    bus.settled().await.unwrap();
    assert_eq!(
        totals(&bus),
        vec![Tally::Total {
            tally: 1,
            sum: (1..=200).sum(),
            adds: 200
        }]
    );
    let instances = bus.saga_instances(Some("tallying"), false).await.unwrap();
    assert_eq!(instances.len(), 1);
    assert!(!instances[0].open, "closed completes the instance");
    assert!(
        bus.scheduled().await.unwrap().is_empty(),
        "completing cancelled the reminder"
    );
    assert!(bus.open_sagas().await.unwrap().is_empty());
}

#[tokio::test]
async fn memory_concurrent_steps_of_one_instance_never_lose_an_update() {
    concurrent_steps_of_one_instance_never_lose_an_update(false).await;
}

#[tokio::test]
async fn sqlite_concurrent_steps_of_one_instance_never_lose_an_update() {
    concurrent_steps_of_one_instance_never_lose_an_update(true).await;
}

#[tokio::test]
async fn a_replayed_event_is_not_handled_twice() {
    let bus = bus(true).await;
    bus.publish(Tally::Opened { tally: 2 }).await.unwrap();
    bus.settled().await.unwrap();
    for n in [5, 7] {
        bus.publish(Tally::Added { tally: 2, n }).await.unwrap();
    }
    bus.settled().await.unwrap();
    let before = bus.saga_instances(None, false).await.unwrap();
    let report = bus.replay().topic("tally.added").run().await.unwrap();
    assert_eq!(report.events, 2, "{report:?}");
    bus.settled().await.unwrap();
    let after = bus.saga_instances(None, false).await.unwrap();
    assert_eq!(after[0].state["sum"], 12);
    assert_eq!(after[0].version, before[0].version, "nothing saved again");
}

#[tokio::test]
async fn events_without_an_instance_and_second_starts_are_ignored() {
    let bus = bus(false).await;
    // Published a minute ago: no start is still coming for it.
    bus.publish(Tally::Added { tally: 9, n: 1 })
        .time(chrono::Utc::now() - chrono::Duration::minutes(1))
        .await
        .unwrap();
    bus.publish(Tally::Opened { tally: 3 }).await.unwrap();
    bus.settled().await.unwrap();
    let first = bus.saga_instances(None, false).await.unwrap()[0].version;
    bus.publish(Tally::Opened { tally: 3 }).await.unwrap();
    bus.settled().await.unwrap();
    let instances = bus.saga_instances(None, false).await.unwrap();
    assert_eq!(
        instances.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(),
        ["3"],
        "no instance for tally 9"
    );
    assert_eq!(
        instances[0].version, first,
        "the second start changed nothing"
    );
    assert_eq!(bus.scheduled().await.unwrap().len(), 1, "one reminder");
    assert_eq!(bus.open_sagas().await.unwrap()["tallying"], 1);
}

#[tokio::test(start_paused = true)]
async fn a_timer_fires_into_its_instance() {
    let bus = bus(false).await;
    bus.publish(Tally::Opened { tally: 4 }).await.unwrap();
    bus.settled().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3601)).await;
    bus.settled().await.unwrap();
    let instance = &bus.saga_instances(None, false).await.unwrap()[0];
    assert_eq!(instance.state["reminders"], 1);
    assert!(instance.timers.is_empty(), "the fired timer is forgotten");
}

#[tokio::test]
async fn sent_events_share_the_instance_correlation_id_and_name_their_cause() {
    let bus = bus(false).await;
    let opened = bus
        .publish(Tally::Opened { tally: 5 })
        .correlation_id("tally-5")
        .await
        .unwrap();
    bus.settled().await.unwrap();
    // Published without a correlation id: the instance still knows its own.
    let closed = bus.publish(Tally::Closed { tally: 5 }).await.unwrap();
    bus.settled().await.unwrap();
    let total = bus
        .recorded()
        .into_iter()
        .find(|e| e.topic() == "tally.total")
        .expect("a total was sent");
    assert_eq!(total.correlation_id(), Some("tally-5"));
    assert_eq!(total.causation_id(), Some(closed.id().to_string().as_str()));
    assert_eq!(
        total.header(eventbus::envelope::HANDLER_HEADER),
        Some("tallying"),
        "a saga's events name the saga"
    );
    let instance = &bus.saga_instances(None, false).await.unwrap()[0];
    assert_eq!(instance.correlation_id, "tally-5");
    assert_ne!(opened.id(), closed.id());
}

/// Steps are separate handlers: an event published right after its start
/// may reach its step first, and waits for the instance.
#[tokio::test]
async fn an_event_that_overtakes_its_start_waits_for_the_instance() {
    let bus = bus(true).await;
    bus.publish(Tally::Added { tally: 6, n: 4 }).await.unwrap();
    bus.publish(Tally::Opened { tally: 6 }).await.unwrap();
    bus.settled().await.unwrap();
    let instance = &bus.saga_instances(None, false).await.unwrap()[0];
    assert_eq!(instance.state["sum"], 4, "{instance:?}");
}

/// `derive(Event)` reads common fields for `#[saga(key)]` without making
/// their types public: an event may keep a private field type.
mod private_field_types {
    use eventbus::prelude::*;

    #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
    struct Cents(u64);

    // Public (nominally), which is what made a private field type an
    // error when the derive exposed field types.
    #[allow(unreachable_pub)]
    #[derive(Event, Clone, Debug)]
    #[event(topic = "invoice.paid")]
    pub struct InvoicePaid {
        pub invoice: u64,
        cents: Cents,
    }

    #[test]
    fn an_event_with_a_private_field_type_still_derives() {
        let paid = InvoicePaid {
            invoice: 1,
            cents: Cents(5),
        };
        assert_eq!(paid.encode_data().unwrap(), br#"{"invoice":1,"cents":5}"#);
    }
}
