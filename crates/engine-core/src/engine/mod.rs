//! [`Engine`]: the library API. Commands in, typed outcomes out, queries
//! over read models that are never behind the log.
//!
//! This module is the facade: opening, executing, sessions, log
//! subscriptions, reactors, inbound routing, and the wiring of delivery
//! and conversation timers. What the log's writer runs per request is
//! the state machine in `state.rs`; how the read models are stored beside
//! the log, loaded, caught up and digested is `store.rs`; what runs on the
//! caller's side before a command is queued for the writer (pre-event
//! hooks, and the methods to register them) is `pre_event.rs`.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use events::{
    AddressType, Command, CommandEnvelope, CommandId, ConversationRef, ConversationSid, Event,
    ReceiveInbound, RecordDeliveryReceipt, ServiceSid,
};
use parking_lot::RwLock;
use projections::{ReadModels, Table};
use rocksdb::DB;

use crate::commands::{self, CommandError, EngineCommand, StorageFailure};
use crate::delivery::{
    self, DeliveryMetrics, DeliveryOptions, DeliveryShared, DeliveryThreads, DeliveryWriter,
    Execute, SharedAdapter,
};
use crate::fanout::{
    run_worker, FanoutMetrics, FanoutOptions, FanoutWriter, Hub, Session, SessionError,
    SessionStart, WorkerMsg,
};
use crate::hooks::{ExecuteOptions, Hooks};
use crate::log::indexes::{self, IndexError};
use crate::log::keys::LOG_COLUMN_FAMILIES;
use crate::log::{
    AppendError, AppendOutcome, AppendRequest, Appended, EventLog, LogMetrics, LogOptions,
    OpenError, ReadError, RecordIter, StateMachine, StreamIter,
};
use crate::outcome::{typed_output, CommandOutcome, PostedMessage, TypedCommand};
use crate::reactor::{Reactor, ReactorError, ReactorHandle, ReactorMetrics, ReactorSpec, Registry};
use crate::read_view::{read_scoped, ReadView};
use crate::sources::{CommandSink, ReadSource, Sources};
use crate::subscription::{LogFeed, SubscribeFrom, Subscription, SubscriptionError};
use crate::timers::{Schedule, TimerMetrics, TimerThread, TimerWriter};

mod pre_event;
mod state;
mod store;

use state::EngineState;
use store::{catch_up, upgrade_idempotency_index};
pub use store::{
    fold_records, load_read_models, read_models_digest, state_digest, DbRows,
    CATCH_UP_BATCH_RECORDS,
};

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
    /// A fan-out or delivery thread could not be started.
    #[error("could not start an engine thread: {0}")]
    Spawn(std::io::Error),
    /// Re-deriving the log's index column families failed (see
    /// [`crate::log::indexes::rebuild_indexes`]).
    #[error(transparent)]
    Indexes(#[from] IndexError),
}

/// The command id of an inbound message: derived from its channel and the
/// channel's own message id, so a channel's retry of one message maps to
/// one command (in the service's idempotency scope).
///
/// Errors: [`CommandError::Invalid`] for an empty id,
/// [`CommandError::TooLong`] for one over
/// [`events::limits::FOREIGN_ID_BYTES_MAX`] bytes.
pub fn inbound_command_id(
    channel: AddressType,
    channel_message_id: &str,
) -> Result<CommandId, CommandError> {
    if channel_message_id.is_empty() {
        return Err(CommandError::Invalid {
            field: "channel_message_id",
            reason: "it is empty; pass the channel's own id of the message".to_string(),
        });
    }
    let max = events::limits::FOREIGN_ID_BYTES_MAX;
    if channel_message_id.len() > max {
        return Err(CommandError::TooLong {
            field: "channel_message_id",
            len: channel_message_id.len(),
            max,
            unit: "bytes",
        });
    }
    let channel = serde_json::to_string(&channel).map_err(|e| CommandError::Invalid {
        field: "channel",
        reason: e.to_string(),
    })?;
    let key = format!("colloquy/inbound/{channel}/{channel_message_id}");
    Ok(CommandId::from_key(key.as_bytes()))
}

/// Engine settings beyond the log's: fan-out and non-chat delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineOptions {
    fanout: FanoutOptions,
    delivery: DeliveryOptions,
}

impl EngineOptions {
    /// Sets the fan-out options (session queues, typing timeout, replay).
    pub fn fanout(mut self, fanout: FanoutOptions) -> Self {
        self.fanout = fanout;
        self
    }

