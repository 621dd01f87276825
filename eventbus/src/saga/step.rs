//! Running one saga step: load the instance, finish what the last step
//! left undone, run the method, save the state with its effects under
//! optimistic concurrency, then do the effects.

use chrono::Utc;
use serde_json::value::RawValue;
use tracing::Instrument as _;

use super::context::{Effect, SagaContext};
use super::definition::{Saga, StepDef, StepKind};
use super::record::{Record, StoredEffect};
use crate::envelope::RawEnvelope;
use crate::error::{Error, Result};
use crate::handler::{Backoff, Context, HandlingError};
use crate::store::SagaStore;

/// How many times a step runs again after meeting another step of its
/// instance before it fails (and is retried as any handling is).
const CONFLICT_ROUNDS: u32 = 20;

/// The pause before running a step again after a conflict, jittered so
/// that two steps racing on one instance stop meeting in lockstep.
const CONFLICT_BACKOFF: Backoff = Backoff {
    base: std::time::Duration::from_millis(1),
    max: std::time::Duration::from_millis(20),
};

/// How long after its publication an `#[on]` event whose instance does
/// not exist yet waits for it: each step is a handler of its own, so a
/// start published just before may be handled just after.
const EARLY_WINDOW: std::time::Duration = std::time::Duration::from_secs(5);

/// How often an early event looks for its instance again.
const EARLY_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// The entry point of a step's handler: the generated registration calls
/// it with the step's index in [`Saga::STEPS`].
#[doc(hidden)]
pub async fn run_step<S: Saga>(
    raw: RawEnvelope,
    ctx: Context,
    index: usize,
) -> std::result::Result<(), HandlingError> {
    let step = &S::STEPS[index];
    let key = (step.key)(&raw).map_err(HandlingError::Decode)?;
    let span = tracing::info_span!(
        "saga_step",
        saga = S::NAME,
        step = step.method,
        key = %key,
        correlation_id = tracing::field::Empty,
    );
    Step {
        step,
        key: &key,
        raw: &raw,
        ctx: &ctx,
        span: span.clone(),
    }
    .run()
    .instrument(span)
    .await
}

struct Step<'a, S: 'static> {
    step: &'static StepDef<S>,
    key: &'a str,
    raw: &'a RawEnvelope,
    ctx: &'a Context,
    span: tracing::Span,
}

/// A store error, as the handling's failure.
fn failed(e: Error) -> HandlingError {
    HandlingError::Failed(Box::new(e))
}

