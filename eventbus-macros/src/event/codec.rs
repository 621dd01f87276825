//! The codec half of the expansion: `encode_data` and `decode_data`.
//!
//! The user's type need not implement serde's traits, and an enum's data is
//! the variant's own content rather than serde's tagged form, so the derive
//! writes shadow types that mirror the user's fields (with their
//! `#[serde(...)]` options) and lets serde's own derive do the work:
//!
//! - a struct gets a shadow with `#[serde(remote = "Type")]`, whose generated
//!   `serialize(&Type, S)` and `deserialize(D) -> Type` read and build the
//!   real fields;
//! - an enum gets a `remote`, `untagged` shadow for serializing, which writes
//!   exactly the variant's content, and one plain struct per variant for
//!   deserializing, since the topic already says which variant to expect.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{Fields, LitStr, Meta, Path};

use super::model::{Body, Input, Variant};
use super::serde_attr::{self, EnumSerde, StructSerde, VariantSerde};

/// The generated items and the bodies of the two codec methods.
pub(crate) struct Codec {
    /// Shadow types and the `Serialize` wrapper, placed beside the impl.
    pub(crate) items: TokenStream,
    /// The body of `encode_data(&self)`.
    pub(crate) encode: TokenStream,
    /// The body of `decode_data(__topic, __data)`.
    pub(crate) decode: TokenStream,
}

/// Names the generated code shares.
struct Names<'a> {
    krate: &'a Path,
    /// `<krate>::__private::serde`, as a path.
    serde: TokenStream,
    /// The same path as a string, for `#[serde(crate = "...")]`.
    serde_str: LitStr,
    ty: &'a Ident,
}

