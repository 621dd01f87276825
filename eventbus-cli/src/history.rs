//! `eventbus history` (stored events, filtered) and `eventbus tail` (new
//! events as they are stored, until Ctrl-C).

use std::io::Write;
use std::pin::pin;
use std::time::Duration;

use anyhow::{Context as _, Result};
use eventbus::store::{Order, Query};
use eventbus::topic::Pattern;
use futures_util::StreamExt;

use crate::cli::{Filters, HistoryArgs, TailArgs};
use crate::error::usage;
use crate::open::{self, BadRows};
use crate::output::{self, EVENT_HEADERS, Table};
use crate::prompt;

/// How often `tail` looks for new events. The store may be written by
/// other processes, so it is asked rather than subscribed to; a store that
/// can wait for new events (Redis) wakes it as soon as one is stored.
const TAIL_POLL: Duration = Duration::from_millis(200);

/// The store query for a pattern and the shared filters.
pub(crate) fn query(pattern: Option<Pattern>, filters: &Filters) -> Result<Query> {
    if let (Some(since), Some(until)) = (filters.since, filters.until)
        && since >= until
    {
        return Err(usage(format!(
            "--since {} is not before --until {}; nothing could match",
            output::time(since),
            output::time(until)
        )));
    }
    let mut query = Query::default();
    query.patterns = pattern.into_iter().collect();
    query.since = filters.since;
    query.until = filters.until;
    query.source.clone_from(&filters.source);
    query.correlation_id.clone_from(&filters.correlation_id);
    query.subject.clone_from(&filters.subject);
    query.scope.clone_from(&filters.scope);
    Ok(query)
}

pub(crate) async fn history(url: &str, args: HistoryArgs) -> Result<()> {
    let mut query = query(args.pattern, &args.filters)?;
    query.limit = args.limit;
    if args.reverse {
        query.order = Order::Newest;
    }
    let store = open::existing(url).await?;
    let mut events = store.query(query);
    let mut bad = BadRows::default();
    let mut out = std::io::stdout().lock();
    let mut table = Table::new(&EVENT_HEADERS);
    while let Some(item) = events.next().await {
        let Some(env) = bad.check(item)? else {
            continue;
        };
        if args.json {
            writeln!(out, "{}", output::json_line(&env)?)?;
        } else {
            table.push(output::event_cells(&env));
        }
    }
    drop(events);
    // The saga instances of a correlation id belong to its story; only in
    // the table, which people read (NDJSON stays events only).
    let mut instances = Vec::new();
    if let (false, Some(id)) = (args.json, &args.filters.correlation_id) {
        instances = crate::sagas::instances(&*store, None, false).await?;
        instances.retain(|i| i.correlation_id == *id);
    }
    if !args.json {
        if table.is_empty() {
            eprintln!("no events match");
        } else {
            table.write(&mut out)?;
        }
        if !instances.is_empty() {
            writeln!(out, "\nsaga instances with this correlation id:")?;
            crate::sagas::write_table(&mut out, &instances)?;
        }
    }
    out.flush()?;
    open::close(&*store).await?;
    bad.finish()
}

pub(crate) async fn tail(url: &str, args: TailArgs) -> Result<()> {
    let store = open::existing(url).await?;
    // Only what is stored from now on: start after the newest event.
    let mut after = open::newest_seq(&*store, Query::default()).await?;
    if prompt::stderr_is_terminal() {
        let what = args.pattern.as_ref().map_or(">", Pattern::as_str);
        eprintln!(
            "following `{what}` in {} after seq {after}; Ctrl-C to stop",
            store.describe()
        );
    }
    let mut ctrl_c = pin!(tokio::signal::ctrl_c());
    let mut bad = BadRows::default();
    // The newest seq the store reported while waiting, matching or not.
    let mut newest = None;
    'polls: loop {
        let mut query = Query::default();
        query.patterns = args.pattern.iter().cloned().collect();
        query.after_seq = Some(after);
        let mut events = store.query(query);
        loop {
            let item = tokio::select! {
                interrupted = &mut ctrl_c => {
                    interrupted.context("listening for Ctrl-C")?;
                    break 'polls;
                }
                item = events.next() => item,
            };
            let Some(item) = item else { break };
            if let Err(eventbus::Error::BadRow { seq, .. }) = &item {
                after = after.max(*seq);
            }
            let Some(env) = bad.check(item)? else {
                continue;
            };
            after = env.seq();
            output::print_live(&env, args.json)?;
        }
        tokio::select! {
            interrupted = &mut ctrl_c => {
                interrupted.context("listening for Ctrl-C")?;
                break 'polls;
            }
            // Wakes at once on a store that can wait for new events.
            seen = store.wait_for_more(newest.max(Some(after)), TAIL_POLL) => {
                newest = seen.or(newest);
            }
        }
    }
    open::close(&*store).await?;
    bad.finish()
}
