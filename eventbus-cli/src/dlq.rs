//! `eventbus dlq list|show|retry|purge`: the events handlers gave up on.
//!
//! This process runs no handler code, so `retry` only marks the dead letter
//! (`Store::request_retry`); the service whose bus runs that handler makes
//! the retry within its `dead_letter_poll` (2 s by default) and removes the
//! dead letter when the handler succeeds.

use std::io::Write;

use anyhow::{Context as _, Result, bail};
use eventbus::RawEnvelope;
use eventbus::store::{DeadLetter, DeadLetterQuery, Store};
use serde::Serialize;

use crate::cli::{DlqCommand, DlqListArgs, DlqPurgeArgs, DlqRetryArgs, DlqShowArgs};
use crate::open;
use crate::output::{self, Table};
use crate::prompt;

/// The longest error shown in a table cell; `show` and `--json` show all.
const ERROR_WIDTH: usize = 60;

/// How `retry` says who makes the retry, and when.
const WHO_RETRIES: &str = "will retry it within its dead_letter_poll (2 s by default)";

pub(crate) async fn run(url: &str, command: DlqCommand) -> Result<()> {
    match command {
        DlqCommand::List(args) => list(url, args).await,
        DlqCommand::Show(args) => show(url, args).await,
        DlqCommand::Retry(args) => retry(url, args).await,
        DlqCommand::Purge(args) => purge(url, args).await,
    }
}

/// A dead letter as one JSON object, with the event as its CloudEvent
/// (attributes in their usual order, `data` exactly as published).
#[derive(Serialize)]
struct DeadLetterJson<'a> {
    id: u64,
    handler: &'a str,
    attempts: u32,
    error: &'a str,
    time: String,
    retry_requested: bool,
    envelope: &'a RawEnvelope,
}

fn json_line(dead: &DeadLetter) -> Result<String> {
    let json = DeadLetterJson {
        id: dead.id,
        handler: &dead.handler,
        attempts: dead.attempts,
        error: &dead.error,
        time: output::time(dead.time),
        retry_requested: dead.retry_requested,
        envelope: &dead.envelope,
    };
    serde_json::to_string(&json)
        .map(output::one_line_json)
        .with_context(|| format!("encoding dead letter {}", dead.id))
}

/// " of handler `NAME`" when only one handler's dead letters are meant.
fn of_handler(handler: Option<&str>) -> String {
    handler.map_or_else(String::new, |h| format!(" of handler `{h}`"))
}

fn query(handler: Option<&str>) -> DeadLetterQuery {
    handler.map_or_else(DeadLetterQuery::all, DeadLetterQuery::handler)
}

/// The dead letters matching `query`, with the store closed either way.
async fn fetch(url: &str, query: DeadLetterQuery) -> Result<Vec<DeadLetter>> {
    let store = open::existing(url).await?;
    let dead = store
        .dead_letter_store()?
        .dead_letters(query)
        .await
        .context("listing dead letters");
    open::close(&*store).await?;
    dead
}

