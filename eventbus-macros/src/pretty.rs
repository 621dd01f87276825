//! Code as people write it, for messages and recorded type names.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use quote::ToTokens;

/// `HashMap<String, u64>` and `ev: Envelope<E>`, rather than the token
/// printer's `HashMap < String , u64 >` and `ev : Envelope < E >`.
///
/// Good for types, patterns and parameters, which is all messages show; it
/// does not try to lay out expressions.
pub(crate) fn pretty<T: ToTokens>(tokens: &T) -> String {
    let mut pieces = Vec::new();
    split(tokens.to_token_stream(), &mut pieces);
    let mut out = String::new();
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 && spaced(&pieces[i - 1], piece) {
            out.push(' ');
        }
        out.push_str(piece);
    }
    out
}

/// Whether a space goes between two adjacent pieces.
fn spaced(before: &str, after: &str) -> bool {
    let glued_after = matches!(after, "," | ";" | ":" | ">" | ")" | "]" | "." | "?")
        || (matches!(after, "<" | "(" | "[") && is_word(before))
        || (after == "::" && (is_word(before) || before == ">"));
    let glued_before = matches!(before, "<" | "&" | "::" | "(" | "[" | "." | "#" | "*");
    !(glued_after || glued_before)
}

fn is_word(piece: &str) -> bool {
    piece
        .chars()
        .last()
        .is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Flattens tokens into printable pieces, joining multi-character
/// punctuation (`::`, `->`) and lifetimes (`'a`).
fn split(tokens: TokenStream, pieces: &mut Vec<String>) {
    let mut pending = String::new();
    for tree in tokens {
        match tree {
            TokenTree::Punct(punct) => {
                pending.push(punct.as_char());
                if punct.spacing() == Spacing::Alone && punct.as_char() != '\'' {
                    pieces.push(std::mem::take(&mut pending));
                }
            }
            TokenTree::Ident(ident) => {
                pending.push_str(&ident.to_string());
                pieces.push(std::mem::take(&mut pending));
            }
            other => {
                if !pending.is_empty() {
                    pieces.push(std::mem::take(&mut pending));
                }
                match other {
                    TokenTree::Group(group) => {
                        let (open, close) = match group.delimiter() {
                            Delimiter::Parenthesis => ("(", ")"),
                            Delimiter::Bracket => ("[", "]"),
                            Delimiter::Brace => ("{", "}"),
                            Delimiter::None => ("", ""),
                        };
                        if !open.is_empty() {
                            pieces.push(open.to_owned());
                        }
                        split(group.stream(), pieces);
                        if !close.is_empty() {
                            pieces.push(close.to_owned());
                        }
                    }
                    other => pieces.push(other.to_string()),
                }
            }
        }
    }
    if !pending.is_empty() {
        pieces.push(pending);
    }
}

#[cfg(test)]
mod tests {
    use syn::{FnArg, Type, parse_quote};

    use super::pretty;

    #[test]
    fn prints_types_and_params_readably() {
        let ty: Type = parse_quote!(::std::sync::Arc<(u8, &'static str)>);
        assert_eq!(pretty(&ty), "::std::sync::Arc<(u8, &'static str)>");
        let ty: Type = parse_quote!(HashMap<String, Vec<[u8; 4]>>);
        assert_eq!(pretty(&ty), "HashMap<String, Vec<[u8; 4]>>");
        let ty: Type = parse_quote!(Box<dyn Fn(u8) -> u8 + Send>);
        assert_eq!(pretty(&ty), "Box<dyn Fn(u8) -> u8 + Send>");
        let param: FnArg = parse_quote!(ev: ::eventbus::Envelope<OrderEvent>);
        assert_eq!(pretty(&param), "ev: ::eventbus::Envelope<OrderEvent>");
        let param: FnArg = parse_quote!(a: &'a T);
        assert_eq!(pretty(&param), "a: &'a T");
        let param: FnArg = parse_quote!(mut ev: E);
        assert_eq!(pretty(&param), "mut ev: E");
    }
}
