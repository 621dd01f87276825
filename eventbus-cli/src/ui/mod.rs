//! `eventbus ui`: a web console on any store, served by this process.
//!
//! Pages are rendered on the server as HTML strings in which every value
//! from the store goes through [`html::escape`]; the only JavaScript is
//! the live page's, served from the binary like the stylesheet. The
//! console reads and writes the store through the same public API as the
//! other commands, so it sees what a service on that store stores, and it
//! never publishes: a slow browser cannot slow a bus.
//!
//! One file per page or concern: [`security`] (token, CSRF, headers),
//! [`html`] (escaping and the page frame), [`charts`] (SVG), then the
//! pages.

mod causation;
mod charts;
mod dead_letters;
mod handlers;
mod history;
mod html;
mod live;
mod metrics;
mod progress;
mod security;
mod topics;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use eventbus::store::Store;

use crate::cli::UiArgs;
use crate::error::usage;
use crate::open;

/// The shortest token accepted: a guessable secret guards nothing.
const MIN_TOKEN_LEN: usize = 16;

/// What every request handler shares.
pub(crate) struct Console {
    store: Arc<dyn Store>,
    /// The store as `describe()` gives it: no password, ever.
    store_name: String,
    security: security::Security,
    live: live::Feed,
    progress: progress::Progress,
    /// Set on Ctrl-C: live feeds end, so the server can stop.
    stopping: tokio::sync::watch::Sender<bool>,
}

type Shared = Arc<Console>;

pub(crate) async fn run(url: &str, args: UiArgs) -> Result<()> {
    let token = checked_token(args.listen, args.token)?;
    let store = open::existing(url).await?;
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            open::close(&*store).await?;
            return Err(e).with_context(|| format!("cannot listen on {}", args.listen));
        }
    };
    let local = listener
        .local_addr()
        .context("reading the listening address")?;
    let console = Arc::new(Console {
        store_name: store.describe(),
        security: security::Security::new(token),
        live: live::Feed::new(),
        progress: progress::Progress::default(),
        stopping: tokio::sync::watch::Sender::new(false),
        store: Arc::clone(&store),
    });
    let follower = tokio::spawn(live::follow(Arc::clone(&console)));
    let sampler = tokio::spawn(progress::sample(Arc::clone(&console)));
    // Tests and scripts read this line to learn a port chosen by the system.
    println!("serving {} on http://{local}/", console.store_name);
    if console.security.has_token() {
        println!("open it once with ?token=YOUR_TOKEN; the browser then keeps it in a cookie");
    }
    println!("Ctrl-C to stop");
    let stopping = console.stopping.clone();
    let served = axum::serve(listener, router(console))
        .with_graceful_shutdown(async move {
            // An error here means no Ctrl-C can come: serve until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            stopping.send_replace(true);
        })
        .await;
    follower.abort();
    sampler.abort();
    open::close(&*store).await?;
    served.context("serving the console")
}

/// The token to require, if any; refuses a non-loopback address without
/// one, since anyone who reaches it could read every event and retry or
/// purge dead letters.
fn checked_token(listen: SocketAddr, token: Option<String>) -> Result<Option<String>> {
    let token = token.filter(|t| !t.is_empty());
    match &token {
        None if !listen.ip().is_loopback() => Err(usage(format!(
            "--listen {listen} is not a loopback address, and the console would let anyone \
             who reaches it read every event and retry or purge dead letters: set a secret \
             with --token or EVENTBUS_UI_TOKEN (at least {MIN_TOKEN_LEN} characters), or \
             listen on 127.0.0.1"
        ))),
        Some(t) if t.chars().count() < MIN_TOKEN_LEN => Err(usage(format!(
            "the console token is {} characters long; use at least {MIN_TOKEN_LEN} \
             (for example the output of `openssl rand -hex 16`)",
            t.chars().count()
        ))),
        _ => Ok(token),
    }
}

fn router(console: Shared) -> Router {
    Router::new()
        .route("/", get(live::page))
        .route("/live/events", get(live::stream))
        .route("/history", get(history::page))
        .route("/events/{seq}", get(history::event))
        .route("/causation", get(causation::page))
        .route("/handlers", get(handlers::page))
        .route("/topics", get(topics::page))
        .route("/dead-letters", get(dead_letters::list))
        .route("/dead-letters/purge", get(dead_letters::confirm_purge))
        .route("/dead-letters/purge", post(dead_letters::purge))
        .route("/dead-letters/{id}", get(dead_letters::show))
        .route("/dead-letters/{id}/retry", get(dead_letters::confirm_retry))
        .route("/dead-letters/{id}/retry", post(dead_letters::retry))
        .route("/metrics", get(metrics::render))
        .route("/assets/style.css", get(style))
        .route("/assets/live.js", get(script))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&console),
            security::guard,
        ))
        .with_state(console)
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/style.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/live.js"),
    )
}

async fn not_found(uri: axum::http::Uri) -> html::UiError {
    html::UiError::not_found(format!("there is no page at {}", uri.path()))
}
