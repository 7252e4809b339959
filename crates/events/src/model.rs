//! Value types shared by commands and events, named as in Twilio's
//! Conversations v1 OpenAPI description.

use serde::{Deserialize, Serialize};

use crate::sid::{MediaSid, ServiceSid};

/// Microseconds since the Unix epoch (UTC).
pub type TimestampMicros = u64;

/// A conversation's `state` (Twilio: `conversation_enum_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConversationState {
    /// Being set up; accepts participants and messages like `active`.
    Initializing,
    /// The normal state.
    #[default]
    Active,
    /// Idle; any new message makes it `active` again.
    Inactive,
    /// Closed: rejects new messages and participants.
    Closed,
}

/// Conversation timers (Twilio `Timers.Inactive`, `Timers.Closed`), as
/// ISO 8601 durations in microseconds from the last activity (read
/// Twilio's texts with [`crate::timers_from_iso8601`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Timers {
    /// After this much idle time the conversation becomes `inactive`.
    pub inactive_micros: Option<u64>,
    /// After this much idle time the conversation becomes `closed`.
    pub closed_micros: Option<u64>,
}

/// A non-chat participant's messaging binding (Twilio `messaging_binding`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessagingBinding {
    /// The participant's own address, e.g. `+15551230000` or `whatsapp:+1555…`.
    pub address: String,
    /// The address messages are sent from: the "window" of the binding.
    pub proxy_address: String,
    /// For group MMS: the address shown to the participant. Optional.
    pub projected_address: Option<String>,
}

/// Who a participant is: a chat user or a messaging binding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantKind {
    /// A chat (SDK) participant, identified by the user's `identity`.
    Chat {
        /// The user identity.
        identity: String,
        /// A chat participant in a group MMS may carry a projected address.
        projected_address: Option<String>,
    },
    /// A non-chat participant (SMS, WhatsApp, …).
    Messaging(MessagingBinding),
}

impl ParticipantKind {
    /// The chat identity, if this is a chat participant.
    pub fn identity(&self) -> Option<&str> {
        match self {
            ParticipantKind::Chat { identity, .. } => Some(identity),
            ParticipantKind::Messaging(_) => None,
        }
    }

    /// The messaging binding, if this is a non-chat participant.
    pub fn binding(&self) -> Option<&MessagingBinding> {
        match self {
            ParticipantKind::Chat { .. } => None,
            ParticipantKind::Messaging(b) => Some(b),
        }
    }
}

/// A media descriptor attached to a message (Twilio `media[]`). The bytes
/// live in the host's media store; the log keeps the descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Media {
    /// The media SID.
    pub sid: MediaSid,
    /// MIME type, e.g. `image/png`.
    pub content_type: String,
    /// Original file name, if known.
    pub filename: Option<String>,
    /// Size in bytes.
    pub size: u64,
}

/// A user's notification level in one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NotificationLevel {
    /// Notifications on.
    #[default]
    Default,
    /// Notifications off.
    Muted,
}

/// Whether a role applies service-wide or within a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleType {
    /// A service role (e.g. `service admin`, `service user`).
    Service,
    /// A conversation role (e.g. `channel admin`, `channel user`).
    Conversation,
}

/// Twilio's Conversations permission names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Permission {
    /// Service: create conversations.
    CreateConversation,
    /// Service: join conversations.
    JoinConversation,
    /// Service: edit any user.
    EditAnyUserInfo,
    /// Service: edit own user.
    EditOwnUserInfo,
    /// Conversation: add participants.
    AddParticipant,
    /// Conversation: remove participants.
    RemoveParticipant,
    /// Conversation: post messages.
    SendMessage,
    /// Conversation: post media messages.
    SendMediaMessage,
    /// Conversation: leave.
    LeaveConversation,
    /// Conversation: edit conversation name.
    EditConversationName,
    /// Conversation: edit conversation attributes.
    EditConversationAttributes,
    /// Conversation: delete the conversation.
    DeleteConversation,
    /// Conversation: edit any message.
    EditAnyMessage,
    /// Conversation: edit own message.
    EditOwnMessage,
    /// Conversation: edit any message's attributes.
    EditAnyMessageAttributes,
    /// Conversation: edit own message's attributes.
    EditOwnMessageAttributes,
    /// Conversation: delete any message.
    DeleteAnyMessage,
    /// Conversation: delete own message.
    DeleteOwnMessage,
    /// Conversation: edit any participant's attributes.
    EditAnyParticipantAttributes,
    /// Conversation: edit own participant attributes.
    EditOwnParticipantAttributes,
    /// Conversation: edit notification level.
    EditNotificationLevel,
}

/// The channel type of an Address Configuration (Twilio
/// `configuration_address_enum_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressType {
    /// SMS / MMS.
    Sms,
    /// WhatsApp.
    Whatsapp,
    /// Facebook Messenger.
    Messenger,
    /// Google Business Messages.
    Gbm,
    /// Email.
    Email,
    /// RCS.
    Rcs,
    /// Apple Messages for Business.
    Apple,
    /// Chat.
    Chat,
}

/// What an Address Configuration does with a message from an unknown binding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct AutoCreation {
    /// `AutoCreation.Enabled`: create a conversation for an unknown binding.
    pub enabled: bool,
    /// `AutoCreation.ConversationServiceSid`: the service the conversation is
    /// created in; `None` means the address configuration's own service.
    pub conversation_service_sid: Option<ServiceSid>,
    /// `AutoCreation.WebhookUrl`: an optional webhook to notify.
    pub webhook_url: Option<String>,
}

/// A delivery receipt's status (Twilio `delivery_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Handed to the channel.
    Sent,
    /// The channel confirmed delivery.
    Delivered,
    /// The recipient read it.
    Read,
    /// The send failed.
    Failed,
    /// The channel could not deliver it.
    Undelivered,
}

/// How a read-horizon command moves the horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HorizonMode {
    /// Set it to the given index, even backwards (Twilio's `setLastReadMessageIndex`).
    Set,
    /// Move it forward only (Twilio's `advanceLastReadMessageIndex`).
    Advance,
}
