//! The upcaster chains of `derive(Event)`: `decode_stored`, which reads
//! data stored by an older version through each upcaster up to the
//! current one.
//!
//! Each chain is straight-line code, one `let` per upcaster, so the
//! compiler checks that each typed upcaster returns what the next one
//! takes (and the last returns the type itself), and reports a mismatch
//! on the function named in the attribute. Between a typed and a raw step
//! the value goes through JSON.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::Path;
use syn::spanned::Spanned;

use super::check::Step;
use super::model::{Body, Input};

/// What the chain holds between two steps.
#[derive(Clone, Copy, PartialEq)]
enum Held {
    /// The stored bytes, not read yet.
    Bytes,
    /// JSON, after a raw step.
    Json,
    /// A typed value, after a typed step.
    Typed,
}

/// The `decode_stored` method, or nothing when the type has no upcasters
/// (the trait's default reads only the current version).
pub(crate) fn decode_stored(
    input: &Input<'_>,
    krate: &Path,
    version: u32,
    steps: &[Step],
) -> TokenStream {
    if steps.is_empty() {
        return TokenStream::new();
    }
    let is_enum = matches!(input.body, Body::Enum(..));
    let arms = steps.iter().enumerate().map(|(i, step)| {
        let from = step.from;
        let chain = chain(krate, &steps[i..], is_enum);
        quote!(#from => { #chain })
    });
    quote! {
        fn decode_stored(
            __topic: &::core::primitive::str,
            __version: ::core::primitive::u32,
            __data: &[::core::primitive::u8],
        ) -> ::core::result::Result<Self, #krate::CodecError> {
            match __version {
                #version => <Self as #krate::Event>::decode_data(__topic, __data),
                #(#arms)*
                _ => ::core::result::Result::Err(
                    #krate::CodecError::unknown_version::<Self>(__version),
                ),
            }
        }
    }
}

/// The steps from the first one's version to the current one.
fn chain(krate: &Path, steps: &[Step], is_enum: bool) -> TokenStream {
    let private = quote!(#krate::__private::upcast);
    let mut held = Held::Bytes;
    let mut out = TokenStream::new();
    for (i, step) in steps.iter().enumerate() {
        let (func, from) = (&step.func, step.from);
        let last = i + 1 == steps.len();
        let span = func.span();
        if step.raw {
            out.extend(match held {
                Held::Bytes => quote! {
                    let __v = #private::json::<Self>(__topic, #from, __data)?;
                },
                Held::Typed => quote_spanned! {span=>
                    let __v = #private::to_json::<Self, _>(__topic, #from, &__v)?;
                },
                Held::Json => TokenStream::new(),
            });
            out.extend(if is_enum {
                quote_spanned!(span=> let __v: #private::Value = #func(__topic, __v);)
            } else {
                quote_spanned!(span=> let __v: #private::Value = #func(__v);)
            });
            held = Held::Json;
        } else {
            out.extend(match held {
                Held::Bytes => quote_spanned! {span=>
                    let __v = #private::typed::<Self, _>(__topic, #from, __data)?;
                },
                Held::Json => quote_spanned! {span=>
                    let __v = #private::from_json::<Self, _>(__topic, #from, __v)?;
                },
                Held::Typed => TokenStream::new(),
            });
            out.extend(if last {
                quote_spanned!(span=> let __v: Self = #func(__v);)
            } else {
                quote_spanned!(span=> let __v = #func(__v);)
            });
            held = Held::Typed;
        }
    }
    match held {
        Held::Json => quote!(#out #private::finish::<Self>(__topic, __v)),
        _ => quote!(#out ::core::result::Result::Ok(__v)),
    }
}
