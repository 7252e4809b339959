//! The membership index, the session registry and the dispatch loop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Waker;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use events::{ConversationSid, Event, RecordHeader, ServiceSid};
use parking_lot::{Mutex, RwLock};
use projections::ReadModels;

use super::mapping::{
    client_event_kind, membership_effect, subject_of, ClientEventKind, MembershipEffect,
    Perspective, Subject,
};
use super::worker::WorkerMsg;
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
    members: RwLock<HashMap<(ServiceSid, ConversationSid), Members>>,
    empty: Members,
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

/// The fan-out's part of the writer's state machine: routes each event as
/// it is applied (membership at that very position), and hands the routes
/// of a batch to the worker once the batch is durable.
pub(crate) struct FanoutWriter {
    hub: Arc<Hub>,
    tx: Sender<WorkerMsg>,
    pending: Vec<(u64, Route)>,
}

fn perspective(member_before: bool, member_after: bool, subject: bool) -> Perspective {
    Perspective {
        member_before,
        member_after,
        subject,
    }
}

impl FanoutWriter {
    pub(crate) fn new(hub: Arc<Hub>, tx: Sender<WorkerMsg>) -> Self {
        FanoutWriter {
            hub,
            tx,
            pending: Vec::new(),
        }
    }

    /// Routes `event` against `rm` as it is just before the event, and
    /// updates the membership index to just after it.
    pub(crate) fn route(&mut self, rm: &ReadModels, header: &RecordHeader, event: &Event) {
        if let Some(route) = self.route_event(rm, header, event) {
            if route.others_kind.is_some() || route.subject_kind.is_some() {
                self.pending.push((header.position, route));
            }
        }
    }

    fn route_event(&self, rm: &ReadModels, header: &RecordHeader, event: &Event) -> Option<Route> {
        let service = header.service_sid;
        let svc = rm.service(&service);
        // Non-subjects keep their membership through every event but a
        // conversation's removal.
        let removes_all = matches!(
            membership_effect(event),
            MembershipEffect::RemoveConversation(_)
        );
        let others_kind = client_event_kind(event, perspective(true, !removes_all, false));
        let Some(conversation) = event.conversation_sid() else {
            if let MembershipEffect::RemoveService = membership_effect(event) {
                self.hub.members.write().retain(|(s, _), _| *s != service);
                return None;
            }
            // Service-level events: only user events have a recipient.
            let Subject::User(user) = subject_of(event) else {
                return None;
            };
            let identity = &svc?.user(&user)?.identity;
            let mailbox = self.hub.mailbox(service, identity);
            return Some(Route {
                members: self.hub.empty.clone(),
                subject: Some(mailbox),
                subject_kind: client_event_kind(event, perspective(false, false, true)),
                others_kind: None,
            });
        };
        let key = (service, conversation);
        let conv = svc.and_then(|s| s.conversation_by_sid(&conversation));
        match membership_effect(event) {
            MembershipEffect::CreateConversation(_) => {
                if svc.is_some() {
                    self.hub.members.write().insert(key, self.hub.empty.clone());
                }
                None
            }
            MembershipEffect::Join {
                identity: Some(identity),
                ..
            } => {
                conv?;
                let mailbox = self.hub.mailbox(service, identity);
                let before = self.hub.members(service, conversation);
                let after: Members = if before.iter().any(|m| Arc::ptr_eq(m, &mailbox)) {
                    before
                } else {
                    before
                        .iter()
                        .cloned()
                        .chain(std::iter::once(mailbox.clone()))
                        .collect()
                };
                self.hub.members.write().insert(key, after.clone());
                Some(Route {
                    members: after,
                    subject: Some(mailbox),
                    subject_kind: client_event_kind(event, perspective(false, true, true)),
                    others_kind,
                })
            }
            MembershipEffect::Leave { participant, .. } => {
                let before = self.hub.members(service, conversation);
                let identity = conv
                    .and_then(|c| c.participant(&participant))
                    .and_then(|p| p.kind.identity());
                let Some(identity) = identity else {
                    return Some(Route {
                        members: before,
                        subject: None,
                        subject_kind: None,
                        others_kind,
                    });
                };
                let mailbox = self.hub.mailbox(service, identity);
                let after: Members = before
                    .iter()
                    .filter(|m| !Arc::ptr_eq(m, &mailbox))
                    .cloned()
                    .collect();
                self.hub.members.write().insert(key, after);
                Some(Route {
                    members: before,
                    subject: Some(mailbox),
                    subject_kind: client_event_kind(event, perspective(true, false, true)),
                    others_kind,
                })
            }
            MembershipEffect::RemoveConversation(_) => {
                let before = self.hub.members.write().remove(&key)?;
                Some(Route {
                    members: before,
                    subject: None,
                    subject_kind: None,
                    others_kind,
                })
            }
            MembershipEffect::Join { identity: None, .. }
            | MembershipEffect::None
            | MembershipEffect::RemoveService => {
                let members = self.hub.members(service, conversation);
                let mut route = Route {
                    members,
                    subject: None,
                    subject_kind: None,
                    others_kind,
                };
                if let Subject::User(user) = subject_of(event) {
                    if let Some(u) = svc.and_then(|s| s.user(&user)) {
                        let mailbox = self.hub.mailbox(service, &u.identity);
                        let member = route.members.iter().any(|m| Arc::ptr_eq(m, &mailbox));
                        route.subject_kind =
                            client_event_kind(event, perspective(member, member, true));
                        route.subject = Some(mailbox);
                    }
                }
                Some(route)
            }
        }
    }

    /// Hands the batch's routes to the worker, paired with the durable
    /// records. Runs on the writer thread: never blocks.
    pub(crate) fn committed(&mut self, records: &[Arc<CommittedRecord>]) {
        if self.pending.is_empty() {
            return;
        }
        let mut routes = std::mem::take(&mut self.pending).into_iter().peekable();
        let mut batch = Vec::with_capacity(routes.len());
        for record in records {
            if routes
                .peek()
                .is_some_and(|(p, _)| *p == record.header.position)
            {
                if let Some((_, route)) = routes.next() {
                    batch.push((record.clone(), route));
                }
            }
        }
        // The worker is gone only while the engine shuts down.
        let _ = self.tx.send(WorkerMsg::Batch(batch));
    }

    /// Forgets the routes of a batch that did not become durable and
    /// rebuilds the index from the rolled-back read models.
    pub(crate) fn discard(&mut self, rm: &ReadModels) {
        self.pending.clear();
        self.hub.rebuild(rm);
    }
}
