use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "entity.created")]
struct EntityCreated {
    id: u64,
}

#[handler]
async fn on_created(_ev: &Envelope<EntityCreated>) {}

fn main() {}
