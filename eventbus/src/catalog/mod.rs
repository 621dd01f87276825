//! The event catalog: every event type and handler linked into the binary,
//! with each topic's JSON Schema, and an AsyncAPI 3.0 document of them.
//!
//! `#[derive(Event)]` registers each type at link time, as `#[handler]`
//! registers handlers, so the catalog is the code itself: nothing to keep
//! in sync by hand.
//!
//! ```standalone_crate
//! use eventbus::prelude::*;
//!
//! #[derive(Event, Clone, Debug)]
//! #[event(topic = "invoice.sent")]
//! struct InvoiceSent { id: u64, cents: u64 }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> eventbus::Result<()> {
//! let bus = Bus::builder().no_linked_handlers().build().await?;
//! let catalog = bus.catalog();
//! let invoice = catalog.events.iter().find(|e| e.name == "InvoiceSent").expect("linked");
//! assert_eq!(invoice.topics[0].topic, "invoice.sent");
//! let document = eventbus::catalog::asyncapi(&bus);     // AsyncAPI 3.0, as JSON
//! assert_eq!(document["asyncapi"], "3.0.0");
//! # bus.shutdown().await
//! # }
//! ```

mod asyncapi;
mod linked;

pub use asyncapi::asyncapi;
pub use linked::{Catalog, EventInfo, TopicInfo};
pub(crate) use linked::{events as linked_events, registration};

use crate::bus::Bus;

impl Bus {
    /// The event types linked into the binary and this bus's handlers,
    /// with each topic's JSON Schema; see the [`catalog`](crate::catalog)
    /// module and [`asyncapi`] for a document of it.
    pub fn catalog(&self) -> Catalog {
        Catalog {
            events: linked_events(),
            handlers: self.handlers(),
        }
    }
}
