//! Resume: the client events one identity missed in a range of the log.
//!
//! A resuming session registers its cursor and captures a
//! [`Snapshot`] of its identity's membership under the read-model lock, at
//! a position `end` where the read models are exactly the log's prefix
//! `..end`. The replay then covers `start..end`:
//!
//! 1. a first pass over the range collects membership changes, and the
//!    identity's membership at `start` is reconstructed from the snapshot by
//!    undoing them (reading a conversation's own stream only where the range
//!    alone cannot tell, e.g. a removed conversation);
//! 2. a second pass, in chunks, folds membership forward event by event and
//!    asks [`client_event_kind`] what the identity sees, exactly as live
//!    fan-out does.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use events::{ConversationSid, Event, ParticipantSid, Record, RecordHeader, ServiceSid, UserSid};
use projections::ReadModels;

use super::hub::{Counters, Hub};
use super::mapping::{
    client_event_kind, membership_effect, subject_of, MembershipEffect, Perspective, Subject,
};
use super::ClientEvent;
use crate::log::{ChainFault, CommittedRecord, FaultKind, ReadError};
use crate::sources::ReadSource;

/// An identity's membership and user as of a consistent read-model
/// position.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    membership: HashMap<ConversationSid, ParticipantSid>,
    user: Option<UserSid>,
}

impl Snapshot {
    /// Captures `identity`'s chat participants and user in `service`.
    pub(crate) fn capture(rm: &ReadModels, service: &ServiceSid, identity: &str) -> Self {
        let Some(svc) = rm.service(service) else {
            return Snapshot::default();
        };
        Snapshot {
            membership: svc.identity_participants(identity).collect(),
            user: svc.user_by_identity(identity).map(|u| u.sid),
        }
    }
}

/// One membership change in a conversation, as the first pass saw it.
#[derive(Debug, Clone, Copy)]
enum Op {
    Created,
    Join { mine: bool },
    Leave { participant: ParticipantSid },
    Removed,
}

/// Decides whether a user SID is the replayed identity's user.
#[derive(Debug, Default)]
struct Users {
    created: HashMap<UserSid, bool>,
    deleted: HashSet<UserSid>,
    current: Option<UserSid>,
    cache: HashMap<UserSid, bool>,
}

fn decode(record: &Record) -> Result<Event, ReadError> {
    record.event().map_err(|source| {
        ReadError::Fault(ChainFault {
            position: record.header.position,
            kind: FaultKind::Decode(source),
        })
    })
}

/// The committed records of `range` whose header `keep` accepts, decoded,
/// in order: taken from the hub's shared cache of recent records where it
/// holds them (no read, no decode, shared with every other reader), read
/// from the log elsewhere (a record `keep` refuses is not decoded). With
/// `counters`, counts both in them (resumes do; log subscriptions do not).
///
/// Errors: the log's read error where reading or decoding failed (a
/// damaged record's names its position); the walk ends after it.
pub(crate) fn committed_records<'a>(
    log: &'a dyn ReadSource,
    hub: &'a Hub,
    range: Range<u64>,
    keep: impl Fn(&RecordHeader) -> bool + Copy + 'a,
    counters: Option<&'a Counters>,
) -> impl Iterator<Item = Result<Arc<CommittedRecord>, ReadError>> + 'a {
    let (cached, lo, hi) = hub.recent(range.clone());
    if let Some(counters) = counters {
        counters
            .replay_cached
            .fetch_add(cached.len() as u64, Ordering::Relaxed);
    }
    let from_log = move |part: Range<u64>| {
        log.read_range(part).filter_map(move |record| match record {
            Err(e) => Some(Err(e)),
            Ok(record) if !keep(&record.header) => None,
            Ok(record) => {
                if let Some(counters) = counters {
                    counters.replay_read.fetch_add(1, Ordering::Relaxed);
                }
                Some(decode(&record).map(|event| {
                    Arc::new(CommittedRecord {
                        header: record.header,
                        event,
                    })
                }))
            }
        })
    };
    from_log(range.start..lo)
        .chain(cached.into_iter().filter(move |r| keep(&r.header)).map(Ok))
        .chain(from_log(hi..range.end))
}

/// The records of `range` in `service`, decoded, in order (see
/// [`committed_records`]), counted in the hub's resume counters.
fn records<'a>(
    log: &'a dyn ReadSource,
    hub: &'a Hub,
    service: ServiceSid,
    range: Range<u64>,
) -> impl Iterator<Item = Result<Arc<CommittedRecord>, ReadError>> + 'a {
    committed_records(
        log,
        hub,
        range,
        move |header| header.service_sid == service,
        Some(&hub.counters),
    )
}

