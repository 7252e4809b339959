//! Value types shared by commands and events, named as in Twilio's
//! Conversations v1 OpenAPI description.

use serde::{Deserialize, Serialize};

use crate::sid::{FlowSid, MediaSid, ServiceSid};

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

/// What an Address Configuration does with a message from an unknown
/// binding, as written by the first builds: the shape of
/// [`crate::Event::AddressConfigurationCreated`] and
/// [`crate::Event::AddressConfigurationUpdated`], which are never written
/// now (their `…V2` successors carry [`AutoCreation`]). Read as an
/// [`AutoCreation`] of type [`AutoCreationType::Default`]: those builds
/// stored the webhook URL but never called it, so a log folds to the same
/// behaviour it had.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct AutoCreationV1 {
    /// `AutoCreation.Enabled`.
    pub enabled: bool,
    /// `AutoCreation.ConversationServiceSid`.
    pub conversation_service_sid: Option<ServiceSid>,
    /// `AutoCreation.WebhookUrl`, stored and never called.
    pub webhook_url: Option<String>,
}

impl From<AutoCreationV1> for AutoCreation {
    fn from(v1: AutoCreationV1) -> Self {
        AutoCreation {
            enabled: v1.enabled,
            conversation_service_sid: v1.conversation_service_sid,
            webhook_url: v1.webhook_url,
            ..AutoCreation::default()
        }
    }
}

/// What an autocreated conversation is handed to (Twilio
/// `AutoCreation.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AutoCreationType {
    /// Nothing: the conversation is created with no webhook of its own
    /// (Twilio's default).
    #[default]
    Default,
    /// A conversation-scoped webhook calling `WebhookUrl` by
    /// `WebhookMethod` for `WebhookFilters`.
    Webhook,
    /// A conversation-scoped Studio webhook handing the conversation to
    /// the flow `StudioFlowSid`.
    Studio,
}

/// What an Address Configuration does with a message from an unknown
/// binding (Twilio's `AutoCreation.*` parameters). With `enabled`, such a
/// message creates a conversation; its [`AutoCreationType`] says whether
/// the conversation also gets a conversation-scoped webhook, in the same
/// command's events, so it is called exactly as one created with
/// [`crate::CreateConversationWebhook`] (type `webhook`) or
/// [`crate::CreateConversationStudioWebhook`] (type `studio`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct AutoCreation {
    /// `AutoCreation.Enabled`: create a conversation for an unknown binding.
    pub enabled: bool,
    /// `AutoCreation.ConversationServiceSid`: the service the conversation is
    /// created in; `None` means the address configuration's own service.
    pub conversation_service_sid: Option<ServiceSid>,
    /// `AutoCreation.Type`.
    pub kind: AutoCreationType,
    /// `AutoCreation.WebhookUrl`: for type `webhook`, where the webhook
    /// calls (`http` or `https`); with another type it is stored and never
    /// called (as Twilio ignores it, and as the first builds stored it).
    pub webhook_url: Option<String>,
    /// `AutoCreation.WebhookMethod`: for type `webhook`, how it calls.
    pub webhook_method: WebhookMethod,
    /// `AutoCreation.WebhookFilters`: for type `webhook`, the events it is
    /// called for (1 or more), without repeats, in [`WebhookFilter::ALL`]
    /// order; empty for the other types.
    pub webhook_filters: Vec<WebhookFilter>,
    /// `AutoCreation.StudioFlowSid`: for type `studio`, the flow.
    pub studio_flow_sid: Option<FlowSid>,
    /// `AutoCreation.StudioRetryCount`: for type `studio`, how many times
    /// Twilio retries the flow's webhook (0 to
    /// [`crate::limits::AUTO_CREATION_STUDIO_RETRIES_PER_CALL_MAX`]). Stored and
    /// returned; the flow's retries are those of its reactor
    /// (`attempts_max`), set by the host that registers the flow.
    pub studio_retry_count: Option<u32>,
}

impl AutoCreation {
    /// Autocreation on, with no webhook (type `default`).
    pub fn enabled() -> Self {
        AutoCreation {
            enabled: true,
            ..AutoCreation::default()
        }
    }

    /// Autocreation on, each new conversation getting a webhook that calls
    /// `url` by POST for `filters` (type `webhook`).
    pub fn webhook(
        url: impl Into<String>,
        filters: impl IntoIterator<Item = WebhookFilter>,
    ) -> Self {
        AutoCreation {
            enabled: true,
            kind: AutoCreationType::Webhook,
            webhook_url: Some(url.into()),
            webhook_filters: filters.into_iter().collect(),
            ..AutoCreation::default()
        }
    }

