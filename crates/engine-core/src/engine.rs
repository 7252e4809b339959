//! [`Engine`]: the library API. Commands in, typed outcomes out, queries
//! over read models that are never behind the log.

use std::path::Path;
use std::sync::Arc;

use events::{CommandEnvelope, Event, Record, RecordHeader};
use parking_lot::lock_api::ArcRwLockWriteGuard;
use parking_lot::{RawRwLock, RwLock, RwLockReadGuard};
use projections::{ReadModels, RowSink, Table};
use rocksdb::{WriteBatch, DB};

use crate::commands::{self, CommandError, EngineCommand};
use crate::log::{
    AppendError, AppendOutcome, AppendRequest, DecideContext, Decision, EventLog, LogHead,
    LogOptions, OpenError, ReadError, RecordIter, StateMachine,
};

/// Records folded per `WriteBatch` while catching the read models up with
/// the log (on open after a rebuild, or after an interrupted one). Bounds
/// the memory of one batch; each batch also records the applied position,
/// so an interrupted catch-up resumes where it stopped.
pub const CATCH_UP_BATCH_RECORDS: u64 = 4_096;

/// Why the engine could not open, rebuild or read its store.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The log could not be opened (I/O, corruption in the tail, lock held).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Reading the log failed (I/O or a chain fault).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// RocksDB failed outside the log.
    #[error("storage error: {0}")]
    Storage(#[from] rocksdb::Error),
    /// A persisted read-model row does not decode.
    #[error(transparent)]
    Load(#[from] projections::LoadError),
    /// The read models claim a position the log does not have.
    #[error("read models are at position {applied}, past the log's end {next_position}")]
    ReadModelsAhead {
        /// The persisted applied position.
        applied: u64,
        /// The log's next position.
        next_position: u64,
    },
    /// Another process holds the store open; `rebuild` needs it alone.
    #[error(
        "the store at {path} is in use by another process; stop it before rebuilding ({detail})"
    )]
    InUse {
        /// The store's path.
        path: String,
        /// RocksDB's message.
        detail: String,
    },
}

/// A [`RowSink`] that stages rows into a RocksDB `WriteBatch`.
struct BatchSink<'a> {
    db: &'a DB,
    batch: &'a mut WriteBatch,
}

fn table_cf(db: &DB, table: Table) -> &rocksdb::ColumnFamily {
    match db.cf_handle(table.name()) {
        Some(cf) => cf,
        None => panic!(
            "read-model column family {} is created at open",
            table.name()
        ),
    }
}

impl RowSink for BatchSink<'_> {
    fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.batch.put_cf(table_cf(self.db, table), key, value);
    }
    fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.batch.delete_cf(table_cf(self.db, table), key);
    }
}

/// The writer thread's state machine: the read models behind a lock that
/// the writer holds for a whole batch, so readers never see state that is
/// not yet durable.
struct EngineState {
    db: Arc<DB>,
    read: Arc<RwLock<ReadModels>>,
    guard: Option<ArcRwLockWriteGuard<RawRwLock, ReadModels>>,
}

impl StateMachine for EngineState {
    type Command = EngineCommand;
    type Rejection = CommandError;
    const COLUMN_FAMILIES: &'static [&'static str] = &Table::NAMES;

    fn begin_batch(&mut self) {
        self.guard = Some(self.read.write_arc());
    }

    fn decide(
        &self,
        command: &EngineCommand,
        ctx: &DecideContext,
    ) -> Result<Decision, CommandError> {
        let rm = self.guard.as_deref().expect("decide runs inside a batch");
        commands::decide(rm, command, ctx)
    }

    fn apply(&mut self, db: &DB, batch: &mut WriteBatch, header: &RecordHeader, event: &Event) {
        let rm = self
            .guard
            .as_deref_mut()
            .expect("apply runs inside a batch");
        rm.apply(header, event, &mut BatchSink { db, batch });
    }

    fn end_batch(&mut self, durable: bool) {
        if let Some(mut guard) = self.guard.take() {
            if !durable {
                // The batch never reached the disk: go back to what did.
                // The log is poisoned now, so this state is only read.
                match load_read_models(&self.db) {
                    Ok(rm) => *guard = rm,
                    Err(e) => tracing::error!("reloading read models after a failed write: {e}"),
                }
            }
        }
    }
}

