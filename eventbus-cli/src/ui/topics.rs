//! The topics page: counts, rates and the last hour per topic, and the
//! count of the last hour that the handlers page draws too.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context as _;
use axum::extract::State;
use axum::response::Html;
use chrono::Utc;
use eventbus::store::{Order, Query, Store};
use futures_util::StreamExt;

use super::html::{self, UiError, escape, url_part};
use super::{Shared, charts};

/// The most events counted for the last hour: counting reads each one,
/// so a busier hour is counted from its newest events and says so.
const MAX_COUNTED: usize = 200_000;

/// Events stored in the last hour.
pub(crate) struct LastHour {
    /// Per minute, oldest first.
    pub(crate) per_minute: Vec<u64>,
    pub(crate) per_topic: BTreeMap<String, u64>,
    /// Whether only the newest [`MAX_COUNTED`] were counted.
    pub(crate) capped: bool,
}

impl LastHour {
    /// What a chart's caption adds when the count was cut short.
    pub(crate) fn note(&self) -> String {
        if self.capped {
            format!(" (the newest {MAX_COUNTED} events counted)")
        } else {
            String::new()
        }
    }
}

/// Counts the last hour's events by minute and topic, one event in
/// memory at a time.
pub(crate) async fn last_hour(store: &dyn Store) -> Result<LastHour, UiError> {
    let now = Utc::now();
    let mut query = Query::default();
    query.since = Some(now - chrono::Duration::hours(1));
    query.order = Order::Newest;
    query.limit = Some(MAX_COUNTED + 1);
    let mut hour = LastHour {
        per_minute: vec![0; 60],
        per_topic: BTreeMap::new(),
        capped: false,
    };
    let mut counted = 0;
    let mut events = store.query(query);
    while let Some(item) = events.next().await {
        let env = match item {
            Ok(env) => env,
            Err(eventbus::Error::BadRow { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        if counted == MAX_COUNTED {
            hour.capped = true;
            break;
        }
        counted += 1;
        let ago = (now - env.time()).num_minutes().clamp(0, 59);
        let minute = usize::try_from(59 - ago).unwrap_or(0);
        hour.per_minute[minute] += 1;
        *hour.per_topic.entry(env.topic().to_owned()).or_default() += 1;
    }
    Ok(hour)
}

/// Events per second over a span, for people.
fn rate(count: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return "-".to_owned();
    }
    let per_second = count as f64 / seconds;
    if per_second >= 1.0 {
        format!("{per_second:.1}/s")
    } else {
        format!("{:.1}/min", per_second * 60.0)
    }
}

pub(crate) async fn page(State(console): State<Shared>) -> Result<Html<String>, UiError> {
    let topics = console
        .store
        .admin()?
        .topics()
        .await
        .context("listing topics")?;
    let hour = last_hour(&*console.store).await?;
    if topics.is_empty() {
        return Ok(html::page(
            &console,
            "Topics",
            r#"<p class="empty">No events stored.</p>"#,
        ));
    }
    let mut rows = String::new();
    for t in &topics {
        let span = (t.last - t.first).num_milliseconds() as f64 / 1000.0;
        let in_hour = hour.per_topic.get(&t.topic).copied().unwrap_or(0);
        let _ = write!(
            rows,
            r#"<tr><td><a href="/history?pattern={link}">{topic}</a></td><td class="num">{count}</td><td class="num">{overall}</td><td class="num">{in_hour}</td><td class="num">{hourly}</td><td>{first}</td><td>{last}</td></tr>"#,
            link = escape(&url_part(&t.topic)),
            topic = escape(&t.topic),
            count = t.count,
            overall = rate(t.count, span),
            hourly = rate(in_hour, 3600.0),
            first = html::time(t.first),
            last = html::time(t.last),
        );
    }
    let counts: Vec<(String, u64)> = topics.iter().map(|t| (t.topic.clone(), t.count)).collect();
    let body = format!(
        r#"<h2>Events per minute, last hour{note}</h2>{minutes}
<h2>Events per topic</h2>{bars}
<table class="events" id="topics"><thead><tr><th>Topic</th><th>Events</th><th>Rate (first to last)</th><th>Last hour</th><th>Rate (last hour)</th><th>First</th><th>Last</th></tr></thead><tbody>{rows}</tbody></table>"#,
        note = escape(&hour.note()),
        minutes = charts::per_minute("topics-per-minute", "events per minute", &hour.per_minute),
        bars = charts::bars("topics-counts", "events per topic", &counts),
    );
    Ok(html::page(&console, "Topics", &body))
}