    /// Autocreation on, each new conversation handed to the Studio flow
    /// `flow` (type `studio`).
    pub fn studio(flow: FlowSid) -> Self {
        AutoCreation {
            enabled: true,
            kind: AutoCreationType::Studio,
            studio_flow_sid: Some(flow),
            ..AutoCreation::default()
        }
    }
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

/// How a webhook is called (Twilio `Method`: `GET` or `POST`, default
/// `POST`). A POST carries the payload form-encoded in its body, a GET in
/// its query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum WebhookMethod {
    /// The payload in the query string.
    Get,
    /// The payload form-encoded in the body (Twilio's default).
    #[default]
    Post,
}

/// A post-event webhook filter: which events a service's post-event
/// webhook is called for, by Twilio's `Filters` names (`onMessageAdded`,
/// …; [`WebhookFilter::twilio_name`], [`WebhookFilter::from_twilio_name`]).
/// Twilio's pre-event names (`onMessageAdd`, …) belong to pre-event hooks
/// and are not filters of post-event webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WebhookFilter {
    /// `onMessageAdded`: a message was posted.
    OnMessageAdded,
    /// `onMessageUpdated`: a message was edited.
    OnMessageUpdated,
    /// `onMessageRemoved`: a message was deleted.
    OnMessageRemoved,
    /// `onConversationAdded`: a conversation was created.
    OnConversationAdded,
    /// `onConversationUpdated`: a conversation's fields changed.
    OnConversationUpdated,
    /// `onConversationRemoved`: a conversation was deleted.
    OnConversationRemoved,
    /// `onConversationStateUpdated`: a conversation's state changed.
    OnConversationStateUpdated,
    /// `onParticipantAdded`: a participant joined.
    OnParticipantAdded,
    /// `onParticipantUpdated`: a participant's attributes or role changed.
    OnParticipantUpdated,
    /// `onParticipantRemoved`: a participant left or was removed.
    OnParticipantRemoved,
    /// `onDeliveryUpdated`: a channel reported a delivery status.
    OnDeliveryUpdated,
    /// `onUserAdded`: a user was created.
    OnUserAdded,
    /// `onUserUpdated`: a user changed.
    OnUserUpdated,
}

impl WebhookFilter {
    /// Every filter, in declaration order.
    pub const ALL: [WebhookFilter; 13] = [
        WebhookFilter::OnMessageAdded,
        WebhookFilter::OnMessageUpdated,
        WebhookFilter::OnMessageRemoved,
        WebhookFilter::OnConversationAdded,
        WebhookFilter::OnConversationUpdated,
        WebhookFilter::OnConversationRemoved,
        WebhookFilter::OnConversationStateUpdated,
        WebhookFilter::OnParticipantAdded,
        WebhookFilter::OnParticipantUpdated,
        WebhookFilter::OnParticipantRemoved,
        WebhookFilter::OnDeliveryUpdated,
        WebhookFilter::OnUserAdded,
        WebhookFilter::OnUserUpdated,
    ];

    /// Twilio's name for it, which is also the webhook's `EventType`
    /// (`onMessageAdded`, …).
    pub fn twilio_name(self) -> &'static str {
        use WebhookFilter::*;
        match self {
            OnMessageAdded => "onMessageAdded",
            OnMessageUpdated => "onMessageUpdated",
            OnMessageRemoved => "onMessageRemoved",
            OnConversationAdded => "onConversationAdded",
            OnConversationUpdated => "onConversationUpdated",
            OnConversationRemoved => "onConversationRemoved",
            OnConversationStateUpdated => "onConversationStateUpdated",
            OnParticipantAdded => "onParticipantAdded",
            OnParticipantUpdated => "onParticipantUpdated",
            OnParticipantRemoved => "onParticipantRemoved",
            OnDeliveryUpdated => "onDeliveryUpdated",
            OnUserAdded => "onUserAdded",
            OnUserUpdated => "onUserUpdated",
        }
    }

    /// The filter Twilio names `name` (exact, case-sensitive, as Twilio
    /// matches it); `None` for any other name, pre-event names included.
    pub fn from_twilio_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.twilio_name() == name)
    }
}

