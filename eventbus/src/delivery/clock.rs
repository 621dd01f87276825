//! The time due dates are measured against: the wall clock, moved along
//! with tokio's clock when that one is paused.
//!
//! Scheduled events carry wall-clock due times (they are stored, and other
//! processes sharing the store read them), while the scheduler waits with
//! tokio timers. Under tokio's paused clock (`#[tokio::test(start_paused =
//! true)]`) the timers jump ahead but the wall clock does not, so a due
//! time an hour away would never come and the scheduler would wake every
//! second for an hour.
//!
//! Here, time is the wall time when the bus started, plus how far tokio's
//! clock moved since, plus how far the wall clock moved apart from the
//! monotonic clock (set by hand or by NTP, or a machine that slept).
//! Unpaused, tokio's clock *is* the monotonic clock, so this is the wall
//! clock; paused, it is the start plus tokio's virtual time, so a test that
//! sleeps an hour finds an event scheduled an hour ahead due, and one that
//! does not never sees it due early. The wall and monotonic clocks cannot
//! be read at the same instant, so what they seem to move apart by is
//! noise below [`STEP`] and taken as none: a paused test's due dates are
//! then exact, and a running service's are within that of the wall clock.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The least the wall clock must move apart from the monotonic clock to
/// count (see the module docs).
const STEP: Duration = Duration::from_millis(100);

/// A bus's clock for due times; see the module docs.
#[derive(Debug)]
pub(crate) struct Clock {
    wall: DateTime<Utc>,
    tokio: tokio::time::Instant,
    monotonic: std::time::Instant,
}

impl Clock {
    /// A clock that starts now.
    pub(crate) fn start() -> Self {
        Clock {
            wall: Utc::now(),
            tokio: tokio::time::Instant::now(),
            monotonic: std::time::Instant::now(),
        }
    }

    /// The current time for due dates.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let wall = Utc::now();
        let real = self.monotonic.elapsed();
        let (Ok(moved), Ok(real), Ok(step)) = (
            chrono::Duration::from_std(self.tokio.elapsed()),
            chrono::Duration::from_std(real),
            chrono::Duration::from_std(STEP),
        ) else {
            return wall;
        };
        let apart = (wall - self.wall) - real;
        let apart = if apart.abs() < step {
            chrono::Duration::zero()
        } else {
            apart
        };
        self.wall.checked_add_signed(moved + apart).unwrap_or(wall)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Clock;

    #[tokio::test(start_paused = true)]
    async fn follows_a_paused_tokio_clock_exactly() {
        let clock = Clock::start();
        let before = clock.now();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.now(), before, "stands still with tokio's clock");
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(clock.now() - before, chrono::Duration::seconds(3600));
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
