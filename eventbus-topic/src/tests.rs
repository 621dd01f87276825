use super::*;
use proptest::prelude::*;

/// The plain reference the const matcher is checked against.
fn reference_match(pattern: &str, topic: &str) -> bool {
    fn go(p: &[&str], t: &[&str]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(&">"), Some(_)) => true,
            (Some(&"*"), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = topic.split('.').collect();
    go(&p, &t)
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("ab".to_owned()),
        "[A-Za-z0-9_-]{1,4}"
    ]
}

fn topic() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 1..5).prop_map(|t| t.join("."))
}

fn pattern() -> impl Strategy<Value = String> {
    let part = prop_oneof![3 => token(), 1 => Just("*".to_owned())];
    (prop::collection::vec(part, 0..5), any::<bool>()).prop_filter_map(
        "a pattern has at least one token",
        |(mut parts, tail)| {
            if tail {
                parts.push(">".to_owned());
            }
            (!parts.is_empty()).then(|| parts.join("."))
        },
    )
}

proptest! {
    #[test]
    fn matcher_agrees_with_reference(p in pattern(), t in topic()) {
        prop_assert!(validate_pattern(&p).is_ok());
        prop_assert!(validate_topic(&t).is_ok());
        prop_assert_eq!(matches(&p, &t), reference_match(&p, &t), "pattern {} topic {}", p, t);
    }

    #[test]
    fn ignoring_case_is_matching_the_lower_case_forms(p in pattern(), t in topic()) {
        prop_assert_eq!(
            matches_ignore_ascii_case(&p, &t),
            matches(&p.to_ascii_lowercase(), &t.to_ascii_lowercase()),
            "pattern {} topic {}", p, t
        );
    }

    #[test]
    fn topic_matches_itself_and_its_wildcard_forms(t in topic()) {
        prop_assert!(matches(&t, &t));
        let star: Vec<&str> = t.split('.').map(|_| "*").collect();
        prop_assert!(matches(&star.join("."), &t));
        prop_assert!(matches(">", &t));
    }

    #[test]
    fn validation_never_panics(s in "\\PC{0,40}") {
        let _ = validate_topic(&s).map_err(|e| e.describe(&s));
        let _ = validate_pattern(&s).map_err(|e| e.describe(&s));
        let _ = matches(&s, &s);
    }
}

#[test]
fn tail_wildcard_needs_at_least_one_token() {
    assert!(!matches("order.>", "order"));
    assert!(matches("order.>", "order.placed"));
    assert!(matches("order.>", "order.cancelled.by_customer"));
    assert!(!matches("order.*", "order.cancelled.by_customer"));
    assert!(!matches("order.placed", "order.placed.x"));
    assert!(!matches("order.placed.x", "order.placed"));
}

fn err(s: &str, pattern: bool) -> TopicError {
    let r = if pattern {
        validate_pattern(s)
    } else {
        validate_topic(s)
    };
    r.expect_err(s)
}

#[test]
fn errors_name_the_token_and_position() {
    let e = err("order..placed", false);
    assert_eq!((e.kind, e.position), (TopicErrorKind::EmptyToken, 2));
    assert!(e.describe("order..placed").contains("position 2"));

    let e = err("order.pl#ced", false);
    assert_eq!((e.kind, e.position), (TopicErrorKind::InvalidChar, 2));
    assert_eq!(e.token("order.pl#ced"), "pl#ced");
    assert!(e.describe("order.pl#ced").contains("'#'"));

    let e = err("order.*", false);
    assert_eq!((e.kind, e.position), (TopicErrorKind::WildcardInTopic, 2));

    let e = err("order.pl*", true);
    assert_eq!((e.kind, e.position), (TopicErrorKind::PartialWildcard, 2));

    let e = err("order.>.x", true);
    assert_eq!(
        (e.kind, e.position),
        (TopicErrorKind::TailWildcardNotLast, 2)
    );

    assert_eq!(err("", false).kind, TopicErrorKind::Empty);
    assert_eq!(err(".a", false).kind, TopicErrorKind::EmptyToken);
    assert_eq!(err("a.", true).position, 2);
    assert_eq!(err("a b", false).kind, TopicErrorKind::InvalidChar);
    assert_eq!(err("café", false).kind, TopicErrorKind::InvalidChar);
    assert_eq!(
        err(&"a".repeat(MAX_LEN + 1), false).kind,
        TopicErrorKind::TooLong
    );
    assert!(validate_topic(&"a".repeat(MAX_LEN)).is_ok());
}

#[test]
fn const_evaluation_works() {
    const {
        assert!(matches_any("order.*", &["entity.created", "order.placed"]));
        assert!(!matches_any("order.*.x", &["order.placed"]));
        assert!(validate_pattern("a.*.>").is_ok());
    }
    assert!(has_wildcard("a.*") && has_wildcard(">") && !has_wildcard("a.b"));
}

#[test]
fn invalid_topic_displays_the_message() {
    let e = err("a..b", false).with_input("a..b");
    assert_eq!(e.input(), "a..b");
    assert_eq!(e.to_string(), e.error().describe("a..b"));
}
