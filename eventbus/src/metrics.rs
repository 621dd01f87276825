//! Metrics through the `metrics` facade, on when the builder says
//! `.metrics(true)`: install any `metrics` recorder (Prometheus, StatsD, ...)
//! to collect them.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `eventbus_published_total` | counter | `topic` |
//! | `eventbus_publish_seconds` | histogram | `topic` |
//! | `eventbus_delivered_total` | counter | `topic`, `handler` |
//! | `eventbus_retried_total` | counter | `topic`, `handler` |
//! | `eventbus_failed_total` | counter | `topic`, `handler` |
//! | `eventbus_dead_lettered_total` | counter | `topic`, `handler` |
//! | `eventbus_handle_seconds` | histogram | `topic`, `handler` (one sample per attempt) |

use std::time::Duration;

/// What happened to one handling attempt or event, for the counters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    Delivered,
    Retried,
    Failed,
    DeadLettered,
}

pub(crate) fn published(topic: &str, took: Duration) {
    let topic = topic.to_owned();
    metrics::counter!("eventbus_published_total", "topic" => topic.clone()).increment(1);
    metrics::histogram!("eventbus_publish_seconds", "topic" => topic).record(took.as_secs_f64());
}

pub(crate) fn handled(topic: &str, handler: &str, took: Duration) {
    metrics::histogram!(
        "eventbus_handle_seconds",
        "topic" => topic.to_owned(),
        "handler" => handler.to_owned()
    )
    .record(took.as_secs_f64());
}

pub(crate) fn outcome(topic: &str, handler: &str, outcome: Outcome) {
    let name = match outcome {
        Outcome::Delivered => "eventbus_delivered_total",
        Outcome::Retried => "eventbus_retried_total",
        Outcome::Failed => "eventbus_failed_total",
        Outcome::DeadLettered => "eventbus_dead_lettered_total",
    };
    metrics::counter!(name, "topic" => topic.to_owned(), "handler" => handler.to_owned())
        .increment(1);
}