/// A replay of `start..end` for one identity, consumed in chunks.
pub(crate) struct Replay {
    service: ServiceSid,
    identity: Arc<str>,
    start: u64,
    next: u64,
    end: u64,
    snapshot: Option<Snapshot>,
    membership: HashMap<ConversationSid, ParticipantSid>,
    users: Users,
}

impl Replay {
    pub(crate) fn new(
        service: ServiceSid,
        identity: Arc<str>,
        start: u64,
        end: u64,
        snapshot: Snapshot,
    ) -> Self {
        Replay {
            service,
            identity,
            start,
            next: start,
            end,
            snapshot: Some(snapshot),
            membership: HashMap::new(),
            users: Users::default(),
        }
    }

    /// Whether every position of the range has been replayed.
    pub(crate) fn done(&self) -> bool {
        self.snapshot.is_none() && self.next >= self.end
    }

    /// Replays up to `chunk` more records into `out`; returns the position
    /// replayed up to (exclusive). The first call also runs the first pass.
    /// Records come from `hub`'s cache of recent records where it holds
    /// them, from the log elsewhere.
    ///
    /// Errors: reading or decoding the log failed; the replay can be
    /// retried from where it stopped.
    pub(crate) fn fill(
        &mut self,
        log: &dyn ReadSource,
        hub: &Hub,
        out: &mut VecDeque<ClientEvent>,
        chunk: u64,
    ) -> Result<u64, ReadError> {
        if self.snapshot.is_some() {
            self.prepare(log, hub)?;
        }
        let stop = self.end.min(self.next.saturating_add(chunk));
        for record in records(log, hub, self.service, self.next..stop) {
            let record = record?;
            if let Some(kind) = self.step(log, &record)? {
                out.push_back(ClientEvent::log(kind, record));
            }
        }
        self.next = stop;
        Ok(stop)
    }

    /// Folds one event forward and says what the identity sees of it.
    fn step(
        &mut self,
        log: &dyn ReadSource,
        record: &CommittedRecord,
    ) -> Result<Option<super::ClientEventKind>, ReadError> {
        let event = &record.event;
        let conversation = event.conversation_sid();
        let subject = match subject_of(event) {
            Subject::None => false,
            Subject::Identity(identity) => identity == &*self.identity,
            Subject::Participant(participant) => {
                conversation.and_then(|c| self.membership.get(&c)) == Some(&participant)
            }
            Subject::User(user) => self.is_mine(log, user, record.header.position)?,
        };
        let member = |m: &HashMap<ConversationSid, ParticipantSid>| {
            conversation.is_some_and(|c| m.contains_key(&c))
        };
        let member_before = member(&self.membership);
        match membership_effect(event) {
            MembershipEffect::Join {
                conversation,
                participant,
                identity: Some(identity),
            } if identity == &*self.identity => {
                self.membership.insert(conversation, participant);
            }
            MembershipEffect::Leave {
                conversation,
                participant,
            } if self.membership.get(&conversation) == Some(&participant) => {
                self.membership.remove(&conversation);
            }
            MembershipEffect::RemoveConversation(conversation) => {
                self.membership.remove(&conversation);
            }
            MembershipEffect::RemoveService => self.membership.clear(),
            _ => {}
        }
        let member_after = member(&self.membership);
        Ok(client_event_kind(
            event,
            Perspective {
                member_before,
                member_after,
                subject,
            },
        ))
    }

