//! Who may use the console: a token when one is set (the browser keeps a
//! session cookie after the first `?token=`), loopback host names when
//! none is (so a web page elsewhere cannot reach a local console through
//! DNS rebinding), a CSRF token on every form that changes something, and
//! response headers that forbid inline scripts and framing.

use std::collections::HashMap;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::html::UiError;

const SESSION_COOKIE: &str = "eventbus_ui_session";

/// Scripts only from the console itself, none inline: even markup that
/// escaped escaping could not run.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

pub(crate) struct Security {
    token: Option<String>,
    /// Granted for the token, so the token itself never sits in a cookie.
    session: String,
    /// Per process: a page of another site cannot know it, so it cannot
    /// forge the console's forms.
    csrf: String,
}

impl Security {
    pub(crate) fn new(token: Option<String>) -> Self {
        Security {
            token,
            session: secret(),
            csrf: secret(),
        }
    }

    pub(crate) fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The value every state-changing form carries in its `csrf` field.
    pub(crate) fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Refuses a form without this process's CSRF token.
    pub(crate) fn check_csrf(&self, given: Option<&str>) -> Result<(), UiError> {
        match given {
            Some(given) if same(given, &self.csrf) => Ok(()),
            _ => Err(UiError::new(
                StatusCode::FORBIDDEN,
                "this form has no valid CSRF token (it was not made by this console, or the \
                 console restarted since): open the page again and resubmit",
            )),
        }
    }

    fn carries_session(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| name == SESSION_COOKIE && same(value, &self.session))
    }

    fn bearer_is(&self, headers: &HeaderMap, token: &str) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| same(given.trim(), token))
    }

    /// Whether the request names this console by a loopback name: a
    /// browser sends the name it resolved, so a rebinding attacker's
    /// domain shows here.
    fn host_is_loopback(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        name.eq_ignore_ascii_case("localhost")
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// Every request passes here first.
pub(crate) async fn guard(State(console): State<Shared>, request: Request, next: Next) -> Response {
    let security = &console.security;
    let mut set_session = false;
    match &security.token {
        None => {
            if !security.host_is_loopback(request.headers()) {
                return UiError::new(
                    StatusCode::FORBIDDEN,
                    "this console has no token, so it answers only to localhost, 127.0.0.1 \
                     or [::1]; open it by one of those names",
                )
                .into_response();
            }
        }
        Some(token) => {
            let in_query = Query::<HashMap<String, String>>::try_from_uri(request.uri())
                .ok()
                .and_then(|Query(q)| q.get("token").cloned());
            let allowed = if let Some(given) = in_query {
                set_session = same(&given, token);
                set_session
            } else {
                security.carries_session(request.headers())
                    || security.bearer_is(request.headers(), token)
            };
            if !allowed {
                return UiError::new(
                    StatusCode::UNAUTHORIZED,
                    "this console needs its token: open it with ?token=YOUR_TOKEN (the value \
                     of --token or EVENTBUS_UI_TOKEN), or send Authorization: Bearer YOUR_TOKEN",
                )
                .into_response();
            }
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // The first address may carry the token.
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if set_session {
        let cookie = format!(
            "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
            security.session
        );
        if let Ok(cookie) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// 244 random bits from the operating system, as 64 hex digits.
fn secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Compares without stopping at the first difference, so the time taken
/// tells nothing about how much of a guess was right.
fn same(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).expect("valid"));
        }
        map
    }

    #[test]
    fn only_loopback_names_reach_a_console_without_token() {
        let s = Security::new(None);
        for ok in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "LOCALHOST",
        ] {
            assert!(s.host_is_loopback(&headers(&[(header::HOST, ok)])), "{ok}");
        }
        for bad in ["evil.example:8080", "127.0.0.1.evil.example", ""] {
            assert!(
                !s.host_is_loopback(&headers(&[(header::HOST, bad)])),
                "{bad}"
            );
        }
        assert!(!s.host_is_loopback(&HeaderMap::new()));
    }

    #[test]
    fn the_session_cookie_and_bearer_token_are_checked_exactly() {
        let s = Security::new(Some("0123456789abcdef".into()));
        let cookie = format!("a=b; {SESSION_COOKIE}={}", s.session);
        assert!(s.carries_session(&headers(&[(header::COOKIE, &cookie)])));
        let wrong = format!("{SESSION_COOKIE}={}x", s.session);
        assert!(!s.carries_session(&headers(&[(header::COOKIE, &wrong)])));
        let bearer = headers(&[(header::AUTHORIZATION, "Bearer 0123456789abcdef")]);
        assert!(s.bearer_is(&bearer, "0123456789abcdef"));
        assert!(!s.bearer_is(&bearer, "0123456789abcdeX"));
        assert!(s.check_csrf(Some(s.csrf())).is_ok());
        assert!(s.check_csrf(Some("forged")).is_err());
        assert!(s.check_csrf(None).is_err());
    }
}
