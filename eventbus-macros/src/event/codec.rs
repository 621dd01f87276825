//! The codec half of the expansion: `encode_data`, `decode_data`, and the
//! bodies of the type's own serde impls.
//!
//! The user's type need not implement serde's traits, and an enum's data is
//! the variant's own content rather than serde's tagged form, so the derive
//! writes shadow types that mirror the user's fields (with their
//! `#[serde(...)]` options) and lets serde's own derive do the work:
//!
//! - a struct gets a shadow with `#[serde(remote = "Type")]` for
//!   serializing, whose generated `serialize(&Type, S)` reads the real
//!   fields, and a plain struct for deserializing, moved into the type;
//! - an enum gets a `remote`, `untagged` shadow for serializing, which writes
//!   exactly the variant's content, and one plain struct per variant for
//!   deserializing, since the topic already says which variant to expect.
//!
//! A field that serde handles by its type alone is routed through
//! `__private::EventField`, spanned on the field's type, so that a type
//! without serde is one error on the field, in eventbus's words: the
//! serializing shadow names it in `serialize_with`, and the deserializing
//! struct holds a `__private::Field` that reads it through a `FieldCodec`
//! impl of its own. Serde's generated code then never needs the field
//! type's traits, and so reports nothing; the field reads and writes as it
//! would directly (a missing `Option` is `None`). A struct that serde reads
//! or writes as another type (`from`, `try_from`, `into`) keeps a `remote`
//! shadow for both directions, its fields left to serde.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Fields, LitStr, Meta, Path};

use super::model::{Body, Input, Variant};
use super::schema::Schemas;
use super::serde_attr::{self, ContainerDefault, EnumSerde, StructSerde, VariantSerde};

/// The generated items and the bodies of the codec methods.
pub(crate) struct Codec {
    /// Shadow types and the `Serialize` wrapper, placed beside the impl.
    pub(crate) items: TokenStream,
    /// The body of `encode_data(&self)`.
    pub(crate) encode: TokenStream,
    /// The body of `decode_data(__topic, __data)`.
    pub(crate) decode: TokenStream,
    /// The body of the type's `Serialize::serialize(&self, __serializer)`:
    /// the data form.
    pub(crate) serialize: TokenStream,
    /// The body of the type's `Deserialize::deserialize(__deserializer)`,
    /// for structs only: an enum's data does not say which variant it is.
    pub(crate) deserialize: Option<TokenStream>,
}

/// Names the generated code shares.
struct Names<'a> {
    krate: &'a Path,
    /// `<krate>::__private`.
    private: TokenStream,
    /// `<krate>::__private::serde`, as a path.
    serde: TokenStream,
    /// The same path as a string, for `#[serde(crate = "...")]`.
    serde_str: LitStr,
    ty: &'a Ident,
    /// Where the deserializing shadows' JSON Schemas are collected.
    schemas: &'a Schemas,
}

/// The marker type whose `FieldCodec` impls read the routed fields.
const FIELDS: &str = "__EventbusFields";

