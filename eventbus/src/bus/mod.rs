//! The bus: the handle users hold (`handle`), its builder and the checks
//! `build()` makes, and the APIs over a running bus: history, replay and
//! dead letters.

mod builder;
mod checks;
mod dead_letters;
mod handle;
mod history;
mod projections;
mod replay;
mod sagas;
mod scheduling;

pub use builder::BusBuilder;
pub use dead_letters::DeadLetters;
pub use handle::{Bus, HandlerStats};
pub use history::HistoryQuery;
pub use replay::{Replay, ReplayReport};
