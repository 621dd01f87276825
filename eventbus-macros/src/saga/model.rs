//! The parse pass of `#[saga]`: the saga's options, and each `#[start]`
//! and `#[on]` method with its options and parameters sorted by role.

use proc_macro2::{Span, TokenStream};
use syn::{Attribute, FnArg, ImplItem, ImplItemFn, ItemImpl, LitStr, Path, Type};

use crate::attr::{self, Key, Spec};
use crate::ctxt::Ctxt;

const SAGA: Spec = Spec {
    name: "saga",
    place: "",
    keys: &[
        Key {
            name: "key",
            example: "key = \"order_id\"",
            aliases: &["correlate", "correlation", "by", "field", "id"],
        },
        Key {
            name: "name",
            example: "name = \"order_fulfilment\"",
            aliases: &["rename"],
        },
        Key {
            name: "crate",
            example: "crate = \"::eventbus\"",
            aliases: &["krate"],
        },
    ],
};

const STEP: Spec = Spec {
    name: "on",
    place: " on a saga step",
    keys: &[
        Key {
            name: "topic",
            example: "topic = \"order.placed\"",
            aliases: &["pattern", "topics", "subject", "filter"],
        },
        Key {
            name: "retry",
            example: "retry = 5",
            aliases: &["retries", "max_retries", "attempts"],
        },
        Key {
            name: "backoff",
            example: "backoff = \"100ms..30s\"",
            aliases: &["delay", "retry_delay"],
        },
        Key {
            name: "concurrency",
            example: "concurrency = 4",
            aliases: &["parallelism", "workers"],
        },
    ],
};

/// `#[saga(...)]`.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) key: Option<LitStr>,
    pub(crate) name: Option<LitStr>,
    pub(crate) krate: Option<Path>,
}

/// A `#[saga]` impl block, parsed.
pub(crate) struct Saga<'a> {
    pub(crate) item: &'a ItemImpl,
    pub(crate) args: Args,
    pub(crate) steps: Vec<Step<'a>>,
}

/// Whether a step starts an instance or continues one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Start,
    On,
}

/// A `#[start]` or `#[on]` method.
pub(crate) struct Step<'a> {
    pub(crate) method: &'a ImplItemFn,
    pub(crate) kind: Kind,
    /// The step attribute, for spans.
    pub(crate) attr: &'a Attribute,
    pub(crate) topic: Option<LitStr>,
    pub(crate) retry: Option<u32>,
    pub(crate) backoff: Option<(u64, u64)>,
    pub(crate) concurrency: Option<(u32, Span)>,
    /// Every parameter in order, sorted by role.
    pub(crate) params: Vec<Param<'a>>,
}

