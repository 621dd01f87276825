//! `eventbus topics`, `eventbus stats` (totals, per-handler checkpoints,
//! lag and dead letters, size), `eventbus clear PATTERN` and `eventbus
//! backup FILE`.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context as _, Result, bail};
use eventbus::store::{DeadLetterQuery, Order, Query, SqliteStore, Store};
use serde_json::json;

use crate::cli::{BackupArgs, ClearArgs, StatsArgs, TopicsArgs};
use crate::open;
use crate::output::{self, Table};
use crate::prompt;

pub(crate) async fn topics(url: &str, args: TopicsArgs) -> Result<()> {
    let store = open::existing(url).await?;
    let topics = store.admin()?.topics().await.context("listing topics")?;
    open::close(&*store).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        for t in &topics {
            let line = json!({
                "topic": t.topic,
                "count": t.count,
                "first": output::time(t.first),
                "last": output::time(t.last),
            });
            writeln!(out, "{line}")?;
        }
    } else if topics.is_empty() {
        eprintln!("no events stored");
    } else {
        let mut table = Table::new(&["TOPIC", "EVENTS", "FIRST", "LAST"]);
        for t in &topics {
            table.push(vec![
                t.topic.clone(),
                t.count.to_string(),
                output::time(t.first),
                output::time(t.last),
            ]);
        }
        table.write(&mut out)?;
    }
    out.flush()?;
    Ok(())
}

