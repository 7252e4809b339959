//! Durable reactors: named log subscriptions whose handler receives each
//! matching event once it is durable, and may issue commands back into the
//! engine with exactly-once effects.
//!
//! A host starts one with [`crate::Engine::start_reactor`]: a
//! [`ReactorSpec`] (a name, a [`ReactorFilter`] on event types, service and
//! conversation, where a new reactor starts, retry settings) and a
//! [`Reactor`] (a handler; [`reactor_fn`] makes one of a closure). Each
//! reactor runs on a thread of its own (`colloquy-reactor-NAME`), never on
//! the log's writer, following the log through a
//! [`crate::Subscription`].
//!
//! Guarantees:
//! - **After durability, in log order.** The handler sees a record only
//!   once its batch is durable, one record at a time, in position order.
//! - **Checkpointed in the same store.** A reactor's checkpoint (the
//!   position after the last record it fully handled) lives in the
//!   [`CF_REACTORS`] column family of the engine's RocksDB store and is
//!   written at least every [`REACTOR_CHECKPOINT_RECORDS_MAX`] records and
//!   whenever the reactor catches up. After a restart (or a crash) it
//!   resumes there; records handled after the last checkpoint are handled
//!   again. Checkpoint writes are not synced themselves: they share the
//!   log's write-ahead log, so they become durable with the log's next
//!   synced batch, and a power loss can move a checkpoint back (records
//!   are re-delivered), never past a record the log lost.
//! - **Exactly-once effects through commands.** A command the handler
//!   issues through [`ReactorContext::execute`] gets the command id
//!   [`reactor_command_id`]`(name, position, ordinal)`, the ordinal
//!   counting the handler's commands for that record from 0. A re-delivered
//!   record (after a crash, a retry, a replay or a re-drive) therefore
//!   issues the same ids, which the log's idempotency answers with the
//!   first outcome: an effect applies once however often its record is
//!   delivered. This needs a handler that issues the same commands in the
//!   same order for the same record: a different command under an id
//!   already applied is refused ([`crate::CommandError::IdempotencyKeyReused`]),
//!   so issue a command unconditionally and let its refusal say it is moot
//!   (as the example below does) rather than skip it after reading the
//!   read models, which shifts the ordinals of the commands after it.
//!   Effects outside the engine (an HTTP call) are at least once.
//! - **Retry, then park.** A handler that fails (returns an error or
//!   panics) is retried with jittered exponential backoff
//!   ([`crate::log::Backoff`], [`ReactorSpec::backoff`]), measured on the
//!   log's clock ([`crate::log::Clock`]: with a `TestClock`, a retry comes
//!   when the clock is moved past it), holding back the records after it. After [`ReactorSpec::attempts_max`] attempts
//!   ([`REACTOR_ATTEMPTS_MAX_DEFAULT`]) the record is parked: a
//!   [`ParkedEvent`] is written in the same batch as the checkpoint that
//!   moves past it, and the reactor goes on. Parked events are listed with
//!   [`ReactorHandle::parked`] and handled again with
//!   [`ReactorHandle::redrive`].
//! - **Replay.** [`ReactorHandle::replay_from`] moves the checkpoint to a
//!   position (back or forward) and drops the parked events from there on
//!   (they are delivered again). Commands issued for records handled before
//!   are answered as duplicates, so a replay re-runs effects outside the
//!   engine (Twilio's `ReplayAfter` for webhooks) but never applies a
//!   command twice.
//! - **Observable.** [`crate::Engine::reactor_metrics`] gives each
//!   reactor's checkpoint, the committed head and their difference, the
//!   lag, with counters of handled, skipped, failed, parked and re-driven
//!   records.
//!
//! The seed scenario (Twilio's "Using Conversations with Studio"): a
//! customer writes "support" and an agent is added to the conversation.
//! Below, a reactor sees every message; [`crate::Engine::start_studio_flow`]
//! ([`crate::studio`]) runs the same handler for the conversations a
//! `Target=studio` webhook hands to a flow.
//!
//! ```no_run
//! use engine_core::reactor::{reactor_fn, ReactorFilter, ReactorSpec, ReactorStart};
//! use engine_core::{CommandError, Engine, LogOptions};
//! use events::{AddParticipant, Event, ParticipantSpec};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::open("data", LogOptions::default())?;
//! let spec = ReactorSpec::new("studio-support")
//!     .filter(ReactorFilter::all().event_types(["message_added"]))
//!     .start(ReactorStart::Beginning);
//! engine.start_reactor(
//!     spec,
//!     reactor_fn(|cx, record| {
//!         let Event::MessageAdded { conversation_sid, body: Some(body), .. } = &record.event
//!         else {
//!             return Ok(());
//!         };
//!         if body.trim().eq_ignore_ascii_case("support") {
//!             let agent = ParticipantSpec::chat("agent");
//!             let add = AddParticipant::new(record.header.service_sid, *conversation_sid, agent);
//!             match cx.execute(add) {
//!                 // Added, or added by an earlier delivery of this record.
//!                 Ok(_) => {}
//!                 // Asked for support twice: the agent is already there.
//!                 Err(CommandError::ParticipantExists { .. }) => {}
//!                 Err(e) => return Err(e.into()),
//!             }
//!         }
//!         Ok(())
//!     }),
//! )?;
//! # Ok(()) }
//! ```
//!
//! Modules: `store` (the column family's layout, reads and staged writes),
//! `runner` (the reactor's thread: handle, retry, park, checkpoint, and
//! the host's requests). Reactors never name the engine facade: the
//! engine hands them a `sources::CommandSink` and a weak
//! `sources::Sources`.
//!
//! Observability: a failed attempt is logged at warn (reactor, position,
//! attempt, error), a parked record at error, a re-drive at info; the
//! counts are in [`ReactorMetrics`].