/// The codec of a checked input; `topics` are the validated topics, one per
/// variant for an enum.
pub(crate) fn expand(input: &Input<'_>, krate: &Path, topics: &[String]) -> Codec {
    let serde_str = format!("{}::__private::serde", krate.to_token_stream()).replace(' ', "");
    let names = Names {
        krate,
        serde: quote!(#krate::__private::serde),
        serde_str: LitStr::new(&serde_str, Span::call_site()),
        ty: &input.ast.ident,
    };
    match &input.body {
        Body::Struct(Fields::Unit, _) => unit_struct(&names, &topics[0]),
        Body::Struct(fields, serde) => data_struct(&names, fields, serde, &topics[0]),
        Body::Enum(variants, serde) => data_enum(&names, variants, serde, topics),
        Body::Union(_) => unreachable!("the check pass rejects unions"),
    }
}

fn unknown_topic(names: &Names<'_>) -> TokenStream {
    let krate = names.krate;
    quote! {
        _ => ::core::result::Result::Err(#krate::CodecError::unknown_topic::<Self>(__topic)),
    }
}

/// The wrapper through which `encode_json` reaches the shadow's `serialize`.
fn serialize_wrapper(names: &Names<'_>) -> TokenStream {
    let Names { serde, ty, .. } = names;
    quote! {
        struct __EventbusSer<'a>(&'a #ty);

        #[automatically_derived]
        impl #serde::Serialize for __EventbusSer<'_> {
            fn serialize<__S>(
                &self,
                __serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: #serde::Serializer,
            {
                __EventbusData::serialize(self.0, __serializer)
            }
        }
    }
}

fn encode_through_wrapper(names: &Names<'_>) -> TokenStream {
    let krate = names.krate;
    quote!(#krate::__private::encode_json::<Self, _>(&__EventbusSer(self)))
}

/// A unit struct's data is `null`, and decoding accepts what a unit variant
/// accepts (empty, `null`, `{}`), so the two read alike on the wire.
fn unit_struct(names: &Names<'_>, topic: &str) -> Codec {
    let Names { krate, ty, .. } = names;
    let unknown = unknown_topic(names);
    Codec {
        items: TokenStream::new(),
        encode: quote!(#krate::__private::encode_json::<Self, _>(&())),
        decode: quote! {
            match __topic {
                #topic => #krate::__private::decode_unit::<Self>(__topic, __data).map(|()| #ty),
                #unknown
            }
        },
    }
}

/// A named or tuple struct: one `remote` shadow deriving both traits.
fn data_struct(names: &Names<'_>, fields: &Fields, serde: &StructSerde, topic: &str) -> Codec {
    let Names {
        krate,
        serde: serde_path,
        serde_str,
        ty,
    } = names;
    let remote = LitStr::new(&ty.to_string(), Span::call_site());
    let container = &serde.container;
    let container = (!container.is_empty()).then(|| quote!(#[serde(#(#container),*)]));
    let rename = (!serde.renamed).then(|| {
        let name = LitStr::new(&ty.unraw().to_string(), Span::call_site());
        quote!(#[serde(rename = #name)])
    });
    let (default_attr, default_fn) = match serde.default_from {
        Some(span) => {
            let name = LitStr::new("__eventbus_default", span);
            (
                Some(quote!(#[serde(default = #name)])),
                Some(quote_spanned! {span=>
                    fn __eventbus_default() -> #ty {
                        <#ty as ::core::default::Default>::default()
                    }
                }),
            )
        }
        None => (None, None),
    };
    let body = shadow_fields(fields, ty, None);
    let semi = matches!(fields, Fields::Unnamed(_)).then(|| quote!(;));
    let wrapper = serialize_wrapper(names);
    let unknown = unknown_topic(names);
    Codec {
        items: quote! {
            #[derive(#serde_path::Serialize, #serde_path::Deserialize)]
            #[serde(crate = #serde_str, remote = #remote)]
            #rename
            #container
            #default_attr
            struct __EventbusData #body #semi
            #default_fn
            #wrapper
        },
        encode: encode_through_wrapper(names),
        decode: quote! {
            match __topic {
                #topic => #krate::__private::decode_json::<Self, _>(
                    __topic,
                    __data,
                    |__de| __EventbusData::deserialize(__de),
                ),
                #unknown
            }
        },
    }
}

/// An enum: an `untagged` remote shadow to serialize, a struct per data
/// variant to deserialize, and `decode_unit` for unit variants.
fn data_enum(
    names: &Names<'_>,
    variants: &[Variant<'_>],
    serde: &EnumSerde,
    topics: &[String],
) -> Codec {
    let Names {
        krate,
        serde: serde_path,
        serde_str,
        ty,
    } = names;
    let remote = LitStr::new(&ty.to_string(), Span::call_site());
    let rename_all_fields = serde
        .rename_all_fields
        .as_ref()
        .map(|meta| quote!(#[serde(#meta)]));
    let shadow_variants = variants.iter().map(|variant| {
        let ident = &variant.ast.ident;
        let rename_all = variant
            .serde
            .rename_all
            .as_ref()
            .map(|m| quote!(#[serde(#m)]));
        let body = shadow_fields(&variant.ast.fields, ty, Some(&variant.serde));
        quote!(#rename_all #ident #body)
    });
    let mut items = quote! {
        #[derive(#serde_path::Serialize)]
        #[serde(crate = #serde_str, remote = #remote, untagged)]
        #rename_all_fields
        enum __EventbusData {
            #(#shadow_variants,)*
        }
    };
    items.extend(serialize_wrapper(names));

    let mut arms = TokenStream::new();
    for (variant, topic) in variants.iter().zip(topics) {
        let ident = &variant.ast.ident;
        let fields = &variant.ast.fields;
        if let Fields::Unit = fields {
            arms.extend(quote! {
                #topic => #krate::__private::decode_unit::<Self>(__topic, __data)
                    .map(|()| Self::#ident),
            });
            continue;
        }
        let shadow = format_ident!("__EventbusVariant{}", ident.unraw());
        // serde's messages name the Rust type ("expected struct X"), which
        // here would be the shadow's name.
        let kind = if let Fields::Named(_) = fields {
            "struct"
        } else {
            "tuple"
        };
        let expecting = format!("{kind} variant {}::{}", ty.unraw(), ident.unraw());
        let expecting = LitStr::new(&expecting, Span::call_site());
        let rename_all = match fields {
            Fields::Named(_) => variant.serde.rename_all.clone().or_else(|| {
                serde
                    .rename_all_fields
                    .as_ref()
                    .map(|m| serde_attr::rekeyed(m, "rename_all"))
            }),
            _ => None,
        }
        .map(|m: Meta| quote!(, #m));
        let deny = (serde.deny_unknown_fields && matches!(fields, Fields::Named(_)))
            .then(|| quote!(, deny_unknown_fields));
        let body = shadow_fields(fields, ty, Some(&variant.serde));
        let semi = matches!(fields, Fields::Unnamed(_)).then(|| quote!(;));
        items.extend(quote! {
            #[derive(#serde_path::Deserialize)]
            #[serde(crate = #serde_str, expecting = #expecting #rename_all #deny)]
            struct #shadow #body #semi
        });
        let build = build_variant(ident, fields);
        arms.extend(quote! {
            #topic => #krate::__private::decode_json::<Self, _>(
                __topic,
                __data,
                |__de| <#shadow as #serde_path::Deserialize>::deserialize(__de),
            )
            .map(|__v| #build),
        });
    }
    let unknown = unknown_topic(names);
    Codec {
        items,
        encode: encode_through_wrapper(names),
        decode: quote! {
            match __topic {
                #arms
                #unknown
            }
        },
    }
}

/// `{ a: T, .. }` or `(T, ..)` with each field's serde options; a newtype
/// variant's `with` options move onto its field, where they mean the same.
fn shadow_fields(fields: &Fields, ty: &Ident, variant: Option<&VariantSerde>) -> TokenStream {
    let with = variant
        .map(|v| v.with.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|m| quote!(#[serde(#m)]));
    let with = quote!(#(#with)*);
    let field_tokens = fields.iter().map(|field| {
        let attrs = serde_attr::field_attrs(&field.attrs);
        let field_ty = replace_self(field.ty.to_token_stream(), ty);
        match &field.ident {
            Some(ident) => quote!(#(#attrs)* #ident: #field_ty),
            None => quote!(#with #(#attrs)* #field_ty),
        }
    });
    match fields {
        Fields::Named(_) => quote!({ #(#field_tokens,)* }),
        Fields::Unnamed(_) => quote!(( #(#field_tokens,)* )),
        Fields::Unit => TokenStream::new(),
    }
}

/// `Self::V { a: __v.a }` or `Self::V(__v.0)` from a variant's shadow.
fn build_variant(ident: &Ident, fields: &Fields) -> TokenStream {
    match fields {
        Fields::Named(named) => {
            let names = named.named.iter().map(|f| &f.ident);
            let names2 = names.clone();
            quote!(Self::#ident { #(#names: __v.#names2,)* })
        }
        _ => {
            let index = (0..fields.len()).map(syn::Index::from);
            quote!(Self::#ident( #(__v.#index,)* ))
        }
    }
}

/// A field type with `Self` meaning the user's type, as it did where it was
/// written, rather than the shadow it is copied into.
fn replace_self(tokens: TokenStream, ty: &Ident) -> TokenStream {
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Ident(ident) if ident == "Self" => {
                let mut replaced = ty.clone();
                replaced.set_span(ident.span());
                TokenTree::Ident(replaced)
            }
            TokenTree::Group(group) => {
                let mut replaced = Group::new(group.delimiter(), replace_self(group.stream(), ty));
                replaced.set_span(group.span());
                TokenTree::Group(replaced)
            }
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    #[test]
    fn self_in_field_types_names_the_user_type() {
        let ty: Ident = parse_quote!(Node);
        let replaced = replace_self(quote!(Vec<Option<Box<Self>>>), &ty);
        assert_eq!(
            replaced.to_string(),
            quote!(Vec<Option<Box<Node>>>).to_string()
        );
    }

    #[test]
    fn newtype_variant_with_moves_onto_the_field() {
        let variant: syn::Variant = parse_quote!(
            #[serde(with = "m")]
            A(
                #[serde(default)]
                u64
            )
        );
        let cx = crate::ctxt::Ctxt::new();
        let serde = VariantSerde::from_variant(&cx, &variant);
        let ty: Ident = parse_quote!(E);
        let tokens = shadow_fields(&variant.fields, &ty, Some(&serde));
        assert_eq!(
            tokens.to_string(),
            quote!((
                #[serde(with = "m")]
                #[serde(default)]
                u64,
            ))
            .to_string()
        );
    }
}
