use eventbus::prelude::*;

#[derive(Clone, Debug)]
struct Money {
    cents: u64,
}

#[derive(Event, Clone, Debug)]
#[event(topic = "order.paid")]
struct OrderPaid {
    id: u64,
    amount: Money,
}

fn main() {}