mod runner;
mod store;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use events::{CommandEnvelope, CommandId, ConversationSid, ServiceSid};
use parking_lot::{Condvar, Mutex};
use projections::ReadModels;

use crate::commands::CommandError;
use crate::fanout::Hub;
use crate::hooks::ExecuteOptions;
use crate::log::{Backoff, Clock, CommittedRecord};
use crate::outcome::{typed_output, TypedCommand};
use crate::read_view::read_scoped;
use crate::sources::{CommandSink, Sources};
use crate::subscription::{LogFeed, SubscribeFrom, Subscription, SubscriptionError};

pub use store::CF_REACTORS;

/// How many times a reactor tries a record, by default, before it parks
/// it: with the default backoff the last try comes about 1.5 s after the
/// first (0.1 + 0.2 + 0.4 + 0.8 s of ceilings), long enough to ride out a
/// blip in whatever the handler calls, short enough that one bad record
/// holds the reactor's stream back only briefly.
pub const REACTOR_ATTEMPTS_MAX_DEFAULT: u32 = 5;

/// The backoff ceiling before a reactor's first retry, by default, in
/// milliseconds: the ceiling doubles per retry (see [`crate::log::Backoff`]).
pub const REACTOR_BACKOFF_INITIAL_MS_DEFAULT: u64 = 100;

/// The largest backoff between a reactor's retries, by default, in
/// milliseconds: 10 s bounds the wait of a reactor configured with many
/// attempts.
pub const REACTOR_BACKOFF_MAX_MS_DEFAULT: u64 = 10_000;

/// The longest reactor name, in bytes: a name is part of every key of the
/// reactor's checkpoint and parked events (behind a one-byte length) and
/// of its command ids.
pub const REACTOR_NAME_BYTES_MAX: usize = 128;

/// The most records a reactor handles between two checkpoint writes: a
/// crash re-delivers at most this many (their commands are answered as
/// duplicates), and a checkpoint costs one small write per this many
/// records under load (one per catch-up when idle). Equal to a
/// subscription's read chunk, so a chunk is checkpointed once.
pub const REACTOR_CHECKPOINT_RECORDS_MAX: u64 =
    crate::subscription::SUBSCRIPTION_READ_CHUNK_RECORDS;

/// The longest error message kept with a parked event, in bytes (cut at a
/// character boundary): enough for a diagnosis, bounded so a handler that
/// fails with a whole response body cannot bloat the store.
pub const PARKED_ERROR_BYTES_MAX: usize = 1_024;

