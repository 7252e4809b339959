//! Colloquy's event log: durable, hash-chained and group-committed.
//!
//! This crate knows records, not commands: it is generic over a
//! [`StateMachine`] that decides what a request appends and folds what was
//! appended. It depends on `events` (the record format) and nothing else of
//! Colloquy's; `engine-core` plugs the command handlers and read models in.
//!
//! [`EventLog`] stores [`events::Record`]s in RocksDB (layout in [`keys`]),
//! keyed by a dense global position starting at 0. Each record's
//! `prev_hash` is the previous record's hash, so the log is one hash chain
//! that [`EventLog::verify`] (or a [`LogReader`] in a tool) can check end to
//! end.
//!
//! There is one read side, for the engine and for tools alike: every read
//! decodes records through [`scan::decode_checked`] (the in-place parser of
//! [`events::fast`], with the authoritative decoder's verdict), and every
//! walk is [`scan`]'s — the in-order [`scan::SeqScan`] (behind
//! [`RecordIter`]) or the segmented parallel [`scan::par_scan`] (behind
//! [`EventLog::verify`] and [`LogReader::verify`]). replay-tool wraps a
//! [`LogReader`] (opened with [`ReaderFamilies::AllPresent`] to see the
//! read models too) and uses these walks; it opens no RocksDB handle and
//! parses no record of its own. A [`LogReader`]'s open classifies the
//! damage it meets (a table file RocksDB refuses, or one it reports
//! corrupt while the head is compared with the head marker) as
//! [`OpenError::Damaged`] naming the file.
//!
//! Appends go through a single writer thread that groups whatever is queued
//! into one RocksDB `WriteBatch` (group commit). Per request it checks the
//! idempotency key, asks the [`StateMachine`] to decide, checks the
//! optional expected stream version, seals and stages the records and the
//! state machine's read-model writes. A caller is answered only after its
//! batch is written with the configured [`Durability`].
//!
//! Guarantees:
//! - positions are dense and unique; a request's records are contiguous;
//! - a request is applied entirely or not at all;
//! - a command id that appended records is remembered in its idempotency
//!   scope (the service the command addresses, or the account scope) for
//!   the life of the log (it is never expired): a retry of the same
//!   command answers [`AppendOutcome::Duplicate`] with the original
//!   position, another command reusing the id gets
//!   [`AppendError::IdempotencyKeyReused`], and other scopes never see it;
//! - the index column families (stream index, stream versions, commands)
//!   can be checked against the log and re-derived from it ([`indexes`]);
//! - a batch is answered only once the head marker ([`head_marker`]) covers
//!   it, so an open that finds the log shorter than the marker refuses the
//!   store instead of silently losing acknowledged records;
//! - after a failed write the log is poisoned and refuses appends until it
//!   is reopened; nothing of the failed batch is visible and the head does
//!   not advance.
//!
//! Time: records are stamped by the writer from the [`Clock`] of
//! [`LogOptions::clock`] (the wall clock by default; [`TestClock`] moves
//! only when a test moves it), never earlier than their predecessor.
//!
//! Observability: every batch is a `log_batch` tracing span and adds to the
//! counters of [`EventLog::metrics`] ([`LogMetrics`]).

#![warn(missing_docs)]

mod append;
mod backoff;
pub mod clock;
mod error;
mod event_log;
pub mod files;
pub mod head_marker;
pub mod indexes;
pub mod keys;
mod metrics;
mod options;
mod read;
mod reader;
pub mod scan;
mod state;
pub mod storage;
mod writer;

pub use append::{AppendOutcome, AppendRequest, Appended, CommittedRecords};
pub use backoff::Backoff;
pub use clock::{Clock, ClockListener, SystemClock, TestClock};
pub use error::{
    hash_hex, AppendError, ChainFault, FaultKind, HexHash, LogFileFault, OpenError, ReadError,
};
pub use event_log::EventLog;
pub use files::{DamageKind, FileDamage};
pub use head_marker::{HeadMarkerStatus, HEAD_MARKER_FILE, HEAD_MARKER_SYNC_INTERVAL_MS};
pub use metrics::LogMetrics;
#[doc(hidden)]
pub use options::{BeforeWriteHook, WriteInfo};
pub use options::{
    Durability, LogOptions, BATCH_RECORDS_MAX_DEFAULT, BATCH_REQUESTS_MAX_DEFAULT,
    BLOCK_CACHE_BYTES_DEFAULT, CHANNEL_CAPACITY_REQUESTS_DEFAULT, MEMTABLE_BUDGET_BYTES_DEFAULT,
    TAIL_VERIFY_RECORDS,
};
pub use read::{LogHead, RecordIter, StreamIter, VerifyReport};
pub use reader::{LogReader, ReaderFamilies, ReaderMode};
pub use scan::ScanOptions;
pub use state::*;
pub use storage::{
    StorageCheck, TornTail, BLOOM_FILTER_BITS_PER_KEY, MEMTABLE_BLOOM_RATIO, WAL_BYTES_MAX,
    WRITE_STALL_WAIT_MAX_MS,
};
