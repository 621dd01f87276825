//! Scheduled events on the bus: the list of what waits and cancelling;
//! scheduling itself is [`Publish::deliver_at`](crate::Publish::deliver_at).

use super::handle::Bus;
use crate::error::Result;
use crate::store::Scheduled;

impl Bus {
    /// Every event scheduled and not yet due, soonest first, in this
    /// handle's scope and below.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`](crate::Error::Unsupported) for a store
    /// without schedules, or a store error.
    pub async fn scheduled(&self) -> Result<Vec<Scheduled>> {
        let all = self.store().schedules()?.scheduled().await?;
        Ok(match self.current_scope() {
            None => all,
            Some(scope) => all
                .into_iter()
                .filter(|s| scope.contains(s.envelope.scope()))
                .collect(),
        })
    }

    /// Cancels the scheduled event with this id (the id a scheduled
    /// publish returned); false when none waits under it: never
    /// scheduled, cancelled before, or already published.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`](crate::Error::Unsupported) for a store
    /// without schedules, or a store error.
    pub async fn cancel_scheduled(&self, id: &str) -> Result<bool> {
        self.store().schedules()?.cancel(id).await
    }
}
