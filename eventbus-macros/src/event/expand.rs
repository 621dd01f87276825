//! The expansion of `derive(Event)`: the `impl Event`, or a stub of it when
//! the input has errors.

use proc_macro2::TokenStream;
use quote::quote;

use super::check::Checked;
use super::model::{Body, Input};
use super::{codec, upcast};

/// The `impl Event` and its codec, inside one `const _` block so that the
/// helper types never collide with the user's names.
pub(crate) fn expand(input: &Input<'_>, checked: &Checked) -> TokenStream {
    let ty = &input.ast.ident;
    let Checked {
        krate,
        name,
        version,
        topics,
        upcasts,
    } = checked;
    let decode_stored = upcast::decode_stored(input, krate, *version, upcasts);
    let topic_body = match &input.body {
        Body::Enum(variants, _) => {
            let idents = variants.iter().map(|v| &v.ast.ident);
            quote! {
                match self {
                    #(Self::#idents { .. } => #topics,)*
                }
            }
        }
        _ => quote!(#(#topics)*),
    };
    let codec::Codec {
        items,
        encode,
        decode,
    } = codec::expand(input, krate, topics);
    quote! {
        #[allow(dead_code, non_camel_case_types, unused_qualifications, clippy::all)]
        const _: () = {
            #items

            #[automatically_derived]
            impl #krate::Event for #ty {
                const NAME: &'static ::core::primitive::str = #name;
                const VERSION: ::core::primitive::u32 = #version;
                const TOPICS: &'static [&'static ::core::primitive::str] = &[#(#topics),*];

                fn topic(&self) -> &'static ::core::primitive::str {
                    #topic_body
                }

                fn encode_data(
                    &self,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<::core::primitive::u8>,
                    #krate::CodecError,
                > {
                    #encode
                }

                fn decode_data(
                    __topic: &::core::primitive::str,
                    __data: &[::core::primitive::u8],
                ) -> ::core::result::Result<Self, #krate::CodecError> {
                    #decode
                }

                #decode_stored
            }

            #krate::__private::inventory::submit! {
                #krate::__private::EventRegistration {
                    name: #name,
                    rust_type: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ty)),
                    version: #version,
                    topics: <#ty as #krate::Event>::TOPICS,
                    schemas: #krate::__private::no_schemas,
                    upgrade: #krate::__private::upgrade::<#ty>,
                }
            }
        };
    }
}

/// A stand-in `impl Event` emitted next to the errors, so that code using the
/// type reports only the real problem rather than "`X` is not an event" too.
///
/// Its `TOPICS` is empty, which no real event's is: `#[handler]`'s pattern
/// check relies on that to stay quiet about a type whose derive failed.
///
/// It never runs: the errors beside it stop the build.
pub(crate) fn fallback(input: &Input<'_>, checked: &Checked) -> TokenStream {
    // A generic type would need the user's generics and bounds, which are
    // exactly what is wrong with it; say nothing more.
    if !input.ast.generics.params.is_empty() || input.ast.generics.where_clause.is_some() {
        return TokenStream::new();
    }
    let ty = &input.ast.ident;
    let Checked {
        krate,
        name,
        version,
        ..
    } = checked;
    let message = "`#[derive(Event)]` failed; see the errors it reported";
    quote! {
        #[allow(unused_variables, clippy::all)]
        const _: () = {
            #[automatically_derived]
            impl #krate::Event for #ty {
                const NAME: &'static ::core::primitive::str = #name;
                const VERSION: ::core::primitive::u32 = #version;
                const TOPICS: &'static [&'static ::core::primitive::str] = &[];

                fn topic(&self) -> &'static ::core::primitive::str {
                    ::core::panic!(#message)
                }

                fn encode_data(
                    &self,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<::core::primitive::u8>,
                    #krate::CodecError,
                > {
                    ::core::panic!(#message)
                }

                fn decode_data(
                    __topic: &::core::primitive::str,
                    __data: &[::core::primitive::u8],
                ) -> ::core::result::Result<Self, #krate::CodecError> {
                    ::core::panic!(#message)
                }
            }
        };
    }
}
