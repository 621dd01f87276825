use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "invoice.sent")]
struct InvoiceSent {
    id: u64,
}

#[handler(scope = "tenant a/eu")]
async fn on_invoice(_ev: InvoiceSent) {}

fn main() {}
