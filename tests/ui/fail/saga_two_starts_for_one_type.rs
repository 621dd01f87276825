use eventbus::prelude::*;
use eventbus::saga::saga;

#[derive(Event, Clone, Debug)]
#[event(namespace = "order")]
enum OrderEvent {
    Placed { order_id: u64 },
    Resubmitted { order_id: u64 },
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Checkout;

#[saga(key = "order_id")]
impl Checkout {
    #[start(topic = "order.placed")]
    fn placed(&mut self, _ev: &OrderEvent) {}

    #[start(topic = "order.resubmitted")]
    fn resubmitted(&mut self, _ev: &OrderEvent) {}
}

fn main() {}
