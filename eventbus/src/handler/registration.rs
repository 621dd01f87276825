//! What a handler is, as registered: the record `#[handler]` submits to
//! the link-time registry, the definition the bus runs from either source,
//! why a handling fails, and what `bus.handlers()` reports.

use std::any::TypeId;
use std::borrow::Cow;
use std::error::Error as StdError;
use std::sync::Arc;

use crate::envelope::RawEnvelope;
use crate::event::CodecError;

use super::context::Context;
use super::options::HandlerOptions;
use crate::future::BoxFuture;

/// The type-erased entry point of a handler: decode, call, report.
pub(crate) type HandlerCall = Arc<
    dyn Fn(RawEnvelope, Context) -> BoxFuture<'static, Result<(), HandlingError>> + Send + Sync,
>;

/// Why one handling of an event failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandlingError {
    /// The envelope's data does not decode into the handler's event type.
    #[error("the event does not decode: {0}")]
    Decode(#[source] CodecError),
    /// The handler returned an error.
    #[error("{0}")]
    Failed(Box<dyn StdError + Send + Sync + 'static>),
    /// The handler panicked; the message is the panic payload.
    #[error("the handler panicked: {0}")]
    Panicked(String),
}

/// A shared-state type a handler asks for with `ctx.state::<T>()`.
#[derive(Debug, Clone, Copy)]
pub struct StateRequirement {
    /// `TypeId::of::<T>` (a function because `TypeId::of` is not const).
    pub type_id: fn() -> TypeId,
    /// The type as written in the handler, for error messages.
    pub type_name: &'static str,
}

/// The record `#[handler]` submits to the link-time registry.
///
/// Not meant to be built by hand: use `#[handler]` or a [`FnHandler`].
#[doc(hidden)]
pub struct HandlerRegistration {
    pub name: &'static str,
    pub pattern: Option<&'static str>,
    pub event: &'static str,
    pub topics: &'static [&'static str],
    pub options: HandlerOptions,
    pub states: &'static [StateRequirement],
    pub call: fn(RawEnvelope, Context) -> BoxFuture<'static, Result<(), HandlingError>>,
    /// The `TypeId` of the `#[handler]` function item itself, so a test
    /// can name the handler by its function (`TestBus::handler(bill)`).
    pub function: fn() -> TypeId,
    pub file: &'static str,
    pub line: u32,
}

impl std::fmt::Debug for HandlerRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerRegistration")
            .field("name", &self.name)
            .field("pattern", &self.pattern)
            .field("event", &self.event)
            .field("options", &self.options)
            .field("file", &self.file)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

inventory::collect!(HandlerRegistration);

/// One handler as the bus sees it, from either source.
pub(crate) struct HandlerDef {
    pub(crate) name: Cow<'static, str>,
    pub(crate) pattern: Option<Cow<'static, str>>,
    pub(crate) event: &'static str,
    pub(crate) topics: &'static [&'static str],
    pub(crate) options: HandlerOptions,
    pub(crate) states: Vec<StateRequirement>,
    pub(crate) call: HandlerCall,
    pub(crate) location: Option<String>,
}

impl HandlerDef {
    pub(crate) fn from_registration(r: &'static HandlerRegistration) -> Self {
        let call = r.call;
        HandlerDef {
            name: Cow::Borrowed(r.name),
            pattern: r.pattern.map(Cow::Borrowed),
            event: r.event,
            topics: r.topics,
            options: r.options.clone(),
            states: r.states.to_vec(),
            call: Arc::new(call),
            location: Some(format!("{}:{}", r.file, r.line)),
        }
    }

    pub(crate) fn location(&self) -> &str {
        self.location.as_deref().unwrap_or("a FnHandler")
    }
}

/// What `bus.handlers()` reports about one registered handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerInfo {
    /// The handler's unique name.
    pub name: String,
    /// The pattern it subscribes with (the event type's topics when none was given).
    pub pattern: Option<String>,
    /// The event type's [`Event::NAME`].
    pub event: &'static str,
    /// The topics it receives: the event type's topics that the pattern matches.
    pub topics: Vec<&'static str>,
    /// Its options, with the retry count resolved against the bus default.
    pub options: HandlerOptions,
    /// Where it was declared (`file:line`), for `#[handler]` functions.
    pub location: Option<String>,
}
