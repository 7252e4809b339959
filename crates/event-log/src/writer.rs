//! The single writer thread: group commit, idempotency (per scope, with
//! fingerprints), optimistic concurrency, sealing (with the actor from
//! [`StateMachine::actor`]), the chain invariants, and the head marker
//! update after each batch ([`super::head_marker`]), before any caller is
//! answered. Records are stamped with the time of the log's clock
//! ([`super::clock`], set with [`LogOptions::clock`]), never earlier than
//! their predecessor's.
//!
//! Answering: a batch with one caller is answered by the writer itself; a
//! batch with several is handed, once durable, to the answer thread
//! (`colloquy-log-answer`, see [`Answerer`]), which wakes its callers one
//! by one while the writer goes on with the next batch. Waking a parked
//! caller is a system call, a fifth of the writer's time when it did them
//! all; this way the writer makes at most one wake-up per batch. Every
//! caller of a batch is still answered only after the batch is durable,
//! the head marker covers it and [`StateMachine::committed`] has seen it;
//! callers of different batches may be answered out of batch order.
//!
//! Observability: each batch runs inside a `log_batch` tracing span (debug
//! level) with the fields `requests`, `records`, `bytes`, `durability` and
//! `write_us` (the RocksDB write's duration, recorded once it is done);
//! refused commands are logged at debug inside it. Each answered batch adds
//! its counts to the log's [`super::LogMetrics`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use events::limits::EVENTS_PER_COMMAND_MAX;
use events::{CodecError, CommandId, Hash, Record, RecordHeader, TimestampMicros};
use parking_lot::Mutex;
use rocksdb::{WriteBatch, WriteOptions, DB};

use super::append::{AppendOutcome, AppendRequest, Appended, CommittedRecords};
use super::backoff::Backoff;
use super::error::AppendError;
use super::head_marker::HeadMarker;
use super::keys::{
    command_key, command_value, parse_command_value, parse_stream_version_value, position_key,
    stream_id, stream_index_key, stream_version_value, CommandEntry, CF_COMMANDS, CF_LOG,
    CF_STREAM, CF_STREAMS, COMMAND_KEY_BYTES, FINGERPRINT_UNKNOWN, STREAM_ID_BYTES,
};
use super::metrics::{BatchCounts, LogCounters};
use super::options::{Durability, LogOptions, WriteInfo};
use super::read::{cf, LogHead};
use super::state::{CommittedRecord, DecideContext, Idempotency, StateMachine};
use super::storage::{WRITE_STALL_RETRY_INTERVAL_MS, WRITE_STALL_WAIT_MAX_MS};

/// How often a waiting caller checks whether the writer is gone. Answers
/// wake the caller at once; this only bounds how long a caller whose
/// request was stranded by a crashed writer waits before `Closed`.
pub(crate) const CLOSED_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// The largest pause between two attempts of a stalled batch write, in
/// milliseconds. The pauses start at [`WRITE_STALL_RETRY_INTERVAL_MS`] and
/// double with jitter ([`Backoff`]) up to this: a tenth of
/// [`WRITE_STALL_WAIT_MAX_MS`], so a stall that clears is noticed within
/// half a second while a long one costs a handful of wake-ups, not a
/// thousand.
pub(crate) const WRITE_STALL_RETRY_MAX_MS: u64 = 500;

/// The stalled-write retry pacing (see [`WRITE_STALL_RETRY_MAX_MS`]).
const WRITE_STALL_BACKOFF: Backoff = Backoff::new(
    Duration::from_millis(WRITE_STALL_RETRY_INTERVAL_MS),
    Duration::from_millis(WRITE_STALL_RETRY_MAX_MS),
);

/// What a caller gets back.
pub(crate) type AppendResult<R> = Result<Appended, AppendError<R>>;

/// What staging one request decided, before the batch is durable.
type StageResult<R> = Result<AppendOutcome, AppendError<R>>;

/// A batch's callers, each with what staging decided for it.
type Staged<R> = Vec<(Reply<R>, StageResult<R>)>;

/// A batch's callers, each with its answer.
type Answers<R> = Vec<(Reply<R>, AppendResult<R>)>;

