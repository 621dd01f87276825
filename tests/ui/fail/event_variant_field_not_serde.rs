use eventbus::prelude::*;

#[derive(Clone, Debug)]
struct Money {
    cents: u64,
}

#[derive(Event, Clone, Debug)]
#[event(namespace = "order")]
enum OrderEvent {
    Placed { id: u64, amount: Money },
    Refunded(u64, Money),
    Shipped { id: u64 },
}

fn main() {}
