//! Handlers: the registration record `#[handler]` submits, closure handlers,
//! the options both carry, and what `bus.handlers()` reports.

mod context;
mod param;

use std::any::TypeId;
use std::borrow::Cow;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use context::Context;
pub use param::{EventParam, HandlerReturn};

use crate::envelope::{Envelope, RawEnvelope};
use crate::event::{CodecError, Event};

/// A boxed, sendable future, as handler adapters return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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

/// Per-handler delivery options, set with `#[handler(...)]` or on a
/// [`FnHandler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerOptions {
    /// Retries after a failed first attempt; `None` takes the bus default
    /// ([`BusBuilder::default_retry`](crate::BusBuilder::default_retry)).
    pub retry: Option<u32>,
    /// How many handlings may run at once. 1 (the default) keeps the
    /// handler's feed in order; more relaxes ordering.
    pub concurrency: u32,
    /// Whether replays reach this handler. Handlers with outside effects
    /// (emails, payments) set `replay = false`.
    pub replay: bool,
    /// Where the handler starts on a durable store the first time it runs;
    /// `None` takes the bus default ([`BusBuilder::default_start`](crate::BusBuilder::default_start)).
    pub start: Option<crate::Start>,
    /// Delays between attempts; `None` takes the bus default
    /// ([`BusBuilder::backoff`](crate::BusBuilder::backoff)).
    pub backoff: Option<crate::Backoff>,
}

impl HandlerOptions {
    /// The defaults: bus-wide retry, concurrency 1, replays delivered.
    pub const DEFAULT: HandlerOptions = HandlerOptions {
        retry: None,
        concurrency: 1,
        replay: true,
        start: None,
        backoff: None,
    };
}

impl Default for HandlerOptions {
    fn default() -> Self {
        HandlerOptions::DEFAULT
    }
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
    pub file: &'static str,
    pub line: u32,
}

inventory::collect!(HandlerRegistration);

/// A handler built from a closure at run time, for dynamic cases and tests.
///
/// # Examples
///
/// ```standalone_crate
/// use eventbus::prelude::*;
///
/// #[derive(Event, Clone, Debug)]
/// #[event(namespace = "order")]
/// enum OrderEvent { Placed { id: u64 }, Shipped { id: u64 } }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> eventbus::Result<()> {
/// let audit = FnHandler::new("audit", |ev: Envelope<OrderEvent>, _ctx: Context| async move {
///     println!("{} {:?}", ev.topic(), *ev);
/// })
/// .topic("order.placed")
/// .retry(2);
/// let bus = Bus::builder().handler(audit).build().await?;
/// bus.publish(OrderEvent::Placed { id: 1 }).await?;
/// bus.shutdown().await
/// # }
/// ```
#[must_use = "a FnHandler does nothing until it is given to `BusBuilder::handler`"]
pub struct FnHandler {
    pub(crate) def: HandlerDef,
}

impl FnHandler {
    /// A handler named `name` calling `f` for every event of type `E`.
    pub fn new<E, F, Fut, R>(name: impl Into<Cow<'static, str>>, f: F) -> Self
    where
        E: Event,
        F: Fn(Envelope<E>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HandlerReturn,
    {
        let f = Arc::new(f);
        let call: HandlerCall = Arc::new(move |raw: RawEnvelope, ctx: Context| {
            let f = Arc::clone(&f);
            Box::pin(async move {
                let ev = Envelope::<E>::from_raw_owned(raw).map_err(HandlingError::Decode)?;
                f(ev, ctx).await.into_outcome()
            })
        });
        FnHandler {
            def: HandlerDef {
                name: name.into(),
                pattern: None,
                event: E::NAME,
                topics: E::TOPICS,
                options: HandlerOptions::DEFAULT,
                states: Vec::new(),
                call,
                location: None,
            },
        }
    }

    /// Restricts the handler to topics matching `pattern` (checked by `build()`).
    pub fn topic(mut self, pattern: impl Into<Cow<'static, str>>) -> Self {
        self.def.pattern = Some(pattern.into());
        self
    }

    /// Retries after a failed first attempt.
    pub fn retry(mut self, retries: u32) -> Self {
        self.def.options.retry = Some(retries);
        self
    }

    /// How many handlings may run at once (at least 1).
    pub fn concurrency(mut self, n: u32) -> Self {
        self.def.options.concurrency = n;
        self
    }

    /// Whether replays reach this handler.
    pub fn replay(mut self, replay: bool) -> Self {
        self.def.options.replay = replay;
        self
    }

    /// The delay before the first retry and the longest delay; delays
    /// double per attempt, with jitter.
    pub fn backoff(mut self, base: std::time::Duration, max: std::time::Duration) -> Self {
        self.def.options.backoff = Some(crate::Backoff { base, max });
        self
    }

    /// Where the handler starts on a durable store the first time it runs.
    pub fn start(mut self, start: crate::Start) -> Self {
        self.def.options.start = Some(start);
        self
    }

    /// Declares a state type the closure reads with `ctx.state::<T>()`, so
    /// `build()` fails when nobody provided it.
    pub fn needs_state<T: Send + Sync + 'static>(mut self) -> Self {
        self.def.states.push(StateRequirement {
            type_id: TypeId::of::<T>,
            type_name: std::any::type_name::<T>(),
        });
        self
    }
}

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
            options: r.options,
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
