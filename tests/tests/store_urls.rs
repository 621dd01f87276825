//! Store URLs as a fuzzer writes them: secrets stay hidden however the URL
//! is broken, durations stay within what the stores represent, options
//! are given once, and paths and user info are percent-decoded.

use std::path::Path;
use std::time::Duration;

use eventbus::Error;
use eventbus::store::{MAX_DURATION, NatsConfig, RedisConfig, SqliteStore};
use tests::{NatsScope, OrderEvent, isolated};

/// The pieces of every secret below; none may show anywhere.
const PIECES: [&str; 3] = ["Zq1", "Xk2", "Wv3"];

/// Everything a URL can make visible: the error's `Display` and `Debug`,
/// or the parsed NATS or Redis settings' `Debug`.
async fn visible(url: &str) -> Vec<String> {
    let mut shown = Vec::new();
    let nats = NatsConfig::from_url(url);
    match &nats {
        Ok(config) => shown.push(format!("{config:?}")),
        Err(e) => shown.extend([e.to_string(), format!("{e:?}")]),
    }
    let redis = RedisConfig::from_url(url);
    match &redis {
        Ok(config) => shown.push(format!("{config:?}")),
        Err(e) => shown.extend([e.to_string(), format!("{e:?}")]),
    }
    // Only URLs that cannot connect anywhere are opened, so no test waits
    // on a network.
    let connects = (url.starts_with("nats://") && nats.is_ok()) || redis.is_ok();
    if !connects {
        match eventbus::store::open(url).await {
            Ok(_) => panic!("`{url}` opened a store"),
            Err(e) => shown.extend([e.to_string(), format!("{e:?}")]),
        }
    }
    shown
}

#[tokio::test]
async fn secrets_never_show_in_errors_or_debug_whatever_the_url() {
    let delimiters = ['/', '?', '@', ':', '#', ',', '&', '=', '%', ' '];
    let mut urls = Vec::new();
    for d1 in delimiters {
        for d2 in delimiters {
            let secret = format!("Zq1{d1}Xk2{d2}Wv3");
            let encoded = secret
                .replace('%', "%25")
                .replace(['/', '?', '@', ':', '#', ' '], "%2F");
            let mut infos = vec![
                format!("alice:{secret}"),
                format!("alice:{encoded}"),
                encoded,
            ];
            // A raw `:` makes the text before it a user name, by URL rules.
            if d1 != ':' && d2 != ':' {
                infos.push(secret.clone());
            }
            for info in infos {
                for (scheme, tail) in [
                    ("nats://", ""),
                    ("nats://", "/"),
                    ("nats://", "/x"),
                    ("nats://", "?bogus=1"),
                    ("nats://", "?stream=a.b"),
                    ("nats://", "?max_age=300000d"),
                    ("nats://", "?stream=S&stream=S"),
                    ("nat://", ""),
                    ("memory://", ""),
                    ("sqlite://", "?bogus=1"),
                    ("nats:/", ""),
                    ("redis://", ""),
                    ("redis://", "/x"),
                    ("redis://", "/0?bogus=1"),
                    ("rediss://", "?max_age=300000d"),
                    ("redis://", "?prefix=a%20b"),
                    ("redis://", "?prefix=p&prefix=p"),
                    ("", ""),
                ] {
                    for hosts in ["127.0.0.1:4222", "h1:4222,[::1]:4222"] {
                        urls.push(format!("{scheme}{info}@{hosts}{tail}"));
                    }
                }
            }
        }
    }
    for url in &urls {
        for text in visible(url).await {
            for piece in PIECES {
                assert!(!text.contains(piece), "`{url}` shows `{piece}`: {text}");
            }
        }
    }
}

#[tokio::test]
async fn the_fuzzed_nats_url_is_shown_without_its_password() {
    let err = NatsConfig::from_url("nats://alice:pa/ssw0rd@127.0.0.1:4222?bogus=1")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("invalid store URL `nats://alice:***@127.0.0.1:4222?bogus=1`"),
        "{err}"
    );
    assert!(!err.contains("ssw0rd"), "{err}");
}

#[tokio::test]
async fn the_fuzzed_redis_url_is_shown_without_its_password() {
    let err = RedisConfig::from_url("redis://alice:pa/ssw0rd@127.0.0.1:6379/0?bogus=1")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("invalid store URL `redis://alice:***@127.0.0.1:6379/0?bogus=1`"),
        "{err}"
    );
    assert!(!err.contains("ssw0rd"), "{err}");
}

#[tokio::test]
async fn redis_urls_decode_user_info_and_keep_ipv6_hosts() {
    let config = RedisConfig::from_url("rediss://user:p%40ss@[::1]:6380/2?prefix=shop").unwrap();
    let debug = format!("{config:?}");
    for part in [
        r#"host: "::1""#,
        "port: 6380",
        "tls: true",
        "db: 2",
        r#"user: Some("user")"#,
        r#"password: Some("***")"#,
        r#"prefix: "shop""#,
    ] {
        assert!(debug.contains(part), "{part} in {debug}");
    }
    assert!(
        !debug.contains("p@ss") && !debug.contains("p%40ss"),
        "{debug}"
    );
}

