use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
enum OrderEvent {
    #[event(topic = "order.placed")]
    Placed { id: u64 },
    Shipped { id: u64 },
}

fn main() {}
