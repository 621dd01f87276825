use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "invoice.sent", version = 3, upcast(from = 1, raw = v1_to_v2))]
struct InvoiceSent {
    id: u64,
}

fn v1_to_v2(data: serde_json::Value) -> serde_json::Value {
    data
}

fn main() {}
