//! The `HasField` impls of `derive(Event)`: one per named field that every
//! variant has with one type, so that `#[saga(key = "order_id")]` can read
//! the correlation value of any event that carries it, and report one that
//! does not at compile time.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Fields, Ident, Type};

use super::model::{Body, Input};
use crate::field_hash;

/// The impls, or nothing for a generic type (whose impls would need its
/// bounds) and for types without such fields.
pub(crate) fn expand(input: &Input<'_>, krate: &syn::Path) -> TokenStream {
    if !input.ast.generics.params.is_empty() {
        return TokenStream::new();
    }
    let ty = &input.ast.ident;
    let private = quote!(#krate::__private);
    common_fields(input)
        .into_iter()
        .map(|(name, field_ty)| {
            let hash = field_hash(&name.to_string());
            let body = match &input.body {
                Body::Enum(variants, _) => {
                    let arms = variants.iter().map(|v| {
                        let variant = &v.ast.ident;
                        quote!(Self::#variant { #name: __field, .. } => __field)
                    });
                    quote!(match self { #(#arms,)* })
                }
                _ => quote!(&self.#name),
            };
            quote! {
                #[automatically_derived]
                impl #private::HasField<#hash, #field_ty> for #ty {
                    fn field(&self) -> &#field_ty {
                        #body
                    }
                }
            }
        })
        .collect()
}

/// The named fields every variant (or the struct) has, with one type as
/// written.
fn common_fields<'a>(input: &'a Input<'_>) -> Vec<(&'a Ident, &'a Type)> {
    let named = |fields: &'a Fields| -> Option<Vec<(&'a Ident, &'a Type)>> {
        match fields {
            Fields::Named(named) => Some(
                named
                    .named
                    .iter()
                    .filter_map(|f| f.ident.as_ref().map(|i| (i, &f.ty)))
                    .collect(),
            ),
            _ => None,
        }
    };
    match &input.body {
        Body::Struct(fields, _) => named(fields).unwrap_or_default(),
        Body::Enum(variants, _) => {
            let mut all = variants.iter().map(|v| named(&v.ast.fields));
            let Some(Some(mut common)) = all.next() else {
                return Vec::new();
            };
            for fields in all {
                let Some(fields) = fields else {
                    return Vec::new();
                };
                common.retain(|(name, ty)| {
                    fields.iter().any(|(n, t)| {
                        n == name
                            && t.to_token_stream().to_string() == ty.to_token_stream().to_string()
                    })
                });
            }
            common
        }
        Body::Union(_) => Vec::new(),
    }
}
