//! Colloquy's command handling, pure: no I/O, no clock, no threads.
//!
//! It depends on `events` (the vocabulary) and `projections` (the read
//! models it validates against), never on the log or the engine, so every
//! handler can be tested and fuzzed without a store.
//!
//! Command handling: each [`Command`] variant has one handler taking its
//! command struct, reached from a one-line arm of the `match` in
//! [`decide`]. A handler validates the command against the read models and
//! returns the events it produces; it never changes state (the writer
//! applies the events after sealing them).
//!
//! Handlers are grouped by resource, in modules layered in this order (each
//! uses only those before it; a tidy test checks it): `service` (services,
//! roles, users, address configurations), `participant`, `conversation`,
//! `message` (messages, read horizons, receipts) and `inbound`.

#![warn(missing_docs)]

mod conversation;
mod error;
mod inbound;
mod message;
mod participant;
mod service;
mod validate;

use std::collections::HashSet;

use events::*;
use projections::{Conversation, ReadModels, Service};

pub use error::{CommandError, HookRefusal, StorageFailure};

use events::{DecideContext, Decision};

/// What the writer hands the engine's state machine: a command and who is
/// acting.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineCommand {
    /// The chat identity acting, or `None` for the trusted host.
    pub acting_identity: Option<String>,
    /// The command.
    pub command: Command,
    /// Set when a pre-event hook modified `command` before it was queued:
    /// the idempotency fingerprint of the command as its caller sent it.
    /// The writer's idempotency check uses it instead of `command`'s own,
    /// so a retry of the same request is recognised whatever a hook
    /// answers the second time. `decide` ignores it.
    pub requested_fingerprint: Option<Fingerprint>,
}

/// Validates `command` against `rm` and returns the events to append.
///
/// Pure: reads `rm` only. Errors are the typed refusals of
/// [`CommandError`]; a refusal appends nothing.
pub fn decide(
    rm: &ReadModels,
    command: &EngineCommand,
    ctx: &DecideContext,
) -> Result<Decision, CommandError> {
    let mut cx = Cx {
        rm,
        acting: command.acting_identity.as_deref(),
        now: ctx.now_micros,
        seed: ctx.next_position,
        minted: 0,
    };
    if let Some(a) = cx.acting {
        validate::text("acting_identity", a, limits::IDENTITY_CHARS_MAX)?;
    }
    match &command.command {
        Command::CreateService(c) => service::create_service(&mut cx, c),
        Command::UpdateService(c) => service::update_service(&mut cx, c),
        Command::DeleteService(c) => service::delete_service(&mut cx, c),
        Command::UpdateServiceConfiguration(c) => service::update_configuration(&mut cx, c),
        Command::CreateRole(c) => service::create_role(&mut cx, c),
        Command::UpdateRole(c) => service::update_role(&mut cx, c),
        Command::DeleteRole(c) => service::delete_role(&mut cx, c),
        Command::CreateUser(c) => service::create_user(&mut cx, c),
        Command::UpdateUser(c) => service::update_user(&mut cx, c),
        Command::DeleteUser(c) => service::delete_user(&mut cx, c),
        Command::UpdateUserConversation(c) => service::update_user_conversation(&mut cx, c),
        Command::CreateAddressConfiguration(c) => service::create_address_configuration(&mut cx, c),
        Command::UpdateAddressConfiguration(c) => service::update_address_configuration(&mut cx, c),
        Command::DeleteAddressConfiguration(c) => service::delete_address_configuration(&mut cx, c),
        Command::CreateConversation(c) => conversation::create(&mut cx, c),
        Command::CreateConversationWithParticipants(c) => {
            conversation::create_with_participants(&mut cx, c)
        }
        Command::UpdateConversation(c) => conversation::update(&mut cx, c),
        Command::DeleteConversation(c) => conversation::delete(&mut cx, c),
        Command::AddParticipant(c) => participant::add(&mut cx, c),
        Command::UpdateParticipant(c) => participant::update(&mut cx, c),
        Command::RemoveParticipant(c) => participant::remove(&mut cx, c),
        Command::PostMessage(c) => message::post(&mut cx, c),
        Command::EditMessage(c) => message::edit(&mut cx, c),
        Command::DeleteMessage(c) => message::delete(&mut cx, c),
        Command::UpdateReadHorizon(c) => message::read_horizon(&mut cx, c),
        Command::RecordDeliveryReceipt(c) => message::receipt(&mut cx, c),
        Command::RecordDeliveryAttemptFailed(c) => message::attempt_failed(&mut cx, c),
        Command::ReceiveInbound(c) => inbound::receive(&mut cx, c),
        Command::UpdateServiceWebhooks(c) => service::update_webhooks(&mut cx, c),
        Command::CreateConversationWebhook(c) => service::create_conversation_webhook(&mut cx, c),
        Command::DeleteConversationWebhook(c) => service::delete_conversation_webhook(&mut cx, c),
        Command::CreateConversationStudioWebhook(c) => {
            service::create_conversation_studio_webhook(&mut cx, c)
        }
        Command::UpdateConversationWebhook(c) => service::update_conversation_webhook(&mut cx, c),
    }
}

