use eventbus::prelude::*;

#[derive(Clone, Debug)]
struct EntityCreated {
    id: u64,
}

#[handler]
async fn on_created(_ev: Envelope<EntityCreated>) {}

fn main() {}
