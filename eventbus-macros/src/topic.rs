//! `topic!("...")`: a topic or pattern checked while compiling.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{LitStr, Token};

/// The macro's input: one string literal, and a trailing comma at most.
struct Input(LitStr);

impl Parse for Input {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let lit = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "`topic!` takes one string literal, as in `topic!(\"order.placed\")` or \
                 `topic!(\"order.*\")`; for a string known only at run time, parse it with \
                 the constructors in `eventbus::topic`",
            )
        })?;
        let _: Option<Token![,]> = input.parse()?;
        Ok(Input(lit))
    }
}

/// Expands `topic!("a.b")` to a `Topic`, and `topic!("a.*")` to a `Pattern`.
///
/// Both constructors are `const fn`s, so the macro works in `const` items.
pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let Input(lit) = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let value = lit.value();
    if let Err(error) = eventbus_topic::validate_pattern(&value) {
        return syn::Error::new(lit.span(), error.describe(&value)).to_compile_error();
    }
    if eventbus_topic::has_wildcard(&value) {
        quote!(::eventbus::topic::Pattern::from_static(#lit))
    } else {
        quote!(::eventbus::topic::Topic::from_static(#lit))
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::expand;

    #[test]
    fn concrete_topics_and_patterns_pick_their_type() {
        assert!(
            expand(quote!("order.placed"))
                .to_string()
                .contains("Topic :: from_static")
        );
        assert!(
            expand(quote!("order.>"))
                .to_string()
                .contains("Pattern :: from_static")
        );
    }

    #[test]
    fn malformed_strings_are_errors() {
        let out = expand(quote!("order..placed")).to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("empty token at position 2"), "{out}");
        assert!(
            expand(quote!(order))
                .to_string()
                .contains("takes one string literal")
        );
    }
}