/// Where the writer sends a caller's answer.
pub(crate) enum Reply<R> {
    /// A caller blocked in `append_blocking`.
    Blocking(SlotSender<R>),
    /// A caller awaiting `append`.
    Async(tokio::sync::oneshot::Sender<AppendResult<R>>),
}

impl<R> Reply<R> {
    /// Delivers the answer; a caller that went away (a dropped future) is
    /// not an error.
    pub(crate) fn send(self, result: AppendResult<R>) {
        match self {
            Reply::Blocking(tx) => tx.send(result),
            Reply::Async(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// A one-shot answer slot for a thread blocked in `append_blocking`. The
/// writer fills it and unparks the thread: the waiting thread sleeps
/// instead of spinning, which matters with many appenders on few cores.
pub(crate) struct Slot<R> {
    value: Mutex<Option<AppendResult<R>>>,
    thread: std::thread::Thread,
}

impl<R> Slot<R> {
    /// A slot for the calling thread and the sender that fills it.
    pub(crate) fn for_current_thread() -> (Arc<Slot<R>>, SlotSender<R>) {
        let slot = Arc::new(Slot {
            value: Mutex::new(None),
            thread: std::thread::current(),
        });
        (slot.clone(), SlotSender(Some(slot)))
    }

    /// Sleeps until the answer is there, or the writer is gone (`closed`):
    /// a request queued while a crashing writer unwinds is never answered
    /// by it, so the waiter checks `closed` every [`CLOSED_POLL_INTERVAL`].
    /// Must be called on the thread that created the slot.
    pub(crate) fn wait(&self, closed: &AtomicBool) -> AppendResult<R> {
        loop {
            if let Some(result) = self.value.lock().take() {
                return result;
            }
            if closed.load(Ordering::SeqCst) {
                return self.value.lock().take().unwrap_or(Err(AppendError::Closed));
            }
            std::thread::park_timeout(CLOSED_POLL_INTERVAL);
        }
    }

    fn fill(&self, result: AppendResult<R>) {
        *self.value.lock() = Some(result);
        self.thread.unpark();
    }
}

/// The writer's end of a [`Slot`]. Dropped unfilled (the request was lost
/// with a crashing writer), it answers [`AppendError::Closed`].
pub(crate) struct SlotSender<R>(Option<Arc<Slot<R>>>);

impl<R> SlotSender<R> {
    fn send(mut self, result: AppendResult<R>) {
        if let Some(slot) = self.0.take() {
            slot.fill(result);
        }
    }
}

impl<R> Drop for SlotSender<R> {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            slot.fill(Err(AppendError::Closed));
        }
    }
}

/// One queued append.
pub(crate) struct Request<S: StateMachine> {
    pub(crate) request: AppendRequest<S::Command>,
    /// [`StateMachine::idempotency`] of the command, computed on the
    /// caller's thread before the request was queued (it is a pure
    /// function of the command), so the writer does not spend its time on
    /// it.
    pub(crate) idempotency: Result<Idempotency, CodecError>,
    pub(crate) reply: Reply<S::Rejection>,
}

impl<S: StateMachine> Request<S> {
    /// A request for the writer: computes the command's idempotency scope
    /// and fingerprint here, on the calling thread.
    pub(crate) fn new(request: AppendRequest<S::Command>, reply: Reply<S::Rejection>) -> Self {
        let idempotency = S::idempotency(&request.command);
        Request {
            request,
            idempotency,
            reply,
        }
    }
}

/// State shared between the log handle and its writer.
pub(crate) struct Shared {
    /// The durable head; advanced only after a successful write.
    pub(crate) head: Mutex<LogHead>,
    /// Set after a failed write; appends are refused from then on.
    pub(crate) poisoned: AtomicBool,
    /// Set when the writer thread has exited (normally or by panic).
    pub(crate) closed: AtomicBool,
    /// Signalled whenever the writer has taken requests off the queue (and
    /// when it exits), so async senders waiting for room retry.
    pub(crate) space: tokio::sync::Notify,
    /// The writer's counters ([`super::EventLog::metrics`]).
    pub(crate) metrics: LogCounters,
}

/// The answer thread: takes the answers of durable batches from the writer
/// and delivers them, so the writer does not spend its time waking callers
/// (see the module docs). Dropping it closes its queue and joins the
/// thread once it has delivered every answer handed to it; the writer
/// holds it in a local declared after its [`ExitGuard`], so even when the
/// writer unwinds every handed-off answer is delivered before the log is
/// marked closed.
struct Answerer<R> {
    queue: Option<crossbeam_channel::Sender<Answers<R>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<R: Send + 'static> Answerer<R> {
    /// Starts the answer thread. If it cannot be started, the writer
    /// answers every batch itself (the answerer has no queue).
    fn start() -> Self {
        let (queue, batches) = crossbeam_channel::unbounded::<Answers<R>>();
        let spawned = std::thread::Builder::new()
            .name("colloquy-log-answer".into())
            .spawn(move || {
                for answers in batches {
                    for (reply, answer) in answers {
                        reply.send(answer);
                    }
                }
            });
        match spawned {
            Ok(thread) => Answerer {
                queue: Some(queue),
                thread: Some(thread),
            },
            Err(e) => {
                tracing::warn!(error = %e, "no answer thread; the log writer answers callers itself");
                Answerer {
                    queue: None,
                    thread: None,
                }
            }
        }
    }

    /// Delivers a durable batch's answers: a lone caller's here, several
    /// through the answer thread (here if it is gone).
    fn answer(&self, answers: Answers<R>) {
        let answers = match &self.queue {
            Some(queue) if answers.len() > 1 => match queue.send(answers) {
                Ok(()) => return,
                Err(crossbeam_channel::SendError(answers)) => answers,
            },
            _ => answers,
        };
        for (reply, answer) in answers {
            reply.send(answer);
        }
    }
}

impl<R> Drop for Answerer<R> {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the event log answer thread panicked");
            }
        }
    }
}

