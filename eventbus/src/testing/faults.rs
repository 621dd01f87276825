//! Failure injection: a named handler's next attempts fail or panic,
//! without a change to the handler, to test retries and dead letters
//! (asked for with [`TestBus::fail_next`](super::TestBus::fail_next)).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::envelope::RawEnvelope;
use crate::future::BoxFuture;
use crate::handler::HandlingError;
use crate::middleware::{Middleware, Next};

/// What an injected fault does to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Fail,
    Panic,
}

/// The faults waiting for each handler, by name, in the order injected.
#[derive(Debug, Default)]
pub(super) struct Faults {
    waiting: Mutex<HashMap<String, VecDeque<Fault>>>,
    /// How many wait in all, so handlings skip the lock when none do.
    count: AtomicUsize,
}

impl Faults {
    /// The next `attempts` attempts of `handler` fail.
    pub(super) fn fail(&self, handler: &str, attempts: u32) {
        self.add(handler, Fault::Fail, attempts);
    }

    /// The next `attempts` attempts of `handler` panic.
    pub(super) fn panic(&self, handler: &str, attempts: u32) {
        self.add(handler, Fault::Panic, attempts);
    }

    fn add(&self, handler: &str, fault: Fault, attempts: u32) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let queue = waiting.entry(handler.to_owned()).or_default();
        for _ in 0..attempts {
            queue.push_back(fault);
        }
        self.count.fetch_add(attempts as usize, Ordering::SeqCst);
    }

    fn take(&self, handler: &str) -> Option<Fault> {
        if self.count.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let fault = waiting.get_mut(handler)?.pop_front()?;
        self.count.fetch_sub(1, Ordering::SeqCst);
        Some(fault)
    }
}

/// The layer that applies [`Faults`]: innermost but for the handler, so
/// the application's own layers see an injected failure as the handler's.
#[derive(Debug)]
pub(super) struct FaultLayer(std::sync::Arc<Faults>);

impl FaultLayer {
    pub(super) fn new(faults: std::sync::Arc<Faults>) -> Self {
        FaultLayer(faults)
    }
}

impl Middleware for FaultLayer {
    fn name(&self) -> &str {
        "testing faults"
    }

    fn around_handling<'a>(
        &'a self,
        envelope: RawEnvelope,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), HandlingError>> {
        let handler = next.context().handler().to_owned();
        match self.0.take(&handler) {
            None => next.run(envelope),
            Some(Fault::Fail) => Box::pin(async move {
                Err(HandlingError::Failed(
                    format!("injected failure of `{handler}` (TestBus::fail_next)").into(),
                ))
            }),
            // Inside the future, where the bus catches a handler's panics.
            Some(Fault::Panic) => {
                Box::pin(
                    async move { panic!("injected panic of `{handler}` (TestBus::panic_next)") },
                )
            }
        }
    }
}
