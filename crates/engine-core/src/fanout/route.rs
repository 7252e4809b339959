//! Writer-side routing: the fan-out's part of the log's state machine.
//!
//! Runs on the log's writer thread. Each applied event is routed against
//! the read models as they are just before it (membership at the event's
//! own position), the hub's membership index is moved to just after it,
//! and once the batch is durable the routes go to the worker
//! ([`super::worker`]) with the committed records.

use std::sync::Arc;

use crossbeam_channel::Sender;
use events::{Event, RecordHeader};
use projections::ReadModels;

use super::hub::{Hub, Members, Route};
use super::mapping::{
    client_event_kind, membership_effect, subject_of, MembershipEffect, Perspective, Subject,
};
use super::worker::WorkerMsg;
use crate::log::CommittedRecord;

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

    /// Keeps the durable records in the hub's cache of recent records and
    /// hands the batch's routes to the worker, paired with them. Runs on
    /// the writer thread: never blocks.
    pub(crate) fn committed(&mut self, records: &[Arc<CommittedRecord>]) {
        self.hub.remember(records);
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
