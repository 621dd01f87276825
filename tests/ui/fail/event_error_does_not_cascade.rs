// A failed derive leaves stand-in impls (`Event`, and serde's traits), so
// code using the type reports nothing more than the derive's own error.
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
    let _ = serde_json::to_string(&EntityCreated { id: 1 });
    let _: Result<EntityCreated, _> = serde_json::from_str("{}");
}
