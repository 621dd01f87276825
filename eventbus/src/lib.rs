//! A typed, macro-driven event bus for tokio services.
//!
//! Declare events as Rust types with `#[derive(Event)]`, write `#[handler]`
//! async functions, and the bus routes every published event to each handler
//! whose topic pattern matches, keeps it in history, and can replay it.
//!
//! ```standalone_crate
//! use eventbus::prelude::*;
//!
//! #[derive(Event, Clone, Debug)]
//! #[event(namespace = "order")]            // topics order.placed, order.shipped
//! pub enum OrderEvent {
//!     Placed { id: u64, cents: u64 },
//!     Shipped { id: u64 },
//! }
//!
//! #[handler(topic = "order.placed")]      // checked against OrderEvent at compile time
//! async fn bill(ev: Envelope<OrderEvent>, ctx: Context) -> eventbus::Result<()> {
//!     if let OrderEvent::Placed { id, .. } = *ev {
//!         ctx.publish(OrderEvent::Shipped { id }).await?;
//!     }
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> eventbus::Result<()> {
//!     let bus = Bus::builder().source("shop").build().await?;   // picks up `bill`
//!     let mut shipped = bus.subscribe::<OrderEvent>("order.shipped")?;
//!     bus.publish(OrderEvent::Placed { id: 7, cents: 1250 })
//!         .correlation_id("req-456")
//!         .await?;
//!     let ev = shipped.next().await.expect("stream open").expect("no gap");
//!     assert_eq!(ev.correlation_id(), Some("req-456"));
//!     bus.shutdown().await
//! }
//! ```
//!
//! The pieces, one module each: [`topic`] (the grammar), [`Event`] (the trait
//! the derive implements), [`Envelope`] (metadata, CloudEvents form),
//! [`Bus`] (builder, publish, subscribe, shutdown), [`handler`](crate::Context)
//! registration and [`Context`], [`store`], [`middleware`], history
//! ([`HistoryQuery`]) and [`Replay`].

// Lets `::eventbus::...` paths from the macros resolve inside this crate too.
#[allow(unused_extern_crates)]
extern crate self as eventbus;

pub mod aggregate;
mod bus;
pub mod catalog;
mod delivery;
pub mod envelope;
mod error;
mod event;
mod future;
mod handler;
mod metrics;
pub mod middleware;
mod migrate;
pub mod saga;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod topic;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use bus::{Bus, BusBuilder, DeadLetters, HandlerStats, HistoryQuery, Replay, ReplayReport};
pub use delivery::{DeadLettered, LagPolicy, RawSubscription, Subscription, SubscriptionError};
pub use envelope::{
    Draft, Envelope, EventId, HeaderKind, HeaderValue, IntoHeaderValue, RawEnvelope, Scope,
};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use event::{CodecError, Event};
pub use future::{BoxFuture, BoxStream};
pub use handler::{
    Backoff, Context, EventParam, FnHandler, HandlerInfo, HandlerOptions, HandlerReturn,
    HandlingError, JsonEvent, Publish, PublishFuture, Publishable, StateRequirement,
};
pub use migrate::{Migration, MigrationReport, migrate};
pub use store::Start;

pub use eventbus_macros::{Event, handler, topic};

/// The rusqlite that [`Context::transaction`] hands its closure, so a
/// handler's SQL uses the same version as the store.
#[cfg(feature = "sqlite")]
pub use rusqlite;

/// The names most programs need: `use eventbus::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Bus, Context, Envelope, Event, FnHandler, RawEnvelope, RawSubscription, Subscription,
        SubscriptionError,
    };
    pub use eventbus_macros::{handler, topic};
    pub use futures_util::StreamExt as _;
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