/// Wakes waiting senders when the writer exits, even by panic.
struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::SeqCst);
        self.0.space.notify_waiters();
    }
}

/// The writer thread's state.
pub(crate) struct Writer<S: StateMachine> {
    pub(crate) db: Arc<DB>,
    pub(crate) state: S,
    pub(crate) rx: Receiver<Request<S>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) options: LogOptions,
    /// The durable head (mirrors `shared.head`).
    pub(crate) head: LogHead,
    /// The last durable record's `recorded_at` (records never go back in
    /// time, even if the clock does).
    pub(crate) last_recorded_at: TimestampMicros,
    /// The head marker, updated after every written batch.
    pub(crate) marker: HeadMarker,
    /// Durable stream versions, by stream id: loaded from [`CF_STREAMS`]
    /// the first time a stream is touched after open, and updated from
    /// each durable batch, so the writer reads a stream's version from
    /// RocksDB once per open instead of once per batch. Never holds a
    /// version that is not durable (a refused or failed batch's changes
    /// stay in its [`Batch::versions`] and are dropped with it). Not
    /// bounded: one entry per stream written since open, about 48 bytes
    /// each ([`STREAM_ID_BYTES`] of key, 8 of version, the hash table's
    /// control byte and load-factor slack).
    pub(crate) versions: HashMap<[u8; STREAM_ID_BYTES], u64>,
}

/// A stream version seen or changed in the current batch.
struct VersionSlot {
    version: u64,
    dirty: bool,
}

/// A group-commit batch being assembled.
struct Batch<R> {
    write: WriteBatch,
    /// What staging decided for each caller, held back until the batch is
    /// durable.
    replies: Staged<R>,
    /// The position of the batch's first record (the durable head's next
    /// position when the batch began): `records[i]` is at
    /// `first_position + i`.
    first_position: u64,
    records: Vec<Arc<CommittedRecord>>,
    /// Encoded bytes of `records`.
    bytes: u64,
    /// Pending head: next position and the hash it links to.
    next_position: u64,
    last_hash: Hash,
    recorded_at: TimestampMicros,
    /// Commands applied in this batch, by [`CF_COMMANDS`] key (scope ‖
    /// command id).
    commands: HashMap<[u8; COMMAND_KEY_BYTES], CommandEntry>,
    /// Stream versions read or changed in this batch.
    versions: HashMap<[u8; STREAM_ID_BYTES], VersionSlot>,
}

