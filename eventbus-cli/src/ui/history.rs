//! The history page (stored events, filtered, a page at a time) and the
//! page of one event.
//!
//! A page is one store query with a limit, newest first; the next page
//! starts below the last seq shown, so paging through millions of events
//! holds one page in memory at a time.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Path, Query as Params, State};
use axum::response::Html;
use eventbus::RawEnvelope;
use eventbus::store::{Order, Query};
use eventbus::topic::Pattern;
use futures_util::StreamExt;

use super::Shared;
use super::html::{self, UiError, escape, given, url_part};
use crate::output;

const PAGE: usize = 50;
const MAX_PAGE: usize = 500;

/// The most characters of data in a table cell; the event page shows all.
const DATA_CHARS: usize = 120;

/// The filters of the history form, as they appear in its query string.
const FILTERS: [&str; 6] = [
    "pattern",
    "since",
    "until",
    "source",
    "subject",
    "correlation_id",
];

fn time_param(
    params: &HashMap<String, String>,
    name: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, UiError> {
    given(params.get(name))
        .map(|text| {
            crate::time::parse_time(text).map_err(|e| UiError::bad_request(format!("{name}: {e}")))
        })
        .transpose()
}

fn number_param(params: &HashMap<String, String>, name: &str) -> Result<Option<u64>, UiError> {
    given(params.get(name))
        .map(|text| {
            text.parse::<u64>().map_err(|_| {
                UiError::bad_request(format!("{name}: `{text}` is not a whole number"))
            })
        })
        .transpose()
}

/// The store query the form asks for, without paging.
fn query(params: &HashMap<String, String>) -> Result<Query, UiError> {
    let mut query = Query::default();
    if let Some(text) = given(params.get("pattern")) {
        let pattern = Pattern::new(text.to_owned())
            .map_err(|e| UiError::bad_request(format!("`{text}` is not a topic pattern: {e}")))?;
        query.patterns.push(pattern);
    }
    query.since = time_param(params, "since")?;
    query.until = time_param(params, "until")?;
    if let (Some(since), Some(until)) = (query.since, query.until)
        && since >= until
    {
        return Err(UiError::bad_request(format!(
            "since ({}) is not before until ({}); nothing could match",
            html::time(since),
            html::time(until)
        )));
    }
    query.source = given(params.get("source")).map(str::to_owned);
    query.subject = given(params.get("subject")).map(str::to_owned);
    query.correlation_id = given(params.get("correlation_id")).map(str::to_owned);
    Ok(query)
}

/// A table row for an event; the seq opens its page.
pub(crate) fn event_row(env: &RawEnvelope) -> String {
    let data = match env.data_json() {
        Ok(raw) => output::shorten(&output::one_line_json(raw.get().to_owned()), DATA_CHARS),
        Err(e) => format!("<{e}>"),
    };
    let correlation = env.correlation_id().map_or_else(
        || "-".to_owned(),
        |c| {
            format!(
                r#"<a href="/causation?correlation_id={}">{}</a>"#,
                escape(&url_part(c)),
                escape(c)
            )
        },
    );
    format!(
        r#"<tr><td><a href="/events/{seq}">{seq}</a></td><td>{time}</td><td>{topic}</td><td>{source}</td><td>{subject}</td><td>{correlation}</td><td class="data">{data}</td></tr>"#,
        seq = env.seq(),
        time = html::time(env.time()),
        topic = escape(env.topic()),
        source = escape(env.source()),
        subject = escape(env.subject().unwrap_or("-")),
        data = escape(&data),
    )
}

pub(crate) const EVENT_TABLE_HEAD: &str = "<thead><tr><th>Seq</th><th>Time</th><th>Topic</th>\
     <th>Source</th><th>Subject</th><th>Correlation</th><th>Data</th></tr></thead>";

pub(crate) async fn page(
    State(console): State<Shared>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Html<String>, UiError> {
    let mut query = query(&params)?;
    let limit = number_param(&params, "limit")?
        .map_or(PAGE, |n| usize::try_from(n).unwrap_or(MAX_PAGE))
        .clamp(1, MAX_PAGE);
    query.before_seq = number_param(&params, "before")?;
    query.order = Order::Newest;
    // One more than shown tells whether there is a next page.
    query.limit = Some(limit + 1);

    let mut rows = String::new();
    let mut shown = 0;
    let mut last_seq = None;
    let mut more = false;
    let mut unreadable = 0;
    let mut events = console.store.query(query);
    while let Some(item) = events.next().await {
        match item {
            Ok(_) if shown == limit => {
                more = true;
                break;
            }
            Ok(env) => {
                rows.push_str(&event_row(&env));
                shown += 1;
                last_seq = Some(env.seq());
            }
            Err(eventbus::Error::BadRow { .. }) => unreadable += 1,
            Err(e) => return Err(e.into()),
        }
    }
    drop(events);

    let mut form = String::from(r#"<form class="filters" method="get" action="/history">"#);
    for (name, label, hint) in [
        ("pattern", "Pattern", "order.>"),
        ("since", "Since", "1h or 2026-01-02T15:04:05Z"),
        ("until", "Until", "10m or RFC 3339"),
        ("source", "Source", ""),
        ("subject", "Subject", ""),
        ("correlation_id", "Correlation id", ""),
    ] {
        let value = params.get(name).map_or("", String::as_str);
        let _ = write!(
            form,
            r#"<label>{label} <input name="{name}" value="{}" placeholder="{hint}"></label>"#,
            escape(value)
        );
    }
    form.push_str(r#"<button type="submit">Search</button></form>"#);

    let mut body = form;
    if unreadable > 0 {
        let _ = write!(
            body,
            r#"<p class="error">{unreadable} stored event(s) on this page could not be read and are left out.</p>"#
        );
    }
    if shown == 0 {
        body.push_str(r#"<p class="empty">No events match.</p>"#);
    } else {
        let _ = write!(
            body,
            r#"<table class="events" id="history">{EVENT_TABLE_HEAD}<tbody>{rows}</tbody></table>"#
        );
    }
    if let (true, Some(last)) = (more, last_seq) {
        let mut next = format!("/history?before={last}&limit={limit}");
        for name in FILTERS {
            if let Some(value) = given(params.get(name)) {
                let _ = write!(next, "&{name}={}", url_part(value));
            }
        }
        let _ = write!(
            body,
            r#"<p class="pager"><a id="next-page" href="{}">Next page (older) →</a></p>"#,
            escape(&next)
        );
    }
    Ok(html::page(&console, "History", &body))
}

pub(crate) async fn event(
    State(console): State<Shared>,
    Path(seq): Path<String>,
) -> Result<Html<String>, UiError> {
    let seq: u64 = seq.parse().map_err(|_| {
        UiError::bad_request(format!("`{seq}` is not an event seq (a whole number)"))
    })?;
    let mut query = Query::default();
    query.after_seq = Some(seq.saturating_sub(1));
    query.limit = Some(1);
    let found = console.store.query(query).next().await.transpose()?;
    let Some(env) = found.filter(|env| env.seq() == seq) else {
        return Err(UiError::not_found(format!(
            "there is no event with seq {seq}"
        )));
    };
    let (cause, effects) = relatives(&console, &env).await?;
    let mut facts = String::new();
    let link = |path: &str, value: &str| {
        format!(
            r#"<a href="{path}{}">{}</a>"#,
            escape(&url_part(value)),
            escape(value)
        )
    };
    let correlation = env.correlation_id().map(|c| {
        format!(
            "{} (<a href=\"/history?correlation_id={}\">history</a>)",
            link("/causation?correlation_id=", c),
            escape(&url_part(c))
        )
    });
    for (label, value) in [
        ("id", Some(escape(&env.id().to_string()))),
        ("seq", Some(env.seq().to_string())),
        ("topic", Some(escape(env.topic()))),
        ("time", Some(html::time(env.time()))),
        ("source", Some(escape(env.source()))),
        ("subject", env.subject().map(escape)),
        ("correlation id", correlation),
        (
            "causation id",
            env.causation_id().map(|c| cause_link(c, cause)),
        ),
        ("effects", effects_links(&effects)),
        ("idempotency key", env.idempotency_key().map(escape)),
        (
            "event",
            Some(format!(
                "{} v{}",
                escape(env.event_name()),
                env.event_version()
            )),
        ),
        ("scope", env.scope().map(escape)),
    ] {
        let value = value.unwrap_or_else(|| "-".to_owned());
        let _ = write!(facts, "<tr><th>{label}</th><td>{value}</td></tr>");
    }
    let mut headers = String::new();
    for (name, value) in env.headers() {
        let _ = write!(
            headers,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(&value.to_string())
        );
    }
    if headers.is_empty() {
        headers.push_str("<tr><td>none</td></tr>");
    }
    let data = match env.data_json() {
        Ok(raw) => output::pretty_json(raw.get()),
        Err(e) => format!("the data cannot be read: {e}"),
    };
    let cloudevent = output::pretty_json(&output::json_line(&env)?);
    let body = format!(
        r#"<table class="facts" id="attributes">{facts}</table>
<h2>Headers</h2><table class="facts" id="headers">{headers}</table>
<h2>Data</h2><pre id="data">{data}</pre>
<h2>CloudEvent</h2><pre id="cloudevent">{cloudevent}</pre>"#,
        data = escape(&data),
        cloudevent = escape(&cloudevent),
    );
    Ok(html::page(&console, &format!("Event {seq}"), &body))
}

/// The most events of one correlation id searched for an event's cause
/// and effects.
const MAX_RELATIVES: usize = 1000;

/// The seqs of `env`'s cause and effects among the events of its
/// correlation id (the first [`MAX_RELATIVES`] of them).
async fn relatives(
    console: &super::Console,
    env: &RawEnvelope,
) -> Result<(Option<u64>, Vec<u64>), UiError> {
    let Some(correlation) = env.correlation_id() else {
        return Ok((None, Vec::new()));
    };
    let mut query = Query::default();
    query.correlation_id = Some(correlation.to_owned());
    query.limit = Some(MAX_RELATIVES);
    let id = env.id().to_string();
    let (mut cause, mut effects) = (None, Vec::new());
    let mut events = console.store.query(query);
    while let Some(item) = events.next().await {
        let other = match item {
            Ok(other) => other,
            Err(eventbus::Error::BadRow { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        if env.causation_id() == Some(other.id().to_string().as_str()) {
            cause = Some(other.seq());
        }
        if other.causation_id() == Some(id.as_str()) {
            effects.push(other.seq());
        }
    }
    Ok((cause, effects))
}

fn cause_link(causation_id: &str, cause: Option<u64>) -> String {
    match cause {
        Some(seq) => format!(
            r#"<a id="cause" href="/events/{seq}">{}</a> (seq {seq})"#,
            escape(causation_id)
        ),
        None => escape(causation_id),
    }
}

fn effects_links(effects: &[u64]) -> Option<String> {
    if effects.is_empty() {
        return None;
    }
    let links: Vec<String> = effects
        .iter()
        .map(|seq| format!(r#"<a class="effect" href="/events/{seq}">seq {seq}</a>"#))
        .collect();
    Some(links.join(", "))
}
