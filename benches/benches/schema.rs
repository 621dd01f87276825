//! Decoding through upcasters against decoding the current version, in
//! the same run (informational, no target):
//!
//! - `decode_upcast_2_steps`: data stored as version 1, read as version 3
//!   through two raw upcasters (a rename and a default, then a split),
//!   against the same event's version 3 data decoded directly.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::{best_ratio, print_ratio};
use criterion::{Criterion, Throughput, criterion_group};
use eventbus::prelude::*;
use serde_json::Value;

#[derive(Event, Clone, Debug, PartialEq)]
#[event(
    topic = "invoice.sent",
    version = 3,
    upcast(from = 1, raw = rename_amount),
    upcast(from = 2, raw = split_customer)
)]
struct InvoiceSent {
    id: u64,
    cents: u64,
    currency: String,
    first_name: String,
    last_name: String,
}

fn rename_amount(mut data: Value) -> Value {
    if let Some(object) = data.as_object_mut() {
        if let Some(amount) = object.remove("amount") {
            object.insert("cents".into(), amount);
        }
        object.entry("currency").or_insert_with(|| "EUR".into());
    }
    data
}

fn split_customer(mut data: Value) -> Value {
    if let Some(object) = data.as_object_mut()
        && let Some(Value::String(customer)) = object.remove("customer")
    {
        let (first, last) = customer.split_once(' ').unwrap_or((&customer, ""));
        object.insert("first_name".into(), first.into());
        object.insert("last_name".into(), last.into());
    }
    data
}

const BATCH: u64 = 10_000;
const V1: &[u8] = br#"{"id":7,"amount":1250,"customer":"Ada Lovelace"}"#;
const V3: &[u8] =
    br#"{"id":7,"cents":1250,"currency":"EUR","first_name":"Ada","last_name":"Lovelace"}"#;

fn decode_round(version: u32, data: &[u8]) -> Duration {
    let started = Instant::now();
    for _ in 0..BATCH {
        let ev =
            InvoiceSent::decode_stored("invoice.sent", version, black_box(data)).expect("decodes");
        black_box(ev);
    }
    started.elapsed()
}

fn schema(c: &mut Criterion) {
    assert_eq!(
        InvoiceSent::decode_stored("invoice.sent", 1, V1).unwrap(),
        InvoiceSent::decode_stored("invoice.sent", 3, V3).unwrap(),
        "both sides decode the same event"
    );
    let mut group = c.benchmark_group("schema");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("decode_upcast_2_steps", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| decode_round(1, V1)).sum())
    });
    group.bench_function("decode_current_baseline", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| decode_round(3, V3)).sum())
    });
    group.finish();

    let ratio = best_ratio(15, || decode_round(1, V1), || decode_round(3, V3));
    print_ratio("decode_upcast_2_steps", ratio, BATCH);
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = schema
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
