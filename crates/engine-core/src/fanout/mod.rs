//! Fan-out: the live stream of client events each device session receives.
//!
//! A host opens a [`Session`] per device for a (service, identity) pair
//! with [`crate::Engine::open_session`]. The session yields
//! [`ClientEvent`]s named as Twilio's Conversations SDK names them
//! (`conversationAdded`, `messageAdded`, `participantUpdated`,
//! `typingStarted`, …), each carrying its cursor: the log position of the
//! event it comes from.
//!
//! How it works:
//! - **Routing** happens on the log's writer thread, per event, in
//!   [`crate::StateMachine::apply`]: the event's recipients are read from an
//!   in-memory membership index (per conversation, an `Arc<[…]>` snapshot of
//!   its chat members' mailboxes, replaced copy-on-write on join and leave),
//!   so membership is evaluated at the event's own position even inside a
//!   batch. What each recipient sees is decided by the one pure function
//!   [`client_event_kind`], which resume uses too.
//! - **Dispatch** happens once the batch is durable
//!   ([`crate::StateMachine::committed`]): the routed events go over a
//!   channel to one dedicated worker thread, which appends one shared
//!   [`ClientEvent`] (one pointer, built once per record and kind: no
//!   per-recipient allocation) to the backlog of every recipient
//!   identity's mailbox, once per identity however many devices it has
//!   online, and wakes its sessions. One worker keeps every backlog in log
//!   order. It takes whatever batches are queued (up to
//!   [`WORKER_BATCH_RECORDS_MAX`]) and delivers consecutive records that
//!   share a membership snapshot member by member, locking each mailbox
//!   once per run. Going through the members it prefetches, for write,
//!   the mailbox a few ahead and the state of each task it is about to
//!   wake (each was last written by a consumer on another core), and wakes
//!   tasks outside every mailbox lock.
//! - **Sessions are cursors**: a live session is a cursor into its
//!   identity's shared backlog plus a waker slot, nothing allocated up
//!   front. It starts at the backlog's tail and never receives events
//!   routed before it started (the worker may dispatch those after it
//!   opened: they are not appended for it). It moves up to
//!   [`SESSION_TAKE_EVENTS_MAX`] events per lock into its own buffer. The
//!   backlog is trimmed to the slowest session's cursor, is empty when no
//!   session of the identity is live, and gives back what a burst grew
//!   once read (down to [`BACKLOG_RETAINED_EVENTS_MAX`] slots).
//! - **Slow consumers** are never waited on: a session more than
//!   [`FanoutOptions::session_queue_events`] events behind (default
//!   [`SESSION_QUEUE_EVENTS_DEFAULT`], so one identity's backlog holds at
//!   most that many) is marked lagging and stops counting for the trim
//!   ([`FanoutMetrics::lagged`] counts it). The [`Session`] notices,
//!   resumes itself from its cursor and the consumer loses nothing; its
//!   identity's other devices are not held back.
//! - **Resume**: a session opened with [`SessionStart::After`] first
//!   receives every event it missed, in order and without duplicates, then
//!   continues live with no gap (see [`Session`]). It reads the records it
//!   missed from the hub's shared cache of the last
//!   [`FanoutOptions::recent_records`] committed records (decoded once, on
//!   the writer thread's commit, and shared by every resuming session)
//!   and from the log only for older positions (or newer ones not yet
//!   cached).
//! - **Typing** ([`crate::Engine::typing`]) is ephemeral: never logged,
//!   sent to the other members' live sessions only, ended by the typist's
//!   next message or removal, by the conversation's closing, or after
//!   [`FanoutOptions::typing_timeout`]. A closed conversation refuses it.
//!
//! Modules (each depends only on those listed before it, as
//! `tests/module_layering.rs` checks): `mapping` (what
//! each recipient sees), `hub` (registry, membership index, backlogs and
//! cursors, dispatch, recent-record cache),
//! `worker` (the dispatch thread and typing state), `route` (the writer
//! side, feeding the worker), `replay` and `session` (resume and the
//! consumer's end). Fan-out never names the engine facade: the engine hands
//! it the `Hub`, the worker's channel and a weak
//! `ReadSource` (`src/sources.rs`) for sessions to read the log and the
//! read models.
//!
//! Memory: per live session, its cursor (a link in its mailbox) and the
//! `Session` value, a few hundred bytes (`tests/fanout_memory.rs` counts
//! them); per identity with a live session, its backlog (at most the lag
//! cap of pointers); per hub, the recent-record cache.
//!
//! Observability: a session found more than the cap behind is logged at
//! debug ("session queue full"), the session's resume at info, a replay's
//! start and end at debug; the counts are in [`FanoutMetrics`].

