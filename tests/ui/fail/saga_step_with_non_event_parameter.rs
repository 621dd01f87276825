use eventbus::prelude::*;
use eventbus::saga::{SagaContext, saga};

#[derive(Event, Clone, Debug)]
#[event(namespace = "order")]
enum OrderEvent {
    Placed { order_id: u64 },
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Checkout;

#[saga(key = "order_id")]
impl Checkout {
    #[start]
    fn placed(&mut self, _ev: &OrderEvent, _saga: &mut SagaContext) {}

    // A borrowed type that is no event.
    #[on]
    fn counted(&mut self, _count: &u32) {}
}

fn main() {}
