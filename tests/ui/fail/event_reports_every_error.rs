use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(namespace = "order", verison = 2, name = 7)]
enum OrderEvent {
    #[event(topic = "order.placed.")]
    Placed { id: u64 },
    #[event(topic = "order.>")]
    Shipped { id: u64 },
    #[event(topc = "order.cancelled")]
    Cancelled { id: u64 },
}

fn main() {}