/// What a handler's failure is: any error (a [`CommandError`] with `?`
/// included). Its message is kept with the record if it is parked.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// A reactor's handler: called on the reactor's thread with each matching
/// durable record, in log order.
///
/// Return `Ok(())` once the record is fully handled; an error (or a panic)
/// makes the reactor retry the record with backoff and park it after
/// [`ReactorSpec::attempts_max`] attempts. Issue commands through
/// [`ReactorContext::execute`] so their effects are exactly once; the
/// handler must issue the same commands in the same order when the same
/// record is delivered again. It must not hold the [`crate::Engine`]
/// (dropping the engine waits for the handler's thread). It sees the
/// records its own commands append, like any other: filter them out (by
/// author, event type or conversation) where reacting to them would loop.
pub trait Reactor: Send + 'static {
    /// Handles one record.
    ///
    /// Errors: whatever failed; the record is retried, then parked.
    fn react(
        &mut self,
        cx: &mut ReactorContext<'_>,
        record: &CommittedRecord,
    ) -> Result<(), HandlerError>;
}

/// A [`Reactor`] made of a closure, by [`reactor_fn`].
pub struct ReactorFn<F>(F);

/// Makes a [`Reactor`] of a closure taking the context and the record.
pub fn reactor_fn<F>(f: F) -> ReactorFn<F>
where
    F: FnMut(&mut ReactorContext<'_>, &CommittedRecord) -> Result<(), HandlerError>
        + Send
        + 'static,
{
    ReactorFn(f)
}

impl<F> Reactor for ReactorFn<F>
where
    F: FnMut(&mut ReactorContext<'_>, &CommittedRecord) -> Result<(), HandlerError>
        + Send
        + 'static,
{
    fn react(
        &mut self,
        cx: &mut ReactorContext<'_>,
        record: &CommittedRecord,
    ) -> Result<(), HandlerError> {
        (self.0)(cx, record)
    }
}

/// The command id of the `ordinal`-th command (from 0) a reactor named
/// `name` issues while handling the record at `position`: derived from the
/// three alone (`colloquy/reactor/NAME/POSITION/ORDINAL`, hashed as
/// [`CommandId::from_key`] does), so every delivery of the record issues
/// the same ids, in the idempotency scope of the service each command
/// addresses.
pub fn reactor_command_id(name: &str, position: u64, ordinal: u32) -> CommandId {
    CommandId::from_key(format!("colloquy/reactor/{name}/{position}/{ordinal}").as_bytes())
}

/// What a handler gets besides the record: commands with derived ids, and
/// the read models.
pub struct ReactorContext<'a> {
    sink: &'a dyn CommandSink,
    name: &'a str,
    position: u64,
    attempt: u32,
    ordinal: u32,
}

impl ReactorContext<'_> {
    /// The reactor's name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The position of the record being handled.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Which attempt at this record this is, from 1 (a re-drive starts
    /// again at 1).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Executes `command` as the trusted host, under the id
    /// [`reactor_command_id`]`(name, position, n)` for the handler's `n`-th
    /// command for this record, and waits until it is durable. If the
    /// record was handled before (a crash before the checkpoint, a retry, a
    /// replay), the command is not applied again: the first outcome is
    /// returned. Pre-event hooks run as for [`crate::Engine::execute`]
    /// (see [`ReactorContext::execute_with`] to opt out).
    ///
    /// Errors: as [`crate::Engine::execute`].
    pub fn execute<C: TypedCommand>(&mut self, command: C) -> Result<C::Output, CommandError> {
        self.execute_with(command, ExecuteOptions::default())
    }

    /// [`ReactorContext::execute`] with `options`:
    /// [`ExecuteOptions::without_pre_event_hooks`] runs the command without
    /// pre-event hooks, as Twilio runs a REST action that does not ask for
    /// webhooks (`X-Twilio-Webhook-Enabled`), so a reactor's own effects
    /// are not re-moderated and cannot be refused by a hook. The command
    /// id is the same as without options: the options are not part of
    /// the command.
    ///
    /// Errors: as [`crate::Engine::execute_with`].
    pub fn execute_with<C: TypedCommand>(
        &mut self,
        command: C,
        options: ExecuteOptions,
    ) -> Result<C::Output, CommandError> {
        let id = self.next_id();
        self.run(CommandEnvelope::new(id, command), options)
    }

    /// [`ReactorContext::execute`] as the chat identity `acting` (checked
    /// against its permissions, recorded as the records' actor).
    ///
    /// Errors: as [`crate::Engine::execute`].
    pub fn execute_as<C: TypedCommand>(
        &mut self,
        acting: &str,
        command: C,
    ) -> Result<C::Output, CommandError> {
        let id = self.next_id();
        self.run(
            CommandEnvelope::new(id, command).acting_as(acting),
            ExecuteOptions::default(),
        )
    }

    fn next_id(&mut self) -> CommandId {
        let id = reactor_command_id(self.name, self.position, self.ordinal);
        self.ordinal += 1;
        id
    }

    fn run<C: TypedCommand>(
        &self,
        envelope: CommandEnvelope<C>,
        options: ExecuteOptions,
    ) -> Result<C::Output, CommandError> {
        typed_output::<C>(self.sink.execute(envelope.into_command(), options)?)
    }

    /// The engine's read side (log streams), for the engine's own
    /// handlers.
    pub(crate) fn reads(&self) -> &dyn crate::sources::ReadSource {
        self.sink.reads()
    }

    /// Runs `query` on the read models as of the last durable batch (as
    /// [`crate::Engine::read`]; commands cannot be executed inside it).
    pub fn read<R>(&self, query: impl FnOnce(&ReadModels) -> R) -> R {
        read_scoped(self.sink.reads().read_models(), query)
    }
}