/// Loads the persisted read models (rows of every read-model table).
///
/// Errors: RocksDB read failures, rows that do not decode.
pub fn load_read_models(db: &DB) -> Result<ReadModels, EngineError> {
    let mut rows = Vec::new();
    for table in Table::ALL {
        for kv in db.iterator_cf(table_cf(db, table), rocksdb::IteratorMode::Start) {
            let (k, v) = kv?;
            rows.push((table, k.into_vec(), v.into_vec()));
        }
    }
    Ok(ReadModels::load(rows)?)
}

/// Folds the log from the read models' applied position to `head` into
/// `rm`, writing the rows in batches of [`CATCH_UP_BATCH_RECORDS`].
/// `progress(done, total)` is called after each batch.
fn catch_up(
    db: &DB,
    rm: &mut ReadModels,
    head: &LogHead,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), EngineError> {
    let from = rm.applied_position.map_or(0, |p| p + 1);
    if from > head.next_position {
        return Err(EngineError::ReadModelsAhead {
            applied: from - 1,
            next_position: head.next_position,
        });
    }
    let total = head.next_position - from;
    let mut done = 0;
    let mut batch = WriteBatch::default();
    for record in RecordIter::new(db, from..head.next_position) {
        let record = record?;
        let event = record
            .event()
            .map_err(|source| ReadError::Fault(decode_fault(&record, source)))?;
        rm.apply(
            &record.header,
            &event,
            &mut BatchSink {
                db,
                batch: &mut batch,
            },
        );
        done += 1;
        if done % CATCH_UP_BATCH_RECORDS == 0 {
            db.write(std::mem::take(&mut batch))?;
            progress(done, total);
        }
    }
    db.write(batch)?;
    progress(done, total);
    Ok(())
}

fn decode_fault(record: &Record, source: events::CodecError) -> crate::log::ChainFault {
    crate::log::ChainFault {
        position: record.header.position,
        kind: crate::log::FaultKind::Decode(source),
    }
}

/// What an executed command did.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome {
    /// The position of the first record (the head's next position if the
    /// command appended nothing).
    pub first_position: u64,
    /// The records the command appended, in order (possibly none, e.g. an
    /// `Advance` that would not move the horizon).
    pub records: Vec<(RecordHeader, Event)>,
    /// True if the command id had already been applied: nothing new was
    /// appended and `records` are the original ones.
    pub deduplicated: bool,
}

impl CommandOutcome {
    /// The events, in order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.records.iter().map(|(_, e)| e)
    }

    /// The service of the records (for `CreateService`, the new service).
    pub fn service_sid(&self) -> Option<events::ServiceSid> {
        self.records.first().map(|(h, _)| h.service_sid)
    }

    /// The conversation the first `ConversationCreated` event created.
    pub fn conversation_sid(&self) -> Option<events::ConversationSid> {
        self.events().find_map(|e| match e {
            Event::ConversationCreated {
                conversation_sid, ..
            } => Some(*conversation_sid),
            _ => None,
        })
    }

    /// The participants the command added, in order.
    pub fn participant_sids(&self) -> Vec<events::ParticipantSid> {
        self.events()
            .filter_map(|e| match e {
                Event::ParticipantAdded {
                    participant_sid, ..
                } => Some(*participant_sid),
                _ => None,
            })
            .collect()
    }

    /// The message the command posted, with its index.
    pub fn message(&self) -> Option<(events::MessageSid, u64)> {
        self.events().find_map(|e| match e {
            Event::MessageAdded {
                message_sid, index, ..
            } => Some((*message_sid, *index)),
            _ => None,
        })
    }
}

