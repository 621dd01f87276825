//! Opening the store, and small questions every command asks of it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use eventbus::store::{Order, Query, SqliteStore, Store};
use futures_util::StreamExt;

/// Opens a store that must already exist: read-only commands (and `clear`
/// or `replay --to-handler`) never create one by accident.
pub(crate) async fn existing(url: &str) -> Result<Arc<dyn Store>> {
    if let Some(path) = sqlite_path(url)
        && !path.exists()
    {
        bail!(
            "store file {} does not exist (check --store or EVENTBUS_URL)",
            path.display()
        );
    }
    or_create(url).await
}

/// Opens a store, creating it when it does not exist (`publish`, `import`).
pub(crate) async fn or_create(url: &str) -> Result<Arc<dyn Store>> {
    Ok(eventbus::store::open(url).await?)
}

/// The file a `sqlite://PATH?options` URL names, if it names one, read
/// as the store reads it (percent-decoded).
pub(crate) fn sqlite_path(url: &str) -> Option<PathBuf> {
    SqliteStore::path_of(url).ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_drop_the_options_and_are_decoded() {
        assert_eq!(sqlite_path("sqlite://a.db"), Some("a.db".into()));
        assert_eq!(
            sqlite_path("sqlite:///tmp/a.db?synchronous=normal"),
            Some("/tmp/a.db".into())
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/my%20events.db"),
            Some("/tmp/my events.db".into())
        );
        assert_eq!(sqlite_path("sqlite://"), None);
        assert_eq!(sqlite_path("memory://"), None);
    }
}
