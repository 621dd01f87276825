//! `eventbus replay PATTERN --since T`: past events printed at the pace
//! they happened (times a speed factor), or, with `--to-handler NAME`, that
//! handler's checkpoint moved back so its service handles them again.

use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use eventbus::store::{Query, Store};
use eventbus::topic::Pattern;
use futures_util::StreamExt;

use crate::cli::ReplayArgs;
use crate::open::{self, BadRows};
use crate::output;
use crate::prompt;

pub(crate) async fn run(url: &str, args: ReplayArgs) -> Result<()> {
    match &args.to_handler {
        Some(handler) => {
            prompt::require_confirmation(args.yes, "`replay --to-handler`")?;
            let store = open::existing(url).await?;
            let moved = rewind(&*store, handler, &args.pattern, args.since, args.yes).await;
            open::close(&*store).await?;
            moved
        }
        None => print(url, args).await,
    }
}

/// Prints the matching events, sleeping between two events for their
/// original gap divided by the speed.
async fn print(url: &str, args: ReplayArgs) -> Result<()> {
    let mut query = Query::default();
    query.patterns = vec![args.pattern];
    query.since = Some(args.since);
    query.until = args.until;
    let store = open::existing(url).await?;
    let mut events = store.query(query);
    let mut bad = BadRows::default();
    let mut previous: Option<DateTime<Utc>> = None;
    while let Some(item) = events.next().await {
        let Some(env) = bad.check(item)? else {
            continue;
        };
        if let Some(previous) = previous {
            let gap = (env.time() - previous).to_std().unwrap_or(Duration::ZERO);
            tokio::time::sleep(gap.div_f64(args.speed)).await;
        }
        previous = Some(env.time());
        output::print_live(&env, args.json)?;
    }
    drop(events);
    open::close(&*store).await?;
    bad.finish()
}

/// Moves `handler`'s checkpoint to the last seq stored before `since`.
async fn rewind(
    store: &dyn Store,
    handler: &str,
    pattern: &Pattern,
    since: DateTime<Utc>,
    yes: bool,
) -> Result<()> {
    let old = store
        .checkpoint_store()?
        .load_checkpoint(handler)
        .await
        .with_context(|| format!("reading the checkpoint of `{handler}`"))?;
    // The position is global, not per pattern: the handler's own pattern
    // decides which of the later events it takes.
    let mut before = Query::default();
    before.until = Some(since);
    let new = open::newest_seq(store, before).await?;
    let again = count_after(store, pattern, new).await?;
    let old_text = old.map_or_else(|| "none".to_owned(), |s| s.to_string());
    if old.is_none() {
        let known = store.checkpoint_store()?.checkpoints().await?;
        let names: Vec<&str> = known.iter().map(|(name, _)| name.as_str()).collect();
        eprintln!(
            "note: handler `{handler}` has no checkpoint yet (handlers with one: {})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        );
    }
    prompt::confirm(
        yes,
        &format!(
            "Move the checkpoint of handler `{handler}` from {old_text} to {new} in {}? \
             {again} event(s) matching `{pattern}` come after it.",
            store.describe()
        ),
    )?;
    store
        .checkpoint_store()?
        .save_checkpoint(handler, new)
        .await
        .with_context(|| format!("saving the checkpoint of `{handler}`"))?;
    println!(
        "handler `{handler}`: checkpoint {old_text} -> {new}; {again} event(s) matching \
         `{pattern}` since {} will be handled again",
        output::time(since)
    );
    Ok(())
}

/// How many events matching `pattern` come after `seq`, with a progress
/// spinner while counting.
async fn count_after(store: &dyn Store, pattern: &Pattern, seq: u64) -> Result<u64> {
    let mut query = Query::default();
    query.patterns = vec![pattern.clone()];
    query.after_seq = Some(seq);
    let bar = prompt::progress(None, "counting events to replay");
    let mut events = store.query(query);
    let mut count = 0;
    while let Some(item) = events.next().await {
        if let Err(e @ eventbus::Error::BadRow { .. }) = &item {
            eprintln!("warning: {e}");
        } else {
            item.context("reading the store")?;
        }
        count += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(count)
}
