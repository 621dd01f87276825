//! `#[saga]`: parse ([`model`]), check ([`check`]), expand
//! ([`expand`](mod@expand)).

mod check;
mod expand;
mod model;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{ImplItem, ItemImpl};

use crate::ctxt::Ctxt;

/// Expands `#[saga(args)]` on `item`.
///
/// The impl block is always emitted, without the `#[start]` and `#[on]`
/// attributes this macro reads (they are no attributes of their own), so
/// its methods keep working in the IDE while errors are fixed.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let block: ItemImpl = match syn::parse2(item.clone()) {
        Ok(block) => block,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                "`#[saga]` goes on the `impl` block of a saga's state type, whose `#[start]` \
                 and `#[on]` methods are its steps",
            );
            let mut out = error.to_compile_error();
            out.extend(item);
            return out;
        }
    };
    let cx = Ctxt::new();
    let saga = model::Saga::parse(&cx, args, &block);
    check::check(&cx, &saga);
    let mut out = match cx.check() {
        Ok(()) => expand::expand(&saga),
        Err(error) => error.to_compile_error(),
    };
    out.extend(without_step_attrs(block).into_token_stream());
    out
}

fn without_step_attrs(mut block: ItemImpl) -> ItemImpl {
    for item in &mut block.items {
        if let ImplItem::Fn(method) = item {
            method.attrs.retain(|a| model::step_kind(a).is_none());
        }
    }
    block
}
