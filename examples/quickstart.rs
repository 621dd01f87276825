//! A small order flow: a struct event, an enum event, three handlers (one
//! on a wildcard, one publishing a follow-up through `Context`), then a
//! history query and a replay.
//!
//! Events are kept in `eventbus-quickstart.db` in the system's temporary
//! directory (SQLite; the path is printed): run it twice and the second
//! run shows the history of the first.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Its handlers are tested in `testing_handlers.rs` (hence the `pub(crate)`s).

use std::time::Duration;

use eventbus::prelude::*;

/// Something new exists; the invoice handler announces invoices with it.
#[derive(Event, Clone, Debug)]
#[event(topic = "entity.created")]
pub(crate) struct EntityCreated {
    pub(crate) id: String,
    pub(crate) name: String,
}

/// The life of an order: topics `order.placed`, `order.shipped` and
/// `order.cancelled.by_customer`.
#[derive(Event, Clone, Debug)]
#[event(namespace = "order")]
pub(crate) enum OrderEvent {
    Placed {
        id: u64,
        cents: u64,
    },
    Shipped {
        id: u64,
    },
    #[event(topic = "order.cancelled.by_customer")]
    Cancelled {
        id: u64,
        reason: String,
    },
}

/// Shared state, handed to the builder and read with `ctx.state::<Shop>()`.
pub(crate) struct Shop {
    pub(crate) name: &'static str,
}

/// Sees every order event: the pattern `order.>` is checked against
/// `OrderEvent`'s topics at compile time.
#[handler(topic = "order.>", name = "audit")]
pub(crate) async fn audit(ev: Envelope<OrderEvent>, ctx: Context) {
    let replay = if ctx.is_replay() { "  (replayed)" } else { "" };
    println!(
        "[audit]    seq {:>2} {:<28} {:?}{replay}",
        ev.seq(),
        ev.topic(),
        *ev
    );
}

/// Bills placed orders and announces the invoice as a follow-up event; the
/// follow-up carries the order's correlation id and names it as its cause.
#[handler(topic = "order.placed", name = "billing", retry = 2, replay = false)]
pub(crate) async fn bill(ev: Envelope<OrderEvent>, ctx: Context) -> anyhow::Result<()> {
    if let OrderEvent::Placed { id, cents } = *ev {
        let shop = ctx.state::<Shop>()?;
        let invoice = EntityCreated {
            id: format!("inv-{id}"),
            name: format!(
                "{} invoice, {}.{:02} EUR",
                shop.name,
                cents / 100,
                cents % 100
            ),
        };
        let sent = ctx.publish(invoice).await?;
        println!(
            "[billing]  order {id} billed, invoice published as seq {}",
            sent.seq()
        );
    }
    Ok(())
}

/// Takes the event by value; topics come from the parameter's type.
#[handler(name = "indexer")]
pub(crate) async fn index(ev: EntityCreated) -> eventbus::Result<()> {
    println!("[indexer]  indexed {} ({})", ev.id, ev.name);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The temporary directory always exists, wherever cargo builds to.
    let db = std::env::temp_dir()
        .join("eventbus-quickstart.db")
        .display()
        .to_string();
    let bus = Bus::builder()
        .store(format!("sqlite://{db}"))
        .source("quickstart")
        .state(Shop { name: "Acme" })
        .build()
        .await?;
    println!(
        "handlers: {:?}",
        bus.handlers().iter().map(|h| &h.name).collect::<Vec<_>>()
    );

    // History survives restarts: what did earlier runs leave in the file?
    let earlier = bus.history().newest_first().limit(1).fetch().await?;
    let last_seq = earlier.first().map_or(0, |e| e.seq());
    match earlier.first() {
        Some(last) => println!(
            "{db} holds {last_seq} events from earlier runs, the last at {}\n",
            last.time()
        ),
        None => println!("{db} is new: run this example again to see its history survive\n"),
    }

    // Wait for the invoices through a live subscription instead of sleeping.
    let mut invoices = bus.subscribe::<EntityCreated>("entity.*")?;

    let t0 = chrono::Utc::now();
    bus.publish(OrderEvent::Placed { id: 7, cents: 1250 })
        .correlation_id("req-456")
        .await?;
    bus.publish(OrderEvent::Placed { id: 8, cents: 990 })
        .correlation_id("req-457")
        .await?;
    bus.publish(OrderEvent::Shipped { id: 7 })
        .correlation_id("req-456")
        .await?;
    bus.publish(OrderEvent::Cancelled {
        id: 8,
        reason: "changed my mind".into(),
    })
    .correlation_id("req-457")
    .await?;

    for _ in 0..2 {
        let invoice = tokio::time::timeout(Duration::from_secs(5), invoices.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the subscription closed"))??;
        println!(
            "[live]     {} caused by {}",
            invoice.id,
            invoice.causation_id().unwrap_or("-")
        );
    }

    println!("\nhistory of request req-456 in this run:");
    let this_run = bus.history().after_seq(last_seq).correlation_id("req-456");
    for env in this_run.fetch().await? {
        println!(
            "  seq {:>2} {:<16} {}",
            env.seq(),
            env.topic(),
            env.data_json()?
        );
    }

    println!("\nreplaying order.> since the start into every handler that takes replays:");
    let report = bus.replay().topic("order.>").since(t0).run().await?;
    println!(
        "replayed {} events: {} handlings, {} failed",
        report.events, report.delivered, report.failed
    );

    bus.shutdown().await?;
    Ok(())
}
