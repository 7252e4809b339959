//! [`LogMetrics`]: the writer's counters, read with
//! [`super::EventLog::metrics`].
//!
//! The writer thread adds each batch's counts once, after the batch is
//! answered ([`LogCounters::record_batch`]); readers load the atomics
//! without taking any lock, so reading the metrics never slows the writer.
//! Counts are per process: they start at zero on every open.

use std::sync::atomic::{AtomicU64, Ordering};

/// The log writer's counters since the log was opened. All only grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogMetrics {
    /// Group-commit batches written to RocksDB (batches with at least one
    /// record that became durable).
    pub batches: u64,
    /// Append requests answered, whatever the answer (appended, duplicate,
    /// refused, failed).
    pub requests: u64,
    /// Records appended and durable.
    pub records: u64,
    /// Encoded bytes of those records (the log's payload, without the
    /// indexes and the state machine's own writes).
    pub bytes: u64,
    /// Requests the state machine refused ([`super::AppendError::Rejected`]).
    pub rejections: u64,
    /// Requests answered as duplicates of an applied command id
    /// ([`super::AppendOutcome::Duplicate`]).
    pub duplicates: u64,
    /// Batches RocksDB refused (a write stall or a full disk outlasting
    /// [`super::WRITE_STALL_WAIT_MAX_MS`]); nothing of them was written.
    pub refused_batches: u64,
    /// Batch writes that failed and poisoned the log.
    pub failed_batches: u64,
    /// Microseconds spent in RocksDB writes of durable batches (fsync
    /// included under [`super::Durability::Sync`]), summed.
    pub write_micros_total: u64,
    /// The longest single batch write, in microseconds.
    pub write_micros_max: u64,
}

/// What one answered batch adds to the counters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BatchCounts {
    pub(crate) written: bool,
    pub(crate) refused: bool,
    pub(crate) failed: bool,
    pub(crate) requests: u64,
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) rejections: u64,
    pub(crate) duplicates: u64,
    pub(crate) write_micros: u64,
}

/// The live counters behind [`LogMetrics`], shared by the log handle and
/// its writer.
#[derive(Debug, Default)]
pub(crate) struct LogCounters {
    batches: AtomicU64,
    requests: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    rejections: AtomicU64,
    duplicates: AtomicU64,
    refused_batches: AtomicU64,
    failed_batches: AtomicU64,
    write_micros_total: AtomicU64,
    write_micros_max: AtomicU64,
}

impl LogCounters {
    /// Adds one answered batch's counts (writer thread only).
    pub(crate) fn record_batch(&self, c: &BatchCounts) {
        let add = |counter: &AtomicU64, n: u64| {
            counter.fetch_add(n, Ordering::Relaxed);
        };
        add(&self.batches, u64::from(c.written));
        add(&self.refused_batches, u64::from(c.refused));
        add(&self.failed_batches, u64::from(c.failed));
        add(&self.requests, c.requests);
        add(&self.records, c.records);
        add(&self.bytes, c.bytes);
        add(&self.rejections, c.rejections);
        add(&self.duplicates, c.duplicates);
        if c.written {
            add(&self.write_micros_total, c.write_micros);
            self.write_micros_max
                .fetch_max(c.write_micros, Ordering::Relaxed);
        }
    }

    /// The counters, read now.
    pub(crate) fn snapshot(&self) -> LogMetrics {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        LogMetrics {
            batches: get(&self.batches),
            requests: get(&self.requests),
            records: get(&self.records),
            bytes: get(&self.bytes),
            rejections: get(&self.rejections),
            duplicates: get(&self.duplicates),
            refused_batches: get(&self.refused_batches),
            failed_batches: get(&self.failed_batches),
            write_micros_total: get(&self.write_micros_total),
            write_micros_max: get(&self.write_micros_max),
        }
    }
}
