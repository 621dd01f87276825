//! The linker caveat: handlers in a library crate are registered only when
//! the binary links that crate. `use shop_handlers as _;` does it.

use std::time::Duration;

use eventbus::prelude::*;
use shop_handlers::{OPENED, ShopOpened};
use tests::eventually;

#[allow(unused_imports)]
use shop_handlers as _;

#[tokio::test]
async fn handlers_from_a_linked_library_crate_are_registered_and_run() {
    let bus = Bus::builder().build().await.unwrap();
    let names: Vec<String> = bus.handlers().into_iter().map(|h| h.name).collect();
    assert!(names.contains(&"shop.greeter".to_owned()), "{names:?}");

    bus.publish(ShopOpened {
        name: "north".into(),
    })
    .await
    .unwrap();
    eventually("the greeter ran", Duration::from_secs(5), || {
        OPENED.lock().unwrap().contains(&"north".to_owned())
    })
    .await;
    bus.shutdown().await.unwrap();
}
