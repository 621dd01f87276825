//! The command line, as clap reads it. The doc comments are the help text.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use eventbus::Scope;
use eventbus::topic::{Pattern, Topic};

use crate::time::parse_time;

/// Publish, follow, query, replay, export and import the events of an
/// eventbus store, and inspect, retry or purge its dead letters.
#[derive(Debug, Parser)]
#[command(name = "eventbus", version, propagate_version = true)]
pub(crate) struct Cli {
    /// The store: `sqlite://PATH` (options after `?`, such as
    /// `sqlite://events.db?synchronous=normal`), a NATS JetStream server,
    /// `nats://HOST:PORT` (such as `nats://127.0.0.1:4222?stream=EVENTBUS`),
    /// or a Redis server, `redis://HOST:PORT/DB` or `rediss://` for TLS
    /// (such as `redis://127.0.0.1:6379/0?prefix=eventbus`).
    /// `memory://` is refused: it lives inside one process, so it would be
    /// empty for every command and vanish when the command exits.
    #[arg(
        long,
        global = true,
        env = "EVENTBUS_URL",
        default_value = "sqlite://eventbus.db",
        value_name = "URL"
    )]
    pub(crate) store: String,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Publish one event (JSON data) and print its id and seq.
    Publish(PublishArgs),
    /// Print new events as they are stored, until Ctrl-C.
    Tail(TailArgs),
    /// Print stored events: a table, or NDJSON CloudEvents with --json.
    History(HistoryArgs),
    /// Print past events paced as they happened, or rewind a handler's
    /// checkpoint (--to-handler) so its service handles them again.
    Replay(ReplayArgs),
    /// List topics with their event counts and first and last times.
    Topics(TopicsArgs),
    /// Totals, handler checkpoints with their lag, and the store's size.
    Stats(StatsArgs),
    /// The events handlers gave up on: list, show, retry or purge them.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Write events as NDJSON CloudEvents to stdout.
    Export(ExportArgs),
    /// Read NDJSON CloudEvents into the store; importing twice adds nothing.
    Import(ImportArgs),
    /// Delete every event whose topic matches a pattern.
    Clear(ClearArgs),
    /// Copy a `sqlite://` store, while it is in use, into a new file.
    Backup(BackupArgs),
    /// Events scheduled for later: list or cancel them.
    #[command(subcommand)]
    Scheduled(ScheduledCommand),
    /// Saga instances with their state: a table, or NDJSON with --json.
    Sagas(SagasArgs),
    /// Serve a web console: live events, history, causation, handlers,
    /// topics, dead letters, and Prometheus metrics at /metrics.
    Ui(UiArgs),
}

#[derive(Debug, Args)]
pub(crate) struct UiArgs {
    /// The address to serve on. Any address other than a loopback one
    /// needs --token.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) listen: std::net::SocketAddr,

