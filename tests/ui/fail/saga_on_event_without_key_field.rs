use eventbus::prelude::*;
use eventbus::saga::{SagaContext, saga};

#[derive(Event, Clone, Debug)]
#[event(namespace = "order")]
enum OrderEvent {
    Placed { order_id: u64 },
    Paid { order_id: u64 },
}

// Every variant but one has `order_id`: the key cannot be read from all.
#[derive(Event, Clone, Debug)]
#[event(namespace = "stock")]
enum StockEvent {
    Reserved { order_id: u64 },
    Restocked { sku: String },
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Checkout;

#[saga(key = "order_id")]
impl Checkout {
    #[start]
    fn placed(&mut self, _ev: &OrderEvent, _saga: &mut SagaContext) {}

    #[on]
    fn reserved(&mut self, _ev: &StockEvent) {}
}

fn main() {}
