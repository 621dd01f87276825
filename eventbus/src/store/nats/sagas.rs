//! Saga instances on NATS: the key-value bucket `<STREAM>_sagas`, one key
//! per instance (`<saga>.<key>`, tokens escaped as entity subjects are).
//! A value holds the instance's own version; a save checks it, then
//! replaces the value only at the revision it read (the server's
//! expected-last-subject-sequence check), so two processes saving one
//! instance at once cannot both succeed.

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

use super::bucket::LazyBucket;
use super::config::NatsConfig;
use super::entities::token;
use super::nats_error;
use crate::error::{Error, Result};
use crate::store::sagas::{self, StoredSaga};

pub(super) struct Sagas {
    bucket: LazyBucket,
}

#[derive(Serialize, Deserialize)]
struct Value {
    saga: String,
    key: String,
    version: u64,
    open: bool,
    record: String,
}

impl Sagas {
    pub(super) fn new(js: &jetstream::Context, config: &NatsConfig) -> Self {
        Sagas {
            bucket: LazyBucket::new(
                js,
                format!("{}_sagas", config.stream),
                format!("eventbus saga instances of stream {}", config.stream),
                config.limits.replicas.unwrap_or(1),
            ),
        }
    }

    fn kv_key(saga: &str, key: &str) -> String {
        format!("{}.{}", token(saga), token(key))
    }

    /// The key's revision (0 when it never had a value) and its value,
    /// unless it was removed: a removed key keeps its revision, which the
    /// next save must name.
    async fn entry(kv: &kv::Store, kv_key: &str) -> Result<(u64, Option<Value>)> {
        let Some(entry) = kv
            .entry(kv_key)
            .await
            .map_err(nats_error("reading a saga instance"))?
        else {
            return Ok((0, None));
        };
        if entry.operation != kv::Operation::Put {
            return Ok((entry.revision, None));
        }
        let value = serde_json::from_slice(&entry.value).map_err(|e| {
            Error::store_source("nats", format!("saga instance `{kv_key}` does not read"), e)
        })?;
        Ok((entry.revision, Some(value)))
    }

    pub(super) async fn load(&self, saga: &str, key: &str) -> Result<Option<StoredSaga>> {
        let Some(kv) = self.bucket.existing().await? else {
            return Ok(None);
        };
        Ok(Self::entry(kv, &Self::kv_key(saga, key))
            .await?
            .1
            .map(Value::into_stored))
    }

    pub(super) async fn save(
        &self,
        saga: &str,
        key: &str,
        expected: u64,
        open: bool,
        record: String,
    ) -> Result<u64> {
        let kv = self.bucket.created().await?;
        let kv_key = Self::kv_key(saga, key);
        let (revision, value) = Self::entry(kv, &kv_key).await?;
        let actual = value.map_or(0, |v| v.version);
        if actual != expected {
            return Err(sagas::conflict(saga, key, expected, actual));
        }
        let value = Value {
            saga: saga.to_owned(),
            key: key.to_owned(),
            version: expected + 1,
            open,
            record,
        };
        let bytes = serde_json::to_vec(&value)
            .map_err(|e| Error::store_source("nats", "encoding a saga instance failed", e))?;
        match kv.update(&kv_key, bytes.into(), revision).await {
            Ok(_) => Ok(expected + 1),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                let actual = Self::entry(kv, &kv_key).await?.1.map_or(0, |v| v.version);
                Err(sagas::conflict(saga, key, expected, actual))
            }
            Err(e) => Err(nats_error("saving a saga instance")(e)),
        }
    }

    pub(super) async fn list(
        &self,
        saga: Option<&str>,
        open_only: bool,
    ) -> Result<Vec<StoredSaga>> {
        let Some(kv) = self.bucket.existing().await? else {
            return Ok(Vec::new());
        };
        let prefix = saga.map(|s| format!("{}.", token(s)));
        let mut keys = kv
            .keys()
            .await
            .map_err(nats_error("listing saga instances"))?;
        let mut found = Vec::new();
        while let Some(kv_key) = keys.next().await {
            let kv_key = kv_key.map_err(nats_error("listing saga instances"))?;
            if prefix
                .as_ref()
                .is_some_and(|p| !kv_key.starts_with(p.as_str()))
            {
                continue;
            }
            if let (_, Some(value)) = Self::entry(kv, &kv_key).await?
                && (value.open || !open_only)
            {
                found.push(value.into_stored());
            }
        }
        found.sort_by(|a, b| (&a.saga, &a.key).cmp(&(&b.saga, &b.key)));
        Ok(found)
    }

    /// Removes every instance (clearing the whole bus).
    pub(super) async fn purge(&self) -> Result<()> {
        self.bucket.purge_all().await
    }
}

impl Value {
    fn into_stored(self) -> StoredSaga {
        StoredSaga {
            saga: self.saga,
            key: self.key,
            version: self.version,
            open: self.open,
            record: self.record,
        }
    }
}
