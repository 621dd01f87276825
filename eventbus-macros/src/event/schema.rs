//! The JSON Schema half of the expansion (feature `schema`): each topic's
//! data schema for the catalog, from the deserializing shadows.
//!
//! The shadows derive `schemars::JsonSchema`, so serde's options (renames,
//! defaults, skips) shape the schema exactly as they shape the data. Each
//! field's own schema comes from a probe function written for its type:
//! the type's `JsonSchema` when it has one, else a schema that accepts
//! anything and says why, so a field type without a schema never fails the
//! build. Without the feature every method here adds nothing.

use std::cell::{Cell, RefCell};

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::LitStr;

/// The schema parts of one type's expansion, collected while the codec
/// writes its shadows.
pub(crate) struct Schemas {
    on: bool,
    private: TokenStream,
    schemars_str: LitStr,
    probes: RefCell<TokenStream>,
    next: Cell<usize>,
    /// One expression per topic, in the order of `TOPICS`.
    topics: RefCell<Vec<TokenStream>>,
}

impl Schemas {
    /// Collects schemas when `on` (the macros' `schema` feature).
    pub(crate) fn new(private: &TokenStream, on: bool) -> Self {
        let schemars_str = format!("{private}::schema::schemars").replace(' ', "");
        Schemas {
            on,
            private: private.clone(),
            schemars_str: LitStr::new(&schemars_str, Span::call_site()),
            probes: RefCell::new(TokenStream::new()),
            next: Cell::new(0),
            topics: RefCell::new(Vec::new()),
        }
    }

    /// The derive a deserializing shadow adds beside serde's.
    pub(crate) fn derive(&self) -> TokenStream {
        if !self.on {
            return TokenStream::new();
        }
        let Schemas {
            private,
            schemars_str,
            ..
        } = self;
        quote! {
            #[derive(#private::schema::schemars::JsonSchema)]
            #[schemars(crate = #schemars_str)]
        }
    }

    /// The attribute that gives a shadow's field the schema of `ty`, the
    /// field's type as the user wrote it.
    pub(crate) fn field(&self, ty: &TokenStream, span: Span) -> Option<TokenStream> {
        if !self.on {
            return None;
        }
        let private = &self.private;
        let index = self.next.get();
        self.next.set(index + 1);
        let probe = format_ident!("__eventbus_schema_{index}");
        self.probes.borrow_mut().extend(quote_spanned! {span=>
            fn #probe(
                __generator: &mut #private::schema::schemars::SchemaGenerator,
            ) -> #private::schema::schemars::Schema {
                #[allow(unused_imports)]
                use #private::schema::{ViaAnything as _, ViaJsonSchema as _};
                (&&#private::schema::Probe::<#ty>(::core::marker::PhantomData))
                    .field_schema(__generator)
            }
        });
        let name = LitStr::new(&probe.to_string(), span);
        Some(quote!(#[schemars(schema_with = #name)]))
    }

    /// The next topic's data is read by the deserializing shadow `shadow`.
    pub(crate) fn topic_read_by(&self, shadow: TokenStream) {
        let private = &self.private;
        self.topics
            .borrow_mut()
            .push(quote!(#private::schema::of::<#shadow>()));
    }

    /// The next topic's data is `null` (a unit struct or variant).
    pub(crate) fn topic_null(&self) {
        let private = &self.private;
        self.topics
            .borrow_mut()
            .push(quote!(#private::schema::null()));
    }

    /// The next topic's data is read as another type (`from`, `try_from`),
    /// whose schema the derive does not know.
    pub(crate) fn topic_any(&self) {
        let private = &self.private;
        self.topics
            .borrow_mut()
            .push(quote!(#private::schema::any()));
    }

    /// The probe functions and `__eventbus_schemas`, for the expansion's
    /// `const` block, and the path the registration names.
    pub(crate) fn finish(self) -> (TokenStream, TokenStream) {
        let private = &self.private;
        if !self.on {
            return (TokenStream::new(), quote!(#private::no_schemas));
        }
        let probes = self.probes.into_inner();
        let topics = self.topics.into_inner();
        let items = quote! {
            #probes

            fn __eventbus_schemas() -> ::std::vec::Vec<#private::serde_json::Value> {
                ::std::vec![#(#topics),*]
            }
        };
        (items, quote!(__eventbus_schemas))
    }
}
