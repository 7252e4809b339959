//! Device sessions: a blocking receiver and an async `Stream` over one
//! identity's client events, resumable from a cursor.
//!
//! A session reads the log and the read models through a weak
//! [`Sources`] handle given by the engine: it never keeps a closed engine
//! alive. A resume after lagging is logged at info (service, identity,
//! cursor, resumes), a replay's start and end at debug.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use events::ServiceSid;

use super::hub::{Hub, Mailbox, Taken, Wait};
use super::replay::{Replay, Snapshot};
use super::{ClientEvent, SESSION_TAKE_EVENTS_MAX};
use crate::log::ReadError;
use crate::read_view::ReadView;
use crate::sources::{ReadSource, Sources};

/// Steps a blocking read that finds nothing spins before it parks,
/// 2^k pauses at step k (127 in all, about a microsecond), as crossbeam's
/// channels do: an event the worker is dispatching right now is taken
/// without a futex round-trip through the mailbox's condition variable.
const WAIT_SPIN_STEPS: u32 = 7;

/// Steps a blocking read then yields the CPU before it parks (as
/// crossbeam's channels do).
const WAIT_YIELD_STEPS: u32 = 4;

/// Where a new session starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStart {
    /// With the next event appended from now on: nothing is replayed.
    Live,
    /// Right after this cursor (a [`ClientEvent::cursor`] or
    /// [`Session::cursor`] from an earlier session): every event the
    /// identity should have seen after it is replayed first.
    After(u64),
    /// From the start of the log: the identity's whole history.
    Beginning,
}

/// Why a session could not open or yield its next event.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The service does not exist (checked when the session opens).
    #[error("service {0} not found")]
    ServiceNotFound(ServiceSid),
    /// [`SessionStart::After`] named a cursor at or past the log's head.
    #[error("cursor {cursor} is not below the log's next position {next_position}")]
    CursorAhead {
        /// The cursor given.
        cursor: u64,
        /// The log's next position when the session tried to open.
        next_position: u64,
    },
    /// Reading the log to replay missed events failed (I/O or a damaged
    /// record). Nothing was skipped: asking for the next event retries.
    #[error("reading the log to resume failed: {0}")]
    Read(#[from] ReadError),
    /// The engine was dropped: no more events will come.
    #[error("the engine is closed")]
    Closed,
}

/// One device's view of one identity's events in one service.
///
/// Opened with [`crate::Engine::open_session`]. It yields, in log order
/// and exactly once, every [`ClientEvent`] the identity should see from its
/// start on: first those it missed (replayed from the log, when started
/// behind the head), then live ones, with no gap or duplicate at the seam.
///
/// Guarantees:
/// - events come in log order (so in order per conversation), each log
///   event at most once, typing events interleaved as they happen;
/// - if the session falls more than the lag cap
///   ([`super::FanoutOptions::session_queue_events`]) behind, the
///   dispatcher drops it from its identity's backlog instead of waiting;
///   the session notices when it has read what it had, replays from its
///   cursor (from the shared cache of recent records where it can, the log
///   otherwise) and goes
///   live again ([`Session::resumes`] counts it). The consumer sees no gap;
///   only typing events sent while it lagged are lost (they are ephemeral);
/// - [`Session::cursor`] is the position through which the consumer has
///   received everything: store it and reopen with
///   [`SessionStart::After`] after a disconnect to lose nothing.
///
/// Replay reads the shared cache of recent records, and the log for what
/// it does not hold, on the thread that asks for the next event, at most
/// [`super::FanoutOptions::replay_chunk_records`] records per step (plus,
/// once per resume, a first pass over the whole missed range).
///
/// Memory: a live session is its cursor in its identity's mailbox and
/// this value; it buffers at most [`super::SESSION_TAKE_EVENTS_MAX`] live
/// events taken from the backlog, plus one replay step's events while
/// resuming.
pub struct Session {
    sources: Sources,
    hub: Arc<Hub>,
    service: ServiceSid,
    mailbox: Arc<Mailbox>,
    /// The session's cursor in its identity's shared backlog (the hub's
    /// link id), while it is live.
    link: Option<u64>,
    /// That cursor: the sequence number of the next backlog entry this
    /// session reads.
    backlog_cursor: u64,
    /// Boxed: a live session does not carry a replay's state inline.
    replay: Option<Box<Replay>>,
    /// Replayed events not yet handed to the consumer.
    buffer: VecDeque<ClientEvent>,
    /// Live events taken from the backlog, not yet handed to the consumer.
    live: VecDeque<ClientEvent>,
    /// The position the buffered events account for (exclusive).
    buffer_end: u64,
    /// The first position the consumer has not been handed yet.
    next: u64,
    /// Live events below this position are covered by replay: skipped.
    live_from: u64,
    resumes: u64,
    closed: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("service", &self.service)
            .field("identity", &self.mailbox.identity)
            .field("cursor", &self.cursor())
            .field("replaying", &self.replay.is_some())
            .field("resumes", &self.resumes)
            .field("closed", &self.closed)
            .finish()
    }
}

