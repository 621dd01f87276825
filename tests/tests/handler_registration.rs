//! `#[handler]` registration: what `build()` collects, what it rejects, and
//! what `bus.handlers()` reports.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::{Error, HandlerOptions};
use tests::{EntityCreated, OrderEvent, eventually, isolated};

static INDEXED: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Prices {
    vat_percent: u64,
}

#[handler(name = "reg.index")]
async fn index(ev: Envelope<EntityCreated>) -> eventbus::Result<()> {
    INDEXED.lock().unwrap().push(ev.id.clone());
    Ok(())
}

#[handler(
    topic = "order.*",
    retry = 5,
    concurrency = 4,
    backoff = "50ms..2s",
    name = "reg.billing"
)]
async fn bill(
    ev: OrderEvent,
    ctx: Context,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let prices = ctx.state::<Prices>()?;
    if let OrderEvent::Placed { cents, .. } = ev {
        assert!(cents * prices.vat_percent / 100 <= cents);
    }
    Ok(())
}

#[handler(topic = "order.>", replay = false)]
async fn mailer(_ev: Envelope<OrderEvent>) {}

/// A second type claiming `entity.created`, to provoke a conflict.
#[derive(Event, Clone, Debug)]
#[event(topic = "entity.created")]
struct Impostor {
    id: String,
}

#[tokio::test]
async fn build_collects_every_linked_handler_sorted_with_its_options() {
    let bus = Bus::builder()
        .state(Prices { vat_percent: 20 })
        .default_retry(1)
        .build()
        .await
        .unwrap();
    let handlers = bus.handlers();
    let names: Vec<&str> = handlers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["handler_registration::mailer", "reg.billing", "reg.index"],
        "sorted by name; the library crate this test does not link is absent"
    );

    let mailer = &handlers[0];
    assert_eq!(mailer.pattern.as_deref(), Some("order.>"));
    assert_eq!(mailer.event, "OrderEvent");
    assert_eq!(
        mailer.topics,
        [
            "order.placed",
            "order.shipped",
            "order.cancelled.by_customer"
        ]
    );
    assert_eq!(
        mailer.options,
        HandlerOptions {
            retry: Some(1),
            concurrency: 1,
            replay: false,
            start: None,
            backoff: None,
            scope: None,
        }
    );
    let location = mailer.location.as_deref().unwrap();
    assert!(
        location.starts_with("tests/tests/handler_registration.rs:"),
        "{location}"
    );

    let billing = &handlers[1];
    assert_eq!(billing.topics, ["order.placed", "order.shipped"]);
    assert_eq!(
        billing.options,
        HandlerOptions {
            retry: Some(5),
            concurrency: 4,
            replay: true,
            start: None,
            backoff: Some(eventbus::Backoff {
                base: Duration::from_millis(50),
                max: Duration::from_secs(2)
            }),
            scope: None,
        }
    );
    let index = &handlers[2];
    assert_eq!(
        (index.pattern.as_deref(), index.event),
        (None, "EntityCreated")
    );
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bus_without_linked_handlers_runs_only_its_closures() {
    let bus = Bus::builder()
        .no_linked_handlers()
        .handler(FnHandler::new(
            "closure",
            |_: Envelope<EntityCreated>, _: Context| async {},
        ))
        .build()
        .await
        .unwrap();
    let names: Vec<String> = bus.handlers().into_iter().map(|h| h.name).collect();
    assert_eq!(names, ["closure"]);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn registered_handlers_run() {
    let bus = Bus::builder()
        .only_handlers(["reg.index"])
        .build()
        .await
        .unwrap();
    assert_eq!(bus.handlers().len(), 1);
    bus.publish(EntityCreated {
        id: "reg-run-1".into(),
        name: "n".into(),
    })
    .await
    .unwrap();
    eventually("index ran", Duration::from_secs(5), || {
        INDEXED.lock().unwrap().contains(&"reg-run-1".to_owned())
    })
    .await;
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn missing_state_fails_build_naming_the_type_and_handler() {
    let err = Bus::builder().build().await.unwrap_err();
    assert!(matches!(err, Error::MissingState { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("Prices") && msg.contains("reg.billing"),
        "{msg}"
    );

    let closure = FnHandler::new("needs", |_ev: Envelope<OrderEvent>, _ctx: Context| async {})
        .needs_state::<Prices>();
    let err = isolated().handler(closure).build().await.unwrap_err();
    assert!(err.to_string().contains("needs"), "{err}");
}

#[tokio::test]
async fn duplicate_names_fail_build_naming_both_places() {
    let twin = FnHandler::new(
        "reg.index",
        |_ev: Envelope<EntityCreated>, _ctx: Context| async {},
    );
    let err = Bus::builder()
        .only_handlers(["reg.index"])
        .handler(twin)
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateHandler { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("`reg.index`")
            && msg.contains("tests/tests/handler_registration.rs:")
            && msg.contains("FnHandler"),
        "{msg}"
    );
}

#[tokio::test]
async fn two_event_types_on_one_topic_fail_build_naming_both() {
    let impostor = FnHandler::new("impostor", |_ev: Envelope<Impostor>, _ctx: Context| async {
    });
    let err = Bus::builder()
        .only_handlers(["reg.index"])
        .handler(impostor)
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TopicConflict { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("entity.created") && msg.contains("Impostor") && msg.contains("EntityCreated"),
        "{msg}"
    );
}

#[tokio::test]
async fn bad_closure_handler_settings_fail_build() {
    let unknown = isolated()
        .only_handlers(["reg.nope"])
        .build()
        .await
        .unwrap_err();
    assert!(matches!(unknown, Error::UnknownHandler { .. }), "{unknown}");
    assert!(
        unknown.to_string().contains("reg.index"),
        "lists the known names: {unknown}"
    );

    let h = || FnHandler::new("h", |_ev: Envelope<OrderEvent>, _ctx: Context| async {});
    let none = isolated()
        .handler(h().topic("entity.*"))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(none, Error::PatternMatchesNothing { .. }),
        "{none}"
    );
    let bad = isolated()
        .handler(h().topic("order.*x"))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(bad, Error::InvalidTopic(_)), "{bad}");
    let zero = isolated()
        .handler(h().concurrency(0))
        .build()
        .await
        .unwrap_err();
    assert!(zero.to_string().contains("concurrency 0"), "{zero}");
}

#[tokio::test]
async fn concurrency_n_runs_n_handlings_at_once() {
    // Four handlings meet at a barrier of four: with concurrency 1 they
    // would wait for each other forever and the test would time out.
    let barrier = Arc::new(tokio::sync::Barrier::new(4));
    let met = Arc::new(Mutex::new(0));
    let wide = {
        let (barrier, met) = (Arc::clone(&barrier), Arc::clone(&met));
        FnHandler::new("wide", move |_ev: Envelope<OrderEvent>, _ctx: Context| {
            let (barrier, met) = (Arc::clone(&barrier), Arc::clone(&met));
            async move {
                barrier.wait().await;
                *met.lock().unwrap() += 1;
            }
        })
        .concurrency(4)
    };
    let bus = isolated().handler(wide).build().await.unwrap();
    for id in 0..4 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    eventually("all four met", Duration::from_secs(5), || {
        *met.lock().unwrap() == 4
    })
    .await;
    bus.shutdown().await.unwrap();
}