/// The answer to a command whose key is already applied in its scope: the
/// original outcome if it is the same command (same fingerprint, or an
/// entry whose fingerprint is [`FINGERPRINT_UNKNOWN`]), a refusal if the
/// key was reused for another command.
fn same_command<R>(
    entry: &CommandEntry,
    idempotency: &Idempotency,
    command_id: CommandId,
) -> StageResult<R> {
    if entry.fingerprint == idempotency.fingerprint || entry.fingerprint == FINGERPRINT_UNKNOWN {
        Ok(AppendOutcome::Duplicate {
            first_position: entry.first_position,
            count: entry.count,
        })
    } else {
        Err(AppendError::IdempotencyKeyReused {
            command_id,
            scope: idempotency.scope,
            first_position: entry.first_position,
        })
    }
}

impl<S: StateMachine> Writer<S> {
    /// The thread body: take a request, drain what else is queued (up to
    /// the caps) into one batch, write it, answer. Ends when every sender
    /// is gone and the queue is empty.
    pub(crate) fn run(mut self) {
        let _guard = ExitGuard(self.shared.clone());
        // Dropped before `_guard`: handed-off answers are delivered before
        // the log is marked closed.
        let answerer = Answerer::start();
        while let Ok(first) = self.rx.recv() {
            if self.shared.poisoned.load(Ordering::SeqCst) {
                self.shared.metrics.record_batch(&BatchCounts {
                    requests: 1,
                    ..BatchCounts::default()
                });
                first.reply.send(Err(AppendError::Poisoned));
                self.shared.space.notify_waiters();
                continue;
            }
            let mut batch = Batch {
                write: WriteBatch::default(),
                replies: Vec::new(),
                first_position: self.head.next_position,
                records: Vec::new(),
                bytes: 0,
                next_position: self.head.next_position,
                last_hash: self.head.last_hash,
                recorded_at: self.last_recorded_at,
                commands: HashMap::new(),
                versions: HashMap::new(),
            };
            let span = tracing::debug_span!(
                "log_batch",
                requests = tracing::field::Empty,
                records = tracing::field::Empty,
                bytes = tracing::field::Empty,
                durability = ?self.options.durability,
                write_us = tracing::field::Empty,
            );
            let _entered = span.enter();
            self.state.begin_batch();
            self.process(&mut batch, first);
            while batch.replies.len() < self.options.batch_requests_max
                && batch.records.len() < self.options.batch_records_max
            {
                match self.rx.try_recv() {
                    Ok(request) => self.process(&mut batch, request),
                    Err(_) => break,
                }
            }
            self.shared.space.notify_waiters();
            self.finish(batch, &span, &answerer);
            self.marker.sync_if_due();
        }
        // Closing: the marker's last update becomes durable.
        self.marker.sync();
    }

    /// Handles one request: idempotency, decide, version check, seal,
    /// stage. Its answer is queued in the batch.
    fn process(&mut self, batch: &mut Batch<S::Rejection>, request: Request<S>) {
        let Request {
            request,
            idempotency,
            reply,
        } = request;
        let outcome = idempotency
            .map_err(AppendError::Fingerprint)
            .and_then(|idempotency| self.stage(batch, request, idempotency));
        batch.replies.push((reply, outcome));
    }

