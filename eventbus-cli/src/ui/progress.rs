//! Each handler's progress over the last hour, for the handlers page: the
//! store keeps only each checkpoint's current value, so the console
//! samples them and charts how far each moved per minute since it
//! started. The samples of one hour are kept; nothing more.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Shared;

/// How often checkpoints are read.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// An hour of samples, and one before it to measure the first against.
const KEPT: usize = 3600 / 10 + 1;

/// Checkpoints as read at one time.
type Sample = (DateTime<Utc>, BTreeMap<String, u64>);

#[derive(Default)]
pub(crate) struct Progress {
    samples: Mutex<VecDeque<Sample>>,
}

impl Progress {
    fn record(&self, sample: Sample) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// How far `handler`'s checkpoint moved in each minute of the last
    /// hour, oldest first, as of `now`; `None` before two samples. A
    /// checkpoint moved back (a replay) counts as no progress.
    pub(crate) fn per_minute(&self, handler: &str, now: DateTime<Utc>) -> Option<Vec<u64>> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() < 2 {
            return None;
        }
        let mut minutes = vec![0; 60];
        for (before, after) in samples.iter().zip(samples.iter().skip(1)) {
            let (Some(from), Some(to)) = (before.1.get(handler), after.1.get(handler)) else {
                continue;
            };
            let ago = (now - after.0).num_minutes();
            if (0..60).contains(&ago) {
                let minute = usize::try_from(59 - ago).unwrap_or(0);
                minutes[minute] += to.saturating_sub(*from);
            }
        }
        Some(minutes)
    }

    /// When the oldest kept sample was read.
    pub(crate) fn since(&self) -> Option<DateTime<Utc>> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.front().map(|(time, _)| *time)
    }
}

/// Reads every checkpoint each [`SAMPLE_EVERY`], for as long as the
/// console runs.
pub(crate) async fn sample(console: Shared) {
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    loop {
        ticks.tick().await;
        let read = match console.store.checkpoint_store() {
            Ok(checkpoints) => checkpoints.checkpoints().await,
            // A store without checkpoints has no progress to chart.
            Err(_) => return,
        };
        match read {
            Ok(checkpoints) => console
                .progress
                .record((Utc::now(), checkpoints.into_iter().collect())),
            Err(e) => eprintln!("warning: sampling checkpoints: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now: DateTime<Utc>, seconds_ago: i64, billing: u64) -> Sample {
        let checkpoints = BTreeMap::from([("billing".to_owned(), billing)]);
        (now - chrono::Duration::seconds(seconds_ago), checkpoints)
    }

    #[test]
    fn progress_is_the_checkpoints_advance_per_minute() {
        let now = Utc::now();
        let progress = Progress::default();
        progress.record(at(now, 200, 10));
        assert_eq!(progress.per_minute("billing", now), None, "one sample");
        progress.record(at(now, 130, 40));
        progress.record(at(now, 125, 45));
        progress.record(at(now, 5, 20)); // rewound by a replay
        progress.record(at(now, 1, 27));
        let minutes = progress.per_minute("billing", now).expect("samples");
        assert_eq!(minutes.len(), 60);
        assert_eq!(minutes[57], 35, "two minutes ago: 10 -> 45");
        assert_eq!(
            minutes[59], 7,
            "this minute: 20 -> 27, the rewind not counted"
        );
        assert_eq!(minutes.iter().sum::<u64>(), 42);
        assert_eq!(progress.per_minute("mailer", now), Some(vec![0; 60]));
    }

    #[test]
    fn an_hour_of_samples_is_kept() {
        let now = Utc::now();
        let progress = Progress::default();
        for i in 0..KEPT + 50 {
            progress.record(at(now, 0, i as u64));
        }
        assert_eq!(progress.samples.lock().expect("lock").len(), KEPT);
    }
}
