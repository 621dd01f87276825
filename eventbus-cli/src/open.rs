//! Opening the store, and small questions every command asks of it.

use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use eventbus::store::{Order, Query, Store};
use futures_util::StreamExt;

use crate::error::usage;

/// Refuses `memory://`: a store that lives inside one process is empty for
/// every command, and what a command stores vanishes when it exits.
pub(crate) fn refuse_memory(url: &str) -> Result<()> {
    if url
        .split_once("://")
        .is_some_and(|(scheme, _)| scheme == "memory")
    {
        return Err(usage(
            "the CLI cannot use a `memory://` store: it lives inside one process, so each \
             command would see an empty store and anything it stores would vanish when it \
             exits; use `--store sqlite://FILE`, `--store nats://HOST:PORT` or \
             `--store redis://HOST:PORT`",
        ));
    }
    Ok(())
}

/// Opens a store that must already exist: read-only commands (and `clear`,
/// `replay --to-handler`, `dlq retry` and `dlq purge`) never create a file,
/// stream or bucket by accident.
pub(crate) async fn existing(url: &str) -> Result<Arc<dyn Store>> {
    match eventbus::store::open_existing(url).await {
        Ok(store) => Ok(store),
        Err(e @ eventbus::Error::StoreNotFound { .. }) => Err(anyhow!(
            "{e}; the store URL comes from --store or EVENTBUS_URL"
        )),
        Err(e) => Err(e.into()),
    }
}

/// Opens a store, creating it when it does not exist (`publish`, `import`).
pub(crate) async fn or_create(url: &str) -> Result<Arc<dyn Store>> {
    Ok(eventbus::store::open(url).await?)
}

/// The seq of the newest event matching `query` (0 when none does).
pub(crate) async fn newest_seq(store: &dyn Store, mut query: Query) -> Result<u64> {
    query.order = Order::Newest;
    query.limit = Some(1);
    match store.query(query).next().await {
        Some(env) => Ok(env.context("reading the newest event")?.seq()),
        None => Ok(0),
    }
}

/// Counts stored events that no longer decode: each is reported on stderr
/// and skipped, and the command fails at the end, after the others.
#[derive(Default)]
pub(crate) struct BadRows(u64);

impl BadRows {
    /// The envelope of a good item; `None` (after a warning) for a bad row;
    /// an error for anything else.
    pub(crate) fn check(
        &mut self,
        item: eventbus::Result<eventbus::RawEnvelope>,
    ) -> Result<Option<eventbus::RawEnvelope>> {
        match item {
            Ok(env) => Ok(Some(env)),
            Err(e @ eventbus::Error::BadRow { .. }) => {
                eprintln!("warning: {e}; skipped");
                self.0 += 1;
                Ok(None)
            }
            Err(e) => Err(anyhow::Error::new(e).context("reading the store")),
        }
    }

    /// Fails when any row was skipped.
    pub(crate) fn finish(self) -> Result<()> {
        match self.0 {
            0 => Ok(()),
            n => bail!("{n} stored event(s) could not be read; see the warnings above"),
        }
    }
}

/// Closes the store, so everything is flushed before the process exits.
pub(crate) async fn close(store: &dyn Store) -> Result<()> {
    store.close().await.context("closing the store")
}
