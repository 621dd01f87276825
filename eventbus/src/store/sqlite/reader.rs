//! Reading the file: history queries pushed down to SQL and read in pages,
//! on a small pool of read-only connections beside the writer.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, Row, params_from_iter};
use serde_json::value::RawValue;

use super::schema::{self, Synchronous};
use crate::envelope::{EventId, HeaderValue, Metadata, REPLAY_HEADER, RawEnvelope};
use crate::error::Error;
use crate::store::query::{Order, Query};
use crate::topic::Pattern;

pub(crate) const COLUMNS: &str = "seq, id, topic, time_ns, source, correlation_id, causation_id, \
                       idempotency_key, headers, event_name, event_version, data, subject, dataschema, stream_version";

/// Read connections, opened on demand and reused until the store closes.
pub(crate) struct Readers {
    path: PathBuf,
    /// `None` once closed: a read still running then drops its connection
    /// when done instead of keeping it.
    idle: Mutex<Option<Vec<Connection>>>,
}

/// One page of a query: the rows (each may fail on its own) and the seq to
/// continue after.
pub(crate) struct Page {
    pub(crate) rows: Vec<Result<RawEnvelope, Error>>,
    pub(crate) last_seq: Option<u64>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf) -> Self {
        Readers {
            path,
            idle: Mutex::new(Some(Vec::new())),
        }
    }

    /// Closes the idle connections; later reads open and close their own.
    pub(crate) fn close(&self) {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(idle);
    }

    /// Runs `f` on an idle connection (or a new one), blocking.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(Vec::pop);
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                schema::configure(&conn, Synchronous::Normal)?;
                conn
            }
        };
        let out = f(&conn);
        if let Some(idle) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            idle.push(conn);
        }
        out
    }

    /// Reads up to `size` matching rows after `cursor` in the query's order.
    pub(crate) fn page(
        &self,
        query: &Query,
        cursor: Option<u64>,
        size: usize,
    ) -> rusqlite::Result<Page> {
        let (sql, args) = page_sql(query, cursor, size);
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(args))?;
            let mut page = Page {
                rows: Vec::with_capacity(size),
                last_seq: None,
            };
            while let Some(row) = rows.next()? {
                let seq: i64 = row.get(0)?;
                page.last_seq = Some(seq as u64);
                page.rows
                    .push(envelope(row, query.replay).map_err(|reason| Error::BadRow {
                        seq: seq as u64,
                        reason,
                    }));
            }
            Ok(page)
        })
    }
}

/// A `WHERE` clause under construction, numbering its parameters.
struct Where {
    sql: String,
    args: Vec<Value>,
}

impl Where {
    /// Adds `AND clause`, where the one `?` in `clause` takes `value`.
    fn term(&mut self, clause: &str, value: Value) {
        self.args.push(value);
        let numbered = clause.replace('?', &format!("?{}", self.args.len()));
        self.sql.push_str(" AND ");
        self.sql.push_str(&numbered);
    }

    /// Adds the terms of one group, or `AND ((a AND b) OR (c))` for
    /// several: rows that pass every term of any one group.
    fn any_group(&mut self, groups: Vec<Vec<(&str, Value)>>) {
        if let [_] = groups.as_slice() {
            for (clause, value) in groups.into_iter().flatten() {
                self.term(clause, value);
            }
            return;
        }
        let mut alternatives = Vec::with_capacity(groups.len());
        for group in groups {
            let mut terms = Vec::with_capacity(group.len());
            for (clause, value) in group {
                self.args.push(value);
                terms.push(clause.replace('?', &format!("?{}", self.args.len())));
            }
            alternatives.push(format!("({})", terms.join(" AND ")));
        }
        self.sql
            .push_str(&format!(" AND ({})", alternatives.join(" OR ")));
    }

    /// Adds `AND column IN (...)`.
    fn one_of(&mut self, column: &str, values: &[String]) {
        let mut marks = Vec::with_capacity(values.len());
        for value in values {
            self.args.push(Value::Text(value.clone()));
            marks.push(format!("?{}", self.args.len()));
        }
        self.sql
            .push_str(&format!(" AND {column} IN ({})", marks.join(", ")));
    }
}

