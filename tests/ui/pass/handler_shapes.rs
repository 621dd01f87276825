//! Every handler signature and option `#[handler]` accepts, registered and
//! still callable by name.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(topic = "entity.created")]
struct EntityCreated {
    id: u64,
}

#[derive(Event, Clone, Debug)]
#[event(namespace = "order")]
enum OrderEvent {
    Placed { id: u64 },
    Shipped { id: u64 },
    #[event(topic = "order.cancelled.by_customer")]
    Cancelled { id: u64 },
}

struct Counter(AtomicUsize);
struct Config {
    verbose: bool,
}

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}

impl std::error::Error for Refused {}

#[handler]
async fn by_value(ev: EntityCreated) {
    let _ = ev.id;
}

#[handler(name = "envelope_only")]
async fn envelope_only(ev: Envelope<EntityCreated>) {
    let _ = ev.topic();
}

#[handler(topic = "order.*", retry = 5, name = "billing")]
async fn context_last(ev: Envelope<OrderEvent>, ctx: Context) -> anyhow::Result<()> {
    ctx.state::<Counter>()?.0.fetch_add(1, Ordering::SeqCst);
    let _ = ev;
    Ok(())
}

#[handler(topic = "order.>", concurrency = 4, replay = false)]
pub(crate) async fn context_first(ctx: Context, _: OrderEvent) -> eventbus::Result<()> {
    if ctx.state::<Config>()?.verbose {
        println!("{:?}", ctx.state::<Counter>().map(|c| c.0.load(Ordering::SeqCst)));
    }
    Ok(())
}

#[handler(topic = "order.cancelled.by_customer")]
async fn custom_error(_ev: Envelope<OrderEvent>) -> Result<(), Refused> {
    Err(Refused)
}

#[handler(topic = "entity.created", name = "boxed_error")]
async fn boxed_error(
    _ev: eventbus::Envelope<EntityCreated>,
    _ctx: eventbus::Context,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Ok(())
}

#[tokio::main]
async fn main() -> eventbus::Result<()> {
    // Still plain functions.
    by_value(EntityCreated { id: 1 }).await;

    let bus = Bus::builder()
        .state(Counter(AtomicUsize::new(0)))
        .state(Config { verbose: false })
        .build()
        .await?;
    let handlers = bus.handlers();
    let find = |name: &str| {
        handlers
            .iter()
            .find(|h| h.name == name || h.name.ends_with(&format!("::{name}")))
            .unwrap_or_else(|| panic!("{name} not registered: {handlers:#?}"))
    };
    assert_eq!(handlers.len(), 6, "{handlers:#?}");

    let billing = find("billing");
    assert_eq!(billing.pattern.as_deref(), Some("order.*"));
    assert_eq!(billing.event, "OrderEvent");
    assert_eq!(billing.topics, ["order.placed", "order.shipped"]);
    assert_eq!(billing.options.retry, Some(5));
    assert!(billing.location.as_deref().unwrap().contains("handler_shapes.rs"));

    let first = find("context_first");
    assert_eq!(first.options.concurrency, 4);
    assert!(!first.options.replay);
    assert_eq!(first.topics.len(), 3);

    let by_value = find("by_value");
    assert_eq!(by_value.pattern, None);
    assert_eq!(by_value.topics, ["entity.created"]);
    assert!(by_value.options.replay);
    find("envelope_only");
    find("custom_error");
    find("boxed_error");

    bus.publish(OrderEvent::Placed { id: 1 }).await?;
    bus.publish(OrderEvent::Shipped { id: 1 }).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while bus_count(&bus) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "billing did not run");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bus.shutdown().await
}

fn bus_count(bus: &Bus) -> u64 {
    bus.stats()
        .iter()
        .filter(|s| s.name == "billing")
        .map(|s| s.handled)
        .sum()
}
