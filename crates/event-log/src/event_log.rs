//! [`EventLog`]: the writable log handle.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError};
use events::{ConversationSid, ServiceSid};
use parking_lot::Mutex;
use rocksdb::{ColumnFamilyDescriptor, FlushOptions, DB};

use super::append::{AppendOutcome, AppendRequest, Appended};
use super::error::{AppendError, OpenError, ReadError};
use super::files;
use super::head_marker::{self, HeadMarker};
use super::keys::LOG_COLUMN_FAMILIES;
use super::metrics::LogMetrics;
use super::options::{Durability, LogOptions, TAIL_VERIFY_RECORDS};
use super::read::{self, LogHead, RecordIter, StreamIter, VerifyReport};
use super::scan::ScanOptions;
use super::state::StateMachine;
use super::storage::{self, StorageCheck};
use super::writer::{Reply, Request, Shared, Slot, Writer};

/// The durable, hash-chained, group-committed event log.
///
/// One writer thread owns the state machine `S` and serialises every
/// append: for each group of queued requests it runs idempotency, decide,
/// the version check, sealing and apply, writes the group as one RocksDB
/// `WriteBatch` (synced per [`Durability`]), calls
/// [`StateMachine::committed`], and only then answers the callers, each
/// with its own records if it asked for them
/// ([`EventLog::append_blocking_with_records`]); a batch of several callers
/// is answered by a second thread (`colloquy-log-answer`) while the writer
/// goes on with the next batch. The callers' threads
/// compute each command's idempotency scope and fingerprint before
/// queueing it. Reads go straight to RocksDB and see only written batches.
///
/// Dropping the log stops taking requests, lets the writer finish what is
/// queued, joins it, and flushes the log's and the state machine's column
/// families (so the next open replays no write-ahead log).
pub struct EventLog<S: StateMachine> {
    db: Arc<DB>,
    shared: Arc<Shared>,
    sender: Option<Sender<Request<S>>>,
    writer: Option<JoinHandle<()>>,
    durability: Durability,
    storage_check: StorageCheck,
}

impl<S: StateMachine> std::fmt::Debug for EventLog<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("path", &self.db.path())
            .field("head", &self.head())
            .field("durability", &self.durability)
            .field("poisoned", &self.is_poisoned())
            .finish()
    }
}

impl<S: StateMachine + Default> EventLog<S> {
    /// [`EventLog::open`] with `S::default()` as the state machine.
    ///
    /// Errors as [`EventLog::open`] (never [`OpenError::Init`]).
    pub fn open_default(path: impl AsRef<Path>, options: LogOptions) -> Result<Self, OpenError> {
        Self::open(path, options, |_, _| {
            Ok::<S, std::convert::Infallible>(S::default())
        })
    }
}

