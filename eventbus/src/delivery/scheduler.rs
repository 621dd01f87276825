//! The scheduler: publishes scheduled events when they are due. It sleeps
//! until the soonest due time, wakes early when this process schedules
//! something sooner, and looks every second for what other processes
//! sharing the store scheduled. The store moves each due event into
//! history once, whichever process asks first.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use super::core::Core;

/// How often to look for events other processes scheduled.
const POLL: Duration = Duration::from_secs(1);

/// Runs until shutdown.
pub(crate) async fn run(core: Arc<Core>, mut shutdown: watch::Receiver<bool>) {
    let Ok(schedules) = core.store.schedules() else {
        return;
    };
    loop {
        // Registered first, so a schedule made while this looks is not missed.
        let woken = core.scheduled.notified();
        if let Err(e) = core.release_due().await {
            tracing::warn!(error = %e, "publishing due scheduled events failed; trying again");
        }
        let wait = match schedules.next_due().await {
            Ok(Some(due)) => (due - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(POLL),
            Ok(None) => POLL,
            Err(e) => {
                tracing::warn!(error = %e, "reading the next due time failed");
                POLL
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = woken => {}
            _ = shutdown.changed() => return,
        }
    }
}
