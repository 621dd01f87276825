//! Variant identifiers to topic tokens.

/// `CancelledByCustomer` to `cancelled_by_customer`.
///
/// An acronym stays one word (`HTTPRequest` to `http_request`), and a word
/// starts after a digit (`V2Placed` to `v2_placed`), which is how people read
/// these names aloud.
pub(crate) fn snake_case(ident: &str) -> String {
    let chars: Vec<char> = ident.trim_start_matches("r#").chars().collect();
    let mut out = String::with_capacity(chars.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let starts_word = prev.is_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_uppercase() && next_is_lower);
            if starts_word && !out.ends_with('_') {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn splits_words() {
        assert_eq!(snake_case("Placed"), "placed");
        assert_eq!(snake_case("CancelledByCustomer"), "cancelled_by_customer");
        assert_eq!(snake_case("HTTPRequest"), "http_request");
        assert_eq!(snake_case("OrderID"), "order_id");
        assert_eq!(snake_case("V2Placed"), "v2_placed");
        assert_eq!(snake_case("Placed2"), "placed2");
        assert_eq!(snake_case("Already_Snake"), "already_snake");
        assert_eq!(snake_case("A"), "a");
    }
}
