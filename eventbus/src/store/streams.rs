//! The streams capability: one entity's events, appended only when the
//! stream is still at the version the writer saw (optimistic concurrency),
//! read without touching other entities' events, and snapshots of the
//! entity's state. What aggregates ([`crate::aggregate`]) are built on.

use serde_json::value::RawValue;

use crate::envelope::{Draft, RawEnvelope};
use crate::error::Result;
use crate::future::BoxFuture;

/// One entity's stream: its kind (the name of its event type) and its id
/// (the `subject` of its events).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// The event type's name ([`Event::NAME`](crate::Event::NAME)).
    pub kind: String,
    /// The entity's id.
    pub id: String,
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.id)
    }
}

/// One stored event of a stream, as much of it as folding it into a
/// state needs.
#[derive(Debug, Clone)]
pub struct StreamEntry {
    /// Its topic, which says which variant its data is.
    pub topic: String,
    /// The version of its type it was stored as.
    pub event_version: u32,
    /// Its place in the stream.
    pub stream_version: u64,
    /// Its data, JSON.
    pub data: String,
}

impl StreamEntry {
    /// What folding needs of a stored event.
    pub(crate) fn of(env: &RawEnvelope) -> Result<Self> {
        Ok(StreamEntry {
            topic: env.topic().to_owned(),
            event_version: env.event_version(),
            stream_version: env.stream_version().unwrap_or_default(),
            data: env.data_json()?.get().to_owned(),
        })
    }
}

/// A stored state of an entity at a version of its stream.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Whose state.
    pub stream: StreamId,
    /// The version of the state's shape (`Aggregate::STATE_VERSION`): a
    /// snapshot of another shape is never read.
    pub state_version: u32,
    /// The stream version the state includes.
    pub version: u64,
    /// The state, as JSON.
    pub state: Box<RawValue>,
}

/// Entity streams and snapshots (see [`Store`](super::Store)).
pub trait StreamStore: Send + Sync {
    /// Appends `drafts` to `stream` as its versions `expected + 1`, ... if
    /// the stream is at version `expected` (0: empty), all or none; each
    /// draft gets the stream's id as its `subject` and its place as its
    /// stream version.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`](crate::Error::Conflict) naming the stream's
    /// actual version when it is not at `expected`, and store errors.
    fn append_to_stream(
        &self,
        stream: &StreamId,
        expected: u64,
        drafts: Vec<Draft>,
    ) -> BoxFuture<'_, Result<Vec<RawEnvelope>>>;

    /// The stream's events with a version above `after` and, with
    /// `until`, at most that, in order.
    fn read_stream(
        &self,
        stream: &StreamId,
        after: u64,
        until: Option<u64>,
    ) -> BoxFuture<'_, Result<Vec<RawEnvelope>>>;

    /// What [`read_stream`](StreamStore::read_stream) reads, without the
    /// metadata loading a state does not need: a store can answer it
    /// faster (the default reads the envelopes).
    fn read_stream_data(
        &self,
        stream: &StreamId,
        after: u64,
        until: Option<u64>,
    ) -> BoxFuture<'_, Result<Vec<StreamEntry>>> {
        let read = self.read_stream(stream, after, until);
        Box::pin(async move { read.await?.iter().map(StreamEntry::of).collect() })
    }

    /// Keeps `snapshot` as the entity's newest of its state version.
    fn save_snapshot(&self, snapshot: Snapshot) -> BoxFuture<'_, Result<()>>;

    /// The entity's newest snapshot of `state_version`, if any.
    fn load_snapshot(
        &self,
        stream: &StreamId,
        state_version: u32,
    ) -> BoxFuture<'_, Result<Option<Snapshot>>>;
}

/// Marks `drafts` as the stream's next events after `expected`.
pub(crate) fn place(stream: &StreamId, expected: u64, drafts: &mut [Draft]) {
    for (i, draft) in drafts.iter_mut().enumerate() {
        draft.meta.subject = Some(stream.id.clone());
        draft.meta.stream_version = Some(expected + 1 + i as u64);
    }
}
