//! Handlers built from closures at run time.

use std::any::TypeId;
use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use super::context::Context;
use super::options::{Backoff, HandlerOptions};
use super::param::HandlerReturn;
use super::registration::{HandlerCall, HandlerDef, HandlingError, StateRequirement};
use crate::envelope::{Envelope, RawEnvelope};
use crate::event::Event;
use crate::store::Start;

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

impl std::fmt::Debug for FnHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnHandler")
            .field("name", &self.def.name)
            .field("pattern", &self.def.pattern)
            .field("event", &self.def.event)
            .field("options", &self.def.options)
            .finish_non_exhaustive()
    }
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
        self.def.options.backoff = Some(Backoff { base, max });
        self
    }

    /// Where the handler starts on a durable store the first time it runs.
    pub fn start(mut self, start: Start) -> Self {
        self.def.options.start = Some(start);
        self
    }

    /// Handles only events published in `scope` or below it (a path such
    /// as `tenant-a/eu`, checked by `build()`); see [`Bus::scope`](crate::Bus::scope).
    pub fn scope(mut self, scope: impl Into<Cow<'static, str>>) -> Self {
        self.def.options.scope = Some(scope.into());
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
