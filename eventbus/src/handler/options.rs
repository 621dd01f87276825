//! What a handler is configured with: its delivery options and the
//! backoff between its attempts.

use std::borrow::Cow;
use std::time::Duration;

use crate::store::Start;

/// Per-handler delivery options, set with `#[handler(...)]` or on a
/// [`FnHandler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerOptions {
    /// Retries after a failed first attempt; `None` takes the bus default
    /// ([`BusBuilder::default_retry`](crate::BusBuilder::default_retry)).
    pub retry: Option<u32>,
    /// How many handlings may run at once. 1 (the default) keeps the
    /// handler's feed in order; more relaxes ordering.
    pub concurrency: u32,
    /// Whether replays reach this handler. Handlers with outside effects
    /// (emails, payments) set `replay = false`.
    pub replay: bool,
    /// Where the handler starts on a durable store the first time it runs;
    /// `None` takes the bus default ([`BusBuilder::default_start`](crate::BusBuilder::default_start)).
    pub start: Option<Start>,
    /// Delays between attempts; `None` takes the bus default
    /// ([`BusBuilder::backoff`](crate::BusBuilder::backoff)).
    pub backoff: Option<Backoff>,
    /// Only events published in this scope or below it (a path such as
    /// `tenant-a/eu`, see [`Bus::scope`](crate::Bus::scope)); `None`: every event.
    pub scope: Option<Cow<'static, str>>,
}

impl HandlerOptions {
    /// The defaults: bus-wide retry, concurrency 1, replays delivered.
    pub const DEFAULT: HandlerOptions = HandlerOptions {
        retry: None,
        concurrency: 1,
        replay: true,
        start: None,
        backoff: None,
        scope: None,
    };
}

impl Default for HandlerOptions {
    fn default() -> Self {
        HandlerOptions::DEFAULT
    }
}

/// Exponential backoff between attempts: `base * 2^(attempt-1)`, capped at
/// `max`, with up to 50% random jitter subtracted so that handlers failing
/// together do not retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.max);
        // The clock's sub-second nanos spread retries well enough; a
        // random number generator would be one more dependency.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = capped.mul_f64(f64::from(nanos % 1000) / 2000.0);
        capped - jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let d1 = b.delay(1);
        assert!(d1 <= Duration::from_millis(100) && d1 >= Duration::from_millis(50));
        let d3 = b.delay(3);
        assert!(d3 <= Duration::from_millis(400) && d3 >= Duration::from_millis(200));
        assert!(b.delay(30) <= Duration::from_secs(1));
    }
}