impl<S: StateMachine> EventLog<S> {
    /// Opens (creating if missing) the log at `path` and starts its writer.
    ///
    /// Creates the log's column families and `S::COLUMN_FAMILIES` if
    /// missing (and opens any other existing ones), recovers the head from
    /// the last record, and verifies the last [`TAIL_VERIFY_RECORDS`]
    /// records (contiguous positions, decode and self-hash, key/header
    /// agreement, `prev_hash` links). Then it calls `init` with the database
    /// and the head, so the state machine can load its read models, and
    /// hands the result to the writer thread.
    ///
    /// Before RocksDB reads anything, the record headers of the WAL files
    /// and the MANIFEST are checked ([`super::storage::check_log_files`]);
    /// a torn tail left by a crash is dropped, as RocksDB drops it, and
    /// reported by [`EventLog::storage_check`]. The RocksDB options are
    /// [`super::storage::db_options`].
    ///
    /// Once RocksDB has recovered the store, its head is compared with the
    /// head marker ([`super::head_marker`], read before RocksDB opened the
    /// store); the outcome is [`StorageCheck::head_marker`]. A marker behind
    /// the log (a crash before it was updated or synced), a missing marker
    /// (an older store, or a deleted marker; logged as a warning) and a log
    /// that lost buffered writes to a power loss under
    /// [`Durability::Buffered`] (logged as a warning) are not errors. Then
    /// the marker is rewritten at the recovered head, with `options`'
    /// durability.
    ///
    /// Errors: [`OpenError::LogFileDamaged`] naming the WAL or MANIFEST
    /// file and byte offset of damage where intact records belong,
    /// [`OpenError::LogFileUnreadable`] if one cannot be read,
    /// [`OpenError::StoreDamaged`] if RocksDB finds the store damaged (a
    /// tracked WAL missing or short, a failed checksum),
    /// [`OpenError::Storage`] if RocksDB cannot open or read the
    /// store (including when another process holds it open for writing),
    /// [`OpenError::Fault`] naming the first bad position in the tail,
    /// [`OpenError::Corrupt`] for a malformed last key,
    /// [`OpenError::Damaged`] if RocksDB reports damage in a table file
    /// read for the tail (naming the file and the positions it holds),
    /// [`OpenError::Init`] if `init` fails, [`OpenError::Spawn`] if the
    /// writer thread cannot start;
    /// [`OpenError::AcknowledgedRecordsMissing`] if the log ends before a
    /// head marker written under [`Durability::Sync`] (acknowledged records
    /// are gone: a deleted or truncated WAL), [`OpenError::LogRewritten`]
    /// if the record at the marker's last position has another hash,
    /// [`OpenError::HeadMarkerDamaged`] if neither of the marker's slots is
    /// valid, [`OpenError::HeadMarkerUnwritable`] if it cannot be
    /// rewritten. A refused store's marker is left as it was, so every
    /// later open refuses it too.
    pub fn open<E, F>(
        path: impl AsRef<Path>,
        options: LogOptions,
        init: F,
    ) -> Result<Self, OpenError>
    where
        F: FnOnce(&Arc<DB>, &LogHead) -> Result<S, E>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = path.as_ref();
        let mut storage_check = storage::check_log_files(path)?;
        for torn in &storage_check.torn_tails {
            tracing::warn!(%torn, "opening a store after a crash");
        }
        let marker = head_marker::read_head_marker(path)?;
        // The MANIFEST's table files, read before RocksDB opens the store,
        // so that an open refused over a damaged table file names it with
        // the log positions it holds (none yet for a new store).
        let manifest = files::ManifestFiles::read(path).ok();
        let mut db_options = storage::db_options();
        db_options.set_db_write_buffer_size(options.memtable_budget_bytes);
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        let existing = if path.join("CURRENT").exists() {
            DB::list_cf(&db_options, path).map_err(|e| storage::open_error(path, e, None))?
        } else {
            Vec::new()
        };
        let names: BTreeSet<String> = existing
            .into_iter()
            .chain(LOG_COLUMN_FAMILIES.iter().map(|s| s.to_string()))
            .chain(S::COLUMN_FAMILIES.iter().map(|s| s.to_string()))
            // RocksDB's own, opened with the same options as the others.
            .chain(std::iter::once(
                rocksdb::DEFAULT_COLUMN_FAMILY_NAME.to_string(),
            ))
            .collect();
        let block_cache = rocksdb::Cache::new_lru_cache(options.block_cache_bytes);
        let descriptors = names
            .into_iter()
            .map(|name| {
                let mut cf_options = storage::column_family_options(&name, &block_cache);
                if let Some(bytes) = options.memtable_bytes {
                    cf_options.set_write_buffer_size(bytes);
                }
                ColumnFamilyDescriptor::new(name, cf_options)
            })
            .collect::<Vec<_>>();
        let db = DB::open_cf_descriptors(&db_options, path, descriptors)
            .map_err(|e| storage::open_error(path, e, manifest.as_ref()))?;
        let db = Arc::new(db);
        let (head, last_recorded_at) = read::verify_tail(&db, TAIL_VERIFY_RECORDS)?;
        let status = head_marker::check_head_marker(path, marker.as_ref(), &db, &storage_check)?;
        head_marker::warn_about(path, &status);
        storage_check.head_marker = status;
        let marker = HeadMarker::create(path, &head, options.durability)?;
        let state = init(&db, &head).map_err(|e| OpenError::Init(e.into()))?;

