use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "order.placed")]
struct OrderPlaced {
    id: u64,
}

async fn run(bus: Bus) -> eventbus::Result<()> {
    bus.publish(OrderPlaced { id: 7 })
        .header("weight", 2.5)?
        .await?;
    Ok(())
}

fn main() {}
