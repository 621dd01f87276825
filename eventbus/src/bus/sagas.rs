//! Saga instances on the bus: listing them, and counting the open ones
//! per saga for stats. The steps themselves are handlers (see
//! [`saga`](crate::saga)).

use std::collections::BTreeMap;

use super::handle::Bus;
use crate::error::Result;
use crate::saga::SagaInstance;

impl Bus {
    /// The instances of `saga` (or of every saga, with `None`), open ones
    /// only with `open_only`, sorted by saga and key.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`](crate::Error::Unsupported) for a store
    /// without saga instances, or a store error, or a record that does not
    /// read.
    pub async fn saga_instances(
        &self,
        saga: Option<&str>,
        open_only: bool,
    ) -> Result<Vec<SagaInstance>> {
        self.store()
            .sagas()?
            .saga_instances(saga, open_only)
            .await?
            .iter()
            .map(SagaInstance::from_stored)
            .collect()
    }

    /// How many instances of each saga are open.
    ///
    /// # Errors
    ///
    /// As [`Bus::saga_instances`].
    pub async fn open_sagas(&self) -> Result<BTreeMap<String, u64>> {
        let mut open = BTreeMap::new();
        for instance in self.store().sagas()?.saga_instances(None, true).await? {
            *open.entry(instance.saga).or_insert(0) += 1;
        }
        Ok(open)
    }
}
