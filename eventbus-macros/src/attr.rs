//! `key = value` options, as in `#[event(topic = "a.b")]` and
//! `#[handler(retry = 5)]`: parsing, typed values, and the "did you mean"
//! message for an unknown key.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, Lit, LitStr, Meta, Path, Token};

use crate::ctxt::Ctxt;

/// One key an attribute accepts.
pub(crate) struct Key {
    /// The key as written.
    pub(crate) name: &'static str,
    /// A complete `key = value` shown in messages about this key, or
    /// `key(...)` for a key that takes a list of options of its own.
    pub(crate) example: &'static str,
    /// Other words users reach for, answered with "did you mean `name`?".
    pub(crate) aliases: &'static [&'static str],
}

/// The keys of one attribute, and how to name the attribute in messages.
pub(crate) struct Spec {
    /// The attribute's name, such as `handler`.
    pub(crate) name: &'static str,
    /// Where the attribute sits, when that matters to the keys, such as
    /// " on a variant"; empty otherwise.
    pub(crate) place: &'static str,
    /// Every key it accepts, in the order messages list them.
    pub(crate) keys: &'static [Key],
}

/// One `key = value` pair, or `key(...)` list, whose key is in the [`Spec`].
pub(crate) struct Arg {
    /// The key, without any `r#` prefix.
    pub(crate) key: &'static str,
    /// The key as written, for spans.
    pub(crate) path: Path,
    /// The value as written (empty for a list).
    pub(crate) value: Expr,
    /// The list of a key that takes one, such as `upcast(from = 1, ..)`.
    pub(crate) list: Option<syn::MetaList>,
    example: &'static str,
}

impl Key {
    /// Whether the key takes a list, `key(...)`, rather than a value.
    fn takes_list(&self) -> bool {
        self.example
            .strip_prefix(self.name)
            .is_some_and(|rest| rest.starts_with('('))
    }
}

/// Parses the inside of an attribute's parentheses.
///
/// Unknown keys and malformed pairs are reported to `cx` and skipped, so that
/// the remaining pairs are still checked and every mistake shows up at once.
pub(crate) fn parse_args(cx: &Ctxt, tokens: TokenStream, spec: &Spec) -> Vec<Arg> {
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
        Ok(metas) => metas,
        Err(error) => {
            cx.push(error);
            return Vec::new();
        }
    };
    metas
        .into_iter()
        .filter_map(|meta| arg_from_meta(cx, meta, spec))
        .collect()
}

/// Parses a helper attribute such as `#[event(topic = "a.b")]`.
pub(crate) fn parse_attr(cx: &Ctxt, attr: &Attribute, spec: &Spec) -> Vec<Arg> {
    match &attr.meta {
        Meta::List(list) => parse_args(cx, list.tokens.clone(), spec),
        _ => {
            let example = spec.keys.first().map_or("key = value", |k| k.example);
            let name = spec.name;
            cx.error_spanned_by(
                attr,
                format!("expected `#[{name}(key = value, ...)]`, as in `#[{name}({example})]`"),
            );
            Vec::new()
        }
    }
}

fn arg_from_meta(cx: &Ctxt, meta: Meta, spec: &Spec) -> Option<Arg> {
    let path = meta.path().clone();
    let written = path_key(&path);
    let Some(key) = spec.keys.iter().find(|k| k.name == written) else {
        cx.error_spanned_by(&path, unknown_key_message(&written, spec));
        return None;
    };
    match meta {
        Meta::List(list) if key.takes_list() => Some(Arg {
            key: key.name,
            path,
            value: Expr::Verbatim(TokenStream::new()),
            list: Some(list),
            example: key.example,
        }),
        Meta::NameValue(_) | Meta::Path(_) if key.takes_list() => {
            cx.error_spanned_by(
                &path,
                format!("`{}` takes a list, as in `{}`", key.name, key.example),
            );
            None
        }
        Meta::NameValue(pair) => Some(Arg {
            key: key.name,
            path,
            value: pair.value,
            list: None,
            example: key.example,
        }),
        Meta::Path(_) => {
            cx.error_spanned_by(
                &path,
                format!("`{}` needs a value, as in `{}`", key.name, key.example),
            );
            None
        }
        Meta::List(list) => {
            cx.error_spanned_by(
                &list,
                format!(
                    "`{}` takes its value after `=`, as in `{}`",
                    key.name, key.example
                ),
            );
            None
        }
    }
}

