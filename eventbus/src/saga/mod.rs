//! Process managers (sagas): a state machine per correlation value (an
//! order id), started by one event type, fed by others, sending events
//! and scheduling timeouts as it goes, until it completes.
//!
//! A saga is a type with `#[saga]` on an `impl` block whose `#[start]` and
//! `#[on]` methods are its steps; each step is a handler of its own (named
//! `<saga>::<method>`), with the usual retries and dead letters. A step
//! loads the instance, runs the method on its state, and saves the state
//! with what it asked for (the events to send, the timers to set or
//! cancel) under optimistic concurrency, so two steps of one instance never
//! interleave, in one process or several. Only then does it publish them,
//! and a step that dies in between leaves them in the record, for the
//! next step or the redelivery to publish; their ids are derived from the
//! step, so publishing twice stores them once.
//!
//! ```standalone_crate
//! use std::time::Duration;
//! use eventbus::prelude::*;
//! use eventbus::saga::{saga, SagaContext};
//!
//! #[derive(Event, Clone, Debug)]
//! #[event(namespace = "order")]
//! enum OrderEvent {
//!     Placed { order_id: u64 },
//!     Paid { order_id: u64 },
//!     PaymentTimedOut { order_id: u64 },
//!     Cancelled { order_id: u64 },
//! }
//!
//! #[derive(Default, serde::Serialize, serde::Deserialize)]
//! struct Checkout { paid: bool }
//!
//! #[saga(key = "order_id")]
//! impl Checkout {
//!     #[start(topic = "order.placed")]
//!     fn placed(&mut self, ev: &OrderEvent, saga: &mut SagaContext) {
//!         let OrderEvent::Placed { order_id } = ev else { return };
//!         saga.schedule(OrderEvent::PaymentTimedOut { order_id: *order_id }, Duration::from_secs(900));
//!     }
//!
//!     #[on(topic = "order.paid")]
//!     fn paid(&mut self, _ev: &OrderEvent, saga: &mut SagaContext) {
//!         self.paid = true;
//!         saga.complete();                 // and the timeout is cancelled
//!     }
//!
//!     #[on(topic = "order.payment_timed_out")]
//!     fn timed_out(&mut self, ev: &OrderEvent, saga: &mut SagaContext) {
//!         let OrderEvent::PaymentTimedOut { order_id } = ev else { return };
//!         saga.send(OrderEvent::Cancelled { order_id: *order_id });
//!         saga.complete();
//!     }
//! }
//! # fn main() {}
//! ```

mod context;
mod definition;
mod instance;
mod record;
mod step;

#[cfg(feature = "testing")]
pub(crate) use context::Effect;
pub use context::SagaContext;
pub use definition::Saga;
#[doc(hidden)]
pub use definition::{StepDef, StepKind};
pub use eventbus_macros::saga;
pub use instance::SagaInstance;
#[doc(hidden)]
pub use step::run_step;
