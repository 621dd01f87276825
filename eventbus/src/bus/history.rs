//! `bus.history()`: queries over stored events.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use crate::envelope::{Envelope, RawEnvelope, Scope};
use crate::error::{Error, Result};
use crate::event::{CodecError, Event};
use crate::store::{BoxStream, Order, Query, Store};
use crate::topic::Pattern;

/// A history query: add filters, then [`fetch`](HistoryQuery::fetch) or
/// [`stream`](HistoryQuery::stream). A malformed pattern is reported there.
///
/// Events come in seq order, the order the store took them in (oldest
/// first unless [`newest_first`](HistoryQuery::newest_first)). Within one
/// publisher that is publish order; the `time` of events from different
/// processes, set by their clocks, may not increase with it.
///
/// A stored row that cannot be read back (damaged by hand, written by a
/// newer version) fails [`fetch`](HistoryQuery::fetch) with
/// [`Error::BadRow`] naming its seq and is an `Err` item of
/// [`stream`](HistoryQuery::stream); with
/// [`skip_unreadable`](HistoryQuery::skip_unreadable) both leave it out
/// and log it instead.
///
/// # Examples
///
/// ```
/// # use eventbus::prelude::*;
/// # async fn run(bus: Bus) -> eventbus::Result<()> {
/// let t0 = chrono::Utc::now() - chrono::Duration::hours(1);
/// let recent = bus.history().topic("order.*").since(t0).limit(100).fetch().await?;
/// for env in recent {
///     println!("{} {} {}", env.seq(), env.topic(), env.data_json()?);
/// }
/// # Ok(()) }
/// ```
#[must_use = "a query does nothing until fetched or streamed"]
pub struct HistoryQuery {
    store: Arc<dyn Store>,
    query: Query,
    skip_unreadable: bool,
    error: Option<Error>,
}

impl std::fmt::Debug for HistoryQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryQuery")
            .field("store", &self.store.describe())
            .field("query", &self.query)
            .field("skip_unreadable", &self.skip_unreadable)
            .field("error", &self.error)
            .finish()
    }
}

impl HistoryQuery {
    pub(crate) fn new(store: Arc<dyn Store>, scope: Option<Scope>) -> Self {
        HistoryQuery {
            store,
            query: Query {
                scope,
                ..Query::default()
            },
            skip_unreadable: false,
            error: None,
        }
    }

    /// Only topics matching `pattern` (`*` one token, `>` the rest).
    pub fn topic(self, pattern: impl AsRef<str>) -> Self {
        self.topics([pattern])
    }

    /// Only topics matching any of `patterns`, such as
    /// `["order.*", "billing.>"]`; replaces an earlier
    /// [`topic`](HistoryQuery::topic).
    pub fn topics<I, P>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<str>,
    {
        let mut parsed = Vec::new();
        for pattern in patterns {
            match Pattern::new(pattern.as_ref().to_owned()) {
                Ok(p) => parsed.push(p),
                Err(e) => {
                    self.error.get_or_insert(e.into());
                }
            }
        }
        self.query.patterns = parsed;
        self
    }

    /// Leaves out stored rows that cannot be read back, logging each with
    /// its seq, instead of failing [`fetch`](HistoryQuery::fetch) or
    /// yielding them as errors from [`stream`](HistoryQuery::stream).
    pub fn skip_unreadable(mut self) -> Self {
        self.skip_unreadable = true;
        self
    }

