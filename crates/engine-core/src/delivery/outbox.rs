//! The outbox, writer side: the delivery part of the log's state machine.
//! Runs on the writer thread; notes what each applied event means for
//! pending deliveries and hands a durable batch's facts to the scheduler.

use std::collections::HashMap;

use crossbeam_channel::Sender;
use events::{AddressType, ConversationSid, Event, ParticipantSid, RecordHeader, ServiceSid};
use projections::ReadModels;

use super::channel_of;
use super::pending::{Fact, SchedMsg};

/// The delivery part of the writer's state machine.
pub(crate) struct DeliveryWriter {
    non_chat: HashMap<(ServiceSid, ConversationSid), Vec<(ParticipantSid, AddressType)>>,
    pending: Vec<(u64, Fact)>,
    tx: Sender<SchedMsg>,
}

fn non_chat_index(
    rm: &ReadModels,
) -> HashMap<(ServiceSid, ConversationSid), Vec<(ParticipantSid, AddressType)>> {
    let mut index = HashMap::new();
    for svc in rm.services() {
        for conv in svc.conversations() {
            if conv.non_chat_count() == 0 {
                continue;
            }
            let list: Vec<_> = conv
                .participants()
                .filter_map(|p| p.kind.binding().map(|b| (p.sid, channel_of(b))))
                .collect();
            index.insert((svc.row().sid, conv.row().sid), list);
        }
    }
    index
}

impl DeliveryWriter {
    pub(crate) fn new(rm: &ReadModels, tx: Sender<SchedMsg>) -> Self {
        DeliveryWriter {
            non_chat: non_chat_index(rm),
            pending: Vec::new(),
            tx,
        }
    }

    /// Notes what `event` means for the outbox; `rm` is as just before it.
    pub(crate) fn observe(&mut self, rm: &ReadModels, header: &RecordHeader, event: &Event) {
        let service = header.service_sid;
        let position = header.position;
        let fact = match event {
            Event::ParticipantAdded {
                conversation_sid,
                participant_sid,
                kind,
                ..
            } => {
                let exists = rm
                    .service(&service)
                    .is_some_and(|s| s.conversation_by_sid(conversation_sid).is_some());
                if let (true, Some(binding)) = (exists, kind.binding()) {
                    self.non_chat
                        .entry((service, *conversation_sid))
                        .or_default()
                        .push((*participant_sid, channel_of(binding)));
                }
                return;
            }
            Event::ParticipantRemoved {
                conversation_sid,
                participant_sid,
            } => {
                let Some(list) = self.non_chat.get_mut(&(service, *conversation_sid)) else {
                    return;
                };
                let Some(i) = list.iter().position(|(p, _)| p == participant_sid) else {
                    return;
                };
                list.swap_remove(i);
                Fact::ParticipantGone(*participant_sid)
            }
            Event::MessageAdded {
                conversation_sid,
                message_sid,
                participant_sid,
                ..
            } => {
                let Some(list) = self.non_chat.get(&(service, *conversation_sid)) else {
                    return;
                };
                let recipients: Vec<_> = list
                    .iter()
                    .filter(|(p, _)| Some(*p) != *participant_sid)
                    .copied()
                    .collect();
                if recipients.is_empty() {
                    return;
                }
                Fact::Outbox {
                    service,
                    conversation: *conversation_sid,
                    message: *message_sid,
                    recipients,
                }
            }
            Event::DeliveryReceiptRecorded {
                message_sid,
                participant_sid,
                ..
            } => Fact::Receipt {
                message: *message_sid,
                participant: *participant_sid,
            },
            Event::MessageRemoved { message_sid, .. } => Fact::MessageGone(*message_sid),
            Event::ConversationRemoved { conversation_sid } => {
                if self
                    .non_chat
                    .remove(&(service, *conversation_sid))
                    .is_none()
                {
                    return;
                }
                Fact::ConversationGone(service, *conversation_sid)
            }
            Event::ServiceDeleted => {
                self.non_chat.retain(|(s, _), _| *s != service);
                Fact::ServiceGone(service)
            }
            _ => return,
        };
        self.pending.push((position, fact));
    }

    /// Hands a durable batch's facts to the scheduler (never blocks).
    pub(crate) fn committed(&mut self) {
        if !self.pending.is_empty() {
            let facts = std::mem::take(&mut self.pending);
            let _ = self.tx.send(SchedMsg::Facts(facts));
        }
    }

    /// Forgets a batch that did not become durable.
    pub(crate) fn discard(&mut self, rm: &ReadModels) {
        self.pending.clear();
        self.non_chat = non_chat_index(rm);
    }
}
