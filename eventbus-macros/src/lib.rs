//! Procedural macros for [eventbus]: `#[derive(Event)]`, `#[handler]` and
//! `topic!()`.
//!
//! Use them through the `eventbus` crate, which re-exports them and holds
//! everything the generated code names; this crate is an implementation
//! detail, versioned in lockstep with it.
//!
//! Each macro parses its input into a typed model, checks it (reporting every
//! problem at once, spanned on the culprit), then generates code. Topic
//! strings are validated with `eventbus-topic`, the same grammar the bus
//! uses at run time.
//!
//! [eventbus]: https://docs.rs/eventbus

mod attr;
mod case;
mod ctxt;
mod event;
mod handler;
mod pretty;
mod saga;
mod topic;

use proc_macro::TokenStream;

/// Implements `eventbus::Event` for a struct or an enum: its name, version,
/// topics, and a JSON codec; and serde's `Serialize` (and, for a struct,
/// `Deserialize`) in the same form.
///
/// The type needs no `Serialize` or `Deserialize` of its own; its fields do.
///
/// # Structs
///
/// A struct has one concrete topic:
///
/// ```ignore
/// #[derive(Event, Clone, Debug)]
/// #[event(topic = "entity.created")]
/// pub struct EntityCreated {
///     pub id: String,
///     #[serde(rename = "displayName", default)]
///     pub name: String,
/// }
/// ```
///
/// Its data is the struct's serde form, honoring `#[serde(...)]` on the
/// struct and its fields: `{"id":"e-1","displayName":"Ada"}`. A tuple
/// struct's data is an array (a newtype's, the inner value), a unit struct's
/// is `null`. A NaN or infinite float, which JSON cannot hold, makes
/// `encode_data` fail with an error naming the field. Equivalent code
/// without the macro:
///
/// ```ignore
/// impl eventbus::Event for EntityCreated {
///     const NAME: &'static str = "EntityCreated";
///     const VERSION: u32 = 1;
///     const TOPICS: &'static [&'static str] = &["entity.created"];
///
///     fn topic(&self) -> &'static str {
///         "entity.created"
///     }
///     fn encode_data(&self) -> Result<Vec<u8>, eventbus::CodecError> {
///         // serde_json of the fields, with their serde options
///     }
///     fn decode_data(topic: &str, data: &[u8]) -> Result<Self, eventbus::CodecError> {
///         match topic {
///             "entity.created" => { /* serde_json, rejecting trailing input */ }
///             _ => Err(eventbus::CodecError::unknown_topic::<Self>(topic)),
///         }
///     }
/// }
/// // and `Serialize` and `Deserialize` in the same form (see "Serde" below)
/// ```
///
/// # Enums
///
/// Each variant of an enum is an event with its own topic: `namespace` gives
/// variant `CancelledByCustomer` the topic `order.cancelled_by_customer`, and
/// `#[event(topic = "...")]` on a variant overrides it (without a
/// `namespace`, every variant needs one).
///
/// ```ignore
/// #[derive(Event, Clone, Debug)]
/// #[event(namespace = "order")]
/// pub enum OrderEvent {
///     Placed { id: u64, cents: u64 },  // order.placed, data {"id":7,"cents":1250}
///     Shipped(u64),                    // order.shipped, data 7
///     #[event(topic = "order.cancelled.by_customer")]
///     Cancelled { id: u64, reason: String },
///     Archived,                        // order.archived, data null
/// }
/// ```
///
/// A variant's data is its own content, not serde's externally tagged form:
/// the topic already says which variant it is, so a client in any language
/// can read and write it. Equivalent code without the macro:
///
/// ```ignore
/// impl eventbus::Event for OrderEvent {
///     const NAME: &'static str = "OrderEvent";
///     const VERSION: u32 = 1;
///     const TOPICS: &'static [&'static str] =
///         &["order.placed", "order.shipped", "order.cancelled.by_customer", "order.archived"];
///
///     fn topic(&self) -> &'static str {
///         match self {
///             Self::Placed { .. } => "order.placed",
///             Self::Shipped { .. } => "order.shipped",
///             Self::Cancelled { .. } => "order.cancelled.by_customer",
///             Self::Archived { .. } => "order.archived",
///         }
///     }
///     // encode_data: the variant's content; decode_data: by topic, the
///     // matching variant's content (a unit variant accepts empty data,
///     // `null` or `{}`).
/// }
/// ```
///
/// # Serde
///
/// The type's own serde form is its data: the derive implements
/// `Serialize` for it, writing exactly what `encode_data` writes (short of
/// the NaN check), so `serde_json::to_string(&event)` works and an event can
/// be a field of another serde type. A struct is `Deserialize` too, reading
/// what `decode_data` reads. An enum is not: its data does not say which
/// variant it is (the topic does), so read it with `decode_data(topic,
/// data)`, or keep the whole `Envelope<E>`, whose serde form is the
/// CloudEvent with the topic in it.
///
/// ```ignore
/// let ev = EntityCreated { id: "e-1".into(), name: "Ada".into() };
/// assert_eq!(serde_json::to_vec(&ev)?, ev.encode_data()?);
/// let back: EntityCreated = serde_json::from_str(r#"{"id":"e-1","displayName":"Ada"}"#)?;
/// ```
///
/// A type that derives serde's traits itself, for another form (serde's
/// tagged enums, say), opts out with `#[event(serde = false)]`; without it,
/// the two derives are conflicting implementations of `Serialize`.
///
/// ```ignore
/// #[derive(Event, Serialize, Deserialize, Clone, Debug)]
/// #[event(namespace = "order", serde = false)]
/// #[serde(tag = "type")]                // for the type's own serde form only
/// pub enum OrderEvent { Placed { id: u64 }, Shipped { id: u64 } }
/// ```
///
/// # Options
///
/// On the type, `#[event(...)]` takes:
///
/// | key | meaning | default |
/// |---|---|---|
/// | `topic = "a.b"` | a struct's topic (required on structs) | none |
/// | `namespace = "a"` | an enum's topic prefix | none |
/// | `name = "..."` | `Event::NAME`, stored with every event | the type's identifier |
/// | `version = N` | `Event::VERSION`, the schema version | `1` |
/// | `serde = false` | leave serde's traits to the type's own derive | `true` |
/// | `crate = "path"` | where the `eventbus` crate is | `::eventbus` |
///
/// On a variant, `#[event(topic = "...")]`. Field options are serde's:
/// `#[serde(rename, default, skip, with, flatten, ...)]`; on an enum,
/// `rename_all_fields` and `deny_unknown_fields` apply to every variant's
/// fields and a variant's `rename_all` to its own, while tagging options
/// (`tag`, `untagged`, variant `rename`) are left to the type's own
/// `Serialize`, if it has one (with `serde = false`).
///
/// # Errors
///
/// Compile errors, all reported at once: a missing or malformed topic (with
/// the offending token), an empty `namespace`, a wildcard in a topic, two
/// variants with the same topic, unknown keys (with a "did you mean"),
/// unions, and generic or borrowing types. A field type without serde's
/// `Serialize` and `Deserialize` is one error, on the field's type (a field
/// with `#[serde(with = "...")]`, `skip`, `flatten` or a `default`
/// function is left to serde, which reports its own errors).
#[proc_macro_derive(Event, attributes(event, serde))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    event::derive(input.into()).into()
}

