//! The boxed future and stream types that trait objects return (stores,
//! handlers), shared by every layer.

use std::future::Future;
use std::pin::Pin;

use futures_core::Stream;

/// A boxed, sendable future, as handler adapters and stores return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A boxed stream of history results.
pub type BoxStream<'a, T> = Pin<Box<dyn Stream<Item = T> + Send + 'a>>;
