//! Connection and stream settings for `nats://`, from a URL or a builder.
//!
//! Secrets (password, token, credentials) are kept out of `Debug`, logs and
//! error messages: the URL is only ever shown with them replaced by `***`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::store::{StoreUrl, parse_duration};

/// Settings for a NATS JetStream store: where to connect, how to
/// authenticate, and the stream that holds the events.
///
/// Built from a URL with [`NatsConfig::from_url`] (what `store("nats://…")`
/// uses) or by hand, then passed to
/// [`NatsStore::connect`](super::NatsStore::connect).
///
/// URL: `nats://[user:password@ | token@]host:port[,host:port…]` with
/// options `stream`, `prefix`, `max_age`, `max_bytes`, `replicas`,
/// `duplicate_window`, `storage` (`file` or `memory`), `ack_wait`, `creds`
/// (a credentials file), `tls` (`true` to require it), `tls_ca`,
/// `tls_cert` and `tls_key`.
#[derive(Clone)]
pub struct NatsConfig {
    pub(crate) servers: Vec<String>,
    pub(crate) auth: Auth,
    pub(crate) credentials_file: Option<PathBuf>,
    pub(crate) tls_required: bool,
    pub(crate) tls_ca: Option<PathBuf>,
    pub(crate) tls_client: Option<(PathBuf, PathBuf)>,
    pub(crate) stream: String,
    pub(crate) prefix: String,
    pub(crate) limits: StreamLimits,
    pub(crate) ack_wait: Duration,
}

/// How the connection authenticates.
#[derive(Clone, Default)]
pub(crate) enum Auth {
    #[default]
    None,
    UserPassword(String, String),
    Token(String),
}

/// Stream settings the URL may ask for; `None` leaves the server's default
/// and accepts whatever an existing stream has.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StreamLimits {
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_bytes: Option<i64>,
    pub(crate) replicas: Option<usize>,
    pub(crate) duplicate_window: Option<Duration>,
    pub(crate) memory_storage: Option<bool>,
}

/// The stream created when the URL names none.
pub(crate) const DEFAULT_STREAM: &str = "EVENTBUS";
/// The subject prefix used when the URL names none: topic `order.placed`
/// is subject `eventbus.order.placed`.
pub(crate) const DEFAULT_PREFIX: &str = "eventbus";
const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);

const OPTIONS: &[&str] = &[
    "stream",
    "prefix",
    "max_age",
    "max_bytes",
    "replicas",
    "duplicate_window",
    "storage",
    "ack_wait",
    "creds",
    "tls",
    "tls_ca",
    "tls_cert",
    "tls_key",
];

impl NatsConfig {
    /// Settings for one server, such as `127.0.0.1:4222`, with the default
    /// stream and prefix and no authentication.
    pub fn new(server: impl Into<String>) -> Self {
        NatsConfig {
            servers: vec![server.into()],
            auth: Auth::None,
            credentials_file: None,
            tls_required: false,
            tls_ca: None,
            tls_client: None,
            stream: DEFAULT_STREAM.to_owned(),
            prefix: DEFAULT_PREFIX.to_owned(),
            limits: StreamLimits::default(),
            ack_wait: DEFAULT_ACK_WAIT,
        }
    }

