//! Opening a store by URL, creating it or only if it exists.

use std::sync::Arc;

use super::core::{Create, Store};
use super::memory::MemoryStore;
#[cfg(feature = "nats")]
use super::nats::{NatsConfig, NatsStore};
#[cfg(feature = "redis")]
use super::redis::{RedisConfig, RedisStore};
#[cfg(feature = "sqlite")]
use super::sqlite::SqliteStore;
use super::url::StoreUrl;
use crate::error::{Error, Result};

/// Opens the store a URL names (`memory://...`, `sqlite://...`,
/// `nats://...` or `redis://...`), creating it when it does not exist: the
/// SQLite file, or the NATS stream and its dead-letter bucket (a Redis
/// stream is made by its first event or handler).
///
/// # Errors
///
/// [`Error::InvalidStoreUrl`](crate::Error::InvalidStoreUrl) naming what is
/// wrong with the URL, or the store's own error when it cannot be opened.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    let parsed = StoreUrl::parse(url)?;
    match parsed.scheme {
        "memory" => Ok(Arc::new(MemoryStore::from_url(&parsed)?)),
        "sqlite" => sqlite(&parsed, Create::IfMissing).await,
        "nats" => nats(&parsed, Create::IfMissing).await,
        "redis" | "rediss" => redis(&parsed, Create::IfMissing).await,
        other => Err(unknown_scheme(&parsed, other)),
    }
}

/// Opens the store a URL names only if it already exists, and creates
/// nothing: for tools that read a store, or change only what is in it,
/// where a mistyped URL must be an error rather than a new, empty store.
///
/// A `sqlite://` file must exist. A `nats://` stream must exist; its
/// dead-letter bucket is used when it exists, and while it does not there
/// are no dead letters (until one is added, which creates it, as
/// [`open`] would have). A `redis://` store's `PREFIX:events` stream must
/// exist. `memory://` is refused: such a store lives only
/// inside the process that opened it, so there is never one to find.
///
/// # Errors
///
/// [`Error::StoreNotFound`] naming what is missing and where;
/// [`Error::InvalidStoreUrl`] naming what is wrong with the URL; or the
/// store's own error when it cannot be opened.
pub async fn open_existing(url: &str) -> Result<Arc<dyn Store>> {
    let parsed = StoreUrl::parse(url)?;
    match parsed.scheme {
        "memory" => Err(Error::StoreNotFound {
            store: "memory",
            message: "a `memory://` store lives only inside the process that opened it, so \
                      there is none to open here; use a `sqlite://` or `nats://` store"
                .to_owned(),
        }),
        "sqlite" => sqlite(&parsed, Create::Never).await,
        "nats" => nats(&parsed, Create::Never).await,
        "redis" | "rediss" => redis(&parsed, Create::Never).await,
        other => Err(unknown_scheme(&parsed, other)),
    }
}

/// Refuses what [`open`] refuses before it opens anything (the scheme,
/// the options, the path or servers), and creates and connects nothing,
/// so that a fuzz target can run it millions of times.
#[cfg(all(feature = "sqlite", feature = "nats"))]
pub(crate) fn check_url(url: &str) -> Result<()> {
    let parsed = StoreUrl::parse(url)?;
    match parsed.scheme {
        "memory" => MemoryStore::from_url(&parsed).map(drop),
        "sqlite" => SqliteStore::read_url(&parsed).map(drop),
        "nats" => NatsConfig::from_parsed(&parsed).map(drop),
        "redis" | "rediss" => check_redis(&parsed),
        other => Err(unknown_scheme(&parsed, other)),
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite(url: &StoreUrl<'_>, create: Create) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(SqliteStore::from_url(url, create).await?))
}

#[cfg(not(feature = "sqlite"))]
async fn sqlite(url: &StoreUrl<'_>, _create: Create) -> Result<Arc<dyn Store>> {
    Err(missing_feature(url, "sqlite"))
}

#[cfg(feature = "nats")]
async fn nats(url: &StoreUrl<'_>, create: Create) -> Result<Arc<dyn Store>> {
    let config = NatsConfig::from_parsed(url)?;
    Ok(Arc::new(match create {
        Create::IfMissing => NatsStore::connect(config).await?,
        Create::Never => NatsStore::connect_existing(config).await?,
    }))
}

#[cfg(not(feature = "nats"))]
async fn nats(url: &StoreUrl<'_>, _create: Create) -> Result<Arc<dyn Store>> {
    Err(missing_feature(url, "nats"))
}

#[cfg(feature = "redis")]
async fn redis(url: &StoreUrl<'_>, create: Create) -> Result<Arc<dyn Store>> {
    let config = RedisConfig::from_parsed(url)?;
    Ok(Arc::new(match create {
        Create::IfMissing => RedisStore::connect(config).await?,
        Create::Never => RedisStore::connect_existing(config).await?,
    }))
}

#[cfg(not(feature = "redis"))]
async fn redis(url: &StoreUrl<'_>, _create: Create) -> Result<Arc<dyn Store>> {
    Err(missing_feature(url, "redis"))
}

#[cfg(all(feature = "sqlite", feature = "nats", feature = "redis"))]
fn check_redis(url: &StoreUrl<'_>) -> Result<()> {
    RedisConfig::from_parsed(url).map(drop)
}

/// Without the `redis` feature, the refusal that opening would give.
#[cfg(all(feature = "sqlite", feature = "nats", not(feature = "redis")))]
fn check_redis(url: &StoreUrl<'_>) -> Result<()> {
    Err(missing_feature(url, "redis"))
}

/// A store whose support this build leaves out.
#[cfg(not(all(feature = "sqlite", feature = "nats", feature = "redis")))]
fn missing_feature(url: &StoreUrl<'_>, feature: &str) -> Error {
    url.invalid(format!(
        "this eventbus is built without `{feature}://` stores; enable the `{feature}` \
         feature of eventbus in Cargo.toml"
    ))
}

fn unknown_scheme(url: &StoreUrl<'_>, scheme: &str) -> Error {
    url.invalid(format!(
        "unknown store `{scheme}://`; available: `memory://`, `sqlite://`, `nats://`, \
         `redis://`, `rediss://`"
    ))
}
