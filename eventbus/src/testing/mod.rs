//! Helpers for an application's own tests (feature `testing`, which brings
//! `schema` along): enable it in `[dev-dependencies]`.
//!
//! - [`TestBus`]: a real [`Bus`](crate::Bus) on a fresh store, running only
//!   the handlers a test names, by their functions;
//! - [`TestBus::settled`]: waits until everything published is handled or
//!   dead-lettered, follow-ups and retries included, with no sleeps;
//! - recorded traffic ([`TestBus::published`], [`TestBus::handled_by`],
//!   [`TestBus::dead_letters`]) and assertions that print what was seen
//!   ([`TestBus::expect`], [`assert_published!`](crate::assert_published));
//! - failure injection ([`TestBus::fail_next`], [`TestBus::panic_next`]);
//! - given/when/then for aggregates' commands ([`AggregateFixture`]);
//! - schema snapshots ([`assert_schemas_unchanged`]).
//!
//! # Examples
//!
//! ```standalone_crate
//! use eventbus::prelude::*;
//! use eventbus::testing::TestBus;
//!
//! #[derive(Event, Clone, Debug)]
//! #[event(namespace = "order")]
//! pub enum OrderEvent { Placed { id: u64 }, Shipped { id: u64 } }
//!
//! #[handler(topic = "order.placed")]
//! async fn ship(ev: Envelope<OrderEvent>, ctx: Context) -> eventbus::Result<()> {
//!     if let OrderEvent::Placed { id } = *ev {
//!         ctx.publish(OrderEvent::Shipped { id }).await?;
//!     }
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> eventbus::Result<()> {
//! let bus = TestBus::builder().handler(ship).build().await?;
//! bus.publish(OrderEvent::Placed { id: 7 }).correlation_id("req-1").await?;
//! bus.settled().await.unwrap();
//! eventbus::assert_published!(bus, OrderEvent::Shipped { id: 7 });
//! # Ok(())
//! # }
//! ```
//!
//! # Virtual time
//!
//! Under `#[tokio::test(start_paused = true)]`, tokio's clock stands still
//! until every task waits on a timer, then jumps to the next one. The bus
//! waits with tokio's timers (retry backoffs, the scheduler) and measures
//! scheduled events' due times against a clock that follows tokio's
//! jumps, so a retry 10 s later and an event scheduled an hour ahead run
//! at once, in order, without a real wait. Timeouts ([`TestBus::settled_within`],
//! [`Expect::within`]) are virtual time too: give them more than the
//! backoffs they wait through. `settled()` returns once nothing is due; an
//! event scheduled for later waits until the test moves the clock on, with
//! `tokio::time::sleep(delay).await` (or `tokio::time::advance`). Keep
//! paused time to the memory store: SQLite works on threads of its own,
//! which tokio cannot see, so its clock may jump while SQLite writes.

mod aggregate;
mod expect;
mod faults;
mod recorded;
mod saga;
mod schemas;
mod settled;
mod test_bus;

pub use aggregate::{AggregateFixture, CommandOutcome};
pub use expect::Expect;
pub use saga::{SagaFixture, SagaOutcome};
pub use schemas::{assert_schemas_unchanged, assert_schemas_unchanged_in};
pub use settled::{InFlight, InFlightState, NotSettled};
pub use test_bus::{HandlerFn, TestBus, TestBusBuilder};

#[doc(hidden)]
pub use expect::assert_published as __assert_published;

/// Asserts that an `E` matching the pattern was published (see
/// [`TestBus::recorded`]), and evaluates to the first such event's
/// [`Envelope`]. It looks at what is recorded when it runs: after
/// [`TestBus::settled`], that is everything. The pattern is a `match`
/// pattern, with an optional `if` guard.
///
/// # Panics
///
/// When no published `E` matches, printing the pattern and every event
/// published, in order, with its topic, seq and correlation id.
///
/// # Examples
///
/// ```standalone_crate
/// use eventbus::prelude::*;
/// use eventbus::{assert_published, testing::TestBus};
///
/// #[derive(Event, Clone, Debug)]
/// #[event(namespace = "order")]
/// enum OrderEvent { Placed { id: u64, cents: u64 }, Shipped { id: u64 } }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> eventbus::Result<()> {
/// let bus = TestBus::new().await?;
/// bus.publish(OrderEvent::Placed { id: 7, cents: 1250 }).correlation_id("req-1").await?;
/// let placed = assert_published!(bus, OrderEvent::Placed { id: 7, cents } if *cents > 1000);
/// assert_eq!(placed.correlation_id(), Some("req-1"));
/// # Ok(())
/// # }
/// ```
#[macro_export]
macro_rules! assert_published {
    ($bus:expr, $($pattern:pat_param)|+ $(if $guard:expr)? $(,)?) => {
        $crate::testing::__assert_published(
            &$bus,
            ::core::stringify!($($pattern)|+ $(if $guard)?),
            |__event| ::core::matches!(__event, $($pattern)|+ $(if $guard)?),
        )
    };
}
