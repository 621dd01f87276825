use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(namespace = "order")]
enum OrderEvent {
    Placed { id: u64 },
    #[event(topic = "order.placed")]
    PlacedAgain { id: u64 },
}

fn main() {}
