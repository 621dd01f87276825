use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(namespace = "order")]
enum OrderEvent {
    Placed { id: u64 },
}

#[handler(topic = "order.pla*")]
async fn on_order(_ev: Envelope<OrderEvent>) {}

fn main() {}
