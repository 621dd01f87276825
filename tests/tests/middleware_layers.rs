//! Middleware: ordered layers around publish and handling that observe,
//! transform and drop; the default tracing span per handling.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::middleware::{Flow, Middleware, Next};
use eventbus::prelude::*;
use eventbus::{BoxFuture, Draft, Error, HandlingError};
use tests::{OrderEvent, eventually, isolated};

type Log = Arc<Mutex<Vec<String>>>;

struct Tag;

impl Middleware for Tag {
    fn name(&self) -> &str {
        "tag"
    }

    fn on_publish(&self, draft: &mut Draft) -> Flow {
        draft.set_header("tenant", "acme");
        Flow::Continue
    }
}

struct NoCancellations;

impl Middleware for NoCancellations {
    fn name(&self) -> &str {
        "no-cancellations"
    }

    fn on_publish(&self, draft: &mut Draft) -> Flow {
        if draft.topic().starts_with("order.cancelled") {
            Flow::Drop
        } else {
            Flow::Continue
        }
    }
}

/// Records entering and leaving, to check the order of layers.
struct Trace(&'static str, Log);

impl Middleware for Trace {
    fn name(&self) -> &str {
        self.0
    }

    fn around_handling<'a>(
        &'a self,
        envelope: eventbus::RawEnvelope,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), HandlingError>> {
        Box::pin(async move {
            self.1.lock().unwrap().push(format!("{} in", self.0));
            let out = next.run(envelope).await;
            self.1.lock().unwrap().push(format!("{} out", self.0));
            out
        })
    }
}

/// Skips handling of shipped orders and rewrites a header on the others.
struct SkipShipped;

impl Middleware for SkipShipped {
    fn name(&self) -> &str {
        "skip-shipped"
    }

    fn around_handling<'a>(
        &'a self,
        envelope: eventbus::RawEnvelope,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), HandlingError>> {
        if envelope.topic() == "order.shipped" {
            return Box::pin(async { Ok(()) });
        }
        let mut draft = Draft::from_envelope(&envelope);
        draft.set_header("checked", "yes");
        next.run(draft.seal(envelope.seq()))
    }
}

fn logging_handler(log: &Log) -> FnHandler {
    let log = Arc::clone(log);
    FnHandler::new("h", move |ev: Envelope<OrderEvent>, _ctx: Context| {
        let log = Arc::clone(&log);
        async move {
            let headers = format!(
                "tenant={} checked={}",
                ev.header("tenant").unwrap_or("-"),
                ev.header("checked").unwrap_or("-")
            );
            log.lock()
                .unwrap()
                .push(format!("handle {} {headers}", ev.topic()));
        }
    })
}

#[tokio::test]
async fn layers_transform_drop_and_wrap_in_order() {
    let log = Log::default();
    let bus = isolated()
        .layer(Tag)
        .layer(NoCancellations)
        .layer(Trace("outer", Arc::clone(&log)))
        .layer(Trace("inner", Arc::clone(&log)))
        .layer(SkipShipped)
        .handler(logging_handler(&log))
        .build()
        .await
        .unwrap();

    bus.publish(OrderEvent::Placed { id: 1, cents: 1 })
        .await
        .unwrap();
    let dropped = bus
        .publish(OrderEvent::Cancelled {
            id: 1,
            reason: "r".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&dropped, Error::Dropped { layer } if layer == "no-cancellations"),
        "{dropped}"
    );
    bus.publish(OrderEvent::Shipped { id: 1 }).await.unwrap();
    eventually(
        "both handlings pass the layers",
        Duration::from_secs(5),
        || log.lock().unwrap().len() == 9,
    )
    .await;
    bus.shutdown().await.unwrap();

    assert_eq!(
        *log.lock().unwrap(),
        [
            "outer in",
            "inner in",
            "handle order.placed tenant=acme checked=yes",
            "inner out",
            "outer out",
            "outer in",
            "inner in",
            "inner out",
            "outer out",
        ]
    );
    let stored: Vec<String> = bus
        .history()
        .fetch()
        .await
        .unwrap()
        .iter()
        .map(|e| format!("{} {:?}", e.topic(), e.header("tenant")))
        .collect();
    assert_eq!(
        stored,
        [
            "order.placed Some(\"acme\")",
            "order.shipped Some(\"acme\")"
        ],
        "dropped events are not stored; publish layers edit what is stored"
    );
}
