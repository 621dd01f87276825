//! The default tracing layer: a span per handling carrying its ids.
//!
//! Alone in its own test binary: tracing caches per-callsite interest
//! globally, so a test running beside it without a subscriber could decide
//! for this one that the span is never wanted.

use std::sync::Arc;

use eventbus::prelude::*;
use tests::{OrderEvent, isolated};

fn quiet_handler() -> FnHandler {
    FnHandler::new("h", |_ev: Envelope<OrderEvent>, _ctx: Context| async {})
}

mod spans {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id};
    use tracing_subscriber::layer::{Context, Layer};

    pub(crate) type Spans = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

    /// Records every span's name and fields.
    pub(crate) struct Recorder(pub(crate) Spans);

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
        fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
            let mut fields = BTreeMap::new();
            attrs.record(&mut Fields(&mut fields));
            self.0
                .lock()
                .unwrap()
                .push((attrs.metadata().name().to_owned(), fields));
        }
    }
}

#[tokio::test]
async fn each_handling_runs_in_a_tracing_span_with_its_ids() {
    use tracing_subscriber::layer::SubscriberExt;

    let spans = spans::Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans::Recorder(Arc::clone(&spans)));
    // The test runtime is single-threaded, so a thread-local default covers
    // the handler's task too.
    let _guard = tracing::subscriber::set_default(subscriber);

    let bus = isolated().handler(quiet_handler()).build().await.unwrap();
    let sent = bus
        .publish(OrderEvent::Shipped { id: 5 })
        .correlation_id("req-7")
        .await
        .unwrap();
    bus.shutdown().await.unwrap();

    let spans = spans.lock().unwrap();
    let handle: Vec<_> = spans.iter().filter(|(name, _)| name == "handle").collect();
    assert_eq!(handle.len(), 1, "{spans:?}");
    let fields = &handle[0].1;
    assert_eq!(fields["handler"], "h");
    assert_eq!(fields["topic"], "order.shipped");
    assert_eq!(fields["event_id"], sent.id().to_string());
    assert_eq!(fields["correlation_id"], "req-7");
    assert_eq!(fields["attempt"], "1");
}