    /// Only events from `source`.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.query.source = Some(source.into());
        self
    }

    /// Only events with this CloudEvents `subject` (such as an entity id).
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.query.subject = Some(subject.into());
        self
    }

    /// Only events published at or after `time`.
    pub fn since(mut self, time: DateTime<Utc>) -> Self {
        self.query.since = Some(time);
        self
    }

    /// Only events published before `time`.
    pub fn until(mut self, time: DateTime<Utc>) -> Self {
        self.query.until = Some(time);
        self
    }

    /// Only events with this correlation id.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.query.correlation_id = Some(id.into());
        self
    }

    /// Only events after this seq.
    pub fn after_seq(mut self, seq: u64) -> Self {
        self.query.after_seq = Some(seq);
        self
    }

    /// Only events before this seq.
    pub fn before_seq(mut self, seq: u64) -> Self {
        self.query.before_seq = Some(seq);
        self
    }

    /// At most `n` events.
    pub fn limit(mut self, n: usize) -> Self {
        self.query.limit = Some(n);
        self
    }

    /// Newest first instead of oldest first.
    pub fn newest_first(mut self) -> Self {
        self.query.order = Order::Newest;
        self
    }

    /// Marks what the query returns as replayed.
    pub(crate) fn replayed(mut self) -> Self {
        self.query.replay = true;
        self
    }

    /// The query as built, for stores and tools.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// Streams the matching events; memory stays constant whatever the count.
    ///
    /// # Errors
    ///
    /// The stream yields the pattern error first, if any, then store errors.
    pub fn stream(self) -> BoxStream<'static, Result<RawEnvelope>> {
        match self.error {
            Some(e) => Box::pin(futures_util::stream::once(std::future::ready(Err(e)))),
            None if self.skip_unreadable => {
                Box::pin(skipping_unreadable(self.store.query(self.query)))
            }
            None => self.store.query(self.query),
        }
    }

    /// Streams the matching events, then keeps streaming new ones as they
    /// are stored, checking every `poll` (or, on a store that can wait for
    /// new events, such as `redis://`, as soon as one is stored), until
    /// the stream is dropped. Made
    /// for following a store that other processes write (a tail); within
    /// one process a [`subscribe`](crate::Bus::subscribe) stream is cheaper.
    /// Events come oldest first; the limit counts all of them.
    pub fn follow(self, poll: Duration) -> BoxStream<'static, Result<RawEnvelope>> {
        if let Some(e) = self.error {
            return Box::pin(futures_util::stream::once(std::future::ready(Err(e))));
        }
        struct Follow {
            store: Arc<dyn Store>,
            query: Query,
            current: Option<BoxStream<'static, Result<RawEnvelope>>>,
            remaining: usize,
            poll: Duration,
            /// The newest seq the store reported while waiting, matching
            /// or not, so the next wait is for what comes after it.
            newest: Option<u64>,
        }
        let mut query = self.query;
        query.order = Order::Oldest;
        let skip_unreadable = self.skip_unreadable;
        let start = Follow {
            remaining: query.limit.take().unwrap_or(usize::MAX),
            store: self.store,
            query,
            current: None,
            poll,
            newest: None,
        };
        let events = Box::pin(futures_util::stream::unfold(start, |mut f| async move {
            loop {
                if f.remaining == 0 {
                    return None;
                }
                let Some(current) = f.current.as_mut() else {
                    f.current = Some(f.store.query(f.query.clone()));
                    continue;
                };
                match current.next().await {
                    Some(item) => {
                        // A bad row is reported once, not again on every poll.
                        match &item {
                            Ok(env) => f.query.after_seq = Some(env.seq()),
                            Err(Error::BadRow { seq, .. }) => f.query.after_seq = Some(*seq),
                            Err(_) => {}
                        }
                        f.remaining -= 1;
                        return Some((item, f));
                    }
                    None => {
                        f.current = None;
                        let after = f.newest.max(f.query.after_seq);
                        if let Some(seq) = f.store.wait_for_more(after, f.poll).await {
                            f.newest = Some(seq);
                        }
                    }
                }
            }
        }));
        if skip_unreadable {
            Box::pin(skipping_unreadable(events))
        } else {
            events
        }
    }

    /// Collects the matching events.
    ///
    /// # Errors
    ///
    /// A malformed pattern, a store error, or [`Error::BadRow`] for the
    /// first row that cannot be read back (unless
    /// [`skip_unreadable`](HistoryQuery::skip_unreadable)).
    pub async fn fetch(self) -> Result<Vec<RawEnvelope>> {
        let mut stream = self.stream();
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            out.push(item?);
        }
        Ok(out)
    }

    /// Collects the matching events decoded as `E`; an event that does not
    /// decode is an `Err` item naming its seq, and the others still come.
    ///
    /// # Errors
    ///
    /// A malformed pattern, or a store error.
    pub async fn fetch_as<E: Event>(self) -> Result<Vec<Result<Envelope<E>, (u64, CodecError)>>> {
        Ok(self
            .fetch()
            .await?
            .iter()
            .map(|raw| raw.decode::<E>().map_err(|e| (raw.seq(), e)))
            .collect())
    }
}

/// The items of `events` without the rows that could not be read back,
/// each logged once.
fn skipping_unreadable(
    events: BoxStream<'static, Result<RawEnvelope>>,
) -> impl futures_util::Stream<Item = Result<RawEnvelope>> + Send + 'static {
    events.filter(|item| {
        let keep = match item {
            Err(Error::BadRow { seq, reason }) => {
                tracing::warn!(seq, %reason, "history skips a stored event it cannot read");
                false
            }
            _ => true,
        };
        std::future::ready(keep)
    })
}
