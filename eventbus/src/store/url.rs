//! Store URLs, `scheme://rest?key=value&...`, and the typed options each
//! store declares: one parser, so every store refuses the same mistakes
//! (unknown or repeated options, values of the wrong type) in the same
//! words, and no error ever shows a password or token.

// One parser serves every store; a build without some of them leaves
// the parts only they use idle.
#![cfg_attr(not(all(feature = "sqlite", feature = "nats")), allow(dead_code))]

use std::time::Duration;

use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};

/// The longest duration a store option takes: 100 years as
/// [`parse_duration`] counts them (`100y`, which is `36525d`).
///
/// SQLite rows and the NATS server count durations in nanoseconds in an
/// `i64`, which ends near 292 years; a longer `max_age` would wrap around
/// to a wrong or negative age instead of meaning "forever". 100 years
/// leaves room to add it to, or take it from, today's time in that count.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

/// How [`MAX_DURATION`] is spelled in errors.
const MAX_DURATION_TEXT: &str = "100 years (`100y` or `36525d`)";

/// Parses a duration such as `500ms`, `90s`, `10m`, `2h`, `7d` or `1h30m`:
/// numbers with units (`ms`, `s`, `m`, `h`, `d`, `w`, `y` and the longer
/// names [`humantime`] knows), written without spaces.
///
/// The result is not bounded; store options also refuse anything longer
/// than [`MAX_DURATION`].
///
/// # Errors
///
/// A message naming what is wrong, for the caller to put in context.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let expected = "a duration such as `30s`, `10m`, `2h`, `7d` or `1h30m`";
    // One compact spelling: a URL cannot carry a raw space, and the CLI's
    // ages (`--since 10m`) must not read `10 minutes` differently.
    if text.chars().any(char::is_whitespace) {
        return Err(format!("`{text}` is not {expected} (without spaces)"));
    }
    humantime::parse_duration(text).map_err(|e| format!("`{text}` is not {expected}: {e}"))
}

/// A store URL split into its scheme, the part before `?` and the options;
/// nothing is decoded until a store asks for it.
pub(crate) struct StoreUrl<'a> {
    original: &'a str,
    pub(crate) scheme: &'a str,
    /// Between `://` and the first `?`, still percent-encoded: each store
    /// reads it its own way (a file path, servers and user info).
    pub(crate) rest: &'a str,
    query: &'a str,
}

impl<'a> StoreUrl<'a> {
    pub(crate) fn parse(url: &'a str) -> Result<Self> {
        let (scheme, after) = scheme_split(url).ok_or_else(|| {
            invalid(
                url,
                "expected `scheme://...`, such as `memory://` or `sqlite://events.db`",
            )
        })?;
        let (rest, query) = after.split_once('?').unwrap_or((after, ""));
        // A raw `@` after `?` may end user info that a raw `?` cut short:
        // option names and values quoted in errors, and servers read from
        // the part before `?`, could then be pieces of a password.
        if query.contains('@') {
            return Err(invalid(
                url,
                "a raw `@` after `?`; write it `%40` in option values, and percent-encode \
                 `@`, `/`, `?` and `:` in a user name, password or token",
            ));
        }
        Ok(StoreUrl {
            original: url,
            scheme,
            rest,
            query,
        })
    }

    /// An error about this URL, shown with its secrets hidden.
    pub(crate) fn invalid(&self, reason: impl Into<String>) -> Error {
        invalid(self.original, reason)
    }

    /// The part before `?`, percent-decoded: a file path for `sqlite://`.
    pub(crate) fn decoded_rest(&self) -> Result<String> {
        decode(self.rest).ok_or_else(|| self.invalid("the path is not UTF-8 once percent-decoded"))
    }

    /// Reads the options after `?` as `store` declares them. Unknown and
    /// repeated options are refused, and each value is parsed to its type.
    pub(crate) fn options(&self, store: &[Opt]) -> Result<Options> {
        let mut values = Vec::new();
        for pair in self.query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            if raw.is_empty() {
                return Err(
                    self.invalid(format!("option `{key}` has no value; write `{key}=VALUE`"))
                );
            }
            let Some(opt) = store.iter().find(|o| o.name == key) else {
                let names: Vec<&str> = store.iter().map(|o| o.name).collect();
                return Err(self.invalid(format!(
                    "unknown option `{key}`; this store takes: {}",
                    names.join(", ")
                )));
            };
            if values.iter().any(|(name, _)| *name == opt.name) {
                return Err(self.invalid(format!("option `{key}` is given twice; give it once")));
            }
            let text = decode(raw).ok_or_else(|| {
                self.invalid(format!("option `{key}` is not UTF-8 once percent-decoded"))
            })?;
            let value = opt.parse(&text).map_err(|e| self.invalid(e))?;
            values.push((opt.name, value));
        }
        Ok(Options(values))
    }
}

/// One option a store takes: its name and the type of its value.
pub(crate) struct Opt {
    name: &'static str,
    kind: Kind,
}

