//! Colloquy's engine core: the durable hash-chained event log, command
//! handling and fan-out.

pub mod log;
