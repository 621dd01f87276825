//! Scoped buses: `bus.scope("tenant-a")` publishes into its scope, sees
//! its scope and below, never a sibling's; the root sees everything.
//! Handlers can be limited to a scope, and their follow-ups stay in the
//! scope of the event they handle. On memory and on SQLite.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::{Error, Start};
use tests::{OrderEvent, eventually, isolated};

type Seen = Arc<Mutex<Vec<(u64, Option<String>)>>>;

/// A handler limited to `scope` that records what reaches it and
/// publishes a follow-up for each placed order.
fn tenant_handler(name: &'static str, scope: &'static str, seen: &Seen) -> FnHandler {
    let seen = Arc::clone(seen);
    FnHandler::new(name, move |ev: Envelope<OrderEvent>, ctx: Context| {
        let seen = Arc::clone(&seen);
        async move {
            let OrderEvent::Placed { id, .. } = *ev else {
                return Ok(());
            };
            seen.lock()
                .unwrap()
                .push((id, ev.scope().map(str::to_owned)));
            ctx.publish(OrderEvent::Shipped { id }).await.map(drop)
        }
    })
    .scope(scope)
    .start(Start::Earliest)
}

async fn next(sub: &mut RawSubscription) -> RawEnvelope {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("an event within 5 s")
        .expect("the subscription is open")
        .expect("no gap")
}

fn scopes(events: &[RawEnvelope]) -> Vec<(String, Option<&str>)> {
    events
        .iter()
        .map(|e| (e.topic().to_owned(), e.scope()))
        .collect()
}

async fn scopes_propagate_up_and_stay_apart_between_siblings(url: &str) {
    let seen_a = Seen::default();
    let bus = isolated()
        .store(url)
        .handler(tenant_handler("billing-a", "tenant-a", &seen_a))
        .build()
        .await
        .unwrap();
    let a = bus.scope("tenant-a").unwrap();
    let a_eu = a.scope("eu").unwrap();
    let b = bus.scope("tenant-b").unwrap();
    assert_eq!(a_eu.current_scope().unwrap().as_str(), "tenant-a/eu");

    let mut root_sub = bus.subscribe_raw("order.placed").unwrap();
    let mut a_sub = a.subscribe_raw("order.placed").unwrap();
    let mut b_sub = b.subscribe_raw("order.placed").unwrap();
    let mut a_typed = a.subscribe::<OrderEvent>("order.placed").unwrap();

    let in_eu = a_eu
        .publish(OrderEvent::Placed { id: 1, cents: 10 })
        .await
        .unwrap();
    assert_eq!(in_eu.scope(), Some("tenant-a/eu"));
    let in_b = b
        .publish(OrderEvent::Placed { id: 2, cents: 20 })
        .await
        .unwrap();
    let at_root = bus
        .publish(OrderEvent::Placed { id: 3, cents: 30 })
        .await
        .unwrap();
    assert_eq!(at_root.scope(), None);

    // Live: the parent sees its child's event, the sibling does not.
    assert_eq!(next(&mut a_sub).await.id(), in_eu.id());
    let typed = tokio::time::timeout(Duration::from_secs(5), a_typed.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(typed.id(), in_eu.id());
    assert_eq!(next(&mut b_sub).await.id(), in_b.id());
    let root_ids: Vec<_> = [
        next(&mut root_sub).await,
        next(&mut root_sub).await,
        next(&mut root_sub).await,
    ]
    .iter()
    .map(|e| e.id().clone())
    .collect();
    assert_eq!(
        root_ids,
        [in_eu.id().clone(), in_b.id().clone(), at_root.id().clone()]
    );

    // The scoped handler saw only tenant-a's order; its follow-up stayed
    // in the scope of the order it handled.
    eventually("tenant-a's handler ran", Duration::from_secs(10), || {
        !seen_a.lock().unwrap().is_empty()
    })
    .await;
    let marker = a
        .publish(OrderEvent::Placed { id: 9, cents: 0 })
        .await
        .unwrap();
    eventually("tenant-a's second order", Duration::from_secs(10), || {
        seen_a.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(
        seen_a.lock().unwrap().as_slice(),
        [
            (1, Some("tenant-a/eu".into())),
            (9, Some("tenant-a".into()))
        ]
    );
    let follow_up = a
        .history()
        .topic("order.shipped")
        .fetch()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.causation_id() == Some(in_eu.id().to_string().as_str()))
        .expect("the follow-up is in tenant-a's history");
    assert_eq!(follow_up.scope(), Some("tenant-a/eu"));

    // History: each scope sees itself and below; the root sees everything.
    let placed = |bus: &Bus| bus.history().topic("order.placed").fetch();
    assert_eq!(
        scopes(&placed(&bus).await.unwrap()),
        [
            ("order.placed".into(), Some("tenant-a/eu")),
            ("order.placed".into(), Some("tenant-b")),
            ("order.placed".into(), None),
            ("order.placed".into(), Some("tenant-a")),
        ]
    );
    assert_eq!(
        scopes(&placed(&a).await.unwrap()),
        [
            ("order.placed".into(), Some("tenant-a/eu")),
            ("order.placed".into(), Some("tenant-a")),
        ]
    );
    assert_eq!(
        scopes(&placed(&a_eu).await.unwrap()),
        [("order.placed".into(), Some("tenant-a/eu"))]
    );
    assert_eq!(
        scopes(&placed(&b).await.unwrap()),
        [("order.placed".into(), Some("tenant-b"))]
    );
    let a_topics: Vec<(String, u64)> = a
        .topics()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.topic, t.count))
        .collect();
    assert_eq!(
        a_topics,
        [("order.placed".into(), 2), ("order.shipped".into(), 2)]
    );
    assert_eq!(marker.scope(), Some("tenant-a"));
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn scopes_propagate_up_and_stay_apart_on_memory() {
    scopes_propagate_up_and_stay_apart_between_siblings("memory://").await;
}

#[tokio::test]
async fn scopes_propagate_up_and_stay_apart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    scopes_propagate_up_and_stay_apart_between_siblings(&url).await;
}

