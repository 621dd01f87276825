//! Handlers in a crate of their own: a binary gets them only if it links
//! this crate, for example with `use shop_handlers as _;`.

use std::sync::Mutex;

use eventbus::prelude::*;

/// Announced by the shop.
#[derive(Event, Clone, Debug)]
#[event(topic = "shop.opened")]
pub struct ShopOpened {
    /// Which shop.
    pub name: String,
}

/// Names of the shops the handler below has seen.
pub static OPENED: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[handler(name = "shop.greeter")]
async fn greet(ev: ShopOpened) {
    OPENED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(ev.name);
}
