use eventbus::prelude::*;

struct NotAnEvent;

async fn send(bus: &Bus) -> eventbus::Result<()> {
    bus.publish(NotAnEvent).await?;
    Ok(())
}

fn main() {
    let _ = send;
}
