//! The log's typed errors.

use std::fmt;
use std::path::PathBuf;

use events::{CodecError, CommandId, Hash, ServiceSid};

/// Formats a hash as 64 lowercase hex digits (through [`events::hex`], the
/// one hex encoder). Never fails.
pub fn hash_hex(hash: &Hash) -> String {
    events::hex::encode(hash)
}

/// A hash printed as hex in error messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexHash(pub Hash);

impl fmt::Debug for HexHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hash_hex(&self.0))
    }
}

impl fmt::Display for HexHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hash_hex(&self.0))
    }
}

/// What is wrong with the stored log at one position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultKind {
    /// A `log` key is not an 8-byte big-endian position. The fault's
    /// position is the one expected at that place.
    #[error("a log key is {len} bytes, not an 8-byte position")]
    MalformedKey {
        /// The key's length, in bytes.
        len: usize,
    },
    /// The record at this position is missing: the next stored key is a
    /// later position.
    #[error("record missing: the next stored position is {next_found}")]
    Gap {
        /// The next position that is stored.
        next_found: u64,
    },
    /// The stored bytes do not decode as a record (length, version,
    /// malformed body or trailing bytes).
    #[error("record does not decode: {0}")]
    Decode(CodecError),
    /// The record decodes but its stored hash does not match its contents.
    #[error("stored hash does not match the record's contents")]
    HashMismatch,
    /// The record's payload does not decode as an event of its header's
    /// conversation.
    #[error("payload does not decode as an event: {0}")]
    Event(CodecError),
    /// The record's header names a different position than its key.
    #[error("stored under this position but its header says {header_position}")]
    KeyHeaderMismatch {
        /// The position in the record's header.
        header_position: u64,
    },
    /// The record's `prev_hash` is not the previous record's hash (or
    /// [`events::GENESIS_HASH`] at position 0).
    #[error("prev_hash {found} does not link to the previous record's hash {expected}")]
    BrokenLink {
        /// The hash the chain expects.
        expected: HexHash,
        /// The record's `prev_hash`.
        found: HexHash,
    },
    /// A `stream` index entry points at a position with no record.
    #[error("the stream index points at a missing record")]
    DanglingIndex,
    /// A `stream` index entry points at a record of another stream.
    #[error("the stream index points at a record of another service or conversation")]
    IndexMismatch,
}

/// A fault in the stored log, naming the first bad position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log fault at position {position}: {kind}")]
pub struct ChainFault {
    /// The first position found bad.
    pub position: u64,
    /// What is wrong there.
    pub kind: FaultKind,
}

/// Why reading or verifying the log failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// RocksDB failed to read.
    #[error("storage error: {0}")]
    Storage(#[from] rocksdb::Error),
    /// The stored log is damaged.
    #[error(transparent)]
    Fault(#[from] ChainFault),
    /// A value in one of the log's index column families is malformed.
    #[error("malformed value in column family {column_family}: {detail}")]
    Corrupt {
        /// The column family.
        column_family: &'static str,
        /// What is malformed.
        detail: String,
    },
    /// One of the store's files is damaged (RocksDB reported corruption
    /// in it, or the view lacks a file the MANIFEST lists as live): names
    /// the file and the first log position affected, where known.
    #[error(transparent)]
    Damaged(Box<super::files::FileDamage>),
    /// A store file other than through RocksDB (`CURRENT`, the MANIFEST)
    /// could not be read.
    #[error("cannot read {}: {detail}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's reason.
        detail: String,
    },
}

