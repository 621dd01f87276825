//! Connection and stream settings for `nats://`, from a URL or a builder.
//!
//! Secrets (password, token, credentials) are kept out of `Debug`, logs and
//! error messages: the URL is only ever shown with them replaced by `***`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};
use crate::store::url::{MAX_DURATION, Opt, StoreUrl, decode, redact};

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
/// `tls_cert` and `tls_key`. Hosts may be IPv6 addresses in brackets
/// (`[::1]:4222`); user info is percent-decoded, so a `@`, `/`, `?` or `:`
/// in it must be written `%40`, `%2F`, `%3F` or `%3A`.
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

const OPTIONS: &[Opt] = &[
    Opt::text("stream"),
    Opt::text("prefix"),
    Opt::duration("max_age"),
    // The server counts bytes in an i64.
    Opt::integer("max_bytes", 1, i64::MAX as u64),
    Opt::integer("replicas", 1, 5),
    Opt::duration("duplicate_window"),
    Opt::one_of("storage", &["file", "memory"]),
    Opt::duration("ack_wait"),
    Opt::text("creds"),
    Opt::flag("tls"),
    Opt::text("tls_ca"),
    Opt::text("tls_cert"),
    Opt::text("tls_key"),
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
        Self::from_parsed(&StoreUrl::parse(url)?)
    }

    pub(crate) fn from_parsed(url: &StoreUrl<'_>) -> Result<Self> {
        if url.scheme != "nats" {
            return Err(url.invalid("expected a `nats://` URL"));
        }
        let options = url.options(OPTIONS)?;
        let (auth, servers) = authority(url.rest).map_err(|e| url.invalid(e))?;
        let mut config = NatsConfig::new("");
        config.servers = servers;
        config.auth = auth;
        let named = |e: Error| {
            url.invalid(match e {
                Error::Config(reason) => reason,
                other => other.to_string(),
            })
        };
        if let Some(stream) = options.text("stream") {
            config = config.stream(stream).map_err(named)?;
        }
        if let Some(prefix) = options.text("prefix") {
            config = config.prefix(prefix).map_err(named)?;
        }
        if let Some(age) = options.duration("max_age") {
            config = config.max_age(age);
        }
        if let Some(window) = options.duration("duplicate_window") {
            config = config.duplicate_window(window);
        }
        if let Some(wait) = options.duration("ack_wait") {
            config = config.ack_wait(wait);
        }
        config.limits.max_bytes = options.integer("max_bytes").map(|n| n as i64);
        config.limits.replicas = options.integer("replicas").map(|n| n as usize);
        config.limits.memory_storage = options.word("storage").map(|s| s == "memory");
        config.credentials_file = options.text("creds").map(PathBuf::from);
        config.tls_required = options.flag("tls").unwrap_or(false);
        config.tls_ca = options.text("tls_ca").map(PathBuf::from);
        config.tls_client = match (options.text("tls_cert"), options.text("tls_key")) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
            _ => return Err(url.invalid("`tls_cert` and `tls_key` go together; give both")),
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
    /// waits it out. At least 1 s and at most [`MAX_DURATION`]: the
    /// server counts nanoseconds in an i64.
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait.clamp(Duration::from_secs(1), MAX_DURATION);
        self
    }

    /// The oldest events the stream keeps (unset: forever); at most
    /// [`MAX_DURATION`].
    pub fn max_age(mut self, age: Duration) -> Self {
        self.limits.max_age = Some(age.min(MAX_DURATION));
        self
    }

    /// The window in which a repeated event id or idempotency key is
    /// dropped by the server (its default: 2 minutes); at most
    /// [`MAX_DURATION`].
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.limits.duplicate_window = Some(window.min(MAX_DURATION));
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

/// Why a `/` after `nats://` is refused: a raw one in user info ends it.
const NO_PATH: &str = "`nats://` takes no path after the servers; in a user name, password or \
                       token write `/` as `%2F` (and `@`, `?`, `:` as `%40`, `%3F`, `%3A`)";

/// The user info and servers of `[user:password@ | token@]host[:port][,…]`.
/// Errors quote only what follows the last `@`, which is never a secret.
fn authority(rest: &str) -> std::result::Result<(Auth, Vec<String>), String> {
    let authority = rest.trim_end_matches('/');
    if authority.contains('/') {
        return Err(NO_PATH.into());
    }
    let (info, hosts) = match authority.rsplit_once('@') {
        Some((info, hosts)) => (Some(info), hosts),
        None => (None, authority),
    };
    if hosts.is_empty() {
        return Err("no server named; write `nats://127.0.0.1:4222`".into());
    }
    let servers = hosts
        .split(',')
        .map(server)
        .collect::<std::result::Result<_, _>>()?;
    let decoded = |part: &str, what: &str| {
        decode(part).ok_or_else(|| format!("the {what} is not UTF-8 once percent-decoded"))
    };
    let auth = match info {
        None => Auth::None,
        Some(info) => match info.split_once(':') {
            Some((user, password)) => {
                Auth::UserPassword(decoded(user, "user name")?, decoded(password, "password")?)
            }
            None => Auth::Token(decoded(info, "token")?),
        },
    };
    Ok((auth, servers))
}