    fn stage(
        &mut self,
        batch: &mut Batch<S::Rejection>,
        request: AppendRequest<S::Command>,
        idempotency: Idempotency,
    ) -> StageResult<S::Rejection> {
        let AppendRequest {
            command_id,
            expected_version,
            command,
        } = request;

        // (1) Idempotency, in the command's scope: earlier in this batch,
        // or ever before.
        let key = command_key(idempotency.scope.as_ref(), &command_id);
        if let Some(entry) = self.applied(batch, &key, &command_id)? {
            return same_command(&entry, &idempotency, command_id);
        }

        // (2) Decide.
        let now = self.options.clock.now_micros().max(batch.recorded_at);
        let ctx = DecideContext {
            next_position: batch.next_position,
            now_micros: now,
            command_id,
        };
        let decision = self.state.decide(&command, &ctx).map_err(|rejection| {
            tracing::debug!(%command_id, ?rejection, "command rejected");
            AppendError::Rejected(rejection)
        })?;
        if decision.events.len() > EVENTS_PER_COMMAND_MAX {
            return Err(AppendError::TooManyEvents {
                count: decision.events.len(),
                max: EVENTS_PER_COMMAND_MAX,
            });
        }
        // The scope the index check will re-derive from the first record
        // must be the one the key is filed under.
        if let Some(first) = decision.events.first() {
            let derived = events::idempotency_scope_of_first_record(&decision.service_sid, first);
            if derived != idempotency.scope {
                return Err(AppendError::ScopeMismatch {
                    declared: idempotency.scope,
                    derived,
                });
            }
        }

        // (3) Optimistic concurrency on the decision's stream.
        let target = stream_id(&decision.service_sid, decision.stream.as_ref());
        let current = self.version(batch, target)?;
        if let Some(expected) = expected_version {
            if expected != current {
                return Err(AppendError::VersionConflict {
                    expected,
                    actual: current,
                });
            }
        }
        if decision.events.is_empty() {
            // Nothing to append, so nothing to remember: a retry decides
            // again.
            return Ok(AppendOutcome::Appended {
                first_position: batch.next_position,
                count: 0,
                stream_version: current,
            });
        }

        // (4) Seal every record first, so an unencodable event leaves no
        // trace of the request. Every record carries who acted.
        let actor = S::actor(&command);
        let first_position = batch.next_position;
        let mut sealed = Vec::with_capacity(decision.events.len());
        let mut running = batch.last_hash;
        for (index, event) in decision.events.into_iter().enumerate() {
            let header = RecordHeader {
                position: first_position + index as u64,
                recorded_at: now,
                service_sid: decision.service_sid,
                conversation_sid: event.conversation_sid(),
                command_id,
                actor: actor.clone(),
            };
            let record = Record::seal(header, &event, running)
                .map_err(|source| AppendError::Encode { index, source })?;
            let bytes = record
                .encode()
                .map_err(|source| AppendError::Encode { index, source })?;
            running = record.hash;
            // Read every touched stream's version now, so staging below
            // cannot fail half-way through the request.
            let stream = stream_id(
                &record.header.service_sid,
                record.header.conversation_sid.as_ref(),
            );
            self.version(batch, stream)?;
            sealed.push((record, bytes, event));
        }

        // Stage the records, the indexes and the read-model writes.
        let count = sealed.len() as u32;
        for (record, bytes, event) in sealed {
            assert_eq!(
                record.header.position, batch.next_position,
                "positions are contiguous"
            );
            assert_eq!(
                record.prev_hash, batch.last_hash,
                "each record links to the previous one"
            );
            let position = record.header.position;
            let stream = stream_id(
                &record.header.service_sid,
                record.header.conversation_sid.as_ref(),
            );
            batch
                .write
                .put_cf(cf(&self.db, CF_LOG), position_key(position), &bytes);
            batch.bytes += bytes.len() as u64;
            batch.write.put_cf(
                cf(&self.db, CF_STREAM),
                stream_index_key(&stream, position),
                b"",
            );
            let slot = batch
                .versions
                .get_mut(&stream)
                .expect("every touched stream's version was read while sealing");
            slot.version += 1;
            slot.dirty = true;
            batch.next_position = position
                .checked_add(1)
                .expect("a u64 position space is never exhausted");
            batch.last_hash = record.hash;
            let committed = Arc::new(CommittedRecord {
                header: record.header,
                event,
            });
            self.state.apply(
                &self.db,
                &mut batch.write,
                &committed.header,
                &committed.event,
            );
            batch.records.push(committed);
        }
        batch.recorded_at = now;
        let entry = CommandEntry {
            first_position,
            count,
            fingerprint: idempotency.fingerprint,
        };
        batch.commands.insert(key, entry);
        batch
            .write
            .put_cf(cf(&self.db, CF_COMMANDS), key, command_value(&entry));
        let stream_version = batch
            .versions
            .get(&target)
            .expect("the target stream's version was read for the check")
            .version;
        Ok(AppendOutcome::Appended {
            first_position,
            count,
            stream_version,
        })
    }

