//! Connection and key settings for `redis://` and `rediss://`, from a URL
//! or a builder.
//!
//! The password is kept out of `Debug`, logs and error messages: the URL
//! is only ever shown with it replaced by `***`.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::store::url::{MAX_DURATION, Opt, StoreUrl, decode};

/// Settings for a Redis Streams store: where to connect, how to
/// authenticate, the key prefix and the retention limits.
///
/// Built from a URL with [`RedisConfig::from_url`] (what
/// `store("redis://…")` uses) or by hand, then passed to
/// [`RedisStore::connect`](super::RedisStore::connect).
///
/// URL: `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for
/// TLS (certificates checked against the system's roots, or against the
/// PEM file option `tls_ca` names, for a server with a private CA), with
/// options
/// `prefix` (default `eventbus`: the keys are `PREFIX:events` and beside
/// it), `max_events` and `max_age` (retention, unset: keep everything),
/// `duplicate_window` (how long a repeated event id or idempotency key is
/// answered with the first event, default 2 minutes) and `ack_wait` (how
/// long a delivery may go without news before another process takes it
/// over, default 30 s). User info is percent-decoded, so a `@`, `/`, `?`
/// or `:` in it must be written `%40`, `%2F`, `%3F` or `%3A`.
#[derive(Clone)]
pub struct RedisConfig {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    /// A PEM file of CA certificates trusted instead of the system's.
    pub(crate) tls_ca: Option<std::path::PathBuf>,
    pub(crate) db: i64,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) prefix: String,
    pub(crate) max_events: Option<u64>,
    pub(crate) max_age: Option<Duration>,
    pub(crate) duplicate_window: Duration,
    pub(crate) ack_wait: Duration,
}

/// The key prefix used when the URL names none.
pub(crate) const DEFAULT_PREFIX: &str = "eventbus";
const DEFAULT_PORT: u16 = 6379;
const DEFAULT_WINDOW: Duration = Duration::from_secs(120);
const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);

const OPTIONS: &[Opt] = &[
    Opt::text("prefix"),
    Opt::integer("max_events", 1, u64::MAX),
    Opt::duration("max_age"),
    Opt::duration("duplicate_window"),
    Opt::duration("ack_wait"),
    Opt::text("tls_ca"),
];

