//! When a handler's writes are committed: the answer of a store that
//! gathers several handlings' transactions into one group commit.

use crate::error::Result;
use crate::future::BoxFuture;

/// When a handler's transaction is committed: already, or once a group
/// commit the store is still gathering is done.
///
/// The bus waits for it before it moves the handler's checkpoint past the
/// event, and handles the event again when it resolves to an error.
#[must_use = "a handling's writes count only once they are committed"]
pub struct Durability(Option<BoxFuture<'static, Result<()>>>);

impl Durability {
    /// Committed before the answer.
    pub fn committed() -> Self {
        Durability(None)
    }

    /// Committed when `commit` resolves to `Ok`; rolled back when it
    /// resolves to an error.
    pub fn pending(commit: impl Future<Output = Result<()>> + Send + 'static) -> Self {
        Durability(Some(Box::pin(commit)))
    }

    /// Waits until the writes are committed.
    ///
    /// # Errors
    ///
    /// The store's error when the commit that held them failed.
    pub async fn wait(self) -> Result<()> {
        match self.0 {
            None => Ok(()),
            Some(commit) => commit.await,
        }
    }
}

impl std::fmt::Debug for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Durability::Pending"
        } else {
            "Durability::Committed"
        })
    }
}
