//! The user's `#[serde(...)]` options, sorted into what shapes an event's
//! data and so must be copied onto the derive's shadow types.
//!
//! Field options are copied verbatim, since a field's data is the same
//! whether it sits in a struct or a variant. Container and variant options
//! are filtered: on an enum, anything about tagging (`tag`, `untagged`,
//! variant `rename`, ...) has no meaning for events, whose topic says which
//! variant it is; the user may still want those for their own `Serialize`.

use proc_macro2::Span;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Fields, Ident, Meta, Token};

use crate::ctxt::Ctxt;

/// A struct's container options, to copy onto its shadow.
pub(crate) struct StructSerde {
    /// Every option except `crate` and `remote`, which the derive sets, and
    /// a bare `default`, which becomes `default_from`.
    pub(crate) container: Vec<Meta>,
    /// The span of a bare `#[serde(default)]`. On a `remote` shadow, serde
    /// would require the shadow itself to be `Default`; the derive passes a
    /// function returning the user type's default instead.
    pub(crate) default_from: Option<Span>,
    /// Whether the user renamed the container (else the derive renames the
    /// shadow back to the type's name, which `tag` writes and errors show).
    pub(crate) renamed: bool,
}

/// An enum's container options that reach its variants' data.
pub(crate) struct EnumSerde {
    /// `rename_all_fields`: the default `rename_all` of struct variants.
    pub(crate) rename_all_fields: Option<Meta>,
    /// `deny_unknown_fields`, which applies to every struct variant.
    pub(crate) deny_unknown_fields: bool,
}

/// A variant's options that shape its data.
pub(crate) struct VariantSerde {
    /// `rename_all` for the variant's fields.
    pub(crate) rename_all: Option<Meta>,
    /// `with`, `serialize_with` and `deserialize_with` of a newtype variant,
    /// which mean the same on its only field.
    pub(crate) with: Vec<Meta>,
}

impl StructSerde {
    /// Reads a struct's `#[serde(...)]` attributes.
    pub(crate) fn from_attrs(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let metas = metas(cx, attrs);
        let renamed = metas.iter().any(|m| key(m) == "rename");
        let mut default_from = None;
        let mut container = Vec::new();
        for meta in metas {
            match (key(&meta).as_str(), &meta) {
                ("crate" | "remote", _) => {}
                ("default", Meta::Path(path)) => default_from = Some(path.span()),
                _ => container.push(meta),
            }
        }
        StructSerde {
            container,
            default_from,
            renamed,
        }
    }
}

impl EnumSerde {
    /// Reads an enum's `#[serde(...)]` attributes.
    pub(crate) fn from_attrs(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut out = EnumSerde {
            rename_all_fields: None,
            deny_unknown_fields: false,
        };
        for meta in metas(cx, attrs) {
            match key(&meta).as_str() {
                "rename_all_fields" => out.rename_all_fields = Some(meta),
                "deny_unknown_fields" => out.deny_unknown_fields = true,
                _ => {}
            }
        }
        out
    }
}

impl VariantSerde {
    /// Reads a variant's `#[serde(...)]` attributes, reporting `with` on a
    /// variant that is not a newtype, which the per-variant shadow cannot
    /// express.
    pub(crate) fn from_variant(cx: &Ctxt, variant: &syn::Variant) -> Self {
        let newtype = matches!(&variant.fields, Fields::Unnamed(f) if f.unnamed.len() == 1);
        let mut out = VariantSerde {
            rename_all: None,
            with: Vec::new(),
        };
        for meta in metas(cx, &variant.attrs) {
            match key(&meta).as_str() {
                "rename_all" => out.rename_all = Some(meta),
                "with" | "serialize_with" | "deserialize_with" if newtype => out.with.push(meta),
                k @ ("with" | "serialize_with" | "deserialize_with") => cx.error_spanned_by(
                    &meta,
                    format!(
                        "`#[serde({k} = ...)]` on a variant is supported by `derive(Event)` only \
                         on newtype variants such as `{}(T)`; put it on the fields instead",
                        variant.ident
                    ),
                ),
                _ => {}
            }
        }
        out
    }
}

/// The `#[serde(...)]` attributes among `attrs`, copied as they are.
pub(crate) fn field_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("serde"))
}

/// `meta` under another key, such as `rename_all_fields` as `rename_all`.
pub(crate) fn rekeyed(meta: &Meta, key: &str) -> Meta {
    let mut meta = meta.clone();
    let path = match &mut meta {
        Meta::Path(path) => path,
        Meta::List(list) => &mut list.path,
        Meta::NameValue(pair) => &mut pair.path,
    };
    *path = Ident::new(key, Span::call_site()).into();
    meta
}

fn metas(cx: &Ctxt, attrs: &[Attribute]) -> Vec<Meta> {
    let mut out = Vec::new();
    for attr in field_attrs(attrs) {
        match attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
            Ok(metas) => out.extend(metas),
            Err(error) => cx.push(error),
        }
    }
    out
}

fn key(meta: &Meta) -> String {
    meta.path()
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use quote::ToTokens;
    use syn::parse_quote;

    use super::*;

    #[test]
    fn struct_keeps_all_but_crate_and_remote() {
        let attrs: Vec<Attribute> = vec![
            parse_quote!(#[serde(rename_all = "camelCase", crate = "x")]),
            parse_quote!(#[serde(deny_unknown_fields, remote = "Y", default)]),
        ];
        let cx = Ctxt::new();
        let s = StructSerde::from_attrs(&cx, &attrs);
        assert!(cx.check().is_ok());
        let kept: Vec<String> = s.container.iter().map(key).collect();
        assert_eq!(kept, ["rename_all", "deny_unknown_fields"]);
        assert!(s.default_from.is_some());
        assert!(!s.renamed);
    }

    #[test]
    fn enum_keeps_what_reaches_variant_data() {
        let attrs: Vec<Attribute> = vec![parse_quote!(
            #[serde(tag = "type", rename_all_fields = "camelCase", deny_unknown_fields)]
        )];
        let cx = Ctxt::new();
        let e = EnumSerde::from_attrs(&cx, &attrs);
        assert!(cx.check().is_ok());
        assert!(e.deny_unknown_fields);
        let rekeyed = rekeyed(&e.rename_all_fields.unwrap(), "rename_all");
        assert_eq!(
            rekeyed.to_token_stream().to_string(),
            "rename_all = \"camelCase\""
        );
    }

    #[test]
    fn variant_with_only_on_newtypes() {
        let newtype: syn::Variant = parse_quote!(
            #[serde(with = "m", rename = "x")]
            A(u64)
        );
        let tuple: syn::Variant = parse_quote!(
            #[serde(with = "m")]
            B(u64, u64)
        );
        let cx = Ctxt::new();
        assert_eq!(VariantSerde::from_variant(&cx, &newtype).with.len(), 1);
        assert!(VariantSerde::from_variant(&cx, &tuple).with.is_empty());
        let errors: Vec<String> = cx
            .check()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("only on newtype variants such as `B(T)`"));
    }
}