mod hub;
mod mapping;
mod replay;
mod route;
mod session;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use events::{ConversationSid, Event, ParticipantSid, ServiceSid};

use crate::log::CommittedRecord;

pub(crate) use hub::Hub;
pub use mapping::{client_event_kind, ClientEventKind, Perspective};
pub(crate) use replay::committed_records;
pub(crate) use route::FanoutWriter;
pub use session::{Session, SessionError, SessionStart, SessionStream};
pub(crate) use worker::{run_worker, WorkerMsg};

/// How many client events a live session may fall behind the newest one
/// for its identity, by default, before it is dropped to resume from its
/// cursor (it is never waited on). Nothing is allocated up front: the
/// identity's shared backlog grows with what its slowest session has not
/// read. 4,096 lets a broadcast burst of 2,000 messages reach a session
/// that reads only after the burst without lagging, and bounds a slow
/// identity's backlog at 32 KiB of pointers (the events themselves are
/// shared by every recipient).
pub const SESSION_QUEUE_EVENTS_DEFAULT: usize = 4_096;

/// The most events a session moves from its identity's backlog into its
/// own buffer per lock of the backlog: amortises the lock over a burst
/// while keeping a session's private buffer small (512 bytes).
pub const SESSION_TAKE_EVENTS_MAX: usize = 64;

/// The backlog capacity, in events, an identity keeps once its sessions
/// have read everything; a burst grew it past this, it is released.
/// 16 slots (128 bytes) absorb the usual trickle without reallocating.
pub const BACKLOG_RETAINED_EVENTS_MAX: usize = 16;

/// The most routed records the fan-out worker takes from its queue to
/// dispatch in one go (several durable batches coalesced).
pub const WORKER_BATCH_RECORDS_MAX: usize = 4_096;

/// How long, by default, a participant counts as typing after its last
/// [`crate::Engine::typing`] call: 5 seconds. Then `typingEnded` is sent.
pub const TYPING_TIMEOUT: Duration = Duration::from_secs(5);

/// How many recently committed records the fan-out keeps decoded and
/// shared, by default, for resuming sessions (and log subscriptions,
/// [`crate::subscription`]) to read instead of the log:
/// 8,192 covers a lag cap's worth of one identity's events in a busy
/// service, at the cost of holding that many records (a few MB with
/// short messages) alive.
pub const RECENT_RECORDS_DEFAULT: usize = 8_192;

/// How many log records a resuming session reads per step, by default:
/// bounds the work one `recv` (or one `poll_next`) does while replaying.
pub const REPLAY_CHUNK_RECORDS_DEFAULT: u64 = 1_024;

/// Fan-out settings, built fluently from [`FanoutOptions::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanoutOptions {
    pub(crate) session_queue_events: usize,
    pub(crate) typing_timeout: Duration,
    pub(crate) replay_chunk_records: u64,
    pub(crate) recent_records: usize,
}

