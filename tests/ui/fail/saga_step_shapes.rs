use eventbus::prelude::*;
use eventbus::saga::{SagaContext, saga};

#[derive(Event, Clone, Debug)]
#[event(namespace = "order")]
enum OrderEvent {
    Placed { order_id: u64 },
    Paid { order_id: u64 },
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Checkout;

// No key, and every mistake a step can make, reported at once.
#[saga]
impl Checkout {
    #[on(topic = "order.placed", retries = 3)]
    async fn placed(&self, _ev: &OrderEvent, _saga: &mut SagaContext) {}

    #[on(topic = "order.placed")]
    fn again(&mut self, _ev: &OrderEvent) {}

    // The event by value, and an extra parameter.
    #[on(topic = "order.paid")]
    fn paid(&mut self, _ev: OrderEvent, _retries: u32) {}
}

fn main() {}