impl RedisConfig {
    /// Settings for one server, such as `127.0.0.1` and `6379`, database
    /// 0, without TLS or authentication, the default prefix and no
    /// retention limit.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        RedisConfig {
            host: host.into(),
            port,
            tls: false,
            tls_ca: None,
            db: 0,
            user: None,
            password: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            max_events: None,
            max_age: None,
            duplicate_window: DEFAULT_WINDOW,
            ack_wait: DEFAULT_ACK_WAIT,
        }
    }

    /// Reads a `redis://` or `rediss://` URL (see the type's docs).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidStoreUrl`] naming the bad part, with the password
    /// hidden.
    pub fn from_url(url: &str) -> Result<Self> {
        Self::from_parsed(&StoreUrl::parse(url)?)
    }

    pub(crate) fn from_parsed(url: &StoreUrl<'_>) -> Result<Self> {
        let tls = match url.scheme {
            "redis" => false,
            "rediss" => true,
            _ => return Err(url.invalid("expected a `redis://` or `rediss://` URL")),
        };
        let options = url.options(OPTIONS)?;
        let mut config = authority(url.rest).map_err(|e| url.invalid(e))?;
        config.tls = tls;
        if let Some(prefix) = options.text("prefix") {
            config = config.prefix(prefix).map_err(|e| {
                url.invalid(match e {
                    Error::Config(reason) => reason,
                    other => other.to_string(),
                })
            })?;
        }
        config.max_events = options.integer("max_events");
        config.max_age = options.duration("max_age");
        if let Some(window) = options.duration("duplicate_window") {
            config = config.duplicate_window(window);
        }
        if let Some(wait) = options.duration("ack_wait") {
            config = config.ack_wait(wait);
        }
        if let Some(ca) = options.text("tls_ca") {
            if !tls {
                return Err(url.invalid("`tls_ca` is for `rediss://` URLs"));
            }
            config = config.tls_ca(ca);
        }
        Ok(config)
    }

    /// Authenticates with an ACL user name (or `None` for `default`) and
    /// a password.
    pub fn password(mut self, user: Option<String>, password: impl Into<String>) -> Self {
        self.user = user;
        self.password = Some(password.into());
        self
    }

    /// Trusts the CA certificates in this PEM file, instead of the
    /// system's roots, for the server's TLS certificate (a server with a
    /// private CA); read when the store connects.
    pub fn tls_ca(mut self, pem_file: impl Into<std::path::PathBuf>) -> Self {
        self.tls_ca = Some(pem_file.into());
        self
    }

    /// Talks TLS to the server (what `rediss://` asks for).
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// The database number (default 0).
    pub fn db(mut self, db: i64) -> Self {
        self.db = db;
        self
    }

    /// The key prefix (default `eventbus`): events live in
    /// `PREFIX:events`, dead letters in `PREFIX:dead`, and so on.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the prefix is empty, longer than 100 bytes, or
    /// holds whitespace, control characters, `*`, `?` or `[` (which would
    /// make the `PREFIX:*` key patterns of operators match other keys).
    pub fn prefix(mut self, prefix: &str) -> Result<Self> {
        let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '*' | '?' | '[');
        if prefix.is_empty() || prefix.len() > 100 || prefix.contains(bad) {
            return Err(Error::Config(format!(
                "key prefix `{}` must be 1 to 100 bytes without whitespace, control \
                 characters, `*`, `?` or `[`",
                prefix.escape_debug()
            )));
        }
        self.prefix = prefix.to_owned();
        Ok(self)
    }

    /// Keeps about this many events, trimming the oldest as new ones come
    /// (`XADD MAXLEN ~`: Redis trims whole nodes, so a few more may stay).
    pub fn max_events(mut self, max: u64) -> Self {
        self.max_events = Some(max.max(1));
        self
    }

    /// Trims events older than this as new ones come (`XTRIM MINID`, by
    /// the server's clock); at most [`MAX_DURATION`].
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age.min(MAX_DURATION));
        self
    }

    /// How long a repeated event id or idempotency key is answered with
    /// the first event (default 2 minutes); at least 1 ms, at most
    /// [`MAX_DURATION`].
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window.clamp(Duration::from_millis(1), MAX_DURATION);
        self
    }

    /// How long a delivery may stay pending without news before another
    /// process takes it over (default 30 s); handlers still running signal
    /// progress every third of it, so only a crashed or stuck process waits
    /// it out. At least 1 s, at most [`MAX_DURATION`].
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait.clamp(Duration::from_secs(1), MAX_DURATION);
        self
    }

    /// The key of a part of the store, such as `events`.
    pub(crate) fn key(&self, part: &str) -> String {
        format!("{}:{part}", self.prefix)
    }

    /// The server, database and prefix, for logs: never the password.
    pub(crate) fn describe(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let user = match (&self.user, &self.password) {
            (Some(user), _) => format!("{}:***@", user_text(user)),
            (None, Some(_)) => ":***@".to_owned(),
            (None, None) => String::new(),
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "{scheme}://{user}{host}:{}/{}?prefix={}",
            self.port, self.db, self.prefix
        )
    }

    /// What the client needs to connect.
    pub(crate) fn connection_info(&self) -> redis::ConnectionInfo {
        let addr = if self.tls {
            redis::ConnectionAddr::TcpTls {
                host: self.host.clone(),
                port: self.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            redis::ConnectionAddr::Tcp(self.host.clone(), self.port)
        };
        redis::ConnectionInfo {
            addr,
            redis: redis::RedisConnectionInfo {
                db: self.db,
                username: self.user.clone(),
                password: self.password.clone(),
                protocol: redis::ProtocolVersion::RESP2,
            },
        }
    }
}

/// A user name as shown: one that could be mistaken for more of the URL
/// is hidden too.
fn user_text(user: &str) -> &str {
    if user.contains(['/', '?', '#', '@', ':']) {
        "***"
    } else {
        user
    }
}