/// The SQL and arguments for one page: every filter is a `WHERE` term, and
/// a pattern with a literal prefix also bounds the topic index range.
fn page_sql(query: &Query, cursor: Option<u64>, size: usize) -> (String, Vec<Value>) {
    let mut w = Where {
        sql: format!("SELECT {COLUMNS} FROM events WHERE 1 = 1"),
        args: Vec::new(),
    };
    if !query.patterns.is_empty() {
        w.any_group(query.patterns.iter().map(pattern_terms).collect());
    }
    if !query.topics.is_empty() {
        w.one_of("topic", &query.topics);
    }
    if let Some(source) = &query.source {
        w.term("source = ?", Value::Text(source.clone()));
    }
    if let Some(subject) = &query.subject {
        w.term("subject = ?", Value::Text(subject.clone()));
    }
    if let Some(id) = &query.correlation_id {
        w.term("correlation_id = ?", Value::Text(id.clone()));
    }
    if let Some(scope) = &query.scope {
        // Kept in the headers like any extension attribute: the scope
        // itself, or a path below it (`a/...` sorts between `a/` and `a0`,
        // as `0` follows `/`).
        let path = scope.as_str();
        w.any_group(vec![
            vec![(
                "json_extract(headers, '$.scope') = ?",
                Value::Text(path.to_owned()),
            )],
            vec![
                (
                    "json_extract(headers, '$.scope') >= ?",
                    Value::Text(format!("{path}/")),
                ),
                (
                    "json_extract(headers, '$.scope') < ?",
                    Value::Text(format!("{path}0")),
                ),
            ],
        ]);
    }
    if let Some(t) = query.since {
        w.term("time_ns >= ?", Value::Integer(to_ns(t)));
    }
    if let Some(t) = query.until {
        w.term("time_ns < ?", Value::Integer(to_ns(t)));
    }
    if let Some(s) = query.after_seq {
        w.term("seq > ?", Value::Integer(clamp(s)));
    }
    if let Some(s) = query.before_seq {
        w.term("seq < ?", Value::Integer(clamp(s)));
    }
    let order = match query.order {
        Order::Oldest => "ASC",
        Order::Newest => "DESC",
    };
    if let Some(c) = cursor {
        let after = if query.order == Order::Oldest {
            "seq > ?"
        } else {
            "seq < ?"
        };
        w.term(after, Value::Integer(clamp(c)));
    }
    w.sql
        .push_str(&format!(" ORDER BY seq {order} LIMIT {size}"));
    (w.sql, w.args)
}

/// The terms that select one pattern's topics: the topic itself, or the
/// index range of the pattern's literal prefix plus exact matching.
fn pattern_terms(pattern: &Pattern) -> Vec<(&'static str, Value)> {
    let p = pattern.as_str();
    if !eventbus_topic::has_wildcard(p) {
        return vec![("topic = ?", Value::Text(p.to_owned()))];
    }
    let mut terms = Vec::with_capacity(3);
    let prefix = literal_prefix(p);
    if !prefix.is_empty() {
        // Every topic under `a.b.` sorts between `a.b.` and `a.b/`.
        let upper = format!("{}/", &prefix[..prefix.len() - 1]);
        terms.push(("topic >= ?", Value::Text(prefix)));
        terms.push(("topic < ?", Value::Text(upper)));
    }
    terms.push(("topic_matches(?, topic)", Value::Text(p.to_owned())));
    terms
}

/// The tokens before the first wildcard, with a trailing dot (`order.` for
/// `order.*`), or empty when the pattern starts with a wildcard.
fn literal_prefix(pattern: &str) -> String {
    let mut prefix = String::new();
    for token in pattern.split('.') {
        if token == "*" || token == ">" {
            break;
        }
        prefix.push_str(token);
        prefix.push('.');
    }
    prefix
}

