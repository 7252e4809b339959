//! The membership index, the session registry and the dispatch loop.
//!
//! The hub is the fan-out's shared state and knows neither who feeds it
//! (the writer-side routing in [`super::route`]) nor who drives dispatch
//! (the worker in [`super::worker`]): both depend on it, never the other
//! way round.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Waker;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use events::{ConversationSid, ServiceSid};
use parking_lot::{Mutex, RwLock};
use projections::ReadModels;

use super::mapping::ClientEventKind;
use super::{ClientEvent, FanoutMetrics, FanoutOptions};
use crate::log::CommittedRecord;

/// A conversation's chat members: a snapshot replaced copy-on-write.
pub(crate) type Members = Arc<[Arc<Mailbox>]>;

/// Everything registered for one (service, identity): its live session
/// queues. Created on first use and never removed, so the membership index
/// and the registry always agree on the one `Arc` per identity.
pub(crate) struct Mailbox {
    pub(crate) identity: Arc<str>,
    links: Mutex<Links>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// One session's live queue, as the dispatcher holds it. Dropping the
/// link drops the queue's only sender: the session then sees it
/// disconnected once it has drained it.
struct Link {
    id: u64,
    tx: Sender<ClientEvent>,
    /// Pushes wake the session's task (async sessions only).
    is_async: bool,
    state: Arc<LinkState>,
}

impl Link {
    fn wake(&self) {
        if self.is_async {
            self.state.wake();
        }
    }
}

/// A mailbox's live queues. The first is kept inline, so the common case
/// (one device online) costs no extra pointer hop per delivery.
#[derive(Default)]
struct Links {
    first: Option<Link>,
    rest: Vec<Link>,
}

impl Links {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn get(&self, i: usize) -> Option<&Link> {
        match i {
            0 => self.first.as_ref(),
            _ => self.rest.get(i - 1),
        }
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut Link> {
        match i {
            0 => self.first.as_mut(),
            _ => self.rest.get_mut(i - 1),
        }
    }

    fn push(&mut self, link: Link) {
        match self.first {
            None => self.first = Some(link),
            Some(_) => self.rest.push(link),
        }
    }

    /// Removes the link at `i`, moving the last one into its place.
    fn swap_remove(&mut self, i: usize) -> Option<Link> {
        if i == 0 {
            let removed = self.first.take();
            self.first = self.rest.pop();
            removed
        } else if i <= self.rest.len() {
            Some(self.rest.swap_remove(i - 1))
        } else {
            None
        }
    }

    fn position(&self, id: u64) -> Option<usize> {
        (0..self.len()).find(|i| self.get(*i).is_some_and(|l| l.id == id))
    }

