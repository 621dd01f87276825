//! The handlers page: every handler with a checkpoint or a dead letter in
//! the store, its lag behind the newest event, and its dead letters.
//!
//! The console runs no handler, so it knows handlers by what they left
//! in the store; their own counters are the metrics of the services that
//! run them. Their progress per minute comes from the console's own
//! samples of their checkpoints ([`super::progress`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context as _;
use axum::extract::State;
use axum::response::Html;
use eventbus::store::{DeadLetterQuery, Query};

use super::html::{self, UiError, escape, url_part};
use super::{Shared, charts, progress, topics};
use crate::open;

/// What the store tells of one handler.
#[derive(Default)]
pub(crate) struct HandlerFacts {
    pub(crate) checkpoint: Option<u64>,
    pub(crate) dead_letters: u64,
    /// The most attempts any of its dead letters took.
    pub(crate) most_attempts: u32,
    pub(crate) retry_requested: u64,
}

/// Every handler the store knows, by name, and the newest seq.
pub(crate) async fn facts(
    console: &super::Console,
) -> Result<(BTreeMap<String, HandlerFacts>, u64), UiError> {
    let store = &*console.store;
    let mut handlers: BTreeMap<String, HandlerFacts> = BTreeMap::new();
    for (name, seq) in store
        .checkpoint_store()?
        .checkpoints()
        .await
        .context("listing checkpoints")?
    {
        handlers.entry(name).or_default().checkpoint = Some(seq);
    }
    for dead in store
        .dead_letter_store()?
        .dead_letters(DeadLetterQuery::all())
        .await
        .context("listing dead letters")?
    {
        let facts = handlers.entry(dead.handler).or_default();
        facts.dead_letters += 1;
        facts.most_attempts = facts.most_attempts.max(dead.attempts);
        facts.retry_requested += u64::from(dead.retry_requested);
    }
    let newest = open::newest_seq(store, Query::default()).await?;
    Ok((handlers, newest))
}

pub(crate) async fn page(State(console): State<Shared>) -> Result<Html<String>, UiError> {
    let (handlers, newest) = facts(&console).await?;
    let hour = topics::last_hour(&*console.store).await?;
    let mut body = format!(
        r#"<h2>Events stored per minute, last hour{note}: the work handlers are given</h2>{chart}"#,
        note = escape(&hour.note()),
        chart = charts::per_minute("handlers-throughput", "events per minute", &hour.per_minute),
    );
    if handlers.is_empty() {
        body.push_str(
            r#"<p class="empty">No handler has a checkpoint or a dead letter in this store yet.</p>"#,
        );
        return Ok(html::page(&console, "Handlers", &body));
    }
    let mut rows = String::new();
    let mut lags = Vec::new();
    for (name, facts) in &handlers {
        let lag = facts.checkpoint.map(|c| newest.saturating_sub(c));
        if let Some(lag) = lag {
            lags.push((name.clone(), lag));
        }
        let or_dash = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        let dead = if facts.dead_letters == 0 {
            "0".to_owned()
        } else {
            format!(
                r#"<a href="/dead-letters?handler={}">{}</a>"#,
                escape(&url_part(name)),
                facts.dead_letters
            )
        };
        let attempts = if facts.dead_letters == 0 {
            "-".to_owned()
        } else {
            facts.most_attempts.to_string()
        };
        let _ = write!(
            rows,
            r#"<tr><td>{name}</td><td class="num">{checkpoint}</td><td class="num">{lag}</td><td class="num">{dead}</td><td class="num">{attempts}</td><td class="num">{retrying}</td></tr>"#,
            name = escape(name),
            checkpoint = or_dash(facts.checkpoint),
            lag = or_dash(lag),
            retrying = facts.retry_requested,
        );
    }
    let now = chrono::Utc::now();
    let mut progress_charts = String::new();
    for (i, name) in handlers.keys().enumerate() {
        if let Some(minutes) = console.progress.per_minute(name, now) {
            let _ = write!(
                progress_charts,
                r#"<h3>{}</h3>{}"#,
                escape(name),
                charts::per_minute(&format!("progress-{i}"), "seqs passed per minute", &minutes)
            );
        }
    }
    if progress_charts.is_empty() {
        progress_charts = format!(
            r#"<p class="empty">Sampling checkpoints every {} s since the console started; the charts appear after the second sample.</p>"#,
            progress::SAMPLE_EVERY.as_secs()
        );
    } else if let Some(since) = console.progress.since() {
        progress_charts.insert_str(
            0,
            &format!(
                r#"<p class="status">Checkpoints sampled every {} s since {}.</p>"#,
                progress::SAMPLE_EVERY.as_secs(),
                html::time(since)
            ),
        );
    }
    let _ = write!(
        body,
        r#"<h2>Lag (events behind seq {newest})</h2>{lag_chart}
<table class="events" id="handlers"><thead><tr><th>Handler</th><th>Checkpoint</th><th>Lag</th><th>Dead letters</th><th>Most attempts</th><th>Retry requested</th></tr></thead><tbody>{rows}</tbody></table>
<h2>Progress: seqs each checkpoint passed per minute, last hour</h2>{progress_charts}"#,
        lag_chart = charts::bars("handlers-lag", "lag per handler", &lags),
    );
    Ok(html::page(&console, "Handlers", &body))
}
