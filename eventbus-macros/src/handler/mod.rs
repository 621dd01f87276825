//! `#[handler]`: parse ([`model`]), check ([`check`]), expand ([`expand`],
//! with the `ctx.state::<T>()` finder in [`state`]).

mod check;
mod expand;
mod model;
mod state;

use proc_macro2::{Span, TokenStream};
use syn::ItemFn;

use crate::ctxt::Ctxt;

/// Expands `#[handler(args)]` on `item`.
///
/// The user's function is always emitted unchanged, errors or not, so that
/// calls to it and IDE features keep working while the errors are fixed.
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
            let mut out = item;
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