/// A handler's view: the read models, who acts, and a SID mint.
pub(crate) struct Cx<'a> {
    pub rm: &'a ReadModels,
    pub acting: Option<&'a str>,
    pub now: TimestampMicros,
    seed: u64,
    minted: u32,
}

impl<'a> Cx<'a> {
    /// Seed bytes for the next SID: the command's first log position plus a
    /// counter, unique across the whole log and identical on replay.
    pub fn seed(&mut self) -> [u8; 12] {
        let mut s = [0u8; 12];
        s[..8].copy_from_slice(&self.seed.to_be_bytes());
        s[8..].copy_from_slice(&self.minted.to_be_bytes());
        self.minted += 1;
        s
    }

    pub fn service(&self, sid: &ServiceSid) -> Result<&'a Service, CommandError> {
        self.rm
            .service(sid)
            .ok_or_else(|| not_found("service", sid))
    }

    /// The service and its conversation `r`, which must not be closed:
    /// what message and participant handlers change.
    pub fn open_conversation(
        &self,
        service: &ServiceSid,
        r: &ConversationRef,
    ) -> Result<(&'a Service, &'a Conversation), CommandError> {
        let svc = self.service(service)?;
        let conv = self.conversation(svc, r)?;
        require_open(conv)?;
        Ok((svc, conv))
    }

    pub fn conversation(
        &self,
        svc: &'a Service,
        r: &ConversationRef,
    ) -> Result<&'a Conversation, CommandError> {
        svc.resolve(r).ok_or_else(|| {
            not_found(
                "conversation",
                match r {
                    ConversationRef::Sid(s) => s.to_string(),
                    ConversationRef::UniqueName(n) => n.clone(),
                },
            )
        })
    }

    /// Only the trusted host (no acting identity) may do this.
    pub fn host_only(&self) -> Result<(), CommandError> {
        match self.acting {
            None => Ok(()),
            Some(id) => Err(CommandError::PermissionDenied {
                identity: id.to_string(),
                permission: None,
            }),
        }
    }

    /// The acting user's service role grants `perm` (always true for the host).
    pub fn require_service(&self, svc: &Service, perm: Permission) -> Result<(), CommandError> {
        let Some(id) = self.acting else {
            return Ok(());
        };
        let role = svc.user_by_identity(id).and_then(|u| u.role_sid);
        self.granted(svc, id, role, perm)
    }

    /// The acting identity's conversation role grants `perm` (always true
    /// for the host). An identity that is not a participant has no role.
    pub fn require_conversation(
        &self,
        svc: &Service,
        conv: &Conversation,
        perm: Permission,
    ) -> Result<(), CommandError> {
        let Some(id) = self.acting else {
            return Ok(());
        };
        let role = conv.participant_by_identity(id).and_then(|p| p.role_sid);
        self.granted(svc, id, role, perm)
    }

    fn granted(
        &self,
        svc: &Service,
        id: &str,
        role: Option<RoleSid>,
        perm: Permission,
    ) -> Result<(), CommandError> {
        let ok = role
            .and_then(|r| svc.role(&r))
            .is_some_and(|r| r.permissions.contains(&perm));
        if ok {
            Ok(())
        } else {
            Err(CommandError::PermissionDenied {
                identity: id.to_string(),
                permission: Some(perm),
            })
        }
    }

    /// Is the acting identity this participant?
    pub fn acting_is(&self, conv: &Conversation, participant: &ParticipantSid) -> bool {
        self.acting
            .and_then(|id| conv.participant_by_identity(id))
            .is_some_and(|p| p.sid == *participant)
    }
}