impl Default for FanoutOptions {
    fn default() -> Self {
        FanoutOptions {
            session_queue_events: SESSION_QUEUE_EVENTS_DEFAULT,
            typing_timeout: TYPING_TIMEOUT,
            replay_chunk_records: REPLAY_CHUNK_RECORDS_DEFAULT,
            recent_records: RECENT_RECORDS_DEFAULT,
        }
    }
}

impl FanoutOptions {
    /// Sets how many client events a live session may fall behind before
    /// it is dropped to resume from its cursor (default
    /// [`SESSION_QUEUE_EVENTS_DEFAULT`]; values below 1 are taken as 1).
    /// This bounds the shared backlog of each identity at this many
    /// events; `usize::MAX` never drops a session, leaving its backlog
    /// unbounded.
    pub fn session_queue_events(mut self, events: usize) -> Self {
        self.session_queue_events = events.max(1);
        self
    }

    /// Sets how long a typing indication lasts without a refresh (default
    /// [`TYPING_TIMEOUT`]).
    pub fn typing_timeout(mut self, timeout: Duration) -> Self {
        self.typing_timeout = timeout;
        self
    }

    /// Sets how many log records a resuming session reads per step
    /// (default [`REPLAY_CHUNK_RECORDS_DEFAULT`]; values below 1 are taken
    /// as 1).
    pub fn replay_chunk_records(mut self, records: u64) -> Self {
        self.replay_chunk_records = records.max(1);
        self
    }

    /// Sets how many recently committed records are kept decoded for
    /// resuming sessions (default [`RECENT_RECORDS_DEFAULT`]; 0 keeps none:
    /// every resume reads the log).
    pub fn recent_records(mut self, records: usize) -> Self {
        self.recent_records = records;
        self
    }

    /// The configured lag cap of a session, in events.
    pub fn get_session_queue_events(&self) -> usize {
        self.session_queue_events
    }

    /// The configured typing timeout.
    pub fn get_typing_timeout(&self) -> Duration {
        self.typing_timeout
    }
}

/// Counters the host can read with [`crate::Engine::fanout_metrics`]. All
/// but `sessions` only grow for the life of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FanoutMetrics {
    /// Live sessions (cursors) registered right now.
    pub sessions: u64,
    /// Log events that had at least one recipient.
    pub events_routed: u64,
    /// Client events made available to live sessions: one per recipient
    /// session, typing included (an identity's devices share one backlog
    /// entry but count one delivery each).
    pub deliveries: u64,
    /// Times a session fell more than the lag cap behind: it was marked
    /// lagging, dropped from its identity's backlog, and resumes from its
    /// cursor.
    pub lagged: u64,
    /// Resumes: sessions that replayed missed events from the log (opened
    /// with a cursor behind the head, or after lagging).
    pub resumes: u64,
    /// Client events delivered from log replay rather than live.
    pub replayed: u64,
    /// Records resumes took from the shared cache of recent records
    /// (decoded once, shared by every resuming session).
    pub replay_records_cached: u64,
    /// Records resumes read and decoded from the log (positions older
    /// than the cache holds).
    pub replay_records_read: u64,
    /// Typing notices (`typingStarted` / `typingEnded`) dispatched.
    pub typing_notices: u64,
}

/// An ephemeral typing indication (never logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypingNotice {
    /// The service.
    pub service_sid: ServiceSid,
    /// The conversation.
    pub conversation_sid: ConversationSid,
    /// The typing participant.
    pub participant_sid: ParticipantSid,
    /// The typing participant's identity.
    pub identity: String,
}

#[derive(Debug)]
enum Payload {
    Log(Arc<CommittedRecord>),
    Typing(Arc<TypingNotice>),
}

#[derive(Debug)]
struct Inner {
    kind: ClientEventKind,
    payload: Payload,
}

/// One event a session receives.
///
/// It is one pointer: built once per log record and kind (not per
/// recipient), so every recipient of one log event shares it, and
/// appending it to a backlog costs one reference-count increment.
#[derive(Debug, Clone)]
pub struct ClientEvent(Arc<Inner>);

