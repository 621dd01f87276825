//! Finds the shared-state types a handler reads with `ctx.state::<T>()`, so
//! that `build()` can name any that nobody provided before the first event
//! arrives, rather than the handler failing at run time.

use std::collections::HashSet;

use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Block, Expr, ExprMethodCall, GenericArgument, Macro, Token, Type};

use crate::pretty::pretty;

/// A state type as written, with the name messages show for it.
pub(crate) struct StateType {
    pub(crate) ty: Type,
    pub(crate) name: String,
}

/// Every `.state::<T>()` in `body`, first occurrence first, without repeats.
///
/// Macro arguments that parse as expressions (`println!`, `format!`,
/// `assert!`, ...) are searched too; other macros are opaque to a proc macro.
pub(crate) fn find(body: &Block) -> Vec<StateType> {
    let mut finder = Finder::default();
    finder.visit_block(body);
    finder.found
}

#[derive(Default)]
struct Finder {
    found: Vec<StateType>,
    seen: HashSet<String>,
}

impl<'ast> Visit<'ast> for Finder {
    fn visit_expr_method_call(&mut self, call: &'ast ExprMethodCall) {
        if call.method == "state"
            && let Some(turbofish) = &call.turbofish
            && turbofish.args.len() == 1
            && let Some(GenericArgument::Type(ty)) = turbofish.args.first()
            && !matches!(ty, Type::Infer(_))
        {
            let name = pretty(ty);
            if self.seen.insert(name.clone()) {
                self.found.push(StateType {
                    ty: ty.clone(),
                    name,
                });
            }
        }
        visit::visit_expr_method_call(self, call);
    }

    fn visit_macro(&mut self, mac: &'ast Macro) {
        if let Ok(args) = mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
            for arg in &args {
                self.visit_expr(arg);
            }
        }
        visit::visit_macro(self, mac);
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    #[test]
    fn finds_each_state_type_once() {
        let body: Block = parse_quote!({
            let db = ctx.state::<Db>().unwrap();
            let again = ctx.state::<Db>();
            let cfg = async { ctx.state::<crate::config::Config>() }.await;
            println!("{:?}", ctx.state::<HashMap<String, u64>>());
            let ignored = ctx.state();
            let inferred = ctx.state::<_>();
        });
        let names: Vec<String> = find(&body).into_iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            ["Db", "crate::config::Config", "HashMap<String, u64>"]
        );
    }
}