/// Which records a reactor's handler sees; the others only move its
/// checkpoint. Every condition set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReactorFilter {
    event_types: Vec<String>,
    service: Option<ServiceSid>,
    conversation: Option<ConversationSid>,
}

impl ReactorFilter {
    /// Every record.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only events of these types ([`events::Event::type_name`]:
    /// `message_added`, `participant_added`, …; the names are checked when
    /// the reactor starts). Called again, adds to the set.
    pub fn event_types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.event_types.extend(types.into_iter().map(Into::into));
        self
    }

    /// Only records of this service.
    pub fn service(mut self, service: ServiceSid) -> Self {
        self.service = Some(service);
        self
    }

    /// Only records of this conversation.
    pub fn conversation(mut self, conversation: ConversationSid) -> Self {
        self.conversation = Some(conversation);
        self
    }

    /// Whether the handler sees `record`.
    pub fn matches(&self, record: &CommittedRecord) -> bool {
        self.service.is_none_or(|s| s == record.header.service_sid)
            && self
                .conversation
                .is_none_or(|c| record.header.conversation_sid == Some(c))
            && (self.event_types.is_empty()
                || self
                    .event_types
                    .iter()
                    .any(|t| t == record.event.type_name()))
    }

    /// Errors: [`ReactorError::UnknownEventType`] for a type no event has.
    fn check(&self) -> Result<(), ReactorError> {
        match self
            .event_types
            .iter()
            .find(|t| !events::fast::EVENT_TYPE_NAMES.contains(&t.as_str()))
        {
            Some(t) => Err(ReactorError::UnknownEventType {
                event_type: t.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// Where a reactor with no checkpoint yet starts (one with a checkpoint
/// always resumes from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReactorStart {
    /// With the next record committed after it starts: history is not
    /// handled.
    #[default]
    Now,
    /// With the first record of the log: the whole history is handled.
    Beginning,
}

/// A reactor's name, filter and settings, built fluently from
/// [`ReactorSpec::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactorSpec {
    name: String,
    filter: ReactorFilter,
    start: ReactorStart,
    attempts_max: u32,
    backoff: Backoff,
}

impl ReactorSpec {
    /// A reactor named `name` (1 to [`REACTOR_NAME_BYTES_MAX`] bytes: its
    /// checkpoint and its command ids are keyed by it, so renaming a
    /// reactor starts a new one), seeing every record, starting
    /// [`ReactorStart::Now`], with [`REACTOR_ATTEMPTS_MAX_DEFAULT`] attempts
    /// and the default backoff.
    pub fn new(name: impl Into<String>) -> Self {
        ReactorSpec {
            name: name.into(),
            filter: ReactorFilter::all(),
            start: ReactorStart::Now,
            attempts_max: REACTOR_ATTEMPTS_MAX_DEFAULT,
            backoff: Backoff::new(
                Duration::from_millis(REACTOR_BACKOFF_INITIAL_MS_DEFAULT),
                Duration::from_millis(REACTOR_BACKOFF_MAX_MS_DEFAULT),
            ),
        }
    }

    /// Sets which records the handler sees.
    pub fn filter(mut self, filter: ReactorFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Sets where the reactor starts if it has no checkpoint yet.
    pub fn start(mut self, start: ReactorStart) -> Self {
        self.start = start;
        self
    }

    /// Sets how many times a record is tried before it is parked (default
    /// [`REACTOR_ATTEMPTS_MAX_DEFAULT`]; values below 1 are taken as 1).
    pub fn attempts_max(mut self, attempts: u32) -> Self {
        self.attempts_max = attempts.max(1);
        self
    }

    /// Sets the backoff between attempts: the ceiling starts at `initial`
    /// and doubles up to `max` (defaults
    /// [`REACTOR_BACKOFF_INITIAL_MS_DEFAULT`],
    /// [`REACTOR_BACKOFF_MAX_MS_DEFAULT`]).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = Backoff::new(initial, max);
        self
    }

    /// The reactor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Errors: [`ReactorError::InvalidName`], [`ReactorError::UnknownEventType`].
    fn check(&self) -> Result<(), ReactorError> {
        if self.name.is_empty() || self.name.len() > REACTOR_NAME_BYTES_MAX {
            return Err(ReactorError::InvalidName {
                name: self.name.clone(),
                reason: format!(
                    "it is {} bytes; a reactor name is 1 to {REACTOR_NAME_BYTES_MAX} bytes",
                    self.name.len()
                ),
            });
        }
        self.filter.check()
    }
}

/// A record a reactor gave up on after its attempts, kept until it is
/// re-driven or a replay passes over it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedEvent {
    /// The record's log position.
    pub position: u64,
    /// Attempts made so far (re-drives add theirs).
    pub attempts: u32,
    /// The last attempt's error (at most [`PARKED_ERROR_BYTES_MAX`] bytes).
    pub error: String,
}

/// One reactor's progress and counters ([`crate::Engine::reactor_metrics`],
/// [`ReactorHandle::metrics`]). Counters count since the reactor started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactorMetrics {
    /// The reactor's name.
    pub name: String,
    /// Its persisted checkpoint: every record before it is handled (or
    /// parked, or passed over by the filter).
    pub checkpoint: u64,
    /// The log's committed next position.
    pub head: u64,
    /// `head - checkpoint`: committed records not yet checkpointed.
    pub lag: u64,
    /// Records the handler handled successfully.
    pub handled: u64,
    /// Records the filter passed over.
    pub skipped: u64,
    /// Failed attempts (errors and panics).
    pub failed_attempts: u64,
    /// Records parked.
    pub parked: u64,
    /// Parked records handled successfully by a re-drive.
    pub redriven: u64,
    /// Times reading the log failed (the reactor retries the same
    /// position with backoff).
    pub read_failures: u64,
    /// Times writing its checkpoint or parked events failed (retried with
    /// backoff).
    pub storage_failures: u64,
    /// Whether its thread is running.
    pub running: bool,
}

