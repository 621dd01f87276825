//! `#[derive(Event)]`: parse ([`model`]), check ([`check`]), expand
//! ([`expand`], with the codec in [`codec`]).

mod check;
mod codec;
mod expand;
mod model;
mod serde_attr;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::ctxt::Ctxt;

/// Expands `#[derive(Event)]` on `input`.
///
/// With errors, the output is every error plus a stub `impl Event`, so the
/// rest of the user's crate still type-checks against the trait.
pub(crate) fn derive(input: TokenStream) -> TokenStream {
    let ast: DeriveInput = match syn::parse2(input) {
        Ok(ast) => ast,
        Err(error) => return error.to_compile_error(),
    };
    let cx = Ctxt::new();
    let input = model::Input::from_ast(&cx, &ast);
    let checked = check::check(&cx, &input);
    match cx.check() {
        Ok(()) => expand::expand(&input, &checked),
        Err(error) => {
            let mut out = error.to_compile_error();
            out.extend(expand::fallback(&input, &checked));
            out
        }
    }
}
