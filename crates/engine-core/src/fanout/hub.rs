//! The membership index, the session registry, the shared backlogs and
//! the dispatch loop.
//!
//! Each (service, identity) has one [`Mailbox`]: an append-only backlog of
//! the client events its live sessions have not all read yet, shared by
//! all its devices, and one cursor per live session into it. Dispatch
//! appends each event once per identity (never once per device) and wakes
//! the readers; a session reads from its cursor; the backlog is trimmed to
//! its slowest cursor. An identity with no live session keeps nothing, and
//! an idle session is a cursor and a waker slot: no queue is allocated up
//! front.
//!
//! The hub is the fan-out's shared state and knows neither who feeds it
//! (the writer-side routing in [`super::route`]) nor who drives dispatch
//! (the worker in [`super::worker`]): both depend on it, never the other
//! way round.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use events::{ConversationSid, ServiceSid};
use parking_lot::{Condvar, Mutex, RwLock};
use projections::ReadModels;

use super::mapping::ClientEventKind;
use super::{ClientEvent, FanoutMetrics, FanoutOptions, BACKLOG_RETAINED_EVENTS_MAX};
use crate::log::CommittedRecord;

/// How many mailboxes ahead of the one it appends to a dispatch asks the
/// CPU to fetch (see [`Hub::push_to_members`]): an append takes a few
/// hundred nanoseconds, about one cross-core cache transfer, so 4 keeps
/// the transfers in flight ahead of the appends without evicting what is
/// being used.
pub(crate) const DISPATCH_PREFETCH_AHEAD_MAILBOXES: usize = 4;

/// How many wakers a dispatch holds, their tasks' state being prefetched,
/// before it wakes the oldest (see [`Hub::push_to_members`]): as many as
/// mailboxes it prefetches ahead, for the same reason. Delays a wake by a
/// few appends, about a microsecond.
pub(crate) const DISPATCH_WAKE_DELAY_WAKERS: usize = DISPATCH_PREFETCH_AHEAD_MAILBOXES;