        let shared = Arc::new(Shared {
            head: Mutex::new(head),
            poisoned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            space: tokio::sync::Notify::new(),
            metrics: Default::default(),
        });
        let (sender, rx) = crossbeam_channel::bounded(options.channel_capacity_requests);
        let durability = options.durability;
        let writer = Writer {
            db: db.clone(),
            state,
            rx,
            shared: shared.clone(),
            options,
            head,
            last_recorded_at: last_recorded_at.unwrap_or(0),
            marker,
            versions: Default::default(),
        };
        let handle = std::thread::Builder::new()
            .name("colloquy-log-writer".into())
            .spawn(move || writer.run())
            .map_err(OpenError::Spawn)?;
        Ok(EventLog {
            db,
            shared,
            sender: Some(sender),
            writer: Some(handle),
            durability,
            storage_check,
        })
    }

    fn sender(&self) -> &Sender<Request<S>> {
        self.sender
            .as_ref()
            .expect("the sender lives until the log is dropped")
    }

    /// Appends, blocking the calling thread until the request's batch is
    /// durable (or refused). Do not call it from an async task; use
    /// [`EventLog::append`] there.
    ///
    /// Errors: [`AppendError::Rejected`] (decide refused),
    /// [`AppendError::VersionConflict`], [`AppendError::TooManyEvents`]
    /// (over [`events::limits::EVENTS_PER_COMMAND_MAX`]),
    /// [`AppendError::Encode`] (an event does not fit a record),
    /// [`AppendError::IdempotencyKeyReused`] (the command id was applied in
    /// this scope by a different command), [`AppendError::Fingerprint`]
    /// (the command cannot be fingerprinted), [`AppendError::ScopeMismatch`]
    /// (the state machine's scope and its decision disagree) — in these
    /// cases nothing of the request is written;
    /// [`AppendError::StorageStalled`] / [`AppendError::StorageFull`]
    /// (RocksDB refused the batch for [`super::WRITE_STALL_WAIT_MAX_MS`]:
    /// writes stopped, or the disk is full; nothing written, not poisoned,
    /// retry later);
    /// [`AppendError::WriteFailed`] (the batch write failed, a WAL append
    /// on a full disk included; the log is now
    /// poisoned), [`AppendError::Poisoned`] (an earlier write failed),
    /// [`AppendError::Storage`] / [`AppendError::Corrupt`] (reading the
    /// idempotency or version index failed), [`AppendError::Closed`] (the
    /// writer is gone).
    pub fn append_blocking(
        &self,
        request: AppendRequest<S::Command>,
    ) -> Result<AppendOutcome, AppendError<S::Rejection>> {
        self.append_blocking_with_records(request)
            .map(|appended| appended.outcome)
    }

    /// [`EventLog::append_blocking`], answering also the request's own
    /// records ([`Appended::records`]) as the writer sealed them, from its
    /// memory: a caller that needs them (the engine turns them into a
    /// command's typed result) does not read back, re-hash and re-decode
    /// what was just written. The records are durable when this returns
    /// `Ok`; a duplicate's are not included.
    ///
    /// The command's idempotency scope and fingerprint
    /// ([`StateMachine::idempotency`]) are computed on the calling thread
    /// before the request is queued.
    ///
    /// Errors: as [`EventLog::append_blocking`].
    pub fn append_blocking_with_records(
        &self,
        request: AppendRequest<S::Command>,
    ) -> Result<Appended, AppendError<S::Rejection>> {
        if self.is_poisoned() {
            return Err(AppendError::Poisoned);
        }
        let (slot, tx) = Slot::for_current_thread();
        let sent = self
            .sender()
            .send(Request::new(request, Reply::Blocking(tx)));
        if let Err(crossbeam_channel::SendError(unsent)) = sent {
            // Dropping the unsent request fills the slot with `Closed`.
            drop(unsent);
        }
        slot.wait(&self.shared.closed)
    }

    /// Appends; resolves once the request's batch is durable (or refused).
    /// Waits without blocking the executor while the queue is full. The
    /// writer is a plain thread, so any executor (or none) can poll this.
    /// Dropping the future does not cancel a request already queued.
    ///
    /// Errors: as [`EventLog::append_blocking`].
    pub async fn append(
        &self,
        request: AppendRequest<S::Command>,
    ) -> Result<AppendOutcome, AppendError<S::Rejection>> {
        self.append_with_records(request)
            .await
            .map(|appended| appended.outcome)
    }

    /// [`EventLog::append`], answering also the request's own records, as
    /// [`EventLog::append_blocking_with_records`] does (and computing the
    /// idempotency scope and fingerprint before queueing, on the polling
    /// thread).
    ///
    /// Errors: as [`EventLog::append_blocking`].
    pub async fn append_with_records(
        &self,
        request: AppendRequest<S::Command>,
    ) -> Result<Appended, AppendError<S::Rejection>> {
        if self.is_poisoned() {
            return Err(AppendError::Poisoned);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut message = Request::new(request, Reply::Async(tx));
        loop {
            let notified = self.shared.space.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            match self.sender().try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) => {
                    if self.shared.closed.load(Ordering::SeqCst) {
                        return Err(AppendError::Closed);
                    }
                    message = back;
                    notified.await;
                }
                Err(TrySendError::Disconnected(_)) => return Err(AppendError::Closed),
            }
        }
        // A request queued while a crashing writer unwinds is never
        // answered; the writer's exit notifies `space`, so wait on both.
        let mut rx = rx;
        loop {
            let notified = self.shared.space.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.shared.closed.load(Ordering::SeqCst) {
                return rx.try_recv().unwrap_or(Err(AppendError::Closed));
            }
            tokio::select! {
                answer = &mut rx => return answer.unwrap_or(Err(AppendError::Closed)),
                _ = notified => {}
            }
        }
    }

    /// What the pre-open check of the WAL and MANIFEST files found, in
    /// particular the torn tail a crash left, which this open dropped, and
    /// how the log's head compared with the head marker (for example a
    /// [`super::HeadMarkerStatus::BufferedLoss`]).
    pub fn storage_check(&self) -> &StorageCheck {
        &self.storage_check
    }

    /// The durable head: the next position and the last record's hash.
    pub fn head(&self) -> LogHead {
        *self.shared.head.lock()
    }

    /// Whether a failed write poisoned the log (appends then fail with
    /// [`AppendError::Poisoned`] until it is reopened).
    pub fn is_poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::SeqCst)
    }

    /// The writer's counters since this open: batches, requests, records
    /// and bytes written, rejections, duplicates, refused and failed
    /// batches, write time (see [`LogMetrics`]). Lock-free; never waits
    /// for the writer.
    pub fn metrics(&self) -> LogMetrics {
        self.shared.metrics.snapshot()
    }

    /// The configured durability.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The RocksDB handle, for the engine's read side. Writing to the log's
    /// own column families through it breaks the log.
    pub fn db(&self) -> &Arc<DB> {
        &self.db
    }

    /// Written records with positions in `range`, in order; see
    /// [`RecordIter`] for the checks made while reading. Yields
    /// [`ReadError::Fault`] naming the position of a damaged record, or
    /// [`ReadError::Storage`], and then ends.
    pub fn read_range(&self, range: Range<u64>) -> RecordIter<'_> {
        RecordIter::new(&self.db, range)
    }

    /// The written records of one stream — `service` and `conversation`
    /// (`None`: the service-level stream of records without a
    /// conversation) — from `from_position` on, in position order. Errors
    /// as [`EventLog::read_range`], plus [`ReadError::Corrupt`] for a
    /// malformed index key.
    pub fn read_stream(
        &self,
        service: ServiceSid,
        conversation: Option<ConversationSid>,
        from_position: u64,
    ) -> StreamIter<'_> {
        StreamIter::new(&self.db, service, conversation, from_position)
    }

    /// A stream's written version: the number of records it holds.
    ///
    /// Errors: [`ReadError::Storage`], or [`ReadError::Corrupt`] if the
    /// stored value is malformed.
    pub fn stream_version(
        &self,
        service: ServiceSid,
        conversation: Option<ConversationSid>,
    ) -> Result<u64, ReadError> {
        read::stream_version(&self.db, &service, conversation.as_ref())
    }

    /// Walks the whole chain from position 0: every key is the next
    /// position, every record decodes with a matching self-hash, its header
    /// names its key's position, its `prev_hash` is the previous record's
    /// hash ([`events::GENESIS_HASH`] at 0), and its payload decodes as an
    /// event. The walk runs on every core ([`super::scan::par_scan`]); it
    /// covers every record stored when it starts (and may include some
    /// appended meanwhile, after them); concurrent appends are not
    /// blocked. It also cross-checks the store's table files (see
    /// [`super::files`]): every file the MANIFEST lists as live is in the
    /// view, and every `log` table file lies inside the walked positions.
    ///
    /// Errors: [`ReadError::Fault`] naming the first bad position and what
    /// is wrong there; [`ReadError::Damaged`] naming a damaged or skipped
    /// file and the first position affected; [`ReadError::Io`] if the
    /// MANIFEST cannot be read; or [`ReadError::Storage`].
    pub fn verify(&self) -> Result<VerifyReport, ReadError> {
        let before = files::ManifestFiles::read(self.db.path())?;
        read::verify_all(&self.db, &before, &ScanOptions::default(), &mut |_| {})
    }
}

impl<S: StateMachine> Drop for EventLog<S> {
    fn drop(&mut self) {
        // Closing the queue lets the writer drain what is left and exit.
        drop(self.sender.take());
        if let Some(handle) = self.writer.take() {
            if handle.join().is_err() {
                tracing::error!("the event log writer thread panicked");
            }
        }
        // Flush the log's and the state machine's memtables so the next
        // open has no write-ahead log to replay. Everything is already
        // durable in the WAL, so a failure here loses nothing.
        let families: Vec<_> = LOG_COLUMN_FAMILIES
            .iter()
            .chain(S::COLUMN_FAMILIES)
            .filter_map(|name| self.db.cf_handle(name))
            .collect();
        if let Err(e) = self.db.flush_cfs_opt(&families, &FlushOptions::default()) {
            tracing::warn!(error = %e, "flushing the event log on close failed");
        }
    }
}
