//! A key-value bucket beside the bus stream that is opened when first
//! needed and created only when something is written to it, so read-only
//! tools create nothing.

use async_nats::jetstream::{self, kv};
use tokio::sync::OnceCell;

use super::dead_letters::{is_missing, open_or_create_bucket};
use super::nats_error;
use crate::error::Result;

pub(super) struct LazyBucket {
    js: jetstream::Context,
    name: String,
    description: String,
    replicas: usize,
    open: OnceCell<kv::Store>,
}

impl LazyBucket {
    /// The bucket `name`, described as `description` when it is created.
    pub(super) fn new(
        js: &jetstream::Context,
        name: String,
        description: String,
        replicas: usize,
    ) -> Self {
        LazyBucket {
            js: js.clone(),
            name,
            description,
            replicas,
            open: OnceCell::new(),
        }
    }

    /// The bucket, if it exists.
    pub(super) async fn existing(&self) -> Result<Option<&kv::Store>> {
        if let Some(open) = self.open.get() {
            return Ok(Some(open));
        }
        match self.js.get_key_value(&self.name).await {
            Ok(kv) => Ok(Some(self.open.get_or_init(|| async { kv }).await)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(nats_error("opening a key-value bucket")(e)),
        }
    }

    /// The bucket, created if it is missing.
    pub(super) async fn created(&self) -> Result<&kv::Store> {
        if let Some(open) = self.existing().await? {
            return Ok(open);
        }
        let kv = open_or_create_bucket(
            &self.js,
            &self.name,
            self.description.clone(),
            self.replicas,
        )
        .await?;
        Ok(self.open.get_or_init(|| async { kv }).await)
    }

    /// Removes every key, if the bucket exists.
    pub(super) async fn purge_all(&self) -> Result<()> {
        use futures_util::StreamExt as _;
        let Some(kv) = self.existing().await? else {
            return Ok(());
        };
        let mut keys = kv.keys().await.map_err(nats_error("listing keys"))?;
        while let Some(key) = keys.next().await {
            let key = key.map_err(nats_error("listing keys"))?;
            kv.purge(&key).await.map_err(nats_error("removing a key"))?;
        }
        Ok(())
    }
}
