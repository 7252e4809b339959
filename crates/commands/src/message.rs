//! Messages, read horizons, delivery receipts (whose statuses only move
//! forward) and failed delivery attempts.

use events::limits::*;
use events::*;
use projections::Conversation;

use super::participant::clamp_horizon;
use super::validate::{attributes, body_and_media, bytes, text};
use super::{decision, message_of, own_or_any, participant_of, reactivate, CommandError, Cx};
use events::Decision;

/// The author a message is attributed to when none is given (Twilio's default).
pub const SYSTEM_AUTHOR: &str = "system";

/// The participant an author string names: a chat identity, else a binding address.
pub(super) fn author_participant(conv: &Conversation, author: &str) -> Option<ParticipantSid> {
    conv.participant_by_identity(author)
        .map(|p| p.sid)
        .or_else(|| {
            conv.participants()
                .find(|p| p.kind.binding().is_some_and(|b| b.address == author))
                .map(|p| p.sid)
        })
}

/// The events of a new message (and of the reactivation it causes).
pub(super) fn message_events(
    cx: &mut Cx,
    conv: &Conversation,
    author: &str,
    participant_sid: Option<ParticipantSid>,
    body: Option<&str>,
    media: &[Media],
    attrs: Option<&str>,
) -> Result<Vec<Event>, CommandError> {
    text("author", author, AUTHOR_CHARS_MAX)?;
    body_and_media(body, media)?;
    let attributes = attributes("attributes", attrs, MESSAGE_ATTRIBUTES_BYTES_MAX)?;
    let mut events: Vec<Event> = reactivate(conv).into_iter().collect();
    events.push(Event::MessageAdded {
        conversation_sid: conv.row().sid,
        message_sid: MessageSid::derive(&cx.seed()),
        index: conv.next_message_index(),
        author: author.to_string(),
        participant_sid,
        body: body.map(str::to_string),
        media: media.to_vec(),
        attributes,
    });
    Ok(events)
}

pub(super) fn post(cx: &mut Cx, c: &PostMessage) -> Result<Decision, CommandError> {
    let (service, media) = (&c.service, &c.media);
    let (body, attrs) = (c.body.as_deref(), c.attributes.as_deref());
    let (svc, conv) = cx.open_conversation(service, &c.conversation)?;
    let author = match (cx.acting, c.author.as_deref()) {
        (Some(id), Some(a)) if a != id => {
            return Err(CommandError::PermissionDenied {
                identity: id.to_string(),
                permission: None,
            })
        }
        (Some(id), _) => id,
        (None, a) => a.unwrap_or(SYSTEM_AUTHOR),
    };
    cx.require_conversation(svc, conv, Permission::SendMessage)?;
    if !media.is_empty() {
        cx.require_conversation(svc, conv, Permission::SendMediaMessage)?;
    }
    let participant = author_participant(conv, author);
    let events = message_events(cx, conv, author, participant, body, media, attrs)?;
    Ok(decision(*service, Some(conv.row().sid), events))
}

fn own_message(cx: &Cx, m: &projections::MessageRow) -> bool {
    cx.acting.is_some_and(|id| m.author == id)
}

pub(super) fn edit(cx: &mut Cx, c: &EditMessage) -> Result<Decision, CommandError> {
    let (service, message) = (&c.service, &c.message);
    let (body, attrs) = (c.body.as_deref(), c.attributes.as_deref());
    let (svc, conv) = cx.open_conversation(service, &c.conversation)?;
    let m = message_of(cx.rm, conv, message)?;
    let own = own_message(cx, &m);
    if body.is_some() {
        let perm = own_or_any(own, Permission::EditOwnMessage, Permission::EditAnyMessage);
        cx.require_conversation(svc, conv, perm)?;
    }
    if attrs.is_some() {
        let perm = own_or_any(
            own,
            Permission::EditOwnMessageAttributes,
            Permission::EditAnyMessageAttributes,
        );
        cx.require_conversation(svc, conv, perm)?;
    }
    let new_body = body.map(str::to_string).or_else(|| m.body.clone());
    body_and_media(new_body.as_deref(), &m.media)?;
    let attributes = match attrs {
        Some(a) => attributes("attributes", Some(a), MESSAGE_ATTRIBUTES_BYTES_MAX)?,
        None => m.attributes.clone(),
    };
    Ok(decision(
        *service,
        Some(conv.row().sid),
        vec![Event::MessageUpdated {
            conversation_sid: conv.row().sid,
            message_sid: *message,
            index: m.index,
            body: new_body,
            attributes,
        }],
    ))
}

pub(super) fn delete(cx: &mut Cx, c: &DeleteMessage) -> Result<Decision, CommandError> {
    let (service, message) = (&c.service, &c.message);
    let (svc, conv) = cx.open_conversation(service, &c.conversation)?;
    let m = message_of(cx.rm, conv, message)?;
    let perm = own_or_any(
        own_message(cx, &m),
        Permission::DeleteOwnMessage,
        Permission::DeleteAnyMessage,
    );
    cx.require_conversation(svc, conv, perm)?;
    Ok(decision(
        *service,
        Some(conv.row().sid),
        vec![Event::MessageRemoved {
            conversation_sid: conv.row().sid,
            message_sid: *message,
            index: m.index,
        }],
    ))
}