/// Why a reactor could not start, or a request to it failed.
#[derive(Debug, thiserror::Error)]
pub enum ReactorError {
    /// The name is empty or too long.
    #[error("invalid reactor name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The filter names an event type no event has.
    #[error("no event type is named {event_type:?} (see events::fast::EVENT_TYPE_NAMES)")]
    UnknownEventType {
        /// The type given.
        event_type: String,
    },
    /// A reactor of this name is already running in this engine.
    #[error("a reactor named {name:?} is already running")]
    AlreadyRunning {
        /// The name.
        name: String,
    },
    /// The reactor was stopped (or its engine closed).
    #[error("the reactor {name:?} is not running")]
    NotRunning {
        /// The name.
        name: String,
    },
    /// A replay was asked from a position past the log's committed next
    /// position.
    #[error("position {position} is past the log's next position {next_position}")]
    PositionAhead {
        /// The position given.
        position: u64,
        /// The log's committed next position.
        next_position: u64,
    },
    /// The reactor's stored checkpoint is past the log's end: the store
    /// was changed underneath the engine. Nothing was started.
    #[error(
        "the reactor {name:?} is checkpointed at position {checkpoint}, past the log's next \
         position {next_position}"
    )]
    CheckpointAhead {
        /// The reactor.
        name: String,
        /// Its stored checkpoint.
        checkpoint: u64,
        /// The log's next position.
        next_position: u64,
    },
    /// A re-drive named a position the reactor has no parked event at.
    #[error("the reactor {name:?} has no parked event at position {position}")]
    NotParked {
        /// The reactor.
        name: String,
        /// The position given.
        position: u64,
    },
    /// A stored checkpoint or parked event of the reactor does not decode.
    #[error("the reactor {name:?}'s stored state is damaged: {detail}")]
    Corrupt {
        /// The reactor.
        name: String,
        /// What is malformed.
        detail: String,
    },
    /// RocksDB failed reading or writing the reactors' column family.
    #[error("storage error: {0}")]
    Storage(#[from] rocksdb::Error),
    /// The reactor's thread could not be started.
    #[error("could not start the reactor's thread: {0}")]
    Spawn(std::io::Error),
    /// The engine is closed.
    #[error("the engine is closed")]
    Closed,
}

