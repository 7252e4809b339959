//! The durable, hash-chained, group-committed event log.
mod state;
pub use state::*;
