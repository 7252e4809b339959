//! Conversations and ConversationWithParticipants.

use events::limits::*;
use events::*;

use super::participant::participant_events;
use super::validate::{at_most, attributes, bytes, opt_text, timers};
use super::{decision, Claims, CommandError, Cx};
use events::Decision;

fn unique_name_free(
    svc: &projections::Service,
    name: Option<&str>,
    except: Option<ConversationSid>,
) -> Result<(), CommandError> {
    let Some(name) = name else {
        return Ok(());
    };
    match svc.conversation_sid_by_unique_name(name) {
        Some(holder) if Some(holder) != except => Err(CommandError::UniqueNameConflict {
            unique_name: name.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The `ConversationCreated` event for `spec`, validated (also what an
/// inbound message autocreates, with the default spec).
pub(super) fn created(
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
    timers(&spec.timers)?;
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
pub(super) fn create(cx: &mut Cx, c: &CreateConversation) -> Result<Decision, CommandError> {
    create_in(cx, &c.service, &c.spec, &[])
}

fn create_in(
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
        let mut me = ParticipantSpec::chat(identity);
        me.role_sid = svc.row().default_conversation_creator_role_sid;
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
    c: &CreateConversationWithParticipants,
) -> Result<Decision, CommandError> {
    let participants = &c.participants;
    at_most(
        "participants",
        participants.len(),
        CONVERSATION_WITH_PARTICIPANTS_MAX,
        "items",
    )?;
    create_in(cx, &c.service, &c.spec, participants)
}

pub(super) fn update(cx: &mut Cx, ch: &UpdateConversation) -> Result<Decision, CommandError> {
    let service = &ch.service;
    let svc = cx.service(service)?;
    let conv = cx.conversation(svc, &ch.conversation)?;
    let row = conv.row();
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
    opt_text(
        "friendly_name",
        ch.friendly_name.as_deref(),
        FRIENDLY_NAME_CHARS_MAX,
    )?;
    opt_text(
        "unique_name",
        ch.unique_name.as_deref(),
        UNIQUE_NAME_CHARS_MAX,
    )?;
    unique_name_free(svc, ch.unique_name.as_deref(), Some(row.sid))?;
    if let Some(t) = &ch.timers {
        timers(t)?;
    }
    let attributes = match ch.attributes.as_deref() {
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
                .clone()
                .or_else(|| row.friendly_name.clone()),
            unique_name: ch.unique_name.clone().or_else(|| row.unique_name.clone()),
            attributes,
            state: ch.state.unwrap_or(row.state),
            timers: ch.timers.unwrap_or(row.timers),
        }],
    ))
}

pub(super) fn delete(cx: &mut Cx, c: &DeleteConversation) -> Result<Decision, CommandError> {
    let (service, conversation) = (&c.service, &c.conversation);
    let svc = cx.service(service)?;
    let conv = cx.conversation(svc, conversation)?;
    cx.require_conversation(svc, conv, Permission::DeleteConversation)?;
    Ok(decision(
        *service,
        Some(conv.row().sid),
        vec![Event::ConversationRemoved {
            conversation_sid: conv.row().sid,
        }],
    ))
}
