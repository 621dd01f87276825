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

pub use asyncapi::asyncapi;

use crate::bus::Bus;
use crate::event::EventRegistration;
use crate::handler::HandlerInfo;

/// Every event type and handler a bus knows of; see [`Bus::catalog`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Catalog {
    /// Every event type linked into the binary, sorted by name.
    pub events: Vec<EventInfo>,
    /// The bus's handlers, sorted by name.
    pub handlers: Vec<HandlerInfo>,
}

/// One event type of the catalog.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EventInfo {
    /// Its stable name ([`Event::NAME`](crate::Event::NAME)).
    pub name: &'static str,
    /// The Rust type, with its module path.
    pub rust_type: &'static str,
    /// Its current version ([`Event::VERSION`](crate::Event::VERSION)).
    pub version: u32,
    /// Its topics, each with the JSON Schema of its data.
    pub topics: Vec<TopicInfo>,
}

/// One topic of an event type.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TopicInfo {
    /// The topic.
    pub topic: &'static str,
    /// The JSON Schema (draft 2020-12) of its data, when eventbus is built
    /// with the `schema` feature.
    pub schema: Option<serde_json::Value>,
}

/// Every registered event type, sorted by name.
pub(crate) fn linked_events() -> Vec<EventInfo> {
    let mut events: Vec<EventInfo> = inventory::iter::<EventRegistration>
        .into_iter()
        .map(|r| {
            let mut schemas = (r.schemas)().into_iter();
            EventInfo {
                name: r.name,
                rust_type: r.rust_type,
                version: r.version,
                topics: r
                    .topics
                    .iter()
                    .map(|&topic| TopicInfo {
                        topic,
                        schema: schemas.next(),
                    })
                    .collect(),
            }
        })
        .collect();
    events.sort_by(|a, b| (a.name, a.rust_type).cmp(&(b.name, b.rust_type)));
    events
}

/// The registration of the type of a stored event, for reading it without
/// knowing its Rust type: the type named `name`, or, for an event without
/// a type name (published as JSON), the one linked type with its topic.
pub(crate) fn registration(name: &str, topic: &str) -> Option<&'static EventRegistration> {
    let all = || inventory::iter::<EventRegistration>.into_iter();
    if !name.is_empty() {
        return all().find(|r| r.name == name);
    }
    let mut owners = all().filter(|r| r.topics.contains(&topic));
    match (owners.next(), owners.next()) {
        (Some(owner), None) => Some(owner),
        _ => None,
    }
}

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
