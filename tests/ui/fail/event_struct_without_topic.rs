use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
struct EntityCreated {
    id: u64,
}

fn main() {}