    /// Reads a `nats://` URL (see the type's docs for its options).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidStoreUrl`] naming the bad part, with secrets hidden.
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed =
            StoreUrl::parse(url).map_err(|_| invalid(url, "expected `nats://host:port`"))?;
        Self::from_parsed(&parsed)
    }

    pub(crate) fn from_parsed(url: &StoreUrl<'_>) -> Result<Self> {
        let bad = |reason: String| invalid(url.original, reason);
        if url.scheme != "nats" {
            return Err(bad("expected a `nats://` URL".into()));
        }
        url.check_known(OPTIONS).map_err(|e| bad(reason_of(e)))?;
        let (userinfo, hosts) = match url.path.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, url.path),
        };
        let hosts = hosts.trim_end_matches('/');
        if hosts.is_empty() {
            return Err(bad("no server named; write `nats://127.0.0.1:4222`".into()));
        }
        let mut config = NatsConfig::new("");
        config.servers = hosts
            .split(',')
            .map(|h| {
                if h.is_empty() || h.contains('/') {
                    Err(bad(format!("`{h}` is not a `host:port` server address")))
                } else {
                    Ok(format!("nats://{h}"))
                }
            })
            .collect::<Result<_>>()?;
        config.auth = match userinfo {
            None => Auth::None,
            Some(info) => match info.split_once(':') {
                Some((user, password)) => Auth::UserPassword(user.to_owned(), password.to_owned()),
                None => Auth::Token(info.to_owned()),
            },
        };
        if let Some(stream) = url.param("stream") {
            config = config.stream(stream).map_err(|e| bad(reason_of(e)))?;
        }
        if let Some(prefix) = url.param("prefix") {
            config = config.prefix(prefix).map_err(|e| bad(reason_of(e)))?;
        }
        let duration = |key: &str| -> Result<Option<Duration>> {
            url.param(key)
                .map(|text| parse_duration(text).map_err(|e| bad(format!("{key}: {e}"))))
                .transpose()
        };
        config.limits.max_age = duration("max_age")?;
        config.limits.duplicate_window = duration("duplicate_window")?;
        if let Some(wait) = duration("ack_wait")? {
            config.ack_wait = wait;
        }
        config.limits.max_bytes = url
            .param("max_bytes")
            .map(|v| match v.parse::<i64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(bad(format!(
                    "max_bytes `{v}` is not a positive whole number"
                ))),
            })
            .transpose()?;
        config.limits.replicas = url
            .param("replicas")
            .map(|v| match v.parse::<usize>() {
                Ok(n) if (1..=5).contains(&n) => Ok(n),
                _ => Err(bad(format!(
                    "replicas `{v}` is not a whole number from 1 to 5"
                ))),
            })
            .transpose()?;
        config.limits.memory_storage = match url.param("storage") {
            None => None,
            Some("file") => Some(false),
            Some("memory") => Some(true),
            Some(other) => return Err(bad(format!("storage `{other}` is not `file` or `memory`"))),
        };
        config.credentials_file = url.param("creds").map(PathBuf::from);
        config.tls_required = match url.param("tls") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(bad(format!("tls `{other}` is not `true` or `false`"))),
        };
        config.tls_ca = url.param("tls_ca").map(PathBuf::from);
        config.tls_client = match (url.param("tls_cert"), url.param("tls_key")) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
            _ => return Err(bad("`tls_cert` and `tls_key` go together; give both".into())),
        };
        Ok(config)
    }

    /// Authenticates with a user name and password.
    pub fn user_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Auth::UserPassword(user.into(), password.into());
        self
    }

    /// Authenticates with a token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Token(token.into());
        self
    }

    /// Authenticates with a credentials (`.creds`) file, read at connect time.
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials_file = Some(path.into());
        self
    }

    /// Refuses to talk to the server without TLS.
    pub fn require_tls(mut self, required: bool) -> Self {
        self.tls_required = required;
        self
    }

    /// Trusts the certificate authorities in this PEM file.
    pub fn tls_root_certificates(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_ca = Some(path.into());
        self
    }

    /// Presents this client certificate and key (PEM files).
    pub fn tls_client_certificate(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.tls_client = Some((cert.into(), key.into()));
        self
    }

    /// The stream's name (default `EVENTBUS`).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the name is not a valid stream name.
    pub fn stream(mut self, name: &str) -> Result<Self> {
        check_name("stream name", name)?;
        self.stream = name.to_owned();
        Ok(self)
    }

    /// The subject prefix (default `eventbus`): topic `a.b` is subject
    /// `PREFIX.a.b`, and the stream holds `PREFIX.>`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the prefix is not one or more topic tokens.
    pub fn prefix(mut self, prefix: &str) -> Result<Self> {
        eventbus_topic::validate_topic(prefix)
            .map_err(|e| Error::Config(format!("subject prefix: {}", e.describe(prefix))))?;
        self.prefix = prefix.to_owned();
        Ok(self)
    }

    /// How long the server waits for a handler's ack before delivering
    /// the event again (default 30 s); handlers still running signal
    /// progress every third of it, so only a crashed or stuck handler
    /// waits it out.
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait.max(Duration::from_secs(1));
        self
    }

    /// The oldest events the stream keeps (unset: forever).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.limits.max_age = Some(age);
        self
    }

    /// The window in which a repeated event id or idempotency key is
    /// dropped by the server (its default: 2 minutes).
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.limits.duplicate_window = Some(window);
        self
    }

    /// The subject of a topic or pattern.
    pub(crate) fn subject(&self, topic: &str) -> String {
        format!("{}.{topic}", self.prefix)
    }

    /// The topic of a subject under the prefix.
    pub(crate) fn topic_of<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
    }

    /// The servers, for logs and errors, with any secret a server address
    /// carries (`NatsConfig::new("nats://user:pw@host:4222")`) hidden.
    pub(crate) fn servers(&self) -> String {
        let redacted: Vec<String> = self.servers.iter().map(|s| redact(s)).collect();
        redacted.join(",")
    }

    /// The servers, stream and prefix, for logs.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{}?stream={}&prefix={}",
            self.servers(),
            self.stream,
            self.prefix
        )
    }
}

impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.auth {
            Auth::None => "none".to_owned(),
            Auth::UserPassword(user, _) => format!("user {user:?}, password ***"),
            Auth::Token(_) => "token ***".to_owned(),
        };
        f.debug_struct("NatsConfig")
            .field("servers", &self.servers)
            .field("auth", &auth)
            .field("credentials_file", &self.credentials_file)
            .field("tls_required", &self.tls_required)
            .field("tls_ca", &self.tls_ca)
            .field("tls_client", &self.tls_client)
            .field("stream", &self.stream)
            .field("prefix", &self.prefix)
            .field("limits", &self.limits)
            .field("ack_wait", &self.ack_wait)
            .finish()
    }
}

/// Stream, consumer and bucket names: no whitespace, `.`, `*`, `>`, `/`,
/// `\`, and short, since the server makes directories of them.
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 {
        return Err(Error::Config(format!(
            "{what} `{name}` must be 1 to 64 characters long"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(Error::Config(format!(
            "{what} `{name}` has `{c}`; use letters, digits, `_` and `-`"
        )));
    }
    Ok(())
}

/// The URL with any password or token replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['?', '/']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((info, hosts)) => match info.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{hosts}{tail}"),
            None => format!("{scheme}://***@{hosts}{tail}"),
        },
        None => url.to_owned(),
    }
}

fn invalid(url: &str, reason: impl Into<String>) -> Error {
    Error::InvalidStoreUrl {
        url: redact(url),
        reason: reason.into(),
    }
}

/// The reason inside an error made by a helper that knew no URL.
fn reason_of(e: Error) -> String {
    match e {
        Error::InvalidStoreUrl { reason, .. } => reason,
        Error::Config(reason) => reason,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show() {
        let config = NatsConfig::from_url("nats://alice:s3cret@127.0.0.1:4222?stream=S1").unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("alice"));
        let config = NatsConfig::from_url("nats://tok3n@127.0.0.1:4222").unwrap();
        assert!(!format!("{config:?}").contains("tok3n"));
        let err =
            NatsConfig::from_url("nats://alice:s3cret@127.0.0.1:4222?stream=a.b").unwrap_err();
        let text = err.to_string();
        assert!(
            !text.contains("s3cret") && text.contains("alice:***@"),
            "{text}"
        );
        assert!(text.contains("stream name `a.b`"), "{text}");
        // A secret in a server address given by hand never shows either.
        let described = NatsConfig::new("nats://bob:pw123@h:4222").describe();
        assert!(
            !described.contains("pw123") && described.contains("bob:***@h:4222"),
            "{described}"
        );
    }

    #[test]
    fn url_options_are_read_and_checked() {
        let c = NatsConfig::from_url(
            "nats://h1:4222,h2:4222?prefix=app.events&max_age=7d&replicas=3&ack_wait=10s&storage=memory",
        )
        .unwrap();
        assert_eq!(c.servers, ["nats://h1:4222", "nats://h2:4222"]);
        assert_eq!(c.subject("order.placed"), "app.events.order.placed");
        assert_eq!(c.topic_of("app.events.order.placed"), Some("order.placed"));
        assert_eq!(c.limits.max_age, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(c.limits.replicas, Some(3));
        assert_eq!(c.limits.memory_storage, Some(true));
        assert_eq!(c.ack_wait, Duration::from_secs(10));
        for (url, needle) in [
            ("nats://", "no server"),
            ("nats://h:1?bogus=1", "unknown option `bogus`"),
            ("nats://h:1?prefix=a..b", "subject prefix"),
            ("nats://h:1?replicas=9", "replicas `9`"),
            ("nats://h:1?tls_cert=a.pem", "give both"),
            ("nats://h:1?max_age=soon", "max_age"),
        ] {
            let e = NatsConfig::from_url(url).unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
        }
    }
}