    fn take_all(&mut self) -> Vec<Link> {
        let mut all: Vec<Link> = self.first.take().into_iter().collect();
        all.append(&mut self.rest);
        all
    }
}

/// What a session and the dispatcher share about one live queue.
#[derive(Debug, Default)]
pub(crate) struct LinkState {
    lagging: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl LinkState {
    /// Whether the dispatcher dropped the queue because it was full.
    pub(crate) fn lagged(&self) -> bool {
        self.lagging.load(Ordering::Acquire)
    }

    /// Registers the task to wake on the next push (or disconnection).
    pub(crate) fn set_waker(&self, waker: &Waker) {
        let mut slot = self.waker.lock();
        match &*slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    fn wake(&self) {
        let waker = self.waker.lock().take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A freshly registered live queue.
pub(crate) struct LiveLink {
    pub(crate) id: u64,
    pub(crate) rx: Receiver<ClientEvent>,
    pub(crate) state: Arc<LinkState>,
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
    pub(crate) removed: u64,
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
            links: Mutex::new(Links::default()),
        });
        by_identity.insert(identity, mailbox.clone());
        mailbox
    }

    /// Registers a new bounded live queue in `mailbox`. Events dispatched
    /// from now on reach it.
    pub(crate) fn register(&self, mailbox: &Mailbox, is_async: bool) -> LiveLink {
        let (tx, rx) = crossbeam_channel::bounded(self.options.session_queue_events);
        let state = Arc::new(LinkState::default());
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        mailbox.links.lock().push(Link {
            id,
            tx,
            is_async,
            state: state.clone(),
        });
        self.counters.sessions.fetch_add(1, Ordering::Relaxed);
        LiveLink { id, rx, state }
    }

    /// Removes the live queue `id` from `mailbox`, if it is still there.
    pub(crate) fn unregister(&self, mailbox: &Mailbox, id: u64) {
        let mut links = mailbox.links.lock();
        if let Some(i) = links.position(id) {
            links.swap_remove(i);
            self.counters.sessions.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Makes pushes to the live queue `id` wake its session's task.
    pub(crate) fn set_async(&self, mailbox: &Mailbox, id: u64) {
        let mut links = mailbox.links.lock();
        if let Some(link) = links.position(id).and_then(|i| links.get_mut(i)) {
            link.is_async = true;
        }
    }

    /// Drops every live queue (the engine is shutting down): sessions see
    /// their queue disconnected without lagging, and end.
    pub(crate) fn close_all(&self) {
        let registry = self.registry.lock();
        for mailbox in registry.values().flat_map(|m| m.values()) {
            let links = mailbox.links.lock().take_all();
            self.counters
                .sessions
                .fetch_sub(links.len() as u64, Ordering::Relaxed);
            for link in links {
                let (state, is_async) = (link.state.clone(), link.is_async);
                drop(link);
                if is_async {
                    state.wake();
                }
            }
        }
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
        c.sessions
            .fetch_sub(stats.lagged + stats.removed, Ordering::Relaxed);
    }

    /// Pushes `events`, in order, into every live queue of `mailbox`,
    /// never waiting: a queue that is full is marked lagging and dropped
    /// (it gets none of the remaining events: its session resumes from the
    /// log), a queue whose session is gone is dropped. One lock of the
    /// mailbox per call.
    pub(crate) fn push(
        &self,
        mailbox: &Mailbox,
        events: &[ClientEvent],
        stats: &mut DispatchStats,
    ) {
        let mut links = mailbox.links.lock();
        let mut i = 0;
        'links: while let Some(link) = links.get(i) {
            for event in events {
                match link.tx.try_send(event.clone()) {
                    Ok(()) => stats.deliveries += 1,
                    Err(TrySendError::Full(_)) => {
                        tracing::debug!(
                            identity = %mailbox.identity,
                            queue_events = self.options.session_queue_events,
                            "session queue full: the session is lagging and resumes from its cursor"
                        );
                        if let Some(link) = links.swap_remove(i) {
                            link.state.lagging.store(true, Ordering::Release);
                            let (state, is_async) = (link.state.clone(), link.is_async);
                            drop(link);
                            if is_async {
                                state.wake();
                            }
                        }
                        stats.lagged += 1;
                        continue 'links;
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        links.swap_remove(i);
                        stats.removed += 1;
                        continue 'links;
                    }
                }
            }
            link.wake();
            i += 1;
        }
    }

    /// Delivers routed log records, in order, to their recipients. The
    /// same shared record goes to every queue. Consecutive records routed
    /// to the same membership snapshot with no subject (messages and
    /// updates in one conversation) are delivered member by member, so each
    /// mailbox is locked once for the whole run; every queue still gets
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
        for m in run[0].1.members.iter() {
            self.push(m, &events, stats);
        }
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
            match &route.subject {
                Some(subject) => {
                    for m in route.members.iter() {
                        if !Arc::ptr_eq(m, subject) {
                            self.push(m, &event, stats);
                        }
                    }
                }
                None => {
                    for m in route.members.iter() {
                        self.push(m, &event, stats);
                    }
                }
            }
        }
        if let (Some(subject), Some(kind)) = (&route.subject, route.subject_kind) {
            self.push(subject, &[ClientEvent::log(kind, record.clone())], stats);
        }
    }
}