/// What the host asks of a running reactor, handled on its thread between
/// records.
#[derive(Debug, Default)]
struct Requests {
    stop: bool,
    replay: Option<u64>,
    redrive: VecDeque<u64>,
}

/// A reactor's state shared by its thread, its handles and the registry.
struct State {
    requests: Requests,
    /// Requests accepted and not yet done (a replay, each re-drive).
    pending: u64,
    /// The persisted checkpoint.
    checkpoint: u64,
    running: bool,
}

/// A reactor's counters ([`ReactorMetrics`]), written by its thread only.
#[derive(Default)]
struct Counters {
    handled: AtomicU64,
    skipped: AtomicU64,
    failed_attempts: AtomicU64,
    parked: AtomicU64,
    redriven: AtomicU64,
    read_failures: AtomicU64,
    storage_failures: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What a reactor's thread, its handles and the registry share.
struct Shared {
    name: String,
    feed: Arc<LogFeed>,
    /// The log's clock: retry backoffs are measured on it.
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    /// Signalled when the checkpoint moves, a request is done or the
    /// thread ends.
    changed: Condvar,
    counters: Counters,
}

impl Shared {
    /// Whether a stop or a replay is asked: an attempt's backoff and the
    /// wait for records end early for them.
    fn interrupting(&self) -> bool {
        let state = self.state.lock();
        state.requests.stop || state.requests.replay.is_some()
    }

    /// Whether any request waits.
    fn has_requests(&self) -> bool {
        let state = self.state.lock();
        state.requests.stop || state.requests.replay.is_some() || !state.requests.redrive.is_empty()
    }

    /// Queues a request (running reactors only) and wakes the thread.
    fn request(&self, ask: impl FnOnce(&mut Requests)) -> Result<(), ReactorError> {
        {
            let mut state = self.state.lock();
            if !state.running || state.requests.stop {
                return Err(ReactorError::NotRunning {
                    name: self.name.clone(),
                });
            }
            ask(&mut state.requests);
            state.pending += 1;
        }
        self.feed.interrupt();
        Ok(())
    }

    fn metrics(&self) -> ReactorMetrics {
        let (checkpoint, running) = {
            let state = self.state.lock();
            (state.checkpoint, state.running)
        };
        let head = self.feed.head();
        let c = &self.counters;
        ReactorMetrics {
            name: self.name.clone(),
            checkpoint,
            head,
            lag: head.saturating_sub(checkpoint),
            handled: Counters::get(&c.handled),
            skipped: Counters::get(&c.skipped),
            failed_attempts: Counters::get(&c.failed_attempts),
            parked: Counters::get(&c.parked),
            redriven: Counters::get(&c.redriven),
            read_failures: Counters::get(&c.read_failures),
            storage_failures: Counters::get(&c.storage_failures),
            running,
        }
    }
}

/// A host's handle on a running reactor: its metrics, waiting for it,
/// replay, parked events and re-drives. Cloneable; it does not keep the
/// engine open.
#[derive(Clone)]
pub struct ReactorHandle {
    shared: Arc<Shared>,
    sink: Weak<dyn CommandSink>,
}

impl std::fmt::Debug for ReactorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReactorHandle")
            .field("name", &self.shared.name)
            .finish()
    }
}

impl ReactorHandle {
    /// The reactor's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Its checkpoint, the head, the lag and its counters.
    pub fn metrics(&self) -> ReactorMetrics {
        self.shared.metrics()
    }