pub(crate) fn not_found(kind: &'static str, id: impl ToString) -> CommandError {
    CommandError::NotFound {
        kind,
        id: id.to_string(),
    }
}

/// The participant `sid` of `conv`, or [`CommandError::NotFound`].
pub(crate) fn participant_of<'a>(
    conv: &'a Conversation,
    sid: &ParticipantSid,
) -> Result<&'a projections::ParticipantRow, CommandError> {
    conv.participant(sid)
        .ok_or_else(|| not_found("participant", sid))
}

/// The live message `sid` of `conv` (read from the store), or
/// [`CommandError::NotFound`]; [`StorageFailure::Read`] if the store cannot
/// be read.
pub(crate) fn message_of(
    rm: &ReadModels,
    conv: &Conversation,
    sid: &MessageSid,
) -> Result<projections::MessageRow, CommandError> {
    rm.message_in(conv, sid)
        .map_err(|e| CommandError::Storage(StorageFailure::Read(e.to_string())))?
        .ok_or_else(|| not_found("message", sid))
}

/// `own` when the acting identity acts on its own resource, else `any`:
/// the pairs of Twilio permissions (`editOwnMessage` / `editAnyMessage`, …).
pub(crate) fn own_or_any(own: bool, own_permission: Permission, any: Permission) -> Permission {
    if own {
        own_permission
    } else {
        any
    }
}

/// Refuses anything but reads in a closed conversation (closed is final
/// and read-only, as in Twilio): new messages, participants and edits, and
/// the engine's ephemeral typing indications.
///
/// Errors: [`CommandError::ConversationClosed`] when `conv` is closed;
/// active and inactive conversations pass.
pub fn require_open(conv: &Conversation) -> Result<(), CommandError> {
    if conv.row().state == ConversationState::Closed {
        return Err(CommandError::ConversationClosed {
            conversation_sid: conv.row().sid,
        });
    }
    Ok(())
}

/// If the conversation is inactive, the event that makes it active again
/// (any new message does, as in Twilio).
pub(crate) fn reactivate(conv: &Conversation) -> Option<Event> {
    let row = conv.row();
    (row.state == ConversationState::Inactive).then(|| Event::ConversationUpdated {
        conversation_sid: row.sid,
        friendly_name: row.friendly_name.clone(),
        unique_name: row.unique_name.clone(),
        attributes: row.attributes.clone(),
        state: ConversationState::Active,
        timers: row.timers,
    })
}

/// Identities and bindings a multi-event decision has already
/// claimed, so one command cannot claim the same thing twice.
#[derive(Default)]
pub(crate) struct Claims {
    pub identities: HashSet<String>,
    pub bindings: HashSet<(String, String)>,
    pub chat: usize,
    pub non_chat: usize,
}

fn decision(
    service_sid: ServiceSid,
    stream: Option<ConversationSid>,
    events: Vec<Event>,
) -> Decision {
    Decision {
        service_sid,
        stream,
        events,
    }
}
