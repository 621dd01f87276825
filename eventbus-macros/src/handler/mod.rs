//! `#[handler]`: parse ([`model`]), check ([`check`]), expand ([`expand`](mod@expand),
//! with the `ctx.state::<T>()` finder in [`state`]).

mod check;
mod expand;
pub(crate) mod model;
mod state;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ItemFn;

use crate::ctxt::Ctxt;

/// Expands `#[handler(args)]` on `item`.
///
/// The user's function is always emitted as written, errors or not, so that
/// calls to it and IDE features keep working while the errors are fixed.
/// The one addition, on success, allows `clippy::unused_async`: a handler
/// must be `async` even when its body never awaits.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                "`#[handler]` goes on an `async fn` that takes an event, as in \
                 `#[handler] async fn on_created(ev: Envelope<EntityCreated>) {}`",
            );
            let mut out = error.to_compile_error();
            out.extend(item);
            return out;
        }
    };
    let cx = Ctxt::new();
    let handler = model::Handler::parse(&cx, args, &func);
    check::check(&cx, &handler);
    match cx.check() {
        Ok(()) => {
            let mut out = quote!(#[allow(clippy::unused_async)]);
            out.extend(item);
            out.extend(expand::expand(&handler));
            out
        }
        Err(error) => {
            let mut out = error.to_compile_error();
            out.extend(item);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::expand;

    #[test]
    fn expands_to_the_function_and_its_registration() {
        let func = quote!(
            pub async fn on_order(ctx: Context, ev: Envelope<E>) -> R {}
        );
        let out = expand(quote!(topic = "order.*", retry = 2), func);
        let file: syn::File = syn::parse2(out.clone()).expect("valid Rust");
        assert_eq!(
            file.items.len(),
            3,
            "the function, its pattern check and the registration's trait"
        );
        let text = out.to_string();
        assert!(
            text.contains("on_order (__ctx , __ev)"),
            "arguments in order: {text}"
        );
        assert!(text.contains("inventory :: submit !"), "{text}");
    }

    #[test]
    fn errors_keep_the_function_as_written() {
        let func = quote!(
            fn on_order(ev: E) {}
        );
        let out = expand(quote!(), func.clone()).to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.ends_with(&func.to_string()), "{out}");
        let out = expand(
            quote!(),
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(out.ends_with("struct S ;"), "{out}");
    }
}