#[tokio::test]
async fn durations_past_100_years_are_refused_naming_the_option_and_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    for (url, option) in [
        (
            "memory://?idempotency_window=100000000d".to_owned(),
            "idempotency_window",
        ),
        (
            format!("sqlite://{}?max_age=36526d", db.display()),
            "max_age",
        ),
        (
            format!("sqlite://{}?idempotency_window=300000d", db.display()),
            "idempotency_window",
        ),
        ("nats://h:4222?max_age=300000d".to_owned(), "max_age"),
        (
            "nats://h:4222?duplicate_window=300000d".to_owned(),
            "duplicate_window",
        ),
        ("nats://h:4222?ack_wait=300000d".to_owned(), "ack_wait"),
        ("redis://h?max_age=300000d".to_owned(), "max_age"),
        (
            "rediss://h:6380/1?duplicate_window=300000d".to_owned(),
            "duplicate_window",
        ),
        ("redis://h?ack_wait=300000d".to_owned(), "ack_wait"),
    ] {
        let err = match eventbus::store::open(&url).await {
            Ok(_) => panic!("`{url}` was accepted"),
            Err(e) => e,
        };
        assert!(matches!(err, Error::InvalidStoreUrl { .. }), "{url}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("{option} `"))
                && text.contains("is longer than 100 years (`100y` or `36525d`)"),
            "{url}: {text}"
        );
    }
    assert!(!db.exists(), "nothing was created");
    assert_eq!(MAX_DURATION, Duration::from_secs(36_525 * 86_400));
}

#[tokio::test]
async fn the_longest_idempotency_window_keeps_repeats_without_overflow() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "memory://?idempotency_window=100y".to_owned(),
        format!(
            "sqlite://{}?idempotency_window=36525d&max_age=100y",
            dir.path().join("events.db").display()
        ),
    ] {
        let bus = isolated().store(&url).build().await.unwrap();
        let first = bus
            .publish(OrderEvent::Shipped { id: 1 })
            .idempotency_key("k")
            .await
            .unwrap();
        let again = bus
            .publish(OrderEvent::Shipped { id: 2 })
            .idempotency_key("k")
            .await
            .unwrap();
        assert_eq!(again.id(), first.id(), "{url}");
        bus.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn an_option_given_twice_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    for (url, option) in [
        (
            format!(
                "sqlite://{}?synchronous=normal&synchronous=full",
                db.display()
            ),
            "synchronous",
        ),
        (
            format!("sqlite://{}?max_events=5&max_events=5", db.display()),
            "max_events",
        ),
        ("memory://?capacity=3&capacity=4".to_owned(), "capacity"),
        (
            "nats://h:4222?stream=A&prefix=p&stream=B".to_owned(),
            "stream",
        ),
        (
            "redis://h?prefix=a&max_events=9&prefix=b".to_owned(),
            "prefix",
        ),
    ] {
        let err = match eventbus::store::open(&url).await {
            Ok(_) => panic!("`{url}` was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(&format!("option `{option}` is given twice; give it once")),
            "{url}: {err}"
        );
    }
    assert!(!db.exists(), "nothing was created");
    let err = eventbus::store::open("memory://?capasity=3")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("unknown option `capasity`"), "{err}");
}

#[tokio::test]
async fn sqlite_paths_are_percent_decoded_and_relative_unless_rooted() {
    for (url, path) in [
        ("sqlite:///path%20with%20space.db", "/path with space.db"),
        ("sqlite://events.db", "events.db"),
        ("sqlite://dir/events.db?synchronous=normal", "dir/events.db"),
        ("sqlite:///abs/path.db", "/abs/path.db"),
        ("sqlite://a+b%3Fc%23d.db", "a+b?c#d.db"),
    ] {
        let got = SqliteStore::path_of(url).unwrap();
        assert_eq!(got, Path::new(path), "{url}");
        assert_eq!(got.is_absolute(), path.starts_with('/'), "{url}");
    }
    let e = SqliteStore::path_of("sqlite://%FF.db").unwrap_err();
    assert!(e.to_string().contains("not UTF-8"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let encoded = format!("{}/with%20space%25.db", dir.path().display());
    let store = SqliteStore::open(&format!("sqlite://{encoded}"))
        .await
        .unwrap();
    assert_eq!(store.path(), dir.path().join("with space%.db"));
    assert!(dir.path().join("with space%.db").exists());
}

#[tokio::test]
async fn nats_urls_decode_user_info_and_keep_ipv6_hosts() {
    let config = NatsConfig::from_url("nats://user:p%40ss@[::1]:4222").unwrap();
    let debug = format!("{config:?}");
    assert!(
        debug.contains(r#"servers: ["nats://[::1]:4222"]"#),
        "{debug}"
    );
    assert!(debug.contains(r#"user \"user\", password ***"#), "{debug}");
    assert!(
        !debug.contains("p@ss") && !debug.contains("p%40ss"),
        "{debug}"
    );

    let config =
        NatsConfig::from_url("nats://h:4222?creds=%2Ftmp%2Fmy%20user.creds&tls_ca=ca%40x.pem")
            .unwrap();
    let debug = format!("{config:?}");
    assert!(debug.contains(r#""/tmp/my user.creds""#), "{debug}");
    assert!(debug.contains(r#""ca@x.pem""#), "{debug}");
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_max_age_at_the_limit_reaches_the_server_intact() {
    let scope = NatsScope::new("maxage");
    let refused = eventbus::store::open(&scope.url("&max_age=300000d")).await;
    assert!(refused.is_err(), "past the limit nothing is created");
    let js = async_nats::jetstream::new(scope.raw_client().await);
    assert!(js.get_stream(&scope.stream).await.is_err());

    let store = eventbus::store::open(&scope.url("&max_age=100y"))
        .await
        .unwrap();
    store.close().await.unwrap();
    let mut stream = js.get_stream(&scope.stream).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.max_age, MAX_DURATION);
    // The stream, asked again with the same age, matches what it holds.
    eventbus::store::open(&scope.url("&max_age=36525d"))
        .await
        .unwrap();
}
