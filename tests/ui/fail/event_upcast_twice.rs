use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(
    topic = "invoice.sent",
    version = 2,
    upcast(from = 1, raw = rename),
    upcast(from = 1, raw = default_currency)
)]
struct InvoiceSent {
    id: u64,
}

fn rename(data: serde_json::Value) -> serde_json::Value {
    data
}

fn default_currency(data: serde_json::Value) -> serde_json::Value {
    data
}

fn main() {}
