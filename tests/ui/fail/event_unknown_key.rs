use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topc = "entity.created")]
struct EntityCreated {
    id: u64,
}

fn main() {}
