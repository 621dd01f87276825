//! Schema snapshots: a test that fails when an event type's data changed
//! while its version did not.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::catalog;
use crate::event::Event;

/// Fails when the JSON Schema of `E`'s data changed while its version did
/// not: "forgot to bump the version" becomes a failing test.
///
/// The first run writes `schemas/<NAME>.v<VERSION>.json` under the crate
/// being tested (`CARGO_MANIFEST_DIR`), one schema per topic; commit it.
/// Later runs compare against it and panic, naming the type, the version
/// and each field added, removed or changed. After a deliberate change,
/// raise `#[event(version = ..)]` (and add the upcaster): the new
/// version gets its own file and the old one stays as the record of what
/// was stored before.
///
/// # Panics
///
/// On a changed schema, on a file that cannot be read or written, and
/// when `E` is not linked into the test binary.
pub fn assert_schemas_unchanged<E: Event>() {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .expect("CARGO_MANIFEST_DIR is set when cargo runs tests")
        .join("schemas");
    assert_schemas_unchanged_in::<E>(&dir);
}

/// [`assert_schemas_unchanged`] with the snapshots kept in `dir`.
///
/// # Panics
///
/// As [`assert_schemas_unchanged`].
pub fn assert_schemas_unchanged_in<E: Event>(dir: &Path) {
    let current = schemas_of::<E>();
    let file = dir.join(format!("{}.v{}.json", E::NAME, E::VERSION));
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
            let pretty = serde_json::to_string_pretty(&current).expect("JSON values serialize");
            std::fs::write(&file, pretty + "\n")
                .unwrap_or_else(|e| panic!("writing {}: {e}", file.display()));
            return;
        }
        Err(e) => panic!("reading {}: {e}", file.display()),
    };
    let recorded: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
    if recorded == current {
        return;
    }
    panic!(
        "the data of event `{name}` changed but its version is still {version}:\n{changes}\n\
         Raise `#[event(version = {next})]` and add `upcast(from = {version}, ..)`, so events \
         stored as version {version} still read; or, if nothing was ever stored with the \
         recorded shape, delete {file} to record the new one.",
        name = E::NAME,
        version = E::VERSION,
        next = E::VERSION + 1,
        changes = changes(&recorded, &current).join("\n"),
        file = file.display(),
    );
}

/// `E`'s schemas by topic, from the catalog.
fn schemas_of<E: Event>() -> Value {
    let info = catalog::linked_events()
        .into_iter()
        .find(|e| e.name == E::NAME && e.version == E::VERSION)
        .unwrap_or_else(|| panic!("event type `{}` is not linked into this binary", E::NAME));
    let mut topics = Map::new();
    for topic in info.topics {
        let schema = topic.schema.unwrap_or_else(|| {
            panic!(
                "no schema for `{}`: build eventbus with the `schema` feature",
                E::NAME
            )
        });
        topics.insert(topic.topic.to_owned(), schema);
    }
    Value::Object(topics)
}

/// What differs, topic by topic and field by field, for a person.
fn changes(recorded: &Value, current: &Value) -> Vec<String> {
    let empty = Map::new();
    let recorded = recorded.as_object().unwrap_or(&empty);
    let current = current.as_object().unwrap_or(&empty);
    let topics: BTreeSet<&String> = recorded.keys().chain(current.keys()).collect();
    let mut out = Vec::new();
    for topic in topics {
        match (recorded.get(topic), current.get(topic)) {
            (Some(_), None) => out.push(format!("  {topic}: topic removed")),
            (None, Some(_)) => out.push(format!("  {topic}: topic added")),
            (Some(old), Some(new)) if old != new => field_changes(topic, old, new, &mut out),
            _ => {}
        }
    }
    out
}

fn field_changes(topic: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    let properties = |schema: &Value| schema.get("properties").and_then(Value::as_object).cloned();
    let required = |schema: &Value| -> BTreeSet<String> {
        schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (Some(old_fields), Some(new_fields)) = (properties(old), properties(new)) else {
        out.push(format!("  {topic}: the data's schema changed"));
        return;
    };
    let before = out.len();
    let names: BTreeSet<&String> = old_fields.keys().chain(new_fields.keys()).collect();
    for name in names {
        match (old_fields.get(name), new_fields.get(name)) {
            (Some(_), None) => out.push(format!("  {topic}: field `{name}` removed")),
            (None, Some(_)) => out.push(format!("  {topic}: field `{name}` added")),
            (Some(a), Some(b)) if a != b => {
                out.push(format!("  {topic}: field `{name}` changed from {a} to {b}"));
            }
            _ => {}
        }
    }
    let (old_required, new_required) = (required(old), required(new));
    for name in new_required.difference(&old_required) {
        out.push(format!("  {topic}: field `{name}` is now required"));
    }
    for name in old_required.difference(&new_required) {
        out.push(format!("  {topic}: field `{name}` is no longer required"));
    }
    if out.len() == before {
        out.push(format!("  {topic}: the data's schema changed"));
    }
}
