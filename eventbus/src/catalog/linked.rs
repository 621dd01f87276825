//! What is linked into the binary: the registered event types, read into
//! the catalog's types.

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
pub(crate) fn events() -> Vec<EventInfo> {
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
