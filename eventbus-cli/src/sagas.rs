//! `eventbus sagas`: the instances of the process managers (sagas) kept in
//! the store, with their state. Running them is the services' work.

use std::io::Write;

use anyhow::Result;
use eventbus::saga::SagaInstance;
use eventbus::store::Store;
use serde_json::json;

use crate::cli::SagasArgs;
use crate::open;
use crate::output::{self, Table};

/// The longest state shown in a table cell; `--json` shows all.
const STATE_WIDTH: usize = 60;

pub(crate) async fn run(url: &str, args: SagasArgs) -> Result<()> {
    let store = open::existing(url).await?;
    let instances = instances(&*store, args.saga.as_deref(), args.open).await;
    open::close(&*store).await?;
    let instances: Vec<SagaInstance> = instances?
        .into_iter()
        .filter(|i| {
            args.correlation_id
                .as_ref()
                .is_none_or(|c| *c == i.correlation_id)
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        for i in &instances {
            writeln!(out, "{}", as_json(i))?;
        }
    } else if instances.is_empty() {
        eprintln!("no saga instances match");
    } else {
        write_table(&mut out, &instances)?;
    }
    out.flush()?;
    Ok(())
}

/// The instances of `saga` (or all), open ones only with `open_only`.
pub(crate) async fn instances(
    store: &dyn Store,
    saga: Option<&str>,
    open_only: bool,
) -> Result<Vec<SagaInstance>> {
    // A store without sagas has no instances.
    let Some(sagas) = store.as_sagas() else {
        return Ok(Vec::new());
    };
    let stored = sagas.saga_instances(saga, open_only).await?;
    Ok(stored
        .iter()
        .map(SagaInstance::from_stored)
        .collect::<eventbus::Result<_>>()?)
}

fn as_json(i: &SagaInstance) -> serde_json::Value {
    json!({
        "saga": i.saga,
        "key": i.key,
        "open": i.open,
        "version": i.version,
        "correlation_id": i.correlation_id,
        "started": output::time(i.started),
        "updated": output::time(i.updated),
        "timers": i.timers,
        "pending": i.pending,
        "state": i.state,
    })
}

/// A table of instances: what `sagas` prints, and `history
/// --correlation-id` after the events.
pub(crate) fn write_table(out: &mut impl Write, instances: &[SagaInstance]) -> Result<()> {
    let mut table = Table::new(&[
        "SAGA",
        "KEY",
        "STATUS",
        "VER",
        "CORRELATION",
        "UPDATED",
        "STATE",
    ]);
    for i in instances {
        table.push(vec![
            i.saga.clone(),
            i.key.clone(),
            if i.open { "open" } else { "completed" }.to_owned(),
            i.version.to_string(),
            i.correlation_id.clone(),
            output::time(i.updated),
            output::shorten(&i.state.to_string(), STATE_WIDTH),
        ]);
    }
    table.write(out)?;
    Ok(())
}
