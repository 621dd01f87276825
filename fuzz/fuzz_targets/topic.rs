//! The topic grammar and pattern matching, against a reference written
//! here from the documented rules: tokens of ASCII letters, digits, `_` and
//! `-` joined by single dots, at most `MAX_LEN` bytes; in patterns `*` is
//! exactly one token and `>` one or more trailing tokens, last only.
//!
//! Input: a mode byte, then two strings split at the first 0 byte (a
//! pattern and a topic; one string serves as both when there is no 0).
//! An even mode byte maps the bytes onto a small alphabet of topic
//! characters, so most inputs are nearly valid; an odd one keeps them as
//! (lossy) UTF-8 for the refusals.

#![no_main]

use eventbus::topic::{self, MAX_LEN, Pattern, Topic};
use eventbus_fuzz::grammar_text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let (first, second) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, rest),
    };
    let text = |bytes: &[u8]| {
        if mode % 2 == 0 {
            grammar_text(bytes)
        } else {
            String::from_utf8_lossy(bytes).into_owned()
        }
    };
    let (pattern, concrete) = (text(first), text(second));
    check_alone(&pattern);
    check_alone(&concrete);
    check_match(&pattern, &concrete);
});

/// Validation agrees with the reference, and what is accepted displays as
/// the text it came from.
fn check_alone(text: &str) {
    let is_topic = valid(text, false);
    let is_pattern = valid(text, true);
    assert_eq!(
        topic::validate_topic(text).is_ok(),
        is_topic,
        "topic {text:?}"
    );
    assert_eq!(
        topic::validate_pattern(text).is_ok(),
        is_pattern,
        "pattern {text:?}"
    );
    match Topic::new(text.to_owned()) {
        Ok(t) => {
            assert!(is_topic);
            assert_eq!(t.to_string(), text);
            assert_eq!(t.as_str(), text);
            assert!(
                Pattern::from(t).matches(text),
                "a topic as a pattern matches itself"
            );
        }
        Err(e) => {
            assert!(!is_topic);
            check_refusal(text, &e);
        }
    }
    match Pattern::new(text.to_owned()) {
        Ok(p) => {
            assert!(is_pattern);
            assert_eq!(p.to_string(), text);
            let wildcard = text.split('.').any(|t| t == "*" || t == ">");
            assert_eq!(topic::has_wildcard(text), wildcard, "{text:?}");
        }
        Err(e) => {
            assert!(!is_pattern);
            check_refusal(text, &e);
        }
    }
}

/// A refusal names its input and points inside it.
fn check_refusal(text: &str, e: &topic::InvalidTopic) {
    assert_eq!(e.input(), text);
    assert!(!e.to_string().is_empty());
    let at = e.error();
    assert!(at.offset + at.len <= text.len(), "{at:?} for {text:?}");
    assert!(text.contains(at.token(text)));
}

/// Matching agrees with the reference for valid input, and never panics
/// on any input.
fn check_match(pattern: &str, concrete: &str) {
    let answer = topic::matches(pattern, concrete);
    topic::matches_any(pattern, &[concrete, pattern]);
    if !valid(pattern, true) || !valid(concrete, false) {
        return;
    }
    let pattern_tokens: Vec<&str> = pattern.split('.').collect();
    let topic_tokens: Vec<&str> = concrete.split('.').collect();
    let expected = reference(&pattern_tokens, &topic_tokens);
    assert_eq!(answer, expected, "{pattern:?} against {concrete:?}");
    assert_eq!(
        Pattern::new(pattern.to_owned()).unwrap().matches(concrete),
        expected
    );
    assert_eq!(topic::matches_any(pattern, &[concrete]), expected);
    if let Ok(t) = Topic::new(pattern.to_owned()) {
        assert_eq!(
            Pattern::from(t).matches(concrete),
            pattern == concrete,
            "a pattern without wildcards matches its own text only"
        );
    }
}

fn valid(text: &str, wildcards: bool) -> bool {
    if text.is_empty() || text.len() > MAX_LEN {
        return false;
    }
    let tokens: Vec<&str> = text.split('.').collect();
    let last = tokens.len() - 1;
    tokens.iter().enumerate().all(|(i, token)| match *token {
        "*" => wildcards,
        ">" => wildcards && i == last,
        token => {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }
    })
}

fn reference(pattern: &[&str], concrete: &[&str]) -> bool {
    match (pattern.split_first(), concrete.split_first()) {
        (None, None) => true,
        (Some((&">", _)), Some(_)) => true,
        (Some((&"*", p)), Some((_, t))) => reference(p, t),
        (Some((p0, p)), Some((t0, t))) => p0 == t0 && reference(p, t),
        _ => false,
    }
}
