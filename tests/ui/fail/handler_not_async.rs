use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "entity.created")]
struct EntityCreated {
    id: u64,
}

#[handler]
fn on_created(_ev: Envelope<EntityCreated>) {}

fn main() {
    // The function is still emitted, so code using it reports nothing more.
    let _ = on_created;
}
