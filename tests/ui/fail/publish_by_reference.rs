use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "entity.created")]
struct EntityCreated {
    id: u64,
}

async fn send(bus: &Bus, ev: EntityCreated) -> eventbus::Result<()> {
    bus.publish(&ev).await?;
    Ok(())
}

fn main() {
    let _ = send;
}