/// Why a log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// RocksDB failed to open or read the store.
    #[error("storage error: {0}")]
    Storage(#[from] rocksdb::Error),
    /// A store opened read-only or as a secondary lacks one of the log's
    /// column families: it is not a Colloquy log, or its very first open
    /// was killed before it had created them all (RocksDB creates them one
    /// at a time); [`super::EventLog::open`] completes such a store.
    #[error(
        "column family {0:?} is missing: not a Colloquy log, or one whose first open was \
         killed before it had created its column families (opening it once with the engine \
         completes it)"
    )]
    MissingColumnFamily(&'static str),
    /// The tail of the chain failed verification at open.
    #[error(transparent)]
    Fault(#[from] ChainFault),
    /// A value in one of the log's column families is malformed.
    #[error("malformed value in column family {column_family}: {detail}")]
    Corrupt {
        /// The column family.
        column_family: &'static str,
        /// What is malformed.
        detail: String,
    },
    /// The state machine's constructor failed.
    #[error("state machine initialisation failed: {0}")]
    Init(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The writer thread could not be started.
    #[error("could not start the writer thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The secondary instance's scratch directory could not be created.
    #[error("could not create the secondary directory: {0}")]
    Io(#[source] std::io::Error),
    /// A WAL file or the current MANIFEST is damaged where intact records
    /// belong (checked before RocksDB reads it, see
    /// [`super::storage::check_log_files`]). Opening it anyway would drop
    /// acknowledged records, or hang RocksDB's reader.
    #[error(
        "{} is damaged at byte offset {offset}: {fault}. Opening it would lose acknowledged \
         records or hang; restore the store from a backup, or move the file aside only if \
         losing what it holds is acceptable",
        file.display()
    )]
    LogFileDamaged {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the first bad record header in it.
        offset: u64,
        /// What is wrong there.
        fault: LogFileFault,
    },
    /// A WAL file or the MANIFEST could not be read for the pre-open check.
    #[error("cannot read {} to check it before opening: {source}", file.display())]
    LogFileUnreadable {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// RocksDB found the store damaged while opening it: a WAL file that
    /// the MANIFEST tracks is missing or shorter than recorded, a table
    /// file fails its checksum, or a WAL record fails its checksum.
    #[error(
        "the store at {} is damaged: {detail}. Opening it would lose acknowledged records; \
         restore it from a backup",
        path.display()
    )]
    StoreDamaged {
        /// The store's directory.
        path: PathBuf,
        /// RocksDB's description (it names the file or WAL number).
        detail: String,
    },
    /// One of the store's files is damaged.
    #[error(transparent)]
    Damaged(Box<super::files::FileDamage>),
    /// A store file read outside RocksDB (`CURRENT`, the MANIFEST) could
    /// not be read.
    #[error("cannot read {}: {detail}", path.display())]
    StoreFile {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's reason.
        detail: String,
    },
    /// The log ends before its head marker
    /// ([`super::head_marker`]), which was written under
    /// [`super::Durability::Sync`]: records that were acknowledged as
    /// fsynced are gone. Most likely the newest WAL file was deleted or cut
    /// short (RocksDB takes a WAL cut short for a torn tail, and never
    /// tracks the WAL it is writing, so it opens such a store silently
    /// short). Nothing was changed in the marker.
    #[error(
        "the store at {} has lost acknowledged records: its head marker {} says positions \
         0..{marker_next_position} were acknowledged under Durability::Sync, but the log ends \
         at position {log_next_position} ({} acknowledged records missing, positions \
         {log_next_position}..{marker_next_position}). The write-ahead log most likely lost \
         them: the newest WAL file was deleted or cut short (WAL files present: {}). Restore \
         the store from a backup",
        store.display(),
        marker.display(),
        marker_next_position - log_next_position,
        list_files(wal_files)
    )]
    AcknowledgedRecordsMissing {
        /// The head marker file.
        marker: PathBuf,
        /// The store's directory.
        store: PathBuf,
        /// The marker's next position: every position below it was
        /// acknowledged.
        marker_next_position: u64,
        /// The log's next position, as the store opened.
        log_next_position: u64,
        /// The WAL files in the store before RocksDB recovered it.
        wal_files: Vec<PathBuf>,
    },
    /// The record at the head marker's last position has another hash than
    /// the marker recorded: the log was rewritten or replaced (or the
    /// marker comes from another store).
    #[error(
        "the store at {} does not hold the log its head marker {} describes: the record at \
         position {position} has hash {log_hash}, the marker recorded {marker_hash}. The log \
         was rewritten or replaced, or the marker was copied from another store; restore the \
         store from a backup",
        store.display(),
        marker.display()
    )]
    LogRewritten {
        /// The head marker file.
        marker: PathBuf,
        /// The store's directory.
        store: PathBuf,
        /// The marker's last position.
        position: u64,
        /// The hash the marker recorded.
        marker_hash: HexHash,
        /// The hash of the record stored there.
        log_hash: HexHash,
    },
    /// Neither slot of the head marker is valid (or the file has the wrong
    /// size), so the acknowledged head is unknown.
    #[error(
        "the head marker {} is damaged: {detail}. The acknowledged head is unknown; if the log \
         is known to be complete (replay-tool verify, a backup), delete the file and the next \
         open recreates it",
        file.display()
    )]
    HeadMarkerDamaged {
        /// The marker file.
        file: PathBuf,
        /// Why each slot is invalid.
        detail: String,
    },
    /// The head marker could not be written when the store was opened.
    #[error("cannot write the head marker {}: {source}", file.display())]
    HeadMarkerUnwritable {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Lists files for an error message.
fn list_files(files: &[PathBuf]) -> String {
    if files.is_empty() {
        return "none".to_string();
    }
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What is wrong with a record header in a WAL or MANIFEST file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LogFileFault {
    /// The record's checksum does not match its contents.
    #[error("a record fails its crc32c checksum")]
    ChecksumMismatch,
    /// The record type is one of the recyclable-log types, which this store
    /// never writes; RocksDB 11.8's reader would spin on it forever
    /// (facebook/rocksdb#13333).
    #[error(
        "record type {0} is a recycled-log type, which this store never writes \
         (RocksDB would spin on it forever)"
    )]
    RecyclableType(u8),
    /// The record type is unknown and not marked safe to ignore.
    #[error("unknown record type {0}")]
    UnknownType(u8),
    /// The header declares more payload than its block holds, and this is
    /// not the end of the file.
    #[error("a record header declares {declared} payload bytes but its block holds {available}")]
    LengthPastBlock {
        /// Declared payload length, in bytes.
        declared: u64,
        /// Bytes left in the block after the header.
        available: u64,
    },
    /// A fragment of a multi-block record is out of order (a middle or
    /// last fragment without a first, or a new record before the last).
    #[error("record fragment of type {0} is out of order")]
    FragmentOutOfOrder(u8),
    /// Zero-filled space in the middle of a record that spans blocks.
    #[error("zero-filled space interrupts a record that spans blocks")]
    ZeroInsideRecord,
    /// A WAL that is not the newest ends in an incomplete record: the
    /// records of the later WALs would replay over a hole.
    #[error("a WAL file that is not the newest ends in an incomplete record")]
    TornBeforeNewest,
}

