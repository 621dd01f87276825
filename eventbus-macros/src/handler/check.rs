//! The check pass of `#[handler]`: what the bus can call, and a valid
//! pattern. Whether the parameter types really are an event and a `Context`
//! is left to the compiler, through spanned checks in the expansion.

use syn::{GenericParam, PathArguments, ReturnType, Type};

use super::model::{Handler, Param};
use crate::ctxt::Ctxt;
use crate::pretty::pretty;

const SHAPE: &str = "a handler is an `async fn` taking one event parameter, `E` or \
                     `Envelope<E>` where `E: Event`, and optionally a `Context`";

/// Checks the handler, reporting every problem to `cx`.
pub(crate) fn check(cx: &Ctxt, handler: &Handler<'_>) {
    check_signature(cx, handler);
    check_params(cx, handler);
    check_args(cx, handler);
}

fn check_signature(cx: &Ctxt, handler: &Handler<'_>) {
    let sig = &handler.func.sig;
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            format!(
                "the `async` keyword is missing from the function declaration: write `async fn \
                 {}`; {SHAPE}",
                sig.ident
            ),
        );
    }
    if let Some(constness) = &sig.constness {
        cx.error_spanned_by(constness, "a handler cannot be a `const fn`");
    }
    if let Some(unsafety) = &sig.unsafety {
        cx.error_spanned_by(
            unsafety,
            "a handler cannot be `unsafe`: the bus calls it and cannot uphold a safety contract",
        );
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "a handler cannot have an `extern` ABI");
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, format!("a handler cannot be variadic; {SHAPE}"));
    }
    for param in &sig.generics.params {
        let message = match param {
            GenericParam::Lifetime(_) => {
                "a handler cannot have lifetime parameters: the bus runs it as a `'static` \
                 task, so its parameters are owned (`Envelope<E>` shares the event without \
                 copying)"
            }
            GenericParam::Type(_) | GenericParam::Const(_) => {
                "a handler cannot be generic: `#[handler]` registers one concrete function at \
                 link time; write a handler per event type, or one for an enum event"
            }
        };
        cx.error_spanned_by(param, message);
    }
    if let Some(clause) = &sig.generics.where_clause
        && sig.generics.params.is_empty()
    {
        cx.error_spanned_by(clause, "a handler cannot have a `where` clause");
    }
    if let ReturnType::Type(_, ty) = &sig.output
        && contains_impl_trait(ty)
    {
        cx.error_spanned_by(
            ty,
            "a handler must return `()` or `Result<(), E>` where `E: std::error::Error + Send + \
             Sync + 'static`, written as a concrete type, not `impl Trait`",
        );
    }
}

fn check_params(cx: &Ctxt, handler: &Handler<'_>) {
    let mut event: Option<&syn::PatType> = None;
    let mut context: Option<&syn::PatType> = None;
    for param in &handler.params {
        match param {
            Param::Receiver(receiver) => cx.error_spanned_by(
                receiver,
                "`#[handler]` cannot be used on a method: handlers are free `async fn`s that \
                 the bus registers at link time; move it out of the `impl` block and take the \
                 event as a parameter",
            ),
            Param::Context(typed) => {
                if let Type::Reference(reference) = &*typed.ty {
                    cx.error_spanned_by(
                        reference,
                        "take the `Context` by value, as in `ctx: Context`: the handler's future \
                         outlives the call that made it, so it cannot borrow",
                    );
                }
                if let Some(first) = context {
                    cx.error_spanned_by(
                        typed,
                        format!(
                            "a handler takes at most one `Context`, and `{}` already is one",
                            pretty(&first.pat)
                        ),
                    );
                } else {
                    context = Some(typed);
                }
            }
            Param::Event(typed) => {
                if let Type::Reference(reference) = &*typed.ty {
                    let elem = &reference.elem;
                    let message = if is_envelope(elem) {
                        format!(
                            "handler parameters are taken by value: take `{}` without the `&`; \
                             an `Envelope` already shares the event without copying it",
                            pretty(elem)
                        )
                    } else {
                        format!(
                            "handler parameters are taken by value: use `Envelope<{}>`, which \
                             shares the event without copying it, or `{}` (cloned, needs \
                             `Clone`)",
                            pretty(elem),
                            pretty(elem)
                        )
                    };
                    cx.error_spanned_by(reference, message);
                } else if contains_impl_trait(&typed.ty) {
                    cx.error_spanned_by(
                        &typed.ty,
                        "a handler cannot be generic, and `impl Trait` in a parameter makes it \
                         so; name the event type, as in `ev: Envelope<OrderEvent>`",
                    );
                }
                if let Some(first) = event {
                    cx.error_spanned_by(
                        typed,
                        format!(
                            "unsupported handler parameter `{}`: a handler takes one event \
                             parameter (here `{}`) and optionally a `Context`; reach anything \
                             else through shared state, with `ctx.state::<T>()`",
                            pretty(typed),
                            pretty(first)
                        ),
                    );
                } else {
                    event = Some(typed);
                }
            }
        }
    }
    let receiver = handler
        .params
        .iter()
        .any(|p| matches!(p, Param::Receiver(_)));
    if event.is_none() && !receiver {
        let sig = &handler.func.sig;
        cx.error_spanned_by(
            &sig.ident,
            format!(
                "`{}` has no event parameter; {SHAPE}, as in `async fn {}(ev: \
                 Envelope<OrderEvent>)`",
                sig.ident, sig.ident
            ),
        );
    }
}

