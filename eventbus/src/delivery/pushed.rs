//! The worker of a pushed feed, for a store that does not outlive the
//! process (`memory://`): reads the handler's events from the shared ring
//! in the order they were pushed and handles them, up to the handler's
//! concurrency at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::attempt::{Mode, deliver};
use super::core::HandlerScope;
use super::ring::Next;

/// Runs one handler's feed until shutdown, then handles what was
/// published before it.
pub(crate) async fn run(scope: Arc<HandlerScope>, mut shutdown: watch::Receiver<bool>) {
    let Some(ring) = scope.core.ring.as_ref() else {
        return;
    };
    let handler = &scope.handler;
    let me = handler.index;
    let concurrency = handler.def.options.concurrency.max(1) as usize;
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut running = JoinSet::new();
    let mut stopping = false;
    let mut taken = 0;
    loop {
        let env = match ring.next(me) {
            Next::Event(env) => env,
            Next::Empty if stopping && ring.drained(me) => break,
            // A publish that began before shutdown is still writing.
            Next::Empty if stopping => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            Next::Empty => {
                tokio::select! {
                    biased;
                    () = ring.wait(me) => {}
                    _ = shutdown.changed() => stopping = true,
                    Some(_) = running.join_next(), if !running.is_empty() => {
                        if running.is_empty() {
                            handler.through.reached(taken);
                        }
                    }
                }
                continue;
            }
        };
        let seq = env.seq();
        // `deliver` logs and counts its outcome; there is no one to return it to.
        if concurrency == 1 {
            let _ = deliver(&scope, env, Mode::Live).await;
            handler.through.reached(seq);
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
        taken = seq;
        while running.try_join_next().is_some() {}
        // Handlings finish out of order: everything taken is finished
        // only when none is left running.
        if running.is_empty() {
            handler.through.reached(taken);
        }
    }
    while running.join_next().await.is_some() {}
    handler.through.reached(taken);
}
