//! [`TestBus`]: a real bus on a fresh store, running only the handlers a
//! test names, with what is in flight tracked and the traffic recorded.

use std::any::TypeId;
use std::future::Future;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use super::faults::{FaultLayer, Faults};
use crate::bus::{Bus, BusBuilder};
use crate::delivery::Tracker;
use crate::error::{Error, Result};
use crate::handler::{Context, EventParam, FnHandler, HandlerRegistration, HandlerReturn};
use crate::saga::Saga;

/// A `#[handler]` function, as [`TestBusBuilder::handler`] takes it: an
/// `async fn` whose parameters are one event (`E` or `Envelope<E>`) and
/// optionally a [`Context`]. `Params` is inferred; never name it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a handler function",
    label = "expected a `#[handler]` async fn taking an event and optionally a `Context`",
    note = "pass the `#[handler]` function itself, as in `.handler(bill)`; add closure handlers with `.closure(FnHandler::new(..))`"
)]
pub trait HandlerFn<Params>: Copy + Send + Sync + 'static {}

impl<F, P, Fut> HandlerFn<(P,)> for F
where
    F: Fn(P) -> Fut + Copy + Send + Sync + 'static,
    P: EventParam,
    Fut: Future,
    Fut::Output: HandlerReturn,
{
}

impl<F, P, Fut> HandlerFn<(P, Context)> for F
where
    F: Fn(P, Context) -> Fut + Copy + Send + Sync + 'static,
    P: EventParam,
    Fut: Future,
    Fut::Output: HandlerReturn,
{
}

impl<F, P, Fut> HandlerFn<(Context, P)> for F
where
    F: Fn(Context, P) -> Fut + Copy + Send + Sync + 'static,
    P: EventParam,
    Fut: Future,
    Fut::Output: HandlerReturn,
{
}

/// Configures a [`TestBus`]; get one from [`TestBus::builder`].
#[must_use = "a builder does nothing until `.build().await`"]
pub struct TestBusBuilder {
    builder: BusBuilder,
    /// The handler functions asked for: their `TypeId` and, for errors, their path.
    functions: Vec<(TypeId, &'static str)>,
    sqlite: bool,
}

impl std::fmt::Debug for TestBusBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestBusBuilder")
            .field("builder", &self.builder)
            .field(
                "handlers",
                &self.functions.iter().map(|(_, n)| n).collect::<Vec<_>>(),
            )
            .field("sqlite", &self.sqlite)
            .finish()
    }
}

impl TestBusBuilder {
    /// Runs the `#[handler]` function `f`, named by the function itself:
    /// a typo does not compile, and neither does a function that cannot
    /// be a handler. Only the handlers named here (and the closures added
    /// with [`closure`](Self::closure)) run, whatever else is linked into
    /// the test binary.
    pub fn handler<F: HandlerFn<P>, P>(mut self, f: F) -> Self {
        let _ = f;
        self.functions
            .push((TypeId::of::<F>(), std::any::type_name::<F>()));
        self
    }

    /// Runs the saga `S`: every `#[start]` and `#[on]` step of its
    /// `#[saga]` block.
    pub fn saga<S: Saga>(mut self) -> Self {
        self.functions
            .push((TypeId::of::<S>(), std::any::type_name::<S>()));
        self
    }

    /// Adds a closure handler.
    pub fn closure(mut self, handler: FnHandler) -> Self {
        self.builder = self.builder.handler(handler);
        self
    }

    /// Shared state that handlers read with `ctx.state::<T>()`.
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.builder = self.builder.state(value);
        self
    }

    /// Uses an SQLite store in a fresh temporary directory, deleted when
    /// the [`TestBus`] drops, instead of `memory://`.
    pub fn sqlite(mut self) -> Self {
        self.sqlite = true;
        self
    }

    /// Any other setting of the underlying [`BusBuilder`] (backoff, retries,
    /// middleware, source...). The test bus's own settings (its handlers,
    /// its store) are applied after it.
    pub fn configure(mut self, f: impl FnOnce(BusBuilder) -> BusBuilder) -> Self {
        self.builder = f(self.builder);
        self
    }

    /// Builds and starts the bus.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a function given to [`handler`](Self::handler)
    /// that has no `#[handler]` attribute, or that is not linked into this
    /// binary; an I/O error creating the SQLite directory; and those of
    /// [`BusBuilder::build`].
    pub async fn build(self) -> Result<TestBus> {
        let registered: Vec<&'static HandlerRegistration> =
            inventory::iter::<HandlerRegistration>.into_iter().collect();
        let mut names = Vec::with_capacity(self.functions.len());
        let mut problems = Vec::new();
        for (id, path) in self.functions {
            // A function has one registration; a saga one per step.
            let before = names.len();
            names.extend(
                registered
                    .iter()
                    .filter(|r| (r.function)() == id)
                    .map(|r| r.name),
            );
            if names.len() == before {
                problems.push(Error::Config(format!(
                    "`{path}` is not a `#[handler]` function: add `#[handler]` to it, or add a \
                     closure handler with `.closure(FnHandler::new(..))`"
                )));
            }
        }
        if let Some(problems) = Error::from_problems(problems) {
            return Err(problems);
        }
        let faults = Arc::new(Faults::default());
        let mut builder = self
            .builder
            .only_handlers(names)
            .tracked()
            .layer(FaultLayer::new(Arc::clone(&faults)));
        let dir = if self.sqlite {
            let dir = TempDir::new()?;
            builder = builder.store(format!("sqlite://{}", dir.0.join("events.db").display()));
            Some(dir)
        } else {
            builder = builder.store("memory://");
            None
        };
        let bus = builder.build().await?;
        let Some(tracker) = bus.core().tracker.clone() else {
            return Err(Error::Config(
                "the test bus was built without its tracker".into(),
            ));
        };
        Ok(TestBus {
            bus,
            tracker,
            faults,
            _dir: dir,
        })
    }
}

