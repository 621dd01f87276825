//! The check pass of `#[saga]`: everything that can be told from the
//! tokens, each problem reported at its place. What needs types (that an
//! event has the key field, that a parameter is an event) is left to the
//! trait bounds in the expansion, whose messages say it in our words.

use quote::ToTokens;
use syn::spanned::Spanned;

use super::model::{Kind, Param, Saga};
use crate::ctxt::Ctxt;

pub(crate) fn check(cx: &Ctxt, saga: &Saga<'_>) {
    let item = saga.item;
    if let Some((_, path, _)) = &item.trait_ {
        cx.error_spanned_by(
            path,
            "`#[saga]` goes on the saga type's own `impl` block, not on a trait impl",
        );
    }
    if !item.generics.params.is_empty() {
        cx.error_spanned_by(
            &item.generics,
            "a saga type cannot be generic: its instances are stored under one name",
        );
    }
    match &saga.args.key {
        None => cx.error_at(
            proc_macro2::Span::call_site(),
            "a saga needs `key = \"...\"`: the field of its events that names the instance, \
             as in `#[saga(key = \"order_id\")]`",
        ),
        Some(key) if syn::parse_str::<syn::Ident>(&key.value()).is_err() => {
            cx.error_spanned_by(key, "`key` names a field, as in `key = \"order_id\"`");
        }
        Some(_) => {}
    }
    if let Some(name) = &saga.args.name
        && name.value().trim().is_empty()
    {
        cx.error_spanned_by(name, "a saga's name must not be empty");
    }
    if !saga.steps.iter().any(|s| s.kind == Kind::Start) {
        cx.error_at(
            proc_macro2::Span::call_site(),
            "a saga needs a `#[start]` method: the step that creates an instance",
        );
    }
    for step in &saga.steps {
        check_signature(cx, step);
        if let Some((0, span)) = step.concurrency {
            cx.error_at(
                span,
                "`concurrency` must be at least 1: it is how many handlings may run at once",
            );
        }
    }
    check_overlaps(cx, saga);
}

fn check_signature(cx: &Ctxt, step: &super::model::Step<'_>) {
    let sig = &step.method.sig;
    if let Some(asyncness) = &sig.asyncness {
        cx.error_spanned_by(
            asyncness,
            "saga steps are not `async`: a step decides; what it sends and schedules through \
             `SagaContext` happens after its state is saved",
        );
    }
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(&sig.generics, "a saga step cannot be generic");
    }
    let mut events = 0;
    let mut contexts = 0;
    let mut has_self = false;
    for param in &step.params {
        match param {
            Param::SelfMut => has_self = true,
            Param::OtherSelf(r) => {
                has_self = true;
                cx.error_spanned_by(r, "a saga step takes `&mut self`: it changes the state");
            }
            Param::Event(ty) | Param::Envelope(ty) => {
                events += 1;
                if events == 2 {
                    cx.error_spanned_by(ty, "a saga step takes one event; this is a second one");
                }
            }
            Param::Context => {
                contexts += 1;
                if contexts == 2 {
                    cx.error_at(step.span(), "a saga step takes `&mut SagaContext` once");
                }
            }
            Param::Other(typed) => {
                let ty = typed.ty.to_token_stream().to_string();
                cx.error_spanned_by(
                    &typed.ty,
                    format!(
                        "a saga step takes `&mut self`, the event by reference (`&E` or \
                         `&Envelope<E>`) and optionally `&mut SagaContext`; `{ty}` is none of \
                         these (a step may run again after a conflict, so it borrows the event)"
                    ),
                );
            }
        }
    }
    if !has_self {
        cx.error_at(
            step.span(),
            "a saga step is a method taking `&mut self`: the instance's state",
        );
    }
    if events == 0 {
        cx.error_at(
            step.span(),
            "a saga step takes the event it handles, as in `ev: &OrderEvent`",
        );
    }
}

/// One `#[start]` per event type, and no two steps for one event type on
/// the same topics.
fn check_overlaps(cx: &Ctxt, saga: &Saga<'_>) {
    let typed: Vec<_> = saga
        .steps
        .iter()
        .filter_map(|s| {
            s.event()
                .map(|(ty, _)| (s, ty.to_token_stream().to_string()))
        })
        .collect();
    for (i, (step, ty)) in typed.iter().enumerate() {
        for (earlier, earlier_ty) in &typed[..i] {
            if ty != earlier_ty {
                continue;
            }
            let name = &step.method.sig.ident;
            let other = &earlier.method.sig.ident;
            if step.kind == Kind::Start && earlier.kind == Kind::Start {
                cx.error_spanned_by(
                    step.attr,
                    format!(
                        "two `#[start]` methods for `{ty}` (`{other}` and `{name}`): an \
                         instance starts from one method per event type"
                    ),
                );
            } else if step.topic.as_ref().map(syn::LitStr::value)
                == earlier.topic.as_ref().map(syn::LitStr::value)
            {
                let span = step
                    .topic
                    .as_ref()
                    .map_or(step.attr.span(), syn::LitStr::span);
                cx.error_at(
                    span,
                    format!(
                        "`{other}` and `{name}` both handle `{ty}` on the same topics; give \
                         each its own `topic = \"...\"`"
                    ),
                );
            }
        }
    }
}
