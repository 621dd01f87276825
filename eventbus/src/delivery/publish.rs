//! The publish path: publish middleware, the store, then routing to the
//! live subscriptions and to the handlers whose topics match.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::core::{Core, FeedKind};
use crate::envelope::{Draft, RawEnvelope};
use crate::error::{Error, Result};
use crate::future::BoxFuture;
use crate::handler::Publisher;
use crate::middleware::Flow;

impl Core {
    /// Stores a draft and routes it; a repeat of an idempotency key
    /// answers with the first event, which was routed when it was published.
    pub(crate) async fn publish(&self, mut draft: Draft) -> Result<RawEnvelope> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::ShutDown);
        }
        for layer in &self.middleware {
            if layer.on_publish(&mut draft) == Flow::Drop {
                return Err(Error::Dropped {
                    layer: layer.name().to_owned(),
                });
            }
        }
        let id = draft.id().clone();
        let started = self.metrics.then(std::time::Instant::now);
        let env = self.store.append(draft).await?;
        if *env.id() == id {
            self.route(&env).await?;
            if let Some(started) = started {
                crate::metrics::published(env.topic(), started.elapsed());
            }
        }
        Ok(env)
    }

    /// Offers a stored event to the live subscriptions and to each handler
    /// whose topics include it: pushed into its feed, or, when handlers
    /// read from the store, a wake-up so it reads now instead of at its
    /// next poll. The server of a store with consumers routes by itself.
    async fn route(&self, env: &RawEnvelope) -> Result<()> {
        self.subscribers.offer(env);
        if self.feeds == FeedKind::Served {
            return Ok(());
        }
        let Some(targets) = self.routes.get(env.topic()) else {
            return Ok(());
        };
        match &self.ring {
            Some(ring) => {
                ring.push(env.clone(), targets, |i, old| self.missed(i, old))
                    .await
            }
            None => {
                for &i in targets.iter() {
                    self.handlers[i].wake.notify_one();
                }
            }
        }
        Ok(())
    }
}

impl Core {
    /// Counts and logs an event handler `i` skipped because it was behind
    /// ([`LagPolicy::Skip`](crate::LagPolicy::Skip)).
    fn missed(&self, i: usize, env: &RawEnvelope) {
        let handler = &self.handlers[i];
        let missed = handler.counters.missed.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            handler = %handler.name, seq = env.seq(), topic = env.topic(), missed,
            "handler is behind and its feed is full; it skips this event (LagPolicy::Skip)"
        );
    }
}

impl Publisher for Core {
    fn publish_draft(&self, draft: Draft) -> BoxFuture<'_, Result<RawEnvelope>> {
        Box::pin(self.publish(draft))
    }

    fn source(&self) -> Arc<str> {
        Arc::clone(&self.source)
    }

    fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }
}