/// The key of a path such as `topic` or `r#crate`; multi-segment paths are
/// kept whole so that the message shows what was written.
fn path_key(path: &Path) -> String {
    let segments: Vec<String> = path
        .segments
        .iter()
        .map(|s| s.ident.to_string().trim_start_matches("r#").to_owned())
        .collect();
    segments.join("::")
}

fn unknown_key_message(written: &str, spec: &Spec) -> String {
    let valid: Vec<String> = spec.keys.iter().map(|k| format!("`{}`", k.name)).collect();
    let valid = valid.join(", ");
    match suggest(written, spec.keys) {
        Some(key) => format!(
            "unknown key `{written}` in `#[{}(...)]`{}: did you mean `{key}`? (valid keys: {valid})",
            spec.name, spec.place
        ),
        None => format!(
            "unknown key `{written}` in `#[{}(...)]`{}; valid keys are {valid}",
            spec.name, spec.place
        ),
    }
}

/// The key that `written` most likely meant: an alias match, or the closest
/// key by edit distance when it is close enough to be a typo.
pub(crate) fn suggest(written: &str, keys: &[Key]) -> Option<&'static str> {
    let lower = written.to_ascii_lowercase();
    if let Some(key) = keys.iter().find(|k| k.aliases.contains(&lower.as_str())) {
        return Some(key.name);
    }
    keys.iter()
        .map(|k| (edit_distance(&lower, k.name), k.name))
        .filter(|(distance, name)| {
            *distance <= (name.len() / 3).max(1) || shared_prefix(&lower, name) >= 4
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

fn shared_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

/// Levenshtein distance over chars: insertions, deletions and substitutions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Records `value` for a key, reporting a second occurrence of the key.
pub(crate) fn set_once<T>(cx: &Ctxt, slot: &mut Option<T>, arg: &Arg, value: T) {
    if slot.is_some() {
        cx.error_spanned_by(
            &arg.path,
            format!("duplicate key `{}`; give it once", arg.key),
        );
    } else {
        *slot = Some(value);
    }
}

impl Arg {
    /// The value without the invisible groups `macro_rules!` wraps it in.
    fn bare_value(&self) -> &Expr {
        let mut value = &self.value;
        while let Expr::Group(group) = value {
            value = &group.expr;
        }
        value
    }

    fn literal(&self) -> Option<&Lit> {
        match self.bare_value() {
            Expr::Lit(lit) => Some(&lit.lit),
            _ => None,
        }
    }

    fn expected(&self, cx: &Ctxt, what: &str) {
        cx.error_spanned_by(
            &self.value,
            format!("`{}` takes {what}, as in `{}`", self.key, self.example),
        );
    }

    /// The value as a string literal.
    pub(crate) fn string(&self, cx: &Ctxt) -> Option<LitStr> {
        match self.literal() {
            Some(Lit::Str(lit)) => Some(lit.clone()),
            _ => {
                self.expected(cx, "a string literal");
                None
            }
        }
    }

    /// The value as a `u32` literal, with its span.
    pub(crate) fn u32(&self, cx: &Ctxt) -> Option<(u32, Span)> {
        match self.literal() {
            Some(Lit::Int(lit)) => match lit.base10_parse::<u32>() {
                Ok(n) => Some((n, lit.span())),
                Err(_) => {
                    cx.error_spanned_by(
                        lit,
                        format!(
                            "`{}` takes a non-negative integer that fits in a `u32`, as in `{}`",
                            self.key, self.example
                        ),
                    );
                    None
                }
            },
            _ => {
                self.expected(cx, "a non-negative integer literal");
                None
            }
        }
    }

    /// The value as `true` or `false`.
    pub(crate) fn bool(&self, cx: &Ctxt) -> Option<bool> {
        match self.literal() {
            Some(Lit::Bool(lit)) => Some(lit.value),
            _ => {
                self.expected(cx, "`true` or `false`");
                None
            }
        }
    }

    /// The value as a path, written either as a string (`crate = "::a::b"`,
    /// the serde and tokio convention) or bare (`crate = ::a::b`).
    pub(crate) fn path(&self, cx: &Ctxt) -> Option<Path> {
        match self.bare_value() {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Str(lit), ..
            }) => match lit.parse::<Path>() {
                Ok(path) => Some(path),
                Err(_) => {
                    self.expected(cx, "a path");
                    None
                }
            },
            Expr::Path(path) if path.qself.is_none() && path.attrs.is_empty() => {
                Some(path.path.clone())
            }
            _ => {
                self.expected(cx, "a path");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    const SPEC: Spec = Spec {
        name: "handler",
        place: "",
        keys: &[
            Key {
                name: "topic",
                example: "topic = \"order.*\"",
                aliases: &["pattern"],
            },
            Key {
                name: "retry",
                example: "retry = 5",
                aliases: &[],
            },
            Key {
                name: "concurrency",
                example: "concurrency = 4",
                aliases: &[],
            },
            Key {
                name: "crate",
                example: "crate = \"::eventbus\"",
                aliases: &[],
            },
        ],
    };

    fn messages(cx: Ctxt) -> Vec<String> {
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn suggests_close_keys_and_aliases() {
        assert_eq!(suggest("topc", SPEC.keys), Some("topic"));
        assert_eq!(suggest("retries", SPEC.keys), Some("retry"));
        assert_eq!(suggest("concurency", SPEC.keys), Some("concurrency"));
        assert_eq!(suggest("Topic", SPEC.keys), Some("topic"));
        assert_eq!(suggest("pattern", SPEC.keys), Some("topic"));
        assert_eq!(suggest("colour", SPEC.keys), None);
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("retry", "retry"), 0);
    }

    #[test]
    fn parses_known_keys_and_reports_every_bad_one() {
        let cx = Ctxt::new();
        let args = parse_args(
            &cx,
            quote!(
                topc = "a",
                retry = 5,
                crate = "::x",
                colour = 1,
                concurrency
            ),
            &SPEC,
        );
        let keys: Vec<&str> = args.iter().map(|a| a.key).collect();
        assert_eq!(keys, ["retry", "crate"]);
        assert_eq!(args[0].u32(&cx).map(|(n, _)| n), Some(5));
        assert!(args[1].path(&cx).is_some());
        let messages = messages(cx);
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(
            messages[0].contains("did you mean `topic`?"),
            "{}",
            messages[0]
        );
        assert!(
            messages[1].contains("valid keys are `topic`"),
            "{}",
            messages[1]
        );
        assert!(
            messages[2].contains("`concurrency` needs a value"),
            "{}",
            messages[2]
        );
    }

    #[test]
    fn wrong_value_types_name_the_expected_form() {
        let cx = Ctxt::new();
        let args = parse_args(&cx, quote!(topic = 1, retry = "5", concurrency = -1), &SPEC);
        assert!(args[0].string(&cx).is_none());
        assert!(args[1].u32(&cx).is_none());
        assert!(args[2].u32(&cx).is_none());
        let messages = messages(cx);
        assert_eq!(
            messages,
            [
                "`topic` takes a string literal, as in `topic = \"order.*\"`",
                "`retry` takes a non-negative integer literal, as in `retry = 5`",
                "`concurrency` takes a non-negative integer that fits in a `u32`, as in \
                 `concurrency = 4`",
            ]
        );
    }

    #[test]
    fn duplicate_keys_are_reported() {
        let cx = Ctxt::new();
        let args = parse_args(&cx, quote!(retry = 1, retry = 2), &SPEC);
        let mut slot = None;
        for arg in &args {
            set_once(&cx, &mut slot, arg, arg.u32(&cx));
        }
        assert_eq!(messages(cx), ["duplicate key `retry`; give it once"]);
    }
}
