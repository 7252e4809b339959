//! Inbound routing: a message from a channel, by its (proxy, address) binding.

use events::*;

use super::conversation::created;
use super::message::message_events;
use super::participant::participant_events;
use super::service::studio_webhook_created;
use super::{decision, Claims, CommandError, Cx};
use events::Decision;

/// Routes an inbound message. With a binding to an open conversation the
/// message is appended as that participant's. Without one, the Address
/// Configuration for `to` decides: with autocreation on, a conversation,
/// its webhook (autocreation type `webhook`: a conversation webhook with
/// the configuration's URL, method and filters; type `studio`: a Studio
/// webhook with its flow), the participant and the message are appended
/// together; otherwise
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
    let Some(config) = svc
        .address_configuration_by_address(to)
        .filter(|c| c.address_type == channel && c.auto_creation.enabled)
    else {
        return Err(CommandError::NoRoute {
            from: from.to_string(),
            to: to.to_string(),
        });
    };
    let (conv_sid, created) = created(cx, svc, &ConversationSpec::default())?;
    let mut events = vec![created];
    // The configuration's webhook comes right after the conversation, so
    // it sees the participant and the first message.
    let auto = &config.auto_creation;
    match (auto.kind, &auto.webhook_url, auto.studio_flow_sid) {
        (AutoCreationType::Webhook, Some(url), _) => {
            events.push(Event::ConversationWebhookCreated {
                conversation_sid: conv_sid,
                webhook_sid: WebhookSid::derive(&cx.seed()),
                webhook: ConversationWebhook {
                    target: WebhookTarget::Webhook,
                    url: url.clone(),
                    method: auto.webhook_method,
                    filters: auto.webhook_filters.clone(),
                    triggers: Vec::new(),
                },
            })
        }
        (AutoCreationType::Studio, _, Some(flow_sid)) => {
            let studio = StudioWebhook {
                flow_sid,
                replay_after: None,
            };
            events.push(studio_webhook_created(cx, conv_sid, studio));
        }
        // Type default, and configurations whose fields do not make a
        // webhook (the first builds' stored URL): no webhook.
        _ => {}
    }
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
