//! Event-sourced aggregates: an entity's state rebuilt from its own
//! stream of events, changed by commands that return new events, saved
//! under optimistic concurrency, with snapshots for long streams.
//!
//! An aggregate is a state type implementing [`Aggregate`]: its event
//! type and an `apply` that folds one event into the state. Commands are
//! the type's own methods, `&self` in, `Result<Vec<Event>, E>` out; a
//! [`Repository`] loads, runs and saves them. Each entity is a stream
//! named by the event type's [`Event::NAME`](crate::Event::NAME) and the
//! entity's id, which every saved event carries as its `subject`; its
//! events are ordinary events besides (routed to handlers and
//! subscriptions, in history, replayable).
//!
//! ```standalone_crate
//! use eventbus::prelude::*;
//! use eventbus::aggregate::{Aggregate, Repository};
//!
//! #[derive(Event, Clone, Debug)]
//! #[event(namespace = "account")]
//! enum AccountEvent {
//!     Opened { owner: String },
//!     Deposited { cents: u64 },
//! }
//!
//! #[derive(Default, serde::Serialize, serde::Deserialize)]
//! struct Account { owner: String, balance: u64 }
//!
//! impl Aggregate for Account {
//!     type Event = AccountEvent;
//!     fn apply(&mut self, event: &AccountEvent) {
//!         match event {                        // a new variant without an arm does not compile
//!             AccountEvent::Opened { owner } => self.owner = owner.clone(),
//!             AccountEvent::Deposited { cents } => self.balance += cents,
//!         }
//!     }
//! }
//!
//! impl Account {
//!     fn deposit(&self, cents: u64) -> Result<Vec<AccountEvent>, String> {
//!         if self.owner.is_empty() {
//!             return Err("no such account".into());
//!         }
//!         Ok(vec![AccountEvent::Deposited { cents }])
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = Bus::builder().no_linked_handlers().build().await?;
//! let accounts = Repository::<Account>::new(&bus);
//! accounts.save("acc-1", 0, vec![AccountEvent::Opened { owner: "Ada".into() }]).await?;
//! let done = accounts.execute("acc-1", |account| account.deposit(250)).await?;
//! assert_eq!((done.state.balance, done.version), (250, 2));
//! # bus.shutdown().await?;
//! # Ok(()) }
//! ```

mod repository;
mod state;

pub use repository::{CommandError, Executed, Loaded, Repository};
pub use state::Aggregate;
