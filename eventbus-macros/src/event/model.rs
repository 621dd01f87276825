//! The parse pass of `derive(Event)`: the input with its `#[event(...)]` and
//! `#[serde(...)]` options read into typed fields.
//!
//! Only syntax is judged here (unknown keys, wrong value types, duplicates);
//! what the options mean together is the check pass's business.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, LitStr, Path};

use super::serde_attr::{EnumSerde, StructSerde, VariantSerde};
use crate::attr::{self, Key, Spec};
use crate::ctxt::Ctxt;

/// The keys of `#[event(...)]` on the type.
const CONTAINER: Spec = Spec {
    name: "event",
    place: "",
    keys: &[
        Key {
            name: "topic",
            example: "topic = \"entity.created\"",
            aliases: &["subject", "topics"],
        },
        Key {
            name: "namespace",
            example: "namespace = \"order\"",
            aliases: &["prefix", "ns"],
        },
        Key {
            name: "name",
            example: "name = \"EntityCreated\"",
            aliases: &["rename"],
        },
        Key {
            name: "version",
            example: "version = 2",
            aliases: &["v", "schema_version"],
        },
        Key {
            name: "upcast",
            example: "upcast(from = 1, with = v1_to_v2)",
            aliases: &["upcaster", "migrate", "from"],
        },
        Key {
            name: "serde",
            example: "serde = false",
            aliases: &["impl_serde", "serialize", "derive_serde"],
        },
        Key {
            name: "crate",
            example: "crate = \"::eventbus\"",
            aliases: &["krate"],
        },
    ],
};

/// The keys of one `upcast(...)`.
const UPCAST: Spec = Spec {
    name: "upcast",
    place: "",
    keys: &[
        Key {
            name: "from",
            example: "from = 1",
            aliases: &["version", "since"],
        },
        Key {
            name: "with",
            example: "with = v1_to_v2",
            aliases: &["fn", "using", "typed"],
        },
        Key {
            name: "raw",
            example: "raw = rename_amount",
            aliases: &["json", "value"],
        },
    ],
};

/// The keys of `#[event(...)]` on an enum variant.
const VARIANT: Spec = Spec {
    name: "event",
    place: " on a variant",
    keys: &[Key {
        name: "topic",
        example: "topic = \"order.cancelled.by_customer\"",
        aliases: &["subject", "namespace", "name"],
    }],
};

/// A `derive(Event)` input, parsed.
pub(crate) struct Input<'a> {
    /// The item as written, for spans and for re-emitting its parts.
    pub(crate) ast: &'a DeriveInput,
    /// The container's `#[event(...)]` options.
    pub(crate) attrs: ContainerAttrs,
    /// The shape of the item.
    pub(crate) body: Body<'a>,
}

/// The container's `#[event(...)]` options, each `None` when absent.
#[derive(Default)]
pub(crate) struct ContainerAttrs {
    pub(crate) topic: Option<LitStr>,
    pub(crate) namespace: Option<LitStr>,
    pub(crate) name: Option<LitStr>,
    pub(crate) version: Option<(u32, Span)>,
    /// The `upcast(...)` options, in the order written.
    pub(crate) upcasts: Vec<Upcast>,
    /// `serde = false`: the type derives serde's traits itself.
    pub(crate) serde: Option<bool>,
    pub(crate) krate: Option<Path>,
    /// Whether some `#[event(...)]` option was malformed, in which case a
    /// missing topic is likely a misspelled one, already reported.
    pub(crate) malformed: bool,
}

/// One `upcast(from = N, with = f)` or `upcast(from = N, raw = f)`: how
/// data stored as version N becomes version N + 1.
pub(crate) struct Upcast {
    /// The whole option, for errors about it as a whole.
    pub(crate) span: Span,
    pub(crate) from: Option<(u32, Span)>,
    /// `with = f`: a typed function from the old shape to the next one.
    pub(crate) with: Option<Path>,
    /// `raw = f`: a function over the JSON data.
    pub(crate) raw: Option<Path>,
}

/// The item's shape with the serde options that shape its data.
pub(crate) enum Body<'a> {
    Struct(&'a Fields, StructSerde),
    Enum(Vec<Variant<'a>>, Box<EnumSerde>),
    /// The `union` keyword, which the check pass rejects.
    Union(&'a syn::token::Union),
}

/// One enum variant and its options.
pub(crate) struct Variant<'a> {
    pub(crate) ast: &'a syn::Variant,
    /// `#[event(topic = "...")]` on the variant.
    pub(crate) topic: Option<LitStr>,
    /// Whether the variant's `#[event(...)]` was malformed.
    pub(crate) malformed: bool,
    pub(crate) serde: VariantSerde,
}

impl<'a> Input<'a> {
    /// Reads the options, reporting malformed ones to `cx`.
    pub(crate) fn from_ast(cx: &Ctxt, ast: &'a DeriveInput) -> Self {
        let attrs = container_attrs(cx, &ast.attrs);
        let body = match &ast.data {
            Data::Struct(data) => {
                reject_field_attrs(cx, &data.fields);
                Body::Struct(&data.fields, StructSerde::from_attrs(cx, &ast.attrs))
            }
            Data::Enum(data) => {
                let variants = data
                    .variants
                    .iter()
                    .map(|variant| {
                        reject_field_attrs(cx, &variant.fields);
                        let before = cx.count();
                        let topic = variant_topic(cx, &variant.attrs);
                        Variant {
                            ast: variant,
                            topic,
                            malformed: cx.count() > before,
                            serde: VariantSerde::from_variant(cx, variant),
                        }
                    })
                    .collect();
                Body::Enum(variants, Box::new(EnumSerde::from_attrs(cx, &ast.attrs)))
            }
            Data::Union(data) => Body::Union(&data.union_token),
        };
        Input { ast, attrs, body }
    }
}

fn event_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("event"))
}

