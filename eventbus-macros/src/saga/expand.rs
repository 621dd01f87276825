//! The expansion of `#[saga]`: the `Saga` impl with one step description
//! per method, a topic check per `topic = "..."`, and one link-time
//! handler registration per step.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Path, Type};

use super::model::{Kind, Param, Saga, Step};
use crate::field_hash;

/// The items that go after the impl block, for a saga that passed the
/// check pass.
pub(crate) fn expand(saga: &Saga<'_>) -> TokenStream {
    let krate: Path = saga
        .args
        .krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::eventbus));
    let private = quote!(#krate::__private);
    let ty = &*saga.item.self_ty;
    let name = saga
        .args
        .name
        .as_ref()
        .map_or_else(|| type_name(ty), syn::LitStr::value);
    let key = saga
        .args
        .key
        .as_ref()
        .map(syn::LitStr::value)
        .unwrap_or_default();
    let hash = field_hash(&key);

    let defs = saga
        .steps
        .iter()
        .map(|step| step_def(step, ty, &name, hash, &krate));
    let checks = saga
        .steps
        .iter()
        .filter_map(|step| topic_check(step, &name, &private));
    let registrations = saga
        .steps
        .iter()
        .enumerate()
        .map(|(index, step)| registration(step, index, ty, &name, &krate));

    quote! {
        #[automatically_derived]
        impl #krate::saga::Saga for #ty {
            const NAME: &'static ::core::primitive::str = #name;
            const STEPS: &'static [#private::StepDef<Self>] = &[#(#defs),*];
        }

        #(#checks)*

        #[allow(non_snake_case, clippy::all)]
        const _: () = {
            fn __eventbus_saga_type() -> ::core::any::TypeId {
                ::core::any::TypeId::of::<#ty>()
            }
            #(#registrations)*
        };
    }
}

/// The saga's default name: its type as written, without generics.
fn type_name(ty: &Type) -> String {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .map_or_else(String::new, |s| s.ident.to_string()),
        other => quote!(#other).to_string(),
    }
}

fn step_def(step: &Step<'_>, ty: &Type, saga: &str, hash: u64, krate: &Path) -> TokenStream {
    let private = quote!(#krate::__private);
    let Some((event, _)) = step.event() else {
        unreachable!("the check pass requires an event parameter");
    };
    let method = &step.method.sig.ident;
    let method_name = method.to_string();
    let handler = format!("{saga}::{method_name}");
    let kind = match step.kind {
        Kind::Start => quote!(#private::StepKind::Start),
        Kind::On => quote!(#private::StepKind::On),
    };
    let pattern = match &step.topic {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    // Spanned on the event type as written, so "has no field named by the
    // saga's key" and "is not an eventbus event" underline it.
    let span = event.span();
    let event_trait = quote_spanned!(span=> <#event as #krate::Event>);
    let field = quote_spanned!(span=> <#event as #private::HasField<#hash, _>>::field);
    let args = step.params.iter().filter_map(|p| match p {
        Param::SelfMut => None,
        Param::Event(_) => Some(quote!(&*__ev)),
        Param::Envelope(_) => Some(quote!(&__ev)),
        Param::Context => Some(quote!(__saga)),
        Param::OtherSelf(_) | Param::Other(_) => unreachable!("the check pass rejects these"),
    });
    let output = match &step.method.sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    let into_outcome = quote_spanned!(step.method.sig.output.span()=> <#output as #private::HandlerReturn>::into_outcome);
    quote! {
        #private::StepDef {
            method: #method_name,
            handler: #handler,
            kind: #kind,
            event: #event_trait::NAME,
            topics: #event_trait::TOPICS,
            pattern: #pattern,
            key: |__raw| #private::saga_key(__raw, #field),
            run: |__state: &mut #ty, __raw: &#krate::RawEnvelope, __saga: &mut #krate::saga::SagaContext| {
                let __ev = #private::decode_step(__raw, #event_trait::decode_data)?;
                #into_outcome(<#ty>::#method(__state, #(#args),*))
            },
        }
    }
}

/// The compile-time check that a step's `topic` is one of its event's, as
/// `#[handler(topic = ...)]` has.
fn topic_check(step: &Step<'_>, saga: &str, private: &TokenStream) -> Option<TokenStream> {
    let lit = step.topic.as_ref()?;
    let (event, _) = step.event()?;
    let name = format_ident!(
        "__EVENTBUS_TOPIC_OF_{}_{}",
        saga.chars()
            .map(|c| if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            })
            .collect::<String>(),
        step.method.sig.ident.to_string().to_uppercase()
    );
    Some(quote_spanned! {lit.span()=>
        #[doc(hidden)]
        #[allow(non_upper_case_globals, clippy::all)]
        const #name: () = {
            const __EVENTBUS_PATTERN: #private::ConstMessage = #private::check_handler_pattern(
                #lit,
                <#event as #private::EventParam>::EVENT_NAME,
                <#event as #private::EventParam>::EVENT_TOPICS,
            );
            if __EVENTBUS_PATTERN.is_error() && !<#event as #private::EventParam>::EVENT_TOPICS.is_empty() {
                ::core::panic!("{}", __EVENTBUS_PATTERN.as_str())
            }
        };
    })
}

fn registration(step: &Step<'_>, index: usize, ty: &Type, saga: &str, krate: &Path) -> TokenStream {
    let private = quote!(#krate::__private);
    let Some((event, _)) = step.event() else {
        unreachable!("the check pass requires an event parameter");
    };
    let handler = format!("{saga}::{}", step.method.sig.ident);
    let call = format_ident!("__eventbus_call_{}", step.method.sig.ident);
    let pattern = match &step.topic {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    let mut fields = Vec::new();
    if let Some(retry) = step.retry {
        fields.push(quote!(retry: ::core::option::Option::Some(#retry)));
    }
    if let Some((first, longest)) = step.backoff {
        fields.push(
            quote!(backoff: ::core::option::Option::Some(#private::Backoff {
                base: ::core::time::Duration::from_millis(#first),
                max: ::core::time::Duration::from_millis(#longest),
            })),
        );
    }
    if let Some((concurrency, _)) = step.concurrency {
        fields.push(quote!(concurrency: #concurrency));
    }
    let options = quote! {
        #private::HandlerOptions {
            #(#fields,)*
            ..#private::HandlerOptions::DEFAULT
        }
    };
    let line = quote_spanned!(step.span()=> ::core::line!());
    quote! {
        fn #call(
            __env: #krate::RawEnvelope,
            __ctx: #krate::Context,
        ) -> #private::BoxFuture<'static, ::core::result::Result<(), #krate::HandlingError>> {
            ::std::boxed::Box::pin(#private::run_step::<#ty>(__env, __ctx, #index))
        }

        #private::inventory::submit! {
            #private::HandlerRegistration {
                name: #handler,
                pattern: #pattern,
                event: <#event as #krate::Event>::NAME,
                topics: <#event as #krate::Event>::TOPICS,
                options: #options,
                states: &[],
                call: #call,
                function: __eventbus_saga_type,
                file: ::core::file!(),
                line: #line,
            }
        }
    }
}