/// The Colloquy engine: an event log plus read models, in one directory.
///
/// Every command is decided against the read models on the log's single
/// writer thread, appended as events, and folded into the read models in
/// the same RocksDB batch. Queries ([`Engine::read`]) see every
/// acknowledged command and nothing that is not yet durable.
pub struct Engine {
    log: EventLog<EngineState>,
    read: Arc<RwLock<ReadModels>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("log", &self.log).finish()
    }
}

impl Engine {
    /// Opens (or creates) the store at `path`.
    ///
    /// Loads the persisted read models and, if they are behind the log
    /// (after `rebuild` dropped them, or one was interrupted), folds the
    /// missing records first.
    ///
    /// Errors: as [`EventLog::open`], plus undecodable read-model rows and
    /// read models ahead of the log.
    pub fn open(path: impl AsRef<Path>, options: LogOptions) -> Result<Engine, EngineError> {
        Self::open_with_progress(path, options, &mut |_, _| {})
    }

    fn open_with_progress(
        path: impl AsRef<Path>,
        options: LogOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Engine, EngineError> {
        let read = Arc::new(RwLock::new(ReadModels::new()));
        let shared = read.clone();
        let log = EventLog::open(path, options, move |db, head| {
            let mut rm = load_read_models(db)?;
            catch_up(db, &mut rm, head, progress)?;
            *shared.write() = rm;
            Ok::<_, EngineError>(EngineState {
                db: db.clone(),
                read: shared,
                guard: None,
            })
        })?;
        Ok(Engine { log, read })
    }

    /// Executes a command and waits until its records are durable.
    ///
    /// Returns the appended records, or the original ones for a repeated
    /// command id. Errors: the handler's typed refusal (nothing written),
    /// [`CommandError::VersionConflict`], or [`CommandError::Storage`] when
    /// the log cannot append (I/O failure, poisoned or closed log).
    pub fn execute(&self, envelope: CommandEnvelope) -> Result<CommandOutcome, CommandError> {
        let request = request(envelope);
        let outcome = self.log.append_blocking(request);
        self.outcome(outcome)
    }

    /// The async form of [`Engine::execute`]: resolves when durable.
    pub async fn execute_async(
        &self,
        envelope: CommandEnvelope,
    ) -> Result<CommandOutcome, CommandError> {
        let request = request(envelope);
        let outcome = self.log.append(request).await;
        self.outcome(outcome)
    }

    fn outcome(
        &self,
        outcome: Result<AppendOutcome, AppendError<CommandError>>,
    ) -> Result<CommandOutcome, CommandError> {
        let (first, count, deduplicated) = match outcome {
            Ok(AppendOutcome::Appended {
                first_position,
                count,
                ..
            }) => (first_position, count, false),
            Ok(AppendOutcome::Duplicate {
                first_position,
                count,
            }) => (first_position, count, true),
            Err(AppendError::Rejected(e)) => return Err(e),
            Err(AppendError::VersionConflict { expected, actual }) => {
                return Err(CommandError::VersionConflict { expected, actual })
            }
            Err(other) => return Err(CommandError::Storage(other.to_string())),
        };
        let mut records = Vec::with_capacity(count as usize);
        for record in self.log.read_range(first..first + u64::from(count)) {
            let record = record.map_err(|e| CommandError::Storage(e.to_string()))?;
            let event = record
                .event()
                .map_err(|e| CommandError::Storage(e.to_string()))?;
            records.push((record.header, event));
        }
        Ok(CommandOutcome {
            first_position: first,
            records,
            deduplicated,
        })
    }

    /// A read lock on the read models. Hold it briefly: the writer waits
    /// for it at the start of each batch.
    pub fn read(&self) -> RwLockReadGuard<'_, ReadModels> {
        self.read.read()
    }

    /// The underlying log (reads, verification, head).
    pub fn log(&self) -> &EventLog<impl StateMachine> {
        &self.log
    }

