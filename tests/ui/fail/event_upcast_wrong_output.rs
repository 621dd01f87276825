use eventbus::prelude::*;
use serde::Deserialize;

#[derive(Event, Clone, Debug)]
#[event(
    topic = "invoice.sent",
    version = 3,
    upcast(from = 1, with = v1_to_v2),
    upcast(from = 2, with = v2_to_v3)
)]
struct InvoiceSent {
    id: u64,
    cents: u64,
}

#[derive(Deserialize)]
struct InvoiceV1 {
    id: u64,
    amount: u64,
}

#[derive(Deserialize)]
struct InvoiceV2 {
    id: u64,
    cents: u64,
}

// Returns version 1's shape again instead of version 2's.
fn v1_to_v2(old: InvoiceV1) -> InvoiceV1 {
    old
}

fn v2_to_v3(old: InvoiceV2) -> InvoiceSent {
    InvoiceSent {
        id: old.id,
        cents: old.cents,
    }
}

fn main() {}
