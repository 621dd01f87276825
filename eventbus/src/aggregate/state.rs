//! The [`Aggregate`] trait: an entity's state and how its events change it.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::event::Event;

/// An entity's state, rebuilt by applying its events in order.
///
/// `apply` should match on the event without a catch-all arm: then an
/// event variant added later fails to compile until the aggregate handles
/// it. It cannot fail: an event is a fact already stored.
pub trait Aggregate: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The events of this aggregate's streams; its name names them.
    type Event: Event + Clone;

    /// The version of the state's shape, stored with each snapshot: raise
    /// it when the state's fields change, and older snapshots are ignored
    /// (rebuilt from the events), never misread.
    const STATE_VERSION: u32 = 1;

    /// Store a snapshot of the state every this many events (0: never).
    const SNAPSHOT_EVERY: u64 = 0;

    /// Folds one event into the state.
    fn apply(&mut self, event: &Self::Event);
}