/// A real [`Bus`] for tests, on `memory://` or a temporary SQLite file,
/// running only the handlers the test names; it derefs to the [`Bus`], so
/// publish, subscribe and history work as usual. See the [module
/// docs](crate::testing).
pub struct TestBus {
    bus: Bus,
    pub(super) tracker: Arc<Tracker>,
    faults: Arc<Faults>,
    _dir: Option<TempDir>,
}

impl std::fmt::Debug for TestBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestBus")
            .field("bus", &self.bus)
            .field("tracker", &self.tracker)
            .finish_non_exhaustive()
    }
}

impl TestBus {
    /// Starts configuring a test bus: no handlers unless named, `memory://`.
    pub fn builder() -> TestBusBuilder {
        TestBusBuilder {
            builder: Bus::builder(),
            functions: Vec::new(),
            sqlite: false,
        }
    }

    /// A test bus with no handlers on `memory://`: for code that only
    /// publishes.
    ///
    /// # Errors
    ///
    /// Those of [`TestBusBuilder::build`].
    pub async fn new() -> Result<TestBus> {
        TestBus::builder().build().await
    }

    /// The bus itself, for code that takes a `Bus` (clone it freely).
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The index of the handler named `name` on this bus.
    pub(super) fn handler_index(&self, name: &str) -> Result<usize> {
        let handlers = &self.bus.core().handlers;
        handlers
            .iter()
            .position(|h| *h.name == *name)
            .ok_or_else(|| Error::UnknownHandler {
                name: name.to_owned(),
                known: handlers.iter().map(|h| h.name.to_string()).collect(),
            })
    }
}

impl TestBus {
    /// Makes the next `attempts` attempts of the handler named `handler`
    /// fail with an error, without calling it; attempts after those call
    /// it as usual. With [`panic_next`](Self::panic_next), faults apply in
    /// the order they were asked for.
    ///
    /// ```
    /// # use eventbus::prelude::*;
    /// # use eventbus::testing::TestBus;
    /// # #[derive(Event, Clone, Debug)]
    /// # #[event(topic = "invoice.sent")]
    /// # struct InvoiceSent { id: u64 }
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> eventbus::Result<()> {
    /// let billing = FnHandler::new("billing", |_: Envelope<InvoiceSent>, _: Context| async {});
    /// let bus = TestBus::builder().closure(billing.retry(1)).build().await?;
    /// bus.fail_next("billing", 2)?;          // the first attempt and its one retry
    /// bus.publish(InvoiceSent { id: 1 }).await?;
    /// bus.settled().await.unwrap();
    /// assert_eq!(bus.dead_letters()[0].attempts, 2);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::UnknownHandler`](crate::Error::UnknownHandler) when this
    /// bus runs no handler of that name.
    pub fn fail_next(&self, handler: &str, attempts: u32) -> Result<()> {
        self.handler_index(handler)?;
        self.faults.fail(handler, attempts);
        Ok(())
    }

    /// Makes the next `attempts` attempts of the handler named `handler`
    /// panic, without calling it: the bus counts a panic as a failed
    /// attempt. See [`fail_next`](Self::fail_next).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownHandler`](crate::Error::UnknownHandler) when this
    /// bus runs no handler of that name.
    pub fn panic_next(&self, handler: &str, attempts: u32) -> Result<()> {
        self.handler_index(handler)?;
        self.faults.panic(handler, attempts);
        Ok(())
    }
}

impl Deref for TestBus {
    type Target = Bus;

    fn deref(&self) -> &Bus {
        &self.bus
    }
}

/// A directory of the test bus's own under the system's temporary
/// directory, deleted on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let path = std::env::temp_dir().join(format!("eventbus-test-{unique}"));
        std::fs::create_dir_all(&path).map_err(|e| {
            Error::Config(format!(
                "cannot create the test bus's directory {}: {e}",
                path.display()
            ))
        })?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // The store may still hold the file open, which Unix allows; a
        // directory left behind in the temporary directory harms nobody.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
