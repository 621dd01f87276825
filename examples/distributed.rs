//! One producer and two worker processes on NATS JetStream or Redis: the
//! workers run the same handler, so they share its work, each event handled
//! by one of them.
//!
//! Needs `nats-server -js` on 127.0.0.1:4222 (or `EVENTBUS_NATS_URL`); with
//! `EVENTBUS_DEMO_URL` set to a store URL, such as
//! `redis://127.0.0.1:6379?prefix=demo`, it runs on that store instead:
//! the handler code does not change.
//!
//! ```text
//! cargo run --example distributed              # starts two workers, produces 20 orders
//! cargo run --example distributed -- worker A  # or by hand, in separate terminals
//! cargo run --example distributed -- produce 20
//! EVENTBUS_DEMO_URL=redis://127.0.0.1:6379?prefix=demo cargo run --example distributed
//! ```

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use eventbus::prelude::*;

/// An order to fulfil.
#[derive(Event, Clone, Debug)]
#[event(topic = "shop.order.placed")]
struct OrderPlaced {
    id: u64,
}

/// Which worker this process is.
struct WorkerName(String);

/// Every worker process runs this handler; the server (a NATS consumer, a
/// Redis consumer group) hands each order to one of them.
#[handler(name = "distributed.fulfil", concurrency = 4, start = "earliest")]
async fn fulfil(order: OrderPlaced, ctx: Context) -> eventbus::Result<()> {
    let me = ctx.state::<WorkerName>()?;
    // Some work, so that the two workers overlap.
    tokio::time::sleep(Duration::from_millis(20)).await;
    println!("worker {} handled order {}", me.0, order.id);
    Ok(())
}

/// `EVENTBUS_DEMO_URL`, which the workers inherit, or a NATS stream.
fn store_url() -> String {
    if let Ok(url) = std::env::var("EVENTBUS_DEMO_URL") {
        return url;
    }
    let server =
        std::env::var("EVENTBUS_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    format!("{server}?stream=EVENTBUS_DEMO&prefix=demo")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["worker", name] => worker(name).await,
        ["produce", n] => produce(n.parse()?).await,
        [] => demo().await,
        _ => anyhow::bail!("usage: distributed [worker NAME | produce N]"),
    }
}

async fn worker(name: &str) -> anyhow::Result<()> {
    let bus = Bus::builder()
        .store(store_url())
        .source(format!("worker-{name}"))
        .state(WorkerName(name.to_owned()))
        .build()
        .await?;
    println!("worker {name} ready");
    tokio::signal::ctrl_c().await?;
    bus.shutdown().await?;
    Ok(())
}

async fn produce(n: u64) -> anyhow::Result<()> {
    // The producer only publishes: it runs no handler itself.
    let bus = Bus::builder()
        .store(store_url())
        .source("producer")
        .no_linked_handlers()
        .build()
        .await?;
    let base = chrono::Utc::now().timestamp_millis() as u64 % 1_000_000 * 1000;
    for i in 1..=n {
        let sent = bus.publish(OrderPlaced { id: base + i }).await?;
        println!("producer published order {} (seq {})", base + i, sent.seq());
    }
    bus.shutdown().await?;
    Ok(())
}

/// Starts two workers, produces orders, and prints who handled what.
async fn demo() -> anyhow::Result<()> {
    const ORDERS: u64 = 20;
    let me = std::env::current_exe()?;
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let mut workers = Vec::new();
    for name in ["A", "B"] {
        let mut child = Command::new(&me)
            .args(["worker", name])
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        workers.push(child);
    }
    let wait_for = |done: &mut dyn FnMut(&str) -> bool| -> anyhow::Result<()> {
        loop {
            let line = lines_rx.recv_timeout(Duration::from_secs(30))?;
            println!("{line}");
            if done(&line) {
                return Ok(());
            }
        }
    };
    let mut ready = 0;
    wait_for(&mut |line| {
        ready += usize::from(line.ends_with("ready"));
        ready == 2
    })?;
    produce(ORDERS).await?;
    let (mut handled, mut by_a) = (0, 0);
    wait_for(&mut |line| {
        if line.contains("handled") {
            handled += 1;
            by_a += usize::from(line.starts_with("worker A"));
        }
        handled == ORDERS as usize
    })?;
    println!(
        "{ORDERS} orders: worker A handled {by_a}, worker B handled {}",
        ORDERS as usize - by_a
    );
    // Ctrl-C, as a person would: the workers finish and ack what they hold.
    for mut child in workers {
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()?;
        child.wait()?;
    }
    Ok(())
}
