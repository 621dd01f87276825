//! Starting a bus's handlers: which feed each one gets, decided here and
//! nowhere else, and the tasks that run them.
//!
//! - The store's server hands out events (NATS consumers): a consumer feed.
//! - The store keeps positions (SQLite): a feed read from the store after
//!   the handler's checkpoint, run while this bus holds its lease.
//! - Otherwise (`memory://`): a feed pushed as events are published.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::core::{Core, FeedKind, HandlerScope};
use super::lease::LeaseKeeper;
use super::{consumer_feed, pushed, redelivery, scheduler, store_feed};
use crate::error::Result;
use crate::future::BoxStream;
use crate::store::{ConsumerSpec, Delivery, Start};

/// What `start` needs beyond the core.
pub(crate) struct Settings {
    /// Where handlers that set no `start` begin the first time they run.
    pub(crate) default_start: Start,
    /// How long a handler lease on a shared store lasts without renewal.
    pub(crate) lease_ttl: Duration,
    /// How often to look for dead-letter retries requested elsewhere.
    pub(crate) dead_letter_poll: Duration,
}

/// A bus's running handler tasks, and the leases they run under.
pub(crate) struct Workers {
    /// Each handler's task, by name, plus the dead-letter poller.
    pub(crate) tasks: Vec<(Arc<str>, JoinHandle<()>)>,
    /// Renews the leases of handlers read from a shared store.
    pub(crate) leases: Option<LeaseKeeper>,
}

/// Where a handler's events come from.
enum FeedSource {
    Served(BoxStream<'static, Delivery>),
    Read(store_feed::Position),
    Pushed,
}

/// Opens every handler's feed, then starts them all. The feeds are opened
/// first, so a store error fails before any handler runs, and whatever is
/// stored from then on reaches every handler.
pub(crate) async fn start(
    core: &Arc<Core>,
    settings: Settings,
    shutdown: watch::Receiver<bool>,
) -> Result<Workers> {
    let mut sources = Vec::with_capacity(core.handlers.len());
    for handler in &core.handlers {
        let start = handler.def.options.start.unwrap_or(settings.default_start);
        let spec = ConsumerSpec {
            handler: handler.name.to_string(),
            filter: consumer_feed::filter_for(&handler.def),
            start,
            max_in_flight: handler.def.options.concurrency.max(1),
        };
        let source = match (core.feeds, core.store.as_server_consumers()) {
            (FeedKind::Served, Some(consumers)) => {
                FeedSource::Served(consumers.consume(spec).await?)
            }
            (FeedKind::Read, _) => {
                let scope = HandlerScope::new(Arc::clone(core), Arc::clone(handler));
                FeedSource::Read(store_feed::first_position(&scope, start).await?)
            }
            _ => FeedSource::Pushed,
        };
        sources.push(source);
    }
    let read: Vec<_> = core
        .handlers
        .iter()
        .zip(&sources)
        .filter(|(_, source)| matches!(source, FeedSource::Read(_)))
        .map(|(handler, _)| Arc::clone(handler))
        .collect();
    let leases = if read.is_empty() {
        None
    } else {
        Some(LeaseKeeper::start(Arc::clone(&core.store), read, settings.lease_ttl).await?)
    };
    let mut tasks = Vec::with_capacity(core.handlers.len() + 1);
    for (handler, source) in core.handlers.iter().zip(sources) {
        let scope = HandlerScope::new(Arc::clone(core), Arc::clone(handler));
        let shutdown = shutdown.clone();
        let task = match source {
            FeedSource::Served(deliveries) => {
                tokio::spawn(consumer_feed::run(scope, deliveries, shutdown))
            }
            FeedSource::Read(at) => tokio::spawn(store_feed::run(scope, at, shutdown)),
            FeedSource::Pushed => tokio::spawn(pushed::run(scope, shutdown)),
        };
        tasks.push((Arc::clone(&handler.name), task));
    }
    if core.store.as_schedules().is_some() {
        let scheduler = scheduler::run(Arc::clone(core), shutdown.clone());
        tasks.push((Arc::from("scheduler"), tokio::spawn(scheduler)));
    }
    if !core.handlers.is_empty() {
        let poller =
            redelivery::retry_requested(Arc::clone(core), settings.dead_letter_poll, shutdown);
        tasks.push((Arc::from("dead-letter retries"), tokio::spawn(poller)));
    }
    Ok(Workers { tasks, leases })
}
