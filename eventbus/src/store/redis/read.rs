//! History on Redis: pages of `XRANGE` (oldest first) or `XREVRANGE`
//! (newest first), so a query over any amount of history holds one page
//! at a time.
//!
//! The seq and time bounds become the range's ends (entry ids are
//! milliseconds of the server's clock, so time bounds get a minute of
//! slack for publishers whose clocks differ, and the exact filter is
//! applied here); topic patterns and the other filters are applied here
//! with our matcher.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::entry::{self, Entry};
use super::{Shared, connection, redis_error};
use crate::envelope::RawEnvelope;
use crate::error::{Error, Result};
use crate::future::BoxStream;
use crate::store::admin::TopicSummary;
use crate::store::query::{Order, Query};
use crate::topic::Pattern;

/// Entries read per round trip.
const PAGE: usize = 256;
/// How far a publisher's clock may be from the server's.
const CLOCK_SLACK_MS: i64 = 60_000;
/// The longest one `XREAD BLOCK` waits: well within the connection's
/// response timeout.
const MAX_BLOCK: std::time::Duration = std::time::Duration::from_secs(5);

/// Inclusive seq bounds of the entries a query can match.
fn bounds(q: &Query) -> Option<(u64, u64)> {
    let mut lo = q.after_seq.map_or(0, |s| s.saturating_add(1));
    let mut hi = q.before_seq.map_or(u64::MAX, |s| s.saturating_sub(1));
    if let Some(since) = q.since {
        let ms = (since.timestamp_millis() - CLOCK_SLACK_MS).max(0) as u64;
        lo = lo.max(entry::first_seq_at(ms));
    }
    if let Some(until) = q.until {
        let ms = (until.timestamp_millis() + CLOCK_SLACK_MS).max(0) as u64;
        hi = hi.min(entry::first_seq_at(ms.saturating_add(1)).saturating_sub(1));
    }
    (lo <= hi && q.before_seq != Some(0)).then_some((lo, hi))
}

struct Reader {
    shared: Arc<Shared>,
    query: Query,
    /// Inclusive seq bounds still to read.
    lo: u64,
    hi: u64,
    page: VecDeque<Entry>,
    /// The last page was short: nothing is left after `page`.
    last: bool,
    sent: usize,
}

/// Streams the events matching `query`.
pub(super) fn query(shared: Arc<Shared>, query: Query) -> BoxStream<'static, Result<RawEnvelope>> {
    let Some((lo, hi)) = bounds(&query).filter(|_| query.limit != Some(0)) else {
        return Box::pin(futures_util::stream::empty());
    };
    let reader = Reader {
        shared,
        query,
        lo,
        hi,
        page: VecDeque::new(),
        last: false,
        sent: 0,
    };
    Box::pin(futures_util::stream::unfold(reader, |mut r| async move {
        let item = r.next().await?;
        Some((item, r))
    }))
}

impl Reader {
    async fn next(&mut self) -> Option<Result<RawEnvelope>> {
        if self.query.limit.is_some_and(|limit| self.sent >= limit) {
            return None;
        }
        loop {
            let Some(entry) = self.page.pop_front() else {
                if self.last {
                    return None;
                }
                if let Err(e) = self.fill().await {
                    self.last = true;
                    return Some(Err(e));
                }
                continue;
            };
            let item = match entry::decode(&self.shared.config.prefix, &entry) {
                Ok(env) if !self.query.matches(&env) => continue,
                Ok(env) if self.query.replay => Ok(env.as_replay()),
                Ok(env) => Ok(env),
                Err(reason) => Err(Error::BadRow {
                    seq: entry::seq_of(&entry.id).unwrap_or(0),
                    reason,
                }),
            };
            self.sent += 1;
            return Some(item);
        }
    }

