//! Colloquy's command handling, pure: no I/O, no clock, no threads.
//!
//! It depends on `events` (the vocabulary) and `projections` (the read
//! models it validates against), never on the log or the engine, so every
//! handler can be tested and fuzzed without a store.
//!
//! Command handling: each [`Command`] variant has one handler, reached from
//! the `match` in [`decide`]. A handler validates the command against the
//! read models and returns the events it produces; it never changes state
//! (the writer applies the events after sealing them).
//!
//! Handlers are grouped by resource: [`service`] (services, roles, users,
//! address configurations), [`conversation`], [`participant`], [`message`]
//! (messages, read horizons, receipts) and [`inbound`].

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

pub use error::{CommandError, StorageFailure};

use events::{DecideContext, Decision};

/// What the writer hands the engine's state machine: a command and who is
/// acting.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineCommand {
    /// The chat identity acting, or `None` for the trusted host.
    pub acting_identity: Option<String>,
    /// The command.
    pub command: Command,
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
    use Command::*;
    match &command.command {
        CreateService { friendly_name } => service::create_service(&mut cx, friendly_name),
        UpdateService {
            service,
            friendly_name,
        } => service::update_service(&mut cx, service, friendly_name),
        DeleteService { service } => service::delete_service(&mut cx, service),
        UpdateServiceConfiguration {
            service,
            default_conversation_creator_role_sid,
            default_conversation_role_sid,
            default_chat_service_role_sid,
        } => service::update_configuration(
            &mut cx,
            service,
            *default_conversation_creator_role_sid,
            *default_conversation_role_sid,
            *default_chat_service_role_sid,
        ),
        CreateRole {
            service,
            friendly_name,
            role_type,
            permissions,
        } => service::create_role(&mut cx, service, friendly_name, *role_type, permissions),
        UpdateRole {
            service,
            role,
            permissions,
        } => service::update_role(&mut cx, service, role, permissions),
        DeleteRole { service, role } => service::delete_role(&mut cx, service, role),
        CreateUser {
            service,
            identity,
            friendly_name,
            attributes,
            role_sid,
        } => service::create_user(
            &mut cx,
            service,
            identity,
            friendly_name.as_deref(),
            attributes.as_deref(),
            *role_sid,
        ),
        UpdateUser {
            service,
            user,
            friendly_name,
            attributes,
            role_sid,
        } => service::update_user(
            &mut cx,
            service,
            user,
            friendly_name.as_deref(),
            attributes.as_deref(),
            *role_sid,
        ),
        DeleteUser { service, user } => service::delete_user(&mut cx, service, user),
        UpdateUserConversation {
            service,
            user,
            conversation,
            notification_level,
        } => service::update_user_conversation(
            &mut cx,
            service,
            user,
            conversation,
            *notification_level,
        ),
        CreateAddressConfiguration {
            service,
            address_type,
            address,
            friendly_name,
            auto_creation,
        } => service::create_address_configuration(
            &mut cx,
            service,
            *address_type,
            address,
            friendly_name.as_deref(),
            auto_creation,
        ),
        UpdateAddressConfiguration {
            service,
            address_configuration,
            friendly_name,
            auto_creation,
        } => service::update_address_configuration(
            &mut cx,
            service,
            address_configuration,
            friendly_name.as_deref(),
            auto_creation.as_ref(),
        ),
        DeleteAddressConfiguration {
            service,
            address_configuration,
        } => service::delete_address_configuration(&mut cx, service, address_configuration),
        CreateConversation { service, spec } => conversation::create(&mut cx, service, spec, &[]),
        CreateConversationWithParticipants {
            service,
            spec,
            participants,
        } => conversation::create_with_participants(&mut cx, service, spec, participants),
        UpdateConversation {
            service,
            conversation,
            friendly_name,
            unique_name,
            attributes,
            state,
            timers,
        } => conversation::update(
            &mut cx,
            service,
            conversation,
            conversation::Changes {
                friendly_name: friendly_name.as_deref(),
                unique_name: unique_name.as_deref(),
                attributes: attributes.as_deref(),
                state: *state,
                timers: *timers,
            },
        ),
        DeleteConversation {
            service,
            conversation,
        } => conversation::delete(&mut cx, service, conversation),
        AddParticipant {
            service,
            conversation,
            participant,
        } => participant::add(&mut cx, service, conversation, participant),
        UpdateParticipant {
            service,
            conversation,
            participant,
            attributes,
            role_sid,
            last_read_message_index,
            last_read_timestamp,
        } => participant::update(
            &mut cx,
            service,
            conversation,
            participant,
            attributes.as_deref(),
            *role_sid,
            *last_read_message_index,
            *last_read_timestamp,
        ),
        RemoveParticipant {
            service,
            conversation,
            participant,
        } => participant::remove(&mut cx, service, conversation, participant),
        PostMessage {
            service,
            conversation,
            author,
            body,
            media,
            attributes,
        } => message::post(
            &mut cx,
            service,
            conversation,
            author.as_deref(),
            body.as_deref(),
            media,
            attributes.as_deref(),
        ),
        EditMessage {
            service,
            conversation,
            message,
            body,
            attributes,
        } => message::edit(
            &mut cx,
            service,
            conversation,
            message,
            body.as_deref(),
            attributes.as_deref(),
        ),
        DeleteMessage {
            service,
            conversation,
            message,
        } => message::delete(&mut cx, service, conversation, message),
        UpdateReadHorizon {
            service,
            conversation,
            participant,
            last_read_message_index,
            mode,
        } => message::read_horizon(
            &mut cx,
            service,
            conversation,
            participant,
            *last_read_message_index,
            *mode,
        ),
        RecordDeliveryReceipt {
            service,
            conversation,
            message,
            participant,
            status,
            error_code,
            channel_message_sid,
        } => message::receipt(
            &mut cx,
            service,
            conversation,
            message,
            participant,
            *status,
            *error_code,
            channel_message_sid.as_deref(),
        ),
        RecordDeliveryAttemptFailed {
            service,
            conversation,
            message,
            participant,
            attempt,
            error,
        } => message::attempt_failed(
            &mut cx,
            service,
            conversation,
            message,
            participant,
            *attempt,
            error,
        ),
        ReceiveInbound {
            service,
            channel,
            from,
            to,
            body,
            media,
        } => inbound::receive(&mut cx, service, *channel, from, to, body.as_deref(), media),
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
            .services
            .get(sid)
            .ok_or_else(|| not_found("service", sid))
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
        let role = svc
            .user_by_identity
            .get(id)
            .and_then(|u| svc.users.get(u))
            .and_then(|u| u.role_sid);
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
        let role = conv
            .by_identity
            .get(id)
            .and_then(|p| conv.participants.get(p))
            .and_then(|p| p.role_sid);
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
            .and_then(|r| svc.roles.get(&r))
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
            .and_then(|id| conv.by_identity.get(id))
            .is_some_and(|p| p == participant)
    }
}

pub(crate) fn not_found(kind: &'static str, id: impl ToString) -> CommandError {
    CommandError::NotFound {
        kind,
        id: id.to_string(),
    }
}

/// Refuses changes to a closed conversation.
pub(crate) fn require_open(conv: &Conversation) -> Result<(), CommandError> {
    if conv.row.state == ConversationState::Closed {
        return Err(CommandError::ConversationClosed {
            conversation_sid: conv.row.sid,
        });
    }
    Ok(())
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
