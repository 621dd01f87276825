//! Handlers: the registration record `#[handler]` submits, closure handlers,
//! the options both carry, and what `bus.handlers()` reports.

mod context;
mod fn_handler;
mod options;
mod param;
mod publish;
mod registration;

pub use context::Context;
pub(crate) use context::{Committed, HandlerHost};
pub use fn_handler::FnHandler;
pub use options::{Backoff, HandlerOptions};
pub use param::{EventParam, HandlerReturn};
pub(crate) use publish::Publisher;
pub use publish::{JsonEvent, Publish, PublishFuture, Publishable};
pub(crate) use registration::{HandlerCall, HandlerDef};
pub use registration::{HandlerInfo, HandlerRegistration, HandlingError, StateRequirement};
