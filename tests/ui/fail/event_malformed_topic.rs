use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "entity..created")]
struct EntityCreated {
    id: u64,
}

fn main() {}