impl Session {
    /// Opens a session: registers its cursor in `hub` and fixes the
    /// replay range under the read-model lock of `sources`.
    ///
    /// Errors: [`SessionError::Closed`] if the engine behind `sources` is
    /// gone; otherwise as [`crate::Engine::open_session`].
    pub(crate) fn open(
        hub: Arc<Hub>,
        sources: Sources,
        service: ServiceSid,
        identity: &str,
        start: SessionStart,
    ) -> Result<Session, SessionError> {
        let source = sources.upgrade().ok_or(SessionError::Closed)?;
        let mailbox = hub.mailbox(service, identity);
        let mut session = Session {
            sources,
            hub,
            service,
            mailbox,
            link: None,
            backlog_cursor: 0,
            replay: None,
            buffer: VecDeque::new(),
            live: VecDeque::new(),
            buffer_end: 0,
            next: 0,
            live_from: 0,
            resumes: 0,
            closed: false,
        };
        session.connect(&*source, Some(start))?;
        Ok(session)
    }

    /// Registers a new cursor and plans the replay of everything from
    /// `self.next` (or `start`) up to the read models' position.
    fn connect(
        &mut self,
        source: &dyn ReadSource,
        start: Option<SessionStart>,
    ) -> Result<(), SessionError> {
        let (link, head, snapshot) = {
            // Under the read lock the read models are exactly the durable
            // prefix `..head`, and no batch is being applied: every event
            // at or past `head` is routed after the cursor below exists,
            // and nothing below it is appended for it.
            let rm = ReadView::acquire(source.read_models());
            let head = rm.applied_position().map_or(0, |p| p + 1);
            if start.is_some() && rm.service(&self.service).is_none() {
                return Err(SessionError::ServiceNotFound(self.service));
            }
            if let Some(SessionStart::After(cursor)) = start {
                if cursor >= head {
                    return Err(SessionError::CursorAhead {
                        cursor,
                        next_position: head,
                    });
                }
            }
            let link = self.hub.register(&self.mailbox, head);
            let snapshot = Snapshot::capture(&rm, &self.service, &self.mailbox.identity);
            (link, head, snapshot)
        };
        match start {
            Some(SessionStart::Live) => self.next = head,
            Some(SessionStart::After(cursor)) => self.next = cursor + 1,
            Some(SessionStart::Beginning) => self.next = 0,
            None => {}
        }
        self.link = Some(link.id);
        self.backlog_cursor = link.cursor;
        self.live_from = head;
        self.buffer_end = self.next;
        if self.next < head {
            tracing::debug!(
                service = %self.service,
                identity = %self.mailbox.identity,
                from = self.next,
                to = head,
                "session replays the events it missed"
            );
            self.replay = Some(Box::new(Replay::new(
                self.service,
                self.mailbox.identity.clone(),
                self.next,
                head,
                snapshot,
            )));
            self.hub.counters.resumes.fetch_add(1, Ordering::Relaxed);
        } else {
            self.next = head;
        }
        Ok(())
    }

