//! `Context`: what a handler can ask about and do beyond its event.

use std::any::{Any, TypeId};
use std::sync::Arc;

use crate::bus::{Bus, Publish};
use crate::delivery::HandlerScope;
use crate::envelope::RawEnvelope;
use crate::error::{Error, Result};
use crate::event::Event;

/// The handling context: publish follow-ups, read metadata, the attempt
/// number and shared state. Cheap to clone.
///
/// # Examples
///
/// ```standalone_crate
/// use eventbus::prelude::*;
///
/// #[derive(Event, Clone, Debug)]
/// #[event(topic = "invoice.created")]
/// struct InvoiceCreated { order: u64 }
///
/// #[derive(Event, Clone, Debug)]
/// #[event(topic = "order.placed")]
/// struct OrderPlaced { id: u64 }
///
/// struct Config { currency: &'static str }
///
/// #[handler(name = "docs.invoice")]
/// async fn invoice(ev: Envelope<OrderPlaced>, ctx: Context) -> eventbus::Result<()> {
///     let config = ctx.state::<Config>()?;
///     assert_eq!(config.currency, "EUR");
///     // Carries the correlation id over; the causation id is `ev.id()`.
///     ctx.publish(InvoiceCreated { order: ev.id }).await?;
///     Ok(())
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> eventbus::Result<()> {
/// # let bus = Bus::builder().state(Config { currency: "EUR" }).build().await?;
/// # bus.shutdown().await
/// # }
/// ```
#[derive(Clone)]
pub struct Context {
    scope: Arc<HandlerScope>,
    envelope: RawEnvelope,
    attempt: u32,
}

impl Context {
    pub(crate) fn new(scope: Arc<HandlerScope>, envelope: RawEnvelope, attempt: u32) -> Self {
        Context {
            scope,
            envelope,
            attempt,
        }
    }

    /// Publishes a follow-up event. Its correlation id is the current
    /// event's (or the current event's id when it has none) and its
    /// causation id is the current event's id; both can be overridden on
    /// the returned builder.
    pub fn publish<E: Event>(&self, event: E) -> Publish<'_, E> {
        let correlation = self
            .envelope
            .correlation_id()
            .map_or_else(|| self.envelope.id().to_string(), str::to_owned);
        self.scope
            .bus
            .publish(event)
            .correlation_id(correlation)
            .causation_id(self.envelope.id().to_string())
    }

    /// The envelope being handled, with all its metadata.
    pub fn envelope(&self) -> &RawEnvelope {
        &self.envelope
    }

    /// The attempt number, 1 for the first delivery.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The name of the handler running.
    pub fn handler(&self) -> &str {
        &self.scope.handler.name
    }

    /// Whether the envelope comes from a replay of history.
    pub fn is_replay(&self) -> bool {
        self.envelope.is_replay()
    }

    /// The bus, to subscribe, query history or publish without carrying
    /// correlation over.
    pub fn bus(&self) -> &Bus {
        &self.scope.bus
    }

    /// Shared state given to the builder with `.state(value)`.
    ///
    /// `#[handler]` records every `ctx.state::<T>()` in its body, so
    /// `build()` fails up front when a state is missing; a call made
    /// elsewhere (a helper function) is only checked here.
    ///
    /// # Errors
    ///
    /// [`Error::StateNotProvided`] when no state of type `T` was given.
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<&T> {
        self.scope
            .bus
            .state_any(TypeId::of::<T>())
            .and_then(|s: &Arc<dyn Any + Send + Sync>| s.downcast_ref::<T>())
            .ok_or(Error::StateNotProvided(std::any::type_name::<T>()))
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("handler", &self.handler())
            .field("attempt", &self.attempt)
            .field("envelope", &self.envelope)
            .finish_non_exhaustive()
    }
}
