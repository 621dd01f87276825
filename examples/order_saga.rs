//! Order fulfilment as a saga: reserve stock, charge the payment, ship,
//! and undo what was done, in reverse order, when a step fails or times
//! out.
//!
//! Three services (stock, payment, shipping) are plain handlers answering
//! requests with events. The `OrderFulfilment` saga, keyed by `order_id`,
//! drives one order through them:
//!
//! ```text
//! order.placed ─▶ stock.reserve_requested ─▶ stock.reserved
//!   ─▶ payment.charge_requested (+ payment.timed_out scheduled) ─▶ payment.charged
//!   ─▶ shipping.ship_requested ─▶ shipping.shipped ─▶ order.confirmed
//! payment.declined / payment.timed_out / shipping.failed
//!   ─▶ payment.refund_requested ─▶ payment.refunded      (if charged)
//!   ─▶ stock.release_requested ─▶ stock.released          (if reserved)
//!   ─▶ order.cancelled
//! ```
//!
//! Order 1 goes through; order 2's card is declined (stock released);
//! order 3's payment provider never answers, so the scheduled timeout
//! cancels it (stock released); order 4 is charged but cannot be shipped
//! (refund, then stock released). Every event of an order shares its
//! correlation id, `order-N`, so `eventbus history --correlation-id
//! order-2` shows the whole story, and the saga's state is in
//! `eventbus sagas`.
//!
//! ```text
//! cargo run --example order_saga                 # sqlite, in a temporary file
//! cargo run --example order_saga -- memory       # in memory
//! cargo run --example order_saga -- nats://127.0.0.1:4222   # stream ORDER_SAGA_EXAMPLE, emptied first
//! cargo run --example order_saga -- redis://127.0.0.1:6379  # prefix order_saga_example, emptied first
//! ```

use std::time::Duration;

use eventbus::EventId;
use eventbus::prelude::*;
use eventbus::saga::{SagaContext, saga};
use serde::{Deserialize, Serialize};

/// How long the saga waits for the payment provider: 2 s, or
/// `ORDER_SAGA_PAYMENT_TIMEOUT_MS` (a test that kills workers gives them
/// longer, so that only the provider that never answers times out).
pub(crate) fn payment_timeout() -> Duration {
    let ms = std::env::var("ORDER_SAGA_PAYMENT_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(2_000);
    Duration::from_millis(ms)
}

/// Charges above this are declined.
pub(crate) const CARD_LIMIT: u64 = 50_000;

#[derive(Event, Clone, Debug)]
#[event(namespace = "order")]
pub(crate) enum OrderEvent {
    Placed {
        order_id: u64,
        item: String,
        quantity: u32,
        cents: u64,
    },
    Confirmed {
        order_id: u64,
    },
    Cancelled {
        order_id: u64,
        reason: String,
    },
}

#[derive(Event, Clone, Debug)]
#[event(namespace = "stock")]
pub(crate) enum StockEvent {
    ReserveRequested {
        order_id: u64,
        item: String,
        quantity: u32,
    },
    Reserved {
        order_id: u64,
    },
    ReleaseRequested {
        order_id: u64,
        item: String,
        quantity: u32,
    },
    Released {
        order_id: u64,
    },
}

#[derive(Event, Clone, Debug)]
#[event(namespace = "payment")]
pub(crate) enum PaymentEvent {
    ChargeRequested { order_id: u64, cents: u64 },
    Charged { order_id: u64 },
    Declined { order_id: u64, reason: String },
    TimedOut { order_id: u64 },
    RefundRequested { order_id: u64, cents: u64 },
    Refunded { order_id: u64 },
}

#[derive(Event, Clone, Debug)]
#[event(namespace = "shipping")]
pub(crate) enum ShippingEvent {
    ShipRequested { order_id: u64, item: String },
    Shipped { order_id: u64 },
    Failed { order_id: u64, reason: String },
}

/// Where an order stands.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Stage {
    #[default]
    Reserving,
    Charging,
    Shipping,
    Confirmed,
    /// Undoing what was done, because of the reason given.
    Compensating(String),
    Cancelled(String),
}

