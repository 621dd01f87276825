//! The publish path: publish middleware, the store, then routing to the
//! live subscriptions and to the handlers whose topics match.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::core::{Core, FeedKind};
use crate::envelope::{Draft, EventId, RawEnvelope};
use crate::error::{Error, Result};
use crate::handler::{PublishFuture, Publisher};
use crate::middleware::Flow;
use crate::store::StreamId;
use chrono::{DateTime, Utc};

impl Core {
    /// Stores a draft and routes it; a repeat (an idempotency key within
    /// its window, an import of a stored id) answers with the event stored
    /// first, which was routed then.
    ///
    /// What can finish at once does: with `memory://` and room in the
    /// handlers' feeds, the publish is done before the future is awaited,
    /// and nothing is allocated for it.
    pub(crate) fn publish(&self, mut draft: Draft) -> PublishFuture<'_> {
        if self.closed.load(Ordering::Acquire) {
            return PublishFuture::done(Err(Error::ShutDown));
        }
        if let Err(e) = self.before_publish(&mut draft) {
            return PublishFuture::done(Err(e));
        }
        let id = draft.id().clone();
        let started = self.metrics.then(std::time::Instant::now);
        if !self.store.appends_now() {
            return PublishFuture::running(async move {
                let env = self.store.append(draft).await?;
                self.routed(env, &id, started).await
            });
        }
        let stored = self.store.append_now(draft);
        let env = match stored {
            Ok(env) => env,
            Err(e) => return PublishFuture::done(Err(e)),
        };
        if *env.id() != id || !env.take_unrouted() {
            return PublishFuture::done(Ok(env));
        }
        match self.route_now(env) {
            Ok(env) => {
                self.published(&env, started);
                PublishFuture::done(Ok(env))
            }
            Err(env) => PublishFuture::running(async move {
                self.push_when_room(&env).await;
                self.published(&env, started);
                Ok(env)
            }),
        }
    }

    /// Keeps a draft until `due` (see
    /// [`ScheduleStore`](crate::store::ScheduleStore)), after the publish
    /// middleware, so a refusal is immediate; one already due is
    /// published now. The event's time is its due time.
    pub(crate) async fn schedule(
        &self,
        mut draft: Draft,
        due: DateTime<Utc>,
    ) -> Result<RawEnvelope> {
        if due <= self.clock.now() {
            return self.publish(draft).await;
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::ShutDown);
        }
        self.before_publish(&mut draft)?;
        draft.meta.time = due;
        let scheduled = draft.clone().seal(0);
        self.store.schedules()?.schedule(draft, due).await?;
        self.scheduled.notify_one();
        Ok(scheduled)
    }

    /// Publishes the scheduled events that are due: the store moves them
    /// into history, and they are routed as a publish would. Returns how
    /// many this process published.
    pub(crate) async fn release_due(&self) -> Result<usize> {
        let released = self
            .store
            .schedules()?
            .release_due(self.clock.now())
            .await?;
        for env in &released {
            self.route_released(env).await;
        }
        Ok(released.len())
    }

    /// Routes a scheduled event the store just moved into history.
    pub(crate) async fn route_released(&self, env: &RawEnvelope) {
        if env.take_unrouted() {
            self.route(env).await;
            self.published(env, None);
        }
    }

    /// Appends drafts to one entity's stream if it is at `expected` (see
    /// [`StreamStore`](crate::store::StreamStore)), then routes each
    /// stored event as a publish would: handlers, subscriptions, history.
    pub(crate) async fn append_stream(
        &self,
        stream: &StreamId,
        expected: u64,
        mut drafts: Vec<Draft>,
    ) -> Result<Vec<RawEnvelope>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::ShutDown);
        }
        for draft in &mut drafts {
            self.before_publish(draft)?;
        }
        let started = self.metrics.then(std::time::Instant::now);
        let stored = self
            .store
            .streams()?
            .append_to_stream(stream, expected, drafts)
            .await?;
        for env in &stored {
            if env.take_unrouted() {
                self.route(env).await;
                self.published(env, started);
            }
        }
        Ok(stored)
    }

    /// Runs the publish middleware over a draft, first layer first;
    /// [`Error::Dropped`] names the layer that refused it.
    fn before_publish(&self, draft: &mut Draft) -> Result<()> {
        for layer in &self.middleware {
            if layer.on_publish(draft) == Flow::Drop {
                return Err(Error::Dropped {
                    layer: layer.name().to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Routes a stored event unless it repeats an earlier one.
    async fn routed(
        &self,
        env: RawEnvelope,
        id: &EventId,
        started: Option<std::time::Instant>,
    ) -> Result<RawEnvelope> {
        if *env.id() == *id && env.take_unrouted() {
            self.route(&env).await;
            self.published(&env, started);
        }
        Ok(env)
    }

    fn published(&self, env: &RawEnvelope, started: Option<std::time::Instant>) {
        if let Some(started) = started {
            crate::metrics::published(env.topic(), started.elapsed());
        }
    }

    /// Offers a stored event to the live subscriptions and to each handler
    /// whose topics include it: pushed into its feed, or, when handlers
    /// read from the store, a wake-up so it reads now instead of at its
    /// next poll. The server of a store with consumers routes by itself.
    ///
    /// Hands the event back when a pushed feed has no room yet.
    fn route_now(&self, env: RawEnvelope) -> std::result::Result<RawEnvelope, RawEnvelope> {
        self.subscribers.offer(&env);
        let targets = match self.feeds {
            // The store's server routes, and deliveries report as they run.
            FeedKind::Served => None,
            _ => self.routes.get(env.topic()),
        };
        if let Some(tracker) = &self.tracker {
            // Before the handlers can see it, so it is never done before it is counted.
            tracker.routed(&env, targets.map_or(&[], |t| &t[..]));
        }
        let Some(targets) = targets else {
            return Ok(env);
        };
        match &self.ring {
            Some(ring) => match ring.try_push(env.clone(), targets, |i, old| self.missed(i, old)) {
                Ok(()) => Ok(env),
                Err(_) => Err(env),
            },
            None => {
                for &i in targets.iter() {
                    self.handlers[i].wake.notify_one();
                }
                Ok(env)
            }
        }
    }

    /// [`Core::route_now`], waiting for room in the pushed feeds.
    async fn route(&self, env: &RawEnvelope) {
        if let Err(env) = self.route_now(env.clone()) {
            self.push_when_room(&env).await;
        }
    }

    /// Pushes an event [`Core::route_now`] handed back, once its feeds
    /// have room.
    async fn push_when_room(&self, env: &RawEnvelope) {
        if let (Some(ring), Some(targets)) = (&self.ring, self.routes.get(env.topic())) {
            ring.push(env.clone(), targets, |i, old| self.missed(i, old))
                .await;
        }
    }
}

impl Core {
    /// Counts and logs an event handler `i` skipped because it was behind
    /// ([`LagPolicy::Skip`](crate::LagPolicy::Skip)).
    fn missed(&self, i: usize, env: &RawEnvelope) {
        let handler = &self.handlers[i];
        if let Some(tracker) = &self.tracker {
            tracker.skipped(i, env);
        }
        let missed = handler.counters.missed.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            handler = %handler.name, seq = env.seq(), topic = env.topic(), missed,
            "handler is behind and its feed is full; it skips this event (LagPolicy::Skip)"
        );
    }
}

impl Publisher for Core {
    fn publish_draft(&self, draft: Draft) -> PublishFuture<'_> {
        self.publish(draft)
    }

    fn schedule_draft(&self, draft: Draft, due: DateTime<Utc>) -> PublishFuture<'_> {
        PublishFuture::running(self.schedule(draft, due))
    }

    fn source(&self) -> Arc<str> {
        Arc::clone(&self.source)
    }

    fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}
