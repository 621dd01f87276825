//! [`Repository`]: loading an aggregate from its snapshot and stream,
//! saving its new events under optimistic concurrency, and running a
//! command with retries on conflict.

use std::marker::PhantomData;
use std::sync::Arc;

use super::state::Aggregate;
use crate::bus::Bus;
use crate::envelope::{Draft, Envelope, RawEnvelope, SCOPE_HEADER};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::handler::Backoff;
use crate::store::{Snapshot, StreamId};

/// How many times [`Repository::execute`] runs a command that keeps
/// meeting concurrent changes before it gives up with the conflict.
const DEFAULT_ATTEMPTS: u32 = 10;

/// The wait before running a command again after a conflict: short, and
/// jittered so that writers racing on one entity stop meeting in lockstep.
const CONFLICT_BACKOFF: Backoff = Backoff {
    base: std::time::Duration::from_millis(1),
    max: std::time::Duration::from_millis(50),
};

/// Loads and saves aggregates of type `A` through a bus's store, which
/// must keep entity streams (`memory://`, `sqlite://`).
pub struct Repository<A> {
    bus: Bus,
    attempts: u32,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A> Clone for Repository<A> {
    fn clone(&self) -> Self {
        Repository {
            bus: self.bus.clone(),
            attempts: self.attempts,
            _aggregate: PhantomData,
        }
    }
}

impl<A> std::fmt::Debug for Repository<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("aggregate", &std::any::type_name::<A>())
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// An entity's state and the stream version it includes.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The state after every event up to `version`.
    pub state: A,
    /// How many events the stream had (0: the entity does not exist yet).
    pub version: u64,
}

/// What [`Repository::execute`] did: the new state and version, and the
/// events the command produced, as stored.
#[derive(Debug, Clone)]
pub struct Executed<A> {
    /// The state after the command's events.
    pub state: A,
    /// The stream's version after them.
    pub version: u64,
    /// The stored events (empty when the command produced none).
    pub events: Vec<RawEnvelope>,
}

/// Why [`Repository::execute`] did not apply a command.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    /// The command refused, with its own error.
    #[error("the command was refused: {0}")]
    Rejected(E),
    /// Loading or saving failed, or the entity kept changing underneath
    /// ([`Error::Conflict`] after the last attempt).
    #[error(transparent)]
    Bus(#[from] Error),
}

impl<A: Aggregate> Repository<A> {
    /// A repository over `bus`'s store.
    pub fn new(bus: &Bus) -> Self {
        Repository {
            bus: bus.clone(),
            attempts: DEFAULT_ATTEMPTS,
            _aggregate: PhantomData,
        }
    }

