//! Header names are CloudEvents extension attribute names, so every header
//! survives the trip through the CloudEvents form and NATS headers.

/// The header marking an envelope delivered by a replay (`"true"`).
pub const REPLAY_HEADER: &str = "replay";

/// Attribute names the envelope itself uses; a header cannot take them.
pub(crate) const RESERVED: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
    "correlationid",
    "causationid",
    "idempotencykey",
    "seq",
    "eventname",
    "eventversion",
    REPLAY_HEADER,
];

const MAX_NAME_LEN: usize = 20;

/// Checks a header name: 1 to 20 lower-case ASCII letters or digits, as
/// CloudEvents asks of extension names, and not one of the envelope's own.
///
/// # Errors
///
/// A message naming the header and what is valid.
pub fn validate_header_name(name: &str) -> Result<(), String> {
    let shape_ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !shape_ok {
        return Err(format!(
            "header name `{name}` is invalid: header names are CloudEvents extension names, \
             1 to {MAX_NAME_LEN} lower-case ASCII letters or digits (for example `tenant` or `traceparent`)"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "header name `{name}` is reserved for the envelope's own attribute; choose another name"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_follow_cloudevents_extension_rules() {
        assert!(validate_header_name("tenant").is_ok());
        assert!(validate_header_name("traceparent").is_ok());
        assert!(validate_header_name("Tenant").is_err());
        assert!(validate_header_name("x-tenant").is_err());
        assert!(validate_header_name("").is_err());
        assert!(validate_header_name(&"a".repeat(21)).is_err());
        let reserved = validate_header_name("seq").expect_err("seq is reserved");
        assert!(reserved.contains("reserved"));
    }
}