fn container_attrs(cx: &Ctxt, attrs: &[Attribute]) -> ContainerAttrs {
    let mut out = ContainerAttrs::default();
    let before = cx.count();
    for attr in event_attrs(attrs) {
        for arg in attr::parse_attr(cx, attr, &CONTAINER) {
            match arg.key {
                "topic" => {
                    if let Some(v) = arg.string(cx) {
                        attr::set_once(cx, &mut out.topic, &arg, v);
                    }
                }
                "namespace" => {
                    if let Some(v) = arg.string(cx) {
                        attr::set_once(cx, &mut out.namespace, &arg, v);
                    }
                }
                "name" => {
                    if let Some(v) = arg.string(cx) {
                        attr::set_once(cx, &mut out.name, &arg, v);
                    }
                }
                "version" => {
                    if let Some(v) = arg.u32(cx) {
                        attr::set_once(cx, &mut out.version, &arg, v);
                    }
                }
                "upcast" => {
                    if let Some(list) = &arg.list {
                        out.upcasts.push(upcast(cx, list));
                    }
                }
                "serde" => {
                    if let Some(v) = arg.bool(cx) {
                        attr::set_once(cx, &mut out.serde, &arg, v);
                    }
                }
                "crate" => {
                    if let Some(v) = arg.path(cx) {
                        attr::set_once(cx, &mut out.krate, &arg, v);
                    }
                }
                _ => unreachable!("`{}` is in CONTAINER but not handled", arg.key),
            }
        }
    }
    out.malformed = cx.count() > before;
    out
}

fn upcast(cx: &Ctxt, list: &syn::MetaList) -> Upcast {
    let mut out = Upcast {
        span: list.span(),
        from: None,
        with: None,
        raw: None,
    };
    for arg in attr::parse_args(cx, list.tokens.clone(), &UPCAST) {
        match arg.key {
            "from" => {
                if let Some(v) = arg.u32(cx) {
                    attr::set_once(cx, &mut out.from, &arg, v);
                }
            }
            "with" => {
                if let Some(v) = arg.path(cx) {
                    attr::set_once(cx, &mut out.with, &arg, v);
                }
            }
            "raw" => {
                if let Some(v) = arg.path(cx) {
                    attr::set_once(cx, &mut out.raw, &arg, v);
                }
            }
            _ => unreachable!("`{}` is in UPCAST but not handled", arg.key),
        }
    }
    out
}

fn variant_topic(cx: &Ctxt, attrs: &[Attribute]) -> Option<LitStr> {
    let mut topic = None;
    for attr in event_attrs(attrs) {
        for arg in attr::parse_attr(cx, attr, &VARIANT) {
            if let Some(v) = arg.string(cx) {
                attr::set_once(cx, &mut topic, &arg, v);
            }
        }
    }
    topic
}

/// Fields have no `#[event]` options; saying so beats the compiler's
/// silence, since a derive helper attribute is accepted anywhere in the item.
fn reject_field_attrs(cx: &Ctxt, fields: &Fields) {
    for field in fields {
        for attr in event_attrs(&field.attrs) {
            cx.error_spanned_by(
                attr,
                "`#[event(...)]` does not apply to fields; it goes on the type (`topic`, \
                 `namespace`, `name`, `version`, `upcast`, `serde`, `crate`) or on an enum \
                 variant (`topic`); \
                 use `#[serde(...)]` to shape a field's data",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    #[test]
    fn reads_container_options() {
        let ast: DeriveInput = parse_quote! {
            #[event(topic = "a.b", name = "Thing")]
            #[event(version = 3, crate = "::renamed", serde = false)]
            struct Thing { id: u64 }
        };
        let cx = Ctxt::new();
        let input = Input::from_ast(&cx, &ast);
        assert!(cx.check().is_ok());
        assert_eq!(input.attrs.serde, Some(false));
        assert_eq!(input.attrs.topic.unwrap().value(), "a.b");
        assert_eq!(input.attrs.name.unwrap().value(), "Thing");
        assert_eq!(input.attrs.version.unwrap().0, 3);
        assert!(input.attrs.krate.is_some());
    }

    #[test]
    fn reports_every_malformed_option() {
        let ast: DeriveInput = parse_quote! {
            #[event(topc = "a.b", version = "2")]
            #[event]
            enum E {
                #[event(topic = 1)]
                A { #[event(topic = "x")] id: u64 },
                #[event(namspace = "b")]
                B,
            }
        };
        let cx = Ctxt::new();
        let _ = Input::from_ast(&cx, &ast);
        let messages: Vec<String> = cx
            .check()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(messages.len(), 6, "{messages:#?}");
        assert!(messages[0].contains("did you mean `topic`?"));
        assert!(messages[1].contains("`version` takes a non-negative integer literal"));
        assert!(messages[2].starts_with("expected `#[event(key = value, ...)]`"));
        assert!(messages[3].contains("does not apply to fields"));
        assert!(messages[4].contains("`topic` takes a string literal"));
        assert!(
            messages[5].contains("on a variant; valid keys are `topic`"),
            "{}",
            messages[5]
        );
    }
}
