use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "entity.created")]
struct EntityCreated {
    id: String,
}

#[handler(backoff = "30s..1s")]
async fn on_created(_ev: Envelope<EntityCreated>) {}

fn main() {}
