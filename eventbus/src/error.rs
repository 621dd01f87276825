//! The crate's error type: one enum whose variants name what happened,
//! each keeping the error beneath it as its source, and [`ErrorKind`], what
//! a caller can do about it.

use crate::event::CodecError;
use eventbus_topic::InvalidTopic;

/// A specialized `Result` for eventbus operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from beneath eventbus (rusqlite, async-nats, io, serde), kept
/// as the [`source`](std::error::Error::source) of ours.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a caller can do about an [`Error`]: [`Error::kind`] sorts every
/// error into one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Something given was malformed (a topic, URL, header, event, value):
    /// fix it; retrying the same will fail the same way.
    InvalidInput,
    /// The bus or a store is set up wrongly (missing state, duplicate
    /// handlers, a credentials file): fix the configuration.
    Configuration,
    /// What was asked for does not exist (a store, a dead letter, a
    /// handler).
    NotFound,
    /// The store cannot be reached or is busy or closed: retrying later
    /// may succeed.
    Unavailable,
    /// Stored data cannot be read back.
    Corrupt,
    /// The store does not offer what was asked of it.
    Unsupported,
    /// The bus is shut down or shutting down.
    ShutDown,
    /// Someone else changed an entity first: reload it and decide again.
    Conflict,
    /// An operation failed for another reason: the source says why.
    Failed,
}

/// Everything that can go wrong in eventbus, each message saying what
/// happened and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A topic or pattern string is malformed.
    #[error(transparent)]
    InvalidTopic(#[from] InvalidTopic),
    /// A pattern matches none of an event type's topics.
    #[error("pattern `{pattern}` matches no topic of event type `{event}`; its topics are: {}", .topics.join(", "))]
    PatternMatchesNothing {
        /// The pattern given.
        pattern: String,
        /// The event type's name.
        event: &'static str,
        /// The event type's topics.
        topics: &'static [&'static str],
    },
    /// An event could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// An event cannot be stored as it is; nothing was stored.
    #[error("the event cannot be stored: {reason}")]
    InvalidEvent {
        /// What is wrong with it.
        reason: String,
    },
    /// The store does not offer what was asked of it.
    #[error("the store {store} does not offer {capability}")]
    Unsupported {
        /// The store, described without secrets.
        store: String,
        /// What it does not offer.
        capability: &'static str,
    },
    /// A store URL could not be understood.
    #[error("invalid store URL `{url}`: {reason}")]
    InvalidStoreUrl {
        /// The URL, with any password removed.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store failed; `source`, when there is one, is why.
    #[error("{store} store: {message}")]
    Store {
        /// Which store (`memory`, `sqlite`, `nats`).
        store: &'static str,
        /// What failed.
        message: String,
        /// The store client's own error.
        #[source]
        source: Option<BoxError>,
    },
    /// The store cannot be reached, or is busy or closed; retrying later
    /// may succeed.
    #[error("{store} store is unavailable: {message}; try again later")]
    Unavailable {
        /// Which store.
        store: &'static str,
        /// What could not be done.
        message: String,
        /// The store client's own error.
        #[source]
        source: Option<BoxError>,
    },
    /// Something asked for does not exist.
    #[error("there is no {what}")]
    NotFound {
        /// What was asked for, such as `dead letter 7`.
        what: String,
    },
    /// A value given to an operation is out of range or not allowed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The operating system refused something eventbus needs (a thread).
    #[error("{doing} failed")]
    Io {
        /// What eventbus was doing.
        doing: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// [`store::open_existing`](crate::store::open_existing) found no store
    /// where the URL points; nothing was created.
    #[error("{message}")]
    StoreNotFound {
        /// Which store (`memory`, `sqlite`, `nats`).
        store: &'static str,
        /// What is missing, where, and what to check.
        message: String,
    },
    /// A handler did not catch up with history in time.
    #[error(
        "handler `{handler}` has not caught up with seq {target} after {seconds}s: it has \
         finished everything up to seq {at}"
    )]
    NotCaughtUp {
        /// The handler.
        handler: String,
        /// The seq of its newest event it was to finish.
        target: u64,
        /// What it had finished.
        at: u64,
        /// How long was waited.
        seconds: f64,
    },
    /// An entity's stream was not at the version a save expected: another
    /// writer appended to it since it was loaded.
    #[error(
        "stream `{stream}` is at version {actual}, not {expected} as expected: it changed since \
         it was loaded; load it again and retry the command"
    )]
    Conflict {
        /// The stream, `kind/id`.
        stream: String,
        /// The version the save expected.
        expected: u64,
        /// The version the stream is at.
        actual: u64,
    },
    /// A stored event cannot be read back (schema drift, hand edits).
    #[error("stored event seq {seq} cannot be read: {reason}")]
    BadRow {
        /// The event's seq.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Two handlers share a name.
    #[error(
        "two handlers are named `{name}`: one at {first}, one at {second}; give one a distinct `#[handler(name = \"...\")]`"
    )]
    DuplicateHandler {
        /// The shared name.
        name: String,
        /// Where the first is declared.
        first: String,
        /// Where the second is declared.
        second: String,
    },
    /// Two event types claim the same topic, which makes decoding ambiguous.
    #[error(
        "topic `{topic}` is claimed by two event types, `{first}` and `{second}`; give one of them another topic"
    )]
    TopicConflict {
        /// The contested topic.
        topic: String,
        /// One event type.
        first: String,
        /// The other event type.
        second: String,
    },
    /// Handlers ask for shared state that no one provided.
    #[error("handlers need state that was not provided: {}; add `.state(value)` of each type to the builder", .missing.join(", "))]
    MissingState {
        /// `type (needed by handler)` for each missing state.
        missing: Vec<String>,
    },
    /// `ctx.state::<T>()` asked for a type the bus does not hold.
    #[error("no state of type `{0}` was provided; add `.state(value)` of that type to the builder")]
    StateNotProvided(&'static str),
    /// A builder setting is out of range or malformed.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A header name is not a valid CloudEvents extension name.
    #[error("{0}")]
    InvalidHeader(String),
    /// No handler has that name.
    #[error("no handler is named `{name}`; registered handlers: {}", if .known.is_empty() { "none".to_owned() } else { .known.join(", ") })]
    UnknownHandler {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: Vec<String>,
    },
    /// A publish middleware dropped the event; nothing was stored.
    #[error("middleware `{layer}` dropped the event; nothing was stored")]
    Dropped {
        /// The middleware's name.
        layer: String,
    },
    /// The bus is shut down (or shutting down) and takes no new work.
    #[error("the bus is shut down and takes no new events")]
    ShutDown,
    /// A blocking call was made on a thread that runs async tasks.
    #[error(
        "`blocking()` was called inside a tokio runtime, where blocking would stall other tasks; use `.await` there"
    )]
    BlockingInsideRuntime,
    /// The bus was built outside a tokio runtime.
    #[error(
        "the bus must be built inside a tokio runtime (`#[tokio::main]` or `Runtime::block_on`)"
    )]
    NoRuntime,
    #[cfg(feature = "sqlite")]
    /// The closure given to [`Context::transaction`](crate::Context::transaction)
    /// returned an error; the transaction was rolled back.
    #[error(
        "the transaction of handler `{handler}` failed and was rolled back, so none of its writes are stored: {source}"
    )]
    Transaction {
        /// The handler whose transaction it was.
        handler: String,
        /// The closure's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A handler asked for a second transaction for an event it already
    /// committed one for.
    #[error(
        "handler `{handler}` already committed a transaction for event seq {seq}; a handling commits at most one, so put all its writes in one `ctx.transaction` closure"
    )]
    AlreadyHandled {
        /// The handler.
        handler: String,
        /// The event's seq.
        seq: u64,
    },
    /// [`Context::transaction`](crate::Context::transaction) was called on
    /// a bus whose store is not SQLite.
    #[error(
        "`ctx.transaction` needs a `sqlite://` store, but this bus runs on `{store}`; build the bus with `.store(\"sqlite://...\")`, or apply the effect without a transaction"
    )]
    TransactionNeedsSqlite {
        /// The store the bus runs on.
        store: String,
    },
    /// Several problems found together (by `build()`), each one an error
    /// of its own; its kind is the first one's.
    #[error("{} problems: {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Problems(Vec<Error>),
    /// Shutdown gave up waiting for handlers.
    #[error("shutdown timed out after {seconds:.1}s with handlers still running: {}", .handlers.join(", "))]
    ShutdownTimedOut {
        /// The timeout.
        seconds: f64,
        /// Handlers that had not finished.
        handlers: Vec<String>,
    },
}

