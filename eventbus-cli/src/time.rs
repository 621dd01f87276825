//! Times on the command line: RFC 3339, or an age such as `10m`, `2h`,
//! `3d` or `1h30m` meaning that long before now.

use chrono::{DateTime, Utc};

/// Reads `--since`/`--until` values, relative to the current time.
pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    parse_at(text, Utc::now())
}

fn parse_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    if text == "now" {
        return Ok(now);
    }
    let age = eventbus::store::parse_duration(text).map_err(|_| {
        format!(
            "`{text}` is not a time: use RFC 3339 (2026-01-02T15:04:05Z) or an age \
             such as 30s, 10m, 2h, 3d or 1h30m"
        )
    })?;
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .ok_or_else(|| format!("`{text}` reaches further back than dates go"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z")
            .expect("valid")
            .with_timezone(&Utc)
    }

    #[test]
    fn rfc3339_with_any_offset() {
        let t = parse_at("2026-03-10T13:30:00+01:00", now()).expect("parses");
        assert_eq!(t.to_rfc3339(), "2026-03-10T12:30:00+00:00");
    }

    #[test]
    fn ages_count_back_from_now() {
        assert_eq!(
            parse_at("10m", now()),
            Ok(now() - chrono::Duration::minutes(10))
        );
        assert_eq!(
            parse_at("2h", now()),
            Ok(now() - chrono::Duration::hours(2))
        );
        assert_eq!(parse_at("3d", now()), Ok(now() - chrono::Duration::days(3)));
        assert_eq!(
            parse_at("1h30m", now()),
            Ok(now() - chrono::Duration::minutes(90))
        );
        assert_eq!(
            parse_at("500ms", now()),
            Ok(now() - chrono::Duration::milliseconds(500))
        );
        assert_eq!(parse_at("now", now()), Ok(now()));
    }

    #[test]
    fn anything_else_is_refused_with_the_forms_to_use() {
        for bad in ["yesterday", "10", "10 m", "", "2026-03-10"] {
            let e = parse_at(bad, now()).expect_err(bad);
            assert!(e.contains("RFC 3339") && e.contains("10m"), "{e}");
        }
        assert!(parse_at("99999999999d", now()).is_err());
    }
}