    /// The entry of a command key (scope ‖ command id) applied earlier in
    /// this batch or stored, if any.
    fn applied(
        &self,
        batch: &Batch<S::Rejection>,
        key: &[u8; COMMAND_KEY_BYTES],
        command_id: &CommandId,
    ) -> Result<Option<CommandEntry>, AppendError<S::Rejection>> {
        if let Some(found) = batch.commands.get(key) {
            return Ok(Some(*found));
        }
        let stored = self
            .db
            .get_pinned_cf(cf(&self.db, CF_COMMANDS), key)
            .map_err(AppendError::Storage)?;
        match stored {
            None => Ok(None),
            Some(v) => parse_command_value(&v)
                .map(Some)
                .ok_or_else(|| AppendError::Corrupt {
                    column_family: CF_COMMANDS,
                    detail: format!("command {command_id} has a {}-byte value", v.len()),
                }),
        }
    }

    /// A stream's version as of everything staged so far: from this batch,
    /// else from the durable versions in memory ([`Writer::versions`]),
    /// else from [`CF_STREAMS`] (the first touch since open).
    fn version(
        &self,
        batch: &mut Batch<S::Rejection>,
        stream: [u8; STREAM_ID_BYTES],
    ) -> Result<u64, AppendError<S::Rejection>> {
        if let Some(slot) = batch.versions.get(&stream) {
            return Ok(slot.version);
        }
        if let Some(&version) = self.versions.get(&stream) {
            batch.versions.insert(
                stream,
                VersionSlot {
                    version,
                    dirty: false,
                },
            );
            return Ok(version);
        }
        let stored = self
            .db
            .get_pinned_cf(cf(&self.db, CF_STREAMS), stream)
            .map_err(AppendError::Storage)?;
        let version = match stored {
            None => 0,
            Some(v) => parse_stream_version_value(&v).ok_or_else(|| AppendError::Corrupt {
                column_family: CF_STREAMS,
                detail: format!("a stream version is {} bytes, not 8", v.len()),
            })?,
        };
        batch.versions.insert(
            stream,
            VersionSlot {
                version,
                dirty: false,
            },
        );
        Ok(version)
    }

    /// Writes the batch (if it has records), tells the state machine, adds
    /// the batch's counts to the metrics and its fields to its `log_batch`
    /// `span`, then answers every caller through `answerer` (so a caller
    /// that has its answer sees its batch in [`super::EventLog::metrics`]).
    fn finish(
        &mut self,
        batch: Batch<S::Rejection>,
        span: &tracing::Span,
        answerer: &Answerer<S::Rejection>,
    ) {
        span.record("requests", batch.replies.len());
        span.record("records", batch.records.len());
        span.record("bytes", batch.bytes);
        let mut counts = BatchCounts {
            requests: batch.replies.len() as u64,
            ..BatchCounts::default()
        };
        for (_, outcome) in &batch.replies {
            match outcome {
                Ok(AppendOutcome::Duplicate { .. }) => counts.duplicates += 1,
                Err(AppendError::Rejected(_)) => counts.rejections += 1,
                _ => {}
            }
        }
        let answers = self.write_batch(batch, span, &mut counts);
        self.shared.metrics.record_batch(&counts);
        answerer.answer(answers);
    }