pub(crate) async fn stats(url: &str, args: StatsArgs) -> Result<()> {
    let store = open::existing(url).await?;
    let topics = store.admin()?.topics().await.context("listing topics")?;
    let checkpoints = store
        .checkpoint_store()?
        .checkpoints()
        .await
        .context("listing checkpoints")?;
    let dead = store
        .dead_letter_store()?
        .dead_letters(DeadLetterQuery::all())
        .await
        .context("listing dead letters")?;
    let newest = open::newest_seq(&*store, Query::default()).await?;
    let oldest = oldest_seq(&*store).await?;
    let size = store.admin()?.size_bytes();
    // A store without schedules has none waiting.
    let scheduled = match store.as_schedules() {
        Some(schedules) => schedules
            .scheduled()
            .await
            .context("listing scheduled events")?,
        None => Vec::new(),
    };
    let next_due = scheduled.first().map(|s| s.due);
    let mut open_sagas: BTreeMap<String, u64> = BTreeMap::new();
    for instance in crate::sagas::instances(&*store, None, true).await? {
        *open_sagas.entry(instance.saga).or_default() += 1;
    }
    let describe = store.describe();
    open::close(&*store).await?;

    let events: u64 = topics.iter().map(|t| t.count).sum();
    let first = topics.iter().map(|t| t.first).min();
    let last = topics.iter().map(|t| t.last).max();
    let retrying = dead.iter().filter(|d| d.retry_requested).count();
    // Every handler with a checkpoint or a dead letter, by name.
    let mut handlers: BTreeMap<&str, (Option<u64>, u64)> = BTreeMap::new();
    for (name, seq) in &checkpoints {
        handlers.entry(name).or_default().0 = Some(*seq);
    }
    for d in &dead {
        handlers.entry(&d.handler).or_default().1 += 1;
    }
    // Lag: events stored after the handler's checkpoint.
    let lag = |checkpoint: Option<u64>| checkpoint.map(|c| newest.saturating_sub(c));
    let mut out = std::io::stdout().lock();
    if args.json {
        let handlers: Vec<_> = handlers
            .iter()
            .map(|(name, (seq, dead))| {
                json!({"name": name, "checkpoint": seq, "lag": lag(*seq), "dead_letters": dead})
            })
            .collect();
        let report = json!({
            "store": describe,
            "events": events,
            "topics": topics.len(),
            "oldest_seq": oldest,
            "newest_seq": newest,
            "first": first.map(output::time),
            "last": last.map(output::time),
            "size_bytes": size,
            "dead_letters": dead.len(),
            "dead_letters_retrying": retrying,
            "scheduled": scheduled.len(),
            "next_due": next_due.map(output::time),
            "open_sagas": open_sagas,
            "handlers": handlers,
        });
        writeln!(out, "{report}")?;
    } else {
        let mut facts = vec![
            ("store", describe),
            ("events", format!("{events} in {} topic(s)", topics.len())),
        ];
        if events > 0 {
            facts.push(("seqs", format!("{oldest} to {newest}")));
        }
        if let (Some(first), Some(last)) = (first, last) {
            let (first, last) = (output::time(first), output::time(last));
            facts.push(("times", format!("{first} to {last}")));
        }
        if let Some(size) = size {
            facts.push(("size", output::bytes(size)));
        }
        let dead_text = format!("{} ({retrying} waiting for a retry)", dead.len());
        facts.push(("dead letters", dead_text));
        let scheduled_text = match next_due {
            Some(due) => format!("{} (next due {})", scheduled.len(), output::time(due)),
            None => "none waiting".to_owned(),
        };
        facts.push(("scheduled", scheduled_text));
        let sagas_text = if open_sagas.is_empty() {
            "none open".to_owned()
        } else {
            open_sagas
                .iter()
                .map(|(saga, n)| format!("{saga} {n} open"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        facts.push(("sagas", sagas_text));
        for (label, value) in facts {
            writeln!(out, "{:<14}{value}", format!("{label}:"))?;
        }
        if handlers.is_empty() {
            writeln!(out, "handlers:     none has a checkpoint yet")?;
        } else {
            writeln!(out, "handlers:")?;
            let mut table = Table::new(&["  HANDLER", "CHECKPOINT", "LAG", "DEAD"]);
            let or_dash = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
            for (name, (seq, dead)) in &handlers {
                table.push(vec![
                    format!("  {name}"),
                    or_dash(*seq),
                    or_dash(lag(*seq)),
                    dead.to_string(),
                ]);
            }
            table.write(&mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}

async fn oldest_seq(store: &dyn Store) -> Result<u64> {
    use futures_util::StreamExt;
    let mut query = Query::default();
    query.order = Order::Oldest;
    query.limit = Some(1);
    match store.query(query).next().await {
        Some(env) => Ok(env.context("reading the oldest event")?.seq()),
        None => Ok(0),
    }
}

pub(crate) async fn clear(url: &str, args: ClearArgs) -> Result<()> {
    let pattern = args.pattern;
    prompt::require_confirmation(args.yes, "`clear`")?;
    let store = open::existing(url).await?;
    let matching: u64 = store
        .admin()?
        .topics()
        .await
        .context("listing topics")?
        .iter()
        .filter(|t| pattern.matches(&t.topic))
        .map(|t| t.count)
        .sum();
    if matching == 0 {
        open::close(&*store).await?;
        println!("no events match `{pattern}`; nothing deleted");
        return Ok(());
    }
    let question = format!(
        "Delete {matching} event(s) matching `{pattern}` from {}?",
        store.describe()
    );
    if let Err(e) = prompt::confirm(args.yes, &question) {
        open::close(&*store).await?;
        return Err(e);
    }
    let bar = prompt::spinner(&format!("deleting events matching `{pattern}`"));
    let deleted = store.admin()?.clear(&pattern).await;
    bar.finish_and_clear();
    let deleted = deleted.with_context(|| format!("clearing `{pattern}`"))?;
    open::close(&*store).await?;
    println!("deleted {deleted} event(s) matching `{pattern}`");
    Ok(())
}

/// Only SQLite files are copied by the CLI: a NATS stream is backed up by
/// the server's own tools (`nats stream backup`), Redis by its snapshots
/// or AOF files.
pub(crate) async fn backup(url: &str, args: BackupArgs) -> Result<()> {
    // The URL itself is never echoed: it may hold a NATS password.
    if !url.starts_with("sqlite://") {
        bail!(
            "backup copies sqlite:// stores only; for NATS use `nats stream backup`, for \
             Redis its RDB snapshot or AOF files"
        );
    }
    // Refuses a file that is not there, as every command that reads does.
    let existing = open::existing(url).await?;
    open::close(&*existing).await?;
    let store = SqliteStore::open(url).await?;
    let bar = prompt::spinner(&format!("backing up to {}", args.file.display()));
    let copied = store.backup(&args.file).await;
    bar.finish_and_clear();
    open::close(&store).await?;
    copied?;
    println!("backed up {} to {}", store.describe(), args.file.display());
    Ok(())
}
