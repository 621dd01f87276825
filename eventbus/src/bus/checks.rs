//! What `build()` checks before it starts anything; every check adds its
//! problems to one list, so a user sees them all at once.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::envelope::Scope;
use crate::error::{Error, Result};
use crate::handler::{HandlerDef, HandlerRegistration};
use crate::topic::Pattern;

/// Which `#[handler]` functions linked into the binary a bus runs.
pub(super) enum Registered {
    All,
    Only(Vec<String>),
}

/// The registry's handlers (all or the selected ones) plus the closure
/// handlers, sorted by name; unknown names and duplicates are problems.
pub(super) fn collect_handlers(
    registered: Registered,
    closures: Vec<HandlerDef>,
    problems: &mut Vec<Error>,
) -> Vec<HandlerDef> {
    let all = inventory::iter::<HandlerRegistration>.into_iter();
    let mut defs: Vec<HandlerDef> = match registered {
        Registered::All => all.map(HandlerDef::from_registration).collect(),
        Registered::Only(names) => {
            let known: Vec<&'static HandlerRegistration> = all.collect();
            let mut picked = Vec::new();
            for name in names {
                match known.iter().find(|r| r.name == name) {
                    Some(r) => picked.push(HandlerDef::from_registration(r)),
                    None => {
                        let mut known: Vec<String> =
                            known.iter().map(|r| r.name.to_owned()).collect();
                        known.sort();
                        problems.push(Error::UnknownHandler { name, known });
                    }
                }
            }
            picked
        }
    };
    defs.extend(closures);
    defs.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in defs.windows(2) {
        if pair[0].name == pair[1].name {
            problems.push(Error::DuplicateHandler {
                name: pair[0].name.to_string(),
                first: pair[0].location().to_owned(),
                second: pair[1].location().to_owned(),
            });
        }
    }
    defs
}

/// The scope a handler is limited to, if any, or `Err` when it is malformed.
pub(super) fn handler_scope(
    def: &HandlerDef,
    problems: &mut Vec<Error>,
) -> std::result::Result<Option<Scope>, ()> {
    let Some(path) = &def.options.scope else {
        return Ok(None);
    };
    Scope::new(path).map(Some).map_err(|e| {
        problems.push(Error::Config(format!("handler `{}`: {e}", def.name)));
    })
}

/// The topics a handler receives, or `None` when its pattern or options
/// are a problem.
pub(super) fn handler_topics(
    def: &HandlerDef,
    problems: &mut Vec<Error>,
) -> Option<Vec<&'static str>> {
    if def.options.concurrency == 0 {
        problems.push(Error::Config(format!(
            "handler `{}` has concurrency 0; it must be at least 1",
            def.name
        )));
        return None;
    }
    match &def.pattern {
        None => Some(def.topics.to_vec()),
        Some(pattern) => topics_matching(pattern, def.event, def.topics)
            .map_err(|e| problems.push(e))
            .ok(),
    }
}

/// Two event types claiming one topic would make decoding ambiguous.
pub(super) fn topic_owners(defs: &[HandlerDef], problems: &mut Vec<Error>) {
    let mut owners: HashMap<&'static str, &'static str> = HashMap::new();
    let mut reported = HashSet::new();
    for def in defs {
        for &topic in def.topics {
            let owner = *owners.entry(topic).or_insert(def.event);
            if owner != def.event && reported.insert((topic, def.event)) {
                problems.push(Error::TopicConflict {
                    topic: topic.to_owned(),
                    first: owner.to_owned(),
                    second: def.event.to_owned(),
                });
            }
        }
    }
}

pub(super) fn states(
    defs: &[HandlerDef],
    states: &HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    problems: &mut Vec<Error>,
) {
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    for def in defs {
        for need in &def.states {
            if !states.contains_key(&(need.type_id)())
                && seen.insert((need.type_name, def.name.clone()))
            {
                missing.push(format!(
                    "`{}` (needed by handler `{}`)",
                    need.type_name, def.name
                ));
            }
        }
    }
    if !missing.is_empty() {
        problems.push(Error::MissingState { missing });
    }
}

/// The topics among an event type's `topics` that `pattern` matches, or an
/// error naming what is wrong.
pub(super) fn topics_matching(
    pattern: &str,
    event: &'static str,
    topics: &'static [&'static str],
) -> Result<Vec<&'static str>> {
    let pattern = Pattern::new(pattern.to_owned())?;
    let matching: Vec<&'static str> = topics
        .iter()
        .copied()
        .filter(|t| pattern.matches(t))
        .collect();
    if matching.is_empty() {
        return Err(Error::PatternMatchesNothing {
            pattern: pattern.to_string(),
            event,
            topics,
        });
    }
    Ok(matching)
}
