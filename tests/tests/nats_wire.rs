//! The NATS wire format against a real server: whatever an attribute or
//! header holds comes back exactly (line breaks, `%`, whitespace at the
//! ends, typed extension values), nothing panics, messages from plain
//! clients get ids no other stream repeats, and a message that contradicts
//! itself is a dead letter naming why.

use std::time::Duration;

use eventbus::prelude::*;
use eventbus::store::DeadLetterQuery;
use eventbus::{Draft, HeaderKind, RawEnvelope};
use serde_json::json;
use tests::{NatsScope, OrderEvent, eventually, isolated};

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_every_value_comes_back_exactly_and_nothing_panics() {
    let scope = NatsScope::new("wire_values");
    let bus = isolated().store(scope.url("")).build().await.unwrap();
    let sent = bus
        .publish(OrderEvent::Shipped { id: 1 })
        .idempotency_key("order-1\nretry")
        .source(" svc")
        .correlation_id("req-1 ")
        .subject("order-1\r\n")
        .header("tenant", "\tacme ")
        .unwrap()
        .header("discount", "50%25 off%")
        .unwrap()
        .header("space", "\u{2003}em\u{2003}")
        .unwrap()
        .header("priority", 5)
        .unwrap()
        .header("urgent", false)
        .unwrap()
        .await
        .unwrap();
    let repeat = bus
        .publish(OrderEvent::Shipped { id: 1 })
        .idempotency_key("order-1\nretry")
        .await
        .unwrap();
    assert_eq!(repeat.id(), sent.id(), "the key still dedupes");

    // An imported event with a name and id that need escaping too.
    let imported = RawEnvelope::from_cloudevent_json(
        json!({
            "specversion": "1.0", "id": "A234-1234-1234\n", "source": "s",
            "type": "order.placed", "data": {"id": 2, "cents": 3},
            "eventname": "Placed%25v2\nnext", "dataschema": "urn:x:%41",
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    bus.store()
        .append(Draft::from_envelope(&imported))
        .await
        .unwrap();

    let stored = bus.history().fetch().await.unwrap();
    assert_eq!(stored.len(), 2);
    let back = &stored[0];
    assert_eq!(back.idempotency_key(), Some("order-1\nretry"));
    assert_eq!(back.source(), " svc");
    assert_eq!(back.correlation_id(), Some("req-1 "));
    assert_eq!(back.subject(), Some("order-1\r\n"));
    assert_eq!(back.header("tenant"), Some("\tacme "));
    assert_eq!(back.header("discount"), Some("50%25 off%"));
    assert_eq!(back.header("space"), Some("\u{2003}em\u{2003}"));
    let priority = back.header_value("priority").unwrap();
    assert_eq!(
        (priority.kind(), priority.as_i64()),
        (HeaderKind::Integer, Some(5))
    );
    assert_eq!(back.header_value("urgent").unwrap().as_bool(), Some(false));
    assert_eq!(
        back.to_cloudevent_json().unwrap(),
        sent.to_cloudevent_json().unwrap().replace(
            &format!("\"seq\":\"{}\"", sent.seq()),
            &format!("\"seq\":\"{}\"", back.seq()),
        )
    );
    let other = &stored[1];
    assert_eq!(other.id().to_string(), "A234-1234-1234\n");
    assert_eq!(other.event_name(), "Placed%25v2\nnext");
    assert_eq!(other.dataschema(), Some("urn:x:%41"));
    bus.shutdown().await.unwrap();
}

async fn publish_plain(scope: &NatsScope, body: &str) {
    let js = async_nats::jetstream::new(scope.raw_client().await);
    js.publish(scope.subject("order.shipped"), body.to_owned().into())
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn first_id(scope: &NatsScope) -> String {
    let bus = isolated().store(scope.url("")).build().await.unwrap();
    let events = bus.history().fetch().await.unwrap();
    bus.shutdown().await.unwrap();
    events[0].id().to_string()
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_plain_messages_get_ids_no_other_stream_repeats() {
    let (a, b) = (NatsScope::new("ids_a"), NatsScope::new("ids_b"));
    for scope in [&a, &b] {
        // Opening creates the stream.
        isolated()
            .store(scope.url(""))
            .build()
            .await
            .unwrap()
            .shutdown()
            .await
            .unwrap();
        publish_plain(scope, r#"{"id":1}"#).await;
    }
    let (id_a, id_b) = (first_id(&a).await, first_id(&b).await);
    assert_eq!(id_a, first_id(&a).await, "every reading agrees");
    assert_ne!(id_a, id_b, "two streams");
    assert!(id_a.starts_with(&format!("nats-{}-", a.stream)), "{id_a}");

    // The same stream name, made again: its first message is new.
    let js = async_nats::jetstream::new(a.raw_client().await);
    js.delete_stream(&a.stream).await.unwrap();
    isolated()
        .store(a.url(""))
        .build()
        .await
        .unwrap()
        .shutdown()
        .await
        .unwrap();
    publish_plain(&a, r#"{"id":1}"#).await;
    assert_ne!(first_id(&a).await, id_a, "a stream made again");
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_messages_that_contradict_themselves_are_dead_letters_naming_why() {
    let scope = NatsScope::new("wire_contradict");
    let handler = FnHandler::new(
        "billing",
        |_ev: Envelope<OrderEvent>, _ctx: Context| async {},
    );
    let bus = isolated()
        .store(scope.url(""))
        .handler(handler)
        .build()
        .await
        .unwrap();
    let js = async_nats::jetstream::new(scope.raw_client().await);
    for (ce_type, source) in [("order.placed", "svc"), ("order.shipped", "")] {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("ce-specversion", "1.0");
        headers.insert("ce-id", uuid::Uuid::now_v7().to_string().as_str());
        headers.insert("ce-source", source);
        headers.insert("ce-type", ce_type);
        js.publish_with_headers(
            scope.subject("order.shipped"),
            headers,
            r#"{"id":1}"#.into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    eventually("both are dead letters", Duration::from_secs(10), || {
        bus.stats()[0].dead_lettered == 2
    })
    .await;
    let dead = bus
        .dead_letters()
        .list(DeadLetterQuery::all())
        .await
        .unwrap();
    assert!(
        dead[0].error.contains("`order.placed`") && dead[0].error.contains("`order.shipped`"),
        "{}",
        dead[0].error
    );
    assert!(
        dead[1].error.contains("`ce-source` is empty"),
        "{}",
        dead[1].error
    );
    let history: Vec<_> =
        futures_util::StreamExt::collect::<Vec<_>>(bus.history().topic("order.>").stream()).await;
    assert_eq!(history.len(), 2);
    assert!(
        history.iter().all(Result::is_err),
        "history names them as unreadable"
    );
    bus.shutdown().await.unwrap();
}
