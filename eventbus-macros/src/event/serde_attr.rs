//! The user's `#[serde(...)]` options, sorted into what shapes an event's
//! data and so must be copied onto the derive's shadow types.
//!
//! Field options are copied verbatim, since a field's data is the same
//! whether it sits in a struct or a variant. Container and variant options
//! are filtered: on an enum, anything about tagging (`tag`, `untagged`,
//! variant `rename`, ...) has no meaning for events, whose topic says which
//! variant it is; the user may still want those for their own `Serialize`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, Fields, Ident, Lit, LitStr, Meta, Token};

use crate::ctxt::Ctxt;

/// A struct's container options, to copy onto its shadows.
pub(crate) struct StructSerde {
    /// Every option except `crate` and `remote`, which the derive sets, and
    /// `default`, which becomes [`Self::default`].
    pub(crate) container: Vec<Meta>,
    /// `#[serde(default)]` or `#[serde(default = "path")]`. Serde would
    /// take either from the shadow it derives for; the derive passes a
    /// function that starts from the user type's default instead.
    pub(crate) default: Option<ContainerDefault>,
    /// Whether serde reads or writes the struct as another type (`from`,
    /// `try_from`, `into`), so that its fields' own serde impls may not
    /// matter and the derive leaves them to serde.
    pub(crate) through_other: bool,
    /// Whether the user renamed the container (else the derive renames the
    /// shadow back to the type's name, which `tag` writes and errors show).
    pub(crate) renamed: bool,
}

/// Where a struct's `#[serde(default)]` takes the default from.
pub(crate) enum ContainerDefault {
    /// The type's `Default`, from a bare `default`, with its span.
    Trait(Span),
    /// `default = "path"`: the function, and the string it was written as.
    Path(syn::ExprPath, LitStr),
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
        let through_other = metas
            .iter()
            .any(|m| matches!(key(m).as_str(), "from" | "try_from" | "into"));
        let mut default = None;
        let mut container = Vec::new();
        for meta in metas {
            match (key(&meta).as_str(), &meta) {
                ("crate" | "remote", _) => {}
                ("default", Meta::Path(path)) => {
                    default = Some(ContainerDefault::Trait(path.span()));
                }
                ("default", Meta::NameValue(pair)) => match &pair.value {
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(lit), ..
                    }) => match lit.parse() {
                        Ok(path) => default = Some(ContainerDefault::Path(path, lit.clone())),
                        Err(error) => cx.push(error),
                    },
                    _ => cx.error_spanned_by(
                        &pair.value,
                        "`#[serde(default = ...)]` takes the path of a function as a string, as \
                         in `default = \"Config::empty\"`",
                    ),
                },
                _ => container.push(meta),
            }
        }
        StructSerde {
            container,
            default,
            through_other,
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

/// A field's `#[serde(...)]` attributes for a shadow that only
/// deserializes: without the options about serializing, which serde
/// ignores there but a schema derive reading the same attributes would
/// apply to the shadow's field type. Attributes that do not parse are kept
/// for serde to report.
pub(crate) fn deserializing_attrs(attrs: &[Attribute]) -> Vec<TokenStream> {
    field_attrs(attrs)
        .map(|attr| {
            let Ok(metas) = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
            else {
                return quote!(#attr);
            };
            let kept = metas.iter().filter(|meta| {
                !matches!(
                    key(meta).as_str(),
                    "skip_serializing_if" | "serialize_with" | "skip_serializing" | "getter"
                )
            });
            quote!(#[serde(#(#kept),*)])
        })
        .collect()
}

/// Whether serde writes and reads a field with these attributes through
/// its type's own `Serialize` and `Deserialize` and nothing else, so that
/// the derive may take that path itself (see `codec`). Options that bring
/// their own functions (`with`, `default = "..."`), skip a direction, or
/// change how the type is used (`flatten`) leave the field to serde, as do
/// options that do not parse, which serde reports.
pub(crate) fn by_type_alone(attrs: &[Attribute]) -> bool {
    field_attrs(attrs).all(|attr| {
        let Ok(metas) = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
        else {
            return false;
        };
        metas.iter().all(|meta| match (key(meta).as_str(), meta) {
            ("default", Meta::Path(_)) => true,
            (
                "with" | "serialize_with" | "deserialize_with" | "default" | "skip"
                | "skip_serializing" | "skip_deserializing" | "flatten" | "getter",
                _,
            ) => false,
            _ => true,
        })
    })
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
    use quote::{ToTokens, quote};
    use syn::parse::Parser;
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
        assert!(matches!(s.default, Some(ContainerDefault::Trait(_))));
        assert!(!s.renamed);
        assert!(!s.through_other);
    }

    #[test]
    fn struct_default_path_and_conversions() {
        let attrs: Vec<Attribute> = vec![parse_quote!(
            #[serde(default = "Thing::empty", from = "Raw")]
        )];
        let cx = Ctxt::new();
        let s = StructSerde::from_attrs(&cx, &attrs);
        assert!(cx.check().is_ok());
        let Some(ContainerDefault::Path(path, _)) = s.default else {
            panic!("a default path");
        };
        assert_eq!(path.to_token_stream().to_string(), "Thing :: empty");
        assert!(s.through_other);
    }

    #[test]
    fn fields_by_type_alone() {
        let field = |attrs: Vec<Attribute>| by_type_alone(&attrs);
        assert!(field(vec![]));
        assert!(field(vec![parse_quote!(#[doc = "x"])]));
        assert!(field(vec![
            parse_quote!(#[serde(rename = "x", default)]),
            parse_quote!(#[serde(skip_serializing_if = "Option::is_none", alias = "y")]),
        ]));
        for attr in [
            quote!(#[serde(with = "m")]),
            quote!(#[serde(serialize_with = "f")]),
            quote!(#[serde(default = "f")]),
            quote!(#[serde(skip)]),
            quote!(#[serde(skip_deserializing)]),
            quote!(#[serde(flatten)]),
            quote!(#[serde(rename = )]),
        ] {
            let attrs = Attribute::parse_outer.parse2(attr.clone()).unwrap();
            assert!(!field(attrs), "{attr}");
        }
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
