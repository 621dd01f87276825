//! The check pass of `derive(Event)`: what the options mean together, and
//! every topic validated with the grammar the runtime uses.

use std::collections::HashMap;

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{GenericParam, LitStr, Path};

use super::model::{Body, Input};
use crate::case::snake_case;
use crate::ctxt::Ctxt;
use crate::pretty::pretty;

/// What the expansion needs beyond the model, all validated.
pub(crate) struct Checked {
    /// The path of the runtime crate.
    pub(crate) krate: Path,
    /// `Event::NAME`.
    pub(crate) name: String,
    /// `Event::VERSION`.
    pub(crate) version: u32,
    /// Whether to implement serde's traits for the type (`serde = false`
    /// opts out).
    pub(crate) serde: bool,
    /// The concrete topics: one for a struct, one per variant in order.
    pub(crate) topics: Vec<String>,
    /// The upcasters, one from each older version, in version order.
    pub(crate) upcasts: Vec<Step>,
}

/// One checked upcaster: data of version `from` becomes version `from + 1`.
pub(crate) struct Step {
    pub(crate) from: u32,
    pub(crate) func: Path,
    /// A function over the JSON data rather than over typed shapes.
    pub(crate) raw: bool,
}

/// The runtime crate's path: `crate = "..."` or `::eventbus`.
pub(crate) fn crate_path(krate: Option<&Path>) -> Path {
    krate
        .cloned()
        .unwrap_or_else(|| syn::parse_quote!(::eventbus))
}

/// Checks the model, reporting every problem to `cx`.
pub(crate) fn check(cx: &Ctxt, input: &Input<'_>) -> Checked {
    check_generics(cx, input);
    let topics = match &input.body {
        Body::Struct(..) => struct_topic(cx, input).into_iter().collect(),
        Body::Enum(..) => enum_topics(cx, input),
        Body::Union(token) => {
            cx.error_spanned_by(
                token,
                "`#[derive(Event)]` does not support unions: an event's data must be encodable \
                 as JSON; use a struct, or an enum with one variant per topic",
            );
            Vec::new()
        }
    };
    let attrs = &input.attrs;
    let name = match &attrs.name {
        Some(lit) if lit.value().trim().is_empty() => {
            cx.error_spanned_by(
                lit,
                "`name` cannot be empty; it names the event type in storage",
            );
            String::new()
        }
        Some(lit) => lit.value(),
        None => input.ast.ident.unraw().to_string(),
    };
    let version = match attrs.version {
        Some((0, span)) => {
            cx.error_at(
                span,
                "`version` starts at 1; the first schema of an event is version 1",
            );
            1
        }
        Some((version, _)) => version,
        None => 1,
    };
    let upcasts = upcasts(cx, input, version);
    Checked {
        krate: crate_path(attrs.krate.as_ref()),
        name,
        version,
        serde: attrs.serde.unwrap_or(true),
        topics,
        upcasts,
    }
}

