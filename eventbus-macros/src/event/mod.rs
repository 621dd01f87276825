//! `#[derive(Event)]`: parse ([`model`]), check ([`check`]), expand
//! ([`expand`], with the codec in [`codec`] and the upcaster chains in
//! [`upcast`]).

mod check;
mod codec;
mod expand;
mod fields;
mod model;
mod schema;
mod serde_attr;
mod upcast;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::ctxt::Ctxt;

/// Expands `#[derive(Event)]` on `input`.
///
/// With errors, the output is every error plus a stub `impl Event`, so the
/// rest of the user's crate still type-checks against the trait.
pub(crate) fn derive(input: TokenStream) -> TokenStream {
    let ast: DeriveInput = match syn::parse2(input) {
        Ok(ast) => ast,
        Err(error) => return error.to_compile_error(),
    };
    let cx = Ctxt::new();
    let input = model::Input::from_ast(&cx, &ast);
    let checked = check::check(&cx, &input);
    match cx.check() {
        Ok(()) => expand::expand(&input, &checked),
        Err(error) => {
            let mut out = error.to_compile_error();
            out.extend(expand::fallback(&input, &checked));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::derive;

    fn items(tokens: proc_macro2::TokenStream) -> syn::File {
        syn::parse2(tokens).expect("the expansion is valid Rust")
    }

    #[test]
    fn expands_every_shape_to_valid_items() {
        for input in [
            quote!(
                #[event(topic = "a.b")]
                struct A {
                    id: u64,
                    #[serde(default)]
                    name: String,
                }
            ),
            quote!(
                #[event(topic = "a.b")]
                #[serde(default)]
                struct A(u64, u64);
            ),
            quote!(
                #[event(topic = "a.b", crate = "x::y")]
                struct A;
            ),
            quote! {
                #[event(namespace = "order", name = "Order", version = 2, upcast(from = 1, raw = f))]
                #[serde(rename_all_fields = "camelCase", deny_unknown_fields)]
                enum E {
                    Placed { id: u64 },
                    #[serde(with = "m")]
                    Shipped(u64),
                    Moved(i64, i64),
                    #[event(topic = "order.gone")]
                    Gone,
                }
            },
        ] {
            let out = derive(input);
            let text = out.to_string();
            assert!(!text.contains("compile_error"), "{text}");
            assert_eq!(items(out).items.len(), 1, "one `const _` block: {text}");
        }
    }

    #[test]
    fn serde_impls_unless_opted_out() {
        let serde_impls = |input| {
            let text = derive(input).to_string();
            (
                text.contains("Serialize for A"),
                text.contains("Deserialize < 'de > for A"),
            )
        };
        let plain = quote!(
            #[event(topic = "a.b")]
            struct A {
                id: u64,
            }
        );
        assert_eq!(serde_impls(plain), (true, true));
        let unit = quote!(
            #[event(topic = "a.b")]
            struct A;
        );
        assert_eq!(serde_impls(unit), (true, true));
        let variants = quote!(
            #[event(namespace = "a")]
            enum A {
                B { id: u64 },
            }
        );
        assert_eq!(
            serde_impls(variants),
            (true, false),
            "enums are not Deserialize"
        );
        let opted_out = quote!(
            #[event(topic = "a.b", serde = false)]
            struct A {
                id: u64,
            }
        );
        assert_eq!(serde_impls(opted_out), (false, false));
    }

    #[test]
    fn errors_come_with_a_stand_in_impl() {
        let out = derive(quote!(
            #[event(topic = "a..b")]
            struct A;
        ));
        let text = out.to_string();
        assert!(text.contains("compile_error"), "{text}");
        assert!(text.contains("impl :: eventbus :: Event for A"), "{text}");
        assert!(text.contains("Serialize for A"), "{text}");
        let generic = derive(quote!(
            #[event(topic = "a.b")]
            struct A<T>(T);
        ))
        .to_string();
        assert!(
            !generic.contains("impl"),
            "no stand-in for generic types: {generic}"
        );
    }
}
