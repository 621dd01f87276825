//! `/metrics`: the store's numbers in Prometheus text, read afresh on
//! each scrape.
//!
//! This process runs no handler, so of README's metrics it can give
//! `eventbus_published_total` (events stored per topic); the delivery
//! counters and timings come from the services, with `.metrics(true)`.
//! Beside it: gauges of what the store holds per handler, and the live
//! page's own counters.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::PrometheusBuilder;

use super::html::UiError;
use super::{Shared, handlers};

pub(crate) async fn render(State(console): State<Shared>) -> Result<impl IntoResponse, UiError> {
    let topics = console.store.admin()?.topics().await?;
    let (handlers, newest) = handlers::facts(&console).await?;
    // A recorder per scrape: a topic cleared since the last one is gone
    // from this one, and no process-wide recorder is taken over.
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        for t in &topics {
            metrics::counter!("eventbus_published_total", "topic" => t.topic.clone())
                .absolute(t.count);
        }
        metrics::gauge!("eventbus_newest_seq").set(newest as f64);
        for (name, facts) in &handlers {
            let label = name.clone();
            if let Some(checkpoint) = facts.checkpoint {
                metrics::gauge!("eventbus_handler_checkpoint", "handler" => label.clone())
                    .set(checkpoint as f64);
                metrics::gauge!("eventbus_handler_lag", "handler" => label.clone())
                    .set(newest.saturating_sub(checkpoint) as f64);
            }
            metrics::gauge!("eventbus_dead_letters", "handler" => label)
                .set(facts.dead_letters as f64);
        }
        metrics::gauge!("eventbus_ui_live_clients").set(console.live.clients() as f64);
        metrics::counter!("eventbus_ui_live_skipped_total").absolute(console.live.skipped());
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    ))
}