/// The upcaster chain: one from each version below the current one, each
/// a typed or a raw function, none from the current version or later.
fn upcasts(cx: &Ctxt, input: &Input<'_>, version: u32) -> Vec<Step> {
    let is_enum = matches!(input.body, Body::Enum(..));
    let mut steps: Vec<Step> = Vec::new();
    for upcast in &input.attrs.upcasts {
        let func = match (&upcast.with, &upcast.raw) {
            (Some(_), Some(raw)) => {
                cx.error_spanned_by(
                    raw,
                    "an upcaster is typed (`with = f`) or raw (`raw = f`), not both",
                );
                None
            }
            (Some(with), None) if is_enum => {
                cx.error_spanned_by(
                    with,
                    "a typed upcaster reads one shape, and an enum's data has one shape per \
                     topic: use `raw = f`, with `fn f(topic: &str, data: serde_json::Value) -> \
                     serde_json::Value`",
                );
                None
            }
            (Some(with), None) => Some((with.clone(), false)),
            (None, Some(raw)) => Some((raw.clone(), true)),
            (None, None) => {
                cx.error_at(
                    upcast.span,
                    "this upcaster names no function: add `with = f` (typed, old shape to the \
                     next) or `raw = f` (over the JSON data)",
                );
                None
            }
        };
        let Some((from, from_span)) = upcast.from else {
            cx.error_at(
                upcast.span,
                "this upcaster says no version: add `from = N`, the version it reads",
            );
            continue;
        };
        if from == 0 {
            cx.error_at(
                from_span,
                "versions start at 1; there is no version 0 to upcast from",
            );
            continue;
        }
        if from >= version {
            cx.error_at(
                from_span,
                format!(
                    "an upcaster from version {from} on a type at version {version}: upcasters \
                     read older versions; raise `version` to {} or remove this upcaster",
                    from + 1
                ),
            );
            continue;
        }
        if steps.iter().any(|s| s.from == from) {
            cx.error_at(
                from_span,
                format!("a second upcaster from version {from}; keep one"),
            );
            continue;
        }
        if let Some((func, raw)) = func {
            steps.push(Step { from, func, raw });
        }
    }
    let missing: Vec<String> = (1..version)
        .filter(|v| {
            !input
                .attrs
                .upcasts
                .iter()
                .any(|u| u.from.is_some_and(|(f, _)| f == *v))
        })
        .map(|v| v.to_string())
        .collect();
    if !missing.is_empty() {
        let span = input
            .attrs
            .version
            .map_or_else(|| input.ast.ident.span(), |(_, span)| span);
        let first = &missing[0];
        cx.error_at(
            span,
            format!(
                "version {version} needs an upcaster from every older version, so that events \
                 stored by them still read; none from {}: add `upcast(from = {first}, with = f)` \
                 or `upcast(from = {first}, raw = f)`",
                missing.join(", ")
            ),
        );
    }
    steps.sort_by_key(|s| s.from);
    steps
}

fn check_generics(cx: &Ctxt, input: &Input<'_>) {
    let generics = &input.ast.generics;
    for param in &generics.params {
        let message = match param {
            GenericParam::Lifetime(_) => {
                "event types cannot borrow: events are stored and shared across tasks, so they \
                 must be `'static`; use owned fields such as `String` instead of `&'a str`"
            }
            GenericParam::Type(_) | GenericParam::Const(_) => {
                "generic event types are not supported: an event type has one fixed `NAME`, \
                 `TOPICS` and codec; derive `Event` on a concrete type instead, such as a struct \
                 wrapping `Foo<u64>`"
            }
        };
        cx.error_spanned_by(param, message);
    }
    if let Some(clause) = &generics.where_clause
        && generics.params.is_empty()
    {
        cx.error_spanned_by(
            clause,
            "`#[derive(Event)]` does not support `where` clauses",
        );
    }
}

/// A struct's topic: required, concrete, and not an enum's `namespace`.
fn struct_topic(cx: &Ctxt, input: &Input<'_>) -> Option<String> {
    let attrs = &input.attrs;
    if let Some(namespace) = &attrs.namespace {
        cx.error_spanned_by(
            namespace,
            "`namespace` applies to enums, where it prefixes each variant's topic; a struct has \
             one topic: `#[event(topic = \"...\")]`",
        );
    }
    let Some(topic) = &attrs.topic else {
        if attrs.malformed {
            return None;
        }
        let ident = &input.ast.ident;
        cx.error_spanned_by(
            ident,
            format!(
                "missing topic: add `#[event(topic = \"...\")]` to `{ident}`, such as \
                 `#[event(topic = \"{}\")]`; every event struct has one concrete topic",
                snake_case(&ident.unraw().to_string()).replace('_', ".")
            ),
        );
        return None;
    };
    valid_topic(cx, &topic.value(), topic.span())
}

