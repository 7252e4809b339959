//! How a log is opened: durability, group-commit limits and the clock.

use std::fmt;
use std::sync::Arc;

use super::clock::{Clock, SystemClock};

/// Requests one group-commit batch takes at most, by default.
pub const BATCH_REQUESTS_MAX_DEFAULT: usize = 1_024;
/// Records one group-commit batch takes at most, by default. A batch stops
/// taking requests once it holds this many records; one request may carry
/// it over by up to [`events::limits::EVENTS_PER_COMMAND_MAX`] − 1.
pub const BATCH_RECORDS_MAX_DEFAULT: usize = 4_096;
/// Requests that may wait in the writer's queue, by default. Senders wait
/// (block, or await) while it is full.
pub const CHANNEL_CAPACITY_REQUESTS_DEFAULT: usize = 8_192;
/// The block cache all of a store's column families share, by default, in
/// bytes: table-file blocks (the log's records, the read models' rows, the
/// indexes) read back from disk are kept here, and nowhere else, so a
/// store's cached reads stay within one budget however many column
/// families it has (RocksDB's default is a separate 32 MiB cache for each,
/// 17 of them for an engine). 64 MiB holds the recent blocks a host
/// rereads (the latest messages, live idempotency entries) with room to
/// spare on a small machine; set it with [`LogOptions::block_cache_bytes`].
pub const BLOCK_CACHE_BYTES_DEFAULT: usize = 64 * 1024 * 1024;
/// The memory all of a store's memtables may hold together, by default, in
/// bytes (RocksDB's `db_write_buffer_size`): past it, RocksDB flushes the
/// largest memtable to a table file. A soft bound: a memtable being
/// flushed counts until it is on disk, and each column family written to
/// holds at least one arena block (an eighth of its memtable size). Without a budget each of the 17
/// column families of an engine may fill its own 64 MiB memtable (and
/// RSS grew by 132 MiB of memtables over a million messages); 64 MiB keeps
/// the write path's memory bounded beside the block cache, while a batch
/// of thousands of records still lands in memory. Set it with
/// [`LogOptions::memtable_budget_bytes`].
pub const MEMTABLE_BUDGET_BYTES_DEFAULT: usize = 64 * 1024 * 1024;
/// Records verified at the tail of the chain when a log is opened
/// (contiguous positions, decode and self-hash, `prev_hash` links).
pub const TAIL_VERIFY_RECORDS: u64 = 1_024;

/// When a batch counts as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Each batch is written to the write-ahead log and fsynced before any
    /// caller in it is acknowledged: an acknowledged append survives power
    /// loss and OS crashes.
    #[default]
    Sync,
    /// Each batch is written to the write-ahead log without fsync: an
    /// acknowledged append survives a crash of the process, but the last
    /// moments of writes may be lost if the machine loses power.
    Buffered,
}

/// What the hidden pre-write test hook is told about a batch.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteInfo {
    /// Whether the write is issued with `sync = true`.
    pub sync: bool,
    /// Requests in the batch.
    pub requests: usize,
    /// Records in the batch.
    pub records: usize,
    /// The position of the batch's first record.
    pub first_position: u64,
}

/// The hidden pre-write test hook: called on the writer thread right before
/// a batch is written; an `Err` is treated as a failed write.
#[doc(hidden)]
pub type BeforeWriteHook = Arc<dyn Fn(&WriteInfo) -> Result<(), String> + Send + Sync>;

/// Options for [`super::EventLog::open`], built fluently from
/// [`LogOptions::default`].
#[derive(Clone)]
pub struct LogOptions {
    pub(crate) durability: Durability,
    pub(crate) batch_requests_max: usize,
    pub(crate) batch_records_max: usize,
    pub(crate) channel_capacity_requests: usize,
    pub(crate) before_write: Option<BeforeWriteHook>,
    pub(crate) memtable_bytes: Option<usize>,
    pub(crate) block_cache_bytes: usize,
    pub(crate) memtable_budget_bytes: usize,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            durability: Durability::default(),
            batch_requests_max: BATCH_REQUESTS_MAX_DEFAULT,
            batch_records_max: BATCH_RECORDS_MAX_DEFAULT,
            channel_capacity_requests: CHANNEL_CAPACITY_REQUESTS_DEFAULT,
            before_write: None,
            memtable_bytes: None,
            block_cache_bytes: BLOCK_CACHE_BYTES_DEFAULT,
            memtable_budget_bytes: MEMTABLE_BUDGET_BYTES_DEFAULT,
            clock: Arc::new(SystemClock),
        }
    }
}