    /// [`Writer::finish`]'s body: writes, ends the batch in the state
    /// machine, notes in `counts` what became of the batch (its write time
    /// in `span` too), and returns each caller's answer.
    fn write_batch(
        &mut self,
        mut batch: Batch<S::Rejection>,
        span: &tracing::Span,
        counts: &mut BatchCounts,
    ) -> Answers<S::Rejection> {
        for (stream, slot) in &batch.versions {
            if slot.dirty {
                batch.write.put_cf(
                    cf(&self.db, CF_STREAMS),
                    stream,
                    stream_version_value(slot.version),
                );
            }
        }
        let result = if batch.records.is_empty() {
            Ok(())
        } else {
            self.state.seal_batch(&self.db, &mut batch.write);
            let write = std::mem::take(&mut batch.write);
            let head = LogHead {
                next_position: batch.next_position,
                last_hash: batch.last_hash,
            };
            let started = Instant::now();
            let written = self.write(write, batch.replies.len(), batch.records.len());
            counts.write_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            span.record("write_us", counts.write_micros);
            written.and_then(|()| self.record_head(&head))
        };
        if let Err(WriteFailure::Refused { waited_ms, full }) = &result {
            counts.refused = true;
            // Nothing reached the disk: undo the batch in memory and refuse
            // it, without poisoning; the next batch tries again.
            self.state.end_batch(false);
            tracing::warn!(
                waited_ms,
                ?full,
                "RocksDB refused writes; the batch was refused"
            );
            let refusal = || match full {
                None => AppendError::StorageStalled {
                    waited_ms: *waited_ms,
                },
                Some(message) => AppendError::StorageFull {
                    waited_ms: *waited_ms,
                    message: message.clone(),
                },
            };
            return batch
                .replies
                .into_iter()
                .map(|(reply, _)| (reply, Err(refusal())))
                .collect();
        }
        let durable = result.is_ok();
        self.state.end_batch(durable);
        match result {
            Ok(()) => {
                if !batch.records.is_empty() {
                    counts.written = true;
                    counts.records = batch.records.len() as u64;
                    counts.bytes = batch.bytes;
                    self.head = LogHead {
                        next_position: batch.next_position,
                        last_hash: batch.last_hash,
                    };
                    self.last_recorded_at = batch.recorded_at;
                    *self.shared.head.lock() = self.head;
                }
                // Every version the batch read or changed is now durable.
                for (stream, slot) in batch.versions {
                    self.versions.insert(stream, slot.version);
                }
                let records: Arc<[Arc<CommittedRecord>]> = batch.records.into();
                if !records.is_empty() {
                    self.state.committed(&records);
                }
                let first = batch.first_position;
                batch
                    .replies
                    .into_iter()
                    .map(|(reply, staged)| {
                        let answer = staged.map(|outcome| Appended {
                            records: CommittedRecords::window(
                                &records,
                                own_records(&outcome, first),
                            ),
                            outcome,
                        });
                        (reply, answer)
                    })
                    .collect()
            }
            Err(failure) => {
                counts.failed = true;
                let message = failure.to_string();
                tracing::error!(%message, "event log batch write failed; the log is poisoned");
                self.shared.poisoned.store(true, Ordering::SeqCst);
                batch
                    .replies
                    .into_iter()
                    .map(|(reply, _)| {
                        let failed = AppendError::WriteFailed {
                            message: message.clone(),
                        };
                        (reply, Err(failed))
                    })
                    .collect()
            }
        }
    }

    /// Records the head of a written batch in the head marker. A failure
    /// fails the batch as a failed write does (nobody is told it is
    /// durable, and the log is poisoned): the marker must cover every
    /// acknowledged record.
    fn record_head(&mut self, head: &LogHead) -> Result<(), WriteFailure> {
        self.marker.record(head).map_err(|e| {
            WriteFailure::Failed(format!(
                "the batch was written but the head marker {} could not be updated: {e}",
                self.marker.path().display()
            ))
        })
    }

