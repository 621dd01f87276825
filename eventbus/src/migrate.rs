//! `eventbus::migrate`: stored history rewritten to the current versions
//! of its event types, through their upcasters.
//!
//! Reading never needs it: every read upcasts on the way. A migration
//! saves that work for old events read often, and lets a later build drop
//! upcasters once no stored event needs them. It needs the user's event
//! types (their upcasters), so it is a function the application calls,
//! not a CLI command.

use futures_util::StreamExt;
use serde_json::value::RawValue;

use crate::bus::Bus;
use crate::catalog;
use crate::error::{Error, Result};
use crate::store::Rewritten;

const DEFAULT_BATCH: usize = 500;

/// Starts a migration of the stored events whose topic matches `pattern`
/// to the current versions of their types; see [`Migration`].
///
/// ```no_run
/// # async fn run(bus: eventbus::Bus) -> eventbus::Result<()> {
/// let report = eventbus::migrate(&bus, "order.>")
///     .on_progress(|r| eprintln!("{} read, {} upgraded", r.read, r.upgraded))
///     .run()
///     .await?;
/// println!("{report:?}");
/// # Ok(()) }
/// ```
pub fn migrate(bus: &Bus, pattern: impl AsRef<str>) -> Migration<'_> {
    Migration {
        bus,
        pattern: pattern.as_ref().to_owned(),
        dry_run: false,
        batch: DEFAULT_BATCH,
        progress: None,
    }
}

/// A migration in the making; `run().await` performs it.
///
/// Events are read in seq order and rewritten in batches, each batch one
/// transaction, keeping their ids, seqs and metadata. Events already at
/// their type's current version are left alone, so running it again does
/// nothing new, and an interrupted run resumes where it stopped. Events
/// of types this binary does not link, events of a newer version than it
/// knows and events whose upcasting fails are counted and left as they
/// are.
#[must_use = "a migration does nothing until `.run().await`"]
pub struct Migration<'a> {
    bus: &'a Bus,
    pattern: String,
    dry_run: bool,
    batch: usize,
    progress: Option<Progress<'a>>,
}

type Progress<'a> = Box<dyn FnMut(&MigrationReport) + Send + 'a>;

impl std::fmt::Debug for Migration<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migration")
            .field("pattern", &self.pattern)
            .field("dry_run", &self.dry_run)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

/// What a migration did, or, for a dry run, would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// Events read.
    pub read: u64,
    /// Events rewritten to their type's current version (or, in a dry
    /// run, that would be).
    pub upgraded: u64,
    /// Events already at their type's current version.
    pub current: u64,
    /// Events of a type this binary does not link, or JSON without a type
    /// name on a topic no linked type (or more than one) has.
    pub unknown_type: u64,
    /// Events stored by a newer version than this binary knows.
    pub newer: u64,
    /// Events that could not be read or upcast, by seq, with the reason.
    pub failed: Vec<(u64, String)>,
}

impl<'a> Migration<'a> {
    /// Reads and upcasts everything, counts what would change, and writes
    /// nothing.
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    /// Events per transaction (default 500).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// Calls `f` with the report so far after each batch, for a progress bar.
    pub fn on_progress(mut self, f: impl FnMut(&MigrationReport) + Send + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Runs the migration to the end of the matching history.
    ///
    /// # Errors
    ///
    /// A malformed pattern, [`Error::Unsupported`] for a store that cannot
    /// rewrite events (only a dry run works there), or a store error.
    /// Events that fail are in the report, not errors.
    pub async fn run(mut self) -> Result<MigrationReport> {
        let store = self.bus.store();
        let rewriter = if self.dry_run {
            None
        } else {
            Some(store.rewriter()?)
        };
        let mut report = MigrationReport::default();
        let mut batch = Vec::with_capacity(self.batch);
        let mut events = self.bus.history().topic(&self.pattern).stream();
        while let Some(item) = events.next().await {
            let env = match item {
                Ok(env) => env,
                Err(Error::BadRow { seq, reason }) => {
                    report.read += 1;
                    report.failed.push((seq, reason));
                    continue;
                }
                Err(e) => return Err(e),
            };
            report.read += 1;
            let Some(registration) = catalog::registration(env.event_name(), env.topic()) else {
                report.unknown_type += 1;
                continue;
            };
            let stored = env.event_version();
            if stored == registration.version {
                report.current += 1;
                continue;
            }
            if stored > registration.version {
                report.newer += 1;
                continue;
            }
            let upgraded = env
                .data_json()
                .map_err(|e| e.to_string())
                .and_then(|data| {
                    (registration.upgrade)(env.topic(), stored, data.get().as_bytes())
                        .map_err(|e| e.to_string())
                })
                .and_then(|bytes| String::from_utf8(bytes).map_err(|e| e.to_string()))
                .and_then(|text| RawValue::from_string(text).map_err(|e| e.to_string()));
            match upgraded {
                Ok(data) => {
                    report.upgraded += 1;
                    batch.push(Rewritten {
                        seq: env.seq(),
                        version: registration.version,
                        data,
                    });
                }
                Err(reason) => report.failed.push((env.seq(), reason)),
            }
            if batch.len() >= self.batch {
                self.flush(rewriter, &mut batch, &report).await?;
            }
        }
        self.flush(rewriter, &mut batch, &report).await?;
        Ok(report)
    }

    async fn flush(
        &mut self,
        rewriter: Option<&dyn crate::store::StoreRewrite>,
        batch: &mut Vec<Rewritten>,
        report: &MigrationReport,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(batch);
        if let Some(rewriter) = rewriter {
            rewriter.rewrite(events).await?;
        }
        if let Some(progress) = &mut self.progress {
            progress(report);
        }
        Ok(())
    }
}
