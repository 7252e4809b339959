//! Participants: add (chat or messaging binding), update, remove.

use events::limits::*;
use events::*;
use projections::{Conversation, Service};

use super::service::{conversation_role, new_user};
use super::validate::{attributes, opt_text, text};
use super::{decision, own_or_any, participant_of, Claims, CommandError, Cx};
use events::Decision;

/// Validates one new participant of conversation `conv_sid` (`conv` is
/// `None` while the conversation is being created in the same command) and
/// returns its events: a `UserCreated` for a new chat identity, then
/// `ParticipantAdded`. `claims` carries what earlier participants of the
/// same command took.
pub(super) fn participant_events(
    cx: &mut Cx,
    svc: &Service,
    conv_sid: ConversationSid,
    conv: Option<&Conversation>,
    spec: &ParticipantSpec,
    claims: &mut Claims,
) -> Result<Vec<Event>, CommandError> {
    let attributes = attributes(
        "attributes",
        spec.attributes.as_deref(),
        PARTICIPANT_ATTRIBUTES_BYTES_MAX,
    )?;
    conversation_role(svc, spec.role_sid)?;
    let (existing, existing_non_chat) =
        conv.map_or((0, 0), |c| (c.participant_count(), c.non_chat_count()));
    let total = existing + claims.chat + claims.non_chat;
    if total >= PARTICIPANTS_PER_CONVERSATION_MAX {
        return Err(CommandError::ParticipantLimit {
            what: "all",
            count: total,
            max: PARTICIPANTS_PER_CONVERSATION_MAX,
        });
    }
    let mut events = Vec::with_capacity(2);
    let mut user_sid = None;
    match &spec.kind {
        ParticipantKind::Chat {
            identity,
            projected_address,
        } => {
            text("identity", identity, IDENTITY_CHARS_MAX)?;
            opt_text(
                "projected_address",
                projected_address.as_deref(),
                ADDRESS_CHARS_MAX,
            )?;
            let taken = conv.is_some_and(|c| c.participant_by_identity(identity).is_some())
                || claims.identities.contains(identity);
            if taken {
                return Err(CommandError::ParticipantExists {
                    identity: identity.clone(),
                });
            }
            claims.identities.insert(identity.clone());
            user_sid = match svc.user_by_identity(identity) {
                Some(u) => Some(u.sid),
                None => {
                    let (sid, event) = new_user(cx, svc, identity, None, None, None)?;
                    events.push(event);
                    Some(sid)
                }
            };
            claims.chat += 1;
        }
        ParticipantKind::Messaging(b) => {
            text("messaging_binding.address", &b.address, ADDRESS_CHARS_MAX)?;
            text(
                "messaging_binding.proxy_address",
                &b.proxy_address,
                ADDRESS_CHARS_MAX,
            )?;
            opt_text(
                "messaging_binding.projected_address",
                b.projected_address.as_deref(),
                ADDRESS_CHARS_MAX,
            )?;
            let non_chat = existing_non_chat + claims.non_chat;
            if non_chat >= NON_CHAT_PARTICIPANTS_PER_CONVERSATION_MAX {
                return Err(CommandError::ParticipantLimit {
                    what: "non-chat",
                    count: non_chat,
                    max: NON_CHAT_PARTICIPANTS_PER_CONVERSATION_MAX,
                });
            }
            binding_free(svc, &b.proxy_address, &b.address, claims, conv_sid)?;
            claims
                .bindings
                .insert((b.proxy_address.clone(), b.address.clone()));
            claims.non_chat += 1;
        }
    }
    events.push(Event::ParticipantAdded {
        conversation_sid: conv_sid,
        participant_sid: ParticipantSid::derive(&cx.seed()),
        kind: spec.kind.clone(),
        user_sid,
        attributes,
        role_sid: spec.role_sid.or(svc.row().default_conversation_role_sid),
    });
    Ok(events)
}

/// A binding belongs to at most one active (not closed) conversation.
fn binding_free(
    svc: &Service,
    proxy: &str,
    address: &str,
    claims: &Claims,
    conv_sid: ConversationSid,
) -> Result<(), CommandError> {
    let key = (proxy.to_string(), address.to_string());
    let holder = svc
        .binding_holder(proxy, address)
        .map(|(c, _)| c)
        .filter(|c| {
            svc.conversation_by_sid(c)
                .is_some_and(|c| c.row().state != ConversationState::Closed)
        });
    let holder = holder.or_else(|| claims.bindings.contains(&key).then_some(conv_sid));
    match holder {
        Some(conversation_sid) => Err(CommandError::BindingConflict {
            address: address.to_string(),
            proxy_address: proxy.to_string(),
            conversation_sid,
        }),
        None => Ok(()),
    }
}