/// Asks the CPU to bring the cache line at `value` into this core's cache
/// for writing, without waiting for it. Only a hint: no effect on what the
/// program computes, and nothing on other architectures.
#[inline]
fn prefetch_for_write<T>(value: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults (whatever the
    // address) and reads or writes nothing the program can observe.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0};
        _mm_prefetch::<_MM_HINT_ET0>(value.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// A conversation's chat members: a snapshot replaced copy-on-write.
pub(crate) type Members = Arc<[Arc<Mailbox>]>;

/// Everything registered for one (service, identity): the backlog its
/// live sessions read and their cursors. Created on first use and never
/// removed, so the membership index and the registry always agree on the
/// one `Arc` per identity.
pub(crate) struct Mailbox {
    pub(crate) identity: Arc<str>,
    backlog: Mutex<Backlog>,
    /// Signalled after every append (and at close) while a blocking
    /// reader waits.
    ready: Condvar,
    /// The backlog's tail sequence number, published after each append:
    /// a session whose cursor equals it has nothing to read, known
    /// without taking the lock.
    appended: AtomicU64,
    /// Set (under the lock) when the engine shuts down.
    closed: AtomicBool,
}

impl Mailbox {
    /// Whether a session whose backlog cursor is `cursor` certainly has
    /// nothing to read: no append since it read up to `cursor` and not
    /// closed. Takes no lock (a session can lag only by an append, which
    /// moves the tail).
    pub(crate) fn nothing_after(&self, cursor: u64) -> bool {
        !self.closed.load(Ordering::Acquire) && self.appended.load(Ordering::Acquire) == cursor
    }
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// One live session's place in its identity's backlog.
struct Link {
    id: u64,
    /// The sequence number of the next backlog entry this session reads.
    cursor: u64,
    /// Log positions below this were routed before the session started
    /// (its replay, or nothing, covers them): never appended for it.
    live_from: u64,
    /// Fell more than the cap behind: no longer read from nor counted in
    /// trimming; its session notices, drops the link and resumes.
    lagged: bool,
    /// The async task to wake on the next append (async sessions only).
    waker: Option<Waker>,
}

/// A mailbox's shared backlog and its readers.
///
/// Invariants (under the mailbox lock): entries are in dispatch order,
/// which is log order; `base` is the sequence number of the first entry
/// and no reader that has not lagged has a cursor below it or above
/// `base + events.len()`; with no reader the backlog is empty.
#[derive(Default)]
struct Backlog {
    base: u64,
    events: VecDeque<ClientEvent>,
    links: Vec<Link>,
    /// Blocking readers waiting on [`Mailbox::ready`] right now.
    waiting: usize,
    /// The engine is shutting down: readers drain what is left, then end.
    closed: bool,
}

impl Backlog {
    fn tail(&self) -> u64 {
        self.base + self.events.len() as u64
    }

    fn position(&self, id: u64) -> Option<usize> {
        self.links.iter().position(|l| l.id == id)
    }

    /// Drops the entries every reader has read; releases the memory of a
    /// backlog that a burst grew once it is empty again.
    fn trim(&mut self) {
        let tail = self.tail();
        let lowest = self
            .links
            .iter()
            .filter(|l| !l.lagged)
            .map(|l| l.cursor)
            .min()
            .unwrap_or(tail);
        let read = usize::try_from(lowest - self.base).unwrap_or(usize::MAX);
        if read >= self.events.len() {
            self.events.clear();
            if self.events.capacity() > BACKLOG_RETAINED_EVENTS_MAX {
                self.events = VecDeque::new();
            }
        } else {
            self.events.drain(..read);
        }
        self.base = lowest;
    }

    /// Signals the blocking readers and moves the async readers' wakers
    /// to `wakers`, for the caller to wake once it has released the lock
    /// (a woken task that runs at once then finds the backlog unlocked).
    /// Each waker's task is prefetched for write meanwhile: waking writes
    /// its state, last written by the runtime thread that polled it.
    fn signal(&mut self, ready: &Condvar, wakers: &mut VecDeque<Waker>) {
        if self.waiting > 0 {
            ready.notify_all();
        }
        for link in &mut self.links {
            if let Some(w) = link.waker.take() {
                prefetch_for_write(w.data());
                wakers.push_back(w);
            }
        }
    }
}

/// The most recently committed records, decoded and shared: what a
/// resuming session reads instead of the log, for the positions it holds.
///
/// Invariant: `records` holds consecutive positions from `first` on, in
/// order, at most the configured number of them.
#[derive(Default)]
pub(crate) struct Recent {
    first: u64,
    records: VecDeque<Arc<CommittedRecord>>,
}

impl Recent {
    /// The cached records of `range` (clones of the shared pointers) and
    /// the sub-range they cover: `lo..hi`, inside `range`, empty (at
    /// `range.end` or `range.start`) when the cache holds none of it.
    pub(crate) fn slice(
        &self,
        range: std::ops::Range<u64>,
    ) -> (Vec<Arc<CommittedRecord>>, u64, u64) {
        let end = self.first + self.records.len() as u64;
        let lo = range.start.max(self.first).min(range.end);
        let hi = range.end.min(end).max(lo);
        if lo == hi {
            return (Vec::new(), range.end, range.end);
        }
        let from = usize::try_from(lo - self.first).unwrap_or(usize::MAX);
        let to = usize::try_from(hi - self.first).unwrap_or(usize::MAX);
        (self.records.range(from..to).cloned().collect(), lo, hi)
    }
}

/// A newly registered live session: its link's id and backlog cursor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Registered {
    pub(crate) id: u64,
    pub(crate) cursor: u64,
}

/// How long [`Hub::take`] may wait for an event.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// Until one comes.
    Block,
    /// Until one comes or the deadline passes.
    Until(Instant),
    /// Not at all.
    No,
}

/// What [`Hub::take`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// This many events were moved to the session's buffer.
    Events(usize),
    /// Nothing new (only without waiting, or at the deadline).
    Empty,
    /// The session fell more than the cap behind: its link is gone and it
    /// must resume from its cursor.
    Lagged,
    /// The engine is shutting down and the session has read everything.
    Closed,
}

/// How one routed event reaches its recipients: every member but the
/// subject gets `others_kind`, the subject gets `subject_kind`.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) members: Members,
    pub(crate) subject: Option<Arc<Mailbox>>,
    pub(crate) subject_kind: Option<ClientEventKind>,
    pub(crate) others_kind: Option<ClientEventKind>,
}

