//! Errors a caller can act on: each names what happened, keeps the error
//! beneath it as its source, and sorts into an `ErrorKind`; `build()`
//! reports every problem it found at once.

use std::error::Error as _;
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::{Error, ErrorKind};
use tests::{OrderEvent, chain, isolated};

#[tokio::test]
async fn build_reports_every_problem_at_once() {
    let twice = || FnHandler::new("twice", |_: Envelope<OrderEvent>, _: Context| async {});
    let err = isolated()
        .feed_capacity(0)
        .backoff(Duration::from_secs(2), Duration::from_secs(1))
        .handler(twice())
        .handler(twice())
        .handler(
            FnHandler::new("narrow", |_: Envelope<OrderEvent>, _: Context| async {})
                .topic("user.*"),
        )
        .build()
        .await
        .unwrap_err();
    let Error::Problems(problems) = &err else {
        panic!("expected every problem, got {err:?}");
    };
    assert_eq!(problems.len(), 4, "{err}");
    assert!(matches!(problems[0], Error::Config(_)), "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Error::DuplicateHandler { .. }))
    );
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Error::PatternMatchesNothing { .. }))
    );
    assert_eq!(err.kind(), ErrorKind::Configuration);
    let text = err.to_string();
    assert!(text.starts_with("4 problems: "), "{text}");
    assert!(
        text.contains("`twice`") && text.contains("user.*"),
        "{text}"
    );
}

#[tokio::test]
async fn store_errors_keep_their_source_and_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be: SQLite's own error is the source.
    let url = format!("sqlite://{}", dir.path().display());
    let err = isolated().store(&url).build().await.unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    assert!(err.source().is_some(), "the SQLite error is kept");
    assert!(chain(&err).contains("cannot open"), "{}", chain(&err));

    let missing = format!("sqlite://{}/none.db", dir.path().display());
    let err = eventbus::store::open_existing(&missing)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    let err = isolated()
        .store("sqlite://x.db?wal=off")
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    let bus = isolated().build().await.unwrap();
    let err = bus.dead_letters().retry(42).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.to_string(), "there is no dead letter 42");
    bus.shutdown().await.unwrap();
    let err = bus
        .publish(OrderEvent::Shipped { id: 1 })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShutDown);
}

#[tokio::test]
async fn a_closed_sqlite_store_is_unavailable_not_broken() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let store = eventbus::store::open(&url).await.unwrap();
    store.close().await.unwrap();
    let err = store
        .checkpoint_store()
        .unwrap()
        .save_checkpoint("h", 1)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("try again later"), "{err}");
}