enum Kind {
    /// At most [`MAX_DURATION`].
    Duration,
    Integer {
        min: u64,
        max: u64,
    },
    OneOf(&'static [&'static str]),
    Bool,
    Text,
}

impl Opt {
    /// A duration, at most [`MAX_DURATION`].
    pub(crate) const fn duration(name: &'static str) -> Self {
        Opt {
            name,
            kind: Kind::Duration,
        }
    }

    /// A whole number from `min` to `max`.
    pub(crate) const fn integer(name: &'static str, min: u64, max: u64) -> Self {
        Opt {
            name,
            kind: Kind::Integer { min, max },
        }
    }

    /// One of `words`, in any case.
    pub(crate) const fn one_of(name: &'static str, words: &'static [&'static str]) -> Self {
        Opt {
            name,
            kind: Kind::OneOf(words),
        }
    }

    /// `true` or `false`.
    pub(crate) const fn flag(name: &'static str) -> Self {
        Opt {
            name,
            kind: Kind::Bool,
        }
    }

    /// Any text, such as a path; the store checks it further.
    pub(crate) const fn text(name: &'static str) -> Self {
        Opt {
            name,
            kind: Kind::Text,
        }
    }

    fn parse(&self, text: &str) -> std::result::Result<Value, String> {
        let name = self.name;
        match self.kind {
            Kind::Duration => match parse_duration(text) {
                Ok(d) if d <= MAX_DURATION => Ok(Value::Duration(d)),
                Ok(_) => Err(format!(
                    "{name} `{text}` is longer than {MAX_DURATION_TEXT}, the longest a store \
                     option takes"
                )),
                Err(e) => Err(format!("{name} {e}")),
            },
            Kind::Integer { min, max } => match text.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Value::Integer(n)),
                _ if min == 1 && max == u64::MAX => {
                    Err(format!("{name} `{text}` is not a positive whole number"))
                }
                _ => Err(format!(
                    "{name} `{text}` is not a whole number from {min} to {max}"
                )),
            },
            Kind::OneOf(words) => words
                .iter()
                .find(|w| w.eq_ignore_ascii_case(text))
                .map(|w| Value::Word(w))
                .ok_or_else(|| format!("{name} `{text}` is not {}", either(words))),
            Kind::Bool => match text {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(format!("{name} `{text}` is not `true` or `false`")),
            },
            Kind::Text => Ok(Value::Text(text.to_owned())),
        }
    }
}