/// Sets or advances a read horizon. An advance that would not move the
/// horizon forward appends nothing.
pub(super) fn read_horizon(cx: &mut Cx, c: &UpdateReadHorizon) -> Result<Decision, CommandError> {
    let (service, conversation, participant) = (&c.service, &c.conversation, &c.participant);
    let (index, mode) = (c.last_read_message_index, c.mode);
    let svc = cx.service(service)?;
    let conv = cx.conversation(svc, conversation)?;
    let p = participant_of(conv, participant)?;
    if !cx.acting_is(conv, participant) {
        cx.host_only()?;
    }
    let wanted = clamp_horizon(conv, index);
    let new = match mode {
        HorizonMode::Set => wanted,
        HorizonMode::Advance => wanted.max(p.last_read_message_index),
    };
    let events = if mode == HorizonMode::Advance && new == p.last_read_message_index {
        Vec::new()
    } else {
        vec![Event::ReadHorizonUpdated {
            conversation_sid: conv.row().sid,
            participant_sid: *participant,
            last_read_message_index: new,
            last_read_timestamp: cx.now,
        }]
    };
    Ok(decision(*service, Some(conv.row().sid), events))
}

/// The conversation, message and (existing) participant a delivery report names.
fn delivery_target<'a>(
    cx: &Cx<'a>,
    service: &ServiceSid,
    conversation: &ConversationRef,
    message: &MessageSid,
    participant: &ParticipantSid,
) -> Result<&'a Conversation, CommandError> {
    cx.host_only()?;
    let svc = cx.service(service)?;
    let conv = cx.conversation(svc, conversation)?;
    message_of(cx.rm, conv, message)?;
    participant_of(conv, participant)?;
    Ok(conv)
}

/// How far along its way a delivery status says a message is, in Twilio's
/// order: `sent` (handed to the channel), then an outcome (`delivered`, or
/// `undelivered` and `failed`, which end the way), then `read`.
fn progress(status: DeliveryStatus) -> u8 {
    match status {
        DeliveryStatus::Sent => 0,
        DeliveryStatus::Delivered | DeliveryStatus::Undelivered | DeliveryStatus::Failed => 1,
        DeliveryStatus::Read => 2,
    }
}

/// Records a delivery receipt. Statuses only move forward ([`progress`]):
/// a receipt that arrives late, whose status is not further along than the
/// one recorded for the same (message, participant), is accepted as a
/// no-op. It appends nothing, so it stays idempotent (a retry decides the
/// same no-op again) and a channel that reports out of order gets no error
/// to retry on.
pub(super) fn receipt(cx: &mut Cx, c: &RecordDeliveryReceipt) -> Result<Decision, CommandError> {
    let (service, message, participant) = (&c.service, &c.message, &c.participant);
    let (status, error_code) = (c.status, c.error_code);
    let channel_message_sid = c.channel_message_sid.as_deref();
    let conv = delivery_target(cx, service, &c.conversation, message, participant)?;
    if let Some(c) = channel_message_sid {
        bytes("channel_message_sid", c, FOREIGN_ID_BYTES_MAX)?;
    }
    let behind = conv
        .receipt(message, participant)
        .is_some_and(|recorded| progress(status) <= progress(recorded.status));
    if behind {
        return Ok(decision(*service, Some(conv.row().sid), Vec::new()));
    }
    Ok(decision(
        *service,
        Some(conv.row().sid),
        vec![Event::DeliveryReceiptRecorded {
            conversation_sid: conv.row().sid,
            receipt_sid: ReceiptSid::derive(&cx.seed()),
            message_sid: *message,
            participant_sid: *participant,
            status,
            error_code,
            channel_message_sid: channel_message_sid.map(str::to_string),
        }],
    ))
}

pub(super) fn attempt_failed(
    cx: &mut Cx,
    c: &RecordDeliveryAttemptFailed,
) -> Result<Decision, CommandError> {
    let (service, message, participant) = (&c.service, &c.message, &c.participant);
    let conversation = ConversationRef::Sid(c.conversation);
    let conv = delivery_target(cx, service, &conversation, message, participant)?;
    let attempt = c.attempt;
    // Adapter errors are free text from elsewhere: keep a bounded prefix.
    let mut error = c.error.clone();
    if error.len() > FOREIGN_ID_BYTES_MAX * 4 {
        let mut cut = FOREIGN_ID_BYTES_MAX * 4;
        while !error.is_char_boundary(cut) {
            cut -= 1;
        }
        error.truncate(cut);
    }
    Ok(decision(
        *service,
        Some(conv.row().sid),
        vec![Event::DeliveryAttemptFailed {
            conversation_sid: conv.row().sid,
            message_sid: *message,
            participant_sid: *participant,
            attempt,
            error,
        }],
    ))
}
