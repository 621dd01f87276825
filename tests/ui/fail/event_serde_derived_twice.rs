use eventbus::prelude::*;
use serde::Serialize;

#[derive(Event, Serialize, Clone, Debug)]
#[event(topic = "entity.created")]
struct EntityCreated {
    id: u64,
}

fn main() {}