impl Error {
    /// What a caller can do about this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidTopic(_)
            | Error::PatternMatchesNothing { .. }
            | Error::Codec(_)
            | Error::InvalidEvent { .. }
            | Error::InvalidStoreUrl { .. }
            | Error::InvalidHeader(_)
            | Error::InvalidArgument(_) => ErrorKind::InvalidInput,
            Error::DuplicateHandler { .. }
            | Error::TopicConflict { .. }
            | Error::MissingState { .. }
            | Error::StateNotProvided(_)
            | Error::Config(_)
            | Error::NoRuntime
            | Error::BlockingInsideRuntime => ErrorKind::Configuration,
            Error::StoreNotFound { .. } | Error::NotFound { .. } | Error::UnknownHandler { .. } => {
                ErrorKind::NotFound
            }
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::BadRow { .. } => ErrorKind::Corrupt,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::NotCaughtUp { .. } => ErrorKind::Unavailable,
            Error::Unsupported { .. } | Error::TransactionNeedsSqlite { .. } => {
                ErrorKind::Unsupported
            }
            Error::ShutDown | Error::ShutdownTimedOut { .. } => ErrorKind::ShutDown,
            Error::Problems(problems) => problems.first().map_or(ErrorKind::Failed, Error::kind),
            _ => ErrorKind::Failed,
        }
    }

    /// A store failure described in words, with no error beneath it.
    pub(crate) fn store(store: &'static str, message: impl Into<String>) -> Self {
        Error::Store {
            store,
            message: message.into(),
            source: None,
        }
    }

    /// A store failure, keeping the client's error as its source.
    #[cfg(any(feature = "sqlite", feature = "nats", feature = "redis"))]
    pub(crate) fn store_source(
        store: &'static str,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Store {
            store,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A store that cannot do anything now, with the error beneath it.
    #[cfg(any(feature = "sqlite", feature = "nats", feature = "redis"))]
    pub(crate) fn unavailable(
        store: &'static str,
        message: impl Into<String>,
        source: Option<BoxError>,
    ) -> Self {
        Error::Unavailable {
            store,
            message: message.into(),
            source,
        }
    }

    /// One error for a list of problems: `None` for none, the error itself
    /// for one, [`Error::Problems`] for more.
    pub(crate) fn from_problems(mut problems: Vec<Error>) -> Option<Error> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            _ => Some(Error::Problems(problems)),
        }
    }
}
