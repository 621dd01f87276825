//! `Context`: what a handler can ask about and do beyond its event.

use std::any::{Any, TypeId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::publish::{JsonEvent, Publish, Publishable, Publisher};
use crate::envelope::RawEnvelope;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::store::{Durability, Store};

/// What a handling needs from the bus running it: a narrow handle the
/// delivery layer implements, one per handler, so the handler layer
/// knows nothing of buses.
pub(crate) trait HandlerHost: Send + Sync {
    /// Publishes follow-ups.
    fn publisher(&self) -> &dyn Publisher;
    /// The running handler's name.
    fn handler(&self) -> &Arc<str>;
    /// Shared state by type.
    fn state(&self, id: TypeId) -> Option<&Arc<dyn Any + Send + Sync>>;
    /// The store, for the capabilities a handling may use (transactions,
    /// saga instances).
    fn store(&self) -> &Arc<dyn Store>;
}

/// The handling context: publish follow-ups, read metadata, the attempt
/// number and shared state. Cheap to clone.
///
/// # Examples
///
/// ```standalone_crate
/// use eventbus::prelude::*;
///
/// #[derive(Event, Clone, Debug)]
/// #[event(topic = "invoice.created")]
/// struct InvoiceCreated { order: u64 }
///
/// #[derive(Event, Clone, Debug)]
/// #[event(topic = "order.placed")]
/// struct OrderPlaced { id: u64 }
///
/// struct Config { currency: &'static str }
///
/// #[handler(name = "docs.invoice")]
/// async fn invoice(ev: Envelope<OrderPlaced>, ctx: Context) -> eventbus::Result<()> {
///     let config = ctx.state::<Config>()?;
///     assert_eq!(config.currency, "EUR");
///     // Carries the correlation id over; the causation id is `ev.id()`.
///     ctx.publish(InvoiceCreated { order: ev.id }).await?;
///     Ok(())
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> eventbus::Result<()> {
/// # let bus = Bus::builder().state(Config { currency: "EUR" }).build().await?;
/// # bus.shutdown().await
/// # }
/// ```
#[derive(Clone)]
pub struct Context {
    host: Arc<dyn HandlerHost>,
    envelope: RawEnvelope,
    attempt: u32,
    /// For a delivery from the handler's own feed: set once a transaction
    /// committed the event as handled, shared by all its attempts.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    committed: Option<Arc<Committed>>,
}

/// Whether a handling's `ctx.transaction` recorded its event as handled,
/// and the receipt of the commit that makes it durable; shared by the
/// handling's attempts and the feed that delivered it.
#[derive(Debug, Default)]
pub(crate) struct Committed {
    done: AtomicBool,
    durability: Mutex<Option<Durability>>,
}

impl Committed {
    /// Whether a transaction recorded the event as handled: a retry would
    /// apply the handler's writes twice.
    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    #[cfg(feature = "sqlite")]
    fn set(&self, durability: Durability) {
        *self
            .durability
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(durability);
        self.done.store(true, Ordering::Release);
    }

    /// The receipt of the commit holding the handling's transaction, for
    /// the feed to wait on before it moves the checkpoint past the event.
    pub(crate) fn take_durability(&self) -> Option<Durability> {
        self.durability
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl Context {
    pub(crate) fn new(
        host: Arc<dyn HandlerHost>,
        envelope: RawEnvelope,
        attempt: u32,
        committed: Option<Arc<Committed>>,
    ) -> Self {
        Context {
            host,
            envelope,
            attempt,
            committed,
        }
    }

    /// Publishes a follow-up event. Its correlation id is the current
    /// event's (or the current event's id when it has none) and its
    /// causation id is the current event's id; both can be overridden on
    /// the returned builder. Its header
    /// [`HANDLER_HEADER`](crate::envelope::HANDLER_HEADER) names this
    /// handler. It is published in the current event's scope
    /// (see [`Bus::scope`](crate::Bus::scope)).
    pub fn publish<E: Event>(&self, event: E) -> Publish<'_, E> {
        self.follow_up(event)
    }

    /// Publishes a follow-up event `delay` from now, as
    /// [`Context::publish`] with
    /// [`deliver_after`](Publish::deliver_after): a reminder or a timeout.
    pub fn schedule<E: Event>(&self, event: E, delay: std::time::Duration) -> Publish<'_, E> {
        self.follow_up(event).deliver_after(delay)
    }

    /// Publishes JSON data on a topic chosen at run time as a follow-up
    /// event, with the correlation and causation ids of
    /// [`Context::publish`]; see [`Bus::publish_json`](crate::Bus::publish_json).
    pub fn publish_json(
        &self,
        topic: impl Into<String>,
        data: &impl serde::Serialize,
    ) -> Publish<'_, JsonEvent> {
        self.follow_up(JsonEvent::new(topic, data))
    }

    fn follow_up<E: Publishable>(&self, event: E) -> Publish<'_, E> {
        let correlation = self
            .envelope
            .correlation_id()
            .map_or_else(|| self.envelope.id().to_string(), str::to_owned);
        Publish::new(self.host.publisher(), event)
            .within(self.envelope.scope())
            .published_by(self.handler())
            .correlation_id(correlation)
            .causation_id(self.envelope.id().to_string())
    }

    /// How the bus publishes, for saga steps, which publish drafts they
    /// made themselves.
    pub(crate) fn publisher(&self) -> &dyn Publisher {
        self.host.publisher()
    }

    /// The bus's store, for the capabilities beyond publishing.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        self.host.store()
    }

    /// The envelope being handled, with all its metadata.
    pub fn envelope(&self) -> &RawEnvelope {
        &self.envelope
    }

    /// The attempt number, 1 for the first delivery.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The name of the handler running.
    pub fn handler(&self) -> &str {
        self.host.handler()
    }

    /// Whether the envelope comes from a replay of history.
    pub fn is_replay(&self) -> bool {
        self.envelope.is_replay()
    }

    #[cfg(feature = "sqlite")]
    /// Runs `f` in one SQLite transaction, in the store's own file, that
    /// also records this event as handled by this handler: the handler's
    /// writes and that record commit together or not at all. After a
    /// crash, an event whose transaction committed is never handled again
    /// by this handler, and one whose transaction did not commit left no
    /// trace; the effect happens exactly once.
    ///
    /// `f` runs on the store's writer thread, in a savepoint of the
    /// store's next group commit, so keep it to a few statements and do
    /// nothing slow in it (no network, no waiting). It sees the events
    /// stored so far and the writes of the transactions before it.
    ///
    /// The call returns once `f` ran and its writes and the record are in
    /// that group, not after the commit: a handler working through a
    /// backlog commits a group of events per fsync instead of one event.
    /// The group commits within 2 ms, or at once when a publisher is
    /// waiting; other connections see the writes from then on. The
    /// handler's checkpoint never moves past the event before that commit,
    /// and should the commit fail (a full disk), every handling in the
    /// group is taken back and handled again.
    ///
    /// A handling commits at most one transaction. Once it has, the event
    /// counts as handled: an error or panic after it ends the handling
    /// without a retry (the writes are stored and cannot be undone). An
    /// error or panic inside `f` rolls everything back, and the attempt
    /// fails and is retried as usual. In a replay or a retry from the
    /// dead letters, `f` runs in a transaction of its own without that
    /// record.
    ///
    /// # Errors
    ///
    /// [`Error::TransactionNeedsSqlite`] when the bus does not run on a
    /// `sqlite://` store; [`Error::Transaction`] carrying `f`'s error;
    /// [`Error::AlreadyHandled`] when this handling already committed a
    /// transaction; [`Error::Store`] when beginning or committing failed.
    ///
    /// # Panics
    ///
    /// A panic in `f` is resumed here, after the rollback.
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// use eventbus::prelude::*;
    /// use eventbus::rusqlite::params;
    ///
    /// #[derive(Event, Clone, Debug)]
    /// #[event(topic = "order.placed")]
    /// struct OrderPlaced { id: i64, cents: i64 }
    ///
    /// #[handler(name = "docs.revenue")]
    /// async fn revenue(ev: Envelope<OrderPlaced>, ctx: Context) -> eventbus::Result<()> {
    ///     let (id, cents) = (ev.id, ev.cents);
    ///     ctx.transaction(move |tx| {
    ///         tx.execute("INSERT INTO revenue (order_id, cents) VALUES (?1, ?2)", params![id, cents])
    ///     })
    ///     .await?;
    ///     Ok(())
    /// }
    ///
    /// #[tokio::main]
    /// async fn main() -> eventbus::Result<()> {
    ///     # let dir = std::env::temp_dir().join(format!("eventbus-doc-{}", std::process::id()));
    ///     # std::fs::create_dir_all(&dir).unwrap();
    ///     # let file = dir.join("shop.db");
    ///     // The handler's table lives in the store's own file.
    ///     let bus = Bus::builder().store(format!("sqlite://{}", file.display())).build().await?;
    ///     let db = eventbus::rusqlite::Connection::open(&file).expect("open");
    ///     db.execute("CREATE TABLE revenue (order_id INTEGER PRIMARY KEY, cents INTEGER)", [])
    ///         .expect("create");
    ///     bus.publish(OrderPlaced { id: 7, cents: 1250 }).await?;
    ///     bus.shutdown().await?;              // handles what was stored before it
    ///     let total: i64 = db.query_row("SELECT sum(cents) FROM revenue", [], |r| r.get(0))
    ///         .expect("query");
    ///     assert_eq!(total, 1250);
    ///     # std::fs::remove_dir_all(&dir).unwrap();
    ///     Ok(())
    /// }
    /// ```
    pub async fn transaction<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        let store = self.host.store();
        let Some(transactions) = store.as_transactions() else {
            return Err(Error::TransactionNeedsSqlite {
                store: store.describe(),
            });
        };
        let mark = self.committed.as_ref().map(|_| self.envelope.seq());
        let boxed: crate::store::TransactionFn =
            Box::new(move |tx| f(tx).map(|value| Box::new(value) as Box<dyn Any + Send>));
        let ran = transactions
            .run_transaction(Arc::clone(self.host.handler()), mark, boxed)
            .await?;
        // The closure above boxed a `T`, so this cannot fail.
        let value = *ran
            .value
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("the transaction's value is the closure's"));
        match &self.committed {
            Some(committed) => committed.set(ran.durability),
            None => ran.durability.wait().await?,
        }
        Ok(value)
    }

    /// Shared state given to the builder with `.state(value)`.
    ///
    /// `#[handler]` records every `ctx.state::<T>()` in its body, so
    /// `build()` fails up front when a state is missing; a call made
    /// elsewhere (a helper function) is only checked here.
    ///
    /// # Errors
    ///
    /// [`Error::StateNotProvided`] when no state of type `T` was given.
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<&T> {
        self.host
            .state(TypeId::of::<T>())
            .and_then(|s: &Arc<dyn Any + Send + Sync>| s.downcast_ref::<T>())
            .ok_or(Error::StateNotProvided(std::any::type_name::<T>()))
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("handler", &self.handler())
            .field("attempt", &self.attempt)
            .field("envelope", &self.envelope)
            .finish_non_exhaustive()
    }
}
