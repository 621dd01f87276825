//! Schema evolution: events stored by older builds, read by this one.
//!
//! `InvoiceSent` is at version 3. Version 1 stored `amount` and one
//! `customer` name; version 2 renamed `amount` to `cents` and added a
//! `currency`, defaulting to EUR (a raw upcaster over the JSON); version 3
//! split `customer` into first and last names (a typed upcaster from
//! version 2's shape). The example imports events as builds 1 and 2
//! stored them, reads them all as version 3 (history and a handler),
//! migrates the file so no upcasting is needed any more, and writes the
//! application's AsyncAPI document.
//!
//! ```text
//! cargo run --example schema_evolution
//! ```

use std::time::Duration;

use eventbus::prelude::*;
use serde_json::{Value, json};

#[derive(Event, Clone, Debug, PartialEq)]
#[event(
    topic = "invoice.sent",
    version = 3,
    upcast(from = 1, raw = rename_amount_default_currency),
    upcast(from = 2, with = split_customer)
)]
struct InvoiceSent {
    id: u64,
    cents: u64,
    currency: String,
    first_name: String,
    last_name: String,
}

/// Version 1 to 2: a rename and a new field with a default, over JSON.
fn rename_amount_default_currency(mut data: Value) -> Value {
    if let Some(object) = data.as_object_mut() {
        if let Some(amount) = object.remove("amount") {
            object.insert("cents".into(), amount);
        }
        object.entry("currency").or_insert_with(|| "EUR".into());
    }
    data
}

/// Version 2 as it was stored.
#[derive(serde::Deserialize)]
struct InvoiceV2 {
    id: u64,
    cents: u64,
    currency: String,
    customer: String,
}

/// Version 2 to 3: a field split in two, typed.
fn split_customer(old: InvoiceV2) -> InvoiceSent {
    let (first, last) = old.customer.split_once(' ').unwrap_or((&old.customer, ""));
    InvoiceSent {
        id: old.id,
        cents: old.cents,
        currency: old.currency,
        first_name: first.to_owned(),
        last_name: last.to_owned(),
    }
}

#[handler(name = "ledger", start = "earliest")]
async fn ledger(ev: Envelope<InvoiceSent>) {
    println!(
        "ledger: invoice {} for {} {} ({} {}), stored as version {}",
        ev.id,
        ev.first_name,
        ev.last_name,
        ev.cents,
        ev.currency,
        ev.stored_version()
    );
}

/// An event as an older build stored it, in its CloudEvents form.
fn stored_by_old_build(id: u64, version: u32, data: Value) -> RawEnvelope {
    let event = json!({
        "specversion": "1.0",
        "id": format!("invoice-{id}"),
        "source": format!("billing-v{version}"),
        "type": "invoice.sent",
        "time": "2025-03-01T09:00:00Z",
        "eventname": "InvoiceSent",
        "eventversion": version,
        "data": data,
    });
    RawEnvelope::from_cloudevent_json(event.to_string().as_bytes()).expect("a valid CloudEvent")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join("eventbus-schema-evolution");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("events.db").display());
    let bus = Bus::builder()
        .source("billing-v3")
        .store(&url)
        .build()
        .await?;

    bus.import(&stored_by_old_build(
        1,
        1,
        json!({ "id": 1, "amount": 1250, "customer": "Ada Lovelace" }),
    ))
    .await?;
    bus.import(&stored_by_old_build(
        2,
        2,
        json!({ "id": 2, "cents": 990, "currency": "GBP", "customer": "Alan Turing" }),
    ))
    .await?;
    bus.publish(InvoiceSent {
        id: 3,
        cents: 4200,
        currency: "EUR".into(),
        first_name: "Grace".into(),
        last_name: "Hopper".into(),
    })
    .await?;

    for ev in bus.history().fetch_as::<InvoiceSent>().await? {
        let ev = ev.map_err(|(seq, e)| anyhow::anyhow!("seq {seq}: {e}"))?;
        println!(
            "history: {:?} (stored as version {})",
            ev.event(),
            ev.stored_version()
        );
    }

    let report = eventbus::migrate(&bus, "invoice.>")
        .on_progress(|r| println!("migrating: {} read, {} upgraded", r.read, r.upgraded))
        .run()
        .await?;
    println!(
        "migrated: {} upgraded, {} already current",
        report.upgraded, report.current
    );

    let asyncapi = dir.join("asyncapi.json");
    std::fs::write(
        &asyncapi,
        serde_json::to_string_pretty(&eventbus::catalog::asyncapi(&bus))?,
    )?;
    println!("AsyncAPI document: {}", asyncapi.display());

    // The ledger reads the file in the background; let it finish.
    tokio::time::timeout(Duration::from_secs(10), async {
        while bus.stats()[0].handled < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await?;
    bus.shutdown().await?;
    Ok(())
}