    /// Waits until every record before `position` is checkpointed (pass
    /// the log's next position to wait for everything committed so far)
    /// and every replay and re-drive asked before this call is done, or
    /// until `deadline`. Returns whether that happened (`false` at the
    /// deadline, or if the reactor stopped first).
    pub fn wait_for(&self, position: u64, deadline: Instant) -> bool {
        let mut state = self.shared.state.lock();
        loop {
            if state.checkpoint >= position && state.pending == 0 {
                return true;
            }
            if !state.running {
                return false;
            }
            if self
                .shared
                .changed
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                return state.checkpoint >= position && state.pending == 0;
            }
        }
    }

    /// Moves the reactor's checkpoint to `position` (back to deliver
    /// records again, or forward to skip them) and drops its parked events
    /// at `position` and after (they are delivered again). Done on the
    /// reactor's thread before its next record; an attempt's backoff in
    /// progress is cut short and that record is left to the replay.
    /// [`ReactorHandle::wait_for`] waits for it.
    ///
    /// Commands issued for records handled before are answered as
    /// duplicates: a replay repeats effects outside the engine, never
    /// commands.
    ///
    /// Errors: [`ReactorError::PositionAhead`] past the log's committed next
    /// position, [`ReactorError::NotRunning`].
    pub fn replay_from(&self, position: u64) -> Result<(), ReactorError> {
        let head = self.shared.feed.head();
        if position > head {
            return Err(ReactorError::PositionAhead {
                position,
                next_position: head,
            });
        }
        self.shared.request(|r| r.replay = Some(position))
    }

    /// The reactor's parked events, in position order.
    ///
    /// Errors: [`ReactorError::Closed`] once the engine is dropped,
    /// [`ReactorError::Storage`], [`ReactorError::Corrupt`].
    pub fn parked(&self) -> Result<Vec<ParkedEvent>, ReactorError> {
        let sink = self.sink.upgrade().ok_or(ReactorError::Closed)?;
        store::parked_from(sink.db(), &self.shared.name, 0)
    }

    /// Hands the parked record at `position` to the handler again, with a
    /// fresh round of attempts, on the reactor's thread before its next
    /// record. If they succeed the parked event is removed; if they fail
    /// it stays, with its attempts added up and the last error.
    /// [`ReactorHandle::wait_for`] waits for it.
    ///
    /// Errors: [`ReactorError::NotParked`] if no record is parked there,
    /// [`ReactorError::NotRunning`], [`ReactorError::Closed`],
    /// [`ReactorError::Storage`], [`ReactorError::Corrupt`].
    pub fn redrive(&self, position: u64) -> Result<(), ReactorError> {
        let sink = self.sink.upgrade().ok_or(ReactorError::Closed)?;
        if store::parked_at(sink.db(), &self.shared.name, position)?.is_none() {
            return Err(ReactorError::NotParked {
                name: self.shared.name.clone(),
                position,
            });
        }
        self.shared.request(|r| r.redrive.push_back(position))
    }
}

/// A reactor's thread, with its shared state.
struct Running {
    shared: Arc<Shared>,
    thread: JoinHandle<()>,
}

/// The engine's running reactors.
pub(crate) struct Registry {
    sink: Arc<dyn CommandSink>,
    sources: Sources,
    hub: Arc<Hub>,
    feed: Arc<LogFeed>,
    clock: Arc<dyn Clock>,
    running: Mutex<HashMap<String, Running>>,
}

