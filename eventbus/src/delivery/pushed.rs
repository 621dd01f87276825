//! The worker of a pushed feed, for a store that does not outlive the
//! process (`memory://`): handles events in the order they were pushed,
//! up to the handler's concurrency at once.

use std::sync::Arc;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::attempt::{Mode, deliver};
use super::core::HandlerScope;

/// Runs one handler's feed until shutdown, then drains what is queued.
pub(crate) async fn run(scope: Arc<HandlerScope>, mut shutdown: watch::Receiver<bool>) {
    let handler = &scope.handler;
    let Some(mut feed) = handler.feed.take_receiver() else {
        return;
    };
    let concurrency = handler.def.options.concurrency.max(1) as usize;
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut running = JoinSet::new();
    loop {
        let next = tokio::select! {
            biased;
            env = feed.recv() => env,
            _ = shutdown.changed() => {
                // Refuse new events but keep what is already queued.
                feed.close();
                continue;
            }
        };
        let Some(env) = next else { break };
        // `deliver` logs and counts its outcome; there is no one to return it to.
        if concurrency == 1 {
            let _ = deliver(&scope, env, Mode::Live).await;
            continue;
        }
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let scope = Arc::clone(&scope);
        running.spawn(async move {
            let _ = deliver(&scope, env, Mode::Live).await;
            drop(permit);
        });
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}
