//! Inbound routing: a message from a channel, by its (proxy, address) binding.

use events::*;

use super::conversation::created;
use super::message::message_events;
use super::participant::participant_events;
use super::{decision, Claims, CommandError, Cx};
use events::Decision;

/// Routes an inbound message. With a binding to an open conversation the
/// message is appended as that participant's. Without one, the Address
/// Configuration for `to` decides: with autocreation on, a conversation,
/// the participant and the message are appended together; otherwise
/// [`CommandError::NoRoute`]. Because decisions are serialised on the
/// writer thread, two inbound messages for a new binding create one
/// conversation, not two.
pub(super) fn receive(cx: &mut Cx, c: &ReceiveInbound) -> Result<Decision, CommandError> {
    let (service, channel, from, to) = (&c.service, c.channel, c.from.as_str(), c.to.as_str());
    let (body, media) = (c.body.as_deref(), &c.media);
    cx.host_only()?;
    let svc = cx.service(service)?;
    let bound = svc
        .binding_holder(to, from)
        .and_then(|(c, p)| Some((svc.conversation_by_sid(&c)?, p)))
        .filter(|(c, _)| c.row().state != ConversationState::Closed);
    if let Some((conv, participant)) = bound {
        let events = message_events(cx, conv, from, Some(participant), body, media, None)?;
        return Ok(decision(*service, Some(conv.row().sid), events));
    }
    let config = svc
        .address_configuration_by_address(to)
        .filter(|c| c.address_type == channel && c.auto_creation.enabled);
    if config.is_none() {
        return Err(CommandError::NoRoute {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    let (conv_sid, created) = created(cx, svc, &ConversationSpec::default())?;
    let mut events = vec![created];
    let spec = ParticipantSpec::binding(from, to);
    let added = participant_events(cx, svc, conv_sid, None, &spec, &mut Claims::default())?;
    let participant_sid = match added.last() {
        Some(Event::ParticipantAdded {
            participant_sid, ..
        }) => *participant_sid,
        other => unreachable!("participant_events ends with ParticipantAdded, got {other:?}"),
    };
    events.extend(added);
    // A fresh conversation: the message gets index 0.
    let fresh = projections::Conversation::empty(conv_sid, *service);
    events.extend(message_events(
        cx,
        &fresh,
        from,
        Some(participant_sid),
        body,
        media,
        None,
    )?);
    Ok(decision(*service, Some(conv_sid), events))
}
