//! What a `#[handler]` function may take and return.

use std::error::Error as StdError;

use super::registration::HandlingError;
use crate::envelope::{Envelope, RawEnvelope};
use crate::event::Event;

/// A handler parameter that carries the event: `E` itself (cloned out of the
/// shared envelope, so `E: Clone`) or [`Envelope<E>`] (shared, never cloned).
///
/// `#[handler]` finds the event type of a handler through this trait.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler parameter",
    label = "expected `E` or `Envelope<E>` where `E: Event`",
    note = "a handler takes one event parameter, `E` or `Envelope<E>` where `E: Event` \
            (see `#[derive(Event)]`), and optionally a `Context`; taking `E` by value also needs `E: Clone`"
)]
pub trait EventParam: Sized + Send + 'static {
    /// The event type the parameter carries.
    type Event: Event;

    /// [`Event::NAME`] of [`Self::Event`]. `#[handler]` reads the event
    /// type's name and topics through these rather than through
    /// `Self::Event`, so that a parameter that is no event parameter
    /// (`Option<Envelope<E>>`) fails this trait alone, once.
    #[doc(hidden)]
    const EVENT_NAME: &'static str = <Self::Event as Event>::NAME;

    /// [`Event::TOPICS`] of [`Self::Event`]; see [`Self::EVENT_NAME`].
    #[doc(hidden)]
    const EVENT_TOPICS: &'static [&'static str] = <Self::Event as Event>::TOPICS;

    /// Takes the parameter out of a stored envelope, decoding it if needed.
    ///
    /// # Errors
    ///
    /// [`HandlingError::Decode`] when the envelope's data does not decode
    /// into [`Self::Event`].
    fn extract(envelope: RawEnvelope) -> Result<Self, HandlingError>;
}

impl<E: Event + Clone> EventParam for E {
    type Event = E;

    fn extract(envelope: RawEnvelope) -> Result<Self, HandlingError> {
        let typed = Envelope::<E>::from_raw_owned(envelope).map_err(HandlingError::Decode)?;
        Ok(typed.event().clone())
    }
}

impl<E: Event> EventParam for Envelope<E> {
    type Event = E;

    fn extract(envelope: RawEnvelope) -> Result<Self, HandlingError> {
        Envelope::<E>::from_raw_owned(envelope).map_err(HandlingError::Decode)
    }
}

/// What a handler may return: `()` or `Result<(), E>` where `E` converts into
/// `Box<dyn Error + Send + Sync>` (any `std::error::Error + Send + Sync`, and
/// `anyhow::Error`).
#[diagnostic::on_unimplemented(
    message = "a handler must return `()` or `Result<(), E>` where `E: std::error::Error + Send + Sync + 'static`, not `{Self}`",
    label = "unsupported return type",
    note = "`anyhow::Result<()>` and `eventbus::Result<()>` work too"
)]
pub trait HandlerReturn {
    /// Turns the handler's return value into the bus's view of the outcome.
    ///
    /// # Errors
    ///
    /// [`HandlingError::Failed`] carrying the handler's error.
    fn into_outcome(self) -> Result<(), HandlingError>;
}

impl HandlerReturn for () {
    fn into_outcome(self) -> Result<(), HandlingError> {
        Ok(())
    }
}

impl<Er> HandlerReturn for Result<(), Er>
where
    Er: Into<Box<dyn StdError + Send + Sync + 'static>>,
{
    fn into_outcome(self) -> Result<(), HandlingError> {
        self.map_err(|e| HandlingError::Failed(e.into()))
    }
}
