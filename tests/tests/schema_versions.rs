//! Event schemas that evolve: an event is stored with the version of its
//! type that wrote it, and read back as the current version, or refused,
//! never misread.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::store::DeadLetterQuery;
use eventbus::{CodecError, Start};
use tests::{OrderEvent, eventually, isolated};

#[tokio::test]
async fn an_event_from_a_newer_version_is_a_dead_letter_naming_both_versions() {
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&got);
    let bus = isolated()
        .default_retry(0)
        .handler(
            FnHandler::new("orders", move |ev: Envelope<OrderEvent>, _: Context| {
                seen.lock().unwrap().push(ev.stored_version());
                async {}
            })
            .start(Start::Earliest),
        )
        .build()
        .await
        .unwrap();
    bus.publish_json("order.shipped", &serde_json::json!({ "id": 4 }))
        .event_version(4)
        .await
        .unwrap();
    bus.publish(OrderEvent::Shipped { id: 5 }).await.unwrap();
    eventually("the dead letter", Duration::from_secs(5), || {
        bus.stats()[0].dead_lettered == 1
    })
    .await;
    eventually("the current event", Duration::from_secs(5), || {
        got.lock().unwrap().len() == 1
    })
    .await;
    assert_eq!(got.lock().unwrap().as_slice(), [1], "only the v1 event");
    let dead = bus
        .dead_letters()
        .list(DeadLetterQuery::all())
        .await
        .unwrap();
    assert!(
        dead[0]
            .error
            .contains("stored as version 4, newer than version 1"),
        "{}",
        dead[0].error
    );

    let history = bus.history().fetch_as::<OrderEvent>().await.unwrap();
    let (seq, err) = history[0].as_ref().unwrap_err();
    assert_eq!(*seq, 1);
    assert!(
        matches!(
            err,
            CodecError::UnknownVersion {
                stored: 4,
                current: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(history[1].as_ref().unwrap().stored_version(), 1);
    let zero = bus
        .publish_json("order.shipped", &1)
        .event_version(0)
        .await
        .unwrap_err();
    assert!(zero.to_string().contains("versions start at 1"), "{zero}");
    bus.shutdown().await.unwrap();
}
