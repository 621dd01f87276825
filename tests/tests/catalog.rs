//! The event catalog: every linked event type with its version, topics
//! and schemas, every handler, and the AsyncAPI 3.0 document of them,
//! checked by the AsyncAPI project's own parser.

use std::process::Command;

use eventbus::prelude::*;
use serde_json::Value;

#[handler(name = "catalog.audit", topic = "order.placed")]
async fn audit(_ev: tests::OrderEvent) {}

#[tokio::test]
async fn the_catalog_lists_linked_event_types_and_the_bus_handlers() {
    let bus = Bus::builder()
        .source("catalog-test")
        .only_handlers(["catalog.audit"])
        .build()
        .await
        .unwrap();
    let catalog = bus.catalog();
    let order = catalog
        .events
        .iter()
        .find(|e| e.name == "OrderEvent")
        .expect("OrderEvent is linked");
    assert_eq!(order.version, 1);
    assert_eq!(order.rust_type, "tests::OrderEvent");
    let topics: Vec<&str> = order.topics.iter().map(|t| t.topic).collect();
    assert_eq!(
        topics,
        [
            "order.placed",
            "order.shipped",
            "order.cancelled.by_customer"
        ]
    );
    let names: Vec<&str> = catalog.events.iter().map(|e| e.name).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "sorted by name");
    assert_eq!(catalog.handlers.len(), 1);
    assert_eq!(catalog.handlers[0].name, "catalog.audit");
    bus.shutdown().await.unwrap();
}

async fn document() -> Value {
    let bus = Bus::builder()
        .source("catalog-test")
        .only_handlers(["catalog.audit"])
        .build()
        .await
        .unwrap();
    let doc = eventbus::catalog::asyncapi(&bus);
    bus.shutdown().await.unwrap();
    doc
}

#[tokio::test]
async fn the_asyncapi_document_has_topics_as_channels_types_as_messages_handlers_as_operations() {
    let doc = document().await;
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["info"]["title"], "catalog-test");
    let channel = &doc["channels"]["order.placed"];
    assert_eq!(channel["address"], "order.placed");
    assert_eq!(
        channel["messages"]["OrderEvent.order.placed"]["$ref"],
        "#/components/messages/OrderEvent.order.placed"
    );
    let message = &doc["components"]["messages"]["OrderEvent.order.placed"];
    assert_eq!(
        message["headers"]["properties"]["type"]["const"],
        "order.placed"
    );
    assert_eq!(
        message["headers"]["properties"]["eventname"]["const"],
        "OrderEvent"
    );
    let receive = &doc["operations"]["receive.catalog.audit.order.placed"];
    assert_eq!(receive["action"], "receive");
    assert_eq!(receive["channel"]["$ref"], "#/channels/order.placed");
    let send = &doc["operations"]["send.EntityCreated.entity.created"];
    assert_eq!(send["action"], "send");
    assert!(
        doc["operations"].as_object().unwrap().keys().all(|k| k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))),
        "operation ids are component keys"
    );
}

/// The AsyncAPI project's parser, as `.ci/run` installs it: a directory
/// whose `node_modules` holds `@asyncapi/parser`.
const PARSER_DIR: &str = "EVENTBUS_ASYNCAPI_PARSER";

const VALIDATE: &str = r#"
const { Parser } = require('@asyncapi/parser');
const fs = require('fs');
(async () => {
  const { document, diagnostics } = await new Parser().parse(fs.readFileSync(process.argv[1], 'utf8'));
  for (const d of diagnostics) {
    console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
  }
  process.exit(document && !diagnostics.some((d) => d.severity === 0) ? 0 : 1);
})();
"#;

