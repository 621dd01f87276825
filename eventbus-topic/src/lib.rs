//! The topic grammar of eventbus, written once as `const fn`s.
//!
//! Both the runtime (`eventbus::topic`) and the macros (`eventbus-macros`)
//! depend on this crate, so a string that `#[derive(Event)]` accepts at compile
//! time is exactly a string that the bus accepts at run time. Users never add
//! it themselves: `eventbus::topic` re-exports everything here.
//!
//! A topic is one or more tokens joined by `.`; a token is one or more ASCII
//! letters, digits, `_` or `-`. That is a strict subset of NATS subjects, so
//! every topic is also a valid NATS subject. A *pattern* may also use the
//! wildcard tokens `*` (exactly one token) and `>` (one or more trailing
//! tokens, last position only).
//!
//! ```
//! use eventbus_topic::{matches, validate_pattern, validate_topic};
//!
//! assert!(validate_topic("order.placed").is_ok());
//! assert!(validate_pattern("order.*").is_ok());
//! assert!(matches("order.*", "order.placed"));
//! assert!(matches("order.>", "order.cancelled.by_customer"));
//! assert!(!matches("order.>", "order"));
//! ```

use std::fmt;

/// The longest topic or pattern accepted, in bytes.
///
/// NATS itself bounds a protocol line at 4 KB; 255 leaves room for a subject
/// prefix and the rest of the line, and keeps stored rows small.
pub const MAX_LEN: usize = 255;

/// What is wrong with a topic or pattern string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicErrorKind {
    /// The string is empty.
    Empty,
    /// The string is longer than [`MAX_LEN`] bytes.
    TooLong,
    /// A token is empty: a leading, trailing or doubled dot.
    EmptyToken,
    /// A token holds a character other than ASCII letters, digits, `_` or `-`.
    InvalidChar,
    /// A concrete topic holds a wildcard token (`*` or `>`).
    WildcardInTopic,
    /// `*` or `>` appears inside a token instead of as a whole token.
    PartialWildcard,
    /// `>` is a token but not the last one.
    TailWildcardNotLast,
}

/// A precise description of an invalid topic or pattern: what is wrong and
/// which token (1-based `position`, byte range `offset..offset + len`).
///
/// It is `Copy` and built in `const fn`s; pair it with the input through
/// [`TopicError::describe`] or [`InvalidTopic`] to get a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicError {
    /// What is wrong.
    pub kind: TopicErrorKind,
    /// The 1-based index of the offending token (0 for whole-string errors).
    pub position: usize,
    /// Byte offset of the offending token (or character) in the input.
    pub offset: usize,
    /// Byte length of the offending token.
    pub len: usize,
}

impl TopicError {
    const fn new(kind: TopicErrorKind, position: usize, offset: usize, len: usize) -> Self {
        TopicError {
            kind,
            position,
            offset,
            len,
        }
    }

    /// The offending token of `input` (the whole input for whole-string errors).
    pub fn token<'a>(&self, input: &'a str) -> &'a str {
        input
            .get(self.offset..self.offset + self.len)
            .unwrap_or(input)
    }

    /// A message naming the input, the offending token and what is valid.
    pub fn describe(&self, input: &str) -> String {
        let token = self.token(input);
        let pos = self.position;
        match self.kind {
            TopicErrorKind::Empty => {
                "topic is empty; a topic is dot-separated tokens such as `order.placed`".to_owned()
            }
            TopicErrorKind::TooLong => format!(
                "topic `{input}` is {} bytes long; the maximum is {MAX_LEN}",
                input.len()
            ),
            TopicErrorKind::EmptyToken => format!(
                "topic `{input}` has an empty token at position {pos}; tokens are separated by \
                 single dots, with no leading or trailing dot"
            ),
            TopicErrorKind::InvalidChar => {
                let bad = token.chars().find(|c| !is_token_char(*c)).unwrap_or('?');
                format!(
                    "topic `{input}` has the invalid character {bad:?} in token {pos} (`{token}`); \
                     tokens may hold only ASCII letters, digits, `_` and `-`"
                )
            }
            TopicErrorKind::WildcardInTopic => format!(
                "topic `{input}` has the wildcard `{token}` at token {pos}; a concrete topic \
                 (an event's topic, or one to publish to) cannot hold wildcards, only patterns can"
            ),
            TopicErrorKind::PartialWildcard => format!(
                "`{input}` has a wildcard inside token {pos} (`{token}`); `*` and `>` are \
                 wildcards only as whole tokens, as in `order.*` or `order.>`"
            ),
            TopicErrorKind::TailWildcardNotLast => format!(
                "pattern `{input}` has `>` at token {pos}, which is not the last; `>` matches all \
                 remaining tokens, so it must be the last token"
            ),
        }
    }

    /// Pairs the error with its input, giving an owned error with a message.
    pub fn with_input(self, input: &str) -> InvalidTopic {
        InvalidTopic {
            input: input.to_owned(),
            error: self,
        }
    }
}

/// An invalid topic or pattern together with the input it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTopic {
    input: String,
    error: TopicError,
}

impl InvalidTopic {
    /// The string that was rejected.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What is wrong with it, and where.
    pub fn error(&self) -> TopicError {
        self.error
    }
}

impl fmt::Display for InvalidTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error.describe(&self.input))
    }
}

impl std::error::Error for InvalidTopic {}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

const fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Index of the `.` ending the token that starts at `start`, or `bytes.len()`.
const fn token_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < bytes.len() && bytes[i] != b'.' {
        i += 1;
    }
    i
}

