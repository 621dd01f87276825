//! The parse pass of `#[handler]`: the options, and the function's
//! parameters sorted into the event parameter and the `Context`.

use proc_macro2::{Span, TokenStream};
use syn::{FnArg, ItemFn, LitStr, Path, Type};

use crate::attr::{self, Key, Spec};
use crate::ctxt::Ctxt;

/// The keys of `#[handler(...)]`.
const SPEC: Spec = Spec {
    name: "handler",
    place: "",
    keys: &[
        Key {
            name: "topic",
            example: "topic = \"order.*\"",
            aliases: &["pattern", "topics", "subject", "filter"],
        },
        Key {
            name: "name",
            example: "name = \"billing\"",
            aliases: &["id", "rename", "durable"],
        },
        Key {
            name: "retry",
            example: "retry = 5",
            aliases: &["retries", "max_retries", "attempts"],
        },
        Key {
            name: "concurrency",
            example: "concurrency = 4",
            aliases: &["parallelism", "workers", "max_concurrency"],
        },
        Key {
            name: "replay",
            example: "replay = false",
            aliases: &["replays", "replayable"],
        },
        Key {
            name: "backoff",
            example: "backoff = \"100ms..30s\"",
            aliases: &["delay", "retry_delay", "backoff_ms"],
        },
        Key {
            name: "start",
            example: "start = \"earliest\"",
            aliases: &["from", "begin", "offset"],
        },
        Key {
            name: "scope",
            example: "scope = \"tenant-a\"",
            aliases: &["tenant", "scoped"],
        },
        Key {
            name: "crate",
            example: "crate = \"::eventbus\"",
            aliases: &["krate"],
        },
    ],
};

/// The `#[handler(...)]` options, each `None` when absent.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) topic: Option<LitStr>,
    pub(crate) name: Option<LitStr>,
    pub(crate) retry: Option<u32>,
    pub(crate) concurrency: Option<(u32, Span)>,
    pub(crate) replay: Option<bool>,
    /// The first and the longest delay between attempts, in milliseconds.
    pub(crate) backoff: Option<(u64, u64)>,
    /// `Latest` or `Earliest`: the runtime's `Start` variant to name.
    pub(crate) start: Option<syn::Ident>,
    /// A scope path, checked by the same rule as `bus.scope(..)`.
    pub(crate) scope: Option<LitStr>,
    pub(crate) krate: Option<Path>,
}

/// A `#[handler]` function, parsed.
pub(crate) struct Handler<'a> {
    pub(crate) func: &'a ItemFn,
    pub(crate) args: Args,
    /// Every parameter in order, sorted by role.
    pub(crate) params: Vec<Param<'a>>,
}

