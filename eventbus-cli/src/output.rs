//! How events and summaries are printed: aligned tables and lines for
//! people, NDJSON CloudEvents for programs.

use std::io::Write;

use anyhow::{Context as _, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use eventbus::RawEnvelope;

/// The longest data shown in a table cell or a line; `--json` shows all.
const DATA_WIDTH: usize = 60;

/// The columns of an event in tables and lines.
pub(crate) const EVENT_HEADERS: [&str; 7] = [
    "SEQ",
    "TIME",
    "TOPIC",
    "VER",
    "SOURCE",
    "CORRELATION",
    "DATA",
];

/// An event as one line of NDJSON (CloudEvents structured JSON).
pub(crate) fn json_line(env: &RawEnvelope) -> Result<String> {
    env.to_cloudevent_json()
        .map(one_line_json)
        .with_context(|| format!("encoding event seq {}", env.seq()))
}

/// JSON text on one line. `data` is kept as its publisher wrote it, which
/// may span lines (`publish --data @pretty.json`); a line break in JSON text
/// can only be white space between tokens (inside strings it is escaped),
/// so a space in its place means the same and keeps NDJSON one event a line.
pub(crate) fn one_line_json(json: String) -> String {
    if json.contains(['\n', '\r']) {
        json.replace(['\n', '\r'], " ")
    } else {
        json
    }
}

/// An event's table cells, in the order of [`EVENT_HEADERS`].
pub(crate) fn event_cells(env: &RawEnvelope) -> Vec<String> {
    let data = match env.data_json() {
        Ok(raw) => shorten(&one_line_json(raw.get().to_owned()), DATA_WIDTH),
        Err(e) => format!("<{e}>"),
    };
    vec![
        env.seq().to_string(),
        time(env.time()),
        env.topic().to_owned(),
        env.event_version().to_string(),
        env.source().to_owned(),
        env.correlation_id().unwrap_or("-").to_owned(),
        data,
    ]
}

/// Prints one event as it arrives (NDJSON or a line), flushed at once so
/// a reader of a pipe sees it without waiting.
pub(crate) fn print_live(env: &RawEnvelope, json: bool) -> Result<()> {
    let line = if json {
        json_line(env)?
    } else {
        event_line(env)
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// An event as one line for reading, with the table's columns.
pub(crate) fn event_line(env: &RawEnvelope) -> String {
    event_cells(env).join("  ")
}

/// A time as RFC 3339 UTC with milliseconds.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A byte count for people: `812 B`, `1.4 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `text` cut to `max` characters, ending in `…` when it was cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max - 1).collect();
    short.push('…');
    short
}

/// Valid JSON text re-indented by two spaces per level, keeping the order
/// of its keys and the exact text of its strings and numbers (parsing into
/// a `serde_json::Value` would sort the keys and may round numbers).
pub(crate) fn pretty_json(json: &str) -> String {
    let mut pretty = String::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let newline = |pretty: &mut String, depth: usize| {
        pretty.push('\n');
        pretty.extend(std::iter::repeat_n("  ", depth));
    };
    let mut chars = json.chars().peekable();
    let (mut in_string, mut escaped) = (false, false);
    while let Some(c) = chars.next() {
        if in_string {
            pretty.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                pretty.push(c);
            }
            '{' | '[' => {
                pretty.push(c);
                while chars.next_if(|c| c.is_whitespace()).is_some() {}
                if let Some(close) = chars.next_if(|next| matches!(next, '}' | ']')) {
                    pretty.push(close);
                } else {
                    depth += 1;
                    newline(&mut pretty, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut pretty, depth);
                pretty.push(c);
            }
            ',' => {
                pretty.push(c);
                newline(&mut pretty, depth);
            }
            ':' => pretty.push_str(": "),
            c if c.is_whitespace() => {}
            c => pretty.push(c),
        }
    }
    pretty
}

/// Rows printed with each column as wide as its widest cell.
pub(crate) struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Writes the header and the rows; the last column is not padded.
    pub(crate) fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let last = row.len().saturating_sub(1);
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i == last {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = width - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["A", "LONGER"]);
        t.push(vec!["wide cell".into(), "x".into()]);
        let mut out = Vec::new();
        t.write(&mut out).expect("written");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "A          LONGER\nwide cell  x\n"
        );
    }

    #[test]
    fn sizes_and_long_data_read_well() {
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
    }

    #[test]
    fn pretty_json_keeps_order_strings_and_numbers() {
        let compact = r#"{"z":1,"a":[1, 2.50,{}],"s":"a,b:{\"c\"}\\","e":[],"n":null}"#;
        let pretty = pretty_json(compact);
        assert_eq!(
            pretty,
            "{\n  \"z\": 1,\n  \"a\": [\n    1,\n    2.50,\n    {}\n  ],\n  \
             \"s\": \"a,b:{\\\"c\\\"}\\\\\",\n  \"e\": [],\n  \"n\": null\n}"
        );
        let reread: serde_json::Value = serde_json::from_str(&pretty).expect("still JSON");
        assert_eq!(
            reread,
            serde_json::from_str::<serde_json::Value>(compact).expect("JSON")
        );
        assert_eq!(pretty_json("7"), "7");
    }
}