/// One `host[:port]` (IPv6 in brackets) as the client's server URL.
fn server(host: &str) -> std::result::Result<String, String> {
    let bad = |detail: String| {
        format!("`{host}` is not a server address such as `127.0.0.1:4222` or `[::1]:4222`{detail}")
    };
    let url = Url::parse(&format!("nats://{host}")).map_err(|e| bad(format!(": {e}")))?;
    let only_a_host = url.path().is_empty() && url.query().is_none() && url.fragment().is_none();
    let name = url
        .host_str()
        .filter(|name| !name.is_empty() && only_a_host)
        .ok_or_else(|| bad(String::new()))?;
    Ok(match url.port() {
        Some(port) => format!("nats://{name}:{port}"),
        None => format!("nats://{name}"),
    })
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

        for url in [
            "nats://alice:pa/ssw0rd@127.0.0.1:4222?bogus=1",
            "nats://alice:pa?ssw0rd@127.0.0.1:4222",
            "nats://to/kssw0rd@127.0.0.1:4222",
            "nats://alice:pa?ss=w0rd@127.0.0.1:4222?bogus=1",
        ] {
            let err = NatsConfig::from_url(url).unwrap_err();
            for text in [err.to_string(), format!("{err:?}")] {
                assert!(!text.contains("ssw0rd") && !text.contains("w0rd"), "{text}");
                assert!(!text.contains("pa/") && !text.contains("pa?"), "{text}");
            }
        }
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

    #[test]
    fn user_info_is_percent_decoded_and_hosts_read_by_url() {
        let c = NatsConfig::from_url("nats://user:p%40ss@[::1]:4222").unwrap();
        assert_eq!(c.servers, ["nats://[::1]:4222"]);
        assert!(matches!(&c.auth, Auth::UserPassword(u, p) if u == "user" && p == "p@ss"));
        let addr: async_nats::ServerAddr = c.servers[0].parse().unwrap();
        assert_eq!((addr.host(), addr.port()), ("::1", 4222));

        let c = NatsConfig::from_url("nats://t%2Fk%3Fn%3A1@h1,[::1]:4223,h3:4224/").unwrap();
        assert_eq!(
            c.servers,
            ["nats://h1", "nats://[::1]:4223", "nats://h3:4224"]
        );
        assert!(matches!(&c.auth, Auth::Token(t) if t == "t/k?n:1"));
        let c = NatsConfig::from_url("nats://alice:p@ss:w#rd@h:4222").unwrap();
        assert!(matches!(&c.auth, Auth::UserPassword(u, p) if u == "alice" && p == "p@ss:w#rd"));

        for (url, needle) in [
            ("nats://h:99999", "`h:99999` is not a server address"),
            ("nats://h1:4222,,h2:4222", "`` is not a server address"),
            ("nats://h#x:4222", "`h#x:4222` is not a server address"),
            ("nats://a:b@", "no server named"),
            ("nats://h:4222/stream", "takes no path"),
            ("nats://alice:%FF@h", "the password is not UTF-8"),
        ] {
            let e = NatsConfig::from_url(url).unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
        }
    }

    #[test]
    fn durations_are_bounded_from_urls_and_builders() {
        for key in ["max_age", "duplicate_window", "ack_wait"] {
            let e = NatsConfig::from_url(&format!("nats://h:4222?{key}=300000d"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("{key} `300000d` is longer than 100 years")),
                "{e}"
            );
            let c = NatsConfig::from_url(&format!("nats://h:4222?{key}=100y")).unwrap();
            let set = [
                c.limits.max_age,
                c.limits.duplicate_window,
                Some(c.ack_wait),
            ];
            assert!(set.contains(&Some(MAX_DURATION)), "{key}");
        }
        let forever = Duration::from_secs(u64::MAX);
        let c = NatsConfig::new("h")
            .max_age(forever)
            .duplicate_window(forever)
            .ack_wait(forever);
        assert_eq!(c.limits.max_age, Some(MAX_DURATION));
        assert_eq!(c.limits.duplicate_window, Some(MAX_DURATION));
        assert_eq!(c.ack_wait, MAX_DURATION);
        let c = NatsConfig::from_url("nats://h:4222?ack_wait=0s").unwrap();
        assert_eq!(c.ack_wait, Duration::from_secs(1));
    }
}
