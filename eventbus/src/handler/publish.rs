//! `bus.publish(event)` and `ctx.publish(event)`: a builder for the
//! metadata, awaited to store and route the event.
//!
//! The builder lives below the bus, beside `Context`, and
//! publishes through [`Publisher`], a narrow handle the delivery layer
//! implements: so a handler publishes follow-ups without knowing the bus.

use std::future::{Future, IntoFuture};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::envelope::{
    Draft, HANDLER_HEADER, HeaderValue, IntoHeaderValue, RawEnvelope, SCOPE_HEADER,
    validate_header_name,
};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::future::BoxFuture;

/// What a publish needs from the bus: store and route a draft.
pub(crate) trait Publisher: Send + Sync {
    /// Runs the publish middleware, stores the draft and routes it.
    fn publish_draft(&self, draft: Draft) -> PublishFuture<'_>;
    /// Runs the publish middleware and keeps the draft until `due`.
    fn schedule_draft(&self, draft: Draft, due: DateTime<Utc>) -> PublishFuture<'_>;
    /// The bus's default CloudEvents `source`.
    fn source(&self) -> Arc<str>;
    /// The runtime the bus was built in, for [`Publish::blocking`].
    fn runtime(&self) -> &tokio::runtime::Handle;
    /// The time `deliver_after` counts from (see `delivery::Clock`).
    fn now(&self) -> DateTime<Utc>;
}

/// A publish in the making: set metadata, then `.await` it (or call
/// [`Publish::blocking`] outside async code).
///
/// Awaiting returns the stored envelope (with its id and seq) once the store
/// has it, as durably as the store promises, and every matching handler's
/// feed has it.
///
/// # Errors
///
/// [`Error::Dropped`] when a middleware refused the event,
/// [`Error::ShutDown`] after shutdown, and store errors.
#[must_use = "a publish does nothing until it is awaited"]
pub struct Publish<'a, E> {
    publisher: &'a dyn Publisher,
    event: E,
    /// `E`'s [`Publishable::into_draft`], taken where the builder is made
    /// so that awaiting it needs no bound on `E`: when `bus.publish(x)`
    /// fails because `x` is no event, the compiler says so once instead of
    /// adding that the builder is no future.
    into_draft: fn(E, Arc<str>) -> Result<Draft>,
    source: Option<Arc<str>>,
    correlation_id: Option<String>,
    causation_id: Option<String>,
    idempotency_key: Option<String>,
    subject: Option<String>,
    time: Option<DateTime<Utc>>,
    headers: Vec<(String, HeaderValue)>,
    scope: Option<String>,
    due: Option<Due>,
}

/// When a scheduled publish is due.
#[derive(Debug, Clone, Copy)]
enum Due {
    At(DateTime<Utc>),
    After(std::time::Duration),
}

impl<E: std::fmt::Debug> std::fmt::Debug for Publish<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publish")
            .field("event", &self.event)
            .field("source", &self.source)
            .field("subject", &self.subject)
            .field("correlation_id", &self.correlation_id)
            .field("causation_id", &self.causation_id)
            .field("idempotency_key", &self.idempotency_key)
            .field("time", &self.time)
            .field("headers", &self.headers)
            .field("scope", &self.scope)
            .field("due", &self.due)
            .finish_non_exhaustive()
    }
}

