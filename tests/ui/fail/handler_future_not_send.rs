use std::rc::Rc;

use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "entity.created")]
struct EntityCreated {
    id: u64,
}

async fn store(_id: u64) {}

#[handler]
async fn on_created(ev: EntityCreated) {
    let shared = Rc::new(ev.id);
    store(*shared).await;
}

fn main() {}