    /// The first pass: reconstructs the identity's membership at `start`.
    fn prepare(&mut self, log: &dyn ReadSource, hub: &Hub) -> Result<(), ReadError> {
        let mut ops: HashMap<ConversationSid, Vec<Op>> = HashMap::new();
        let mut touched: HashSet<ConversationSid> = HashSet::new();
        let mut added: HashMap<ParticipantSid, bool> = HashMap::new();
        let mut service_deleted = false;
        let mut users = Users::default();
        for record in records(log, hub, self.service, self.start..self.end) {
            let record = record?;
            let event = &record.event;
            if let Some(c) = event.conversation_sid() {
                touched.insert(c);
            }
            match membership_effect(event) {
                MembershipEffect::CreateConversation(c) => {
                    ops.entry(c).or_default().push(Op::Created)
                }
                MembershipEffect::Join {
                    conversation,
                    participant,
                    identity,
                } => {
                    let mine = identity == Some(&*self.identity);
                    added.insert(participant, mine);
                    ops.entry(conversation).or_default().push(Op::Join { mine });
                }
                MembershipEffect::Leave {
                    conversation,
                    participant,
                } => ops
                    .entry(conversation)
                    .or_default()
                    .push(Op::Leave { participant }),
                MembershipEffect::RemoveConversation(c) => {
                    ops.entry(c).or_default().push(Op::Removed)
                }
                MembershipEffect::RemoveService => service_deleted = true,
                MembershipEffect::None => {}
            }
            match event {
                Event::UserCreated {
                    user_sid, identity, ..
                } => {
                    users.created.insert(*user_sid, identity == &*self.identity);
                }
                Event::UserDeleted { user_sid } => {
                    users.deleted.insert(*user_sid);
                }
                _ => {}
            }
        }
        let snapshot = self.snapshot.take().unwrap_or_default();
        users.current = snapshot.user;
        self.users = users;
        let mut membership = snapshot.membership;
        // With the service deleted inside the range the end state says
        // nothing about its conversations: read each touched one's history.
        let candidates: Vec<ConversationSid> = if service_deleted {
            touched.into_iter().collect()
        } else {
            ops.keys().copied().collect()
        };
        for c in candidates {
            let c_ops = ops.get(&c).map(Vec::as_slice).unwrap_or(&[]);
            let at_start = if c_ops.iter().any(|op| matches!(op, Op::Created)) {
                None
            } else {
                let undone = if service_deleted {
                    None
                } else {
                    undo(membership.get(&c).copied(), c_ops, &added)
                };
                match undone {
                    Some(s) => s,
                    None => self.scan_conversation(log, c)?,
                }
            };
            match at_start {
                Some(p) => membership.insert(c, p),
                None => membership.remove(&c),
            };
        }
        self.membership = membership;
        Ok(())
    }

    /// The identity's participant in `conversation` just before `start`,
    /// read from the conversation's own stream.
    fn scan_conversation(
        &self,
        log: &dyn ReadSource,
        conversation: ConversationSid,
    ) -> Result<Option<ParticipantSid>, ReadError> {
        let mut mine = None;
        for record in log.read_stream(self.service, Some(conversation), 0) {
            let record = record?;
            if record.header.position >= self.start {
                break;
            }
            let event = decode(&record)?;
            match membership_effect(&event) {
                MembershipEffect::Join {
                    participant,
                    identity: Some(identity),
                    ..
                } if identity == &*self.identity => mine = Some(participant),
                MembershipEffect::Leave { participant, .. } if mine == Some(participant) => {
                    mine = None
                }
                MembershipEffect::RemoveConversation(_) => mine = None,
                _ => {}
            }
        }
        Ok(mine)
    }

    /// Whether `user` is the identity's user (at `position`, inside the
    /// range).
    fn is_mine(
        &mut self,
        log: &dyn ReadSource,
        user: UserSid,
        position: u64,
    ) -> Result<bool, ReadError> {
        if let Some(m) = self.users.cache.get(&user) {
            return Ok(*m);
        }
        let mine = if let Some(m) = self.users.created.get(&user) {
            *m
        } else if self.users.current == Some(user) {
            true
        } else if !self.users.deleted.contains(&user) {
            // It exists at the end of the range and is not the identity's.
            false
        } else {
            // Created before the range and deleted inside it: look its
            // creation up in the service's own stream.
            let mut found = false;
            for record in log.read_stream(self.service, None, 0) {
                let record = record?;
                if record.header.position >= position {
                    break;
                }
                if let Event::UserCreated {
                    user_sid, identity, ..
                } = decode(&record)?
                {
                    if user_sid == user {
                        found = identity == *self.identity;
                        break;
                    }
                }
            }
            found
        };
        self.users.cache.insert(user, mine);
        Ok(mine)
    }
}

/// Undoes a conversation's membership changes, last first, from the
/// identity's participant at the end of the range. `None` when the range
/// alone cannot tell (a participant from before the range left while the
/// identity was not a member, or the conversation was removed).
fn undo(
    at_end: Option<ParticipantSid>,
    ops: &[Op],
    added: &HashMap<ParticipantSid, bool>,
) -> Option<Option<ParticipantSid>> {
    let mut s = at_end;
    for op in ops.iter().rev() {
        match *op {
            Op::Created => s = None,
            Op::Join { mine, .. } => {
                if mine {
                    s = None;
                }
            }
            Op::Leave { participant } => {
                if s.is_none() {
                    match added.get(&participant) {
                        Some(true) => s = Some(participant),
                        Some(false) => {}
                        None => return None,
                    }
                }
            }
            Op::Removed => return None,
        }
    }
    Some(s)
}