    /// Reads the next page and moves the bounds past it.
    async fn fill(&mut self) -> Result<()> {
        let s = &self.shared;
        let (lo, hi) = (entry::id_of(self.lo), entry::id_of(self.hi));
        let cmd = match self.query.order {
            Order::Oldest => redis::cmd("XRANGE")
                .arg(&s.stream)
                .arg(&lo)
                .arg(&hi)
                .arg("COUNT")
                .arg(PAGE)
                .clone(),
            Order::Newest => redis::cmd("XREVRANGE")
                .arg(&s.stream)
                .arg(&hi)
                .arg(&lo)
                .arg("COUNT")
                .arg(PAGE)
                .clone(),
        };
        let reply: redis::Value = cmd
            .query_async(&mut s.conn.clone())
            .await
            .map_err(redis_error("reading history"))?;
        let page = entry::entries(reply).map_err(|e| Error::store("redis", e))?;
        self.last = page.len() < PAGE;
        if let Some(end) = page.last() {
            // An id beyond a seq never comes from Redis itself; reading on
            // from it would need ids, so such a page is the last.
            match (entry::seq_of(&end.id), self.query.order) {
                (Ok(seq), Order::Oldest) if seq < self.hi => self.lo = seq + 1,
                (Ok(seq), Order::Newest) if seq > self.lo => self.hi = seq - 1,
                _ => self.last = true,
            }
        }
        self.page = page.into();
        Ok(())
    }
}

/// The event stored under entry `id`, if it is still there.
pub(super) async fn entry_at(shared: &Shared, id: &str) -> Result<Option<RawEnvelope>> {
    let reply: redis::Value = redis::cmd("XRANGE")
        .arg(&shared.stream)
        .arg(id)
        .arg(id)
        .query_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("reading the first publish of a repeated event"))?;
    let entries = entry::entries(reply).map_err(|e| Error::store("redis", e))?;
    entries
        .first()
        .map(|e| {
            entry::decode(&shared.config.prefix, e).map_err(|reason| Error::BadRow {
                seq: entry::seq_of(id).unwrap_or(0),
                reason,
            })
        })
        .transpose()
}

/// Calls `each` with every page of the whole stream, oldest first, and
/// deletes the entries whose ids it returns; answers how many it deleted.
async fn scan(shared: &Shared, mut each: impl FnMut(&[Entry]) -> Vec<String>) -> Result<u64> {
    let mut conn = shared.conn.clone();
    let mut start = "-".to_owned();
    let mut deleted = 0;
    loop {
        let reply: redis::Value = redis::cmd("XRANGE")
            .arg(&shared.stream)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(PAGE * 4)
            .query_async(&mut conn)
            .await
            .map_err(redis_error("reading the stream"))?;
        let page = entry::entries(reply).map_err(|e| Error::store("redis", e))?;
        let doomed = each(&page);
        if !doomed.is_empty() {
            let n: u64 = redis::cmd("XDEL")
                .arg(&shared.stream)
                .arg(&doomed)
                .query_async(&mut conn)
                .await
                .map_err(redis_error("deleting events"))?;
            deleted += n;
        }
        match page.last() {
            // Deleting behind the cursor leaves the rest in place.
            Some(last) if page.len() == PAGE * 4 => start = format!("({}", last.id),
            _ => return Ok(deleted),
        }
    }
}

/// Each topic with its count and the times of its first and last events
/// (by the entry ids, the server's clock, for entries without a readable
/// `time`).
pub(super) async fn topics(shared: &Shared) -> Result<Vec<TopicSummary>> {
    let mut summaries: BTreeMap<String, TopicSummary> = BTreeMap::new();
    scan(shared, |page| {
        for e in page {
            let Some(topic) = e.topic() else { continue };
            let time = entry::decode(&shared.config.prefix, e).map_or_else(
                |_| {
                    let ms = entry::seq_of(&e.id).map_or(0, entry::millis_of);
                    chrono::DateTime::from_timestamp_millis(ms as i64).unwrap_or_default()
                },
                |env| env.time(),
            );
            summaries
                .entry(topic.to_owned())
                .and_modify(|s| {
                    s.count += 1;
                    s.first = s.first.min(time);
                    s.last = s.last.max(time);
                })
                .or_insert_with(|| TopicSummary {
                    topic: topic.to_owned(),
                    count: 1,
                    first: time,
                    last: time,
                });
        }
        Vec::new()
    })
    .await?;
    Ok(summaries.into_values().collect())
}

