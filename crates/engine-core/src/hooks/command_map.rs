//! Which commands fire which pre-event filter, and which of their fields a
//! hook may modify: pure functions over [`Command`], the one table of the
//! mapping (see [`PreEventFilter`] for it in prose).

use events::{Command, ConversationRef};

use super::{HookField, PreEventFilter};

/// Which part of a command a pre-event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PreEventTarget {
    /// The command's own resource (the message, the conversation, the
    /// participant, the user it creates, changes or removes).
    Command,
    /// The participant at this index of a
    /// `CreateConversationWithParticipants`' `participants`.
    Participant(usize),
}

/// The pre-events `command` fires, in the order its hooks run: none for
/// commands without a Twilio pre-event (services, roles, users other than
/// updates, read horizons, receipts, configuration, webhook configuration).
pub(crate) fn pre_events(command: &Command) -> Vec<(PreEventFilter, PreEventTarget)> {
    use PreEventFilter::*;
    let one = |filter| vec![(filter, PreEventTarget::Command)];
    match command {
        Command::PostMessage(_) | Command::ReceiveInbound(_) => one(OnMessageAdd),
        Command::EditMessage(_) => one(OnMessageUpdate),
        Command::DeleteMessage(_) => one(OnMessageRemove),
        Command::CreateConversation(_) => one(OnConversationAdd),
        Command::CreateConversationWithParticipants(c) => {
            let mut events = one(OnConversationAdd);
            events.extend(
                (0..c.participants.len())
                    .map(|i| (OnParticipantAdd, PreEventTarget::Participant(i))),
            );
            events
        }
        Command::UpdateConversation(_) => one(OnConversationUpdate),
        Command::DeleteConversation(_) => one(OnConversationRemove),
        Command::AddParticipant(_) => one(OnParticipantAdd),
        Command::UpdateParticipant(_) => one(OnParticipantUpdate),
        Command::RemoveParticipant(_) => one(OnParticipantRemove),
        Command::UpdateUser(_) => one(OnUserUpdate),
        Command::CreateService(_)
        | Command::UpdateService(_)
        | Command::DeleteService(_)
        | Command::UpdateServiceConfiguration(_)
        | Command::CreateRole(_)
        | Command::UpdateRole(_)
        | Command::DeleteRole(_)
        | Command::CreateUser(_)
        | Command::DeleteUser(_)
        | Command::UpdateUserConversation(_)
        | Command::CreateAddressConfiguration(_)
        | Command::UpdateAddressConfiguration(_)
        | Command::DeleteAddressConfiguration(_)
        | Command::UpdateReadHorizon(_)
        | Command::RecordDeliveryReceipt(_)
        | Command::RecordDeliveryAttemptFailed(_)
        | Command::UpdateServiceWebhooks(_)
        | Command::CreateConversationWebhook(_)
        | Command::DeleteConversationWebhook(_)
        | Command::CreateConversationStudioWebhook(_)
        | Command::UpdateConversationWebhook(_) => Vec::new(),
    }
}

/// The conversation `command` addresses, for the commands that fire a
/// pre-event and address an existing conversation.
pub(crate) fn conversation_ref(command: &Command) -> Option<&ConversationRef> {
    match command {
        Command::PostMessage(c) => Some(&c.conversation),
        Command::EditMessage(c) => Some(&c.conversation),
        Command::DeleteMessage(c) => Some(&c.conversation),
        Command::UpdateConversation(c) => Some(&c.conversation),
        Command::DeleteConversation(c) => Some(&c.conversation),
        Command::AddParticipant(c) => Some(&c.conversation),
        Command::UpdateParticipant(c) => Some(&c.conversation),
        Command::RemoveParticipant(c) => Some(&c.conversation),
        _ => None,
    }
}

/// The fields a hook may modify on `target` of `command`: its filter's
/// modifiable fields ([`PreEventFilter::modifiable_fields`]) that the
/// command carries (an inbound message has no author or attributes of its
/// own, an edit no author). Empty for removals and commands without a
/// pre-event.
pub(crate) fn modifiable(command: &Command, target: PreEventTarget) -> &'static [HookField] {
    use HookField::*;
    match (command, target) {
        (Command::PostMessage(_), PreEventTarget::Command) => &[Body, Author, Attributes],
        (Command::ReceiveInbound(_), PreEventTarget::Command) => &[Body],
        (Command::EditMessage(_), PreEventTarget::Command) => &[Body, Attributes],
        (
            Command::CreateConversation(_)
            | Command::CreateConversationWithParticipants(_)
            | Command::UpdateConversation(_),
            PreEventTarget::Command,
        ) => &[FriendlyName, UniqueName, Attributes],
        (Command::CreateConversationWithParticipants(_), PreEventTarget::Participant(_))
        | (Command::AddParticipant(_) | Command::UpdateParticipant(_), PreEventTarget::Command) => {
            &[Attributes]
        }
        (Command::UpdateUser(_), PreEventTarget::Command) => &[FriendlyName, Attributes],
        _ => &[],
    }
}

