//! The scheduler: publishes scheduled events when they are due. It sleeps
//! until the soonest due time, wakes early when this process schedules
//! something sooner, and looks every second for what other processes
//! sharing the store scheduled. The store moves each due event into
//! history once, whichever process asks first. A store whose server keeps
//! the timers (NATS) instead hands over the events it published as they
//! come due, and the scheduler only routes them.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use super::core::Core;
use crate::envelope::RawEnvelope;
use crate::error::Result;
use crate::future::BoxStream;

/// How often to look for events other processes scheduled.
const POLL: Duration = Duration::from_secs(1);

/// Runs until shutdown.
pub(crate) async fn run(core: Arc<Core>, mut shutdown: watch::Receiver<bool>) {
    let Ok(schedules) = core.store.schedules() else {
        return;
    };
    if let Some(released) = schedules.released() {
        return follow(core, released, shutdown).await;
    }
    loop {
        // Registered first, so a schedule made while this looks is not missed.
        let woken = core.scheduled.notified();
        // Only a due event takes the store's write lock: an idle bus reads.
        let wait = match schedules.next_due().await {
            // Due at `now` counts as due, as the stores release it: under
            // a paused clock, time stands still until this waits, so a
            // wait of zero would spin.
            Ok(Some(due)) => match (due - core.clock.now()).to_std() {
                Ok(until_due) if !until_due.is_zero() => until_due.min(POLL),
                // Due now: again at once while that publishes something,
                // but not in a loop over an event another process took or
                // one that does not read.
                _ => {
                    // A test bus waiting to settle sees the events as in
                    // flight from here until they are routed.
                    let _releasing = core
                        .tracker
                        .as_ref()
                        .map(|t| t.hold("publishing scheduled events that are due"));
                    match core.release_due().await {
                        Ok(0) => POLL,
                        Ok(_) => continue,
                        Err(e) => {
                            tracing::warn!(error = %e, "publishing due scheduled events failed; trying again");
                            POLL
                        }
                    }
                }
            },
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

/// Routes what the store publishes as it comes due, following its stream
/// again a second after it ends or fails.
async fn follow(
    core: Arc<Core>,
    mut released: BoxStream<'static, Result<RawEnvelope>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        loop {
            tokio::select! {
                next = released.next() => match next {
                    Some(Ok(env)) => core.route_released(&env).await,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "following due scheduled events failed; again in a second");
                        break;
                    }
                    None => break,
                },
                _ = shutdown.changed() => return,
            }
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
        let Some(again) = core.store.schedules().ok().and_then(|s| s.released()) else {
            return;
        };
        released = again;
    }
}
