// A failed derive leaves a stand-in impl, so code using the type reports
// nothing more than the derive's own error.
use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "entity..created")]
struct EntityCreated {
    id: u64,
}

#[handler(topic = "entity.created")]
async fn on_created(_ev: Envelope<EntityCreated>) {}

async fn send(bus: &Bus) -> eventbus::Result<()> {
    bus.publish(EntityCreated { id: 1 }).await?;
    Ok(())
}

fn main() {
    let _ = send;
}
