//! The one mapping from log events to client events.
//!
//! Live fan-out and resume both decide what an identity sees through
//! [`client_event_kind`], and both track membership through
//! [`membership_effect`] and [`subject_of`], so the two paths can never
//! disagree: they differ only in where the membership they feed in comes
//! from (the in-memory index for live fan-out, a fold of the log for
//! resume).

use events::{ConversationSid, Event, ParticipantSid, UserSid};

/// A client event's type, named as Twilio's Conversations SDK names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientEventKind {
    /// The user joined a conversation (`conversationAdded`).
    ConversationAdded,
    /// A conversation the user is in changed, or the user's own settings
    /// for it did (`conversationUpdated`).
    ConversationUpdated,
    /// The user left a conversation, or it was deleted
    /// (`conversationRemoved`).
    ConversationRemoved,
    /// A message was posted (`messageAdded`).
    MessageAdded,
    /// A message was edited or its delivery receipts changed
    /// (`messageUpdated`).
    MessageUpdated,
    /// A message was deleted (`messageRemoved`).
    MessageRemoved,
    /// Another participant joined (`participantJoined`).
    ParticipantJoined,
    /// A participant's attributes, role or read horizon changed
    /// (`participantUpdated`).
    ParticipantUpdated,
    /// Another participant left (`participantLeft`).
    ParticipantLeft,
    /// Another participant started typing (`typingStarted`); ephemeral.
    TypingStarted,
    /// Another participant stopped typing (`typingEnded`); ephemeral.
    TypingEnded,
    /// The user's own user resource changed (`userUpdated`).
    UserUpdated,
}

impl ClientEventKind {
    /// Every kind, in declaration order.
    pub const ALL: [ClientEventKind; 12] = [
        ClientEventKind::ConversationAdded,
        ClientEventKind::ConversationUpdated,
        ClientEventKind::ConversationRemoved,
        ClientEventKind::MessageAdded,
        ClientEventKind::MessageUpdated,
        ClientEventKind::MessageRemoved,
        ClientEventKind::ParticipantJoined,
        ClientEventKind::ParticipantUpdated,
        ClientEventKind::ParticipantLeft,
        ClientEventKind::TypingStarted,
        ClientEventKind::TypingEnded,
        ClientEventKind::UserUpdated,
    ];

    /// The SDK's event name, e.g. `messageAdded`.
    pub fn name(self) -> &'static str {
        match self {
            ClientEventKind::ConversationAdded => "conversationAdded",
            ClientEventKind::ConversationUpdated => "conversationUpdated",
            ClientEventKind::ConversationRemoved => "conversationRemoved",
            ClientEventKind::MessageAdded => "messageAdded",
            ClientEventKind::MessageUpdated => "messageUpdated",
            ClientEventKind::MessageRemoved => "messageRemoved",
            ClientEventKind::ParticipantJoined => "participantJoined",
            ClientEventKind::ParticipantUpdated => "participantUpdated",
            ClientEventKind::ParticipantLeft => "participantLeft",
            ClientEventKind::TypingStarted => "typingStarted",
            ClientEventKind::TypingEnded => "typingEnded",
            ClientEventKind::UserUpdated => "userUpdated",
        }
    }
}

impl std::fmt::Display for ClientEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How one identity stands towards one event: whether it is a chat
/// participant of the event's conversation just before and just after the
/// event, and whether the event is about that identity itself (the
/// participant that joined or left, or the user that changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Perspective {
    /// A chat participant of the event's conversation before the event.
    pub member_before: bool,
    /// A chat participant of the event's conversation after the event.
    pub member_after: bool,
    /// The event is about this identity.
    pub subject: bool,
}

/// What an identity in the given [`Perspective`] sees of `event`, if
/// anything. Pure: the same inputs always give the same answer.
///
/// - `ParticipantAdded`: seen by members after it; the subject gets
///   `conversationAdded`, the others `participantJoined`.
/// - `ParticipantRemoved`: seen by members before it; the subject gets
///   `conversationRemoved`, the others `participantLeft`.
/// - `ConversationRemoved`: members before it get `conversationRemoved`.
/// - `ConversationUpdated` → `conversationUpdated`; `ParticipantUpdated` and
///   `ReadHorizonUpdated` → `participantUpdated`; `MessageAdded` /
///   `MessageUpdated` / `MessageRemoved` → `message*`;
///   `DeliveryReceiptRecorded` → `messageUpdated`: all seen by members.
/// - `UserConversationUpdated` → `conversationUpdated` and `UserUpdated` →
///   `userUpdated`, for the subject user only.
/// - Everything else (service, role, address-configuration events,
///   `ConversationCreated`, user creation and deletion, failed delivery
///   attempts) is seen by nobody.
pub fn client_event_kind(event: &Event, p: Perspective) -> Option<ClientEventKind> {
    use ClientEventKind as K;
    let member = p.member_before;
    let kind = match event {
        Event::ParticipantAdded { .. } => {
            if !p.member_after {
                return None;
            }
            if p.subject {
                K::ConversationAdded
            } else {
                K::ParticipantJoined
            }
        }
        Event::ParticipantRemoved { .. } => {
            if !p.member_before {
                return None;
            }
            if p.subject {
                K::ConversationRemoved
            } else {
                K::ParticipantLeft
            }
        }
        Event::ConversationRemoved { .. } if member => K::ConversationRemoved,
        Event::ConversationUpdated { .. } if member => K::ConversationUpdated,
        Event::ParticipantUpdated { .. } | Event::ReadHorizonUpdated { .. } if member => {
            K::ParticipantUpdated
        }
        Event::MessageAdded { .. } if member => K::MessageAdded,
        Event::MessageUpdated { .. } if member => K::MessageUpdated,
        Event::MessageRemoved { .. } if member => K::MessageRemoved,
        Event::DeliveryReceiptRecorded { .. } if member => K::MessageUpdated,
        Event::UserConversationUpdated { .. } if p.subject => K::ConversationUpdated,
        Event::UserUpdated { .. } if p.subject => K::UserUpdated,
        _ => return None,
    };
    Some(kind)
}

