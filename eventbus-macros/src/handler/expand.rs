//! The expansion of `#[handler]`: what goes beside the user's function (which
//! `super::expand` emits as written): an adapter the bus can call, and its
//! link-time registration.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Path, ReturnType};

use super::model::{Handler, Param};
use super::state;

/// The items that go after the user's function, for a handler that passed
/// the check pass (so it has exactly one event parameter).
pub(crate) fn expand(handler: &Handler<'_>) -> TokenStream {
    let krate: Path = handler
        .args
        .krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::eventbus));
    let private = quote!(#krate::__private);
    let sig = &handler.func.sig;
    let fn_ident = &sig.ident;

    let Some(event_param) = handler.params.iter().find_map(|p| match p {
        Param::Event(typed) => Some(&*typed.ty),
        _ => None,
    }) else {
        unreachable!("the check pass requires an event parameter");
    };
    // Every use of the parameter's and the return type's traits is a
    // qualified path spanned on the type as written, so the compiler's "`X`
    // cannot be a handler parameter" underlines `X` in the signature, and
    // reports it once: the uses share message and span, and rustc merges
    // identical diagnostics. (A separate hidden check function would add a
    // second copy with its own "required by" note.) The event type's name
    // and topics come from `EventParam` too, never from `<P as
    // EventParam>::Event`: for a `P` that is no event parameter, that
    // projection would add "`P` is not an eventbus event".
    let param_span = event_param.span();
    let event_name =
        quote_spanned!(param_span=> <#event_param as #private::EventParam>::EVENT_NAME);
    let event_topics =
        quote_spanned!(param_span=> <#event_param as #private::EventParam>::EVENT_TOPICS);
    let extract = quote_spanned!(param_span=> <#event_param as #private::EventParam>::extract);
    let into_outcome = match &sig.output {
        ReturnType::Default => quote!(<() as #private::HandlerReturn>::into_outcome),
        ReturnType::Type(_, ty) => {
            quote_spanned!(ty.span()=> <#ty as #private::HandlerReturn>::into_outcome)
        }
    };
    // A named constant, because the compiler's label on a failed check reads
    // "evaluation of `<its path>` failed here": `__EVENTBUS_TOPIC_OF_BILL`
    // says what failed, where an anonymous one said `_::_`. Inside an `impl`
    // block it is an associated constant, which is never evaluated, so the
    // container below stays the only error there. No topics at all means
    // the event's derive failed and left a stand-in impl; its own errors
    // say why, so this check stays quiet.
    let pattern_check = handler.args.topic.as_ref().map(|lit| {
        let name = format_ident!(
            "__EVENTBUS_TOPIC_OF_{}",
            fn_ident.unraw().to_string().to_uppercase()
        );
        quote_spanned! {lit.span()=>
            #[doc(hidden)]
            #[allow(non_upper_case_globals, clippy::all)]
            const #name: () = {
                const __EVENTBUS_PATTERN: #private::ConstMessage =
                    #private::check_handler_pattern(#lit, #event_name, #event_topics);
                if __EVENTBUS_PATTERN.is_error() && !#event_topics.is_empty() {
                    ::core::panic!("{}", __EVENTBUS_PATTERN.as_str())
                }
            };
        }
    });
    let container = format_ident!("__EventbusHandler_{}", fn_ident.unraw());

    let has_context = handler
        .params
        .iter()
        .any(|p| matches!(p, Param::Context(_)));
    let context_pat = if has_context {
        quote!(__ctx)
    } else {
        quote!(_)
    };
    let call_args = handler.params.iter().map(|p| match p {
        Param::Event(typed) => quote_spanned!(typed.ty.span()=> __ev),
        Param::Context(typed) => quote_spanned!(typed.ty.span()=> __ctx),
        Param::Receiver(_) => unreachable!("the check pass rejects methods"),
    });
    let call = quote_spanned! {fn_ident.span()=>
        ::std::boxed::Box::pin(async move {
            let __ev = #extract(__env)?;
            #into_outcome(#fn_ident(#(#call_args),*).await)
        })
    };

    let name = match &handler.args.name {
        Some(lit) => quote!(#lit),
        None => {
            let ident = fn_ident.unraw().to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #ident))
        }
    };
    let pattern = match &handler.args.topic {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    let options = options(handler, &private);
    let states = state::find(&handler.func.block).into_iter().map(|s| {
        let (ty, name) = (s.ty, s.name);
        quote! {
            #private::StateRequirement {
                type_id: ::core::any::TypeId::of::<#ty>,
                type_name: #name,
            }
        }
    });
    let line = quote_spanned!(fn_ident.span()=> ::core::line!());

    // The registration lives in the body of a trait's provided method, an
    // item that only a module or a block accepts: the macro cannot see
    // whether it is inside an `impl` block (where an associated fn without
    // `self` looks like any other fn), and there a trait is one clear error,
    // "trait is not supported in `trait`s or `impl`s; consider moving ...
    // out to a nearby module scope", spanned on `#[handler]`, with nothing
    // inside it checked. An unnamed `const _` said "`const` items in this
    // context need a name", and its body then failed to find the function.
    // Items in the method body see the function wherever it is declared,
    // in a module or in a block.
    quote! {
        #pattern_check

        #[doc(hidden)]
        #[allow(non_camel_case_types, clippy::all)]
        trait #container {
            fn __eventbus_register() {
                fn __eventbus_call(
                    __env: #krate::RawEnvelope,
                    #context_pat: #krate::Context,
                ) -> #private::BoxFuture<
                    'static,
                    ::core::result::Result<(), #krate::HandlingError>,
                > {
                    #call
                }

                fn __eventbus_function() -> ::core::any::TypeId {
                    #private::type_id_of_val(&#fn_ident)
                }

                #private::inventory::submit! {
                    #private::HandlerRegistration {
                        name: #name,
                        pattern: #pattern,
                        event: #event_name,
                        topics: #event_topics,
                        options: #options,
                        states: &[#(#states),*],
                        call: __eventbus_call,
                        function: __eventbus_function,
                        file: ::core::file!(),
                        line: #line,
                    }
                }
            }
        }
    }
}

/// `HandlerOptions::DEFAULT`, with what the attribute sets on top through
/// struct update syntax, so new runtime options need no macro change.
fn options(handler: &Handler<'_>, private: &TokenStream) -> TokenStream {
    let args = &handler.args;
    let mut fields = Vec::new();
    if let Some(retry) = args.retry {
        fields.push(quote!(retry: ::core::option::Option::Some(#retry)));
    }
    if let Some((concurrency, _)) = args.concurrency {
        fields.push(quote!(concurrency: #concurrency));
    }
    if let Some(replay) = args.replay {
        fields.push(quote!(replay: #replay));
    }
    if let Some((first, longest)) = args.backoff {
        fields.push(
            quote!(backoff: ::core::option::Option::Some(#private::Backoff {
                base: ::core::time::Duration::from_millis(#first),
                max: ::core::time::Duration::from_millis(#longest),
            })),
        );
    }
    if let Some(scope) = &args.scope {
        fields.push(quote!(
            scope: ::core::option::Option::Some(::std::borrow::Cow::Borrowed(#scope))
        ));
    }
    if let Some(start) = &args.start {
        fields.push(quote!(start: ::core::option::Option::Some(#private::Start::#start)));
    }
    if fields.is_empty() {
        return quote!(#private::HandlerOptions::DEFAULT);
    }
    quote! {
        #private::HandlerOptions {
            #(#fields,)*
            ..#private::HandlerOptions::DEFAULT
        }
    }
}
