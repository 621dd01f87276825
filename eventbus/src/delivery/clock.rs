//! The time due dates are measured against: the wall clock, moved along
//! with tokio's clock when that one is paused.
//!
//! Scheduled events carry wall-clock due times (they are stored, and other
//! processes sharing the store read them), while the scheduler waits with
//! tokio timers. Under tokio's paused clock (`#[tokio::test(start_paused =
//! true)]`) the timers jump ahead but the wall clock does not, so a due
//! time an hour away would never come and the scheduler would wake every
//! second for an hour. Here, time is the wall clock plus how far tokio's
//! clock has moved apart from the monotonic clock since the bus started.
//! Unpaused, tokio's clock *is* the monotonic clock, so this is the wall
//! clock, whatever happens to it (suspends, steps); paused, it is the wall
//! time at start plus tokio's virtual time, so a test that sleeps an hour
//! finds an event scheduled an hour ahead due, and one that does not
//! never sees it due early.

use chrono::{DateTime, Utc};

/// A bus's clock for due times; see the module docs.
#[derive(Debug)]
pub(crate) struct Clock {
    tokio: tokio::time::Instant,
    monotonic: std::time::Instant,
}

impl Clock {
    /// A clock that starts now.
    pub(crate) fn start() -> Self {
        Clock {
            tokio: tokio::time::Instant::now(),
            monotonic: std::time::Instant::now(),
        }
    }

    /// The current time for due dates.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let wall = Utc::now();
        let real = self.monotonic.elapsed();
        let moved = self.tokio.elapsed();
        let apart = match (
            chrono::Duration::from_std(moved),
            chrono::Duration::from_std(real),
        ) {
            (Ok(moved), Ok(real)) => moved - real,
            _ => chrono::Duration::zero(),
        };
        wall.checked_add_signed(apart).unwrap_or(wall)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Clock;

    #[tokio::test(start_paused = true)]
    async fn follows_a_paused_tokio_clock() {
        let clock = Clock::start();
        // The wall and monotonic clocks are read apart, a few microseconds.
        let near = |a: chrono::Duration, b: chrono::Duration| {
            (a - b).abs() < chrono::Duration::milliseconds(1)
        };
        let before = clock.now();
        std::thread::sleep(Duration::from_millis(20));
        let still = clock.now() - before;
        assert!(
            near(still, chrono::Duration::zero()),
            "moved {still} while tokio's clock stood still"
        );
        tokio::time::advance(Duration::from_secs(3600)).await;
        let moved = clock.now() - before;
        assert!(
            near(moved, chrono::Duration::seconds(3600)),
            "moved {moved} in tokio's hour"
        );
    }

    #[tokio::test]
    async fn is_the_wall_clock_when_tokio_runs_in_real_time() {
        let clock = Clock::start();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let difference = (clock.now() - chrono::Utc::now()).abs();
        assert!(
            difference < chrono::Duration::milliseconds(50),
            "{difference}"
        );
    }
}
