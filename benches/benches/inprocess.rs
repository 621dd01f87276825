//! In-process delivery against raw tokio channels, in the same run:
//!
//! - `publish_1_handler`: publish -> one handler, against one
//!   `tokio::sync::mpsc` hop of the same payload to one consumer task;
//! - `fanout_10_handlers`: publish -> ten handlers, against
//!   `tokio::sync::broadcast` with ten receiver tasks.
//!
//! Each side sends a batch and waits until every consumer has seen all of it,
//! so both include the wake-ups of the consumer tasks.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use benches::{best_ratio, print_ratio};
use criterion::{Criterion, Throughput, criterion_group};
use eventbus::prelude::*;
use tokio::runtime::Runtime;
use tokio::sync::{Notify, broadcast, mpsc};

#[derive(Event, Clone, Debug)]
#[event(topic = "bench.tick")]
struct Tick {
    n: u64,
    name: String,
}

fn tick(n: u64) -> Tick {
    Tick {
        n,
        name: "tick".to_owned(),
    }
}

const BATCH: u64 = 10_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Counts handled events and wakes the publisher when a target is reached.
#[derive(Default)]
struct Done {
    count: AtomicU64,
    notify: Notify,
}

impl Done {
    fn hit(&self, target: u64) {
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == target {
            self.notify.notify_one();
        }
    }

    async fn wait_for(&self, target: u64) {
        while self.count.load(Ordering::Acquire) < target {
            self.notify.notified().await;
        }
    }
}

async fn bus_with_handlers(handlers: usize, done: &Arc<Done>, target: u64) -> Bus {
    let mut builder = Bus::builder().no_linked_handlers();
    for i in 0..handlers {
        let done = Arc::clone(done);
        builder = builder.handler(FnHandler::new(
            format!("h{i}"),
            // The handler's work happens before its (empty) future, exactly
            // as the baseline consumers do it, without cloning `done`.
            move |ev: Envelope<Tick>, _ctx: Context| {
                std::hint::black_box(ev.n);
                done.hit(target);
                async {}
            },
        ));
    }
    builder.build().await.expect("bus builds")
}

/// Time to publish `BATCH` events and see each handled by `handlers` handlers.
fn bus_round(rt: &Runtime, handlers: usize) -> Duration {
    rt.block_on(async {
        let done = Arc::new(Done::default());
        let target = BATCH * handlers as u64;
        let bus = bus_with_handlers(handlers, &done, target).await;
        let start = Instant::now();
        for n in 0..BATCH {
            bus.publish(tick(n)).await.expect("publish");
        }
        done.wait_for(target).await;
        let elapsed = start.elapsed();
        bus.shutdown().await.expect("shutdown");
        elapsed
    })
}

fn mpsc_round(rt: &Runtime) -> Duration {
    rt.block_on(async {
        let done = Arc::new(Done::default());
        let (tx, mut rx) = mpsc::channel::<Arc<Tick>>(1024);
        let counter = Arc::clone(&done);
        let consumer = tokio::spawn(async move {
            while let Some(t) = rx.recv().await {
                std::hint::black_box(t.n);
                counter.hit(BATCH);
            }
        });
        let start = Instant::now();
        for n in 0..BATCH {
            tx.send(Arc::new(tick(n))).await.expect("send");
        }
        done.wait_for(BATCH).await;
        let elapsed = start.elapsed();
        drop(tx);
        consumer.await.expect("consumer");
        elapsed
    })
}

fn broadcast_round(rt: &Runtime, receivers: usize) -> Duration {
    rt.block_on(async {
        let done = Arc::new(Done::default());
        let target = BATCH * receivers as u64;
        // Large enough that no receiver lags: lagging would drop events.
        let (tx, _) = broadcast::channel::<Arc<Tick>>(BATCH as usize);
        let consumers: Vec<_> = (0..receivers)
            .map(|_| {
                let mut rx = tx.subscribe();
                let counter = Arc::clone(&done);
                tokio::spawn(async move {
                    while let Ok(t) = rx.recv().await {
                        std::hint::black_box(t.n);
                        counter.hit(target);
                    }
                })
            })
            .collect();
        let start = Instant::now();
        for n in 0..BATCH {
            tx.send(Arc::new(tick(n))).expect("send");
        }
        done.wait_for(target).await;
        let elapsed = start.elapsed();
        drop(tx);
        for c in consumers {
            c.await.expect("consumer");
        }
        elapsed
    })
}

fn inprocess(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("inprocess");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);
    group.bench_function("publish_1_handler", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| bus_round(&rt, 1)).sum())
    });
    group.bench_function("mpsc_baseline", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| mpsc_round(&rt)).sum())
    });
    group.bench_function("fanout_10_handlers", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| bus_round(&rt, 10)).sum())
    });
    group.bench_function("broadcast_10_baseline", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| broadcast_round(&rt, 10)).sum())
    });
    group.finish();

    let rounds = 15;
    let one = best_ratio(rounds, || bus_round(&rt, 1), || mpsc_round(&rt));
    print_ratio("publish_1_handler", one, BATCH);
    let fan = best_ratio(rounds, || bus_round(&rt, 10), || broadcast_round(&rt, 10));
    print_ratio("fanout_10_handlers", fan, BATCH);
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = inprocess
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