async fn list(url: &str, args: DlqListArgs) -> Result<()> {
    let handler = args.handler.as_deref();
    let dead = fetch(url, query(handler)).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        for d in &dead {
            writeln!(out, "{}", json_line(d)?)?;
        }
    } else if dead.is_empty() {
        eprintln!("no dead letters{}", of_handler(handler));
    } else {
        let mut table = Table::new(&[
            "ID",
            "HANDLER",
            "SEQ",
            "TOPIC",
            "ATTEMPTS",
            "TIME",
            "RETRY REQUESTED",
            "ERROR",
        ]);
        for d in &dead {
            table.push(vec![
                d.id.to_string(),
                d.handler.clone(),
                d.envelope.seq().to_string(),
                d.envelope.topic().to_owned(),
                d.attempts.to_string(),
                output::time(d.time),
                yes_no(d.retry_requested).to_owned(),
                output::shorten(&one_line(&d.error), ERROR_WIDTH),
            ]);
        }
        table.write(&mut out)?;
    }
    out.flush()?;
    Ok(())
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// Text on one line: every run of white space (line breaks too) is one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn show(url: &str, args: DlqShowArgs) -> Result<()> {
    let dead = fetch(url, DeadLetterQuery::id(args.id)).await?;
    let Some(dead) = dead.into_iter().next() else {
        bail!(
            "there is no dead letter {} (`eventbus dlq list` shows them)",
            args.id
        );
    };
    let text = if args.json {
        json_line(&dead)?
    } else {
        describe(&dead)?
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// Every field of a dead letter for reading, then its event as pretty
/// CloudEvents JSON.
fn describe(dead: &DeadLetter) -> Result<String> {
    const LABEL_WIDTH: usize = 17;
    let env = &dead.envelope;
    let retry = if dead.retry_requested {
        format!(
            "requested; the service running {} has not made it yet",
            dead.handler
        )
    } else {
        "not requested".to_owned()
    };
    let facts = [
        ("id", dead.id.to_string()),
        ("handler", dead.handler.clone()),
        ("attempts", dead.attempts.to_string()),
        ("time", output::time(dead.time)),
        ("retry", retry),
        ("seq", env.seq().to_string()),
        ("topic", env.topic().to_owned()),
        ("event id", env.id().to_string()),
        ("error", dead.error.clone()),
    ];
    let mut text = String::new();
    for (label, value) in facts {
        let label = format!("{label}:");
        // A value of several lines (an error with its causes) stays aligned.
        let mut lines = value.lines();
        let first = lines.next().unwrap_or("");
        text.push_str(format!("{label:<LABEL_WIDTH$}{first}").trim_end());
        text.push('\n');
        for line in lines {
            text.push_str(format!("{:LABEL_WIDTH$}{line}", "").trim_end());
            text.push('\n');
        }
    }
    text.push_str("envelope:\n");
    text.push_str(&output::pretty_json(&output::json_line(env)?));
    Ok(text)
}

async fn retry(url: &str, args: DlqRetryArgs) -> Result<()> {
    let store = open::existing(url).await?;
    let requested = request_retry(&*store, args.id).await;
    open::close(&*store).await?;
    let (handler, already) = requested?;
    let id = args.id;
    if already {
        println!(
            "retry of dead letter {id} (handler {handler}) was already requested; \
             the service running {handler} {WHO_RETRIES}"
        );
    } else {
        println!(
            "retry of dead letter {id} (handler {handler}) requested; \
             the service running {handler} {WHO_RETRIES}"
        );
    }
    Ok(())
}

/// Marks dead letter `id` for retry: its handler, and whether a retry was
/// already requested.
async fn request_retry(store: &dyn Store, id: u64) -> Result<(String, bool)> {
    let dead = store
        .dead_letter_store()?
        .dead_letters(DeadLetterQuery::id(id))
        .await
        .context("reading the dead letter")?;
    let missing = || format!("there is no dead letter {id} (`eventbus dlq list` shows them)");
    let Some(dead) = dead.into_iter().next() else {
        bail!(missing());
    };
    let marked = store
        .dead_letter_store()?
        .request_retry(id)
        .await
        .with_context(|| format!("requesting a retry of dead letter {id}"))?;
    // Gone in between: its service retried it, or someone purged it.
    if !marked {
        bail!(missing());
    }
    Ok((dead.handler, dead.retry_requested))
}

async fn purge(url: &str, args: DlqPurgeArgs) -> Result<()> {
    prompt::require_confirmation(args.yes, "`dlq purge`")?;
    let store = open::existing(url).await?;
    let purged = purge_confirmed(&*store, args.handler.as_deref(), args.yes).await;
    open::close(&*store).await?;
    println!("{}", purged?);
    Ok(())
}

/// Counts, asks, deletes; returns what to tell.
async fn purge_confirmed(store: &dyn Store, handler: Option<&str>, yes: bool) -> Result<String> {
    let whose = of_handler(handler);
    let count = store
        .dead_letter_store()?
        .dead_letters(query(handler))
        .await
        .context("listing dead letters")?
        .len();
    if count == 0 {
        return Ok(format!("no dead letters{whose}; nothing deleted"));
    }
    prompt::confirm(
        yes,
        &format!(
            "Delete {count} dead letter(s){whose} from {}? Their events stay in the history.",
            store.describe()
        ),
    )?;
    let deleted = store
        .dead_letter_store()?
        .purge_dead_letters(handler)
        .await
        .context("purging dead letters")?;
    Ok(format!("deleted {deleted} dead letter(s){whose}"))
}
