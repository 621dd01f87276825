//! Middleware: ordered layers around publishing and around each handling.
//!
//! A layer can observe (logging, metrics), transform (add a header, rewrite
//! the envelope a handler sees) or drop (refuse a publish; skip a handling).
//! Layers run in the order they were added, the first outermost. The
//! [`TracingLayer`] is on by default.

use std::sync::Arc;

use tracing::Instrument;

use crate::envelope::{Draft, RawEnvelope};
use crate::future::BoxFuture;
use crate::handler::{Context, HandlerCall, HandlingError};

/// What a publish layer decides about a draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on to the next layer and the store.
    Continue,
    /// Refuse the event: nothing is stored, and `publish()` returns
    /// [`Error::Dropped`](crate::Error::Dropped) naming the layer.
    Drop,
}

/// A layer around publishing and handling. Both methods default to passing
/// everything through, so a layer implements only what it needs.
///
/// # Examples
///
/// ```
/// use eventbus::middleware::{Flow, Middleware};
/// use eventbus::Draft;
///
/// /// Tags every event with the tenant of this service.
/// struct Tenant;
///
/// impl Middleware for Tenant {
///     fn name(&self) -> &str { "tenant" }
///     fn on_publish(&self, draft: &mut Draft) -> Flow {
///         draft.set_header("tenant", "acme");
///         Flow::Continue
///     }
/// }
/// ```
pub trait Middleware: Send + Sync + 'static {
    /// The layer's name, used in errors and logs.
    fn name(&self) -> &str;

    /// Called before an event is stored; may edit the draft or drop it.
    fn on_publish(&self, draft: &mut Draft) -> Flow {
        let _ = draft;
        Flow::Continue
    }

    /// Wraps one handling attempt. Call `next.run(envelope)` to go on (with
    /// the same or a transformed envelope), or return without calling it to
    /// skip the handling.
    fn around_handling<'a>(
        &'a self,
        envelope: RawEnvelope,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), HandlingError>> {
        next.run(envelope)
    }
}

/// The rest of the chain: the remaining layers, then the handler itself.
pub struct Next<'a> {
    layers: &'a [Arc<dyn Middleware>],
    call: &'a HandlerCall,
    ctx: Context,
}

impl std::fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field(
                "layers",
                &self.layers.iter().map(|l| l.name()).collect::<Vec<_>>(),
            )
            .field("ctx", &self.ctx)
            .finish_non_exhaustive()
    }
}

impl<'a> Next<'a> {
    pub(crate) fn new(
        layers: &'a [Arc<dyn Middleware>],
        call: &'a HandlerCall,
        ctx: Context,
    ) -> Self {
        Next { layers, call, ctx }
    }

    /// The handling's context: handler name, attempt, the bus.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Runs the remaining layers and the handler on `envelope`.
    pub fn run(self, envelope: RawEnvelope) -> BoxFuture<'a, Result<(), HandlingError>> {
        match self.layers.split_first() {
            None => (self.call)(envelope, self.ctx),
            Some((layer, rest)) => layer.around_handling(
                envelope,
                Next {
                    layers: rest,
                    call: self.call,
                    ctx: self.ctx,
                },
            ),
        }
    }
}

/// Puts every handling in a `tracing` span named `handle` carrying the
/// handler, topic, event id, seq, correlation id and attempt.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingLayer;

impl Middleware for TracingLayer {
    fn name(&self) -> &str {
        "tracing"
    }

    fn around_handling<'a>(
        &'a self,
        envelope: RawEnvelope,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), HandlingError>> {
        let span = tracing::info_span!(
            "handle",
            handler = next.context().handler(),
            topic = envelope.topic(),
            event_id = %envelope.id(),
            seq = envelope.seq(),
            correlation_id = envelope.correlation_id(),
            attempt = next.context().attempt(),
        );
        // Without a subscriber listening, skip the extra future around the handling.
        if span.is_disabled() {
            return next.run(envelope);
        }
        Box::pin(next.run(envelope).instrument(span))
    }
}