#[tokio::test]
async fn a_scope_is_kept_by_the_store_and_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    let bus = isolated().store(&url).build().await.unwrap();
    bus.scope("tenant-a/eu")
        .unwrap()
        .publish_json("invoice.sent", &1)
        .await
        .unwrap();
    // A scope whose name is a prefix of another's is not its parent.
    bus.scope("tenant-ab")
        .unwrap()
        .publish_json("invoice.sent", &2)
        .await
        .unwrap();
    bus.shutdown().await.unwrap();

    let bus = isolated().store(&url).build().await.unwrap();
    let a = bus.scope("tenant-a").unwrap();
    let stored = a.history().fetch().await.unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|e| e.data_value().unwrap())
            .collect::<Vec<_>>(),
        [serde_json::json!(1)]
    );
    let exported = stored[0].to_cloudevent_json().unwrap();
    assert!(exported.contains(r#""scope":"tenant-a/eu""#), "{exported}");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn imports_take_the_scope_of_the_handle_and_stay_inside_it() {
    let source = isolated().build().await.unwrap();
    let unscoped = source.publish_json("invoice.sent", &1).await.unwrap();
    let of_b = source
        .scope("tenant-b")
        .unwrap()
        .publish_json("invoice.sent", &2)
        .await
        .unwrap();
    let of_a_eu = source
        .scope("tenant-a/eu")
        .unwrap()
        .publish_json("invoice.sent", &3)
        .await
        .unwrap();
    source.shutdown().await.unwrap();

    let bus = isolated().build().await.unwrap();
    let a = bus.scope("tenant-a").unwrap();
    assert_eq!(a.import(&unscoped).await.unwrap().scope(), Some("tenant-a"));
    assert_eq!(
        a.import(&of_a_eu).await.unwrap().scope(),
        Some("tenant-a/eu")
    );
    let err = a.import(&of_b).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("tenant-b"), "{err}");
    assert_eq!(bus.history().fetch().await.unwrap().len(), 2);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn scope_misuse_is_refused_with_the_reason() {
    let bus = isolated()
        .handler(
            FnHandler::new("bad", |_: Envelope<OrderEvent>, _: Context| async {}).scope("a//b"),
        )
        .build()
        .await
        .unwrap_err();
    assert!(bus.to_string().contains("handler `bad`"), "{bus}");
    assert!(bus.to_string().contains("a//b"), "{bus}");

    let bus = isolated().build().await.unwrap();
    let err = bus.scope("tenant a").unwrap_err();
    assert!(err.to_string().contains("`tenant a` is invalid"), "{err}");
    let forged = bus
        .publish(OrderEvent::Shipped { id: 1 })
        .header("scope", "tenant-b")
        .unwrap_err();
    assert!(forged.to_string().contains("bus.scope"), "{forged}");
    let cleared = bus
        .scope("tenant-a")
        .unwrap()
        .clear("order.>")
        .await
        .unwrap_err();
    assert!(cleared.to_string().contains("root bus"), "{cleared}");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_scope_whose_name_extends_another_is_not_below_it() {
    let bus = isolated().build().await.unwrap();
    let a = bus.scope("tenant-a").unwrap();
    let mut a_sub = a.subscribe_raw(">").unwrap();
    bus.scope("tenant-ab")
        .unwrap()
        .publish_json("invoice.sent", &1)
        .await
        .unwrap();
    let mine = a.publish_json("invoice.sent", &2).await.unwrap();
    assert_eq!(next(&mut a_sub).await.id(), mine.id());
    let history = a.history().fetch().await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].id(), mine.id());
    bus.shutdown().await.unwrap();
}

static TENANT_A_ORDERS: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

#[handler(name = "scopes.tenant_a", scope = "tenant-a")]
async fn tenant_a_orders(ev: Envelope<OrderEvent>) {
    if let OrderEvent::Shipped { id } = *ev {
        TENANT_A_ORDERS.lock().unwrap().push(id);
    }
}

#[tokio::test]
async fn a_handler_attribute_limits_the_handler_to_a_scope() {
    let bus = Bus::builder()
        .only_handlers(["scopes.tenant_a"])
        .build()
        .await
        .unwrap();
    let info = &bus.handlers()[0];
    assert_eq!(info.options.scope.as_deref(), Some("tenant-a"));
    bus.scope("tenant-b")
        .unwrap()
        .publish(OrderEvent::Shipped { id: 1 })
        .await
        .unwrap();
    bus.publish(OrderEvent::Shipped { id: 2 }).await.unwrap();
    bus.scope("tenant-a/eu")
        .unwrap()
        .publish(OrderEvent::Shipped { id: 3 })
        .await
        .unwrap();
    eventually("tenant-a's order", Duration::from_secs(5), || {
        !TENANT_A_ORDERS.lock().unwrap().is_empty()
    })
    .await;
    bus.shutdown().await.unwrap();
    assert_eq!(TENANT_A_ORDERS.lock().unwrap().as_slice(), [3]);
}
