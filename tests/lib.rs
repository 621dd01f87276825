//! Shared fixtures for the integration tests: events and a condition wait.

use std::time::Duration;

use eventbus::prelude::*;

/// An event with one topic.
#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "entity.created")]
pub struct EntityCreated {
    /// Identifier.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// An event enum with several topics.
#[derive(Event, Clone, Debug, PartialEq)]
#[event(namespace = "order")]
pub enum OrderEvent {
    /// `order.placed`
    Placed {
        /// Order id.
        id: u64,
        /// Amount.
        cents: u64,
    },
    /// `order.shipped`
    Shipped {
        /// Order id.
        id: u64,
    },
    /// `order.cancelled.by_customer`
    #[event(topic = "order.cancelled.by_customer")]
    Cancelled {
        /// Order id.
        id: u64,
        /// Why.
        reason: String,
    },
}

/// A builder that ignores the `#[handler]`s linked into the test binary, so
/// each test sees only the closure handlers it adds.
pub fn isolated() -> eventbus::BusBuilder {
    Bus::builder()
        .only_handlers(Vec::<String>::new())
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
}

/// Waits until `done()` holds, checking every millisecond, failing the test
/// after `timeout`.
pub async fn eventually(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