/// What was done and must be undone if the order fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Compensation {
    ReleaseStock { item: String, quantity: u32 },
    Refund { cents: u64 },
}

/// The saga's state: one per order.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct OrderFulfilment {
    pub(crate) order_id: u64,
    pub(crate) item: String,
    pub(crate) quantity: u32,
    pub(crate) cents: u64,
    pub(crate) stage: Stage,
    /// Done steps to undo, the latest last.
    pub(crate) compensations: Vec<Compensation>,
    /// The compensation sent and not yet confirmed: the services answer at
    /// least once, so only its own confirmation moves the undoing on.
    pub(crate) undoing: Option<Compensation>,
    /// The payment timeout while it is set.
    pub(crate) payment_timeout: Option<EventId>,
    /// Whether the payment was charged: the payment service answers at
    /// least once, so a second `payment.charged` is the same charge.
    pub(crate) charged: bool,
}

#[saga(name = "order_fulfilment", key = "order_id")]
impl OrderFulfilment {
    #[start(topic = "order.placed")]
    fn placed(&mut self, ev: &OrderEvent, saga: &mut SagaContext) {
        let OrderEvent::Placed {
            order_id,
            item,
            quantity,
            cents,
        } = ev.clone()
        else {
            return;
        };
        *self = OrderFulfilment {
            order_id,
            item: item.clone(),
            quantity,
            cents,
            ..OrderFulfilment::default()
        };
        saga.send(StockEvent::ReserveRequested {
            order_id,
            item,
            quantity,
        });
    }

    #[on(topic = "stock.reserved")]
    fn reserved(&mut self, _ev: &StockEvent, saga: &mut SagaContext) {
        if self.stage != Stage::Reserving {
            return;
        }
        self.compensations.push(Compensation::ReleaseStock {
            item: self.item.clone(),
            quantity: self.quantity,
        });
        self.stage = Stage::Charging;
        saga.send(PaymentEvent::ChargeRequested {
            order_id: self.order_id,
            cents: self.cents,
        });
        let timeout = PaymentEvent::TimedOut {
            order_id: self.order_id,
        };
        self.payment_timeout = Some(saga.schedule(timeout, payment_timeout()));
    }

    #[on(topic = "payment.charged")]
    fn charged(&mut self, _ev: &PaymentEvent, saga: &mut SagaContext) {
        if self.charged {
            return;
        }
        self.charged = true;
        if let Some(timeout) = self.payment_timeout.take() {
            saga.cancel(&timeout);
        }
        match self.stage {
            Stage::Charging => {
                self.compensations
                    .push(Compensation::Refund { cents: self.cents });
                self.stage = Stage::Shipping;
                saga.send(ShippingEvent::ShipRequested {
                    order_id: self.order_id,
                    item: self.item.clone(),
                });
            }
            // Charged after the saga gave up waiting: give the money back
            // too, after what is being undone now.
            Stage::Compensating(_) => {
                self.compensations
                    .insert(0, Compensation::Refund { cents: self.cents });
            }
            _ => {}
        }
    }

    #[on(topic = "payment.declined")]
    fn declined(&mut self, ev: &PaymentEvent, saga: &mut SagaContext) {
        if let PaymentEvent::Declined { reason, .. } = ev {
            self.fail(format!("payment declined: {reason}"), saga);
        }
    }

    #[on(topic = "payment.timed_out")]
    fn payment_timed_out(&mut self, _ev: &PaymentEvent, saga: &mut SagaContext) {
        if self.stage == Stage::Charging {
            self.payment_timeout = None;
            self.fail("payment timed out".to_owned(), saga);
        }
    }

    #[on(topic = "shipping.shipped")]
    fn shipped(&mut self, _ev: &ShippingEvent, saga: &mut SagaContext) {
        self.stage = Stage::Confirmed;
        saga.send(OrderEvent::Confirmed {
            order_id: self.order_id,
        });
        saga.complete();
    }