/// Each variant's topic: its own `topic`, or `namespace.snake_case(Variant)`.
fn enum_topics(cx: &Ctxt, input: &Input<'_>) -> Vec<String> {
    let Body::Enum(variants, _) = &input.body else {
        return Vec::new();
    };
    let attrs = &input.attrs;
    if let Some(topic) = &attrs.topic {
        cx.error_spanned_by(
            topic,
            "`topic` on an enum is ambiguous: each variant is an event with its own topic; set \
             `#[event(namespace = \"...\")]` on the enum to derive them from the variant names, \
             or `#[event(topic = \"...\")]` on each variant",
        );
    }
    if variants.is_empty() {
        cx.error_spanned_by(
            &input.ast.ident,
            "an event enum needs at least one variant: each variant is an event with its own topic",
        );
    }
    let namespace = attrs
        .namespace
        .as_ref()
        .and_then(|ns| valid_namespace(cx, ns).map(|v| (v, ns)));

    let mut topics = Vec::with_capacity(variants.len());
    let mut seen: HashMap<String, &syn::Ident> = HashMap::new();
    for variant in variants {
        let ident = &variant.ast.ident;
        let (topic, span) = match (&variant.topic, &namespace) {
            (Some(lit), _) => (valid_topic(cx, &lit.value(), lit.span()), lit.span()),
            (None, Some((ns, lit))) => (derived_topic(cx, ns, lit, ident), ident.span()),
            // Already reported: a bad namespace, a `topic` on the enum, or a
            // malformed option that probably was the topic.
            (None, None)
                if attrs.namespace.is_some()
                    || attrs.topic.is_some()
                    || attrs.malformed
                    || variant.malformed =>
            {
                (None, ident.span())
            }
            (None, None) => {
                cx.error_spanned_by(
                    ident,
                    format!(
                        "variant `{ident}` has no topic: add `#[event(namespace = \"...\")]` to \
                         the enum to derive one from the variant name (`<namespace>.{}`), or \
                         `#[event(topic = \"...\")]` to this variant",
                        snake_case(&ident.unraw().to_string())
                    ),
                );
                (None, ident.span())
            }
        };
        let Some(topic) = topic else {
            topics.push(String::new());
            continue;
        };
        if let Some(first) = seen.get(&topic) {
            cx.error_at(
                span,
                format!(
                    "variant `{ident}` has the topic `{topic}`, which variant `{first}` already \
                     has; each variant needs its own topic so that decoding knows which variant \
                     it is: give one of them `#[event(topic = \"...\")]`"
                ),
            );
        } else {
            seen.insert(topic.clone(), ident);
        }
        topics.push(topic);
    }
    topics
}

fn derived_topic(cx: &Ctxt, namespace: &str, lit: &LitStr, ident: &syn::Ident) -> Option<String> {
    let topic = format!("{namespace}.{}", snake_case(&ident.unraw().to_string()));
    match eventbus_topic::validate_topic(&topic) {
        Ok(()) => Some(topic),
        Err(error) => {
            cx.error_spanned_by(
                ident,
                format!(
                    "{}; this topic is derived from `namespace = {}` and the variant's name: set \
                     `#[event(topic = \"...\")]` on the variant",
                    error.describe(&topic),
                    pretty(lit)
                ),
            );
            None
        }
    }
}

/// A namespace is a topic prefix, so the topic grammar judges it, except
/// that an empty one is not an empty topic but a missing prefix.
fn valid_namespace(cx: &Ctxt, lit: &LitStr) -> Option<String> {
    if lit.value().is_empty() {
        cx.error_spanned_by(
            lit,
            "`namespace` cannot be empty: it is the first part of every variant's topic, as \
             `namespace = \"order\"` gives a variant `Placed` the topic `order.placed`; name one, \
             or remove it and give each variant `#[event(topic = \"...\")]`",
        );
        return None;
    }
    valid_topic(cx, &lit.value(), lit.span())
}