/// What one parameter of the function is for.
pub(crate) enum Param<'a> {
    /// The event: `E` or `Envelope<E>` (or something else, which the type
    /// check will reject with the runtime's message).
    Event(&'a syn::PatType),
    /// A type whose last path segment is `Context`, possibly behind `&`.
    Context(&'a syn::PatType),
    /// `self` in any form.
    Receiver(&'a syn::Receiver),
}

impl<'a> Handler<'a> {
    /// Reads the options and sorts the parameters.
    pub(crate) fn parse(cx: &Ctxt, args: TokenStream, func: &'a ItemFn) -> Self {
        let params = func
            .sig
            .inputs
            .iter()
            .map(|input| match input {
                FnArg::Receiver(receiver) => Param::Receiver(receiver),
                FnArg::Typed(typed) if is_context(&typed.ty) => Param::Context(typed),
                FnArg::Typed(typed) => Param::Event(typed),
            })
            .collect();
        Handler {
            func,
            args: parse_args(cx, args),
            params,
        }
    }
}

fn parse_args(cx: &Ctxt, tokens: TokenStream) -> Args {
    let mut out = Args::default();
    for arg in attr::parse_args(cx, tokens, &SPEC) {
        match arg.key {
            "topic" => {
                if let Some(v) = arg.string(cx) {
                    attr::set_once(cx, &mut out.topic, &arg, v);
                }
            }
            "name" => {
                if let Some(v) = arg.string(cx) {
                    attr::set_once(cx, &mut out.name, &arg, v);
                }
            }
            "retry" => {
                if let Some((v, _)) = arg.u32(cx) {
                    attr::set_once(cx, &mut out.retry, &arg, v);
                }
            }
            "concurrency" => {
                if let Some(v) = arg.u32(cx) {
                    attr::set_once(cx, &mut out.concurrency, &arg, v);
                }
            }
            "replay" => {
                if let Some(v) = arg.bool(cx) {
                    attr::set_once(cx, &mut out.replay, &arg, v);
                }
            }
            "backoff" => {
                if let Some(v) = arg.string(cx) {
                    match parse_backoff(&v.value()) {
                        Ok(delays) => attr::set_once(cx, &mut out.backoff, &arg, delays),
                        Err(why) => cx.error_spanned_by(&v, why),
                    }
                }
            }
            "start" => {
                if let Some(v) = arg.string(cx) {
                    let variant = match v.value().as_str() {
                        "latest" => Some("Latest"),
                        "earliest" => Some("Earliest"),
                        other => {
                            cx.error_spanned_by(
                                &v,
                                format!(
                                    "unknown start `{other}`: write `start = \"latest\"` (only events stored from the \
                                     handler's first run on, the default) or `start = \"earliest\"` (everything stored)"
                                ),
                            );
                            None
                        }
                    };
                    if let Some(variant) = variant {
                        attr::set_once(
                            cx,
                            &mut out.start,
                            &arg,
                            syn::Ident::new(variant, v.span()),
                        );
                    }
                }
            }
            "scope" => {
                if let Some(v) = arg.string(cx) {
                    match eventbus_topic::validate_scope(&v.value()) {
                        Ok(()) => attr::set_once(cx, &mut out.scope, &arg, v),
                        Err(why) => cx.error_spanned_by(&v, why),
                    }
                }
            }
            "crate" => {
                if let Some(v) = arg.path(cx) {
                    attr::set_once(cx, &mut out.krate, &arg, v);
                }
            }
            _ => unreachable!("`{}` is in SPEC but not handled", arg.key),
        }
    }
    out
}

/// Reads `"100ms..30s"`: the first and the longest delay, each a whole
/// number with a unit (`ms`, `s`, `m`, `h`), the first no longer than the
/// second.
pub(crate) fn parse_backoff(text: &str) -> Result<(u64, u64), String> {
    let usage = "write it as `backoff = \"100ms..30s\"`: the first delay, `..`, the longest delay, \
                 each a whole number with `ms`, `s`, `m` or `h`";
    let millis = |part: &str| -> Option<u64> {
        let split = part.find(|c: char| !c.is_ascii_digit())?;
        let (number, unit) = part.split_at(split);
        let n: u64 = number.parse().ok()?;
        let scale = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return None,
        };
        n.checked_mul(scale).filter(|ms| *ms > 0)
    };
    let (first_text, longest_text) = text
        .split_once("..")
        .ok_or_else(|| format!("backoff `{text}` has no `..`; {usage}"))?;
    let (Some(first), Some(longest)) = (millis(first_text.trim()), millis(longest_text.trim()))
    else {
        return Err(format!(
            "backoff `{text}` is not two positive durations; {usage}"
        ));
    };
    if first > longest {
        let (a, b) = (first_text.trim(), longest_text.trim());
        return Err(format!(
            "backoff `{text}` starts longer than its longest delay; write `{b}..{a}`"
        ));
    }
    Ok((first, longest))
}

/// Whether `ty` names a `Context`, by its last path segment: the macro cannot
/// resolve types, and `Context`, `eventbus::Context` or an alias imported
/// under that name are all written this way.
fn is_context(ty: &Type) -> bool {
    match ty {
        Type::Reference(reference) => is_context(&reference.elem),
        Type::Paren(paren) => is_context(&paren.elem),
        Type::Group(group) => is_context(&group.elem),
        Type::Path(path) => {
            path.qself.is_none()
                && path
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "Context" && s.arguments.is_empty())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn backoff_reads_two_durations_in_order() {
        assert_eq!(parse_backoff("100ms..30s"), Ok((100, 30_000)));
        assert_eq!(parse_backoff("1s .. 2m"), Ok((1_000, 120_000)));
        assert!(parse_backoff("100ms").unwrap_err().contains("no `..`"));
        assert!(
            parse_backoff("0s..1s")
                .unwrap_err()
                .contains("not two positive durations")
        );
        assert!(
            parse_backoff("1x..2s")
                .unwrap_err()
                .contains("not two positive durations")
        );
        assert!(
            parse_backoff("30s..1s")
                .unwrap_err()
                .contains("starts longer")
        );
    }

    use quote::quote;
    use syn::parse_quote;

    use super::*;

    #[test]
    fn sorts_parameters_by_role() {
        let func: ItemFn = parse_quote! {
            async fn f(ctx: &eventbus::Context, ev: Envelope<E>, other: Context) {}
        };
        let cx = Ctxt::new();
        let handler = Handler::parse(&cx, quote!(), &func);
        assert!(cx.check().is_ok());
        let roles: Vec<&str> = handler
            .params
            .iter()
            .map(|p| match p {
                Param::Event(_) => "event",
                Param::Context(_) => "context",
                Param::Receiver(_) => "self",
            })
            .collect();
        assert_eq!(roles, ["context", "event", "context"]);
    }

    #[test]
    fn reads_every_option() {
        let func: ItemFn = parse_quote!(
            async fn f(ev: E) {}
        );
        let cx = Ctxt::new();
        let handler = Handler::parse(
            &cx,
            quote!(
                topic = "a.*",
                name = "n",
                retry = 3,
                concurrency = 2,
                replay = false,
                crate = "x"
            ),
            &func,
        );
        assert!(cx.check().is_ok());
        let args = handler.args;
        assert_eq!(args.topic.unwrap().value(), "a.*");
        assert_eq!(args.name.unwrap().value(), "n");
        assert_eq!(args.retry, Some(3));
        assert_eq!(args.concurrency.unwrap().0, 2);
        assert_eq!(args.replay, Some(false));
        assert!(args.krate.is_some());
    }
}
