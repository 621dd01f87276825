//! The queue behind a pushed feed: bounded, so a slow handler pushes
//! back on publishers instead of growing memory, or, with
//! [`LagPolicy::Skip`], skips what does not fit (counted, logged; the
//! events stay in history).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::envelope::RawEnvelope;
use crate::error::{Error, Result};

/// What a full feed does on a store that pushes events to handlers
/// (`memory://`). On a durable store handlers read from the store and never
/// hold publishers back, whatever the policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LagPolicy {
    /// The publisher waits until the handler has room (backpressure).
    #[default]
    Block,
    /// The handler skips the event; the skip is logged and counted in
    /// [`HandlerStats::missed`](crate::HandlerStats::missed), and the event
    /// stays in history.
    Skip,
}

/// One handler's pushed feed: the publishers' end, and the worker's end
/// until its worker takes it.
pub(crate) struct PushedFeed {
    tx: mpsc::Sender<RawEnvelope>,
    rx: Mutex<Option<mpsc::Receiver<RawEnvelope>>>,
}

impl PushedFeed {
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity);
        PushedFeed {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    /// The worker's end, taken once by the handler's worker.
    pub(crate) fn take_receiver(&self) -> Option<mpsc::Receiver<RawEnvelope>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Pushes `env` into the feed of `handler`, waiting for room or, by
    /// `lag`, skipping it and counting it in `missed`.
    pub(crate) async fn push(
        &self,
        handler: &str,
        env: &RawEnvelope,
        lag: LagPolicy,
        missed: &AtomicU64,
    ) -> Result<()> {
        // Waiting only when the feed is full keeps the common path short.
        match self.tx.try_send(env.clone()) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) if lag == LagPolicy::Skip => {
                let missed = missed.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    handler,
                    seq = env.seq(),
                    topic = env.topic(),
                    missed,
                    "handler is behind and its feed is full; it skips this event (LagPolicy::Skip)"
                );
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(env)) => {
                self.tx.send(env).await.map_err(|_| Error::ShutDown)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::ShutDown),
        }
    }
}
