//! HTML as strings: [`escape`] for every value that did not come from
//! this file's own literals, the frame around each page, and error pages.

use std::fmt::Write as _;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::Console;

/// Text made safe inside an element or a quoted attribute value.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value for a URL's query string (then escaped again for the
/// attribute it stands in).
pub(crate) fn url_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A time as the CLI prints it.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    crate::output::time(t)
}

/// The pages in the navigation bar: (path, label).
const NAV: [(&str, &str); 6] = [
    ("/", "Live"),
    ("/history", "History"),
    ("/causation", "Causation"),
    ("/handlers", "Handlers"),
    ("/topics", "Topics"),
    ("/dead-letters", "Dead letters"),
];

/// A whole page: `body` must already be escaped HTML.
pub(crate) fn page(console: &Console, title: &str, body: &str) -> Html<String> {
    Html(frame(Some(&console.store_name), title, body, ""))
}

/// A page that loads one of the console's scripts.
pub(crate) fn page_with_script(
    console: &Console,
    title: &str,
    body: &str,
    script: &str,
) -> Html<String> {
    let tag = format!(r#"<script src="{}" defer></script>"#, escape(script));
    Html(frame(Some(&console.store_name), title, body, &tag))
}

fn frame(store: Option<&str>, title: &str, body: &str, head: &str) -> String {
    let mut nav = String::new();
    for (path, label) in NAV {
        let _ = write!(nav, r#"<a href="{path}">{label}</a>"#);
    }
    let store = store.map_or_else(String::new, |s| {
        format!(r#"<span class="store">{}</span>"#, escape(s))
    });
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · eventbus</title>
<link rel="stylesheet" href="/assets/style.css">{head}</head>
<body><header><strong>eventbus</strong><nav>{nav}<a href="/metrics">Metrics</a></nav>{store}</header>
<main><h1>{title}</h1>
{body}
</main></body></html>
"#,
        title = escape(title),
    )
}

/// A page that says what went wrong, with the right status.
#[derive(Debug)]
pub(crate) struct UiError {
    status: StatusCode,
    message: String,
}

impl UiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        UiError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

/// A store error: the console is fine, the store is not.
impl From<anyhow::Error> for UiError {
    fn from(e: anyhow::Error) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

impl From<eventbus::Error> for UiError {
    fn from(e: eventbus::Error) -> Self {
        anyhow::Error::new(e).into()
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::UNAUTHORIZED => "Token needed",
            StatusCode::FORBIDDEN => "Forbidden",
            _ => "Error",
        };
        let body = format!(r#"<p class="error">{}</p>"#, escape(&self.message));
        (self.status, Html(frame(None, title, &body, ""))).into_response()
    }
}

/// A form field or query value: absent when empty or blank.
pub(crate) fn given(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_becomes_text() {
        assert_eq!(
            escape(r#""><img src=x onerror=alert(1)><script>x</script>'&"#),
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;x&lt;/script&gt;&#39;&amp;"
        );
        assert_eq!(url_part("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
