use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "entity.created")]
struct Created<T> {
    item: T,
}

fn main() {}
