//! `eventbus export` (NDJSON CloudEvents to stdout) and `eventbus import
//! FILE` (back into any store). Import keeps ids, times and metadata; the
//! store assigns new seqs in file order, and an id that is already stored
//! adds nothing, so importing twice is harmless.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::task::Poll;

use anyhow::{Context as _, Result, anyhow};
use eventbus::store::{Query, Store};
use eventbus::{BoxFuture, Draft, RawEnvelope};
use futures_util::StreamExt;

use crate::cli::{ExportArgs, ImportArgs};
use crate::history;
use crate::open::{self, BadRows};
use crate::output;
use crate::prompt;
use crate::publish::json_reason;

/// Appends in flight at once while importing, so the store can commit them
/// in batches instead of one sync per event.
const IMPORT_WINDOW: usize = 256;

pub(crate) async fn export(url: &str, args: ExportArgs) -> Result<()> {
    let query = history::query(args.pattern.clone(), &args.filters)?;
    let store = open::existing(url).await?;
    let total = matching_count(&*store, &query).await?;
    let bar = prompt::progress(total, "exporting");
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut events = store.query(query);
    let mut bad = BadRows::default();
    let mut exported = 0u64;
    while let Some(item) = events.next().await {
        let Some(env) = bad.check(item)? else {
            continue;
        };
        writeln!(out, "{}", output::json_line(&env)?)?;
        exported += 1;
        bar.inc(1);
    }
    out.flush()?;
    bar.finish_and_clear();
    drop(events);
    open::close(&*store).await?;
    eprintln!("exported {exported} event(s)");
    bad.finish()
}

/// How many events an export writes, known from the topic summaries when
/// only a pattern filters (for the progress bar; `None`: a spinner).
async fn matching_count(store: &dyn Store, query: &Query) -> Result<Option<u64>> {
    let only_pattern = query.source.is_none()
        && query.correlation_id.is_none()
        && query.subject.is_none()
        && query.since.is_none()
        && query.until.is_none();
    if !only_pattern || !prompt::stderr_is_terminal() {
        return Ok(None);
    }
    let topics = store.admin()?.topics().await.context("listing topics")?;
    Ok(Some(
        topics
            .iter()
            .filter(|t| {
                query.patterns.is_empty() || query.patterns.iter().any(|p| p.matches(&t.topic))
            })
            .map(|t| t.count)
            .sum(),
    ))
}

pub(crate) async fn import(url: &str, args: ImportArgs) -> Result<()> {
    let from_stdin = args.file.as_os_str() == "-";
    let name = if from_stdin {
        "stdin".to_owned()
    } else {
        args.file.display().to_string()
    };
    let (input, size): (Box<dyn Read>, Option<u64>) = if from_stdin {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = File::open(&args.file).with_context(|| format!("cannot read `{name}`"))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let store = open::or_create(url).await?;
    let result = import_lines(&*store, BufReader::new(input), &name, size).await;
    open::close(&*store).await?;
    let tally = result?;
    println!(
        "imported {} new event(s) from {name}; {} already present",
        tally.added, tally.present
    );
    Ok(())
}

#[derive(Default)]
struct Tally {
    added: u64,
    present: u64,
    /// The highest seq seen; a stored event answering with a seq at or
    /// below it was already there.
    high: u64,
}

impl Tally {
    fn count(&mut self, stored: &RawEnvelope) {
        if stored.seq() > self.high {
            self.high = stored.seq();
            self.added += 1;
        } else {
            self.present += 1;
        }
    }
}

/// An append that has been started: either already answered, or waiting.
enum Started<'a> {
    Done(eventbus::Result<RawEnvelope>),
    Waiting(BoxFuture<'a, eventbus::Result<RawEnvelope>>),
}

/// Polls an append once, so the store has it (in file order) before the
/// next one starts, without waiting for its commit.
async fn start(append: BoxFuture<'_, eventbus::Result<RawEnvelope>>) -> Started<'_> {
    let mut append = Some(append);
    std::future::poll_fn(move |cx| {
        let mut future = append.take().expect("polled once");
        Poll::Ready(match future.as_mut().poll(cx) {
            Poll::Ready(result) => Started::Done(result),
            Poll::Pending => Started::Waiting(future),
        })
    })
    .await
}

async fn finish(started: Started<'_>) -> eventbus::Result<RawEnvelope> {
    match started {
        Started::Done(result) => result,
        Started::Waiting(future) => future.await,
    }
}

async fn import_lines(
    store: &dyn Store,
    mut input: impl BufRead,
    name: &str,
    size: Option<u64>,
) -> Result<Tally> {
    let mut tally = Tally {
        high: open::newest_seq(store, Query::default()).await?,
        ..Tally::default()
    };
    let bar = prompt::progress_bytes(size, &format!("importing {name}"));
    let mut in_flight: VecDeque<Started<'_>> = VecDeque::new();
    let mut line = String::new();
    let mut number = 0u64;
    let outcome: Result<()> = async {
        loop {
            line.clear();
            let read = input
                .read_line(&mut line)
                .with_context(|| format!("reading `{name}`"))?;
            if read == 0 {
                break;
            }
            number += 1;
            bar.inc(read as u64);
            // Editors on Windows often start a UTF-8 file with a byte order
            // mark, which is not JSON.
            let text = match number {
                1 => line.strip_prefix('\u{feff}').unwrap_or(&line),
                _ => &line,
            };
            if text.trim().is_empty() {
                continue;
            }
            let env = RawEnvelope::from_cloudevent_json(text.as_bytes())
                .map_err(|e| line_error(name, number, &e))?;
            in_flight.push_back(start(store.append(Draft::from_envelope(&env))).await);
            if in_flight.len() >= IMPORT_WINDOW
                && let Some(oldest) = in_flight.pop_front()
            {
                tally.count(&finish(oldest).await.context("storing")?);
            }
        }
        Ok(())
    }
    .await;
    // What was sent is stored (or not) either way: wait for every answer.
    let mut failure = outcome.err();
    while let Some(started) = in_flight.pop_front() {
        match finish(started).await {
            Ok(stored) => tally.count(&stored),
            Err(e) => failure = failure.or(Some(anyhow!(e).context("storing"))),
        }
    }
    bar.finish_and_clear();
    match failure {
        None => Ok(tally),
        Some(e) => Err(anyhow!(
            "{e:#} ({} new event(s) before it were imported; importing again adds only what is missing)",
            tally.added
        )),
    }
}

fn line_error(name: &str, number: u64, e: &serde_json::Error) -> anyhow::Error {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => anyhow!(
            "{name} line {number}, column {}: not JSON: {}",
            e.column(),
            json_reason(e)
        ),
        _ => anyhow!("{name} line {number}: not an event: {}", json_reason(e)),
    }
}