fn clamp(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

pub(crate) fn to_ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// Rebuilds an envelope from its row; the error says which column is bad.
pub(crate) fn envelope(row: &Row<'_>, replay: bool) -> Result<RawEnvelope, String> {
    let col = |e: rusqlite::Error| e.to_string();
    let id: String = row.get(1).map_err(col)?;
    let id = EventId::parse(&id).map_err(|e| format!("id: {e}"))?;
    let headers: Option<String> = row.get(8).map_err(col)?;
    let mut headers = match headers {
        None => BTreeMap::new(),
        Some(text) => read_headers(&text)?,
    };
    if replay {
        headers.insert(REPLAY_HEADER.to_owned(), HeaderValue::from("true"));
    }
    let data: String = row.get(11).map_err(col)?;
    let data = RawValue::from_string(data).map_err(|e| format!("data is not valid JSON: {e}"))?;
    let seq: i64 = row.get(0).map_err(col)?;
    let version: i64 = row.get(10).map_err(col)?;
    let meta = Metadata {
        id,
        topic: Cow::Owned(row.get(2).map_err(col)?),
        time: DateTime::from_timestamp_nanos(row.get(3).map_err(col)?),
        source: Arc::from(row.get::<_, String>(4).map_err(col)?),
        subject: row.get(12).map_err(col)?,
        dataschema: row.get(13).map_err(col)?,
        correlation_id: row.get(5).map_err(col)?,
        causation_id: row.get(6).map_err(col)?,
        idempotency_key: row.get(7).map_err(col)?,
        headers,
        seq: seq as u64,
        event_name: Cow::Owned(row.get(9).map_err(col)?),
        event_version: u32::try_from(version)
            .map_err(|_| format!("event_version {version} is out of range"))?,
        stream_version: row
            .get::<_, Option<i64>>(14)
            .map_err(col)?
            .map(|v| v as u64),
    };
    Ok(RawEnvelope::from_parts(meta, data))
}

/// The `headers` column: a JSON object whose values keep their
/// CloudEvents type; `None` when there are none.
pub(crate) fn headers_json(headers: &BTreeMap<String, HeaderValue>) -> Option<String> {
    if headers.is_empty() {
        return None;
    }
    let object: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(name, value)| (name.clone(), value.to_json()))
        .collect();
    Some(serde_json::Value::Object(object).to_string())
}

fn read_headers(text: &str) -> Result<BTreeMap<String, HeaderValue>, String> {
    let object: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| format!("headers are not a JSON object: {e}"))?;
    object
        .into_iter()
        .map(|(name, value)| {
            let value =
                HeaderValue::from_json(value).map_err(|e| format!("header `{name}`: {e}"))?;
            Ok((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_become_index_ranges_plus_exact_matching() {
        assert_eq!(literal_prefix("order.*"), "order.");
        assert_eq!(literal_prefix("a.b.>"), "a.b.");
        assert_eq!(literal_prefix("*.placed"), "");
        let q = Query {
            patterns: vec![Pattern::new("order.*").unwrap()],
            ..Query::default()
        };
        let (sql, args) = page_sql(&q, Some(10), 5);
        assert!(
            sql.contains("topic >= ?1 AND topic < ?2 AND topic_matches(?3, topic) AND seq > ?4"),
            "{sql}"
        );
        assert!(sql.ends_with("ORDER BY seq ASC LIMIT 5"), "{sql}");
        assert_eq!(args[1], Value::Text("order/".into()));
        let exact = Query {
            patterns: vec![Pattern::new("order.placed").unwrap()],
            order: Order::Newest,
            ..Query::default()
        };
        let (sql, _) = page_sql(&exact, None, 5);
        assert!(sql.contains("topic = ?1") && sql.contains("DESC"), "{sql}");
        let either = Query {
            patterns: vec![
                Pattern::new("order.*").unwrap(),
                Pattern::new("audit.log").unwrap(),
            ],
            ..Query::default()
        };
        let (sql, args) = page_sql(&either, None, 5);
        assert!(
            sql.contains(
                "AND ((topic >= ?1 AND topic < ?2 AND topic_matches(?3, topic)) OR (topic = ?4))"
            ),
            "{sql}"
        );
        assert_eq!(args[3], Value::Text("audit.log".into()));
    }
}
