//! The quickstart's handlers, tested with `eventbus::testing`: each test
//! builds a bus running only the handlers it names, publishes, waits until
//! the bus is settled (no sleeps) and asserts on what was published.
//! Paused time makes retries' backoffs take no real time.
//!
//! ```text
//! cargo test -p examples --test testing_handlers
//! ```

// The quickstart itself, for its events and handlers; its `main` does not run here.
#[allow(dead_code)]
#[path = "quickstart.rs"]
mod quickstart;

use eventbus::assert_published;
use eventbus::testing::TestBus;
use quickstart::{EntityCreated, OrderEvent, Shop, bill, index};

#[tokio::test(start_paused = true)]
async fn billing_announces_an_invoice() -> eventbus::Result<()> {
    let bus = TestBus::builder()
        .handler(bill)
        .state(Shop { name: "Acme" })
        .build()
        .await?;
    bus.publish(OrderEvent::Placed { id: 7, cents: 1250 })
        .await?;
    bus.settled().await.unwrap();
    assert_published!(bus, EntityCreated { id, name } if id == "inv-7" && name.contains("12.50 EUR"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_invoice_carries_the_order_correlation_and_is_indexed() -> eventbus::Result<()> {
    let bus = TestBus::builder()
        .handler(bill)
        .handler(index)
        .state(Shop { name: "Acme" })
        .build()
        .await?;
    let placed = bus
        .publish(OrderEvent::Placed { id: 8, cents: 990 })
        .correlation_id("req-457")
        .await?;
    bus.publish(OrderEvent::Shipped { id: 8 }).await?;
    bus.settled().await.unwrap();

    let invoice = assert_published!(bus, EntityCreated { id, .. } if id == "inv-8");
    assert_eq!(invoice.correlation_id(), Some("req-457"));
    assert_eq!(
        invoice.causation_id(),
        Some(placed.id().to_string().as_str())
    );
    assert_eq!(
        bus.handled_by("billing").len(),
        1,
        "order.shipped is not its topic"
    );
    assert_eq!(bus.handled_by("indexer")[0].id(), invoice.id());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn billing_retries_then_gives_up_into_the_dead_letters() -> eventbus::Result<()> {
    let bus = TestBus::builder()
        .handler(bill)
        .state(Shop { name: "Acme" })
        .build()
        .await?;
    // `retry = 2`: three attempts, backing off between them (in virtual time).
    bus.fail_next("billing", 3)?;
    bus.publish(OrderEvent::Placed { id: 9, cents: 100 })
        .await?;
    bus.settled().await.unwrap();

    let dead = bus.dead_letters();
    assert_eq!((dead[0].handler.as_str(), dead[0].attempts), ("billing", 3));
    assert!(bus.published::<EntityCreated>().is_empty());
    Ok(())
}