enum Value {
    Duration(Duration),
    Integer(u64),
    Word(&'static str),
    Bool(bool),
    Text(String),
}

/// The options a URL gave, each parsed to the type its store declared.
/// Asking for an option as another type than declared is a bug in the
/// store's declaration, which its tests catch.
pub(crate) struct Options(Vec<(&'static str, Value)>);

impl Options {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub(crate) fn duration(&self, name: &str) -> Option<Duration> {
        self.get(name).map(|v| match v {
            Value::Duration(d) => *d,
            _ => panic!("store option `{name}` is not declared a duration"),
        })
    }

    pub(crate) fn integer(&self, name: &str) -> Option<u64> {
        self.get(name).map(|v| match v {
            Value::Integer(n) => *n,
            _ => panic!("store option `{name}` is not declared an integer"),
        })
    }

    /// The declared word given, as the store spelled it.
    pub(crate) fn word(&self, name: &str) -> Option<&'static str> {
        self.get(name).map(|v| match v {
            Value::Word(w) => *w,
            _ => panic!("store option `{name}` is not declared one of some words"),
        })
    }

    pub(crate) fn flag(&self, name: &str) -> Option<bool> {
        self.get(name).map(|v| match v {
            Value::Bool(b) => *b,
            _ => panic!("store option `{name}` is not declared a flag"),
        })
    }

    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(|v| match v {
            Value::Text(t) => t.as_str(),
            _ => panic!("store option `{name}` is not declared text"),
        })
    }
}

/// `a`, `b` or `c`.
fn either(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// Percent-decodes URL text, `None` when the result is not UTF-8; `+`
/// stays a plus, since paths may hold one.
pub(crate) fn decode(text: &str) -> Option<String> {
    percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(String::from)
}

/// The scheme and what follows `://`, when the text before `://` is a
/// scheme (a letter, then letters, digits, `+`, `-` or `.`).
fn scheme_split(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// An [`Error::InvalidStoreUrl`] showing `url` through [`redact`].
pub(crate) fn invalid(url: &str, reason: impl Into<String>) -> Error {
    Error::InvalidStoreUrl {
        url: redact(url),
        reason: reason.into(),
    }
}

/// The URL with everything that may be a password or token replaced by
/// `***`, however malformed the URL.
///
/// Whatever lies between `://` and the last `@` of the whole text may be
/// user info, since a raw `/`, `?` or `@` in a password ends it early for
/// a parser; only a user name (before the first `:`) stays visible, and
/// only when it holds none of the characters that would end user info.
/// This hides too much when `@` appears elsewhere (a path, an option),
/// never too little.
pub(crate) fn redact(url: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return url.to_owned();
    };
    let start = scheme_split(url).map_or(0, |(scheme, _)| scheme.len() + 3);
    let user = url[start..at]
        .split_once(':')
        .map(|(user, _)| user)
        .filter(|user| !user.contains(['/', '?', '#', ',', '@']));
    let hidden = match user {
        Some(user) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{}{hidden}{}", &url[..start], &url[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_everything_up_to_the_last_at() {
        for (url, shown) in [
            (
                "nats://alice:pa/ssw0rd@127.0.0.1:4222?bogus=1",
                "nats://alice:***@127.0.0.1:4222?bogus=1",
            ),
            ("nats://tok/en@h:4222", "nats://***@h:4222"),
            ("nats://alice:pa?ss@h:4222", "nats://alice:***@h:4222"),
            ("nats://alice:p@ss@h:4222", "nats://alice:***@h:4222"),
            ("nats://a/b:secret@h", "nats://***@h"),
            ("nats:/alice:secret@h", "nats:***@h"),
            ("alice:pa://ss@h", "alice:***@h"),
            ("nats://h:4222?stream=S", "nats://h:4222?stream=S"),
            ("sqlite:///tmp/a@b.db", "sqlite://***@b.db"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn durations_take_humantime_forms_without_spaces() {
        for (text, secs) in [
            ("500ms", 0.5),
            ("90s", 90.0),
            ("10m", 600.0),
            ("2h", 7200.0),
            ("7d", 604_800.0),
            ("1h30m", 5400.0),
            ("0s", 0.0),
        ] {
            assert_eq!(parse_duration(text).unwrap().as_secs_f64(), secs, "{text}");
        }
        for bad in ["", "10", "10 m", "10 minutes", "soon", "-1s", "10x"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("is not a duration"), "{bad}: {e}");
        }
        assert_eq!(parse_duration("100y").unwrap(), MAX_DURATION);
        assert_eq!(parse_duration("36525d").unwrap(), MAX_DURATION);
    }

    const OPTS: &[Opt] = &[
        Opt::duration("age"),
        Opt::integer("count", 1, u64::MAX),
        Opt::integer("replicas", 1, 5),
        Opt::one_of("mode", &["full", "normal"]),
        Opt::flag("tls"),
        Opt::text("path"),
    ];

    fn options(query: &str) -> Result<Options> {
        let url = format!("x://?{query}");
        StoreUrl::parse(&url)?.options(OPTS)
    }

    fn refusal(query: &str) -> String {
        match options(query) {
            Ok(_) => panic!("`{query}` was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn options_are_parsed_to_their_types() {
        let o =
            options("age=1h30m&count=7&replicas=5&mode=NORMAL&tls=true&path=a%20b%2Bc+d").unwrap();
        assert_eq!(o.duration("age"), Some(Duration::from_secs(5400)));
        assert_eq!(o.integer("count"), Some(7));
        assert_eq!(o.integer("replicas"), Some(5));
        assert_eq!(o.word("mode"), Some("normal"));
        assert_eq!(o.flag("tls"), Some(true));
        assert_eq!(o.text("path"), Some("a b+c+d"));
        assert_eq!(options("").unwrap().duration("age"), None);
    }

    #[test]
    fn bad_options_are_refused_naming_the_option_the_value_and_what_is_valid() {
        for (query, says) in [
            (
                "age=36526d",
                "age `36526d` is longer than 100 years (`100y` or `36525d`)",
            ),
            (
                "age=100000000d",
                "age `100000000d` is longer than 100 years",
            ),
            ("age=soon", "age `soon` is not a duration such as `30s`"),
            ("count=0", "count `0` is not a positive whole number"),
            ("count=-1", "count `-1` is not a positive whole number"),
            (
                "replicas=6",
                "replicas `6` is not a whole number from 1 to 5",
            ),
            (
                "mode=sometimes",
                "mode `sometimes` is not `full` or `normal`",
            ),
            ("tls=yes", "tls `yes` is not `true` or `false`"),
            (
                "bogus=1",
                "unknown option `bogus`; this store takes: age, count, replicas",
            ),
            ("count", "option `count` has no value; write `count=VALUE`"),
            ("count=", "option `count` has no value"),
            (
                "mode=full&mode=normal",
                "option `mode` is given twice; give it once",
            ),
            ("count=1&count=1", "option `count` is given twice"),
            (
                "path=%FF",
                "option `path` is not UTF-8 once percent-decoded",
            ),
        ] {
            let e = refusal(query);
            assert!(e.contains(says), "{query}: {e}");
        }
        assert_eq!(
            options("age=36525d").unwrap().duration("age"),
            Some(MAX_DURATION)
        );
        let e = StoreUrl::parse("x://h?path=a@b").err().unwrap().to_string();
        assert!(e.contains("a raw `@` after `?`"), "{e}");
    }
}
