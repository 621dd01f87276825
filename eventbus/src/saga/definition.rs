//! What `#[saga]` generates: the `Saga` impl, naming the saga and
//! describing each step for the runtime (and the test fixture) to run.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::context::SagaContext;
use crate::envelope::RawEnvelope;
use crate::event::CodecError;
use crate::handler::HandlingError;

/// A saga type: its state, its name and its steps. Implemented by
/// `#[saga]`; the state is the type itself, kept with serde between steps.
pub trait Saga: Default + Serialize + DeserializeOwned + Send + 'static {
    /// The saga's name: where its instances are kept and what its step
    /// handlers are named after. Changing it orphans the open instances.
    const NAME: &'static str;

    /// The steps, one per `#[start]` and `#[on]` method.
    #[doc(hidden)]
    const STEPS: &'static [StepDef<Self>];
}

/// Whether a step starts an instance or continues one.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// `#[start]`: makes the instance; ignored when it exists.
    Start,
    /// `#[on]`: continues an open instance; ignored without one.
    On,
}

/// One `#[start]` or `#[on]` method, as `#[saga]` describes it.
#[doc(hidden)]
pub struct StepDef<S> {
    /// The method's name.
    pub method: &'static str,
    /// The handler's name, `<saga>::<method>`.
    pub handler: &'static str,
    /// Whether it starts the instance.
    pub kind: StepKind,
    /// The event type's name.
    pub event: &'static str,
    /// The event type's topics.
    pub topics: &'static [&'static str],
    /// The `topic = "..."` pattern of the attribute.
    pub pattern: Option<&'static str>,
    /// The correlation value of an event, as text.
    pub key: fn(&RawEnvelope) -> std::result::Result<String, CodecError>,
    /// Decodes the event and calls the method.
    pub run: fn(&mut S, &RawEnvelope, &mut SagaContext) -> std::result::Result<(), HandlingError>,
}

impl<S> std::fmt::Debug for StepDef<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepDef")
            .field("handler", &self.handler)
            .field("kind", &self.kind)
            .field("event", &self.event)
            .field("pattern", &self.pattern)
            .finish_non_exhaustive()
    }
}
