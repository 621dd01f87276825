//! Server-side consumers: for stores whose server tracks each handler's
//! position and hands it events (NATS JetStream), instead of the bus
//! reading the store after a checkpoint.

use std::time::Duration;

use crate::envelope::RawEnvelope;
use crate::error::Result;
use crate::future::{BoxFuture, BoxStream};

/// Consumers a store's server runs for handlers (see
/// [`Store`](super::Store)): the server keeps each handler's position and
/// hands out its events, so processes running one handler share its work.
pub trait ServerConsumers: Send + Sync {
    /// Opens, creating it if needed, the handler's consumer and returns
    /// its deliveries. The consumer exists when the future completes, so
    /// that every event stored afterwards reaches the handler.
    #[allow(clippy::type_complexity)]
    fn consume(&self, spec: ConsumerSpec) -> BoxFuture<'_, Result<BoxStream<'static, Delivery>>>;
}

/// Where a handler seen for the first time starts reading, on a store that
/// keeps its position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Start {
    /// After the newest event stored when the handler first runs.
    #[default]
    Latest,
    /// From the oldest event in the store.
    Earliest,
}

/// What a store needs to open a handler's consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerSpec {
    /// The handler's name; one consumer per name, shared by every process
    /// that runs the handler.
    pub handler: String,
    /// The topics the consumer should deliver: the handler's pattern, or a
    /// pattern covering its event type's topics. Deliveries outside
    /// `topics` are acknowledged by the bus without handling.
    pub filter: String,
    /// Where a consumer made for the first time starts.
    pub start: Start,
    /// How many deliveries may be unacknowledged at once, across every
    /// process: the handler's concurrency.
    pub max_in_flight: u32,
}

/// One event handed to a handler by a server-side consumer.
pub struct Delivery {
    /// The event. When the message could not be read as an event, this
    /// holds what could be read (for the dead letters) and `unreadable`
    /// says why.
    pub envelope: RawEnvelope,
    /// Why the message is not a readable event, if it is not.
    pub unreadable: Option<String>,
    /// The delivery count, starting at 1.
    pub attempt: u32,
    /// How often the bus must signal progress while the handler runs, so
    /// the server does not deliver the event again meanwhile.
    pub progress_every: Duration,
    /// Settles the delivery with the server.
    pub ack: Box<dyn Acknowledge>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("envelope", &self.envelope)
            .field("unreadable", &self.unreadable)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// How a delivery is settled.
pub trait Acknowledge: Send + Sync {
    /// Handled: never deliver it again.
    fn ack(&self) -> BoxFuture<'_, Result<()>>;
    /// Failed: deliver it again after `delay`.
    fn retry_after(&self, delay: Duration) -> BoxFuture<'_, Result<()>>;
    /// Given up (it is in the dead letters): never deliver it again.
    fn give_up(&self) -> BoxFuture<'_, Result<()>>;
    /// Still being handled: do not deliver it again yet.
    fn in_progress(&self) -> BoxFuture<'_, Result<()>>;
    /// Never attempted (the bus stopped first): deliver it again now, to
    /// any process. A store whose server can should not count this
    /// delivery as an attempt; by default it is a retry without delay.
    fn hand_back(&self) -> BoxFuture<'_, Result<()>> {
        self.retry_after(Duration::ZERO)
    }
}