const fn check(s: &str, allow_wildcards: bool) -> Result<(), TopicError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(TopicError::new(TopicErrorKind::Empty, 0, 0, 0));
    }
    if b.len() > MAX_LEN {
        return Err(TopicError::new(TopicErrorKind::TooLong, 0, 0, b.len()));
    }
    let mut start = 0;
    let mut position = 1;
    while start <= b.len() {
        let end = token_end(b, start);
        let len = end - start;
        if len == 0 {
            return Err(TopicError::new(
                TopicErrorKind::EmptyToken,
                position,
                start,
                0,
            ));
        }
        let wildcard = len == 1 && (b[start] == b'*' || b[start] == b'>');
        if wildcard {
            if !allow_wildcards {
                return Err(TopicError::new(
                    TopicErrorKind::WildcardInTopic,
                    position,
                    start,
                    1,
                ));
            }
            if b[start] == b'>' && end != b.len() {
                return Err(TopicError::new(
                    TopicErrorKind::TailWildcardNotLast,
                    position,
                    start,
                    1,
                ));
            }
        } else {
            let mut i = start;
            while i < end {
                let c = b[i];
                if c == b'*' || c == b'>' {
                    let kind = if allow_wildcards {
                        TopicErrorKind::PartialWildcard
                    } else {
                        TopicErrorKind::WildcardInTopic
                    };
                    return Err(TopicError::new(kind, position, start, len));
                }
                if !is_token_byte(c) {
                    return Err(TopicError::new(
                        TopicErrorKind::InvalidChar,
                        position,
                        start,
                        len,
                    ));
                }
                i += 1;
            }
        }
        start = end + 1;
        position += 1;
    }
    Ok(())
}

/// Checks a concrete topic: valid tokens and no wildcards.
///
/// # Errors
///
/// Returns the first problem found, with the offending token's position.
pub const fn validate_topic(topic: &str) -> Result<(), TopicError> {
    check(topic, false)
}

/// Checks a pattern: valid tokens, `*` and `>` only as whole tokens, `>` last.
///
/// Every concrete topic is also a valid pattern (matching only itself).
///
/// # Errors
///
/// Returns the first problem found, with the offending token's position.
pub const fn validate_pattern(pattern: &str) -> Result<(), TopicError> {
    check(pattern, true)
}

/// Whether a valid pattern holds a wildcard token.
pub const fn has_wildcard(pattern: &str) -> bool {
    let b = pattern.as_bytes();
    let mut start = 0;
    while start <= b.len() {
        let end = token_end(b, start);
        if end - start == 1 && (b[start] == b'*' || b[start] == b'>') {
            return true;
        }
        start = end + 1;
    }
    false
}

const fn same_bytes(
    a: &[u8],
    a0: usize,
    a1: usize,
    b: &[u8],
    b0: usize,
    b1: usize,
    ignore_case: bool,
) -> bool {
    if a1 - a0 != b1 - b0 {
        return false;
    }
    let mut i = 0;
    while i < a1 - a0 {
        let (x, y) = (a[a0 + i], b[b0 + i]);
        let same = if ignore_case {
            x.eq_ignore_ascii_case(&y)
        } else {
            x == y
        };
        if !same {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `pattern` matches the concrete `topic`.
///
/// Both are assumed valid (see [`validate_pattern`], [`validate_topic`]);
/// for invalid input the answer is unspecified but the call never panics.
pub const fn matches(pattern: &str, topic: &str) -> bool {
    matches_with(pattern, topic, false)
}

/// Whether `pattern` would match `topic` if topics were not case-sensitive,
/// as [`matches`] with ASCII letters compared regardless of case.
///
/// Topics are case-sensitive; this is for explaining a pattern that
/// matches nothing (`Order.Placed` against `order.placed`).
pub const fn matches_ignore_ascii_case(pattern: &str, topic: &str) -> bool {
    matches_with(pattern, topic, true)
}

const fn matches_with(pattern: &str, topic: &str, ignore_case: bool) -> bool {
    let p = pattern.as_bytes();
    let t = topic.as_bytes();
    let mut i = 0;
    let mut j = 0;
    loop {
        let pattern_done = i > p.len();
        let topic_done = j > t.len();
        if pattern_done || topic_done {
            return pattern_done && topic_done;
        }
        let pe = token_end(p, i);
        let te = token_end(t, j);
        let single = pe - i == 1;
        if single && p[i] == b'>' {
            return true;
        }
        let wildcard = single && p[i] == b'*';
        if !wildcard && !same_bytes(p, i, pe, t, j, te, ignore_case) {
            return false;
        }
        i = pe + 1;
        j = te + 1;
    }
}

/// Whether `pattern` matches at least one of `topics`.
pub const fn matches_any(pattern: &str, topics: &[&str]) -> bool {
    let mut k = 0;
    while k < topics.len() {
        if matches(pattern, topics[k]) {
            return true;
        }
        k += 1;
    }
    false
}

/// The longest name in a scope path, in bytes.
pub const MAX_SCOPE_NAME_LEN: usize = 64;

/// Checks a scope path (`tenant-a` or `tenant-a/eu`): names of 1 to
/// [`MAX_SCOPE_NAME_LEN`] ASCII letters, digits, `-`, `_` or `.`, joined
/// by `/`. Scopes live here beside topics so that `#[handler(scope = ..)]`
/// and `bus.scope(..)` accept exactly the same paths.
///
/// # Errors
///
/// A message naming the path and the rule.
pub fn validate_scope(path: &str) -> Result<(), String> {
    let valid = path.split('/').all(|name| {
        !name.is_empty()
            && name.len() <= MAX_SCOPE_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "scope `{path}` is invalid: a scope is a path of names joined by `/`, each 1 to \
             {MAX_SCOPE_NAME_LEN} ASCII letters, digits, `-`, `_` or `.` (for example `tenant-a/eu`)"
        ))
    }
}

#[cfg(test)]
mod tests;
