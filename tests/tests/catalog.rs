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