impl<S: Saga> Step<'_, S> {
    async fn run(&self) -> std::result::Result<(), HandlingError> {
        let sagas = self.ctx.store().sagas().map_err(failed)?;
        // Bounds the wait for an instance by this process's clock too, for
        // an event whose time lies ahead of it.
        let patience = tokio::time::Instant::now() + EARLY_WINDOW;
        let mut round = 0;
        loop {
            round += 1;
            let may_wait = tokio::time::Instant::now() < patience;
            match self.round(sagas, may_wait).await {
                Err(RoundError::Conflict(e)) if round < CONFLICT_ROUNDS => {
                    tracing::debug!(error = %e, "another step of the instance came first; running again");
                    tokio::time::sleep(CONFLICT_BACKOFF.delay(round)).await;
                }
                Err(RoundError::Early) => {
                    round -= 1;
                    tokio::time::sleep(EARLY_POLL).await;
                }
                Err(RoundError::Conflict(e) | RoundError::Store(e)) => return Err(failed(e)),
                Err(RoundError::Step(e)) => return Err(e),
                Ok(()) => return Ok(()),
            }
        }
    }

    async fn round(
        &self,
        sagas: &dyn SagaStore,
        may_wait: bool,
    ) -> std::result::Result<(), RoundError> {
        let name = S::NAME;
        let stored = sagas.load_saga(name, self.key).await?;
        let (mut version, open, record) = match stored {
            Some(s) => (
                s.version,
                s.open,
                Some(Record::parse(name, self.key, &s.record)?),
            ),
            None => (0, true, None),
        };
        let mut record = match record {
            Some(mut record) if !record.pending.is_empty() => {
                // The step before died between its save and its effects.
                self.perform(&record.pending).await?;
                record.pending.clear();
                version = sagas
                    .save_saga(name, self.key, version, open, record.to_json()?)
                    .await?;
                Some(record)
            }
            other => other,
        };
        let id = self.raw.id().to_string();
        match (&record, self.step.kind) {
            (Some(r), _) if r.has_handled(&id) => return Ok(()),
            (None, StepKind::On) => {
                let waited = self.ctx.publisher().now() - self.raw.time();
                if may_wait && waited.to_std().unwrap_or_default() < EARLY_WINDOW {
                    return Err(RoundError::Early);
                }
                tracing::debug!("no instance has this key: the event is not for this saga");
                return Ok(());
            }
            (Some(_), StepKind::Start) => {
                tracing::warn!("an instance with this key exists: the starting event is ignored");
                return Ok(());
            }
            (Some(_), StepKind::On) if !open => {
                tracing::debug!("the instance is completed: the event is ignored");
                return Ok(());
            }
            _ => {}
        }
        let correlation_id = match &record {
            Some(r) => r.correlation_id.clone(),
            None => self
                .raw
                .correlation_id()
                .map_or_else(|| id.clone(), str::to_owned),
        };
        self.span.record("correlation_id", correlation_id.as_str());
        let mut state: S = match &record {
            Some(r) => serde_json::from_str(r.state.get()).map_err(|e| Error::InvalidEvent {
                reason: format!(
                    "the state of saga {name} instance {} does not read as {}: {e}",
                    self.key,
                    std::any::type_name::<S>()
                ),
            })?,
            None => S::default(),
        };
        let publisher = self.ctx.publisher();
        let mut saga = SagaContext::new(
            name,
            self.key.to_owned(),
            correlation_id.clone(),
            self.raw.clone(),
            publisher.source(),
            publisher.now(),
        );
        (self.step.run)(&mut state, self.raw, &mut saga).map_err(RoundError::Step)?;

        let now = Utc::now();
        let mut record = record.take().unwrap_or_else(|| Record {
            correlation_id,
            started: now,
            updated: now,
            state: RawValue::NULL.to_owned(),
            handled: Default::default(),
            timers: Vec::new(),
            pending: Vec::new(),
        });
        record.state =
            serde_json::value::to_raw_value(&state).map_err(|e| Error::InvalidEvent {
                reason: format!("the state of saga {name} does not encode: {e}"),
            })?;
        record.updated = now;
        record.timers.retain(|t| *t != id);
        record.remember(id);
        let mut effects = saga.effects;
        for effect in &effects {
            match effect {
                Effect::Schedule(draft, _) => record.timers.push(draft.id().to_string()),
                Effect::Cancel(cancelled) => record.timers.retain(|t| t != cancelled),
                Effect::Publish(_) => {}
            }
        }
        if saga.completed {
            effects.extend(record.timers.drain(..).map(Effect::Cancel));
        }
        record.pending = effects
            .into_iter()
            .map(StoredEffect::of)
            .collect::<Result<_>>()?;
        let open = !saga.completed;
        let version = sagas
            .save_saga(name, self.key, version, open, record.to_json()?)
            .await?;
        if !record.pending.is_empty() {
            self.perform(&record.pending).await?;
            record.pending.clear();
            // A conflict means a later step got there and did them too.
            match sagas
                .save_saga(name, self.key, version, open, record.to_json()?)
                .await
            {
                Ok(_) | Err(Error::Conflict { .. }) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the step's effects are done but still recorded as to do; the next step repeats them harmlessly");
                }
            }
        }
        Ok(())
    }

    /// Does a step's effects. Events keep the ids their step gave them,
    /// so doing them again stores nothing new.
    async fn perform(&self, effects: &[StoredEffect]) -> Result<()> {
        let publisher = self.ctx.publisher();
        for effect in effects {
            match effect {
                StoredEffect::Publish { event } => {
                    publisher.publish_draft(StoredEffect::draft(event)?).await?;
                }
                StoredEffect::Schedule { event, due } => {
                    publisher
                        .schedule_draft(StoredEffect::draft(event)?, *due)
                        .await?;
                }
                StoredEffect::Cancel { id } => {
                    self.ctx.store().schedules()?.cancel(id).await?;
                }
            }
        }
        Ok(())
    }
}

/// Why one round of a step ended early.
enum RoundError {
    /// An `#[on]` event found no instance, but its start may still come.
    Early,
    /// Another step of the instance saved first: run again.
    Conflict(Error),
    /// The store failed.
    Store(Error),
    /// The method failed.
    Step(HandlingError),
}

impl From<Error> for RoundError {
    fn from(e: Error) -> Self {
        match e {
            Error::Conflict { .. } => RoundError::Conflict(e),
            e => RoundError::Store(e),
        }
    }
}
