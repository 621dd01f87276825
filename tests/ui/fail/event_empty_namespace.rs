use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(namespace = "")]
enum OrderEvent {
    Placed { id: u64 },
    Shipped { id: u64 },
}

fn main() {}
