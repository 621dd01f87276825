//! The causation page: the events of one correlation id as a picture,
//! each event a node, each causation link an edge from cause to effect.
//!
//! A node shows the event's source and what published it: the bus names
//! the handler (or saga) behind each event published while handling
//! another in the `handler` header.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Query as Params, State};
use axum::response::Html;
use eventbus::RawEnvelope;
use eventbus::store::{Order, Query};
use futures_util::StreamExt;

use super::Shared;
use super::history::{EVENT_TABLE_HEAD, event_row};
use super::html::{self, UiError, escape, given};
use crate::output::shorten;

/// The most events drawn; a correlation id with more is cut, and says so.
const MAX_NODES: usize = 300;

const NODE_W: usize = 230;
const NODE_H: usize = 52;
const GAP_X: usize = 50;
const GAP_Y: usize = 18;
const MARGIN: usize = 16;

struct Node {
    env: RawEnvelope,
    /// Index of the cause among the nodes, when it is one of them.
    cause: Option<usize>,
    depth: usize,
    row: usize,
}

/// Lays the events out: a node one column right of its cause, rows in
/// order of seq within a column.
fn layout(events: Vec<RawEnvelope>) -> Vec<Node> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut nodes: Vec<Node> = Vec::with_capacity(events.len());
    let mut rows_used: Vec<usize> = Vec::new();
    for env in events {
        // Events come in seq order; a cause is stored before its effects.
        let cause = env.causation_id().and_then(|c| index.get(c).copied());
        let depth = cause.map_or(0, |c| nodes[c].depth + 1);
        if rows_used.len() <= depth {
            rows_used.resize(depth + 1, 0);
        }
        let row = rows_used[depth];
        rows_used[depth] += 1;
        index.insert(env.id().to_string(), nodes.len());
        nodes.push(Node {
            env,
            cause,
            depth,
            row,
        });
    }
    nodes
}

/// The picture, as SVG: nodes carry `data-seq`, edges `data-from` and
/// `data-to` (seqs), for tests and for anyone scripting the page.
fn svg(nodes: &[Node]) -> String {
    let columns = nodes.iter().map(|n| n.depth + 1).max().unwrap_or(1);
    let rows = nodes.iter().map(|n| n.row + 1).max().unwrap_or(1);
    let width = MARGIN * 2 + columns * NODE_W + (columns - 1) * GAP_X;
    let height = MARGIN * 2 + rows * NODE_H + (rows - 1) * GAP_Y;
    let at = |n: &Node| {
        (
            MARGIN + n.depth * (NODE_W + GAP_X),
            MARGIN + n.row * (NODE_H + GAP_Y),
        )
    };
    let mut out = format!(
        r#"<svg id="causation" class="causation" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="causation graph"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>"#
    );
    for node in nodes {
        if let Some(cause) = node.cause {
            let (fx, fy) = at(&nodes[cause]);
            let (tx, ty) = at(node);
            let _ = write!(
                out,
                r#"<line class="edge" data-from="{}" data-to="{}" x1="{}" y1="{}" x2="{tx}" y2="{}" marker-end="url(#arrow)"/>"#,
                nodes[cause].env.seq(),
                node.env.seq(),
                fx + NODE_W,
                fy + NODE_H / 2,
                ty + NODE_H / 2,
            );
        }
    }
    for node in nodes {
        let (x, y) = at(node);
        let env = &node.env;
        let by = match env.header(eventbus::envelope::HANDLER_HEADER) {
            Some(handler) => format!("by {handler} · {}", env.source()),
            None => format!("from {}", env.source()),
        };
        let orphan = if node.cause.is_none() && env.causation_id().is_some() {
            " (cause outside this id)"
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<g class="node" data-seq="{seq}"><a href="/events/{seq}"><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/><text class="topic" x="{tx}" y="{y1}">#{seq} {topic}</text><text class="by" x="{tx}" y="{y2}">{by}{orphan}</text></a></g>"#,
            seq = env.seq(),
            tx = x + 8,
            y1 = y + 21,
            y2 = y + 40,
            topic = escape(&shorten(env.topic(), 26)),
            by = escape(&shorten(&by, 30)),
        );
    }
    out.push_str("</svg>");
    out
}

pub(crate) async fn page(
    State(console): State<Shared>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Html<String>, UiError> {
    let id = given(params.get("correlation_id"));
    let mut body = format!(
        r#"<form class="filters" method="get" action="/causation"><label>Correlation id <input name="correlation_id" value="{}" placeholder="req-456"></label><button type="submit">Show</button></form>"#,
        escape(id.unwrap_or(""))
    );
    let Some(id) = id else {
        body.push_str(
            r#"<p class="empty">Enter a correlation id to see what happened under it.</p>"#,
        );
        return Ok(html::page(&console, "Causation", &body));
    };
    let mut query = Query::default();
    query.correlation_id = Some(id.to_owned());
    query.order = Order::Oldest;
    query.limit = Some(MAX_NODES + 1);
    let mut events = Vec::new();
    let mut stream = console.store.query(query);
    while let Some(item) = stream.next().await {
        match item {
            Ok(env) => events.push(env),
            Err(eventbus::Error::BadRow { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    drop(stream);
    if events.is_empty() {
        let _ = write!(
            body,
            r#"<p class="empty">No events have correlation id {}.</p>"#,
            escape(id)
        );
        return Ok(html::page(&console, "Causation", &body));
    }
    if events.len() > MAX_NODES {
        events.truncate(MAX_NODES);
        let _ = write!(
            body,
            r#"<p class="error">Only the first {MAX_NODES} events are drawn.</p>"#
        );
    }
    let rows: String = events.iter().map(event_row).collect();
    let nodes = layout(events);
    let _ = write!(
        body,
        r#"<div class="scroll">{}</div><h2>Events</h2><table class="events">{EVENT_TABLE_HEAD}<tbody>{rows}</tbody></table>"#,
        svg(&nodes)
    );
    Ok(html::page(&console, "Causation", &body))
}
