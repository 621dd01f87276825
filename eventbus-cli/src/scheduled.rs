//! `eventbus scheduled list|cancel`: events stored for later. Publishing
//! them when due is the work of the services' buses, not of this command.

use std::io::Write;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::cli::{ScheduledCancelArgs, ScheduledCommand, ScheduledListArgs};
use crate::open;
use crate::output::{self, Table};

/// The longest data shown in a table cell; `--json` shows all.
const DATA_WIDTH: usize = 40;

pub(crate) async fn run(url: &str, command: ScheduledCommand) -> Result<()> {
    match command {
        ScheduledCommand::List(args) => list(url, args).await,
        ScheduledCommand::Cancel(args) => cancel(url, args).await,
    }
}

#[derive(Serialize)]
struct ScheduledJson<'a> {
    due: String,
    envelope: &'a eventbus::RawEnvelope,
}

async fn list(url: &str, args: ScheduledListArgs) -> Result<()> {
    let store = open::existing(url).await?;
    let waiting = store.schedules()?.scheduled().await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        for s in &waiting {
            let json = ScheduledJson {
                due: output::time(s.due),
                envelope: &s.envelope,
            };
            writeln!(
                out,
                "{}",
                output::one_line_json(serde_json::to_string(&json)?)
            )?;
        }
    } else if waiting.is_empty() {
        eprintln!("no scheduled events");
    } else {
        let mut table = Table::new(&["DUE", "ID", "TOPIC", "DATA"]);
        for s in &waiting {
            let data = match s.envelope.data_json() {
                Ok(raw) => {
                    output::shorten(&output::one_line_json(raw.get().to_owned()), DATA_WIDTH)
                }
                Err(e) => format!("<{e}>"),
            };
            table.push(vec![
                output::time(s.due),
                s.envelope.id().to_string(),
                s.envelope.topic().to_owned(),
                data,
            ]);
        }
        table.write(&mut out)?;
    }
    store.close().await?;
    Ok(())
}

async fn cancel(url: &str, args: ScheduledCancelArgs) -> Result<()> {
    let store = open::existing(url).await?;
    let cancelled = store.schedules()?.cancel(&args.id).await?;
    store.close().await?;
    if !cancelled {
        bail!(
            "no scheduled event has the id `{}`: it was published, cancelled, or never scheduled \
             (`eventbus scheduled list` shows what waits)",
            args.id
        );
    }
    println!("cancelled {}", args.id);
    Ok(())
}