/// Registers an `async fn` as a handler that the bus calls for each matching
/// event.
///
/// ```ignore
/// #[handler(topic = "order.*", retry = 5, name = "billing")]
/// async fn bill(ev: Envelope<OrderEvent>, ctx: Context) -> anyhow::Result<()> {
///     let db = ctx.state::<Db>()?;
///     Ok(())
/// }
/// ```
///
/// The function keeps its name and signature and can still be called
/// directly. `Bus::builder().build()` picks up every handler linked into the
/// binary (a library crate the binary never references is not linked: add
/// `use my_handlers as _;`).
///
/// # Signature
///
/// - One event parameter: `E` (cloned out of the shared envelope, so `E:
///   Clone`) or `Envelope<E>`, where `E: Event`. Its type decides the
///   handler's event type.
/// - Optionally a `Context` (by value), anywhere in the list.
/// - A return type of `()` or `Result<(), E>` where `E: std::error::Error +
///   Send + Sync + 'static` (`anyhow::Result<()>` works too).
///
/// Not accepted: non-`async` functions, methods, generic functions, and
/// borrowed parameters, each with a compile error saying why.
///
/// # Options
///
/// | key | meaning | default |
/// |---|---|---|
/// | `topic = "pattern"` | which of the event type's topics to receive; checked at compile time to match at least one | all of them |
/// | `name = "..."` | the handler's unique name (checkpoints, replays, dead letters) | `module::path::fn_name` |
/// | `retry = N` | retries after a failed first attempt | the bus default |
/// | `concurrency = N` | handlings at once; `1` keeps per-topic order | `1` |
/// | `replay = bool` | whether replays reach this handler | `true` |
/// | `backoff = "100ms..30s"` | the first and the longest delay between attempts (doubling, with jitter) | the bus default, `100ms..30s` |
/// | `start = "latest" \| "earliest"` | where a new handler starts on a durable store | the bus default, `latest` |
/// | `scope = "tenant-a"` | only events published in this scope or below it (`Bus::scope`); the path is checked at compile time | every scope |
/// | `crate = "path"` | where the `eventbus` crate is | `::eventbus` |
///
/// Shared state the body reads with `ctx.state::<T>()` is recorded too, so
/// that `build()` fails, naming `T`, when nobody provided it.
///
/// # Equivalent code without the macro
///
/// ```ignore
/// let bill = FnHandler::new("billing", |ev: Envelope<OrderEvent>, ctx: Context| async move {
///     /* the body */
/// })
/// .topic("order.*") // checked by `build()` instead of the compiler
/// .retry(5)
/// .needs_state::<Db>();
/// let bus = Bus::builder().handler(bill).build().await?;
/// ```
#[proc_macro_attribute]
pub fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    handler::expand(args.into(), item.into()).into()
}