impl<'a, E> Publish<'a, E> {
    pub(crate) fn new(publisher: &'a dyn Publisher, event: E) -> Self
    where
        E: Publishable,
    {
        Publish {
            publisher,
            event,
            into_draft: E::into_draft,
            source: None,
            correlation_id: None,
            causation_id: None,
            idempotency_key: None,
            subject: None,
            time: None,
            headers: Vec::new(),
            scope: None,
            due: None,
        }
    }

    /// Publishes into `scope` (a scoped bus's, or the handled event's).
    pub(crate) fn within(mut self, scope: Option<&str>) -> Self {
        self.scope = scope.map(str::to_owned);
        self
    }

    /// Names the handler publishing the event ([`HANDLER_HEADER`]); a
    /// header the caller sets later under that name wins.
    pub(crate) fn published_by(mut self, handler: &str) -> Self {
        self.headers
            .push((HANDLER_HEADER.to_owned(), HeaderValue::from(handler)));
        self
    }

    /// Overrides the bus's source for this event.
    pub fn source(mut self, source: impl Into<Arc<str>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Ties the event to a request or flow.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Names the event that caused this one.
    pub fn causation_id(mut self, id: impl Into<String>) -> Self {
        self.causation_id = Some(id.into());
        self
    }

    /// A key that makes repeated publishes of the same fact recognizable.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// What the event is about within its source (the CloudEvents
    /// `subject`), such as the id of the entity it changes; stored, and a
    /// history filter ([`HistoryQuery::subject`](crate::HistoryQuery::subject)).
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Publishes the event at `time` instead of now: it is stored at once
    /// (as durably as a publish; `.await` returns then, with seq 0) and
    /// routed to handlers and subscriptions when due, with `time` as its
    /// time. A time already past publishes now. Until then it is listed
    /// by [`Bus::scheduled`](crate::Bus::scheduled) and can be cancelled
    /// by its id with [`Bus::cancel_scheduled`](crate::Bus::cancel_scheduled).
    /// On `memory://` it is lost with the process; on `sqlite://` it
    /// survives restarts, and of several processes sharing the file
    /// exactly one publishes it.
    pub fn deliver_at(mut self, time: DateTime<Utc>) -> Self {
        self.due = Some(Due::At(time));
        self
    }

    /// [`deliver_at`](Publish::deliver_at) `delay` from now.
    pub fn deliver_after(mut self, delay: std::time::Duration) -> Self {
        self.due = Some(Due::After(delay));
        self
    }

    /// When the event happened, if not now: for events recorded after the
    /// fact. The id still sorts by when it was published.
    pub fn time(mut self, time: DateTime<Utc>) -> Self {
        self.time = Some(time);
        self
    }

    /// Adds a header, checking its name here. Names are CloudEvents
    /// extension names: 1 to 20 lower-case ASCII letters or digits, and
    /// not one of the envelope's own attributes. Values are strings,
    /// integers or booleans (see [`IntoHeaderValue`]) and keep that type
    /// in the CloudEvents form.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHeader`] for a malformed or reserved name; `scope`
    /// is reserved too, set by publishing through
    /// [`Bus::scope`](crate::Bus::scope).
    ///
    /// ```
    /// # use eventbus::prelude::*;
    /// # #[derive(Event, Clone, Debug)]
    /// # #[event(topic = "order.placed")]
    /// # struct OrderPlaced { id: u64 }
    /// # async fn run(bus: Bus) -> eventbus::Result<()> {
    /// bus.publish(OrderPlaced { id: 7 })
    ///     .header("tenant", "acme")?
    ///     .header("priority", 5)?
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl IntoHeaderValue) -> Result<Self> {
        let name = name.into();
        validate_header_name(&name).map_err(Error::InvalidHeader)?;
        if name == SCOPE_HEADER {
            return Err(Error::InvalidHeader(format!(
                "header `{SCOPE_HEADER}` is the event's scope; publish through \
                 `bus.scope(..)` to set it"
            )));
        }
        self.headers.push((name, value.into_header_value()));
        Ok(self)
    }

    /// Publishes from synchronous code, blocking the thread until done.
    ///
    /// # Errors
    ///
    /// As for `.await`, plus [`Error::BlockingInsideRuntime`] when called on
    /// a thread that runs a tokio runtime (blocking there would stall it).
    pub fn blocking(self) -> Result<RawEnvelope> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::BlockingInsideRuntime);
        }
        let runtime = self.publisher.runtime().clone();
        // Inside the runtime: a publish may start its store's work at once.
        runtime.block_on(async move { self.await })
    }

    fn into_draft(self) -> Result<(&'a dyn Publisher, Draft, Option<DateTime<Utc>>)> {
        let source = self.source.unwrap_or_else(|| self.publisher.source());
        if source.is_empty() {
            return Err(Error::InvalidArgument(
                "the source of an event must not be empty".into(),
            ));
        }
        let mut draft = (self.into_draft)(self.event, source)?;
        draft.meta.correlation_id = self.correlation_id;
        draft.meta.causation_id = self.causation_id;
        draft.meta.idempotency_key = self.idempotency_key;
        draft.meta.subject = self.subject;
        if let Some(time) = self.time {
            draft.meta.time = time;
        }
        draft.meta.headers.extend(self.headers);
        if let Some(scope) = self.scope {
            draft
                .meta
                .headers
                .insert(SCOPE_HEADER.to_owned(), scope.into());
        }
        let due = match self.due {
            None => None,
            Some(Due::At(time)) => Some(time),
            Some(Due::After(delay)) => Some(
                chrono::Duration::from_std(delay)
                    .ok()
                    .and_then(|delay| self.publisher.now().checked_add_signed(delay))
                    .ok_or_else(|| {
                        Error::InvalidArgument(format!(
                            "a delay of {delay:?} ends beyond the times eventbus keeps"
                        ))
                    })?,
            ),
        };
        Ok((self.publisher, draft, due))
    }
}