impl ClientEvent {
    pub(crate) fn log(kind: ClientEventKind, record: Arc<CommittedRecord>) -> Self {
        ClientEvent(Arc::new(Inner {
            kind,
            payload: Payload::Log(record),
        }))
    }

    pub(crate) fn typing(kind: ClientEventKind, notice: Arc<TypingNotice>) -> Self {
        ClientEvent(Arc::new(Inner {
            kind,
            payload: Payload::Typing(notice),
        }))
    }

    /// What happened, as the SDK names it.
    pub fn kind(&self) -> ClientEventKind {
        self.0.kind
    }

    /// The SDK's event name, e.g. `messageAdded`.
    pub fn name(&self) -> &'static str {
        self.0.kind.name()
    }

    /// The log position of the event this comes from: pass it as
    /// [`SessionStart::After`] to resume right after it. `None` for
    /// ephemeral typing events, which are not in the log.
    pub fn cursor(&self) -> Option<u64> {
        match &self.0.payload {
            Payload::Log(r) => Some(r.header.position),
            Payload::Typing(_) => None,
        }
    }

    /// The log record behind this event (header and event), if it is one.
    pub fn record(&self) -> Option<&CommittedRecord> {
        match &self.0.payload {
            Payload::Log(r) => Some(r),
            Payload::Typing(_) => None,
        }
    }

    /// The logged event behind this client event, if it is one.
    pub fn event(&self) -> Option<&Event> {
        self.record().map(|r| &r.event)
    }

    /// The typing indication, for `typingStarted` / `typingEnded`.
    pub fn typing_notice(&self) -> Option<&TypingNotice> {
        match &self.0.payload {
            Payload::Typing(t) => Some(t),
            Payload::Log(_) => None,
        }
    }

    /// The conversation this event is about, if any (`userUpdated` has
    /// none).
    pub fn conversation_sid(&self) -> Option<ConversationSid> {
        match &self.0.payload {
            Payload::Log(r) => r.header.conversation_sid,
            Payload::Typing(t) => Some(t.conversation_sid),
        }
    }
}

// One word: a backlog slot is 8 bytes.
const _: () = assert!(std::mem::size_of::<ClientEvent>() == 8);

/// Benchmark support: drives the real dispatch path without an engine.
/// Not part of the stable API.
#[doc(hidden)]
pub mod bench_support {
    use std::collections::VecDeque;
    use std::sync::Arc;

    use crossbeam_channel::{Receiver, Sender};
    use events::{ConversationSid, Event, MessageSid, RecordHeader, ServiceSid};

    use super::hub::{DispatchStats, Hub, Mailbox, Route, Taken, Wait};
    use super::{ClientEventKind, FanoutOptions};
    use crate::log::CommittedRecord;

    /// One conversation of `members` identities, each with one live
    /// session (a cursor into its identity's backlog), and a durable batch
    /// of routed `messageAdded` records in it.
    pub struct DispatchBench {
        hub: Hub,
        items: Vec<(Arc<CommittedRecord>, Route)>,
        record: Arc<CommittedRecord>,
        /// Each member's mailbox and its one session's link.
        sessions: Vec<(Arc<Mailbox>, u64)>,
    }

    impl DispatchBench {
        /// Builds the members, their sessions (lag cap `queue_events`)
        /// and a batch of `queue_events` routed records.
        pub fn new(members: usize, queue_events: usize) -> Self {
            let hub = Hub::new(FanoutOptions::default().session_queue_events(queue_events));
            let service = ServiceSid([1; 16]);
            let mut mailboxes = Vec::with_capacity(members);
            let mut sessions = Vec::with_capacity(members);
            for i in 0..members {
                let mailbox = hub.mailbox(service, &format!("user-{i}"));
                let link = hub.register(&mailbox, 0).id;
                sessions.push((mailbox.clone(), link));
                mailboxes.push(mailbox);
            }
            let route = Route {
                members: mailboxes.into(),
                subject: None,
                subject_kind: None,
                others_kind: Some(ClientEventKind::MessageAdded),
            };
            let record = message_record(1);
            let items = (0..queue_events.max(1))
                .map(|_| (record.clone(), route.clone()))
                .collect();
            DispatchBench {
                hub,
                items,
                record,
                sessions,
            }
        }