/// The host, port, database and user info before `?`.
fn authority(rest: &str) -> std::result::Result<RedisConfig, String> {
    let (userinfo, hostpart) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (hostport, db) = match hostpart.split_once('/') {
        Some((hp, "")) => (hp, 0),
        Some((hp, db)) => (
            hp,
            db.parse::<i64>()
                .ok()
                .filter(|n| (0..=i64::from(u32::MAX)).contains(n))
                .ok_or_else(|| format!("database `{db}` is not a whole number such as `0`"))?,
        ),
        None => (hostpart, 0),
    };
    let (host, port) = host_port(hostport)?;
    let mut config = RedisConfig::new(host, port).db(db);
    if let Some(info) = userinfo {
        // Never quote user info: it holds the password.
        let (user, password) = info.split_once(':').ok_or(
            "user info without a password; write `redis://:PASSWORD@host` or \
             `redis://USER:PASSWORD@host`",
        )?;
        let user = decode(user).ok_or("the user name is not UTF-8 once percent-decoded")?;
        let password = decode(password).ok_or("the password is not UTF-8 once percent-decoded")?;
        config = config.password((!user.is_empty()).then_some(user), password);
    }
    Ok(config)
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_port(text: &str) -> std::result::Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{text}` opens `[` for an IPv6 address without closing it"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("`{after}` after `]` is not `:PORT`")),
            },
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err("no host; write `redis://HOST:PORT`, such as `redis://127.0.0.1:6379`".into());
    }
    if host.contains(|c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#' | ',' | '%')) {
        return Err(format!("host `{host}` is not a host name or address"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("port `{p}` is not a number from 1 to 65535"))?,
    };
    Ok((host.to_owned(), port))
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("tls_ca", &self.tls_ca)
            .field("db", &self.db)
            .field("user", &self.user.as_deref().map(user_text))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("prefix", &self.prefix)
            .field("max_events", &self.max_events)
            .field("max_age", &self.max_age)
            .field("duplicate_window", &self.duplicate_window)
            .field("ack_wait", &self.ack_wait)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_host_port_db_user_and_options() {
        let c = RedisConfig::from_url(
            "rediss://app:p%40ss@[::1]:6380/3?prefix=shop&max_events=1000&max_age=7d",
        )
        .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.db, c.tls),
            ("::1", 6380, 3, true)
        );
        assert_eq!(
            (c.user.as_deref(), c.password.as_deref()),
            (Some("app"), Some("p@ss"))
        );
        assert_eq!(c.key("events"), "shop:events");
        assert_eq!(c.max_events, Some(1000));
        assert_eq!(c.max_age, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(c.describe(), "rediss://app:***@[::1]:6380/3?prefix=shop");
        let c = RedisConfig::from_url("redis://:secret@h").unwrap();
        assert_eq!((c.user.as_deref(), c.port, c.db), (None, 6379, 0));
        assert_eq!(c.password.as_deref(), Some("secret"));
        assert!(!format!("{c:?}").contains("secret"));
        let c = RedisConfig::from_url("rediss://h:6390?tls_ca=/etc/ca%20dir/ca.pem").unwrap();
        assert_eq!(
            c.tls_ca.as_deref(),
            Some(std::path::Path::new("/etc/ca dir/ca.pem"))
        );
    }

    #[test]
    fn bad_urls_are_refused_naming_the_part() {
        for (url, words) in [
            ("redis://", "no host"),
            ("redis://h:0", "port `0`"),
            ("redis://h:99999", "port `99999`"),
            ("redis://h/x", "database `x`"),
            ("redis://user@h", "without a password"),
            ("redis://[::1:6379", "without closing"),
            ("redis://h?prefix=a%20b", "key prefix"),
            ("redis://h?max_events=0", "max_events"),
            ("redis://h?bogus=1", "unknown option `bogus`"),
            ("redis://h?tls_ca=/ca.pem", "`tls_ca` is for `rediss://`"),
        ] {
            let e = RedisConfig::from_url(url).unwrap_err().to_string();
            assert!(e.contains(words), "{url}: {e}");
        }
    }
}
