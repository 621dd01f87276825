use eventbus::prelude::*;
use serde::Deserialize;

#[derive(Event, Clone, Debug)]
#[event(topic = "invoice.sent", version = 2, upcast(from = 1, with = v1_to_v2))]
struct InvoiceSent {
    id: u64,
    cents: u64,
}

#[derive(Deserialize)]
struct InvoiceV1 {
    id: u64,
    amount: u64,
}

fn v1_to_v2(old: InvoiceV1) -> (u64, u64) {
    (old.id, old.amount)
}

fn main() {}