    /// Sets the delivery options (attempts, backoff, sender threads).
    pub fn delivery(mut self, delivery: DeliveryOptions) -> Self {
        self.delivery = delivery;
        self
    }

    /// The fan-out options.
    pub fn get_fanout(&self) -> FanoutOptions {
        self.fanout
    }

    /// The delivery options.
    pub fn get_delivery(&self) -> DeliveryOptions {
        self.delivery
    }
}

/// What the engine's handle, its sessions and its threads share.
pub(crate) struct Core {
    pub(crate) log: EventLog<EngineState>,
    pub(crate) read: Arc<RwLock<ReadModels>>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) fanout_tx: Sender<WorkerMsg>,
    pub(crate) delivery: Arc<DeliveryShared>,
    pub(crate) feed: Arc<LogFeed>,
    pub(crate) hooks: Hooks,
}

/// Fan-out sessions and delivery read the engine through this, not
/// through `Core` itself.
impl ReadSource for Core {
    fn read_range(&self, range: std::ops::Range<u64>) -> RecordIter<'_> {
        self.log.read_range(range)
    }

    fn read_stream(
        &self,
        service: ServiceSid,
        conversation: Option<ConversationSid>,
        from_position: u64,
    ) -> StreamIter<'_> {
        self.log.read_stream(service, conversation, from_position)
    }

    fn read_models(&self) -> &RwLock<ReadModels> {
        &self.read
    }

    fn stream_version(
        &self,
        service: ServiceSid,
        conversation: Option<ConversationSid>,
    ) -> Result<u64, ReadError> {
        self.log.stream_version(service, conversation)
    }
}

/// Reactors issue commands and keep their checkpoints through this.
impl CommandSink for Core {
    fn reads(&self) -> &dyn ReadSource {
        self
    }

    fn execute(
        &self,
        envelope: CommandEnvelope,
        options: ExecuteOptions,
    ) -> Result<CommandOutcome, CommandError> {
        Core::execute_with(self, envelope, options)
    }

    fn db(&self) -> &DB {
        self.log.db()
    }
}

impl Core {
    /// See [`Engine::execute`].
    pub(crate) fn execute(
        &self,
        envelope: CommandEnvelope,
    ) -> Result<CommandOutcome, CommandError> {
        self.execute_with(envelope, ExecuteOptions::default())
    }

    /// The command's outcome from the writer's answer. An appended
    /// command's records come with the answer, from the writer's memory
    /// (nothing is read back); only a duplicate's, which belong to an
    /// earlier application, are read from the log.
    fn outcome(
        &self,
        appended: Result<Appended, AppendError<CommandError>>,
    ) -> Result<CommandOutcome, CommandError> {
        let (first, count) = match appended {
            Ok(Appended {
                outcome:
                    AppendOutcome::Appended {
                        first_position,
                        count,
                        ..
                    },
                records,
            }) => {
                // The writer hands back exactly the records it appended.
                assert_eq!(
                    records.len(),
                    count as usize,
                    "the writer answers an append with its records"
                );
                let records = records
                    .iter()
                    .map(|record| (record.header.clone(), record.event.clone()))
                    .collect();
                return Ok(CommandOutcome {
                    first_position,
                    records,
                    deduplicated: false,
                });
            }
            Ok(Appended {
                outcome:
                    AppendOutcome::Duplicate {
                        first_position,
                        count,
                    },
                ..
            }) => (first_position, count),
            Err(AppendError::Rejected(e)) => return Err(e),
            Err(AppendError::VersionConflict { expected, actual }) => {
                return Err(CommandError::VersionConflict { expected, actual })
            }
            Err(AppendError::IdempotencyKeyReused {
                command_id,
                scope,
                first_position,
            }) => {
                return Err(CommandError::IdempotencyKeyReused {
                    command_id,
                    scope,
                    first_position,
                })
            }
            Err(AppendError::Fingerprint(e)) => return Err(pre_event::unfingerprintable(e)),
            Err(AppendError::Closed) => return Err(StorageFailure::Closed.into()),
            Err(AppendError::Poisoned) => return Err(StorageFailure::Poisoned.into()),
            Err(AppendError::StorageStalled { waited_ms }) => {
                return Err(StorageFailure::Stalled { waited_ms }.into())
            }
            Err(AppendError::StorageFull { waited_ms, message }) => {
                return Err(StorageFailure::Full { waited_ms, message }.into())
            }
            Err(AppendError::WriteFailed { message }) => {
                return Err(StorageFailure::WriteFailed { message }.into())
            }
            Err(e @ (AppendError::Storage(_) | AppendError::Corrupt { .. })) => {
                return Err(StorageFailure::Read(e.to_string()).into())
            }
            Err(
                e @ (AppendError::TooManyEvents { .. }
                | AppendError::Encode { .. }
                | AppendError::ScopeMismatch { .. }),
            ) => return Err(StorageFailure::Internal(e.to_string()).into()),
        };
        let mut records = Vec::with_capacity(count as usize);
        for record in self.log.read_range(first..first + u64::from(count)) {
            let record = record.map_err(|e| StorageFailure::Read(e.to_string()))?;
            let event = record
                .event()
                .map_err(|e| StorageFailure::Read(e.to_string()))?;
            records.push((record.header, event));
        }
        Ok(CommandOutcome {
            first_position: first,
            records,
            deduplicated: true,
        })
    }
}

