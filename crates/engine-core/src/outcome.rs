//! What executing a command returns: the [`CommandOutcome`] of any
//! command, and each command struct's own typed result
//! ([`TypedCommand::Output`]), read from that outcome.

use events::*;

use crate::commands::{CommandError, StorageFailure};

/// What an executed command did: its records.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome {
    /// The position of the first record (the head's next position if the
    /// command appended nothing).
    pub first_position: u64,
    /// The records the command appended, in order (possibly none, e.g. an
    /// `Advance` that would not move the horizon).
    pub records: Vec<(RecordHeader, Event)>,
    /// True if the command id had already been applied: nothing new was
    /// appended and `records` are the original ones.
    pub deduplicated: bool,
}

impl CommandOutcome {
    /// The events, in order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.records.iter().map(|(_, e)| e)
    }

    /// The first value `f` finds in the records, in order.
    pub fn find<T>(&self, f: impl FnMut(&(RecordHeader, Event)) -> Option<T>) -> Option<T> {
        self.records.iter().find_map(f)
    }

    /// The service of the records (for `CreateService`, the new service).
    pub fn service_sid(&self) -> Option<ServiceSid> {
        self.records.first().map(|(h, _)| h.service_sid)
    }

    /// The conversation the first `ConversationCreated` event created.
    pub fn conversation_sid(&self) -> Option<ConversationSid> {
        self.events().find_map(|e| match e {
            Event::ConversationCreated {
                conversation_sid, ..
            } => Some(*conversation_sid),
            _ => None,
        })
    }

    /// The participants the command added, in order.
    pub fn participant_sids(&self) -> Vec<ParticipantSid> {
        self.events()
            .filter_map(|e| match e {
                Event::ParticipantAdded {
                    participant_sid, ..
                } => Some(*participant_sid),
                _ => None,
            })
            .collect()
    }

    /// The message the command posted: its conversation, SID, index and
    /// log position.
    pub fn message(&self) -> Option<PostedMessage> {
        self.find(|(header, event)| match (event, header.conversation_sid) {
            (
                Event::MessageAdded {
                    message_sid, index, ..
                },
                Some(conversation_sid),
            ) => Some(PostedMessage {
                conversation_sid,
                message_sid: *message_sid,
                index: *index,
                position: header.position,
            }),
            _ => None,
        })
    }
}

/// Where a message was posted: the result of [`PostMessage`] and
/// [`ReceiveInbound`], and what [`crate::Engine::inbound_message`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostedMessage {
    /// The conversation it was posted in (for an inbound message, possibly
    /// autocreated for it).
    pub conversation_sid: ConversationSid,
    /// The message.
    pub message_sid: MessageSid,
    /// The message's index in the conversation.
    pub index: u64,
    /// The log position of its `MessageAdded` record.
    pub position: u64,
}

/// A conversation created with its participants: the result of
/// [`CreateConversationWithParticipants`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedConversation {
    /// The new conversation.
    pub conversation_sid: ConversationSid,
    /// Its participants, in the order given (an acting creator first).
    pub participant_sids: Vec<ParticipantSid>,
}

/// A command whose execution returns a typed result.
///
/// [`crate::Engine::execute`] takes any `CommandEnvelope<C>` with
/// `C: TypedCommand` and returns `C::Output`: the SID a creation made, the
/// message a post made, `()` for updates and deletes, or the whole
/// [`CommandOutcome`] for the serialisable [`Command`] enum. A retry of an
/// applied command returns the same output as the first execution, read
/// from the original records.
pub trait TypedCommand: Into<Command> {
    /// What executing this command returns.
    type Output;

    /// Reads the output from the command's records. `None` only if the
    /// records lack what the command always produces, which the engine
    /// reports as [`StorageFailure::Internal`].
    fn output(outcome: CommandOutcome) -> Option<Self::Output>;
}

impl TypedCommand for Command {
    type Output = CommandOutcome;

    fn output(outcome: CommandOutcome) -> Option<CommandOutcome> {
        Some(outcome)
    }
}

/// Implements [`TypedCommand`]: `Command => Output: |outcome| extraction`,
/// or `unit: Command, …` for commands whose result is `()`.
macro_rules! typed_commands {
    ($($command:ident => $output:ty: |$o:ident| $extract:expr;)*) => {$(
        impl TypedCommand for $command {
            type Output = $output;

            fn output($o: CommandOutcome) -> Option<$output> {
                $extract
            }
        }
    )*};
    (unit: $($command:ident),* $(,)?) => {$(
        impl TypedCommand for $command {
            type Output = ();

            fn output(_: CommandOutcome) -> Option<()> {
                Some(())
            }
        }
    )*};
}

typed_commands! {
    CreateService => ServiceSid: |o| o.service_sid();
    CreateConversation => ConversationSid: |o| o.conversation_sid();
    CreateConversationWithParticipants => CreatedConversation: |o| {
        Some(CreatedConversation {
            conversation_sid: o.conversation_sid()?,
            participant_sids: o.participant_sids(),
        })
    };
    AddParticipant => ParticipantSid: |o| o.participant_sids().first().copied();
    PostMessage => PostedMessage: |o| o.message();
    ReceiveInbound => PostedMessage: |o| o.message();
    CreateUser => UserSid: |o| o.events().find_map(|e| match e {
        Event::UserCreated { user_sid, .. } => Some(*user_sid),
        _ => None,
    });
    CreateRole => RoleSid: |o| o.events().find_map(|e| match e {
        Event::RoleCreated { role_sid, .. } => Some(*role_sid),
        _ => None,
    });
    CreateConversationWebhook => WebhookSid: |o| o.events().find_map(|e| match e {
        Event::ConversationWebhookCreated { webhook_sid, .. } => Some(*webhook_sid),
        _ => None,
    });
    CreateConversationStudioWebhook => WebhookSid: |o| o.events().find_map(|e| match e {
        Event::ConversationStudioWebhookCreated { webhook_sid, .. } => Some(*webhook_sid),
        _ => None,
    });
    CreateAddressConfiguration => AddressConfigurationSid: |o| o.events().find_map(|e| match e {
        Event::AddressConfigurationCreated { address_configuration_sid, .. }
        | Event::AddressConfigurationCreatedV2 { address_configuration_sid, .. } => {
            Some(*address_configuration_sid)
        }
        _ => None,
    });
}

typed_commands! {
    unit: UpdateService,
    DeleteService,
    UpdateConversation,
    DeleteConversation,
    UpdateParticipant,
    RemoveParticipant,
    EditMessage,
    DeleteMessage,
    UpdateReadHorizon,
    UpdateUser,
    DeleteUser,
    UpdateUserConversation,
    UpdateRole,
    DeleteRole,
    UpdateAddressConfiguration,
    DeleteAddressConfiguration,
    RecordDeliveryReceipt,
    UpdateServiceConfiguration,
    RecordDeliveryAttemptFailed,
    UpdateServiceWebhooks,
    DeleteConversationWebhook,
    UpdateConversationWebhook,
}

/// `C`'s output from `outcome`, or the internal error that says which
/// command's records lacked it.
pub(crate) fn typed_output<C: TypedCommand>(
    outcome: CommandOutcome,
) -> Result<C::Output, CommandError> {
    let first_position = outcome.first_position;
    C::output(outcome).ok_or_else(|| {
        CommandError::from(StorageFailure::Internal(format!(
            "the records of the {} at position {first_position} lack its result",
            std::any::type_name::<C>()
        )))
    })
}
