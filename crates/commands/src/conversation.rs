//! Conversations and ConversationWithParticipants.

use events::limits::*;
use events::*;

use super::participant::participant_events;
use super::validate::{attributes, bytes, opt_text};
use super::{decision, require_open, Claims, CommandError, Cx};
use events::Decision;

fn unique_name_free(
    svc: &projections::Service,
    name: Option<&str>,
    except: Option<ConversationSid>,
) -> Result<(), CommandError> {
    let Some(name) = name else {
        return Ok(());
    };
    match svc.by_unique_name.get(name) {
        Some(holder) if Some(*holder) != except => Err(CommandError::UniqueNameConflict {
            unique_name: name.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The `ConversationCreated` event for `spec`, validated.
fn created(
    cx: &mut Cx,
    svc: &projections::Service,
    spec: &ConversationSpec,
) -> Result<(ConversationSid, Event), CommandError> {
    opt_text(
        "friendly_name",
        spec.friendly_name.as_deref(),
        FRIENDLY_NAME_CHARS_MAX,
    )?;
    opt_text(
        "unique_name",
        spec.unique_name.as_deref(),
        UNIQUE_NAME_CHARS_MAX,
    )?;
    if let Some(m) = &spec.messaging_service_sid {
        bytes("messaging_service_sid", m, FOREIGN_ID_BYTES_MAX)?;
    }
    let attributes = attributes(
        "attributes",
        spec.attributes.as_deref(),
        CONVERSATION_ATTRIBUTES_BYTES_MAX,
    )?;
    unique_name_free(svc, spec.unique_name.as_deref(), None)?;
    let conversation_sid = ConversationSid::derive(&cx.seed());
    Ok((
        conversation_sid,
        Event::ConversationCreated {
            conversation_sid,
            friendly_name: spec.friendly_name.clone(),
            unique_name: spec.unique_name.clone(),
            attributes,
            state: spec.state.unwrap_or_default(),
            timers: spec.timers,
            messaging_service_sid: spec.messaging_service_sid.clone(),
        },
    ))
}

/// Creates a conversation with `participants` (validated together: all or
/// nothing). An acting user needs `createConversation` and joins it with
/// the service's conversation-creator role.
pub(super) fn create(
    cx: &mut Cx,
    service: &ServiceSid,
    spec: &ConversationSpec,
    participants: &[ParticipantSpec],
) -> Result<Decision, CommandError> {
    let svc = cx.service(service)?;
    cx.require_service(svc, Permission::CreateConversation)?;
    let (conv_sid, event) = created(cx, svc, spec)?;
    let mut events = vec![event];
    let mut claims = Claims::default();
    if let Some(identity) = cx.acting {
        let me = ParticipantSpec {
            kind: ParticipantKind::Chat {
                identity: identity.to_string(),
                projected_address: None,
            },
            attributes: None,
            role_sid: svc.row.default_conversation_creator_role_sid,
        };
        events.extend(participant_events(
            cx,
            svc,
            conv_sid,
            None,
            &me,
            &mut claims,
        )?);
    }
    for p in participants {
        events.extend(participant_events(cx, svc, conv_sid, None, p, &mut claims)?);
    }
    Ok(decision(*service, Some(conv_sid), events))
}

pub(super) fn create_with_participants(
    cx: &mut Cx,
    service: &ServiceSid,
    spec: &ConversationSpec,
    participants: &[ParticipantSpec],
) -> Result<Decision, CommandError> {
    if participants.len() > CONVERSATION_WITH_PARTICIPANTS_MAX {
        return Err(CommandError::TooLong {
            field: "participants",
            len: participants.len(),
            max: CONVERSATION_WITH_PARTICIPANTS_MAX,
            unit: "items",
        });
    }
    create(cx, service, spec, participants)
}

/// The fields an update may change; `None` leaves a field as it is.
pub(super) struct Changes<'a> {
    pub friendly_name: Option<&'a str>,
    pub unique_name: Option<&'a str>,
    pub attributes: Option<&'a str>,
    pub state: Option<ConversationState>,
    pub timers: Option<Timers>,
}

pub(super) fn update(
    cx: &mut Cx,
    service: &ServiceSid,
    conversation: &ConversationRef,
    ch: Changes,
) -> Result<Decision, CommandError> {
    let svc = cx.service(service)?;
    let conv = cx.conversation(svc, conversation)?;
    let row = &conv.row;
    if ch.friendly_name.is_some() || ch.unique_name.is_some() {
        cx.require_conversation(svc, conv, Permission::EditConversationName)?;
    }
    if ch.attributes.is_some() || ch.state.is_some() || ch.timers.is_some() {
        cx.require_conversation(svc, conv, Permission::EditConversationAttributes)?;
    }
    // Closed is final, as in Twilio: a closed conversation's binding may
    // already belong to a newer conversation.
    if row.state == ConversationState::Closed
        && ch.state.is_some_and(|s| s != ConversationState::Closed)
    {
        return Err(CommandError::ConversationClosed {
            conversation_sid: row.sid,
        });
    }
    opt_text("friendly_name", ch.friendly_name, FRIENDLY_NAME_CHARS_MAX)?;
    opt_text("unique_name", ch.unique_name, UNIQUE_NAME_CHARS_MAX)?;
    unique_name_free(svc, ch.unique_name, Some(row.sid))?;
    let attributes = match ch.attributes {
        Some(a) => attributes("attributes", Some(a), CONVERSATION_ATTRIBUTES_BYTES_MAX)?,
        None => row.attributes.clone(),
    };
    Ok(decision(
        *service,
        Some(row.sid),
        vec![Event::ConversationUpdated {
            conversation_sid: row.sid,
            friendly_name: ch
                .friendly_name
                .map(str::to_string)
                .or_else(|| row.friendly_name.clone()),
            unique_name: ch
                .unique_name
                .map(str::to_string)
                .or_else(|| row.unique_name.clone()),
            attributes,
            state: ch.state.unwrap_or(row.state),
            timers: ch.timers.unwrap_or(row.timers),
        }],
    ))
}

pub(super) fn delete(
    cx: &mut Cx,
    service: &ServiceSid,
    conversation: &ConversationRef,
) -> Result<Decision, CommandError> {
    let svc = cx.service(service)?;
    let conv = cx.conversation(svc, conversation)?;
    cx.require_conversation(svc, conv, Permission::DeleteConversation)?;
    Ok(decision(
        *service,
        Some(conv.row.sid),
        vec![Event::ConversationRemoved {
            conversation_sid: conv.row.sid,
        }],
    ))
}

/// If the conversation is inactive, the event that makes it active again
/// (any new message does, as in Twilio).
pub(super) fn reactivate(conv: &projections::Conversation) -> Option<Event> {
    let row = &conv.row;
    (row.state == ConversationState::Inactive).then(|| Event::ConversationUpdated {
        conversation_sid: row.sid,
        friendly_name: row.friendly_name.clone(),
        unique_name: row.unique_name.clone(),
        attributes: row.attributes.clone(),
        state: ConversationState::Active,
        timers: row.timers,
    })
}

/// Shared by message and participant handlers.
pub(super) fn open_conversation<'a>(
    cx: &Cx<'a>,
    service: &ServiceSid,
    conversation: &ConversationRef,
) -> Result<(&'a projections::Service, &'a projections::Conversation), CommandError> {
    let svc = cx.service(service)?;
    let conv = cx.conversation(svc, conversation)?;
    require_open(conv)?;
    Ok((svc, conv))
}