impl<'a, E> IntoFuture for Publish<'a, E> {
    type Output = Result<RawEnvelope>;
    type IntoFuture = PublishFuture<'a>;

    fn into_future(self) -> Self::IntoFuture {
        match self.into_draft() {
            Ok((publisher, draft, None)) => publisher.publish_draft(draft),
            Ok((publisher, draft, Some(due))) => publisher.schedule_draft(draft, due),
            Err(e) => PublishFuture::done(Err(e)),
        }
    }
}

/// What [`Publish`] can publish: any [`Event`], or [`JsonEvent`] data
/// for a topic chosen at run time. Sealed.
pub trait Publishable: sealed::Sealed + Send {
    #[doc(hidden)]
    fn into_draft(self, source: Arc<str>) -> Result<Draft>;
}

mod sealed {
    pub trait Sealed {}
    impl<E: crate::event::Event> Sealed for E {}
    impl Sealed for crate::handler::publish::JsonEvent {}
}

impl<E: Event> Publishable for E {
    fn into_draft(self, source: Arc<str>) -> Result<Draft> {
        Ok(Draft::new(self, source))
    }
}

/// JSON data for a topic chosen at run time: what
/// [`Bus::publish_json`](crate::Bus::publish_json) publishes. Handlers and
/// subscriptions whose patterns match the topic receive it; typed ones
/// decode the data into their type (data that does not fit is a dead
/// letter, as for any stored event).
///
/// Its data is stored as version 1 of whatever type reads it, unless
/// [`Publish::event_version`] says otherwise: typed handlers of a type at
/// a later version run it through their upcasters.
#[derive(Debug)]
pub struct JsonEvent {
    topic: String,
    version: u32,
    data: std::result::Result<Box<serde_json::value::RawValue>, serde_json::Error>,
}

impl JsonEvent {
    pub(crate) fn new(topic: impl Into<String>, data: &impl serde::Serialize) -> Self {
        JsonEvent {
            topic: topic.into(),
            version: 1,
            data: serde_json::value::to_raw_value(data),
        }
    }
}

impl Publish<'_, JsonEvent> {
    /// The version of the readers' type this data is shaped as (default
    /// 1), stored as the event's `eventversion`.
    pub fn event_version(mut self, version: u32) -> Self {
        self.event.version = version;
        self
    }
}

impl Publishable for JsonEvent {
    fn into_draft(self, source: Arc<str>) -> Result<Draft> {
        let topic = crate::topic::Topic::new(self.topic)?;
        if self.version == 0 {
            return Err(Error::InvalidArgument(format!(
                "the data for `{}` has version 0; versions start at 1",
                topic.as_str()
            )));
        }
        let data = self
            .data
            .map_err(|e| e.to_string())
            // The rules imported data is held to, so that what is
            // published exports and imports back as the same data.
            .and_then(|data| crate::envelope::strict::validate(data.get()).map(|()| data))
            .map_err(|e| {
                Error::InvalidArgument(format!(
                    "the data for `{}` is not JSON: {e}",
                    topic.as_str()
                ))
            })?;
        Ok(Draft::json(topic, data, self.version, source))
    }
}

/// The future of an awaited [`Publish`].
#[must_use = "futures do nothing unless polled"]
pub struct PublishFuture<'a>(State<'a>);

enum State<'a> {
    /// Finished when it was made (a store that answers at once, a feed
    /// with room): no allocation for the common in-process publish.
    Done(Option<Result<RawEnvelope>>),
    Running(BoxFuture<'a, Result<RawEnvelope>>),
}

impl<'a> PublishFuture<'a> {
    pub(crate) fn done(result: Result<RawEnvelope>) -> Self {
        PublishFuture(State::Done(Some(result)))
    }

    pub(crate) fn running(future: impl Future<Output = Result<RawEnvelope>> + Send + 'a) -> Self {
        PublishFuture(State::Running(Box::pin(future)))
    }
}

impl Future for PublishFuture<'_> {
    type Output = Result<RawEnvelope>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match &mut self.0 {
            State::Done(result) => std::task::Poll::Ready(
                result
                    .take()
                    .expect("a PublishFuture is not polled after it completed"),
            ),
            State::Running(future) => future.as_mut().poll(cx),
        }
    }
}

impl std::fmt::Debug for PublishFuture<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishFuture").finish_non_exhaustive()
    }
}