/// Adds a participant. As in Twilio's roles, a chat identity adding
/// itself joins: that needs `joinConversation` in its service role (it has
/// no conversation role yet); adding anyone else needs `addParticipant` in
/// its conversation role. The host needs neither.
pub(super) fn add(cx: &mut Cx, c: &AddParticipant) -> Result<Decision, CommandError> {
    let (service, spec) = (&c.service, &c.participant);
    let (svc, conv) = cx.open_conversation(service, &c.conversation)?;
    let joins_itself = cx
        .acting
        .is_some_and(|acting| spec.kind.identity() == Some(acting));
    if joins_itself {
        cx.require_service(svc, Permission::JoinConversation)?;
    } else {
        cx.require_conversation(svc, conv, Permission::AddParticipant)?;
    }
    let events = participant_events(
        cx,
        svc,
        conv.row().sid,
        Some(conv),
        spec,
        &mut Claims::default(),
    )?;
    Ok(decision(*service, Some(conv.row().sid), events))
}

/// The clamped horizon for a requested index: never past the last index
/// ever given; `None` while the conversation has had no message.
pub(super) fn clamp_horizon(conv: &Conversation, index: Option<u64>) -> Option<u64> {
    let last = conv.last_message_index()?;
    index.map(|i| i.min(last))
}

pub(super) fn update(cx: &mut Cx, c: &UpdateParticipant) -> Result<Decision, CommandError> {
    let (service, conversation, participant) = (&c.service, &c.conversation, &c.participant);
    let (attrs, role_sid) = (c.attributes.as_deref(), c.role_sid);
    let (last_read_message_index, last_read_timestamp) =
        (c.last_read_message_index, c.last_read_timestamp);
    let svc = cx.service(service)?;
    let conv = cx.conversation(svc, conversation)?;
    let p = participant_of(conv, participant)?;
    let own = cx.acting_is(conv, participant);
    if attrs.is_some() || role_sid.is_some() {
        let perm = own_or_any(
            own,
            Permission::EditOwnParticipantAttributes,
            Permission::EditAnyParticipantAttributes,
        );
        cx.require_conversation(svc, conv, perm)?;
    }
    if role_sid.is_some() {
        cx.host_only()?;
    }
    if (last_read_message_index.is_some() || last_read_timestamp.is_some()) && !own {
        cx.host_only()?;
    }
    conversation_role(svc, role_sid)?;
    let mut events = Vec::new();
    if attrs.is_some() || role_sid.is_some() {
        let attributes = match attrs {
            Some(a) => attributes("attributes", Some(a), PARTICIPANT_ATTRIBUTES_BYTES_MAX)?,
            None => p.attributes.clone(),
        };
        events.push(Event::ParticipantUpdated {
            conversation_sid: conv.row().sid,
            participant_sid: *participant,
            attributes,
            role_sid: role_sid.or(p.role_sid),
        });
    }
    if last_read_message_index.is_some() || last_read_timestamp.is_some() {
        let index = match last_read_message_index {
            Some(i) => clamp_horizon(conv, Some(i)),
            None => p.last_read_message_index,
        };
        events.push(Event::ReadHorizonUpdated {
            conversation_sid: conv.row().sid,
            participant_sid: *participant,
            last_read_message_index: index,
            last_read_timestamp: last_read_timestamp.unwrap_or(cx.now),
        });
    }
    Ok(decision(*service, Some(conv.row().sid), events))
}

pub(super) fn remove(cx: &mut Cx, c: &RemoveParticipant) -> Result<Decision, CommandError> {
    let (service, conversation, participant) = (&c.service, &c.conversation, &c.participant);
    let svc = cx.service(service)?;
    let conv = cx.conversation(svc, conversation)?;
    participant_of(conv, participant)?;
    let perm = own_or_any(
        cx.acting_is(conv, participant),
        Permission::LeaveConversation,
        Permission::RemoveParticipant,
    );
    cx.require_conversation(svc, conv, perm)?;
    Ok(decision(
        *service,
        Some(conv.row().sid),
        vec![Event::ParticipantRemoved {
            conversation_sid: conv.row().sid,
            participant_sid: *participant,
        }],
    ))
}