fn valid_topic(cx: &Ctxt, topic: &str, span: Span) -> Option<String> {
    match eventbus_topic::validate_topic(topic) {
        Ok(()) => Some(topic.to_owned()),
        Err(error) => {
            cx.error_at(span, error.describe(topic));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use syn::{DeriveInput, parse_quote};

    use super::*;

    fn run(ast: &DeriveInput) -> (Checked, Vec<String>) {
        let cx = Ctxt::new();
        let input = Input::from_ast(&cx, ast);
        let checked = check(&cx, &input);
        let errors = match cx.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        (checked, errors)
    }

    #[test]
    fn upcaster_chains_are_checked_whole() {
        let ast: DeriveInput = parse_quote! {
            #[event(
                topic = "a.b",
                version = 4,
                upcast(from = 2, raw = f),
                upcast(from = 2, raw = g),
                upcast(from = 4, raw = h),
                upcast(raw = i),
                upcast(from = 3, with = j, raw = k)
            )]
            struct A { id: u64 }
        };
        let (checked, errors) = run(&ast);
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].contains("second upcaster from version 2"));
        assert!(errors[1].contains("from version 4 on a type at version 4"));
        assert!(errors[2].contains("says no version"));
        assert!(errors[3].contains("typed (`with = f`) or raw (`raw = f`), not both"));
        assert!(errors[4].contains("none from 1"), "{}", errors[4]);
        let froms: Vec<u32> = checked.upcasts.iter().map(|s| s.from).collect();
        assert_eq!(froms, [2]);
    }

    #[test]
    fn enum_topics_follow_namespace_and_overrides() {
        let ast: DeriveInput = parse_quote! {
            #[event(namespace = "order", version = 2, upcast(from = 1, raw = f))]
            enum OrderEvent {
                Placed { id: u64 },
                CancelledByCustomer(u64),
                #[event(topic = "order.shipped.late")]
                Shipped,
            }
        };
        let (checked, errors) = run(&ast);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            checked.topics,
            [
                "order.placed",
                "order.cancelled_by_customer",
                "order.shipped.late"
            ]
        );
        assert_eq!(checked.name, "OrderEvent");
        assert_eq!(checked.version, 2);
    }

    #[test]
    fn reports_every_problem_at_once() {
        let ast: DeriveInput = parse_quote! {
            #[event(topic = "x", version = 0)]
            enum E<T> {
                A(T),
                #[event(topic = "a.*")]
                B,
                #[event(topic = "e.c")]
                C,
                #[event(topic = "e.c")]
                D,
            }
        };
        let (_, errors) = run(&ast);
        // `A` has no topic either, but that follows from the misplaced `topic`.
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].starts_with("generic event types are not supported"));
        assert!(errors[1].starts_with("`topic` on an enum is ambiguous"));
        assert!(errors[2].contains("has the wildcard `*`"));
        assert!(errors[3].contains("which variant `C` already has"));
        assert!(errors[4].starts_with("`version` starts at 1"));
    }

    #[test]
    fn misspelled_topics_are_reported_once() {
        let ast: DeriveInput = parse_quote! {
            #[event(topc = "a.b")]
            struct S;
        };
        assert_eq!(run(&ast).1.len(), 1);
        let ast: DeriveInput = parse_quote! {
            enum E {
                #[event(topc = "a.b")]
                A,
                B,
            }
        };
        let errors = run(&ast).1;
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[1].starts_with("variant `B` has no topic"));
    }

    #[test]
    fn struct_needs_a_topic() {
        let ast: DeriveInput = parse_quote! {
            #[event(namespace = "a")]
            struct EntityCreated;
        };
        let (_, errors) = run(&ast);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].starts_with("`namespace` applies to enums"));
        assert!(errors[1].contains("such as `#[event(topic = \"entity.created\")]`"));
    }

    #[test]
    fn derived_topics_are_validated() {
        let ast: DeriveInput = parse_quote! {
            #[event(namespace = "café")]
            enum E { A }
        };
        let (_, errors) = run(&ast);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].contains("invalid character 'é'"), "{}", errors[0]);
    }

    #[test]
    fn an_empty_namespace_is_named_as_such() {
        let ast: DeriveInput = parse_quote! {
            #[event(namespace = "")]
            enum E { A, B }
        };
        let (_, errors) = run(&ast);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].starts_with("`namespace` cannot be empty"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn unions_and_empty_enums_are_rejected() {
        let union: DeriveInput = parse_quote!(union U { a: u32 });
        assert!(run(&union).1[0].contains("does not support unions"));
        let empty: DeriveInput = parse_quote!(
            #[event(namespace = "a")]
            enum E {}
        );
        assert!(run(&empty).1[0].contains("needs at least one variant"));
    }

    #[test]
    fn name_defaults_to_the_identifier() {
        let ast: DeriveInput = parse_quote!(
            #[event(topic = "a.b")]
            struct r#Thing;
        );
        assert_eq!(run(&ast).0.name, "Thing");
        let ast: DeriveInput = parse_quote!(
            #[event(topic = "a.b", name = "billing.Thing")]
            struct Thing;
        );
        assert_eq!(run(&ast).0.name, "billing.Thing");
    }
}
