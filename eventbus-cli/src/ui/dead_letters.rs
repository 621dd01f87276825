//! The dead letters page: list, show, and retry or purge after a
//! confirmation page, both as POST forms carrying the CSRF token.
//!
//! As with `eventbus dlq retry`, the console runs no handler: a retry
//! marks the dead letter, and the service running its handler makes the
//! retry within its `dead_letter_poll` and removes it when it succeeds.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::Context as _;
use axum::Form;
use axum::extract::{Path, Query as Params, State};
use axum::response::Html;
use eventbus::store::{DeadLetter, DeadLetterQuery};

use super::html::{self, UiError, escape, given, url_part};
use super::{Console, Shared};
use crate::output;

/// The most characters of an error in the list; its page shows all.
const ERROR_CHARS: usize = 90;

fn parse_id(text: &str) -> Result<u64, UiError> {
    text.parse().map_err(|_| {
        UiError::bad_request(format!("`{text}` is not a dead letter id (a whole number)"))
    })
}

async fn find(console: &Console, id: u64) -> Result<DeadLetter, UiError> {
    console
        .store
        .dead_letter_store()?
        .dead_letters(DeadLetterQuery::id(id))
        .await
        .context("reading the dead letter")?
        .into_iter()
        .next()
        .ok_or_else(|| UiError::not_found(format!("there is no dead letter {id}")))
}

fn csrf_field(console: &Console) -> String {
    format!(
        r#"<input type="hidden" name="csrf" value="{}">"#,
        escape(console.security.csrf())
    )
}

