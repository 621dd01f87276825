use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "invoice.sent", version = 0)]
struct InvoiceSent {
    id: u64,
}

fn main() {}
