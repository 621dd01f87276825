use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "entity.created")]
struct EntityCreated<'a> {
    name: &'a str,
}

fn main() {}