pub(crate) async fn list(
    State(console): State<Shared>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Html<String>, UiError> {
    let handler = given(params.get("handler"));
    let query = handler.map_or_else(DeadLetterQuery::all, DeadLetterQuery::handler);
    let dead = console
        .store
        .dead_letter_store()?
        .dead_letters(query)
        .await
        .context("listing dead letters")?;
    let whose = handler.map_or_else(String::new, |h| format!(" of handler {}", escape(h)));
    if dead.is_empty() {
        let body = format!(r#"<p class="empty" id="no-dead-letters">No dead letters{whose}.</p>"#);
        return Ok(html::page(&console, "Dead letters", &body));
    }
    let mut rows = String::new();
    for d in &dead {
        let error = output::shorten(
            &d.error.split_whitespace().collect::<Vec<_>>().join(" "),
            ERROR_CHARS,
        );
        let _ = write!(
            rows,
            r#"<tr data-id="{id}"><td><a href="/dead-letters/{id}">{id}</a></td><td>{handler}</td><td><a href="/events/{seq}">{seq}</a></td><td>{topic}</td><td class="num">{attempts}</td><td>{time}</td><td>{retry}</td><td class="data">{error}</td></tr>"#,
            id = d.id,
            handler = escape(&d.handler),
            seq = d.envelope.seq(),
            topic = escape(d.envelope.topic()),
            attempts = d.attempts,
            time = html::time(d.time),
            retry = if d.retry_requested { "requested" } else { "-" },
            error = escape(&error),
        );
    }
    let purge = match handler {
        Some(h) => format!("/dead-letters/purge?handler={}", url_part(h)),
        None => "/dead-letters/purge".to_owned(),
    };
    let body = format!(
        r#"<p>{count} dead letter(s){whose}. <a class="button danger" href="{purge}">Purge…</a></p>
<table class="events" id="dead-letters"><thead><tr><th>Id</th><th>Handler</th><th>Seq</th><th>Topic</th><th>Attempts</th><th>Time</th><th>Retry</th><th>Error</th></tr></thead><tbody>{rows}</tbody></table>"#,
        count = dead.len(),
        purge = escape(&purge),
    );
    Ok(html::page(&console, "Dead letters", &body))
}

pub(crate) async fn show(
    State(console): State<Shared>,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let dead = find(&console, parse_id(&id)?).await?;
    let env = &dead.envelope;
    let retry = if dead.retry_requested {
        "requested; the service running the handler has not made it yet"
    } else {
        "not requested"
    };
    let body = format!(
        r#"<table class="facts"><tr><th>handler</th><td>{handler}</td></tr><tr><th>attempts</th><td>{attempts}</td></tr><tr><th>time</th><td>{time}</td></tr><tr><th>retry</th><td>{retry}</td></tr><tr><th>event</th><td><a href="/events/{seq}">seq {seq}</a> · {topic}</td></tr></table>
<p><a class="button" id="retry" href="/dead-letters/{id}/retry">Retry…</a></p>
<h2>Error</h2><pre id="error">{error}</pre>
<h2>Event</h2><pre id="cloudevent">{event}</pre>"#,
        id = dead.id,
        handler = escape(&dead.handler),
        attempts = dead.attempts,
        time = html::time(dead.time),
        seq = env.seq(),
        topic = escape(env.topic()),
        error = escape(&dead.error),
        event = escape(&output::pretty_json(&output::json_line(env)?)),
    );
    Ok(html::page(
        &console,
        &format!("Dead letter {}", dead.id),
        &body,
    ))
}

pub(crate) async fn confirm_retry(
    State(console): State<Shared>,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let dead = find(&console, parse_id(&id)?).await?;
    let body = format!(
        r#"<p>Retry dead letter {id} (seq {seq}, {topic}) in handler <strong>{handler}</strong>? The service running {handler} makes the retry within its dead_letter_poll (2 s by default) and removes the dead letter when the handler succeeds.</p>
<form method="post" action="/dead-letters/{id}/retry">{csrf}<button type="submit" id="confirm">Yes, retry</button> <a href="/dead-letters/{id}">Cancel</a></form>"#,
        id = dead.id,
        seq = dead.envelope.seq(),
        topic = escape(dead.envelope.topic()),
        handler = escape(&dead.handler),
        csrf = csrf_field(&console),
    );
    Ok(html::page(&console, "Retry a dead letter", &body))
}

pub(crate) async fn retry(
    State(console): State<Shared>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Html<String>, UiError> {
    console
        .security
        .check_csrf(form.get("csrf").map(String::as_str))?;
    let dead = find(&console, parse_id(&id)?).await?;
    let marked = console
        .store
        .dead_letter_store()?
        .request_retry(dead.id)
        .await
        .with_context(|| format!("requesting a retry of dead letter {}", dead.id))?;
    if !marked {
        return Err(UiError::not_found(format!(
            "dead letter {} is gone: its service retried it, or someone purged it",
            dead.id
        )));
    }
    let body = format!(
        r#"<p id="done">Retry of dead letter {id} requested; the service running {handler} will retry it within its dead_letter_poll (2 s by default).</p><p><a href="/dead-letters">Back to the dead letters</a></p>"#,
        id = dead.id,
        handler = escape(&dead.handler),
    );
    Ok(html::page(&console, "Retry requested", &body))
}

pub(crate) async fn confirm_purge(
    State(console): State<Shared>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Html<String>, UiError> {
    let handler = given(params.get("handler"));
    let query = handler.map_or_else(DeadLetterQuery::all, DeadLetterQuery::handler);
    let count = console
        .store
        .dead_letter_store()?
        .dead_letters(query)
        .await
        .context("listing dead letters")?
        .len();
    let whose = handler.map_or_else(String::new, |h| format!(" of handler {}", escape(h)));
    let field = handler.map_or_else(String::new, |h| {
        format!(
            r#"<input type="hidden" name="handler" value="{}">"#,
            escape(h)
        )
    });
    let body = format!(
        r#"<p>Delete {count} dead letter(s){whose}? Their events stay in the history.</p>
<form method="post" action="/dead-letters/purge">{csrf}{field}<button type="submit" class="danger" id="confirm">Yes, delete them</button> <a href="/dead-letters">Cancel</a></form>"#,
        csrf = csrf_field(&console),
    );
    Ok(html::page(&console, "Purge dead letters", &body))
}

pub(crate) async fn purge(
    State(console): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Html<String>, UiError> {
    console
        .security
        .check_csrf(form.get("csrf").map(String::as_str))?;
    let handler = given(form.get("handler"));
    let deleted = console
        .store
        .dead_letter_store()?
        .purge_dead_letters(handler)
        .await
        .context("purging dead letters")?;
    let whose = handler.map_or_else(String::new, |h| format!(" of handler {}", escape(h)));
    let body = format!(
        r#"<p id="done">Deleted {deleted} dead letter(s){whose}.</p><p><a href="/dead-letters">Back to the dead letters</a></p>"#
    );
    Ok(html::page(&console, "Dead letters purged", &body))
}
