//! Handler leases: one process at a time runs a handler on a shared store.
//!
//! Two service instances on one SQLite file that both run handler
//! `billing` would otherwise both read its feed from the same checkpoint
//! and handle every event twice. Instead, each bus keeps a lease per
//! handler in the store: the holder renews it every third of its time to
//! live, and a bus that finds a handler leased by another process stands
//! by for it, trying again at each renewal. When the holder dies
//! (SIGKILL included) its lease expires and a standby takes over from the
//! handler's checkpoint within one time to live plus one renewal; when it
//! shuts down cleanly it releases its leases, and a standby takes over at
//! its next renewal.
//!
//! One thread per bus renews all of its leases in one store write, so the
//! cost does not grow with the number of handlers. Stores that are not
//! shared this way grant every lease (see
//! [`CheckpointStore::renew_leases`](crate::store::CheckpointStore::renew_leases)).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::core::HandlerRuntime;
use crate::error::{Error, Result};
use crate::store::Store;

/// How long a lease lasts without renewal unless the builder says otherwise.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(5);

/// The renewing thread of one bus, stopped after its handlers have drained.
pub(crate) struct LeaseKeeper {
    stop: oneshot::Sender<()>,
    released: oneshot::Receiver<()>,
}

impl LeaseKeeper {
    /// Takes the leases that are free now, so a bus that is alone starts
    /// its handlers at once, then keeps renewing them on a thread of its
    /// own: a handler that blocks the runtime's threads (it should not,
    /// but one will) must not let the lease lapse while it runs.
    ///
    /// # Errors
    ///
    /// The store's error when the first round cannot be written, or the
    /// thread cannot be started.
    pub(crate) async fn start(
        store: Arc<dyn Store>,
        handlers: Vec<Arc<HandlerRuntime>>,
        ttl: Duration,
    ) -> Result<Self> {
        let keeper = Keeper {
            holder: holder_id(),
            names: handlers.iter().map(|h| Arc::clone(&h.name)).collect(),
            handlers,
            store,
            ttl,
        };
        keeper.round().await?;
        let (stop, stopped) = oneshot::channel();
        let (done, released) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|source| Error::Io {
                doing: "starting the lease thread",
                source,
            })?;
        std::thread::Builder::new()
            .name("eventbus-leases".into())
            .spawn(move || {
                runtime.block_on(keeper.run(stopped));
                let _ = done.send(());
            })
            .map_err(|source| Error::Io {
                doing: "starting the lease thread",
                source,
            })?;
        Ok(LeaseKeeper { stop, released })
    }

    /// Stops renewing and releases every lease, so standbys take over.
    pub(crate) async fn release(self) {
        let _ = self.stop.send(());
        let _ = self.released.await;
    }
}

struct Keeper {
    holder: String,
    names: Vec<Arc<str>>,
    handlers: Vec<Arc<HandlerRuntime>>,
    store: Arc<dyn Store>,
    ttl: Duration,
}

impl Keeper {
    async fn run(self, mut stopped: oneshot::Receiver<()>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.ttl / 3) => {}
                _ = &mut stopped => break,
            }
            if let Err(e) = self.round().await {
                // The leases held stay held until they expire; the next
                // round tries again well before that.
                tracing::warn!(error = %e, "could not renew handler leases; trying again");
            }
        }
        let released = match self.store.checkpoint_store() {
            Ok(store) => store.release_leases(&self.holder).await,
            Err(e) => Err(e),
        };
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not release handler leases; standbys take over when they expire");
        }
    }

    /// Renews what this bus holds, takes what has expired, and tells each
    /// handler's feed whether it may run.
    async fn round(&self) -> Result<()> {
        let held = self
            .store
            .checkpoint_store()?
            .renew_leases(&self.holder, &self.names, self.ttl)
            .await?;
        for (handler, held) in self.handlers.iter().zip(held) {
            handler.lease.send_if_modified(|was| {
                let changed = *was != held;
                *was = held;
                changed
            });
        }
        Ok(())
    }
}

/// Names this bus in the lease table: the process, and a random part that
/// tells two buses of one process apart.
fn holder_id() -> String {
    let unique = uuid::Uuid::now_v7().simple().to_string();
    format!("pid {} bus {}", std::process::id(), &unique[20..])
}

/// Waits until the lease is held; `false` if the keeper is gone.
pub(crate) async fn held(lease: &mut watch::Receiver<bool>) -> bool {
    lease.wait_for(|held| *held).await.is_ok()
}
