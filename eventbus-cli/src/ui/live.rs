//! The live page: events as they are stored, over Server-Sent Events.
//!
//! One task per console follows the store (as `eventbus tail` does) and
//! hands each event to a broadcast channel; every browser reads its own
//! receiver. Sending never waits, so a browser that falls behind only
//! loses events from its own receiver, and is told how many ("skipped N").

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Query as Params, State};
use axum::response::Html;
use axum::response::sse::{Event, KeepAlive, Sse};
use eventbus::RawEnvelope;
use eventbus::store::Query;
use eventbus::topic::Pattern;
use futures_util::{Stream, StreamExt};
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};

use super::Shared;
use super::html::{self, UiError, escape};
use crate::open;

/// Events a browser may fall behind by before it skips some: two reads'
/// worth at 10,000 events/s, so a browser that keeps up on average never
/// skips.
const BACKLOG: usize = 4096;

/// Events handed on between yields to the browsers' tasks, which share
/// this process's one thread with the follower.
const YIELD_EVERY: usize = 64;

/// How long the follower waits for new events between reads, on a store
/// that cannot wake it.
const POLL: Duration = Duration::from_millis(200);

/// The most events read from the store at once.
const BATCH: usize = 1000;

/// The most characters of data sent to the browser per event; the event
/// page shows all.
const DATA_CHARS: usize = 300;

/// An event as the browser gets it.
#[derive(Debug)]
pub(crate) struct LiveEvent {
    topic: String,
    json: String,
}

impl LiveEvent {
    fn new(env: &RawEnvelope) -> Self {
        let data = match env.data_json() {
            Ok(raw) => crate::output::shorten(raw.get(), DATA_CHARS),
            Err(e) => format!("<{e}>"),
        };
        let json = json!({
            "seq": env.seq(),
            "time": html::time(env.time()),
            "topic": env.topic(),
            "source": env.source(),
            "subject": env.subject(),
            "correlationid": env.correlation_id(),
            "data": data,
        });
        LiveEvent {
            topic: env.topic().to_owned(),
            json: json.to_string(),
        }
    }
}

/// The console's side of the live channel.
pub(crate) struct Feed {
    sender: broadcast::Sender<Arc<LiveEvent>>,
    skipped: AtomicU64,
}

impl Feed {
    pub(crate) fn new() -> Self {
        Feed {
            sender: broadcast::channel(BACKLOG).0,
            skipped: AtomicU64::new(0),
        }
    }

    /// Events browsers skipped because they fell behind, since start.
    pub(crate) fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Browsers following now.
    pub(crate) fn clients(&self) -> usize {
        self.sender.receiver_count()
    }
}

/// Follows the store from its newest event on, for as long as the
/// console runs; while no browser follows, it only notes the newest seq.
pub(crate) async fn follow(console: Shared) {
    let store = &*console.store;
    let mut after = open::newest_seq(store, Query::default())
        .await
        .unwrap_or_else(|e| {
            eprintln!("warning: live events: reading the newest seq: {e:#}");
            0
        });
    let mut newest = None;
    loop {
        if console.live.clients() == 0 {
            // Nobody is watching: keep only the position, so a browser
            // that comes starts from about now, and read nothing else.
            match open::newest_seq(store, Query::default()).await {
                Ok(seq) => after = after.max(seq),
                Err(e) => eprintln!("warning: live events: reading the newest seq: {e:#}"),
            }
            tokio::time::sleep(POLL).await;
            continue;
        }
        let mut query = Query::default();
        query.after_seq = Some(after);
        query.limit = Some(BATCH);
        let mut events = store.query(query);
        let mut read = 0;
        while let Some(item) = events.next().await {
            read += 1;
            if read % YIELD_EVERY == 0 {
                tokio::task::yield_now().await;
            }
            match item {
                Ok(env) => {
                    after = env.seq();
                    // Sending never waits; with no browser left it fails,
                    // which is fine.
                    let _ = console.live.sender.send(Arc::new(LiveEvent::new(&env)));
                }
                Err(eventbus::Error::BadRow { seq, .. }) => after = after.max(seq),
                Err(e) => {
                    eprintln!("warning: live events: reading the store: {e}");
                    break;
                }
            }
        }
        drop(events);
        if read < BATCH {
            newest = store
                .wait_for_more(newest.max(Some(after)), POLL)
                .await
                .or(newest);
        }
    }
}

/// The pattern in `?pattern=`, checked.
fn pattern(params: &HashMap<String, String>) -> Result<Option<Pattern>, UiError> {
    html::given(params.get("pattern"))
        .map(|text| {
            Pattern::new(text.to_owned())
                .map_err(|e| UiError::bad_request(format!("`{text}` is not a topic pattern: {e}")))
        })
        .transpose()
}

