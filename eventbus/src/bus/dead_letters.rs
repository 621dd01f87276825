//! `bus.dead_letters()`: list, retry and purge what handlers gave up on.

use std::sync::Arc;

use crate::delivery::{self, Core};
use crate::error::Result;
use crate::store::{DeadLetter, DeadLetterQuery};

/// The dead letters of a bus: list, retry, purge. Get it from
/// [`Bus::dead_letters`].
#[derive(Clone)]
pub struct DeadLetters {
    core: Arc<Core>,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("store", &self.core.store.describe())
            .finish()
    }
}

impl DeadLetters {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        DeadLetters { core }
    }

    /// Lists dead letters, oldest first.
    ///
    /// # Errors
    ///
    /// A store error.
    pub async fn list(&self, query: DeadLetterQuery) -> Result<Vec<DeadLetter>> {
        self.core
            .store
            .dead_letter_store()?
            .dead_letters(query)
            .await
    }

    /// Delivers a dead letter to its handler again, in this process. On
    /// success the dead letter is removed and `true` returned; on failure
    /// it stays with the new error and `false` is returned. The handler's
    /// own checkpoint never moves.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when no dead letter has that id,
    /// [`Error::UnknownHandler`] when this bus does not run its handler,
    /// or a store error.
    pub async fn retry(&self, id: u64) -> Result<bool> {
        delivery::retry(&self.core, id).await
    }

    /// Deletes the dead letters of one handler, or all of them.
    ///
    /// # Errors
    ///
    /// A store error.
    pub async fn purge(&self, handler: Option<&str>) -> Result<u64> {
        self.core
            .store
            .dead_letter_store()?
            .purge_dead_letters(handler)
            .await
    }
}
