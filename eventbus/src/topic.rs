//! Topics and patterns: the grammar (shared with the macros through the
//! `eventbus-topic` crate, so compile time and run time agree) plus
//! validated string types.
//!
//! A topic is dot-separated tokens of ASCII letters, digits, `_` and `-`, at
//! most [`MAX_LEN`] bytes: a valid NATS subject. A pattern may also use `*`
//! (exactly one token) and `>` (one or more trailing tokens, last only).
//!
//! ```
//! use eventbus::topic::{self, Pattern};
//!
//! let p = Pattern::new("order.*")?;
//! assert!(p.matches("order.placed"));
//! assert!(!p.matches("order.cancelled.by_customer"));
//!
//! let err = Pattern::new("order..placed").unwrap_err();
//! assert!(err.to_string().contains("empty token at position 2"));
//! assert!(topic::matches("order.>", "order.cancelled.by_customer"));
//! # Ok::<(), eventbus::Error>(())
//! ```

use std::borrow::Cow;
use std::fmt;

pub use eventbus_topic::{
    InvalidTopic, MAX_LEN, TopicError, TopicErrorKind, has_wildcard, matches, matches_any,
    validate_pattern, validate_topic,
};

/// A validated concrete topic (no wildcards).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Cow<'static, str>);

/// A validated pattern: a topic that may hold `*` and `>` tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern(Cow<'static, str>);

impl Topic {
    /// Validates a topic.
    ///
    /// # Errors
    ///
    /// [`InvalidTopic`] naming the offending token.
    pub fn new(topic: impl Into<Cow<'static, str>>) -> Result<Self, InvalidTopic> {
        let topic = topic.into();
        validate_topic(&topic).map_err(|e| e.with_input(&topic))?;
        Ok(Topic(topic))
    }

    /// A topic from a literal, checked when evaluated; `topic!("...")`
    /// checks it at compile time instead.
    ///
    /// # Panics
    ///
    /// When `topic` is invalid (a compile error in a `const`).
    pub const fn from_static(topic: &'static str) -> Self {
        if validate_topic(topic).is_err() {
            panic!("invalid topic literal");
        }
        Topic(Cow::Borrowed(topic))
    }

    /// The topic text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Pattern {
    /// Validates a pattern.
    ///
    /// # Errors
    ///
    /// [`InvalidTopic`] naming the offending token.
    pub fn new(pattern: impl Into<Cow<'static, str>>) -> Result<Self, InvalidTopic> {
        let pattern = pattern.into();
        validate_pattern(&pattern).map_err(|e| e.with_input(&pattern))?;
        Ok(Pattern(pattern))
    }

    /// A pattern from a literal, checked when evaluated; `topic!("...")`
    /// checks it at compile time instead.
    ///
    /// # Panics
    ///
    /// When `pattern` is invalid (a compile error in a `const`).
    pub const fn from_static(pattern: &'static str) -> Self {
        if validate_pattern(pattern).is_err() {
            panic!("invalid pattern literal");
        }
        Pattern(Cow::Borrowed(pattern))
    }

    /// Whether the pattern matches a concrete topic.
    pub fn matches(&self, topic: &str) -> bool {
        matches(&self.0, topic)
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Topic> for Pattern {
    fn from(topic: Topic) -> Self {
        Pattern(topic.0)
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Pattern {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