        /// Dispatches the first `events` records of the batch as the
        /// worker dispatches a durable batch; returns the deliveries made.
        pub fn dispatch(&self, events: usize) -> u64 {
            let mut stats = DispatchStats::default();
            self.hub
                .dispatch(&self.items[..events.min(self.items.len())], &mut stats);
            self.hub.record(&stats);
            stats.deliveries
        }

        /// Dispatches the records one at a time (one-record batches);
        /// returns the deliveries made.
        pub fn dispatch_each(&self, events: usize) -> u64 {
            let mut stats = DispatchStats::default();
            for item in self.items[..events.min(self.items.len())].chunks(1) {
                self.hub.dispatch(item, &mut stats);
            }
            self.hub.record(&stats);
            stats.deliveries
        }

        /// Reads every session's backlog to its end, as sessions read it;
        /// returns how many events were taken.
        pub fn drain(&self) -> usize {
            let mut buffer = VecDeque::new();
            let mut taken = 0;
            for (mailbox, link) in &self.sessions {
                while let Taken::Events(n) = self.hub.take(
                    mailbox,
                    *link,
                    &mut buffer,
                    super::SESSION_TAKE_EVENTS_MAX,
                    Wait::No,
                ) {
                    taken += n;
                    buffer.clear();
                }
            }
            taken
        }

        /// Sessions dropped for lagging so far (should stay 0).
        pub fn lagged(&self) -> u64 {
            self.hub.metrics().lagged
        }
    }

    /// A committed `messageAdded` record at `position`, in the service
    /// and conversation every bench session is a member of.
    pub fn message_record(position: u64) -> Arc<CommittedRecord> {
        let conversation = ConversationSid([2; 16]);
        Arc::new(CommittedRecord {
            header: RecordHeader {
                position,
                recorded_at: 0,
                service_sid: ServiceSid([1; 16]),
                conversation_sid: Some(conversation),
                command_id: Default::default(),
                actor: None,
            },
            event: Event::MessageAdded {
                conversation_sid: conversation,
                message_sid: MessageSid([3; 16]),
                index: 0,
                author: "user-0".into(),
                participant_sid: None,
                body: Some("hello".into()),
                media: vec![],
                attributes: "{}".into(),
            },
        })
    }

    /// The baseline: one `Arc` pushed into `members` bounded crossbeam
    /// channels, nothing else.
    pub struct RawBaseline {
        senders: Vec<Sender<Arc<CommittedRecord>>>,
        receivers: Vec<Receiver<Arc<CommittedRecord>>>,
        item: Arc<CommittedRecord>,
    }

    impl RawBaseline {
        /// `members` channels of `queue_events` slots.
        pub fn new(members: usize, queue_events: usize) -> Self {
            let (senders, receivers) = (0..members)
                .map(|_| crossbeam_channel::bounded(queue_events))
                .unzip();
            RawBaseline {
                senders,
                receivers,
                item: DispatchBench::new(0, 1).record,
            }
        }

        /// Pushes the item into every channel `events` times; returns the
        /// pushes that succeeded.
        pub fn push(&self, events: usize) -> u64 {
            let mut n = 0;
            for _ in 0..events {
                for tx in &self.senders {
                    n += u64::from(tx.try_send(self.item.clone()).is_ok());
                }
            }
            n
        }

        /// Empties every channel; returns how many items were taken.
        pub fn drain(&self) -> usize {
            self.receivers.iter().map(|rx| rx.try_iter().count()).sum()
        }
    }
}