fn check_args(cx: &Ctxt, handler: &Handler<'_>) {
    let args = &handler.args;
    if let Some(topic) = &args.topic {
        let pattern = topic.value();
        if let Err(error) = eventbus_topic::validate_pattern(&pattern) {
            cx.error_spanned_by(topic, error.describe(&pattern));
        }
    }
    if let Some(name) = &args.name
        && name.value().trim().is_empty()
    {
        cx.error_spanned_by(
            name,
            "`name` cannot be empty: it identifies the handler's checkpoint and replays",
        );
    }
    if let Some((0, span)) = args.concurrency {
        cx.error_at(
            span,
            "`concurrency` must be at least 1: it is how many handlings may run at once",
        );
    }
}

/// Whether `ty` is written as an `Envelope<..>`, by its last path segment,
/// as `Context` is recognized: the macro cannot resolve types.
fn is_envelope(ty: &Type) -> bool {
    match ty {
        Type::Paren(paren) => is_envelope(&paren.elem),
        Type::Group(group) => is_envelope(&group.elem),
        Type::Path(path) => {
            path.qself.is_none()
                && path.path.segments.last().is_some_and(|s| {
                    s.ident == "Envelope" && matches!(s.arguments, PathArguments::AngleBracketed(_))
                })
        }
        _ => false,
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    syn::visit::Visit::visit_type(&mut finder, ty);
    finder.0
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;
    use syn::{ItemFn, parse_quote};

    use super::*;

    fn errors(args: TokenStream, func: ItemFn) -> Vec<String> {
        let cx = Ctxt::new();
        let handler = Handler::parse(&cx, args, &func);
        check(&cx, &handler);
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn accepts_every_supported_shape() {
        assert!(
            errors(
                quote!(),
                parse_quote!(
                    async fn f(ev: E) {}
                )
            )
            .is_empty()
        );
        assert!(
            errors(
                quote!(),
                parse_quote!(
                    async fn f(_: Envelope<E>, ctx: Context) {}
                )
            )
            .is_empty()
        );
        assert!(
            errors(
                quote!(),
                parse_quote!(
                    async fn f(ctx: Context, ev: E) -> R {}
                )
            )
            .is_empty()
        );
        assert!(
            errors(
                quote!(topic = "a.>"),
                parse_quote!(
                    pub async fn f(ev: E) {}
                )
            )
            .is_empty()
        );
    }

    #[test]
    fn reports_every_signature_problem() {
        let found = errors(
            quote!(topic = "a.>.b", concurrency = 0, name = ""),
            parse_quote!(
                unsafe fn f<'a, T>(a: &'a T, b: Context, c: Context, d: u8) -> impl Sized {}
            ),
        );
        let expected = [
            "the `async` keyword is missing",
            "a handler cannot be `unsafe`",
            "cannot have lifetime parameters",
            "a handler cannot be generic",
            "must return `()` or `Result<(), E>`",
            "handler parameters are taken by value: use `Envelope<T>`",
            "a handler takes at most one `Context`, and `b` already is one",
            "unsupported handler parameter `d: u8`: a handler takes one event parameter (here `a: &'a T`)",
            "has `>` at token 2, which is not the last",
            "`name` cannot be empty",
            "`concurrency` must be at least 1",
        ];
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        for (found, expected) in found.iter().zip(expected) {
            assert!(
                found.contains(expected),
                "{found:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn a_borrowed_envelope_is_told_to_drop_the_borrow() {
        let found = errors(
            quote!(),
            parse_quote!(
                async fn f(ev: &eventbus::Envelope<E>) {}
            ),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("take `eventbus::Envelope<E>` without the `&`"),
            "{}",
            found[0]
        );
        assert!(
            !found[0].contains("Envelope<eventbus::Envelope"),
            "{}",
            found[0]
        );
    }

    #[test]
    fn methods_and_missing_events_are_reported() {
        let found = errors(
            quote!(),
            parse_quote!(
                async fn f(&self, ev: E) {}
            ),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("cannot be used on a method"));
        let found = errors(
            quote!(),
            parse_quote!(
                async fn f(ctx: Context) {}
            ),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("`f` has no event parameter"));
    }
}
