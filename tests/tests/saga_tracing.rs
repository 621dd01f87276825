//! The tracing spans of a saga's steps carry its name, the step, the key
//! and the instance's correlation id, whatever the handled event carries.
//!
//! Alone in its own test binary: tracing caches per-callsite interest
//! globally (see `middleware_tracing.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use eventbus::prelude::*;
use eventbus::saga::{SagaContext, saga};
use eventbus::testing::TestBus;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt};

#[derive(Event, Clone, Debug)]
#[event(namespace = "trip")]
enum Trip {
    Booked { trip: u64 },
    Paid { trip: u64 },
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Booking;

#[saga(key = "trip")]
impl Booking {
    #[start(topic = "trip.booked")]
    fn booked(&mut self, _ev: &Trip) {}

    #[on(topic = "trip.paid")]
    fn paid(&mut self, _ev: &Trip, saga: &mut SagaContext) {
        saga.complete();
    }
}

type Spans = Arc<Mutex<BTreeMap<u64, (String, BTreeMap<String, String>)>>>;

/// Every span's name and fields, including those recorded after it began.
struct Recorder(Spans);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
}

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: LayerContext<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.0
            .lock()
            .unwrap()
            .insert(id.into_u64(), (attrs.metadata().name().to_owned(), fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: LayerContext<'_, S>) {
        if let Some((_, fields)) = self.0.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }
}

#[tokio::test]
async fn the_spans_of_a_sagas_steps_share_its_correlation_id() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(Recorder(Arc::clone(&spans)));
    let _guard = tracing::subscriber::set_default(subscriber);

    let bus = TestBus::builder().saga::<Booking>().build().await.unwrap();
    bus.publish(Trip::Booked { trip: 9 })
        .correlation_id("trip-9")
        .await
        .unwrap();
    bus.settled().await.unwrap();
    // Published with no correlation id: the step's span still says the
    // instance's.
    bus.publish(Trip::Paid { trip: 9 }).await.unwrap();
    bus.settled().await.unwrap();

    let spans = spans.lock().unwrap();
    let steps: Vec<&BTreeMap<String, String>> = spans
        .values()
        .filter(|(name, _)| name == "saga_step")
        .map(|(_, fields)| fields)
        .collect();
    assert_eq!(steps.len(), 2, "{spans:?}");
    for (fields, step) in steps.iter().zip(["booked", "paid"]) {
        assert_eq!(fields["saga"], "Booking");
        assert_eq!(fields["step"], step);
        assert_eq!(fields["key"], "9");
        assert_eq!(fields["correlation_id"], "trip-9", "{fields:?}");
    }
}