    /// The service.
    pub fn service_sid(&self) -> ServiceSid {
        self.service
    }

    /// The identity.
    pub fn identity(&self) -> &str {
        &self.mailbox.identity
    }

    /// The log position through which this session has handed the
    /// consumer every event it should see (`None`: nothing yet from the
    /// start of the log). Reopen with [`SessionStart::After`] of it to
    /// continue exactly where this session stopped.
    pub fn cursor(&self) -> Option<u64> {
        self.next.checked_sub(1)
    }

    /// How many times this session fell behind, lost its place in its
    /// identity's backlog, and resumed from its cursor.
    pub fn resumes(&self) -> u64 {
        self.resumes
    }

    /// Whether the session has caught up (replays nothing right now).
    pub fn is_live(&self) -> bool {
        self.replay.is_none() && self.buffer.is_empty()
    }

    /// Blocks until the next event.
    ///
    /// Errors: [`SessionError::Closed`] once the engine is gone (and for
    /// every later call); [`SessionError::Read`] if replaying failed (call
    /// again to retry).
    pub fn recv(&mut self) -> Result<ClientEvent, SessionError> {
        loop {
            if let Some(event) = self.next_event(Wait::Block)? {
                return Ok(event);
            }
        }
    }

    /// Waits up to `timeout` for the next event; `Ok(None)` if none came.
    ///
    /// Errors: as [`Session::recv`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<ClientEvent>, SessionError> {
        self.next_event(Wait::Until(Instant::now() + timeout))
    }

    /// The next event if one is ready (a replay step may read the log);
    /// `Ok(None)` otherwise.
    ///
    /// Errors: as [`Session::recv`].
    pub fn try_recv(&mut self) -> Result<Option<ClientEvent>, SessionError> {
        self.next_event(Wait::No)
    }

    /// Turns the session into an async [`futures_core::Stream`] of
    /// `Result<ClientEvent, SessionError>` that ends when the engine is
    /// closed. Works on any executor (the dispatcher wakes the task).
    pub fn into_stream(self) -> SessionStream {
        SessionStream { session: self }
    }

    fn pop_buffer(&mut self) -> Option<ClientEvent> {
        let event = self.buffer.pop_front()?;
        if let Some(position) = event.cursor() {
            self.next = self.next.max(position + 1);
        }
        if self.buffer.is_empty() {
            self.next = self.next.max(self.buffer_end);
        }
        Some(event)
    }

    fn next_event(&mut self, wait: Wait) -> Result<Option<ClientEvent>, SessionError> {
        loop {
            if self.closed {
                return Err(SessionError::Closed);
            }
            if let Some(event) = self.pop_buffer() {
                return Ok(Some(event));
            }
            if self.replay.is_some() {
                self.replay_step()?;
                continue;
            }
            if let Some(event) = self.live.pop_front() {
                if let Some(position) = event.cursor() {
                    if position < self.live_from || position < self.next {
                        // Already covered by the replay.
                        continue;
                    }
                    self.next = position + 1;
                }
                return Ok(Some(event));
            }
            let Some(link) = self.link else {
                self.reconnect()?;
                continue;
            };
            if self.mailbox.nothing_after(self.backlog_cursor) {
                match wait {
                    // Idle: known without locking the backlog.
                    Wait::No => return Ok(None),
                    Wait::Block | Wait::Until(_) => self.settle(),
                }
            }
            let taken = self.hub.take(
                &self.mailbox,
                link,
                &mut self.live,
                SESSION_TAKE_EVENTS_MAX,
                wait,
            );
            match taken {
                Taken::Events(n) => self.backlog_cursor += n as u64,
                Taken::Empty => return Ok(None),
                Taken::Closed => {
                    self.hub.unregister(&self.mailbox, link);
                    self.link = None;
                    self.closed = true;
                    return Err(SessionError::Closed);
                }
                Taken::Lagged => {
                    self.link = None;
                    self.resumes += 1;
                    tracing::info!(
                        service = %self.service,
                        identity = %self.mailbox.identity,
                        cursor = ?self.cursor(),
                        resumes = self.resumes,
                        "session fell behind and lost its live queue; resuming from its cursor"
                    );
                    self.reconnect()?;
                }
            }
        }
    }

    /// Spins, then yields, while nothing is appended for this session, up
    /// to [`WAIT_SPIN_STEPS`] + [`WAIT_YIELD_STEPS`] steps: a blocking read
    /// then parks only when no event is on its way.
    fn settle(&self) {
        for step in 0..WAIT_SPIN_STEPS + WAIT_YIELD_STEPS {
            if !self.mailbox.nothing_after(self.backlog_cursor) {
                return;
            }
            if step < WAIT_SPIN_STEPS {
                for _ in 0..1u32 << step {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
        }
    }

    fn reconnect(&mut self) -> Result<(), SessionError> {
        let Some(source) = self.sources.upgrade() else {
            self.closed = true;
            return Err(SessionError::Closed);
        };
        self.connect(&*source, None)
    }

    fn replay_step(&mut self) -> Result<(), SessionError> {
        let Some(source) = self.sources.upgrade() else {
            self.closed = true;
            return Err(SessionError::Closed);
        };
        let Some(replay) = self.replay.as_mut() else {
            return Ok(());
        };
        let before = self.buffer.len();
        let end = replay.fill(
            &*source,
            &self.hub,
            &mut self.buffer,
            self.hub.options.replay_chunk_records,
        )?;
        let done = replay.done();
        self.hub
            .counters
            .replayed
            .fetch_add((self.buffer.len() - before) as u64, Ordering::Relaxed);
        self.buffer_end = end;
        if self.buffer.is_empty() {
            self.next = self.next.max(end);
        }
        if done {
            tracing::debug!(
                service = %self.service,
                identity = %self.mailbox.identity,
                through = end,
                "session caught up with the log"
            );
            self.replay = None;
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(link) = self.link.take() {
            self.hub.unregister(&self.mailbox, link);
        }
    }
}

/// A [`Session`] as an async [`futures_core::Stream`] (see
/// [`Session::into_stream`]). Items are `Ok(event)`, or `Err` for a failed
/// replay read (polling again retries); the stream ends when the engine is
/// closed.
#[derive(Debug)]
pub struct SessionStream {
    session: Session,
}

impl SessionStream {
    /// The session's cursor (see [`Session::cursor`]).
    pub fn cursor(&self) -> Option<u64> {
        self.session.cursor()
    }

    /// The underlying session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The underlying session, mutably: a host can drain a replay with
    /// the blocking [`Session::try_recv`] on a thread where reading the
    /// log is allowed (while `!session().is_live()`), then go on polling
    /// the stream; the two read one sequence, so nothing is skipped or
    /// repeated between them.
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }
}

impl futures_core::Stream for SessionStream {
    type Item = Result<ClientEvent, SessionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let session = &mut self.session;
        let mut registered = false;
        loop {
            match session.next_event(Wait::No) {
                Ok(Some(event)) => return Poll::Ready(Some(Ok(event))),
                Ok(None) => {
                    if registered {
                        return Poll::Pending;
                    }
                    // Register, then look once more: a push in between
                    // either is seen now or wakes this task.
                    if let Some(link) = session.link {
                        session.hub.set_waker(&session.mailbox, link, cx.waker());
                    }
                    registered = true;
                }
                Err(SessionError::Closed) => return Poll::Ready(None),
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}