/// A service's post-event webhook configuration (Twilio's Service Webhook
/// configuration: `PostWebhookUrl`, `Method`, `Filters`), plus the secret
/// its requests are signed with.
///
/// The signing secret plays the part of Twilio's account auth token in
/// `X-Twilio-Signature`. It is part of the event that sets it, so it is
/// stored in the log (and the service's read-model row) in the clear, like
/// every other field: whoever can read the store can read it. Use a secret
/// made for webhook signing, never a credential of anything else, and
/// rotate it by configuring a new one. `Debug` output redacts it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct ServiceWebhooks {
    /// Where post-event webhooks go (`http` or `https`); `None`: no
    /// post-event webhooks.
    pub post_webhook_url: Option<String>,
    /// How the URL is called.
    pub method: WebhookMethod,
    /// Which events it is called for, without repeats, in
    /// [`WebhookFilter::ALL`] order.
    pub filters: Vec<WebhookFilter>,
    /// The secret `X-Twilio-Signature` is computed with; `None`: requests
    /// are not signed.
    pub signing_secret: Option<String>,
}

impl std::fmt::Debug for ServiceWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceWebhooks")
            .field("post_webhook_url", &self.post_webhook_url)
            .field("method", &self.method)
            .field("filters", &self.filters)
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// What a conversation-scoped webhook does (Twilio `Target`; a `studio`
/// target is a [`StudioWebhook`], created with its own command and event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookTarget {
    /// Calls its URL for the events its filters name.
    Webhook,
    /// Calls its URL with `onMessageAdded` when a new message's body holds
    /// one of its keywords (`Configuration.Triggers`).
    Trigger,
}

/// A conversation-scoped webhook with Twilio's `Target=studio`: it hands
/// the conversation to a Studio flow, which in Colloquy is a reactor the
/// host registers under the flow's SID (`Engine::start_studio_flow`). The
/// flow receives each message added to the conversation while the webhook
/// exists.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StudioWebhook {
    /// `Configuration.FlowSid`: the flow.
    pub flow_sid: FlowSid,
    /// `Configuration.ReplayAfter`: when set, the messages the
    /// conversation already holds with an index above it are handed to
    /// the flow when the webhook is created (messages removed by then are
    /// not).
    pub replay_after: Option<u64>,
}

/// A conversation-scoped webhook (Twilio's conversation Webhook
/// resource: `Target`, `Configuration.Url`, `Configuration.Method`,
/// `Configuration.Filters`, `Configuration.Triggers`). Its requests are
/// signed with the service's signing secret ([`ServiceWebhooks`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConversationWebhook {
    /// What it does.
    pub target: WebhookTarget,
    /// Where it calls (`http` or `https`).
    pub url: String,
    /// How it calls.
    pub method: WebhookMethod,
    /// For [`WebhookTarget::Webhook`]: the events it is called for,
    /// without repeats, in [`WebhookFilter::ALL`] order; empty for a
    /// trigger.
    pub filters: Vec<WebhookFilter>,
    /// For [`WebhookTarget::Trigger`]: its keywords, matched against each
    /// word of a new message's body ignoring case; empty for a webhook.
    pub triggers: Vec<String>,
}

/// What a conversation-scoped webhook is: one that calls a URL (Twilio's
/// `Target=webhook` and `Target=trigger`) or one that hands the
/// conversation to a Studio flow (`Target=studio`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConversationWebhookConfig {
    /// `Target=webhook` or `Target=trigger`.
    Url(ConversationWebhook),
    /// `Target=studio`.
    Studio(StudioWebhook),
}

impl ConversationWebhookConfig {
    /// Twilio's `target`: `webhook`, `trigger` or `studio`.
    pub fn target_name(&self) -> &'static str {
        match self {
            ConversationWebhookConfig::Url(w) => match w.target {
                WebhookTarget::Webhook => "webhook",
                WebhookTarget::Trigger => "trigger",
            },
            ConversationWebhookConfig::Studio(_) => "studio",
        }
    }

    /// The URL webhook or trigger, if it is one.
    pub fn url(&self) -> Option<&ConversationWebhook> {
        match self {
            ConversationWebhookConfig::Url(w) => Some(w),
            ConversationWebhookConfig::Studio(_) => None,
        }
    }

    /// The Studio hand-off, if it is one.
    pub fn studio(&self) -> Option<&StudioWebhook> {
        match self {
            ConversationWebhookConfig::Url(_) => None,
            ConversationWebhookConfig::Studio(s) => Some(s),
        }
    }
}
