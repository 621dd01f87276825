use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(namespace = "order")]
enum OrderEvent {
    Placed { id: u64 },
    Shipped { id: u64 },
}

#[handler(topic = "Order.Placed")]
async fn bill(_ev: Envelope<OrderEvent>) {}

fn main() {}