impl From<super::files::FileDamage> for ReadError {
    fn from(damage: super::files::FileDamage) -> Self {
        ReadError::Damaged(Box::new(damage))
    }
}

impl From<ReadError> for OpenError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Storage(e) => OpenError::Storage(e),
            ReadError::Fault(f) => OpenError::Fault(f),
            ReadError::Corrupt {
                column_family,
                detail,
            } => OpenError::Corrupt {
                column_family,
                detail,
            },
            ReadError::Damaged(d) => OpenError::Damaged(d),
            ReadError::Io { path, detail } => OpenError::StoreFile { path, detail },
        }
    }
}

/// How an idempotency scope reads in messages.
fn scope_name(scope: &Option<ServiceSid>) -> String {
    match scope {
        Some(service) => format!("service {service}"),
        None => "the account scope".to_string(),
    }
}

/// Why an append was not applied. Except for [`AppendError::Closed`] after
/// a writer crash, nothing of the request was written.
#[derive(Debug, thiserror::Error)]
pub enum AppendError<R> {
    /// The state machine refused the command ([`super::StateMachine::decide`]).
    #[error("command rejected: {0:?}")]
    Rejected(R),
    /// `expected_version` differs from the stream's current version.
    #[error("version conflict: expected stream version {expected}, it is {actual}")]
    VersionConflict {
        /// The version the caller expected.
        expected: u64,
        /// The stream's version.
        actual: u64,
    },
    /// The command id was already applied in this idempotency scope by a
    /// different command (another fingerprint: other fields, another
    /// acting identity). Nothing was written; the first command's records
    /// stand. Use a fresh command id for a new command.
    #[error(
        "command id {command_id} was already used in {} for a different command \
         (its records start at position {first_position}); use a fresh command id",
        scope_name(.scope)
    )]
    IdempotencyKeyReused {
        /// The reused command id.
        command_id: CommandId,
        /// Its scope: the service, or `None` for the account scope.
        scope: Option<ServiceSid>,
        /// Where the first command's records start.
        first_position: u64,
    },
    /// The state machine's idempotency scope for the command
    /// ([`super::StateMachine::idempotency`]) differs from the scope its
    /// first record re-derives to
    /// ([`events::idempotency_scope_of_first_record`]): a bug in the state
    /// machine. Nothing was written, so the log's index stays derivable.
    #[error(
        "the command's idempotency scope is {} but its first record says {}; \
         nothing was written (a state machine bug: its scope rule and its \
         decision disagree)",
        scope_name(.declared),
        scope_name(.derived)
    )]
    ScopeMismatch {
        /// The scope the state machine declared.
        declared: Option<ServiceSid>,
        /// The scope re-derived from the decision's first event.
        derived: Option<ServiceSid>,
    },
    /// The command could not be encoded to compute its idempotency
    /// fingerprint. Nothing was written.
    #[error("the command cannot be encoded for its idempotency fingerprint: {0}")]
    Fingerprint(CodecError),
    /// The decision produced more events than one command may append.
    #[error("a command produced {count} events, over the limit of {max}")]
    TooManyEvents {
        /// Events produced.
        count: usize,
        /// [`events::limits::EVENTS_PER_COMMAND_MAX`].
        max: usize,
    },
    /// An event could not be sealed into a record (too large, or its
    /// conversation disagrees with the header).
    #[error("event {index} of the command cannot be encoded: {source}")]
    Encode {
        /// The event's index within the decision.
        index: usize,
        /// The codec's reason.
        source: CodecError,
    },
    /// The batch this request was in could not be written. The log is now
    /// poisoned.
    #[error("the batch write failed: {message}")]
    WriteFailed {
        /// RocksDB's (or the injected) error message.
        message: String,
    },
    /// A previous batch write failed; the log refuses appends until it is
    /// reopened.
    #[error("the log is poisoned by an earlier write failure; reopen it")]
    Poisoned,
    /// Reading the idempotency or stream-version column family failed.
    #[error("storage error: {0}")]
    Storage(rocksdb::Error),
    /// A stored idempotency or stream-version value is malformed.
    #[error("malformed value in column family {column_family}: {detail}")]
    Corrupt {
        /// The column family.
        column_family: &'static str,
        /// What is malformed.
        detail: String,
    },
    /// RocksDB stopped writes (a memtable flush cannot finish, typically
    /// because the disk is full) and the batch could not be written within
    /// [`super::WRITE_STALL_WAIT_MAX_MS`]. Nothing of the request was
    /// written and the log is not poisoned: retry once space is back;
    /// RocksDB resumes by itself when its flush succeeds.
    #[error(
        "storage stalled: RocksDB stopped writes for {waited_ms} ms (is the disk full?); \
         nothing was written, retry once there is space"
    )]
    StorageStalled {
        /// How long the write waited, in milliseconds.
        waited_ms: u64,
    },
    /// The disk is full: RocksDB stopped taking writes after a flush (or a
    /// MANIFEST write) failed for lack of space, and it did not recover
    /// within [`super::WRITE_STALL_WAIT_MAX_MS`]. The write was refused
    /// before anything of it was written, so the log is not poisoned:
    /// retry once there is space; RocksDB resumes by itself (it checks the
    /// free space every 5 s) once the disk has room for its largest
    /// memtable (the write buffer, 64 MiB by default). A WAL append that
    /// fails for lack of space is [`AppendError::WriteFailed`] instead.
    #[error(
        "storage full: RocksDB refused writes for {waited_ms} ms ({message}); nothing was \
         written. RocksDB resumes by itself once the disk has room for a memtable flush \
         (64 MiB with the default write buffer): free that much, then retry"
    )]
    StorageFull {
        /// How long the write waited, in milliseconds.
        waited_ms: u64,
        /// RocksDB's background error.
        message: String,
    },
    /// The writer thread is gone (the log is shutting down, or the state
    /// machine panicked). Whether the request was written is unknown;
    /// retrying with the same command id is safe.
    #[error("the log writer has stopped")]
    Closed,
}
