use eventbus::prelude::*;

#[handler]
async fn on_any<E: Event>(_ev: Envelope<E>) {}

fn main() {}
