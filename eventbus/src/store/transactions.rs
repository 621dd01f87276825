//! The transaction capability: a handler's writes and its handled mark in
//! one transaction of the store's own database (`ctx.transaction`).

use std::any::Any;
use std::sync::Arc;

use super::durability::Durability;
use crate::error::Result;
use crate::future::BoxFuture;

/// A handler's effect, run inside the store's transaction; its value is
/// handed back boxed, since the capability is a trait object.
pub type TransactionFn =
    Box<dyn FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<Box<dyn Any + Send>> + Send>;

/// Transactions a handler's effect shares with the record that it handled
/// an event (see [`Store`](super::Store)), so the two commit together or
/// not at all.
pub trait HandlerTransactions: Send + Sync {
    /// Runs `f` in one transaction that, with `mark`, also records that
    /// `handler` finished the event with that seq. A panic in `f` rolls
    /// back and is resumed in the caller.
    ///
    /// With a `mark`, a store may answer before the commit, as soon as
    /// `f`'s writes and the mark are in a transaction that will commit
    /// them together (a group commit shared with other handlings); the
    /// answer's [`Durability`] then resolves once they are committed, or
    /// to an error when that commit failed and took them back.
    fn run_transaction(
        &self,
        handler: Arc<str>,
        mark: Option<u64>,
        f: TransactionFn,
    ) -> BoxFuture<'_, Result<Ran>>;

    /// Runs `reset` and moves `handler`'s checkpoint back to the start of
    /// history, forgetting what it recorded as handled, in one
    /// transaction: a projection's tables and its position start over
    /// together.
    fn restart_handler(&self, handler: &str, reset: TransactionFn) -> BoxFuture<'_, Result<()>>;
}

/// What [`HandlerTransactions::run_transaction`] came to: the closure's
/// value, and when its writes are committed.
#[derive(Debug)]
pub struct Ran {
    /// What the closure returned.
    pub value: Box<dyn Any + Send>,
    /// When the writes (with the mark) are committed.
    pub durability: Durability,
}
