//! `crate = "..."` points every macro at a renamed or re-exported runtime.

extern crate eventbus as renamed;

mod reexport {
    pub use renamed::*;
}

#[derive(renamed::Event, Clone, Debug, PartialEq)]
#[event(topic = "entity.created", crate = "renamed")]
struct EntityCreated {
    id: u64,
}

#[derive(renamed::Event, Clone, Debug, PartialEq)]
#[event(namespace = "order", crate = "crate::reexport")]
enum OrderEvent {
    Placed { id: u64 },
    Shipped(u64),
}

#[renamed::handler(crate = "renamed")]
async fn on_created(_ev: renamed::Envelope<EntityCreated>, _ctx: renamed::Context) {}

#[renamed::handler(topic = "order.shipped", crate = reexport)]
async fn on_shipped(_ev: OrderEvent) -> renamed::Result<()> {
    Ok(())
}

fn main() {
    use renamed::Event as _;
    assert_eq!(OrderEvent::Shipped(3).encode_data().unwrap(), b"3");
    assert_eq!(
        EntityCreated::decode_data("entity.created", br#"{"id":1}"#).unwrap(),
        EntityCreated { id: 1 }
    );
}