/// The codec of a checked input; `topics` are the validated topics, one per
/// variant for an enum.
pub(crate) fn expand(
    input: &Input<'_>,
    krate: &Path,
    topics: &[String],
    schemas: &Schemas,
) -> Codec {
    let serde_str = format!("{}::__private::serde", krate.to_token_stream()).replace(' ', "");
    let names = Names {
        krate,
        private: quote!(#krate::__private),
        serde: quote!(#krate::__private::serde),
        serde_str: LitStr::new(&serde_str, Span::call_site()),
        ty: &input.ast.ident,
        schemas,
    };
    match &input.body {
        Body::Struct(Fields::Unit, _) => unit_struct(&names, &topics[0]),
        Body::Struct(fields, serde) if serde.through_other => {
            struct_through_other(&names, fields, serde, &topics[0])
        }
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

/// `decode_data`'s body for a struct read by `read` (a function of a
/// deserializer).
fn decode_struct(names: &Names<'_>, topic: &str, read: &TokenStream) -> TokenStream {
    let krate = names.krate;
    let unknown = unknown_topic(names);
    quote! {
        match __topic {
            #topic => #krate::__private::decode_json::<Self, _>(__topic, __data, #read),
            #unknown
        }
    }
}

/// A unit struct's data is `null`, and decoding accepts what a unit variant
/// accepts (empty, `null`, `{}`), so the two read alike on the wire.
fn unit_struct(names: &Names<'_>, topic: &str) -> Codec {
    let Names {
        krate, private, ty, ..
    } = names;
    let unknown = unknown_topic(names);
    names.schemas.topic_null();
    Codec {
        items: TokenStream::new(),
        encode: quote!(#krate::__private::encode_json::<Self, _>(&())),
        decode: quote! {
            match __topic {
                #topic => #krate::__private::decode_unit::<Self>(__topic, __data).map(|()| #ty),
                #unknown
            }
        },
        serialize: quote!(__serializer.serialize_unit()),
        deserialize: Some(quote! {
            <#private::UnitData as #private::serde::Deserialize>::deserialize(__deserializer)
                .map(|_| #ty)
        }),
    }
}

/// A named or tuple struct: a `remote` shadow to serialize, a plain struct
/// to deserialize into, then move into the type.
fn data_struct(names: &Names<'_>, fields: &Fields, serde: &StructSerde, topic: &str) -> Codec {
    let Names {
        private,
        serde: serde_path,
        serde_str,
        ty,
        ..
    } = names;
    let remote = LitStr::new(&ty.to_string(), Span::call_site());
    let container = struct_container(serde, ty);
    let plans = Planner::new(true).plan(fields, ty, None);
    let ser = ser_fields(names, fields, &plans);
    let de = de_fields(names, fields, &plans);
    let codecs = field_codecs(names, &plans);
    let semi = matches!(fields, Fields::Unnamed(_)).then(|| quote!(;));
    let (default_attr, default_fn) = match &serde.default {
        Some(default) => {
            let (span, value) = match default {
                ContainerDefault::Trait(span) => (
                    *span,
                    quote_spanned!(*span=> <#ty as ::core::default::Default>::default()),
                ),
                ContainerDefault::Path(path, lit) => {
                    (lit.span(), quote_spanned!(lit.span()=> #path()))
                }
            };
            let name = LitStr::new("__eventbus_default", span);
            let field = quote!(#private::Field);
            let moved = build(
                &quote!(__EventbusDe),
                fields,
                &plans,
                &quote!(__d),
                Wrap::Into(&field),
            );
            (
                Some(quote!(#[serde(default = #name)])),
                Some(quote! {
                    fn __eventbus_default() -> __EventbusDe {
                        let __d: #ty = #value;
                        #moved
                    }
                }),
            )
        }
        None => (None, None),
    };
    let built = build(&quote!(#ty), fields, &plans, &quote!(__v), Wrap::Out);
    let wrapper = serialize_wrapper(names);
    let schema = names.schemas.derive();
    names.schemas.topic_read_by(quote!(__EventbusDe));
    Codec {
        items: quote! {
            #[derive(#serde_path::Serialize)]
            #[serde(crate = #serde_str, remote = #remote)]
            #container
            struct __EventbusData #ser #semi

            #[derive(#serde_path::Deserialize)]
            #schema
            #[serde(crate = #serde_str)]
            #container
            #default_attr
            struct __EventbusDe #de #semi
            #default_fn
            #codecs

            fn __eventbus_deserialize<'de, __D>(
                __deserializer: __D,
            ) -> ::core::result::Result<#ty, __D::Error>
            where
                __D: #serde_path::Deserializer<'de>,
            {
                <__EventbusDe as #serde_path::Deserialize>::deserialize(__deserializer)
                    .map(|__v| #built)
            }

            #wrapper
        },
        encode: encode_through_wrapper(names),
        decode: decode_struct(names, topic, &quote!(|__de| __eventbus_deserialize(__de))),
        serialize: quote!(__EventbusData::serialize(self, __serializer)),
        deserialize: Some(quote!(__eventbus_deserialize(__deserializer))),
    }
}

/// A struct that serde reads or writes as another type: one `remote`
/// shadow deriving both traits, as serde would for the type itself.
fn struct_through_other(
    names: &Names<'_>,
    fields: &Fields,
    serde: &StructSerde,
    topic: &str,
) -> Codec {
    let Names {
        serde: serde_path,
        serde_str,
        ty,
        ..
    } = names;
    let remote = LitStr::new(&ty.to_string(), Span::call_site());
    let container = struct_container(serde, ty);
    let (default_attr, default_fn) = match &serde.default {
        Some(ContainerDefault::Trait(span)) => {
            let name = LitStr::new("__eventbus_default", *span);
            (
                Some(quote!(#[serde(default = #name)])),
                Some(quote_spanned! {*span=>
                    fn __eventbus_default() -> #ty {
                        <#ty as ::core::default::Default>::default()
                    }
                }),
            )
        }
        Some(ContainerDefault::Path(_, lit)) => (Some(quote!(#[serde(default = #lit)])), None),
        None => (None, None),
    };
    let plans = Planner::new(false).plan(fields, ty, None);
    let body = ser_fields(names, fields, &plans);
    names.schemas.topic_any();
    let semi = matches!(fields, Fields::Unnamed(_)).then(|| quote!(;));
    let wrapper = serialize_wrapper(names);
    Codec {
        items: quote! {
            #[derive(#serde_path::Serialize, #serde_path::Deserialize)]
            #[serde(crate = #serde_str, remote = #remote)]
            #container
            #default_attr
            struct __EventbusData #body #semi
            #default_fn
            #wrapper
        },
        encode: encode_through_wrapper(names),
        decode: decode_struct(
            names,
            topic,
            &quote!(|__de| __EventbusData::deserialize(__de)),
        ),
        serialize: quote!(__EventbusData::serialize(self, __serializer)),
        deserialize: Some(quote!(__EventbusData::deserialize(__deserializer))),
    }
}

/// A struct's container options for its shadows, with the type's name
/// unless the user renamed it.
fn struct_container(serde: &StructSerde, ty: &Ident) -> TokenStream {
    let container = &serde.container;
    let container = (!container.is_empty()).then(|| quote!(#[serde(#(#container),*)]));
    let rename = (!serde.renamed).then(|| {
        let name = LitStr::new(&ty.unraw().to_string(), Span::call_site());
        quote!(#[serde(rename = #name)])
    });
    quote!(#rename #container)
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
        ..
    } = names;
    let remote = LitStr::new(&ty.to_string(), Span::call_site());
    let rename_all_fields = serde
        .rename_all_fields
        .as_ref()
        .map(|meta| quote!(#[serde(#meta)]));
    let mut planner = Planner::new(true);
    let plans: Vec<Vec<FieldPlan<'_>>> = variants
        .iter()
        .map(|v| planner.plan(&v.ast.fields, ty, Some(&v.serde)))
        .collect();
    let shadow_variants = variants.iter().zip(&plans).map(|(variant, plans)| {
        let ident = &variant.ast.ident;
        let rename_all = variant
            .serde
            .rename_all
            .as_ref()
            .map(|m| quote!(#[serde(#m)]));
        let body = ser_fields(names, &variant.ast.fields, plans);
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
    items.extend(field_codecs(names, plans.iter().flatten()));

    let mut arms = TokenStream::new();
    for ((variant, topic), plans) in variants.iter().zip(topics).zip(&plans) {
        let ident = &variant.ast.ident;
        let fields = &variant.ast.fields;
        if let Fields::Unit = fields {
            names.schemas.topic_null();
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
        let body = de_fields(names, fields, plans);
        let semi = matches!(fields, Fields::Unnamed(_)).then(|| quote!(;));
        let schema = names.schemas.derive();
        names.schemas.topic_read_by(quote!(#shadow));
        items.extend(quote! {
            #[derive(#serde_path::Deserialize)]
            #schema
            #[serde(crate = #serde_str, expecting = #expecting #rename_all #deny)]
            struct #shadow #body #semi
        });
        let build = build(
            &quote!(Self::#ident),
            fields,
            plans,
            &quote!(__v),
            Wrap::Out,
        );
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
        serialize: quote!(__EventbusData::serialize(self, __serializer)),
        deserialize: None,
    }
}

/// How one field of a struct or variant goes into the shadows.
struct FieldPlan<'a> {
    field: &'a syn::Field,
    /// The field's type, with `Self` meaning the user's type.
    ty: TokenStream,
    /// The span of the type as written, where its errors go.
    span: Span,
    /// Its `FieldCodec` index, when serde handles it by its type alone and
    /// the derive routes it (see the module docs).
    codec: Option<usize>,
    /// The variant's `with` options that move onto a newtype variant's
    /// field.
    with: Vec<Meta>,
}

/// Plans the fields of one event type, numbering the routed ones across
/// all its variants.
struct Planner {
    next: usize,
    /// Whether to route fields serde handles by their type alone.
    route: bool,
}

impl Planner {
    fn new(route: bool) -> Self {
        Planner { next: 0, route }
    }

    fn plan<'a>(
        &mut self,
        fields: &'a Fields,
        ty: &Ident,
        variant: Option<&VariantSerde>,
    ) -> Vec<FieldPlan<'a>> {
        fields
            .iter()
            .map(|field| {
                let with = match (variant, &field.ident) {
                    (Some(variant), None) => variant.with.clone(),
                    _ => Vec::new(),
                };
                let routed =
                    self.route && with.is_empty() && serde_attr::by_type_alone(&field.attrs);
                let codec = routed.then(|| {
                    self.next += 1;
                    self.next - 1
                });
                FieldPlan {
                    field,
                    ty: replace_self(field.ty.to_token_stream(), ty),
                    span: field.ty.span(),
                    codec,
                    with,
                }
            })
            .collect()
    }
}

/// `{ a: T, .. }` or `(T, ..)` for the serializing shadow: each field's
/// serde options, and a routed field's `serialize_with`.
fn ser_fields(names: &Names<'_>, fields: &Fields, plans: &[FieldPlan<'_>]) -> TokenStream {
    let private = &names.private;
    shadow_body(fields, plans, Side::Serialize, |plan| {
        let route = plan.codec.map(|_| {
            let ty = &plan.ty;
            let path = quote!(<#ty as #private::EventField>::serialize_field).to_string();
            let path = LitStr::new(&path, plan.span);
            quote!(#[serde(serialize_with = #path)])
        });
        (route, plan.ty.clone())
    })
}

/// `{ a: T, .. }` or `(T, ..)` for a deserializing struct: a routed
/// field's type becomes its `__private::Field`.
fn de_fields(names: &Names<'_>, fields: &Fields, plans: &[FieldPlan<'_>]) -> TokenStream {
    let private = &names.private;
    let marker = Ident::new(FIELDS, Span::call_site());
    shadow_body(fields, plans, Side::Deserialize, |plan| {
        let ty = match plan.codec {
            Some(index) => quote!(#private::Field<#marker, #index>),
            None => plan.ty.clone(),
        };
        (names.schemas.field(&plan.ty, plan.span), ty)
    })
}

/// Which way a shadow goes: a deserializing one keeps only the serde
/// options that reading uses (see [`serde_attr::deserializing_attrs`]).
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Serialize,
    Deserialize,
}

/// The fields with their serde options (a newtype variant's `with` moved
/// onto its field, where it means the same), each with what `shape` gives:
/// an extra attribute and the type.
fn shadow_body(
    fields: &Fields,
    plans: &[FieldPlan<'_>],
    side: Side,
    shape: impl Fn(&FieldPlan<'_>) -> (Option<TokenStream>, TokenStream),
) -> TokenStream {
    let field_tokens = plans.iter().map(|plan| {
        let (route, ty) = shape(plan);
        let attrs = match side {
            Side::Serialize => serde_attr::field_attrs(&plan.field.attrs)
                .map(ToTokens::to_token_stream)
                .collect(),
            Side::Deserialize => serde_attr::deserializing_attrs(&plan.field.attrs),
        };
        let with = plan.with.iter().map(|m| quote!(#[serde(#m)]));
        match &plan.field.ident {
            Some(ident) => quote!(#(#attrs)* #route #ident: #ty),
            None => quote!(#(#with)* #(#attrs)* #route #ty),
        }
    });
    match fields {
        Fields::Named(_) => quote!({ #(#field_tokens,)* }),
        Fields::Unnamed(_) => quote!(( #(#field_tokens,)* )),
        Fields::Unit => TokenStream::new(),
    }
}

/// The marker type and one `FieldCodec` impl per routed field, whose body
/// is where a field type without serde is reported.
fn field_codecs<'a>(
    names: &Names<'_>,
    plans: impl IntoIterator<Item = &'a FieldPlan<'a>>,
) -> TokenStream {
    let Names {
        private,
        serde: serde_path,
        ..
    } = names;
    let marker = Ident::new(FIELDS, Span::call_site());
    let mut impls = TokenStream::new();
    for plan in plans {
        let Some(index) = plan.codec else { continue };
        let ty = &plan.ty;
        let read = quote_spanned!(plan.span=> <#ty as #private::EventField>::deserialize_field);
        impls.extend(quote! {
            impl #private::FieldCodec<#index> for #marker {
                type Value = #ty;

                fn deserialize<'de, __D>(
                    __deserializer: __D,
                ) -> ::core::result::Result<#ty, __D::Error>
                where
                    __D: #serde_path::Deserializer<'de>,
                {
                    #read(__deserializer)
                }
            }
        });
    }
    if impls.is_empty() {
        return impls;
    }
    quote! {
        struct #marker;
        #impls
    }
}

/// Whether [`build`] takes routed fields out of their `__private::Field`,
/// or puts them into the one named.
#[derive(Clone, Copy)]
enum Wrap<'a> {
    Out,
    Into(&'a TokenStream),
}

/// `Path { a: v.a, .. }` or `Path(v.0, ..)` from a value `v` of the other
/// side, unwrapping or wrapping the routed fields.
fn build(
    path: &TokenStream,
    fields: &Fields,
    plans: &[FieldPlan<'_>],
    value: &TokenStream,
    wrap: Wrap<'_>,
) -> TokenStream {
    let moved = plans.iter().enumerate().map(|(i, plan)| {
        let member = match &plan.field.ident {
            Some(ident) => quote!(#ident),
            None => syn::Index::from(i).to_token_stream(),
        };
        let value = match (plan.codec.is_some(), wrap) {
            (false, _) => quote!(#value.#member),
            (true, Wrap::Out) => quote!(#value.#member.0),
            (true, Wrap::Into(field)) => quote!(#field(#value.#member)),
        };
        (member, value)
    });
    match fields {
        Fields::Named(_) => {
            let (members, values): (Vec<_>, Vec<_>) = moved.unzip();
            quote!(#path { #(#members: #values,)* })
        }
        Fields::Unnamed(_) => {
            let values = moved.map(|(_, value)| value);
            quote!(#path( #(#values,)* ))
        }
        Fields::Unit => quote!(#path),
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
        let krate: Path = parse_quote!(::eventbus);
        let schemas = Schemas::new(&quote!(#krate::__private), false);
        let names = names(&krate, &ty, &schemas);
        let plans = Planner::new(true).plan(&variant.fields, &ty, Some(&serde));
        assert_eq!(plans[0].codec, None, "`with` brings its own functions");
        let tokens = ser_fields(&names, &variant.fields, &plans);
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

    #[test]
    fn fields_serde_handles_by_type_are_routed() {
        let fields: syn::FieldsNamed = parse_quote!({
            id: u64,
            #[serde(default)]
            note: Option<Self>,
            #[serde(with = "m")]
            cents: u64,
        });
        let fields = Fields::Named(fields);
        let ty: Ident = parse_quote!(E);
        let krate: Path = parse_quote!(::eventbus);
        let schemas = Schemas::new(&quote!(#krate::__private), false);
        let names = names(&krate, &ty, &schemas);
        let mut planner = Planner::new(true);
        planner.next = 2;
        let plans = planner.plan(&fields, &ty, None);
        let codecs: Vec<_> = plans.iter().map(|p| p.codec).collect();
        assert_eq!(codecs, [Some(2), Some(3), None]);
        assert_eq!(
            de_fields(&names, &fields, &plans).to_string(),
            quote!({
                id: ::eventbus::__private::Field<__EventbusFields, 2usize>,
                #[serde(default)]
                note: ::eventbus::__private::Field<__EventbusFields, 3usize>,
                #[serde(with = "m")]
                cents: u64,
            })
            .to_string()
        );
        let ser = ser_fields(&names, &fields, &plans).to_string();
        assert!(
            ser.contains(
                r#"serialize_with = "< Option < E > as :: eventbus :: __private :: EventField > :: serialize_field""#
            ),
            "{ser}"
        );
        assert_eq!(
            build(&quote!(E), &fields, &plans, &quote!(__v), Wrap::Out).to_string(),
            quote!(E {
                id: __v.id.0,
                note: __v.note.0,
                cents: __v.cents,
            })
            .to_string()
        );
    }

    fn names<'a>(krate: &'a Path, ty: &'a Ident, schemas: &'a Schemas) -> Names<'a> {
        Names {
            krate,
            private: quote!(#krate::__private),
            serde: quote!(#krate::__private::serde),
            serde_str: LitStr::new("::eventbus::__private::serde", Span::call_site()),
            ty,
            schemas,
        }
    }
}