    /// The digest of the persisted read models and the row count (see
    /// [`read_models_digest`]).
    pub fn live_digest(&self) -> Result<([u8; 32], u64), EngineError> {
        read_models_digest(self.log.db())
    }

    /// Drops the store's read models and refolds them from the log.
    /// `progress(done, total)` reports records folded.
    ///
    /// Needs the store alone: errors with [`EngineError::InUse`] while
    /// another process has it open. Other errors: I/O, a chain fault.
    pub fn rebuild(
        path: impl AsRef<Path>,
        options: LogOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Engine, EngineError> {
        let path = path.as_ref();
        {
            let mut db_options = rocksdb::Options::default();
            db_options.create_if_missing(false);
            let names = DB::list_cf(&db_options, path)?;
            let mut db = DB::open_cf(&db_options, path, &names).map_err(|e| in_use(path, e))?;
            for table in Table::ALL {
                if names.iter().any(|n| n == table.name()) {
                    db.drop_cf(table.name())?;
                }
                db.create_cf(table.name(), &rocksdb::Options::default())?;
            }
        }
        Self::open_with_progress(path, options, progress)
    }
}

fn in_use(path: &Path, e: rocksdb::Error) -> EngineError {
    let detail = e.to_string();
    if detail.contains("lock") || detail.contains("Resource temporarily unavailable") {
        EngineError::InUse {
            path: path.display().to_string(),
            detail,
        }
    } else {
        EngineError::Storage(e)
    }
}

fn request(envelope: CommandEnvelope) -> AppendRequest<EngineCommand> {
    AppendRequest {
        command_id: envelope.command_id,
        expected_version: envelope.expected_version,
        command: EngineCommand {
            acting_identity: envelope.acting_identity,
            command: envelope.command,
        },
    }
}

/// The digest of every read-model row stored in `db`, read from one
/// snapshot in (table, key) order, and the row count.
///
/// Errors: RocksDB read failures.
pub fn read_models_digest(db: &DB) -> Result<([u8; 32], u64), EngineError> {
    let snapshot = db.snapshot();
    let mut d = projections::Digester::new();
    for table in Table::ALL {
        let mut opts = rocksdb::ReadOptions::default();
        opts.set_snapshot(&snapshot);
        for kv in db.iterator_cf_opt(table_cf(db, table), opts, rocksdb::IteratorMode::Start) {
            let (k, v) = kv?;
            d.row(table, &k, &v);
        }
    }
    Ok(d.finish())
}

/// Folds the records `iter` yields into fresh read models, off to the side
/// (nothing is written), e.g. to compare a rebuild's digest with the live one.
///
/// Errors: the first read or decode fault.
pub fn fold_records(
    iter: impl Iterator<Item = Result<Record, ReadError>>,
    progress: &mut dyn FnMut(u64),
) -> Result<ReadModels, EngineError> {
    let mut rm = ReadModels::new();
    let mut sink = NullSink;
    let mut done = 0u64;
    for record in iter {
        let record = record?;
        let event = record
            .event()
            .map_err(|source| ReadError::Fault(decode_fault(&record, source)))?;
        rm.apply(&record.header, &event, &mut sink);
        done += 1;
        if done % CATCH_UP_BATCH_RECORDS == 0 {
            progress(done);
        }
    }
    progress(done);
    Ok(rm)
}

/// The digest a state's persisted form would have (see
/// [`read_models_digest`]): equal states give equal digests.
pub fn state_digest(rm: &ReadModels) -> ([u8; 32], u64) {
    let mut rows = projections::RowMap::new();
    rm.write_rows(&mut rows);
    projections::digest_rows(&rows)
}

/// A sink that drops rows: folding only the in-memory state.
struct NullSink;

impl RowSink for NullSink {
    fn put(&mut self, _: Table, _: Vec<u8>, _: Vec<u8>) {}
    fn delete(&mut self, _: Table, _: Vec<u8>) {}
}
