use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "entity.created")]
struct EntityCreated {
    id: u64,
}

#[handler(concurrency = 0, replay = "no")]
async fn on_created(_ev: Envelope<EntityCreated>) {}

fn main() {}