/// How an event changes chat membership (who is a chat participant of
/// which conversation). Non-chat joins and leaves are reported too, with
/// no identity, so resume can tell whose a removed participant was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MembershipEffect<'a> {
    /// No membership change.
    None,
    /// A conversation was created (with nobody in it).
    CreateConversation(ConversationSid),
    /// A participant joined; `identity` is set for chat participants.
    Join {
        conversation: ConversationSid,
        participant: ParticipantSid,
        identity: Option<&'a str>,
    },
    /// A participant left.
    Leave {
        conversation: ConversationSid,
        participant: ParticipantSid,
    },
    /// A conversation was deleted with everyone in it.
    RemoveConversation(ConversationSid),
    /// The service was deleted with every conversation in it.
    RemoveService,
}

/// The membership change `event` makes.
pub(crate) fn membership_effect(event: &Event) -> MembershipEffect<'_> {
    match event {
        Event::ConversationCreated {
            conversation_sid, ..
        } => MembershipEffect::CreateConversation(*conversation_sid),
        Event::ParticipantAdded {
            conversation_sid,
            participant_sid,
            kind,
            ..
        } => MembershipEffect::Join {
            conversation: *conversation_sid,
            participant: *participant_sid,
            identity: kind.identity(),
        },
        Event::ParticipantRemoved {
            conversation_sid,
            participant_sid,
        } => MembershipEffect::Leave {
            conversation: *conversation_sid,
            participant: *participant_sid,
        },
        Event::ConversationRemoved { conversation_sid } => {
            MembershipEffect::RemoveConversation(*conversation_sid)
        }
        Event::ServiceDeleted => MembershipEffect::RemoveService,
        _ => MembershipEffect::None,
    }
}

/// Who an event is about, as the event names it. Resolving it to an
/// identity needs state: the live path asks the read models, resume its
/// fold of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject<'a> {
    /// Nobody in particular.
    None,
    /// A chat identity named in the event (a chat participant joining).
    Identity(&'a str),
    /// A participant (a participant leaving): the subject is whoever that
    /// participant is, if a chat participant.
    Participant(ParticipantSid),
    /// A user (user events): the subject is that user's identity.
    User(UserSid),
}

/// Who `event` is about.
pub(crate) fn subject_of(event: &Event) -> Subject<'_> {
    match event {
        Event::ParticipantAdded { kind, .. } => match kind.identity() {
            Some(identity) => Subject::Identity(identity),
            None => Subject::None,
        },
        Event::ParticipantRemoved {
            participant_sid, ..
        } => Subject::Participant(*participant_sid),
        Event::UserUpdated { user_sid, .. } | Event::UserConversationUpdated { user_sid, .. } => {
            Subject::User(*user_sid)
        }
        _ => Subject::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(member_before: bool, member_after: bool, subject: bool) -> Perspective {
        Perspective {
            member_before,
            member_after,
            subject,
        }
    }

    #[test]
    fn joins_use_membership_after_and_removals_before() {
        let c = ConversationSid([1; 16]);
        let added = Event::ParticipantAdded {
            conversation_sid: c,
            participant_sid: ParticipantSid([2; 16]),
            kind: events::ParticipantKind::Chat {
                identity: "u".into(),
                projected_address: None,
            },
            user_sid: None,
            attributes: "{}".into(),
            role_sid: None,
        };
        assert_eq!(
            client_event_kind(&added, p(false, true, true)),
            Some(ClientEventKind::ConversationAdded)
        );
        assert_eq!(
            client_event_kind(&added, p(true, true, false)),
            Some(ClientEventKind::ParticipantJoined)
        );
        assert_eq!(client_event_kind(&added, p(false, false, false)), None);
        let removed = Event::ParticipantRemoved {
            conversation_sid: c,
            participant_sid: ParticipantSid([2; 16]),
        };
        assert_eq!(
            client_event_kind(&removed, p(true, false, true)),
            Some(ClientEventKind::ConversationRemoved)
        );
        assert_eq!(
            client_event_kind(&removed, p(true, true, false)),
            Some(ClientEventKind::ParticipantLeft)
        );
        let gone = Event::ConversationRemoved {
            conversation_sid: c,
        };
        assert_eq!(
            client_event_kind(&gone, p(true, false, false)),
            Some(ClientEventKind::ConversationRemoved)
        );
        assert_eq!(client_event_kind(&gone, p(false, false, false)), None);
    }

    #[test]
    fn names_are_the_sdk_names() {
        let names: Vec<_> = ClientEventKind::ALL.iter().map(|k| k.name()).collect();
        assert!(names.contains(&"participantUpdated"));
        assert!(names.contains(&"typingEnded"));
        assert_eq!(names.len(), 12);
    }
}