/// Makes a type a saga (process manager): put it on an `impl` block of
/// the saga's state type, with `#[start]` on the method an instance starts
/// from and `#[on]` on each method that continues one.
///
/// ```ignore
/// #[saga(key = "order_id")]                   // name = "...", crate = "..."
/// impl OrderFulfilment {
///     #[start(topic = "order.placed")]         // topic, retry, backoff
///     fn placed(&mut self, ev: &OrderEvent, saga: &mut SagaContext) { .. }
///     #[on]
///     fn reserved(&mut self, ev: &Envelope<StockEvent>, saga: &mut SagaContext) -> Result<(), E> { .. }
/// }
/// ```
///
/// Checked while compiling: every step's event type has the `key` field
/// (in every variant, with one type); one `#[start]` per event type; no two
/// steps for the same event type and topics; steps are plain (not `async`)
/// methods taking `&mut self`, the event by reference, and optionally
/// `&mut SagaContext`. See `eventbus::saga`.
#[proc_macro_attribute]
pub fn saga(args: TokenStream, item: TokenStream) -> TokenStream {
    saga::expand(args.into(), item.into()).into()
}

/// FNV-1a of a field name: the `HasField` const parameter, the same as
/// the runtime's `field_hash`.
pub(crate) fn field_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A topic or pattern, validated while compiling.
///
/// A string without wildcards becomes an `eventbus::topic::Topic`, one with
/// `*` or `>` an `eventbus::topic::Pattern`; both are built by `const fn`s,
/// so the macro works in `const` items. A malformed string is a compile error
/// naming the bad token.
///
/// ```ignore
/// const PLACED: Topic = topic!("order.placed");
/// let every_order: Pattern = topic!("order.>");
/// ```
///
/// Equivalent code without the macro, checked at run time instead:
///
/// ```ignore
/// const PLACED: Topic = Topic::from_static("order.placed"); // panics if invalid
/// ```
#[proc_macro]
pub fn topic(input: TokenStream) -> TokenStream {
    topic::expand(input.into()).into()
}