pub(crate) async fn page(
    State(console): State<Shared>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Html<String>, UiError> {
    let pattern = pattern(&params)?;
    let text = pattern.as_ref().map_or("", Pattern::as_str);
    let source = match &pattern {
        Some(p) => format!("/live/events?pattern={}", html::url_part(p.as_str())),
        None => "/live/events".to_owned(),
    };
    let body = format!(
        r#"<form class="filters" method="get" action="/">
<label>Pattern <input name="pattern" value="{text}" placeholder="order.>"></label>
<button type="submit">Follow</button>
<button type="button" id="pause">Pause</button>
</form>
<p id="status" class="status">connecting…</p>
<table class="events"><thead><tr><th>Seq</th><th>Time</th><th>Topic</th><th>Source</th><th>Correlation</th><th>Data</th></tr></thead>
<tbody id="live-rows" data-source="{source}"></tbody></table>"#,
        text = escape(text),
        source = escape(&source),
    );
    Ok(html::page_with_script(
        &console,
        "Live",
        &body,
        "/assets/live.js",
    ))
}

/// What a browser is sent next.
#[derive(Debug)]
enum Message {
    Event(Arc<LiveEvent>),
    /// It fell this many events behind, which it will never see.
    Skipped(u64),
}

/// The next message for a browser following `pattern`; `None` once the
/// feed ends.
async fn next_message(
    receiver: &mut broadcast::Receiver<Arc<LiveEvent>>,
    pattern: Option<&Pattern>,
) -> Option<Message> {
    loop {
        match receiver.recv().await {
            Ok(ev) if pattern.is_none_or(|p| p.matches(&ev.topic)) => {
                return Some(Message::Event(ev));
            }
            Ok(_) => {}
            Err(RecvError::Lagged(n)) => return Some(Message::Skipped(n)),
            Err(RecvError::Closed) => return None,
        }
    }
}

pub(crate) async fn stream(
    State(console): State<Shared>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, UiError> {
    let pattern = pattern(&params)?;
    let receiver = console.live.sender.subscribe();
    let mut stopping = console.stopping.subscribe();
    let events = futures_util::stream::unfold(
        (receiver, pattern, console),
        |(mut receiver, pattern, console)| async move {
            let event = match next_message(&mut receiver, pattern.as_ref()).await? {
                Message::Event(ev) => Event::default().event("event").data(ev.json.as_str()),
                Message::Skipped(n) => {
                    console.live.skipped.fetch_add(n, Ordering::Relaxed);
                    Event::default().event("skipped").data(n.to_string())
                }
            };
            Some((Ok(event), (receiver, pattern, console)))
        },
    );
    // The first message tells the page it is connected, before any event;
    // browsers drop an SSE message without data, so it carries some.
    let hello =
        futures_util::stream::once(async { Ok(Event::default().event("ready").data("connected")) });
    // An open feed would hold a graceful shutdown forever.
    let stop = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    Ok(Sse::new(hello.chain(events).take_until(stop)).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(topic: &str) -> Arc<LiveEvent> {
        Arc::new(LiveEvent {
            topic: topic.to_owned(),
            json: "{}".to_owned(),
        })
    }

    #[tokio::test]
    async fn a_browser_behind_skips_events_and_learns_how_many_while_sending_never_waits() {
        let feed = Feed::new();
        let mut receiver = feed.sender.subscribe();
        for _ in 0..BACKLOG + 10 {
            feed.sender.send(event("order.placed")).expect("a receiver");
        }
        let next = next_message(&mut receiver, None).await;
        assert!(matches!(next, Some(Message::Skipped(10))), "{next:?}");
        let next = next_message(&mut receiver, None).await;
        assert!(matches!(next, Some(Message::Event(_))), "{next:?}");
    }

    #[tokio::test]
    async fn only_matching_topics_are_sent() {
        let feed = Feed::new();
        let mut receiver = feed.sender.subscribe();
        for topic in ["audit.logged", "order.placed"] {
            feed.sender.send(event(topic)).expect("a receiver");
        }
        drop(feed);
        let pattern = Pattern::new("order.*".to_owned()).expect("valid");
        match next_message(&mut receiver, Some(&pattern)).await {
            Some(Message::Event(ev)) => assert_eq!(ev.topic, "order.placed"),
            other => panic!("{other:?}"),
        }
        assert!(next_message(&mut receiver, Some(&pattern)).await.is_none());
    }
}