/// Per-dispatch counts, added to the hub's counters in one go.
#[derive(Debug, Default)]
pub(crate) struct DispatchStats {
    pub(crate) deliveries: u64,
    pub(crate) lagged: u64,
    pub(crate) routed: u64,
    pub(crate) typing: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    sessions: AtomicU64,
    routed: AtomicU64,
    deliveries: AtomicU64,
    lagged: AtomicU64,
    pub(crate) resumes: AtomicU64,
    pub(crate) replayed: AtomicU64,
    pub(crate) replay_cached: AtomicU64,
    pub(crate) replay_read: AtomicU64,
    typing: AtomicU64,
}

/// Mailboxes by service, then identity.
type Registry = HashMap<ServiceSid, HashMap<Arc<str>, Arc<Mailbox>>>;

/// The fan-out's shared state: registry, membership index, counters.
pub(crate) struct Hub {
    pub(crate) options: FanoutOptions,
    registry: Mutex<Registry>,
    /// The membership index; written only by the writer-side routing
    /// ([`super::route`]) and by [`Hub::rebuild`].
    pub(super) members: RwLock<HashMap<(ServiceSid, ConversationSid), Members>>,
    /// The shared empty membership.
    pub(super) empty: Members,
    pub(crate) counters: Counters,
    next_link: AtomicU64,
    /// The shared cache of recently committed records resumes read first.
    recent: Mutex<Recent>,
}

impl Hub {
    pub(crate) fn new(options: FanoutOptions) -> Self {
        Hub {
            options,
            registry: Mutex::new(HashMap::new()),
            members: RwLock::new(HashMap::new()),
            empty: Arc::from(Vec::new()),
            counters: Counters::default(),
            next_link: AtomicU64::new(0),
            recent: Mutex::new(Recent::default()),
        }
    }