/// The Colloquy engine: an event log plus read models, in one directory,
/// with live fan-out to device sessions and non-chat delivery.
///
/// Every command is decided against the read models on the log's single
/// writer thread, appended as events, and folded into the read models in
/// the same RocksDB batch. Queries ([`Engine::read`]) see every
/// acknowledged command and nothing that is not yet durable. Durable
/// events are pushed to the [`Session`]s of the identities that should
/// see them (see [`crate::fanout`]) and, for non-chat participants, to the
/// registered [`crate::ChannelAdapter`]s (see [`crate::delivery`]).
///
/// Dropping the engine stops delivery (waiting for adapter calls in
/// flight), ends every session's live stream, and closes the log.
pub struct Engine {
    core: Arc<Core>,
    worker: Option<JoinHandle<()>>,
    delivery: DeliveryThreads,
    timers: TimerThread,
    reactors: Registry,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("log", &self.core.log)
            .finish()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Reactors first: their handlers may still execute commands; then
        // the timer thread, which may too.
        self.reactors.stop_all();
        self.timers.stop();
        self.core.feed.close();
        self.core.delivery.shutdown();
        self.delivery.join();
        let _ = self.core.fanout_tx.send(WorkerMsg::Shutdown);
        if let Some(worker) = self.worker.take() {
            if worker.join().is_err() {
                tracing::error!("the fan-out worker thread panicked");
            }
        }
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
        Self::open_with(path, options, EngineOptions::default())
    }

    /// [`Engine::open`] with fan-out and delivery settings.
    ///
    /// Also recovers the pending non-chat deliveries from the read models
    /// (they start once an adapter for their channel is registered).
    ///
    /// Errors: as [`Engine::open`], plus [`EngineError::Spawn`] if a
    /// fan-out or delivery thread cannot start.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: LogOptions,
        engine_options: EngineOptions,
    ) -> Result<Engine, EngineError> {
        Self::open_with_progress(path, options, engine_options, &mut |_, _| {})
    }

    fn open_with_progress(
        path: impl AsRef<Path>,
        options: LogOptions,
        engine_options: EngineOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Engine, EngineError> {
        let read = Arc::new(RwLock::new(ReadModels::new()));
        let hub = Arc::new(Hub::new(engine_options.fanout));
        let (fanout_tx, fanout_rx) = crossbeam_channel::unbounded();
        let (delivery_tx, delivery_rx) = crossbeam_channel::unbounded();
        let (timer_tx, timer_rx) = crossbeam_channel::unbounded();
        let clock = options.get_clock();
        let shared = read.clone();
        let (writer_hub, writer_fanout, writer_delivery, writer_timers) = (
            hub.clone(),
            fanout_tx.clone(),
            delivery_tx.clone(),
            timer_tx.clone(),
        );
        let mut schedule = Schedule::default();
        let schedule_at_open = &mut schedule;
        let mut opened_feed = None;
        let feed_slot = &mut opened_feed;
        let log = EventLog::open(path, options, move |db, head| {
            upgrade_idempotency_index(db)?;
            let mut rm = load_read_models(db)?;
            catch_up(db, &mut rm, head, progress)?;
            writer_hub.rebuild(&rm);
            let delivery = DeliveryWriter::new(&rm, writer_delivery);
            // Before the writer starts: every later record reaches the
            // timer thread through `writer_timers`.
            *schedule_at_open = Schedule::from_read_models(&rm);
            let timers = TimerWriter::new(schedule_at_open, writer_timers);
            *shared.write() = rm;
            let feed = Arc::new(LogFeed::new(head.next_position));
            *feed_slot = Some(feed.clone());
            Ok::<_, EngineError>(EngineState {
                db: db.clone(),
                read: shared,
                guard: None,
                fanout: FanoutWriter::new(writer_hub, writer_fanout),
                delivery,
                timers,
                feed,
            })
        })?;
        let feed = opened_feed.expect("the log's open ran its init");
        let core = Arc::new(Core {
            log,
            read,
            hub: hub.clone(),
            fanout_tx,
            delivery: Arc::new(DeliveryShared::new(engine_options.delivery, delivery_tx)),
            feed: feed.clone(),
            hooks: Hooks::new(),
        });
        let reactors = {
            let source: Arc<dyn ReadSource> = core.clone();
            Registry::new(
                core.clone(),
                Sources::new(Arc::downgrade(&source)),
                hub.clone(),
                feed,
                clock.clone(),
            )
        };
        let worker = std::thread::Builder::new()
            .name("colloquy-fanout".into())
            .spawn(move || run_worker(hub, fanout_rx))
            .map_err(EngineError::Spawn)?;
        // The engine's own commands (delivery receipts, timer moves) run
        // no pre-event hook: hooks vet what callers ask, not what the
        // engine's channels and clock record.
        let execute: Execute = {
            let core = core.clone();
            let own = ExecuteOptions::default().without_pre_event_hooks();
            Arc::new(move |envelope| core.execute_with(envelope, own).map(|_| ()))
        };
        let mut delivery = match delivery::start(
            &core.delivery,
            core.clone(),
            execute.clone(),
            delivery_rx,
            clock.clone(),
        ) {
            Ok(d) => d,
            Err(e) => {
                let _ = core.fanout_tx.send(WorkerMsg::Shutdown);
                let _ = worker.join();
                return Err(EngineError::Spawn(e));
            }
        };
        let timers =
            match TimerThread::start(schedule, clock, core.clone(), execute, timer_tx, timer_rx) {
                Ok(t) => t,
                Err(e) => {
                    core.delivery.shutdown();
                    delivery.join();
                    let _ = core.fanout_tx.send(WorkerMsg::Shutdown);
                    let _ = worker.join();
                    return Err(EngineError::Spawn(e));
                }
            };
        Ok(Engine {
            core,
            worker: Some(worker),
            delivery,
            timers,
            reactors,
        })
    }

    /// Executes a command and waits until its records are durable.
    ///
    /// Returns the command's typed result ([`TypedCommand::Output`]): the
    /// SID a creation made (`CreateConversation` gives a
    /// `ConversationSid`), the [`PostedMessage`] a post made, `()` for
    /// updates and deletes; for the serialisable [`Command`] enum, the
    /// whole [`CommandOutcome`] (the records, `deduplicated`).
    ///
    /// A retry — the same command, by the same acting identity, under a
    /// command id already applied in its idempotency scope
    /// ([`Command::idempotency_scope`]: the service it addresses, or the
    /// account scope for `CreateService`) — appends nothing and returns
    /// the first execution's result, read from the original records. Ids
    /// are scoped: another service's use of the same id is never seen.
    ///
    /// ```no_run
    /// # use engine_core::{Engine, log::LogOptions};
    /// # use events::*;
    /// # fn demo(engine: &Engine, service: ServiceSid) -> Result<(), engine_core::CommandError> {
    /// let ticket = engine.execute(CommandEnvelope::new(
    ///     "ticket-42/create",
    ///     CreateConversation::new(service).unique_name("ticket-42"),
    /// ))?; // a ConversationSid
    /// let posted = engine.execute(CommandEnvelope::new(
    ///     "ticket-42/msg-1",
    ///     PostMessage::new(service, ticket).author("alice").body("hi"),
    /// ))?; // a PostedMessage
    /// assert_eq!(posted.conversation_sid, ticket);
    /// # Ok(()) }
    /// ```
    ///
    /// Errors: the handler's typed refusal (nothing written),
    /// [`CommandError::IdempotencyKeyReused`] for a different command
    /// under an id already applied in its scope (nothing written),
    /// [`CommandError::VersionConflict`], or [`CommandError::Storage`] when
    /// the log cannot append (I/O failure, poisoned or closed log;
    /// [`StorageFailure::is_retryable`] and [`StorageFailure::needs_reopen`]
    /// say what to do), [`CommandError::ReadViewHeld`] when this thread is
    /// inside a read, [`CommandError::PreEventHook`] when a pre-event hook
    /// refused it (see [`Engine::set_pre_event_hook`]; nothing written).
    pub fn execute<C: TypedCommand>(
        &self,
        envelope: CommandEnvelope<C>,
    ) -> Result<C::Output, CommandError> {
        typed_output::<C>(self.core.execute(envelope.into_command())?)
    }

    /// The async form of [`Engine::execute`]: resolves when durable.
    /// Pre-event hooks run as [`Engine::execute_async_with`] runs them.
    pub async fn execute_async<C: TypedCommand>(
        &self,
        envelope: CommandEnvelope<C>,
    ) -> Result<C::Output, CommandError> {
        self.execute_async_with(envelope, ExecuteOptions::default())
            .await
    }

    /// Runs `query` on the read models as of the last durable batch and
    /// returns its result: `engine.read(|q| q.user_conversations(&service,
    /// "alice", &PageRequest::default()))`.
    ///
    /// The read lock is held only while `query` runs, and no guard is
    /// handed out: keep the closure short, as the writer waits for it at
    /// the start of each batch. The result cannot borrow from the read
    /// models; clone what you keep.
    ///
    /// Inside `query`, this thread cannot execute commands:
    /// [`Engine::execute`] and everything else that appends answer
    /// [`CommandError::ReadViewHeld`] at once instead of waiting for a
    /// writer that waits for this read. Nested reads on one thread are
    /// fine: they never queue behind a waiting writer. A panic in `query`
    /// propagates and releases the read.
    pub fn read<R>(&self, query: impl FnOnce(&ReadModels) -> R) -> R {
        read_scoped(&self.core.read, query)
    }

    /// The underlying log (reads, verification, head).
    pub fn log(&self) -> &EventLog<impl StateMachine> {
        &self.core.log
    }

    /// The digest of the persisted read models and the row count (see
    /// [`read_models_digest`]).
    pub fn live_digest(&self) -> Result<([u8; 32], u64), EngineError> {
        read_models_digest(self.core.log.db())
    }

    /// Opens a device session for `identity` in `service` (any number per
    /// identity). See [`Session`] for what it yields and guarantees; with
    /// [`SessionStart::After`] it first replays what the identity missed
    /// after that cursor. The identity need not be a user or participant
    /// yet: it sees conversations as it joins them.
    ///
    /// Errors: [`SessionError::ServiceNotFound`];
    /// [`SessionError::CursorAhead`] for a cursor at or past the head.
    pub fn open_session(
        &self,
        service: ServiceSid,
        identity: &str,
        start: SessionStart,
    ) -> Result<Session, SessionError> {
        let source: Arc<dyn ReadSource> = self.core.clone();
        let sources = Sources::new(Arc::downgrade(&source));
        Session::open(self.core.hub.clone(), sources, service, identity, start)
    }

    /// A weak handle on the engine's read side, for the built-in reactors
    /// (post-event webhooks) that read the log beyond their records.
    #[cfg_attr(not(feature = "webhook"), allow(dead_code))]
    pub(crate) fn sources(&self) -> Sources {
        let source: Arc<dyn ReadSource> = self.core.clone();
        Sources::new(Arc::downgrade(&source))
    }

    /// Follows the durable log from `from`: a [`Subscription`] yields every
    /// committed record (header with its position, and decoded event) from
    /// there on, in log order, exactly once, with no gap, blocking
    /// ([`Subscription::next`] up to a deadline) or async
    /// ([`Subscription::next_async`], or as a stream). It is woken when a
    /// batch becomes durable, never by polling, and yields only durable
    /// records. Positions are the log's: dense from 0;
    /// [`SubscribeFrom::Position`]`(p)` starts with the record at `p`,
    /// [`SubscribeFrom::Now`] with the next one committed. See
    /// [`crate::subscription`] for how a slow subscriber is kept from
    /// costing memory.
    ///
    /// Errors: [`SubscriptionError::PositionAhead`] for a position past the
    /// log's next position; reading errors come from the subscription
    /// itself ([`SubscriptionError::Read`] naming the position).
    pub fn subscribe(&self, from: SubscribeFrom) -> Result<Subscription, SubscriptionError> {
        let source: Arc<dyn ReadSource> = self.core.clone();
        let sources = Sources::new(Arc::downgrade(&source));
        Subscription::open(sources, self.core.hub.clone(), self.core.feed.clone(), from)
    }

    /// Starts a durable reactor (see [`crate::reactor`]): `reactor` gets
    /// each durable record `spec`'s filter matches, in log order, on a
    /// thread of its own, from the reactor's checkpoint in this store (the
    /// first time, from where `spec` says). Commands it issues through its
    /// context are applied exactly once however often a record is
    /// delivered. It runs until [`Engine::stop_reactor`] or the engine is
    /// dropped.
    ///
    /// Errors: [`ReactorError::InvalidName`],
    /// [`ReactorError::UnknownEventType`] for a filter naming no event
    /// type, [`ReactorError::AlreadyRunning`] for a name in use,
    /// [`ReactorError::CheckpointAhead`] and [`ReactorError::Corrupt`] for a
    /// damaged stored checkpoint, [`ReactorError::Storage`],
    /// [`ReactorError::Spawn`].
    pub fn start_reactor(
        &self,
        spec: ReactorSpec,
        reactor: impl Reactor,
    ) -> Result<ReactorHandle, ReactorError> {
        self.reactors.start(spec, Box::new(reactor))
    }

    /// The running reactor named `name`, if any.
    pub fn reactor(&self, name: &str) -> Option<ReactorHandle> {
        self.reactors.handle(name)
    }

    /// Stops the reactor named `name`, waiting for its thread (and its
    /// handler's current call); what it handled is checkpointed. Returns
    /// whether it was running.
    pub fn stop_reactor(&self, name: &str) -> bool {
        self.reactors.stop(name)
    }

    /// Each reactor's checkpoint, lag (committed head minus checkpoint)
    /// and counters, by name. Never waits for a reactor's handler.
    pub fn reactor_metrics(&self) -> Vec<ReactorMetrics> {
        self.reactors.metrics()
    }

    /// The log writer's counters (batches, requests, records and bytes
    /// written, rejections, duplicates, write time; see [`LogMetrics`]).
    /// Lock-free: never waits for the writer.
    pub fn log_metrics(&self) -> LogMetrics {
        self.core.log.metrics()
    }

    /// The fan-out counters (sessions, deliveries, lagging sessions, …).
    pub fn fanout_metrics(&self) -> FanoutMetrics {
        self.core.hub.metrics()
    }

    /// Signals that `identity` is typing in `conversation`. Ephemeral:
    /// nothing is logged. The other members' live sessions (never the
    /// typist's own) get `typingStarted` unless it is already typing, in
    /// which case its timeout is pushed back; `typingEnded` follows on
    /// its next message, when it leaves, or after the typing timeout
    /// ([`crate::fanout::TYPING_TIMEOUT`] by default), or when the
    /// conversation closes. Active and inactive conversations accept
    /// typing; a closed one is read-only, as in Twilio.
    ///
    /// The check and the hand-off to the fan-out worker happen under one
    /// read view, so a close that this call did not see reaches the worker
    /// after the typing, and ends it.
    ///
    /// Errors: [`CommandError::NotFound`] if the service or conversation
    /// does not exist or `identity` is not a chat participant of it;
    /// [`CommandError::ConversationClosed`] if the conversation is closed;
    /// [`CommandError::Storage`] if the engine is shutting down.
    pub fn typing(
        &self,
        service: ServiceSid,
        conversation: &ConversationRef,
        identity: &str,
    ) -> Result<(), CommandError> {
        // Held until the worker has the message: the writer publishes a
        // batch (taking the write lock) before handing it to the worker.
        let rm = ReadView::acquire(&self.core.read);
        let svc = rm.service(&service).ok_or_else(|| CommandError::NotFound {
            kind: "service",
            id: service.to_string(),
        })?;
        let conv = svc
            .resolve(conversation)
            .ok_or_else(|| CommandError::NotFound {
                kind: "conversation",
                id: match conversation {
                    ConversationRef::Sid(s) => s.to_string(),
                    ConversationRef::UniqueName(n) => n.clone(),
                },
            })?;
        commands::require_open(conv)?;
        let participant = conv
            .participant_by_identity(identity)
            .map(|p| p.sid)
            .ok_or_else(|| CommandError::NotFound {
                kind: "participant",
                id: identity.to_string(),
            })?;
        let mailbox = self.core.hub.mailbox(service, identity);
        let sent = self.core.fanout_tx.send(WorkerMsg::Typing {
            service,
            conversation: conv.row().sid,
            participant,
            mailbox,
        });
        drop(rm);
        sent.map_err(|_| StorageFailure::Closed.into())
    }

    /// Routes an inbound message from a channel ([`ReceiveInbound`]):
    /// with a binding (`to` = proxy address, `from` = address) to an open
    /// conversation it is appended as that participant's message; without
    /// one, the Address Configuration for `to` may autocreate a
    /// conversation with the participant and the message, atomically. Two
    /// inbound messages for a new binding arriving at once create one
    /// conversation: decisions are serialised on the writer.
    ///
    /// `channel_message_id` is the channel's own id of the message (an SMS
    /// gateway's message SID): the command id is derived from (its channel,
    /// `channel_message_id`) in `service`'s idempotency scope
    /// ([`inbound_command_id`]), so a gateway's retry of the same message
    /// is answered with the original outcome (`deduplicated: true`) and
    /// posts nothing. [`Engine::inbound_message`] looks the message up by
    /// that id.
    ///
    /// Errors: [`CommandError::Invalid`] for an empty `channel_message_id`,
    /// [`CommandError::TooLong`] for one over
    /// [`events::limits::FOREIGN_ID_BYTES_MAX`] bytes;
    /// [`CommandError::IdempotencyKeyReused`] when the same channel message
    /// id arrives with a different sender, recipient, body or media;
    /// [`CommandError::NoRoute`] when no binding matches and no address
    /// configuration of its channel for `to` allows autocreation (nothing is
    /// remembered: a retry routes again); [`CommandError::NotFound`] for an
    /// unknown service; validation errors for the body and media;
    /// [`CommandError::Storage`].
    pub fn receive_inbound(
        &self,
        channel_message_id: &str,
        inbound: ReceiveInbound,
    ) -> Result<CommandOutcome, CommandError> {
        let command_id = inbound_command_id(inbound.channel, channel_message_id)?;
        self.execute(CommandEnvelope::new(command_id, Command::from(inbound)))
    }

    /// What the inbound message `channel_message_id` of `channel`, received
    /// in `service` through [`Engine::receive_inbound`], became: its
    /// conversation and message. `None` if no such message was received
    /// (or it was refused, e.g. with [`CommandError::NoRoute`]).
    ///
    /// Errors: as [`inbound_command_id`] for a malformed id;
    /// [`CommandError::Storage`] if the idempotency entry or its records
    /// cannot be read, or if the records it points at hold no message.
    pub fn inbound_message(
        &self,
        service: ServiceSid,
        channel: AddressType,
        channel_message_id: &str,
    ) -> Result<Option<PostedMessage>, CommandError> {
        let command_id = inbound_command_id(channel, channel_message_id)?;
        let entry = indexes::command_entry(self.core.log.db(), Some(&service), &command_id)
            .map_err(|e| CommandError::from(StorageFailure::Read(e.to_string())))?;
        let Some(entry) = entry else {
            return Ok(None);
        };
        let end = entry.first_position + u64::from(entry.count);
        for record in self.core.log.read_range(entry.first_position..end) {
            let record =
                record.map_err(|e| CommandError::from(StorageFailure::Read(e.to_string())))?;
            let event = record
                .event()
                .map_err(|e| CommandError::from(StorageFailure::Read(e.to_string())))?;
            if let Event::MessageAdded {
                message_sid, index, ..
            } = event
            {
                if let Some(conversation_sid) = record.header.conversation_sid {
                    return Ok(Some(PostedMessage {
                        conversation_sid,
                        message_sid,
                        index,
                        position: record.header.position,
                    }));
                }
            }
        }
        Err(CommandError::from(StorageFailure::Read(format!(
            "inbound message {channel_message_id:?} of service {service}: its records at \
             positions {}..{end} hold no message",
            entry.first_position
        ))))
    }

    /// Registers (or replaces) the [`crate::ChannelAdapter`] that sends
    /// messages on `channel`. Pending deliveries for that channel,
    /// including those recovered at open, start right away.
    pub fn register_channel_adapter(&self, channel: AddressType, adapter: SharedAdapter) {
        self.core.delivery.register(channel, adapter);
    }

    /// Records a delivery status a channel reported for `message` to
    /// `participant` (`sent`, `delivered`, `read`, `failed`,
    /// `undelivered`, with the channel's error code and message id). The message's per-participant
    /// receipts and `delivery` summary are then queryable
    /// ([`ReadModels::receipts`], [`ReadModels::delivery_summary`]). The
    /// same report twice is recorded once. Statuses only move forward
    /// (`sent`, then `delivered`, `undelivered` or `failed`, then `read`):
    /// a report that is not further along than the status recorded for the
    /// pair is accepted and appends nothing (its outcome has no records).
    ///
    /// Errors: [`CommandError::NotFound`] for an unknown service,
    /// conversation, message or participant; [`CommandError::TooLong`]
    /// for an oversized channel message id; [`CommandError::Storage`].
    pub fn report_delivery_status(
        &self,
        receipt: RecordDeliveryReceipt,
    ) -> Result<CommandOutcome, CommandError> {
        let key = format!(
            "colloquy/receipt/{}/{}/{}/{}/{:?}/{:?}/{:?}",
            receipt.service,
            receipt.conversation,
            receipt.message,
            receipt.participant,
            receipt.status,
            receipt.error_code,
            receipt.channel_message_sid.as_deref()
        );
        self.execute(CommandEnvelope::new(key, Command::from(receipt)))
    }

    /// The delivery counters (pending, attempts, sent, failed, …).
    pub fn delivery_metrics(&self) -> DeliveryMetrics {
        self.core.delivery.metrics()
    }

    /// The conversation-timer thread's counters (timers armed, fired,
    /// conflicts, and the clock time up to which due timers are handled;
    /// see [`crate::timers`]). Lock-free: never waits for the thread.
    pub fn timer_metrics(&self) -> TimerMetrics {
        self.timers.metrics()
    }

    /// Re-derives the log's index column families (stream index, stream
    /// versions, idempotency entries: see
    /// [`crate::log::indexes::rebuild_indexes`], which keeps a fingerprint
    /// only where the stored entry agrees with the log and writes an
    /// "unknown" one otherwise), then drops the store's read models and
    /// refolds them from the log. `progress(done, total)` reports records
    /// folded.
    ///
    /// Needs the store alone: errors with [`EngineError::InUse`] while
    /// another process has it open. The store is opened as
    /// [`EventLog::open`] opens it (same checks and options); damage is
    /// [`EngineError::Open`] with [`OpenError::LogFileDamaged`],
    /// [`OpenError::StoreDamaged`] or, if the log ends before its head
    /// marker, [`OpenError::AcknowledgedRecordsMissing`] (checked before
    /// anything is changed). Other errors: I/O, a chain fault,
    /// [`EngineError::Indexes`] when the log cannot be read or holds one
    /// command twice (nothing is changed then).
    pub fn rebuild(
        path: impl AsRef<Path>,
        options: LogOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Engine, EngineError> {
        let path = path.as_ref();
        {
            let mut db_options = crate::log::storage::db_options();
            db_options.create_if_missing(false);
            let storage_check = crate::log::storage::check_log_files(path)?;
            let marker = crate::log::head_marker::read_head_marker(path)?;
            let names = DB::list_cf(&db_options, path)
                .map_err(|e| crate::log::storage::open_error(path, e, None))?;
            let mut db = DB::open_cf(&db_options, path, &names).map_err(|e| in_use(path, e))?;
            // Before anything is re-derived from a log that lost records.
            if names.iter().any(|n| n == crate::log::keys::CF_LOG) {
                crate::log::head_marker::check_head_marker(
                    path,
                    marker.as_ref(),
                    &db,
                    &storage_check,
                )?;
            }
            for name in LOG_COLUMN_FAMILIES {
                if !names.iter().any(|n| n == name) {
                    db.create_cf(name, &rocksdb::Options::default())?;
                }
            }
            indexes::rebuild_indexes(&db)?;
            for table in Table::ALL {
                if names.iter().any(|n| n == table.name()) {
                    db.drop_cf(table.name())?;
                }
                db.create_cf(table.name(), &rocksdb::Options::default())?;
            }
        }
        Self::open_with_progress(path, options, EngineOptions::default(), progress)
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
        EngineError::Open(crate::log::storage::open_error(path, e, None))
    }
}

/// Appending waits for the writer, and the writer waits for every read view
/// at the start of its batch: a thread holding one would wait forever.
fn refuse_under_read_view() -> Result<(), CommandError> {
    if ReadView::held_by_this_thread() {
        return Err(CommandError::ReadViewHeld);
    }
    Ok(())
}

fn request(envelope: CommandEnvelope) -> AppendRequest<EngineCommand> {
    AppendRequest {
        command_id: envelope.command_id,
        expected_version: envelope.expected_version,
        command: EngineCommand {
            acting_identity: envelope.acting_identity,
            command: envelope.command,
            requested_fingerprint: None,
        },
    }
}