    /// How many times [`execute`](Repository::execute) tries a command
    /// before a conflict is returned (default 10, at least 1); between
    /// tries it waits a jittered 1 ms, 2 ms, 4 ms ... up to 50 ms.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    fn stream(id: &str) -> StreamId {
        StreamId {
            kind: <A::Event as Event>::NAME.to_owned(),
            id: id.to_owned(),
        }
    }

    /// The entity's current state: from its newest snapshot of this
    /// state version, if any, then the events after it.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for a store without streams, a stored event
    /// that does not decode, or a store error.
    pub async fn load(&self, id: &str) -> Result<Loaded<A>> {
        let stream = Self::stream(id);
        let snapshot = match A::SNAPSHOT_EVERY {
            0 => None,
            _ => self.snapshot(&stream).await?,
        };
        let start = snapshot.unwrap_or_else(|| Loaded {
            state: A::default(),
            version: 0,
        });
        self.fold(&stream, start, None).await
    }

    /// The entity's state as it was at `version` (time travel): its first
    /// `version` events, or all of them when it has fewer.
    ///
    /// # Errors
    ///
    /// As for [`load`](Repository::load).
    pub async fn load_at(&self, id: &str, version: u64) -> Result<Loaded<A>> {
        let start = Loaded {
            state: A::default(),
            version: 0,
        };
        self.fold(&Self::stream(id), start, Some(version)).await
    }

    /// The entity's stored events, oldest first.
    ///
    /// # Errors
    ///
    /// As for [`load`](Repository::load).
    pub async fn events(&self, id: &str) -> Result<Vec<Envelope<A::Event>>> {
        let stored = self
            .bus
            .store()
            .streams()?
            .read_stream(&Self::stream(id), 0, None)
            .await?;
        stored
            .iter()
            .map(|env| env.decode::<A::Event>().map_err(Error::from))
            .collect()
    }

    async fn snapshot(&self, stream: &StreamId) -> Result<Option<Loaded<A>>> {
        let streams = self.bus.store().streams()?;
        let Some(snapshot) = streams.load_snapshot(stream, A::STATE_VERSION).await? else {
            return Ok(None);
        };
        match serde_json::from_str(snapshot.state.get()) {
            Ok(state) => Ok(Some(Loaded {
                state,
                version: snapshot.version,
            })),
            Err(e) => {
                tracing::warn!(
                    %stream, error = %e,
                    "snapshot does not read as the current state; loading from the events"
                );
                Ok(None)
            }
        }
    }

    async fn fold(
        &self,
        stream: &StreamId,
        mut loaded: Loaded<A>,
        until: Option<u64>,
    ) -> Result<Loaded<A>> {
        let entries = self
            .bus
            .store()
            .streams()?
            .read_stream_data(stream, loaded.version, until)
            .await?;
        for entry in &entries {
            let event = <A::Event as Event>::decode_stored(
                &entry.topic,
                entry.event_version,
                entry.data.as_bytes(),
            )?;
            loaded.state.apply(&event);
            loaded.version = entry.stream_version;
        }
        Ok(loaded)
    }

    /// Appends `events` to the entity's stream if it is still at
    /// `expected_version` (0 for a new entity), all or none, and routes
    /// them like any publish. Stores a snapshot when the stream passes a
    /// multiple of [`Aggregate::SNAPSHOT_EVERY`].
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when another writer appended first (nothing is
    /// stored), [`Error::Unsupported`] for a store without streams, and
    /// the errors of a publish.
    pub async fn save(
        &self,
        id: &str,
        expected_version: u64,
        events: Vec<A::Event>,
    ) -> Result<Vec<RawEnvelope>> {
        let stream = Self::stream(id);
        let source = Arc::from(self.bus.source());
        let drafts = events
            .into_iter()
            .map(|event| {
                let mut draft = Draft::new(event, Arc::clone(&source));
                if let Some(scope) = self.bus.current_scope() {
                    draft
                        .meta
                        .headers
                        .insert(SCOPE_HEADER.to_owned(), scope.as_str().into());
                }
                draft
            })
            .collect();
        let stored = self
            .bus
            .core()
            .append_stream(&stream, expected_version, drafts)
            .await?;
        let version = expected_version + stored.len() as u64;
        if A::SNAPSHOT_EVERY > 0
            && expected_version / A::SNAPSHOT_EVERY != version / A::SNAPSHOT_EVERY
        {
            self.store_snapshot(id, version).await;
        }
        Ok(stored)
    }

    /// Stores the state at `version`; a failure costs only speed, so it
    /// is logged, not returned.
    async fn store_snapshot(&self, id: &str, version: u64) {
        let stream = Self::stream(id);
        let loaded = match self.load_at(id, version).await {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::warn!(%stream, error = %e, "snapshot not stored");
                return;
            }
        };
        let state = serde_json::value::to_raw_value(&loaded.state).map_err(|e| e.to_string());
        let saved = match state {
            Ok(state) => {
                self.save_snapshot(Snapshot {
                    stream: stream.clone(),
                    state_version: A::STATE_VERSION,
                    version: loaded.version,
                    state,
                })
                .await
            }
            Err(e) => Err(Error::InvalidArgument(format!(
                "the state does not serialize: {e}"
            ))),
        };
        if let Err(e) = saved {
            tracing::warn!(%stream, error = %e, "snapshot not stored");
        }
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        self.bus.store().streams()?.save_snapshot(snapshot).await
    }

    /// Loads the entity, runs `command` on its state, and saves the
    /// events it returns; when another writer changed the entity in
    /// between, does it all again with the new state, up to
    /// [`attempts`](Repository::attempts) times. A command must therefore
    /// decide from the state alone, without side effects of its own.
    ///
    /// # Errors
    ///
    /// [`CommandError::Rejected`] with the command's error, or
    /// [`CommandError::Bus`] with the load or save error, the last
    /// [`Error::Conflict`] included.
    pub async fn execute<E>(
        &self,
        id: &str,
        mut command: impl FnMut(&A) -> std::result::Result<Vec<A::Event>, E>,
    ) -> std::result::Result<Executed<A>, CommandError<E>> {
        let mut attempt = 1;
        loop {
            let Loaded { mut state, version } = self.load(id).await?;
            let events = command(&state).map_err(CommandError::Rejected)?;
            if events.is_empty() {
                return Ok(Executed {
                    state,
                    version,
                    events: Vec::new(),
                });
            }
            match self.save(id, version, events.clone()).await {
                Ok(stored) => {
                    for event in &events {
                        state.apply(event);
                    }
                    return Ok(Executed {
                        state,
                        version: version + stored.len() as u64,
                        events: stored,
                    });
                }
                Err(Error::Conflict { .. }) if attempt < self.attempts => {
                    tokio::time::sleep(CONFLICT_BACKOFF.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
