//! Rewriting stored events in place on SQLite, for migrations.

use rusqlite::params;

use super::SqliteStore;
use crate::error::Result;
use crate::future::BoxFuture;
use crate::store::rewrite::{Rewritten, StoreRewrite};

impl StoreRewrite for SqliteStore {
    fn rewrite(&self, events: Vec<Rewritten>) -> BoxFuture<'_, Result<u64>> {
        self.write("rewriting events", move |conn| {
            let mut stmt =
                conn.prepare("UPDATE events SET data = ?1, event_version = ?2 WHERE seq = ?3")?;
            let mut found = 0;
            for event in events {
                let seq = i64::try_from(event.seq).unwrap_or(i64::MAX);
                found += stmt.execute(params![event.data.get(), event.version, seq])? as u64;
            }
            Ok(found)
        })
    }
}
