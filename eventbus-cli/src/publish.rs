//! `eventbus publish TOPIC --data JSON`: one event, built as a CloudEvents
//! object (a shell has no Rust event type) and appended to the store.

use std::io::Read;

use anyhow::{Context as _, Result};
use chrono::{SecondsFormat, Utc};
use eventbus::envelope::{SCOPE_HEADER, validate_header_name};
use eventbus::{Draft, RawEnvelope};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::cli::PublishArgs;
use crate::error::usage;
use crate::open;

pub(crate) async fn run(url: &str, args: PublishArgs) -> Result<()> {
    // Every input is checked before the store is opened (and maybe created).
    let data = read_data(&args.data)?;
    let draft = draft(&args, data)?;
    let store = open::or_create(url).await?;
    if args.deliver_after.is_some() {
        let due = draft.time();
        let (id, topic) = (draft.id().to_string(), draft.topic().to_owned());
        store
            .schedules()?
            .schedule(draft, due)
            .await
            .context("scheduling")?;
        open::close(&*store).await?;
        println!("scheduled {topic} id={id} due={}", crate::output::time(due));
        return Ok(());
    }
    let id = draft.id().clone();
    let stored = store.append(draft).await.context("publishing")?;
    open::close(&*store).await?;
    let what = if *stored.id() == id {
        "published"
    } else {
        // The store already had an event with this idempotency key.
        "already published"
    };
    println!(
        "{what} {} seq={} id={}",
        stored.topic(),
        stored.seq(),
        stored.id()
    );
    Ok(())
}

/// The `--data` value (literal text, `@FILE` or `-` for stdin), checked to
/// be JSON and kept as written: parsing and re-serializing would reorder
/// keys, round big numbers and merge repeated keys.
fn read_data(arg: &str) -> Result<Box<RawValue>> {
    let (text, origin) = if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading --data from stdin")?;
        (text, "--data from stdin".to_owned())
    } else if let Some(path) = arg.strip_prefix('@') {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read `{path}`"))?;
        (text, format!("--data file `{path}`"))
    } else {
        (arg.to_owned(), "--data".to_owned())
    };
    // Parsed in full, as a `Value`, only to check it: this is the parser
    // whose errors (and their positions) the messages were written for.
    if let Err(e) = serde_json::from_str::<Value>(&text) {
        let (line, column) = position(&text, &e);
        return Err(usage(format!(
            "{origin} is not valid JSON: line {line}, column {column}: {}",
            json_reason(&e)
        )));
    }
    let data = text.trim_matches([' ', '\t', '\n', '\r']).to_owned();
    RawValue::from_string(data).with_context(|| format!("keeping {origin} as JSON"))
}

/// Where a JSON error is, for a person: serde_json puts an error found at
/// a line break at column 0 of the next line; that is the end of this one.
fn position(text: &str, e: &serde_json::Error) -> (usize, usize) {
    let (line, column) = (e.line(), e.column());
    if column > 0 || line < 2 {
        return (line, column.max(1));
    }
    let previous = text.lines().nth(line - 2).unwrap_or("");
    (line - 1, previous.chars().count().max(1))
}

/// A serde_json message without the ` at line L column C` it ends with.
pub(crate) fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

/// A CloudEvents object whose `data` is written out exactly as given.
#[derive(Serialize)]
struct CloudEvent<'a> {
    #[serde(flatten)]
    attributes: Map<String, Value>,
    data: &'a RawValue,
}

/// The event as a CloudEvents object, read back through the envelope's own
/// parser so that every rule (source, topic, attributes) is the runtime's.
fn draft(args: &PublishArgs, data: Box<RawValue>) -> Result<Draft> {
    let mut event = Map::new();
    for (name, value) in &args.headers {
        validate_header_name(name).map_err(usage)?;
        if name == SCOPE_HEADER {
            return Err(usage(format!(
                "header `{SCOPE_HEADER}` is the event's scope; give it with --scope"
            )));
        }
        if event
            .insert(name.clone(), Value::String(value.clone()))
            .is_some()
        {
            return Err(usage(format!("header `{name}` is given twice")));
        }
    }
    // A scheduled event's time is when it is due.
    let delay = chrono::Duration::from_std(args.deliver_after.unwrap_or_default())
        .map_err(|_| usage("--deliver-after is too long"))?;
    let now = (Utc::now() + delay).to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let mut set = |key: &str, value: Value| event.insert(key.to_owned(), value);
    set("specversion", "1.0".into());
    set("id", uuid::Uuid::now_v7().to_string().into());
    set("source", args.source.clone().into());
    set("type", args.topic.as_str().into());
    set("time", now.into());
    set("datacontenttype", "application/json".into());
    if let Some(subject) = &args.subject {
        set("subject", subject.clone().into());
    }
    if let Some(c) = &args.correlation_id {
        set("correlationid", c.clone().into());
    }
    if let Some(k) = &args.idempotency_key {
        set("idempotencykey", k.clone().into());
    }
    if let Some(scope) = &args.scope {
        set(SCOPE_HEADER, scope.as_str().into());
    }
    set("eventversion", args.event_version.into());
    let json = serde_json::to_vec(&CloudEvent {
        attributes: event,
        data: &data,
    })
    .context("encoding the event")?;
    let envelope = RawEnvelope::from_cloudevent_json(&json).map_err(|e| usage(json_reason(&e)))?;
    Ok(Draft::from_envelope(&envelope))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn where_is(text: &str) -> (usize, usize) {
        let e = serde_json::from_str::<Value>(text).expect_err("invalid");
        position(text, &e)
    }

    #[test]
    fn json_errors_point_at_the_line_and_column_a_person_sees() {
        assert_eq!(where_is("{\"a\": x}"), (1, 7));
        assert_eq!(where_is("{\n  \"a\": tru\n}"), (2, 10));
        assert_eq!(where_is("{\"a\":\n"), (1, 5));
        assert_eq!(where_is(""), (1, 1));
    }
}