impl fmt::Debug for LogOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogOptions")
            .field("durability", &self.durability)
            .field("batch_requests_max", &self.batch_requests_max)
            .field("batch_records_max", &self.batch_records_max)
            .field("channel_capacity_requests", &self.channel_capacity_requests)
            .field("before_write", &self.before_write.is_some())
            .field("memtable_bytes", &self.memtable_bytes)
            .field("block_cache_bytes", &self.block_cache_bytes)
            .field("memtable_budget_bytes", &self.memtable_budget_bytes)
            .field("clock", &self.clock)
            .finish()
    }
}

impl LogOptions {
    /// Sets the durability (default [`Durability::Sync`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the most requests one batch takes (default
    /// [`BATCH_REQUESTS_MAX_DEFAULT`]; values below 1 are taken as 1).
    pub fn batch_requests_max(mut self, requests: usize) -> Self {
        self.batch_requests_max = requests.max(1);
        self
    }

    /// Sets the record count after which a batch takes no more requests
    /// (default [`BATCH_RECORDS_MAX_DEFAULT`]; values below 1 are taken
    /// as 1).
    pub fn batch_records_max(mut self, records: usize) -> Self {
        self.batch_records_max = records.max(1);
        self
    }

    /// Sets how many requests may wait in the writer's queue (default
    /// [`CHANNEL_CAPACITY_REQUESTS_DEFAULT`]; values below 1 are taken
    /// as 1).
    pub fn channel_capacity_requests(mut self, requests: usize) -> Self {
        self.channel_capacity_requests = requests.max(1);
        self
    }

    /// Test seam: a hook called on the writer thread right before each
    /// batch write. Blocking in it holds the batch back; returning `Err`
    /// makes the writer treat the batch as failed (nothing is written).
    #[doc(hidden)]
    pub fn before_write_hook(mut self, hook: BeforeWriteHook) -> Self {
        self.before_write = Some(hook);
        self
    }

    /// Test seam: the memtable size of every column family, in bytes
    /// (RocksDB's `write_buffer_size`; default RocksDB's 64 MiB), so a test
    /// can make flushes happen after a few appends.
    #[doc(hidden)]
    pub fn memtable_bytes(mut self, bytes: usize) -> Self {
        self.memtable_bytes = Some(bytes);
        self
    }

    /// Sets the budget of the one block cache every column family of the
    /// store shares, in bytes (default [`BLOCK_CACHE_BYTES_DEFAULT`]). It
    /// bounds the memory RocksDB spends on blocks read back from table
    /// files; memtables are separate. A budget of 0 still works: every
    /// read then goes to the operating system's page cache.
    pub fn block_cache_bytes(mut self, bytes: usize) -> Self {
        self.block_cache_bytes = bytes;
        self
    }

    /// Sets the memory all of the store's memtables may hold together, in
    /// bytes (default [`MEMTABLE_BUDGET_BYTES_DEFAULT`]): past it, RocksDB
    /// flushes the largest one to disk. It bounds the write path's memory
    /// as the block cache bounds reads'. 0 means no budget (each column
    /// family's memtable is then bounded only by its own size).
    pub fn memtable_budget_bytes(mut self, bytes: usize) -> Self {
        self.memtable_budget_bytes = bytes;
        self
    }

    /// Sets the clock the writer stamps records with (default
    /// [`SystemClock`], the wall clock). The engine's conversation timers
    /// read the same clock, so a [`super::clock::TestClock`] here lets a
    /// test move time for both without sleeping.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The configured durability.
    pub fn get_durability(&self) -> Durability {
        self.durability
    }

    /// The configured clock (a shared handle on it).
    pub fn get_clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }
}
