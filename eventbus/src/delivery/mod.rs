//! Delivery: everything between a stored event and a handler's code.
//!
//! - `clock`: the time due dates are measured against;
//! - `core`: the state a running bus shares with its workers and the
//!   handlers as they run; `publish`: the publish path (middleware, store,
//!   route);
//! - `subscribers`: live subscriptions, a broadcast;
//! - `ring` and `pushed`: feeds pushed to handlers on a store that does
//!   not outlive the process (`memory://`): one ring all of them read,
//!   and their workers;
//! - `store_feed`: feeds read from a durable store after a checkpoint,
//!   and `lease`: one process at a time runs a handler on a shared store;
//! - `consumer_feed`: feeds a store's server hands out (NATS consumers);
//! - `workers`: which of the three a handler gets, decided once;
//! - `attempt`: one delivery with its retries, and what a final failure
//!   does; `dead_letter`: storing and announcing dead letters;
//!   `redelivery`: retrying them on request;
//! - `tracker`: what a test bus has in flight, for `eventbus::testing`.
//!
//! This layer holds a [`Core`], never a `Bus`; handlers reach it through
//! the narrow handles the handler layer defines ([`Publisher`], [`HandlerHost`]).
//!
//! [`Publisher`]: crate::handler::Publisher
//! [`HandlerHost`]: crate::handler::HandlerHost

mod attempt;
mod clock;
mod consumer_feed;
mod core;
mod dead_letter;
pub(crate) mod lease;
mod publish;
mod pushed;
mod redelivery;
mod ring;
mod scheduler;
mod store_feed;
mod subscribers;
mod tracker;
mod workers;

pub(crate) use self::core::{Core, FeedKind, HandlerCounters, HandlerRuntime, HandlerScope};
pub(crate) use attempt::{Mode, deliver};
pub(crate) use clock::Clock;
pub use dead_letter::DeadLettered;
pub(crate) use redelivery::retry;
pub use ring::LagPolicy;
pub(crate) use ring::Ring;
pub(crate) use subscribers::Subscribers;
pub use subscribers::{RawSubscription, Subscription, SubscriptionError};
#[cfg(feature = "testing")]
pub(crate) use tracker::{Phase, Tracker};
pub(crate) use workers::{Settings, Workers, start};
