//! The expansion of `derive(Event)`: the `impl Event`, or a stub of it when
//! the input has errors.

use proc_macro2::TokenStream;
use quote::quote;

use super::check::Checked;
use super::model::{Body, Input};
use super::schema::Schemas;
use super::{codec, fields, upcast};

/// The `impl Event` and its codec, inside one `const _` block so that the
/// helper types never collide with the user's names.
pub(crate) fn expand(input: &Input<'_>, checked: &Checked) -> TokenStream {
    let ty = &input.ast.ident;
    let Checked {
        krate,
        name,
        version,
        serde,
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
    let schemas = Schemas::new(&quote!(#krate::__private), cfg!(feature = "schema"));
    let codec::Codec {
        items,
        encode,
        decode,
        serialize,
        deserialize,
    } = codec::expand(input, krate, topics, &schemas);
    let (schema_items, schemas_fn) = schemas.finish();
    let serde_impls = serde.then(|| serde_impls(ty, krate, &serialize, deserialize.as_ref()));
    let field_impls = fields::expand(input, krate);
    quote! {
        #[allow(dead_code, non_camel_case_types, unused_qualifications, clippy::all)]
        const _: () = {
            #items
            #schema_items

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
                    schemas: #schemas_fn,
                    upgrade: #krate::__private::upgrade::<#ty>,
                }
            }

            #serde_impls
            #field_impls
        };
    }
}

/// The type's own `Serialize` (and, for a struct, `Deserialize`), whose
/// form is the event's data: `serde_json::to_string(&event)` is what
/// `encode_data` writes.
fn serde_impls(
    ty: &syn::Ident,
    krate: &syn::Path,
    serialize: &TokenStream,
    deserialize: Option<&TokenStream>,
) -> TokenStream {
    let serde = quote!(#krate::__private::serde);
    let deserialize = deserialize.map(|body| {
        quote! {
            #[automatically_derived]
            impl<'de> #serde::Deserialize<'de> for #ty {
                fn deserialize<__D>(
                    __deserializer: __D,
                ) -> ::core::result::Result<Self, __D::Error>
                where
                    __D: #serde::Deserializer<'de>,
                {
                    #body
                }
            }
        }
    });
    quote! {
        #[automatically_derived]
        impl #serde::Serialize for #ty {
            fn serialize<__S>(
                &self,
                __serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: #serde::Serializer,
            {
                #serialize
            }
        }

        #deserialize
    }
}

/// A stand-in `impl Event` (and serde impls, unless `serde = false`)
/// emitted next to the errors, so that code using the type reports only the
/// real problem rather than "`X` is not an event" too.
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
        serde,
        ..
    } = checked;
    let message = "`#[derive(Event)]` failed; see the errors it reported";
    let panic = quote!(::core::panic!(#message));
    let is_enum = matches!(input.body, Body::Enum(..));
    let serde_impls = serde.then(|| serde_impls(ty, krate, &panic, (!is_enum).then_some(&panic)));
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

            #serde_impls
        };
    }
}