    /// One RocksDB write for the whole batch, synced per the durability.
    ///
    /// Written with `no_slowdown`, so RocksDB refuses the write instead of
    /// blocking while writes are stopped (a flush that cannot finish, as on
    /// a full disk, would otherwise block it forever). A refusal writes
    /// nothing, and so does a write turned away because a background flush
    /// or MANIFEST write ran out of space: both are retried, with pauses
    /// from [`WRITE_STALL_RETRY_INTERVAL_MS`] doubling with jitter up to
    /// [`WRITE_STALL_RETRY_MAX_MS`], until [`WRITE_STALL_WAIT_MAX_MS`]
    /// have passed, then given up as [`WriteFailure::Refused`]. Any other
    /// error (a WAL append that fails, even for space) is
    /// [`WriteFailure::Failed`]: part of the batch may be on disk.
    ///
    /// A slowdown (too many table files waiting for compaction) is refused
    /// like a stop, so it is ridden out here by retrying rather than by
    /// RocksDB's pacing: a write allowed to wait for a slowdown blocks for
    /// good if the slowdown turns into a stop on a full disk.
    fn write(
        &self,
        write: WriteBatch,
        requests: usize,
        records: usize,
    ) -> Result<(), WriteFailure> {
        let sync = self.options.durability == Durability::Sync;
        if let Some(hook) = &self.options.before_write {
            hook(&WriteInfo {
                sync,
                requests,
                records,
                first_position: self.head.next_position,
            })
            .map_err(WriteFailure::Failed)?;
        }
        let mut write_options = WriteOptions::default();
        write_options.set_sync(sync);
        write_options.set_no_slowdown(true);
        let started = Instant::now();
        let deadline = started + Duration::from_millis(WRITE_STALL_WAIT_MAX_MS);
        let mut retry = 0u32;
        loop {
            // `write_opt` takes the batch by value: each attempt writes a
            // copy (a memcpy, small next to the write), so a refused one
            // can be retried.
            let error = match self
                .db
                .write_opt(WriteBatch::from_data(write.data()), &write_options)
            {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let full = match refused_before_writing(&error) {
                Some(full) => full,
                None => return Err(WriteFailure::Failed(error.into_string())),
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(WriteFailure::Refused {
                    waited_ms: started.elapsed().as_millis() as u64,
                    full,
                });
            }
            retry = retry.saturating_add(1);
            let pause = WRITE_STALL_BACKOFF.delay(retry);
            tracing::debug!(
                retry,
                pause_us = pause.as_micros() as u64,
                full = full.is_some(),
                "RocksDB refused the batch write; retrying"
            );
            std::thread::sleep(pause.min(deadline - now));
        }
    }
}

/// Where a request's own records lie among its batch's records (the batch
/// starting at position `batch_first`): the `count` records of an
/// [`AppendOutcome::Appended`], nothing for a duplicate (its records belong
/// to an earlier application).
fn own_records(outcome: &AppendOutcome, batch_first: u64) -> std::ops::Range<usize> {
    match *outcome {
        AppendOutcome::Appended {
            first_position,
            count,
            ..
        } if count > 0 => {
            let start = usize::try_from(first_position - batch_first)
                .expect("a batch's records fit in memory");
            start..start + count as usize
        }
        _ => 0..0,
    }
}

/// RocksDB's text for `ENOSPC`.
const NO_SPACE_TEXT: &str = "No space left on device";

/// Whether RocksDB turned a write away before writing any of it: `Some(None)`
/// for a write stall (`no_slowdown`'s `Incomplete`), `Some(Some(message))`
/// for the background error of a flush or MANIFEST write that ran out of
/// space (RocksDB checks it before the WAL append). `None` for anything
/// else, including a failed WAL append (its message names the `.log` file),
/// after which part of the batch may be on disk.
fn refused_before_writing(error: &rocksdb::Error) -> Option<Option<String>> {
    match error.kind() {
        rocksdb::ErrorKind::Incomplete => Some(None),
        rocksdb::ErrorKind::IOError => {
            let message = error.to_string();
            (message.contains(NO_SPACE_TEXT) && !message.contains(".log")).then_some(Some(message))
        }
        _ => None,
    }
}

/// Why a batch write did not happen.
enum WriteFailure {
    /// RocksDB turned the write away for longer than
    /// [`WRITE_STALL_WAIT_MAX_MS`]; nothing was written. `full` holds the
    /// background error when the disk is full, `None` for a plain stall.
    Refused {
        waited_ms: u64,
        full: Option<String>,
    },
    /// The write failed (or the test hook failed it); whether any of it
    /// reached the disk is unknown.
    Failed(String),
}

impl std::fmt::Display for WriteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteFailure::Refused { waited_ms, full } => {
                write!(f, "RocksDB refused writes for {waited_ms} ms")?;
                match full {
                    Some(message) => write!(f, ": {message}"),
                    None => Ok(()),
                }
            }
            WriteFailure::Failed(message) => f.write_str(message),
        }
    }
}
