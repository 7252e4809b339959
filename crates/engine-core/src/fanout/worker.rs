//! The fan-out worker thread: dispatches durable batches in log order and
//! keeps the ephemeral typing state.
//!
//! A typist's `typingEnded` goes out right before the record that ends its
//! typing: its next message, its removal, or its conversation's closing (a
//! closed conversation is read-only, so no one types there). A removed
//! conversation's typists are forgotten without a notice: its members are
//! gone with it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use events::{ConversationSid, ConversationState, Event, ParticipantSid, ServiceSid};

use super::hub::{DispatchStats, Hub, Mailbox, Route};
use super::{ClientEvent, ClientEventKind, TypingNotice, WORKER_BATCH_RECORDS_MAX};
use crate::log::CommittedRecord;

/// What the worker is sent.
pub(crate) enum WorkerMsg {
    /// A durable batch's routed records, in log order.
    Batch(Vec<(Arc<CommittedRecord>, Route)>),
    /// A participant is typing (validated by the caller).
    Typing {
        service: ServiceSid,
        conversation: ConversationSid,
        participant: ParticipantSid,
        mailbox: Arc<Mailbox>,
    },
    /// Stop: close every mailbox and exit.
    Shutdown,
}

type TypingKey = (ServiceSid, ConversationSid, ParticipantSid);

struct Typist {
    deadline: Instant,
    seq: u64,
    notice: Arc<TypingNotice>,
    mailbox: Arc<Mailbox>,
}

struct Worker {
    hub: Arc<Hub>,
    typists: HashMap<TypingKey, Typist>,
    deadlines: BTreeMap<(Instant, u64), TypingKey>,
    seq: u64,
}

/// The worker thread's body. Returns after [`WorkerMsg::Shutdown`] or when
/// every sender is gone, having closed every mailbox (sessions read what
/// is left, then end).
pub(crate) fn run_worker(hub: Arc<Hub>, rx: Receiver<WorkerMsg>) {
    let mut worker = Worker {
        hub: hub.clone(),
        typists: HashMap::new(),
        deadlines: BTreeMap::new(),
        seq: 0,
    };
    loop {
        let next_deadline = worker.deadlines.first_key_value().map(|((d, _), _)| *d);
        let msg = match next_deadline {
            Some(deadline) => match rx.recv_deadline(deadline) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            },
        };
        let mut stats = DispatchStats::default();
        let mut next = msg;
        while let Some(msg) = next.take() {
            match msg {
                WorkerMsg::Batch(mut items) => {
                    // Coalesce what else is queued: longer runs per
                    // conversation, fewer mailbox locks.
                    while items.len() < WORKER_BATCH_RECORDS_MAX {
                        match rx.try_recv() {
                            Ok(WorkerMsg::Batch(more)) => items.extend(more),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    worker.batch(items, &mut stats);
                }
                WorkerMsg::Typing {
                    service,
                    conversation,
                    participant,
                    mailbox,
                } => worker.typing((service, conversation, participant), mailbox, &mut stats),
                WorkerMsg::Shutdown => {
                    hub.record(&stats);
                    hub.close_all();
                    return;
                }
            }
        }
        worker.expire(Instant::now(), &mut stats);
        hub.record(&stats);
    }
    hub.close_all();
}

impl Worker {
    fn batch(&mut self, items: Vec<(Arc<CommittedRecord>, Route)>, stats: &mut DispatchStats) {
        // Dispatched in segments: a typist's `typingEnded` goes out right
        // before the record that ends it.
        let mut start = 0;
        for (k, (record, _)) in items.iter().enumerate() {
            if self.typists.is_empty() {
                break;
            }
            let service = record.header.service_sid;
            match &record.event {
                Event::MessageAdded {
                    conversation_sid,
                    participant_sid: Some(participant),
                    ..
                }
                | Event::ParticipantRemoved {
                    conversation_sid,
                    participant_sid: participant,
                } => {
                    let key = (service, *conversation_sid, *participant);
                    if self.typists.contains_key(&key) {
                        self.hub.dispatch(&items[start..k], stats);
                        start = k;
                        self.end_typing(&key, stats);
                    }
                }
                Event::ConversationUpdated {
                    conversation_sid,
                    state: ConversationState::Closed,
                    ..
                } => {
                    let typists = self.typists_in(service, *conversation_sid);
                    if !typists.is_empty() {
                        self.hub.dispatch(&items[start..k], stats);
                        start = k;
                        for key in &typists {
                            self.end_typing(key, stats);
                        }
                    }
                }
                Event::ConversationRemoved { conversation_sid } => {
                    for key in self.typists_in(service, *conversation_sid) {
                        self.forget(&key);
                    }
                }
                _ => {}
            }
        }
        self.hub.dispatch(&items[start..], stats);
    }

    fn typing(&mut self, key: TypingKey, mailbox: Arc<Mailbox>, stats: &mut DispatchStats) {
        let deadline = Instant::now() + self.hub.options.typing_timeout;
        self.seq += 1;
        let seq = self.seq;
        if let Some(t) = self.typists.get_mut(&key) {
            // Still typing: push the end further out, send nothing.
            self.deadlines.remove(&(t.deadline, t.seq));
            t.deadline = deadline;
            t.seq = seq;
            self.deadlines.insert((deadline, seq), key);
            return;
        }
        let notice = Arc::new(TypingNotice {
            service_sid: key.0,
            conversation_sid: key.1,
            participant_sid: key.2,
            identity: mailbox.identity.to_string(),
        });
        self.send(ClientEventKind::TypingStarted, &notice, &mailbox, stats);
        self.deadlines.insert((deadline, seq), key);
        self.typists.insert(
            key,
            Typist {
                deadline,
                seq,
                notice,
                mailbox,
            },
        );
    }

    fn end_typing(&mut self, key: &TypingKey, stats: &mut DispatchStats) {
        if let Some(t) = self.forget(key) {
            self.send(ClientEventKind::TypingEnded, &t.notice, &t.mailbox, stats);
        }
    }

    /// Drops a typist and its deadline, sending nothing.
    fn forget(&mut self, key: &TypingKey) -> Option<Typist> {
        let t = self.typists.remove(key)?;
        self.deadlines.remove(&(t.deadline, t.seq));
        Some(t)
    }

    /// The typists of one conversation.
    fn typists_in(&self, service: ServiceSid, conversation: ConversationSid) -> Vec<TypingKey> {
        self.typists
            .keys()
            .filter(|(s, c, _)| *s == service && *c == conversation)
            .copied()
            .collect()
    }

    fn expire(&mut self, now: Instant, stats: &mut DispatchStats) {
        while let Some(entry) = self.deadlines.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.end_typing(&key, stats);
        }
    }

    /// Sends a typing notice to every member of its conversation but the
    /// typist's own identity (none of its devices).
    fn send(
        &self,
        kind: ClientEventKind,
        notice: &Arc<TypingNotice>,
        typist: &Arc<Mailbox>,
        stats: &mut DispatchStats,
    ) {
        let members = self
            .hub
            .members(notice.service_sid, notice.conversation_sid);
        let event = [ClientEvent::typing(kind, notice.clone())];
        self.hub
            .push_to_members(&members, Some(typist), &event, stats);
        stats.typing += 1;
    }
}
