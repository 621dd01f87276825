//! Store URLs (`memory://`, `sqlite://`, `nats://`, `redis://` and others), checked as
//! opening the store would check them, opening nothing: no input panics,
//! and no error shows any part of the password or token.
//!
//! Secrets are recognisable wherever a piece of one shows: every character
//! of a secret is followed by a key mark (U+1F511), which nothing else in
//! the URL holds, so any two neighbouring characters of a secret include
//! one. Secret characters are written raw or percent-encoded as the input
//! says; raw `/`, `?`, `@` and `:` in passwords are what users write and
//! what ends user info early for a parser. A raw `:` in a token would make
//! its start a user name, which is shown by design, so a token's `:` is
//! always encoded.
//!
//! `memory://` URLs that are accepted also open a store, which must take
//! the same keyed event twice (the idempotency window is applied then).

#![no_main]

use arbitrary::Arbitrary;
use eventbus::__private::fuzz::check_store_url;
use eventbus::store::{NatsConfig, RedisConfig, SqliteStore};
use eventbus::{Draft, RawEnvelope};
use eventbus_fuzz::ready;
use libfuzzer_sys::fuzz_target;

const MARK: char = '\u{1F511}';

#[derive(Arbitrary, Debug)]
struct Input {
    scheme: Scheme,
    user_info: Option<UserInfo>,
    hosts: String,
    options: Vec<(u8, OptionValue)>,
    /// Taken instead of the parts above, as a URL with no secret in it.
    raw: Option<String>,
}

#[derive(Arbitrary, Debug)]
enum Scheme {
    Memory,
    Sqlite,
    Nats,
    Redis,
    Rediss,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum UserInfo {
    UserPassword(String, Vec<(char, bool)>),
    Token(Vec<(char, bool)>),
}

#[derive(Arbitrary, Debug)]
enum OptionValue {
    Text(String),
    Duration(u64, u8),
}

/// Option names of every store, and one no store takes.
const OPTIONS: &[&str] = &[
    "capacity",
    "idempotency_window",
    "synchronous",
    "max_age",
    "max_events",
    "stream",
    "prefix",
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
    "bogus",
];

const UNITS: &[&str] = &["ns", "ms", "s", "m", "h", "d", "w", "y", "years", "M"];

fuzz_target!(|input: Input| {
    let url = match &input.raw {
        Some(raw) => without_mark(raw),
        None => assemble(&input),
    };
    let checked = check_store_url(&url);
    if let Err(e) = &checked {
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(
                !shown.contains(MARK),
                "a secret shows in {shown:?}\nfrom {url:?}"
            );
        }
    }
    if url.starts_with("nats://") {
        match NatsConfig::from_url(&url) {
            Ok(config) => {
                assert!(checked.is_ok(), "{url:?}");
                // A raw `@` among the hosts moves the end of user info past
                // it, and with a raw `:` the secret becomes (part of) a user
                // name, which `Debug` shows as parsed; errors hide it all.
                if !input.hosts.contains('@') {
                    let shown = format!("{config:?}");
                    assert!(!shown.contains(MARK), "a secret shows in {shown:?}");
                }
            }
            Err(e) => assert_eq!(checked.unwrap_err().to_string(), e.to_string()),
        }
    } else if url.starts_with("redis://") || url.starts_with("rediss://") {
        match RedisConfig::from_url(&url) {
            Ok(config) => {
                assert!(checked.is_ok(), "{url:?}");
                // As for NATS: a raw `@` among the hosts makes part of the
                // secret a user name, which `Debug` shows as parsed.
                if !input.hosts.contains('@') {
                    let shown = format!("{config:?}");
                    assert!(!shown.contains(MARK), "a secret shows in {shown:?}");
                }
            }
            Err(e) => assert_eq!(checked.unwrap_err().to_string(), e.to_string()),
        }
    } else if url.starts_with("sqlite://") {
        let _ = SqliteStore::path_of(&url);
    } else if url.starts_with("memory://") && checked.is_ok() {
        takes_a_repeated_key(&url);
    }
});

/// The text without the mark, raw or percent-encoded (which options and
/// user names are decoded from); removing one encoded mark may join the
/// pieces of another.
fn without_mark(text: &str) -> String {
    const ENCODED: &str = "%f0%9f%94%91";
    let mut text = text.replace(MARK, "");
    while let Some(at) = text.to_ascii_lowercase().find(ENCODED) {
        text.replace_range(at..at + ENCODED.len(), "");
    }
    text
}

fn assemble(input: &Input) -> String {
    let mut url = match &input.scheme {
        Scheme::Memory => "memory".to_owned(),
        Scheme::Sqlite => "sqlite".to_owned(),
        Scheme::Nats => "nats".to_owned(),
        Scheme::Redis => "redis".to_owned(),
        Scheme::Rediss => "rediss".to_owned(),
        Scheme::Other(scheme) => without_mark(scheme),
    };
    url.push_str("://");
    match &input.user_info {
        None => {}
        Some(UserInfo::UserPassword(user, password)) => {
            url.push_str(&without_mark(user));
            url.push(':');
            url.push_str(&secret(password, false));
            url.push('@');
        }
        Some(UserInfo::Token(token)) => {
            url.push_str(&secret(token, true));
            url.push('@');
        }
    }
    url.push_str(&without_mark(&input.hosts));
    for (i, (which, value)) in input.options.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(OPTIONS[usize::from(*which) % OPTIONS.len()]);
        url.push('=');
        match value {
            OptionValue::Text(text) => url.push_str(&without_mark(text)),
            OptionValue::Duration(n, unit) => {
                url.push_str(&format!("{n}{}", UNITS[usize::from(*unit) % UNITS.len()]));
            }
        }
    }
    url
}

/// A secret's characters, each raw or percent-encoded and each followed by
/// the mark.
fn secret(chars: &[(char, bool)], token: bool) -> String {
    let mut out = String::new();
    for &(c, encoded) in chars {
        if encoded || (token && c == ':') {
            let mut buf = [0; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
        out.push(MARK);
    }
    out
}

/// Appends one event with an idempotency key twice: the second append
/// finds the first within any window a URL can set.
fn takes_a_repeated_key(url: &str) {
    let store = ready(eventbus::store::open(url)).expect("a checked memory URL opens");
    let event = RawEnvelope::from_cloudevent_json(
        br#"{"specversion":"1.0","id":"e-1","source":"fuzz","type":"fuzz.keyed",
            "time":"2026-01-01T00:00:00Z","idempotencykey":"k-1","data":null}"#,
    )
    .unwrap();
    let first = ready(store.append(Draft::from_envelope(&event))).unwrap();
    let again = ready(store.append(Draft::from_envelope(&event))).unwrap();
    assert_eq!(again.seq(), first.seq(), "{url}");
}