/// What one parameter of a step is for.
pub(crate) enum Param<'a> {
    /// `&mut self`, as a step needs.
    SelfMut,
    /// `self` in another form.
    OtherSelf(&'a syn::Receiver),
    /// `&E`: the event.
    Event(&'a Type),
    /// `&Envelope<E>`: the event with its metadata.
    Envelope(&'a Type),
    /// `&mut SagaContext`.
    Context,
    /// Anything else, such as the event by value.
    Other(&'a syn::PatType),
}

impl<'a> Saga<'a> {
    pub(crate) fn parse(cx: &Ctxt, args: TokenStream, item: &'a ItemImpl) -> Self {
        let steps = item
            .items
            .iter()
            .filter_map(|i| match i {
                ImplItem::Fn(method) => Step::parse(cx, method),
                _ => None,
            })
            .collect();
        Saga {
            item,
            args: parse_args(cx, args),
            steps,
        }
    }
}

/// Whether an attribute is `#[start]` or `#[on]`, which `#[saga]` reads
/// and removes.
pub(crate) fn step_kind(attr: &Attribute) -> Option<Kind> {
    let path = attr.path();
    if path.is_ident("start") {
        Some(Kind::Start)
    } else if path.is_ident("on") {
        Some(Kind::On)
    } else {
        None
    }
}

impl<'a> Step<'a> {
    fn parse(cx: &Ctxt, method: &'a ImplItemFn) -> Option<Self> {
        let mut attrs = method
            .attrs
            .iter()
            .filter_map(|a| step_kind(a).map(|k| (k, a)));
        let (kind, attr) = attrs.next()?;
        for (_, extra) in attrs {
            cx.error_spanned_by(
                extra,
                "a method is one step: give it one `#[start]` or `#[on]`",
            );
        }
        let mut step = Step {
            method,
            kind,
            attr,
            topic: None,
            retry: None,
            backoff: None,
            concurrency: None,
            params: method.sig.inputs.iter().map(Param::of).collect(),
        };
        if let syn::Meta::List(list) = &attr.meta {
            for arg in attr::parse_args(cx, list.tokens.clone(), &STEP) {
                match arg.key {
                    "topic" => {
                        if let Some(v) = arg.string(cx) {
                            attr::set_once(cx, &mut step.topic, &arg, v);
                        }
                    }
                    "retry" => {
                        if let Some((v, _)) = arg.u32(cx) {
                            attr::set_once(cx, &mut step.retry, &arg, v);
                        }
                    }
                    "backoff" => {
                        if let Some(v) = arg.string(cx) {
                            match crate::handler::model::parse_backoff(&v.value()) {
                                Ok(delays) => attr::set_once(cx, &mut step.backoff, &arg, delays),
                                Err(why) => cx.error_spanned_by(&v, why),
                            }
                        }
                    }
                    "concurrency" => {
                        if let Some(v) = arg.u32(cx) {
                            attr::set_once(cx, &mut step.concurrency, &arg, v);
                        }
                    }
                    _ => unreachable!("`{}` is in STEP but not handled", arg.key),
                }
            }
        }
        Some(step)
    }

    /// The event type and whether it comes in its envelope.
    pub(crate) fn event(&self) -> Option<(&'a Type, bool)> {
        self.params.iter().find_map(|p| match p {
            Param::Event(ty) => Some((*ty, false)),
            Param::Envelope(ty) => Some((*ty, true)),
            _ => None,
        })
    }

    pub(crate) fn span(&self) -> Span {
        self.method.sig.ident.span()
    }
}

impl<'a> Param<'a> {
    fn of(input: &'a FnArg) -> Self {
        match input {
            FnArg::Receiver(r) if r.reference.is_some() && r.mutability.is_some() => Param::SelfMut,
            FnArg::Receiver(r) => Param::OtherSelf(r),
            FnArg::Typed(typed) => match &*typed.ty {
                Type::Reference(r)
                    if r.mutability.is_some() && last_ident_is(&r.elem, "SagaContext") =>
                {
                    Param::Context
                }
                Type::Reference(r) if r.mutability.is_none() => match envelope_inner(&r.elem) {
                    Some(inner) => Param::Envelope(inner),
                    None if !last_ident_is(&r.elem, "SagaContext") => Param::Event(&r.elem),
                    None => Param::Other(typed),
                },
                _ => Param::Other(typed),
            },
        }
    }
}

fn last_ident_is(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == name))
}

/// `E` of `Envelope<E>`.
fn envelope_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Envelope" {
        return None;
    }
    match &last.arguments {
        syn::PathArguments::AngleBracketed(args) if args.args.len() == 1 => match &args.args[0] {
            syn::GenericArgument::Type(inner) => Some(inner),
            _ => None,
        },
        _ => None,
    }
}

fn parse_args(cx: &Ctxt, tokens: TokenStream) -> Args {
    let mut out = Args::default();
    for arg in attr::parse_args(cx, tokens, &SAGA) {
        match arg.key {
            "key" => {
                if let Some(v) = arg.string(cx) {
                    attr::set_once(cx, &mut out.key, &arg, v);
                }
            }
            "name" => {
                if let Some(v) = arg.string(cx) {
                    attr::set_once(cx, &mut out.name, &arg, v);
                }
            }
            "crate" => {
                if let Some(v) = arg.path(cx) {
                    attr::set_once(cx, &mut out.krate, &arg, v);
                }
            }
            _ => unreachable!("`{}` is in SAGA but not handled", arg.key),
        }
    }
    out
}