    #[on(topic = "shipping.failed")]
    fn shipping_failed(&mut self, ev: &ShippingEvent, saga: &mut SagaContext) {
        if let ShippingEvent::Failed { reason, .. } = ev {
            self.fail(format!("shipping failed: {reason}"), saga);
        }
    }

    #[on(topic = "payment.refunded")]
    fn refunded(&mut self, _ev: &PaymentEvent, saga: &mut SagaContext) {
        if matches!(self.undoing, Some(Compensation::Refund { .. })) {
            self.undo_next(saga);
        }
    }

    #[on(topic = "stock.released")]
    fn released(&mut self, _ev: &StockEvent, saga: &mut SagaContext) {
        if matches!(self.undoing, Some(Compensation::ReleaseStock { .. })) {
            self.undo_next(saga);
        }
    }
}

impl OrderFulfilment {
    /// Starts undoing what was done, latest first.
    fn fail(&mut self, reason: String, saga: &mut SagaContext) {
        if matches!(self.stage, Stage::Compensating(_) | Stage::Cancelled(_)) {
            return;
        }
        self.stage = Stage::Compensating(reason);
        self.undo_next(saga);
    }

    /// Sends the next compensation, or cancels the order when none is left.
    fn undo_next(&mut self, saga: &mut SagaContext) {
        let Stage::Compensating(reason) = self.stage.clone() else {
            return;
        };
        let order_id = self.order_id;
        self.undoing = self.compensations.pop();
        match self.undoing.clone() {
            Some(Compensation::Refund { cents }) => {
                saga.send(PaymentEvent::RefundRequested { order_id, cents });
            }
            Some(Compensation::ReleaseStock { item, quantity }) => {
                saga.send(StockEvent::ReleaseRequested {
                    order_id,
                    item,
                    quantity,
                });
            }
            None => {
                self.stage = Stage::Cancelled(reason.clone());
                saga.send(OrderEvent::Cancelled { order_id, reason });
                saga.complete();
            }
        }
    }
}

// The services the saga talks to. Each answers a request with an event.

#[handler(topic = "stock.reserve_requested")]
async fn reserve_stock(ev: Envelope<StockEvent>, ctx: Context) -> eventbus::Result<()> {
    if let StockEvent::ReserveRequested { order_id, .. } = *ev {
        ctx.publish(StockEvent::Reserved { order_id }).await?;
    }
    Ok(())
}

#[handler(topic = "stock.release_requested")]
async fn release_stock(ev: Envelope<StockEvent>, ctx: Context) -> eventbus::Result<()> {
    if let StockEvent::ReleaseRequested { order_id, .. } = *ev {
        ctx.publish(StockEvent::Released { order_id }).await?;
    }
    Ok(())
}

/// Declines charges above the card limit; never answers for gift cards
/// (a provider that hangs), so the saga's timeout has to act.
#[handler(topic = "payment.charge_requested")]
async fn charge(ev: Envelope<PaymentEvent>, ctx: Context) -> eventbus::Result<()> {
    let PaymentEvent::ChargeRequested { order_id, cents } = *ev else {
        return Ok(());
    };
    if cents == GIFT_CARD_CENTS {
        return Ok(());
    }
    if cents > CARD_LIMIT {
        let reason = format!("{cents} cents is over the card limit");
        ctx.publish(PaymentEvent::Declined { order_id, reason })
            .await?;
    } else {
        ctx.publish(PaymentEvent::Charged { order_id }).await?;
    }
    Ok(())
}

/// The amount the payment provider never answers for.
pub(crate) const GIFT_CARD_CENTS: u64 = 2_500;

#[handler(topic = "payment.refund_requested")]
async fn refund(ev: Envelope<PaymentEvent>, ctx: Context) -> eventbus::Result<()> {
    if let PaymentEvent::RefundRequested { order_id, .. } = *ev {
        ctx.publish(PaymentEvent::Refunded { order_id }).await?;
    }
    Ok(())
}