/// The slot of `field` on `target` of `command`, if a hook may modify it
/// there ([`modifiable`]); `None` otherwise (and for a participant index
/// the command does not have).
fn slot(
    command: &mut Command,
    target: PreEventTarget,
    field: HookField,
) -> Option<&mut Option<String>> {
    use HookField::*;
    match (command, target, field) {
        (Command::PostMessage(c), PreEventTarget::Command, Body) => Some(&mut c.body),
        (Command::PostMessage(c), PreEventTarget::Command, Author) => Some(&mut c.author),
        (Command::PostMessage(c), PreEventTarget::Command, Attributes) => Some(&mut c.attributes),
        (Command::ReceiveInbound(c), PreEventTarget::Command, Body) => Some(&mut c.body),
        (Command::EditMessage(c), PreEventTarget::Command, Body) => Some(&mut c.body),
        (Command::EditMessage(c), PreEventTarget::Command, Attributes) => Some(&mut c.attributes),
        (Command::CreateConversation(c), PreEventTarget::Command, field) => {
            spec_slot(&mut c.spec, field)
        }
        (Command::CreateConversationWithParticipants(c), PreEventTarget::Command, field) => {
            spec_slot(&mut c.spec, field)
        }
        (
            Command::CreateConversationWithParticipants(c),
            PreEventTarget::Participant(i),
            Attributes,
        ) => c.participants.get_mut(i).map(|p| &mut p.attributes),
        (Command::UpdateConversation(c), PreEventTarget::Command, FriendlyName) => {
            Some(&mut c.friendly_name)
        }
        (Command::UpdateConversation(c), PreEventTarget::Command, UniqueName) => {
            Some(&mut c.unique_name)
        }
        (Command::UpdateConversation(c), PreEventTarget::Command, Attributes) => {
            Some(&mut c.attributes)
        }
        (Command::AddParticipant(c), PreEventTarget::Command, Attributes) => {
            Some(&mut c.participant.attributes)
        }
        (Command::UpdateParticipant(c), PreEventTarget::Command, Attributes) => {
            Some(&mut c.attributes)
        }
        (Command::UpdateUser(c), PreEventTarget::Command, FriendlyName) => {
            Some(&mut c.friendly_name)
        }
        (Command::UpdateUser(c), PreEventTarget::Command, Attributes) => Some(&mut c.attributes),
        _ => None,
    }
}

fn spec_slot(spec: &mut events::ConversationSpec, field: HookField) -> Option<&mut Option<String>> {
    match field {
        HookField::FriendlyName => Some(&mut spec.friendly_name),
        HookField::UniqueName => Some(&mut spec.unique_name),
        HookField::Attributes => Some(&mut spec.attributes),
        HookField::Body | HookField::Author => None,
    }
}

/// The current value of `field` on `target` of `command`, when a hook may
/// modify it there; `None` when it may not or the field is unset.
pub(crate) fn field(command: &Command, target: PreEventTarget, field: HookField) -> Option<String> {
    // `slot` needs a mutable command; reading through a copy of the one
    // field keeps a single table of which field lives where.
    let mut command = command.clone();
    slot(&mut command, target, field).and_then(|value| value.take())
}

/// Sets `field` on `target` of `command` to `value`. Returns `false`, and
/// changes nothing, if a hook may not modify that field there.
pub(crate) fn set_field(
    command: &mut Command,
    target: PreEventTarget,
    field: HookField,
    value: String,
) -> bool {
    if !modifiable(command, target).contains(&field) {
        return false;
    }
    match slot(command, target, field) {
        Some(slot) => {
            *slot = Some(value);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::*;

    fn service() -> ServiceSid {
        ServiceSid::derive(b"command-map")
    }

    /// Every command that fires a pre-event has a slot for each field
    /// [`modifiable`] lists for it, and only those fields are set.
    #[test]
    fn every_modifiable_field_has_a_slot_and_no_other_field_is_set() {
        let s = service();
        let commands: Vec<Command> = vec![
            PostMessage::new(s, "c").into(),
            EditMessage::new(s, "c", MessageSid::derive(b"m")).into(),
            DeleteMessage::new(s, "c", MessageSid::derive(b"m")).into(),
            CreateConversation::new(s).into(),
            CreateConversationWithParticipants::new(s, ConversationSpec::default())
                .participant(ParticipantSpec::chat("a"))
                .into(),
            UpdateConversation::new(s, "c").into(),
            DeleteConversation::new(s, "c").into(),
            AddParticipant::new(s, "c", ParticipantSpec::chat("a")).into(),
            UpdateParticipant::new(s, "c", ParticipantSid::derive(b"p")).into(),
            RemoveParticipant::new(s, "c", ParticipantSid::derive(b"p")).into(),
            UpdateUser::new(s, UserSid::derive(b"u")).into(),
            ReceiveInbound::new(s, AddressType::Sms, "+1", "+2").into(),
        ];
        let all = [
            HookField::Body,
            HookField::Author,
            HookField::Attributes,
            HookField::FriendlyName,
            HookField::UniqueName,
        ];
        for command in commands {
            let events = pre_events(&command);
            assert!(
                !events.is_empty(),
                "{} fires no pre-event",
                command.type_name()
            );
            for (filter, target) in events {
                for field in all {
                    let allowed = modifiable(&command, target).contains(&field);
                    assert!(
                        !allowed || filter.modifiable_fields().contains(&field),
                        "{} lets {field:?} be modified, which {filter:?} does not",
                        command.type_name()
                    );
                    let mut modified = command.clone();
                    let set = set_field(&mut modified, target, field, "x".to_string());
                    assert_eq!(set, allowed, "{} {field:?}", command.type_name());
                    assert_eq!(
                        modified != command,
                        allowed,
                        "{} {field:?}",
                        command.type_name()
                    );
                    if allowed {
                        assert_eq!(super::field(&modified, target, field).as_deref(), Some("x"));
                    }
                }
            }
        }
    }
}