    /// A secret every request must carry: once as `?token=...` in the
    /// address (the console then keeps it in a cookie), or in an
    /// `Authorization: Bearer ...` header. At least 16 characters.
    #[arg(
        long,
        env = "EVENTBUS_UI_TOKEN",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub(crate) token: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct SagasArgs {
    /// Only instances of this saga (its name, as `#[saga(name = "...")]`).
    pub(crate) saga: Option<String>,

    /// Only open instances.
    #[arg(long)]
    pub(crate) open: bool,

    /// Only the instance whose events share this correlation id.
    #[arg(long, value_name = "ID")]
    pub(crate) correlation_id: Option<String>,

    /// Print one JSON object per instance, with its whole state.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ScheduledCommand {
    /// List the events waiting for their time, soonest first: a table, or
    /// NDJSON with --json.
    List(ScheduledListArgs),
    /// Cancel a scheduled event by its id, as `scheduled list` shows it.
    Cancel(ScheduledCancelArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ScheduledListArgs {
    /// Print one JSON object per event (`due` and the event as a
    /// CloudEvent) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ScheduledCancelArgs {
    /// The event's id.
    pub(crate) id: String,
}

#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    /// The topic, such as `order.placed` (no wildcards).
    #[arg(value_parser = parse_topic)]
    pub(crate) topic: Topic,

    /// The event data: JSON text, `@FILE` to read a file, or `-` for stdin.
    #[arg(long, value_name = "JSON")]
    pub(crate) data: String,

    /// The CloudEvents source: who publishes.
    #[arg(long, default_value = "eventbus-cli")]
    pub(crate) source: String,

    /// Ties the event to a request or flow.
    #[arg(long, value_name = "ID")]
    pub(crate) correlation_id: Option<String>,

    /// What the event is about within its source, such as an entity id
    /// (the CloudEvents `subject`).
    #[arg(long, value_name = "SUBJECT")]
    pub(crate) subject: Option<String>,

    /// A key that makes repeated publishes of one fact recognizable.
    #[arg(long, value_name = "KEY")]
    pub(crate) idempotency_key: Option<String>,

    /// A header, `name=value` (names: 1-20 lower-case letters or digits);
    /// repeat for more.
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
    pub(crate) headers: Vec<(String, String)>,

    /// The version of the readers' event type the data is shaped as
    /// (stored as `eventversion`; older versions are upcast on reading).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) event_version: u32,

    /// Publishes this long from now (`30s`, `10m`, `2h`): stored now, and
    /// routed when due by the services running on the store.
    #[arg(long, value_name = "DURATION", value_parser = parse_delay)]
    pub(crate) deliver_after: Option<std::time::Duration>,

    /// Publishes into this scope (`tenant-a`, `tenant-a/eu`), as
    /// `bus.scope(..)` does.
    #[arg(long, value_name = "PATH", value_parser = parse_scope)]
    pub(crate) scope: Option<Scope>,
}

/// Which events: the filters `history`, `replay` and `export` share.
#[derive(Debug, Args)]
pub(crate) struct Filters {
    /// Only events published at or after T: RFC 3339
    /// (2026-01-02T15:04:05Z) or an age such as 10m, 2h, 3d.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub(crate) since: Option<DateTime<Utc>>,

    /// Only events published before T (same forms as --since).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub(crate) until: Option<DateTime<Utc>>,

    /// Only events from this source.
    #[arg(long, value_name = "S")]
    pub(crate) source: Option<String>,

    /// Only events with this correlation id.
    #[arg(long, value_name = "ID")]
    pub(crate) correlation_id: Option<String>,

    /// Only events with this CloudEvents subject (such as an entity id).
    #[arg(long, value_name = "SUBJECT")]
    pub(crate) subject: Option<String>,

    /// Only events published in this scope or below it (`tenant-a`,
    /// `tenant-a/eu`).
    #[arg(long, value_name = "PATH", value_parser = parse_scope)]
    pub(crate) scope: Option<Scope>,
}

#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// Only topics matching this pattern (`*` one token, `>` the rest).
    #[arg(value_parser = parse_pattern)]
    pub(crate) pattern: Option<Pattern>,

    /// Print NDJSON CloudEvents instead of lines for reading.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// Only topics matching this pattern (`*` one token, `>` the rest).
    #[arg(value_parser = parse_pattern)]
    pub(crate) pattern: Option<Pattern>,

    #[command(flatten)]
    pub(crate) filters: Filters,

    /// At most N events.
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,

    /// Newest first.
    #[arg(long)]
    pub(crate) reverse: bool,

    /// Print NDJSON CloudEvents instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// Topics to replay (`*` one token, `>` the rest).
    #[arg(value_parser = parse_pattern)]
    pub(crate) pattern: Pattern,

    /// Replay from this time: RFC 3339 or an age such as 10m, 2h, 3d.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub(crate) since: DateTime<Utc>,

    /// Stop before this time (printing only).
    #[arg(long, value_name = "T", value_parser = parse_time, conflicts_with = "to_handler")]
    pub(crate) until: Option<DateTime<Utc>>,

    /// Pace factor: 2 plays twice as fast as the events happened.
    #[arg(
        long,
        value_name = "X",
        default_value = "1",
        value_parser = parse_speed,
        allow_negative_numbers = true
    )]
    pub(crate) speed: f64,

    /// Print NDJSON CloudEvents instead of lines for reading.
    #[arg(long, conflicts_with = "to_handler")]
    pub(crate) json: bool,

    /// Instead of printing, move this handler's checkpoint to just before
    /// --since, so the service running it handles those events again.
    #[arg(long, value_name = "NAME", conflicts_with = "speed")]
    pub(crate) to_handler: Option<String>,

    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y', requires = "to_handler")]
    pub(crate) yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TopicsArgs {
    /// Print one JSON object per topic instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Only topics matching this pattern (`*` one token, `>` the rest).
    #[arg(value_parser = parse_pattern)]
    pub(crate) pattern: Option<Pattern>,

    #[command(flatten)]
    pub(crate) filters: Filters,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// An NDJSON file of CloudEvents (as `export` writes), or `-` for stdin.
    pub(crate) file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ClearArgs {
    /// Topics to delete (`*` one token, `>` the rest; `>` is everything).
    #[arg(value_parser = parse_pattern)]
    pub(crate) pattern: Pattern,

    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// The new file (never overwritten); `sqlite://FILE` opens the copy.
    pub(crate) file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DlqCommand {
    /// List dead letters, oldest first: a table, or NDJSON with --json.
    List(DlqListArgs),
    /// Everything about one dead letter: the full error and the event.
    Show(DlqShowArgs),
    /// Ask the service running a dead letter's handler to retry it (within
    /// its dead_letter_poll, 2 s by default); this command runs no handler.
    Retry(DlqRetryArgs),
    /// Delete dead letters: all of them, or one handler's.
    Purge(DlqPurgeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DlqListArgs {
    /// Only this handler's dead letters.
    #[arg(long, value_name = "NAME")]
    pub(crate) handler: Option<String>,

    /// Print one JSON object per dead letter (the event as a CloudEvent)
    /// instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DlqShowArgs {
    /// The dead letter's id, as `dlq list` shows it.
    pub(crate) id: u64,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DlqRetryArgs {
    /// The dead letter's id, as `dlq list` shows it.
    pub(crate) id: u64,
}

#[derive(Debug, Args)]
pub(crate) struct DlqPurgeArgs {
    /// Only this handler's dead letters.
    #[arg(long, value_name = "NAME")]
    pub(crate) handler: Option<String>,

    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
}

fn parse_topic(text: &str) -> Result<Topic, eventbus::topic::InvalidTopic> {
    Topic::new(text.to_owned())
}

fn parse_pattern(text: &str) -> Result<Pattern, eventbus::topic::InvalidTopic> {
    Pattern::new(text.to_owned())
}

fn parse_delay(text: &str) -> Result<std::time::Duration, String> {
    eventbus::store::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a delay such as 30s, 10m or 2h: {e}"))
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    Scope::new(text)
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!(
            "`{text}` is not a header; write `name=value`, as in `tenant=acme`"
        )),
    }
}

fn parse_speed(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "`{text}` is not a positive number; 1 is real time, 10 is ten times faster"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn headers_need_a_name_and_an_equals_sign() {
        assert_eq!(
            parse_header("tenant=a=b"),
            Ok(("tenant".into(), "a=b".into()))
        );
        assert!(parse_header("tenant").is_err());
        assert!(parse_header("=x").is_err());
    }

    #[test]
    fn speed_is_positive_and_finite() {
        assert_eq!(parse_speed("2.5"), Ok(2.5));
        for bad in ["0", "-1", "inf", "NaN", "fast"] {
            assert!(parse_speed(bad).is_err(), "{bad}");
        }
    }
}
