//! `eventbus sagas`, the open sagas in `eventbus stats`, and a correlation
//! id's saga instance under its events in `eventbus history`, on instances
//! a saga running in this process left in a real SQLite file.

mod support;

use std::time::Duration;

use eventbus::Start;
use eventbus::prelude::*;
use eventbus::saga::{SagaContext, saga};
use serde_json::Value;
use support::{Scratch, ndjson};

#[derive(Event, Clone, Debug)]
#[event(namespace = "trip")]
enum Trip {
    Booked { trip: u64 },
    Paid { trip: u64 },
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Booking {
    paid: bool,
}

#[saga(key = "trip")]
impl Booking {
    #[start(topic = "trip.booked")]
    fn booked(&mut self, _ev: &Trip) {}

    #[on(topic = "trip.paid")]
    fn paid(&mut self, _ev: &Trip, saga: &mut SagaContext) {
        self.paid = true;
        saga.complete();
    }
}

/// Trip 1 booked and open; trip 2 booked, paid and completed.
fn run_the_saga(url: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let bus = Bus::builder()
            .store(url)
            .default_start(Start::Earliest)
            .build()
            .await
            .expect("bus");
        for (trip, paid) in [(1, false), (2, true)] {
            let correlation = format!("trip-{trip}");
            bus.publish(Trip::Booked { trip })
                .correlation_id(&correlation)
                .await
                .expect("published");
            if paid {
                bus.publish(Trip::Paid { trip })
                    .correlation_id(&correlation)
                    .await
                    .expect("published");
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let instances = bus.saga_instances(None, false).await.expect("instances");
            if instances.len() == 2 && instances.iter().any(|i| !i.open) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{instances:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bus.shutdown().await.expect("shutdown");
    });
}

#[test]
fn saga_instances_are_listed_counted_and_shown_with_their_story() {
    let s = Scratch::new();
    run_the_saga(&s.url);

    let all = ndjson(&s.ok(&["sagas", "--json"]));
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0]["saga"], "Booking");
    assert_eq!(all[0]["key"], "1");
    assert_eq!(all[0]["open"], true);
    assert_eq!(all[1]["key"], "2");
    assert_eq!(all[1]["open"], false);
    assert_eq!(all[1]["state"]["paid"], true);
    assert_eq!(all[1]["correlation_id"], "trip-2");

    let open = s.ok(&["sagas", "--open"]);
    assert!(
        open.contains("Booking") && open.contains("trip-1"),
        "{open}"
    );
    assert!(!open.contains("trip-2"), "{open}");
    let by_correlation = ndjson(&s.ok(&["sagas", "--json", "--correlation-id", "trip-2"]));
    assert_eq!(by_correlation.len(), 1);

    let stats: Value = serde_json::from_str(&s.ok(&["stats", "--json"])).expect("json");
    assert_eq!(stats["open_sagas"]["Booking"], 1, "{stats}");
    let text = s.ok(&["stats"]);
    assert!(text.contains("Booking 1 open"), "{text}");

    let story = s.ok(&["history", "--correlation-id", "trip-2"]);
    assert!(
        story.contains("trip.booked") && story.contains("trip.paid"),
        "{story}"
    );
    let (_, instances) = story
        .split_once("saga instances with this correlation id:")
        .expect("the instance follows the events");
    assert!(
        instances.contains("completed") && instances.contains(r#"{"paid":true}"#),
        "{story}"
    );
    // NDJSON stays events only.
    assert_eq!(
        ndjson(&s.ok(&["history", "--json", "--correlation-id", "trip-2"])).len(),
        2
    );
}