#[tokio::test]
#[ignore = "needs node with @asyncapi/parser at EVENTBUS_ASYNCAPI_PARSER"]
async fn asyncapi_the_document_passes_the_official_parser() {
    let dir = std::env::var(PARSER_DIR)
        .unwrap_or_else(|_| panic!("{PARSER_DIR} names a directory with @asyncapi/parser"));
    let doc = document().await;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = Command::new("node")
        .current_dir(&dir)
        .args(["-e", VALIDATE])
        .arg(file.path())
        .output()
        .expect("node runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the parser refused the document:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Money without a JSON Schema of its own: its field accepts anything.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Money(u64);

#[derive(Event, Clone, Debug)]
#[event(topic = "catalog.invoice.sent")]
#[serde(rename_all = "camelCase")]
struct CatalogInvoice {
    invoice_id: u64,
    #[serde(default)]
    note: Option<String>,
    #[serde(rename = "total")]
    amount: Money,
    lines: Vec<String>,
}

#[derive(Event, Clone, Debug)]
#[event(namespace = "catalog.door")]
enum CatalogDoor {
    Opened { by: String },
    Closed,
}

fn schemas_of(bus: &Bus, name: &str) -> Vec<(&'static str, Value)> {
    bus.catalog()
        .events
        .into_iter()
        .find(|e| e.name == name)
        .expect("linked")
        .topics
        .into_iter()
        .map(|t| (t.topic, t.schema.expect("built with the schema feature")))
        .collect()
}

#[tokio::test]
async fn each_topic_has_the_json_schema_of_its_data_as_serde_shapes_it() {
    let bus = Bus::builder().no_linked_handlers().build().await.unwrap();
    let invoice = schemas_of(&bus, "CatalogInvoice");
    let (topic, schema) = &invoice[0];
    assert_eq!(*topic, "catalog.invoice.sent");
    assert_eq!(schema["type"], "object");
    let properties = schema["properties"].as_object().unwrap();
    let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["invoiceId", "lines", "note", "total"],
        "serde's names"
    );
    assert_eq!(properties["invoiceId"]["type"], "integer");
    assert_eq!(properties["lines"]["type"], "array");
    assert!(
        properties["total"]["description"]
            .as_str()
            .unwrap()
            .contains("Money` does not implement schemars::JsonSchema"),
        "{schema}"
    );
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(
        required,
        ["invoiceId", "lines", "total"],
        "a default is optional"
    );
    assert!(
        schema.get("$schema").is_none(),
        "it stands inside other documents"
    );

    let door = schemas_of(&bus, "CatalogDoor");
    assert_eq!(door[0].0, "catalog.door.opened");
    assert_eq!(door[0].1["properties"]["by"]["type"], "string");
    assert_eq!(
        door[1],
        ("catalog.door.closed", serde_json::json!({ "type": "null" }))
    );

    let doc = eventbus::catalog::asyncapi(&bus);
    assert_eq!(
        doc["components"]["messages"]["CatalogInvoice.catalog.invoice.sent"]["payload"],
        *schema
    );
    bus.shutdown().await.unwrap();
}

#[test]
fn a_changed_schema_without_a_new_version_fails_the_snapshot_test() {
    let dir = tempfile::tempdir().unwrap();
    eventbus::testing::assert_schemas_unchanged_in::<CatalogInvoice>(dir.path());
    let file = dir.path().join("CatalogInvoice.v1.json");
    let recorded: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(recorded["catalog.invoice.sent"]["properties"]["invoiceId"].is_object());
    // The same shape again passes.
    eventbus::testing::assert_schemas_unchanged_in::<CatalogInvoice>(dir.path());

    // As if the recorded version 1 had an `amount` and no `lines`.
    let mut older = recorded.clone();
    let properties = older["catalog.invoice.sent"]["properties"]
        .as_object_mut()
        .unwrap();
    properties.remove("lines");
    properties.insert("amount".into(), serde_json::json!({ "type": "integer" }));
    std::fs::write(&file, serde_json::to_string(&older).unwrap()).unwrap();
    let failure = std::panic::catch_unwind(|| {
        eventbus::testing::assert_schemas_unchanged_in::<CatalogInvoice>(dir.path());
    })
    .expect_err("a changed shape at the same version fails");
    let message = failure
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("event `CatalogInvoice` changed"),
        "{message}"
    );
    assert!(message.contains("field `amount` removed"), "{message}");
    assert!(message.contains("field `lines` added"), "{message}");
    assert!(message.contains("version = 2"), "{message}");
}