/// Deletes the events whose topic matches; consumer groups (the handlers'
/// positions) stay. Clearing everything also deletes the entity streams'
/// indexes and snapshots, which would otherwise name events that are gone.
pub(super) async fn clear(shared: &Shared, pattern: &Pattern) -> Result<u64> {
    let mut conn = shared.conn.clone();
    if pattern.as_str() == ">" {
        // Trimming, unlike deleting the key, keeps the consumer groups.
        let trimmed = redis::cmd("XTRIM")
            .arg(&shared.stream)
            .arg("MAXLEN")
            .arg(0)
            .query_async(&mut conn)
            .await
            .map_err(redis_error("clearing the stream"))?;
        // The entity indexes name entries no longer there; the duplicate
        // keys would answer a repeat with an event no longer there.
        unlink(shared, &["entity:*", "snapshot:*", "seen:*"]).await?;
        return Ok(trimmed);
    }
    scan(shared, |page| {
        page.iter()
            .filter(|e| e.topic().is_some_and(|t| pattern.matches(t)))
            .map(|e| e.id.clone())
            .collect()
    })
    .await
}

/// Deletes every key under the prefix matching one of `parts` (`SCAN`
/// patterns after `PREFIX:`), a page at a time.
async fn unlink(shared: &Shared, parts: &[&str]) -> Result<()> {
    let mut conn = shared.conn.clone();
    for part in parts {
        let pattern = format!("{}:{part}", glob_escape(&shared.config.prefix));
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(redis_error("looking for keys to clear"))?;
            if !keys.is_empty() {
                redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async::<u64>(&mut conn)
                    .await
                    .map_err(redis_error("clearing keys"))?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(())
}

/// `text` matched literally by a `SCAN MATCH` pattern.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Waits with `XREAD BLOCK` until an entry after seq `after` (or after the
/// newest, with `None`) is added, for at most `at_most`; answers the
/// newest seq then. A follower filtering by topic thus sleeps through
/// nothing new, and wakes as soon as anything is added.
pub(super) async fn wait_for_more(
    shared: &Shared,
    after: Option<u64>,
    at_most: std::time::Duration,
) -> Option<u64> {
    let block = at_most.clamp(std::time::Duration::from_millis(1), MAX_BLOCK);
    match newest_after(shared, after, block).await {
        Ok(newest) => newest,
        Err(e) => {
            // A server that is down answers at once: wait as a poll would.
            tracing::debug!(error = %e, "waiting for new events failed; polling instead");
            tokio::time::sleep(block).await;
            None
        }
    }
}

async fn newest_after(
    shared: &Shared,
    after: Option<u64>,
    block: std::time::Duration,
) -> Result<Option<u64>> {
    let mut conn = shared
        .blocking
        .get_or_try_init(|| connection(&shared.client, &shared.config))
        .await?
        .clone();
    let start = after.map_or_else(|| "$".to_owned(), entry::id_of);
    let added: redis::Value = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(1)
        .arg("BLOCK")
        .arg(block.as_millis() as u64)
        .arg("STREAMS")
        .arg(&shared.stream)
        .arg(start)
        .query_async(&mut conn)
        .await
        .map_err(redis_error("waiting for new events"))?;
    if matches!(added, redis::Value::Nil) {
        return Ok(None);
    }
    let newest: redis::Value = redis::cmd("XREVRANGE")
        .arg(&shared.stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut shared.conn.clone())
        .await
        .map_err(redis_error("reading the newest event"))?;
    let entries = entry::entries(newest).map_err(|e| Error::store("redis", e))?;
    Ok(entries.first().and_then(|e| entry::seq_of(&e.id).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_patterns_match_the_prefix_literally() {
        assert_eq!(glob_escape("plain_prefix"), "plain_prefix");
        assert_eq!(glob_escape(r"a*b?[c]\d"), r"a\*b\?\[c\]\\d");
    }
}