/// Ships anything but pianos.
#[handler(topic = "shipping.ship_requested")]
async fn ship(ev: Envelope<ShippingEvent>, ctx: Context) -> eventbus::Result<()> {
    let ShippingEvent::ShipRequested { order_id, ref item } = *ev else {
        return Ok(());
    };
    if item == "piano" {
        let reason = "no courier takes pianos".to_owned();
        ctx.publish(ShippingEvent::Failed { order_id, reason })
            .await?;
    } else {
        ctx.publish(ShippingEvent::Shipped { order_id }).await?;
    }
    Ok(())
}

/// The four orders and how each ends.
pub(crate) fn orders() -> Vec<(OrderEvent, Stage)> {
    let order = |order_id, item: &str, cents| OrderEvent::Placed {
        order_id,
        item: item.to_owned(),
        quantity: 1,
        cents,
    };
    vec![
        (order(1, "book", 1_250), Stage::Confirmed),
        (
            order(2, "car", 2_000_000),
            Stage::Cancelled("payment declined: 2000000 cents is over the card limit".into()),
        ),
        (
            order(3, "gift card", GIFT_CARD_CENTS),
            Stage::Cancelled("payment timed out".into()),
        ),
        (
            order(4, "piano", 40_000),
            Stage::Cancelled("shipping failed: no courier takes pianos".into()),
        ),
    ]
}

/// Places the orders, each with the correlation id `order-N`.
pub(crate) async fn place_orders(bus: &Bus) -> eventbus::Result<()> {
    for (order, _) in orders() {
        let OrderEvent::Placed { order_id, .. } = order else {
            continue;
        };
        bus.publish(order)
            .correlation_id(format!("order-{order_id}"))
            .await?;
    }
    Ok(())
}

/// Waits until every order is finished, up to `timeout`.
pub(crate) async fn settled(bus: &Bus, timeout: Duration) -> eventbus::Result<bool> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let instances = bus.saga_instances(Some("order_fulfilment"), false).await?;
        // Completed, and its last step's effects done (a worker killed in
        // between leaves them to the step's redelivery).
        let finished = |i: &eventbus::saga::SagaInstance| !i.open && i.pending == 0;
        if instances.len() == orders().len() && instances.iter().all(finished) {
            return Ok(true);
        }
        if tokio::time::Instant::now() > deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "sqlite".into());
    let dir = tempdir()?;
    let url = match arg.as_str() {
        "memory" => "memory://".to_owned(),
        "sqlite" => format!("sqlite://{}", dir.join("orders.db").display()),
        nats if nats.starts_with("nats://") => {
            let sep = if nats.contains('?') { '&' } else { '?' };
            format!("{nats}{sep}stream=ORDER_SAGA_EXAMPLE")
        }
        redis if redis.starts_with("redis://") || redis.starts_with("rediss://") => {
            let sep = if redis.contains('?') { '&' } else { '?' };
            format!("{redis}{sep}prefix=order_saga_example")
        }
        other => anyhow::bail!(
            "unknown store `{other}`: give memory, sqlite, a nats:// or a redis:// URL"
        ),
    };
    let bus = Bus::builder().source("shop").store(&url).build().await?;
    if !url.starts_with("memory://") && !url.starts_with("sqlite://") {
        bus.clear(">").await?;
    }
    println!("store: {}", bus.store().describe());
    place_orders(&bus).await?;
    let patience = payment_timeout() * 10;
    if !settled(&bus, patience).await? {
        anyhow::bail!("the orders did not settle within {patience:?}");
    }
    for instance in bus.saga_instances(Some("order_fulfilment"), false).await? {
        let state: OrderFulfilment = serde_json::from_value(instance.state.clone())?;
        println!(
            "\norder {} ({}): {:?}",
            instance.key, instance.correlation_id, state.stage
        );
        let mut history = bus
            .history()
            .correlation_id(instance.correlation_id.clone())
            .stream();
        while let Some(ev) = history.next().await {
            let ev = ev?;
            println!("  {:>4}  {}", ev.seq(), ev.topic());
        }
    }
    bus.shutdown().await?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// A fresh directory for the SQLite file.
fn tempdir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("eventbus-order-saga-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
