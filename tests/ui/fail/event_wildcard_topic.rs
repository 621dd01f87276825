use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "entity.*")]
struct EntityCreated {
    id: u64,
}

fn main() {}