    /// The mailbox of (service, identity), created on first use.
    pub(crate) fn mailbox(&self, service: ServiceSid, identity: &str) -> Arc<Mailbox> {
        let mut registry = self.registry.lock();
        let by_identity = registry.entry(service).or_default();
        if let Some(m) = by_identity.get(identity) {
            return m.clone();
        }
        let identity: Arc<str> = Arc::from(identity);
        let mailbox = Arc::new(Mailbox {
            identity: identity.clone(),
            backlog: Mutex::new(Backlog::default()),
            ready: Condvar::new(),
            appended: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        by_identity.insert(identity, mailbox.clone());
        mailbox
    }

    /// Registers a new live session in `mailbox`, reading from the
    /// backlog's current tail: events dispatched from now on reach it,
    /// except log events below `live_from` (routed before the session
    /// started, which its replay covers). Returns the link's id and its
    /// cursor.
    pub(crate) fn register(&self, mailbox: &Mailbox, live_from: u64) -> Registered {
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        let mut backlog = mailbox.backlog.lock();
        let cursor = backlog.tail();
        // One slot per device: a lone session costs one link, not a
        // doubling vector's spare room.
        backlog.links.reserve_exact(1);
        backlog.links.push(Link {
            id,
            cursor,
            live_from,
            lagged: false,
            waker: None,
        });
        if !backlog.closed {
            self.counters.sessions.fetch_add(1, Ordering::Relaxed);
        }
        Registered { id, cursor }
    }

    /// Removes the live session `id` from `mailbox`, if it is still there,
    /// and trims what only it had left to read.
    pub(crate) fn unregister(&self, mailbox: &Mailbox, id: u64) {
        let mut backlog = mailbox.backlog.lock();
        if let Some(i) = backlog.position(id) {
            let link = backlog.links.swap_remove(i);
            if !link.lagged && !backlog.closed {
                self.counters.sessions.fetch_sub(1, Ordering::Relaxed);
            }
            if backlog.links.capacity() > backlog.links.len() * 2 {
                backlog.links.shrink_to_fit();
            }
            backlog.trim();
        }
    }

    /// Makes the next append to `mailbox` (or its lagging or closing)
    /// wake `waker`. Returns false if the link `id` is gone.
    pub(crate) fn set_waker(&self, mailbox: &Mailbox, id: u64, waker: &Waker) -> bool {
        let mut backlog = mailbox.backlog.lock();
        let Some(i) = backlog.position(id) else {
            return false;
        };
        let link = &mut backlog.links[i];
        match &link.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => link.waker = Some(waker.clone()),
        }
        true
    }

    /// Moves up to `max` unread events of the live session `id` into
    /// `out`, waiting for one as `wait` says. Events come in dispatch
    /// order; the caller skips log events below its own resume point.
    ///
    /// Returns [`Taken::Lagged`] (and forgets the link) if the dispatcher
    /// found the session more than the cap behind, or if the link is
    /// unknown; [`Taken::Closed`] once the engine shuts down and nothing is
    /// left to read.
    pub(crate) fn take(
        &self,
        mailbox: &Mailbox,
        id: u64,
        out: &mut VecDeque<ClientEvent>,
        max: usize,
        wait: Wait,
    ) -> Taken {
        let mut backlog = mailbox.backlog.lock();
        loop {
            let Some(i) = backlog.position(id) else {
                return Taken::Lagged;
            };
            let (base, tail) = (backlog.base, backlog.tail());
            let link = &mut backlog.links[i];
            if link.lagged {
                backlog.links.swap_remove(i);
                return Taken::Lagged;
            }
            assert!(
                base <= link.cursor && link.cursor <= tail,
                "a session cursor left its backlog: {} not in {base}..={tail}",
                link.cursor
            );
            let unread = usize::try_from(tail - link.cursor).unwrap_or(usize::MAX);
            if unread > 0 {
                let n = unread.min(max);
                let from = usize::try_from(link.cursor - base).unwrap_or(usize::MAX);
                let was_lowest = link.cursor == base;
                link.cursor += n as u64;
                out.extend(backlog.events.range(from..from + n).cloned());
                if was_lowest {
                    backlog.trim();
                }
                return Taken::Events(n);
            }
            if backlog.closed {
                return Taken::Closed;
            }
            let deadline = match wait {
                Wait::No => return Taken::Empty,
                Wait::Block => None,
                Wait::Until(deadline) if Instant::now() >= deadline => return Taken::Empty,
                Wait::Until(deadline) => Some(deadline),
            };
            // The dispatcher signals after every append, lag and close.
            backlog.waiting += 1;
            match deadline {
                None => mailbox.ready.wait(&mut backlog),
                Some(deadline) => {
                    mailbox.ready.wait_until(&mut backlog, deadline);
                }
            }
            backlog.waiting -= 1;
        }
    }

    /// Closes every mailbox (the engine is shutting down): sessions read
    /// what is left, then end without lagging.
    pub(crate) fn close_all(&self) {
        let registry = self.registry.lock();
        for mailbox in registry.values().flat_map(|m| m.values()) {
            let mut backlog = mailbox.backlog.lock();
            if !backlog.closed {
                backlog.closed = true;
                mailbox.closed.store(true, Ordering::Release);
                let live = backlog.links.iter().filter(|l| !l.lagged).count();
                self.counters
                    .sessions
                    .fetch_sub(live as u64, Ordering::Relaxed);
                let mut wakers = VecDeque::new();
                backlog.signal(&mailbox.ready, &mut wakers);
                drop(backlog);
                wakers.into_iter().for_each(Waker::wake);
            }
        }
    }

    /// Appends durable records, in log order, to the shared cache of
    /// recent records, dropping the oldest past
    /// [`FanoutOptions::recent_records`]. A gap in positions (which a
    /// durable log never has) restarts the cache at the new records rather
    /// than break its invariant.
    pub(crate) fn remember(&self, records: &[Arc<CommittedRecord>]) {
        let cap = self.options.recent_records;
        if cap == 0 || records.is_empty() {
            return;
        }
        let mut recent = self.recent.lock();
        for record in records {
            let position = record.header.position;
            if position != recent.first + recent.records.len() as u64 {
                if !recent.records.is_empty() {
                    tracing::warn!(
                        position,
                        expected = recent.first + recent.records.len() as u64,
                        "a committed record is not the next position: the recent-record cache restarts"
                    );
                }
                recent.records.clear();
                recent.first = position;
            }
            if recent.records.len() == cap {
                recent.records.pop_front();
                recent.first += 1;
            }
            recent.records.push_back(record.clone());
        }
    }

    /// The recent records of `range` (see [`Recent::slice`]).
    pub(crate) fn recent(
        &self,
        range: std::ops::Range<u64>,
    ) -> (Vec<Arc<CommittedRecord>>, u64, u64) {
        self.recent.lock().slice(range)
    }

    /// The chat members of a conversation right now (as of the last
    /// routed event).
    pub(crate) fn members(&self, service: ServiceSid, conversation: ConversationSid) -> Members {
        self.members
            .read()
            .get(&(service, conversation))
            .cloned()
            .unwrap_or_else(|| self.empty.clone())
    }

    /// Rebuilds the membership index from the read models (at open, and
    /// after a failed batch was rolled back).
    pub(crate) fn rebuild(&self, rm: &ReadModels) {
        let mut index = HashMap::new();
        for service in rm.services() {
            let service_sid = &service.row().sid;
            for conversation in service.conversations() {
                let conversation_sid = &conversation.row().sid;
                let mut identities: Vec<&str> = conversation.chat_identities().collect();
                identities.sort();
                let members: Vec<Arc<Mailbox>> = identities
                    .into_iter()
                    .map(|i| self.mailbox(*service_sid, i))
                    .collect();
                index.insert((*service_sid, *conversation_sid), Members::from(members));
            }
        }
        *self.members.write() = index;
    }

    /// The counters, read now.
    pub(crate) fn metrics(&self) -> FanoutMetrics {
        let c = &self.counters;
        FanoutMetrics {
            sessions: c.sessions.load(Ordering::Relaxed),
            events_routed: c.routed.load(Ordering::Relaxed),
            deliveries: c.deliveries.load(Ordering::Relaxed),
            lagged: c.lagged.load(Ordering::Relaxed),
            resumes: c.resumes.load(Ordering::Relaxed),
            replayed: c.replayed.load(Ordering::Relaxed),
            replay_records_cached: c.replay_cached.load(Ordering::Relaxed),
            replay_records_read: c.replay_read.load(Ordering::Relaxed),
            typing_notices: c.typing.load(Ordering::Relaxed),
        }
    }

    /// Adds a dispatch's counts to the counters.
    pub(crate) fn record(&self, stats: &DispatchStats) {
        let c = &self.counters;
        c.deliveries.fetch_add(stats.deliveries, Ordering::Relaxed);
        c.lagged.fetch_add(stats.lagged, Ordering::Relaxed);
        c.routed.fetch_add(stats.routed, Ordering::Relaxed);
        c.typing.fetch_add(stats.typing, Ordering::Relaxed);
        c.sessions.fetch_sub(stats.lagged, Ordering::Relaxed);
    }

    /// Appends `events`, in order, to `mailbox`'s backlog once for all its
    /// live sessions, and wakes them once the mailbox is unlocked (see
    /// [`Hub::append`]).
    pub(crate) fn push(
        &self,
        mailbox: &Mailbox,
        events: &[ClientEvent],
        stats: &mut DispatchStats,
    ) {
        let mut wakers = VecDeque::new();
        self.append(mailbox, events, stats, &mut wakers);
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Appends `events`, in order, to `mailbox`'s backlog once for all its
    /// live sessions, signals its blocking readers and adds its async
    /// readers' wakers to `wakers`: the caller wakes them, after this call
    /// (which holds the mailbox lock throughout), before it waits for
    /// anything. Never waits: a session left more than
    /// [`FanoutOptions::session_queue_events`] events behind is marked
    /// lagging (it reads nothing more from the backlog and resumes from its
    /// cursor) and the backlog is trimmed past it. Log events below every
    /// session's `live_from` (routed before they started) are not appended;
    /// with no live session nothing is. One lock of the mailbox per call.
    ///
    /// Memory: the lag check runs after the whole slice is appended, so a
    /// backlog holds at most the cap plus one dispatch run (at most
    /// [`super::WORKER_BATCH_RECORDS_MAX`] events) until the laggards are
    /// trimmed past, at the end of this call.
    fn append(
        &self,
        mailbox: &Mailbox,
        events: &[ClientEvent],
        stats: &mut DispatchStats,
        wakers: &mut VecDeque<Waker>,
    ) {
        let mut backlog = mailbox.backlog.lock();
        let backlog = &mut *backlog;
        let (mut live, mut oldest_start, mut newest_start) = (0u64, u64::MAX, 0u64);
        for link in backlog.links.iter().filter(|l| !l.lagged) {
            live += 1;
            oldest_start = oldest_start.min(link.live_from);
            newest_start = newest_start.max(link.live_from);
        }
        if live == 0 {
            return;
        }
        let before = backlog.events.len();
        for event in events {
            let recipients = match event.cursor() {
                None => live,
                Some(position) if position >= newest_start => live,
                Some(position) if position < oldest_start => continue,
                Some(position) => backlog
                    .links
                    .iter()
                    .filter(|l| !l.lagged && position >= l.live_from)
                    .count() as u64,
            };
            backlog.events.push_back(event.clone());
            stats.deliveries += recipients;
        }
        if backlog.events.len() == before {
            return;
        }
        mailbox.appended.store(backlog.tail(), Ordering::Release);
        let cap = self.options.session_queue_events as u64;
        let tail = backlog.tail();
        let mut lagged_any = false;
        for link in backlog.links.iter_mut().filter(|l| !l.lagged) {
            if tail - link.cursor > cap {
                tracing::debug!(
                    identity = %mailbox.identity,
                    queue_events = self.options.session_queue_events,
                    "session queue full: the session is lagging and resumes from its cursor"
                );
                link.lagged = true;
                stats.lagged += 1;
                lagged_any = true;
            }
        }
        if lagged_any {
            backlog.trim();
        }
        backlog.signal(&mailbox.ready, wakers);
    }

    /// [`Hub::push`]es `events` to every mailbox of `members` but `except`,
    /// in order. While it locks one mailbox, the one
    /// [`DISPATCH_PREFETCH_AHEAD_MAILBOXES`] further on is already being
    /// fetched (with intent to write) into this core's cache: each mailbox
    /// was last written by its consumer on another core, and waiting for
    /// those transfers one after another was most of a dispatch's time.
    /// Likewise a task is woken only once [`DISPATCH_WAKE_DELAY_WAKERS`]
    /// later wakers have been collected, its state prefetched meanwhile,
    /// and outside every mailbox lock; all are woken before this returns.
    pub(crate) fn push_to_members(
        &self,
        members: &[Arc<Mailbox>],
        except: Option<&Arc<Mailbox>>,
        events: &[ClientEvent],
        stats: &mut DispatchStats,
    ) {
        let mut wakers = VecDeque::new();
        for (i, m) in members.iter().enumerate() {
            if let Some(ahead) = members.get(i + DISPATCH_PREFETCH_AHEAD_MAILBOXES) {
                prefetch_for_write(&ahead.backlog);
            }
            if !except.is_some_and(|e| Arc::ptr_eq(m, e)) {
                self.append(m, events, stats, &mut wakers);
            }
            while wakers.len() > DISPATCH_WAKE_DELAY_WAKERS {
                if let Some(w) = wakers.pop_front() {
                    w.wake();
                }
            }
        }
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Delivers routed log records, in order, to their recipients. The
    /// same shared record goes to every backlog. Consecutive records routed
    /// to the same membership snapshot with no subject (messages and
    /// updates in one conversation) are delivered member by member, so each
    /// mailbox is locked once for the whole run; every backlog still gets
    /// its events in log order.
    pub(crate) fn dispatch(
        &self,
        items: &[(Arc<CommittedRecord>, Route)],
        stats: &mut DispatchStats,
    ) {
        let mut i = 0;
        while i < items.len() {
            let route = &items[i].1;
            if route.subject.is_none() {
                let run = items[i..]
                    .iter()
                    .take_while(|(_, r)| {
                        r.subject.is_none() && Arc::ptr_eq(&r.members, &route.members)
                    })
                    .count();
                if run > 1 {
                    self.dispatch_run(&items[i..i + run], stats);
                    i += run;
                    continue;
                }
            }
            self.dispatch_one(&items[i].0, route, stats);
            i += 1;
        }
    }

    /// A run of records with one membership snapshot and no subject.
    fn dispatch_run(&self, run: &[(Arc<CommittedRecord>, Route)], stats: &mut DispatchStats) {
        stats.routed += run.len() as u64;
        let events: Vec<ClientEvent> = run
            .iter()
            .filter_map(|(record, route)| {
                route
                    .others_kind
                    .map(|kind| ClientEvent::log(kind, record.clone()))
            })
            .collect();
        if events.is_empty() {
            return;
        }
        self.push_to_members(&run[0].1.members, None, &events, stats);
    }

    /// One routed record.
    fn dispatch_one(
        &self,
        record: &Arc<CommittedRecord>,
        route: &Route,
        stats: &mut DispatchStats,
    ) {
        stats.routed += 1;
        if let Some(kind) = route.others_kind {
            let event = [ClientEvent::log(kind, record.clone())];
            self.push_to_members(&route.members, route.subject.as_ref(), &event, stats);
        }
        if let (Some(subject), Some(kind)) = (&route.subject, route.subject_kind) {
            self.push(subject, &[ClientEvent::log(kind, record.clone())], stats);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::bench_support::message_record;

    fn message(position: u64) -> ClientEvent {
        ClientEvent::log(ClientEventKind::MessageAdded, message_record(position))
    }

    fn push(hub: &Hub, mailbox: &Mailbox, positions: std::ops::Range<u64>) -> DispatchStats {
        let events: Vec<ClientEvent> = positions.map(message).collect();
        let mut stats = DispatchStats::default();
        hub.push(mailbox, &events, &mut stats);
        hub.record(&stats);
        stats
    }

    fn take_all(hub: &Hub, mailbox: &Mailbox, link: u64) -> (Vec<u64>, Taken) {
        let mut out = VecDeque::new();
        let last = loop {
            match hub.take(mailbox, link, &mut out, usize::MAX, Wait::No) {
                Taken::Events(_) => continue,
                other => break other,
            }
        };
        (out.iter().filter_map(ClientEvent::cursor).collect(), last)
    }

    const CAP_EVENTS: usize = 4;

    fn hub() -> (Hub, Arc<Mailbox>) {
        let hub = Hub::new(FanoutOptions::default().session_queue_events(CAP_EVENTS));
        let mailbox = hub.mailbox(ServiceSid([1; 16]), "late");
        (hub, mailbox)
    }

    #[test]
    fn a_new_session_receives_no_backlog_routed_before_it_joined() {
        let (hub, mailbox) = hub();
        // The session starts at position 100; the worker, behind the
        // writer, then dispatches more than a cap's worth of events routed
        // before that.
        let link = hub.register(&mailbox, 100).id;
        let stale = push(&hub, &mailbox, 90..100);
        assert_eq!((stale.deliveries, stale.lagged), (0, 0));
        assert_eq!(take_all(&hub, &mailbox, link), (vec![], Taken::Empty));
        push(&hub, &mailbox, 100..102);
        assert_eq!(
            take_all(&hub, &mailbox, link),
            (vec![100, 101], Taken::Empty)
        );
        assert_eq!(hub.metrics().lagged, 0);
        assert_eq!(hub.metrics().sessions, 1);
    }

    #[test]
    fn devices_share_one_backlog_and_a_late_device_skips_what_predates_it() {
        let (hub, mailbox) = hub();
        let early = hub.register(&mailbox, 0).id;
        push(&hub, &mailbox, 0..2);
        let late = hub.register(&mailbox, 3).id;
        // Position 2 was routed before the late device started.
        let stats = push(&hub, &mailbox, 2..4);
        assert_eq!(stats.deliveries, 1 + 2);
        assert_eq!(
            take_all(&hub, &mailbox, early),
            (vec![0, 1, 2, 3], Taken::Empty)
        );
        // The late device reads from the tail at its start; it skips the
        // stale entry itself (the session filters below `live_from`).
        assert_eq!(take_all(&hub, &mailbox, late), (vec![2, 3], Taken::Empty));
        assert_eq!(
            mailbox.backlog.lock().events.len(),
            0,
            "trimmed once both read"
        );
    }

    #[test]
    fn a_session_more_than_the_cap_behind_lags_and_the_backlog_is_trimmed_past_it() {
        let (hub, mailbox) = hub();
        let sloth = hub.register(&mailbox, 0).id;
        let reader = hub.register(&mailbox, 0).id;
        for p in 0..CAP_EVENTS as u64 {
            push(&hub, &mailbox, p..p + 1);
            assert_eq!(take_all(&hub, &mailbox, reader).0, vec![p]);
        }
        assert_eq!(
            hub.metrics().lagged,
            0,
            "exactly the cap behind is not lagging"
        );
        let overflow = push(&hub, &mailbox, CAP_EVENTS as u64..CAP_EVENTS as u64 + 1);
        assert_eq!(overflow.lagged, 1);
        assert_eq!(
            mailbox.backlog.lock().events.len(),
            1,
            "only the reader's unread entry is left"
        );
        assert_eq!(take_all(&hub, &mailbox, sloth), (vec![], Taken::Lagged));
        assert_eq!(take_all(&hub, &mailbox, reader).0, vec![CAP_EVENTS as u64]);
        assert_eq!(hub.metrics().sessions, 1);
    }

    #[test]
    fn a_drained_backlog_releases_what_a_burst_grew() {
        let hub = Hub::new(FanoutOptions::default());
        let mailbox = hub.mailbox(ServiceSid([1; 16]), "burst");
        let link = hub.register(&mailbox, 0).id;
        let burst = 10 * BACKLOG_RETAINED_EVENTS_MAX as u64;
        push(&hub, &mailbox, 0..burst);
        assert!(mailbox.backlog.lock().events.capacity() >= burst as usize);
        assert_eq!(take_all(&hub, &mailbox, link).0.len() as u64, burst);
        assert_eq!(mailbox.backlog.lock().events.capacity(), 0);
    }

    #[test]
    fn an_identity_with_no_live_session_keeps_nothing() {
        let (hub, mailbox) = hub();
        assert_eq!(push(&hub, &mailbox, 0..3).deliveries, 0);
        let link = hub.register(&mailbox, 0).id;
        push(&hub, &mailbox, 3..5);
        hub.unregister(&mailbox, link);
        let backlog = mailbox.backlog.lock();
        assert_eq!((backlog.events.len(), backlog.links.len()), (0, 0));
        assert_eq!(hub.metrics().sessions, 0);
    }

    #[test]
    fn an_idle_session_knows_it_has_nothing_to_read_without_the_lock() {
        let (hub, mailbox) = hub();
        let link = hub.register(&mailbox, 0);
        assert!(mailbox.nothing_after(link.cursor));
        push(&hub, &mailbox, 0..2);
        assert!(!mailbox.nothing_after(link.cursor), "an append is seen");
        assert_eq!(take_all(&hub, &mailbox, link.id).0, vec![0, 1]);
        assert!(mailbox.nothing_after(link.cursor + 2));
        hub.close_all();
        assert!(!mailbox.nothing_after(link.cursor + 2), "closing is seen");
    }

    /// Records, when woken, whether its mailbox was unlocked by then.
    struct LockProbe {
        mailbox: Arc<Mailbox>,
        woken_unlocked: Mutex<Option<bool>>,
    }

    impl std::task::Wake for LockProbe {
        fn wake(self: Arc<Self>) {
            let unlocked = self.mailbox.backlog.try_lock().is_some();
            *self.woken_unlocked.lock() = Some(unlocked);
        }
    }

    #[test]
    fn a_woken_task_finds_its_mailbox_unlocked_and_every_member_is_woken() {
        let hub = Hub::new(FanoutOptions::default());
        let members: Vec<Arc<Mailbox>> = (0..3 * DISPATCH_WAKE_DELAY_WAKERS)
            .map(|i| hub.mailbox(ServiceSid([1; 16]), &format!("member-{i}")))
            .collect();
        let probes: Vec<Arc<LockProbe>> = members
            .iter()
            .map(|mailbox| {
                let link = hub.register(mailbox, 0).id;
                let probe = Arc::new(LockProbe {
                    mailbox: mailbox.clone(),
                    woken_unlocked: Mutex::new(None),
                });
                assert!(hub.set_waker(mailbox, link, &Waker::from(probe.clone())));
                probe
            })
            .collect();
        let mut stats = DispatchStats::default();
        hub.push_to_members(&members, Some(&members[1]), &[message(0)], &mut stats);
        for (i, probe) in probes.iter().enumerate() {
            let expected = (i != 1).then_some(true);
            assert_eq!(*probe.woken_unlocked.lock(), expected, "member {i}");
        }
        assert_eq!(stats.deliveries, members.len() as u64 - 1);
        // A lone push and closing wake outside the lock too.
        let (probe, mailbox) = (&probes[1], &members[1]);
        let link = hub.register(mailbox, 0).id;
        assert!(hub.set_waker(mailbox, link, &Waker::from(probe.clone())));
        push(&hub, mailbox, 1..2);
        assert_eq!(*probe.woken_unlocked.lock(), Some(true));
        *probe.woken_unlocked.lock() = None;
        assert!(hub.set_waker(mailbox, link, &Waker::from(probe.clone())));
        hub.close_all();
        assert_eq!(*probe.woken_unlocked.lock(), Some(true));
    }

    #[test]
    fn a_closed_mailbox_hands_out_what_is_left_then_ends() {
        let (hub, mailbox) = hub();
        let link = hub.register(&mailbox, 0).id;
        push(&hub, &mailbox, 0..2);
        hub.close_all();
        assert_eq!(take_all(&hub, &mailbox, link), (vec![0, 1], Taken::Closed));
        assert_eq!(hub.metrics().sessions, 0);
        hub.unregister(&mailbox, link);
        assert_eq!(hub.metrics().sessions, 0, "no double count");
    }
}