impl Registry {
    /// A registry with no reactor, for the engine behind `sink` (read
    /// weakly through `sources` by each reactor's subscription), whose
    /// retry backoffs are measured on `clock`: a clock moved by hand
    /// (`TestClock`) wakes the reactors' waits through the feed.
    pub(crate) fn new(
        sink: Arc<dyn CommandSink>,
        sources: Sources,
        hub: Arc<Hub>,
        feed: Arc<LogFeed>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let woken = Arc::downgrade(&feed);
        clock.listen(Box::new(move || match woken.upgrade() {
            Some(feed) => {
                feed.interrupt();
                true
            }
            None => false,
        }));
        Registry {
            sink,
            sources,
            hub,
            feed,
            clock,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Starts `reactor` under `spec` on a thread of its own: from its
    /// persisted checkpoint, or (the first time) from where `spec` says,
    /// persisted at once.
    ///
    /// Errors: [`ReactorError::InvalidName`],
    /// [`ReactorError::UnknownEventType`], [`ReactorError::AlreadyRunning`],
    /// [`ReactorError::CheckpointAhead`], [`ReactorError::Corrupt`],
    /// [`ReactorError::Storage`], [`ReactorError::Spawn`],
    /// [`ReactorError::Closed`].
    pub(crate) fn start(
        &self,
        spec: ReactorSpec,
        reactor: Box<dyn Reactor>,
    ) -> Result<ReactorHandle, ReactorError> {
        spec.check()?;
        let mut running = self.running.lock();
        // A stopped reactor's entry (its thread ended) is forgotten.
        if let Some(r) = running.get(&spec.name) {
            if r.shared.state.lock().running {
                return Err(ReactorError::AlreadyRunning {
                    name: spec.name.clone(),
                });
            }
        }
        let db = self.sink.db();
        let head = self.feed.head();
        let checkpoint = match store::checkpoint(db, &spec.name)? {
            Some(checkpoint) if checkpoint > head => {
                return Err(ReactorError::CheckpointAhead {
                    name: spec.name.clone(),
                    checkpoint,
                    next_position: head,
                })
            }
            Some(checkpoint) => checkpoint,
            None => {
                let start = match spec.start {
                    ReactorStart::Now => head,
                    ReactorStart::Beginning => 0,
                };
                let mut batch = rocksdb::WriteBatch::default();
                store::put_checkpoint(db, &mut batch, &spec.name, start);
                db.write(batch)?;
                start
            }
        };
        let subscription = Subscription::open(
            self.sources.clone(),
            self.hub.clone(),
            self.feed.clone(),
            SubscribeFrom::Position(checkpoint),
        )
        .map_err(|e| match e {
            SubscriptionError::PositionAhead {
                position,
                next_position,
            } => ReactorError::CheckpointAhead {
                name: spec.name.clone(),
                checkpoint: position,
                next_position,
            },
            _ => ReactorError::Closed,
        })?;
        let shared = Arc::new(Shared {
            name: spec.name.clone(),
            feed: self.feed.clone(),
            clock: self.clock.clone(),
            state: Mutex::new(State {
                requests: Requests::default(),
                pending: 0,
                checkpoint,
                running: true,
            }),
            changed: Condvar::new(),
            counters: Counters::default(),
        });
        let runner = runner::Runner::new(
            self.sink.clone(),
            self.hub.clone(),
            shared.clone(),
            spec.clone(),
            reactor,
            subscription,
            checkpoint,
        );
        let thread = std::thread::Builder::new()
            .name(format!("colloquy-reactor-{}", spec.name))
            .spawn(move || runner.run())
            .map_err(ReactorError::Spawn)?;
        tracing::info!(reactor = %spec.name, checkpoint, head, "reactor started");
        running.insert(
            spec.name.clone(),
            Running {
                shared: shared.clone(),
                thread,
            },
        );
        Ok(ReactorHandle {
            shared,
            sink: Arc::downgrade(&self.sink),
        })
    }

    /// The running reactor named `name`, if any.
    pub(crate) fn handle(&self, name: &str) -> Option<ReactorHandle> {
        let running = self.running.lock();
        let shared = running.get(name)?.shared.clone();
        let live = shared.state.lock().running;
        live.then(|| ReactorHandle {
            shared,
            sink: Arc::downgrade(&self.sink),
        })
    }

    /// Stops the reactor named `name` and waits for its thread (its
    /// handler's current call included); it checkpoints what it handled.
    /// Returns whether it was running.
    pub(crate) fn stop(&self, name: &str) -> bool {
        let Some(r) = self.running.lock().remove(name) else {
            return false;
        };
        let was_running = r.shared.state.lock().running;
        Self::join(vec![r], &self.feed);
        was_running
    }

    /// Stops every reactor and waits for their threads.
    pub(crate) fn stop_all(&self) {
        let all: Vec<Running> = self.running.lock().drain().map(|(_, r)| r).collect();
        Self::join(all, &self.feed);
    }

    fn join(reactors: Vec<Running>, feed: &LogFeed) {
        for r in &reactors {
            r.shared.state.lock().requests.stop = true;
        }
        feed.interrupt();
        for r in reactors {
            if r.thread.join().is_err() {
                tracing::error!(reactor = %r.shared.name, "a reactor thread panicked");
            }
        }
    }

    /// The metrics of every reactor started and not stopped since (one
    /// whose thread ended with the engine shows `running: false`), by name.
    pub(crate) fn metrics(&self) -> Vec<ReactorMetrics> {
        let mut all: Vec<ReactorMetrics> = self
            .running
            .lock()
            .values()
            .map(|r| r.shared.metrics())
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}
