//! Commands: what a caller asks the engine to do.
//!
//! A command is an intent. The engine validates it against the read models
//! and, if it holds, turns it into one or more [`Event`]s that
//! are appended to the log in one batch. Optional fields in `Update*`
//! commands mean "leave unchanged". JSON `attributes` travel as text and are
//! validated by the engine.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::model::*;
use crate::record::CodecError;
use crate::sid::*;

/// A command plus the metadata the log needs to apply it exactly once.
///
/// `C` is the command: one of the per-command structs ([`PostMessage`],
/// [`CreateConversation`], …), whose execution returns that command's own
/// typed result, or the serialisable [`Command`] enum (the default).
///
/// ```
/// use events::{CommandEnvelope, PostMessage, ServiceSid};
/// # let service: ServiceSid = "IS00000000000000000000000000000001".parse().unwrap();
/// let envelope = CommandEnvelope::new("request-7", PostMessage::new(service, "ticket-42").body("hi"))
///     .acting_as("alice");
/// assert_eq!(envelope.acting_identity.as_deref(), Some("alice"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandEnvelope<C = Command> {
    /// Idempotency key, unique within the command's
    /// [`Command::idempotency_scope`]: retrying the same command (same
    /// acting identity and fields) under the same id returns the first
    /// result and appends nothing; a different command under an id already
    /// used in its scope is refused (the engine's `IdempotencyKeyReused`).
    /// The same id in another scope is unrelated.
    pub command_id: CommandId,
    /// The chat identity acting, if any. When set, the engine enforces that
    /// user's role permissions; when `None` the caller is the trusted host
    /// (Twilio's REST API with account credentials).
    pub acting_identity: Option<String>,
    /// Optimistic concurrency: the conversation stream version the caller
    /// last saw. A mismatch is a typed conflict.
    pub expected_version: Option<u64>,
    /// What to do.
    pub command: C,
}

impl<C> CommandEnvelope<C> {
    /// `command` under the idempotency key `id`, issued by the trusted host
    /// (no acting identity), with no expected version.
    ///
    /// `id` is anything that names the request once: a [`CommandId`], or a
    /// string such as the host's own request id or an HTTP
    /// `I-Twilio-Idempotency-Token` (hashed by [`CommandId::from_key`]). A
    /// host that retries a request must send the same key again; a host
    /// with no key of its own uses [`CommandId::fresh`] and keeps the id for
    /// its retries.
    pub fn new(id: impl Into<CommandId>, command: C) -> Self {
        CommandEnvelope {
            command_id: id.into(),
            acting_identity: None,
            expected_version: None,
            command,
        }
    }

    /// Acts as the chat user `identity`: the engine then enforces that
    /// user's role permissions (and refuses what they do not grant).
    pub fn acting_as(mut self, identity: impl Into<String>) -> Self {
        self.acting_identity = Some(identity.into());
        self
    }

    /// Applies only if the addressed conversation's stream version is still
    /// `version` (optimistic concurrency); otherwise the engine answers a
    /// typed version conflict and writes nothing.
    pub fn expect_version(mut self, version: u64) -> Self {
        self.expected_version = Some(version);
        self
    }

    /// The same envelope around the serialisable [`Command`].
    pub fn into_command(self) -> CommandEnvelope
    where
        C: Into<Command>,
    {
        CommandEnvelope {
            command_id: self.command_id,
            acting_identity: self.acting_identity,
            expected_version: self.expected_version,
            command: self.command.into(),
        }
    }
}

/// Puts a command in a [`CommandEnvelope`]: `PostMessage::new(..).keyed(id)`
/// is `CommandEnvelope::new(id, PostMessage::new(..))`. Implemented for
/// every command struct and for [`Command`].
pub trait Keyed: Sized {
    /// This command under the idempotency key `id`, issued by the trusted
    /// host; see [`CommandEnvelope::new`] for what makes a good key.
    fn keyed(self, id: impl Into<CommandId>) -> CommandEnvelope<Self> {
        CommandEnvelope::new(id, self)
    }
}

impl<C: Into<Command>> Keyed for C {}

/// A 128-bit idempotency key chosen by the caller (or generated).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub struct CommandId(pub [u8; 16]);

impl CommandId {
    /// Derives a command id from caller-chosen bytes (e.g. an HTTP
    /// `I-Twilio-Idempotency-Token`): the first 16 bytes of their blake3
    /// hash, so equal keys give equal ids in every process.
    pub fn from_key(key: &[u8]) -> Self {
        let mut out = [0u8; 16];
        out.copy_from_slice(&blake3::hash(key).as_bytes()[..16]);
        Self(out)
    }

    /// A new random id (128 bits from the operating system's generator),
    /// for a request that has no key of its own. Keep it with the request:
    /// a retry must reuse it to be recognised as a retry.
    ///
    /// This is the one function of this crate that is not deterministic.
    ///
    /// Panics if the operating system has no random source (`getrandom`
    /// fails), which no supported platform does after boot.
    pub fn fresh() -> Self {
        let mut out = [0u8; 16];
        getrandom::fill(&mut out).expect("the operating system's random source is available");
        Self(out)
    }
}

impl From<&str> for CommandId {
    /// [`CommandId::from_key`] of the string's bytes.
    fn from(key: &str) -> Self {
        CommandId::from_key(key.as_bytes())
    }
}

impl From<String> for CommandId {
    /// [`CommandId::from_key`] of the string's bytes.
    fn from(key: String) -> Self {
        CommandId::from_key(key.as_bytes())
    }
}

impl From<&String> for CommandId {
    /// [`CommandId::from_key`] of the string's bytes.
    fn from(key: &String) -> Self {
        CommandId::from_key(key.as_bytes())
    }
}

impl std::fmt::Display for CommandId {
    /// 32 lowercase hex digits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fmt::Display::fmt(&crate::hex::Hex(&self.0), f)
    }
}

/// Addresses a conversation by SID or by its service-unique `unique_name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationRef {
    /// By `CH…` SID.
    Sid(ConversationSid),
    /// By `unique_name`.
    UniqueName(String),
}

impl From<ConversationSid> for ConversationRef {
    fn from(sid: ConversationSid) -> Self {
        ConversationRef::Sid(sid)
    }
}

impl From<&ConversationSid> for ConversationRef {
    fn from(sid: &ConversationSid) -> Self {
        ConversationRef::Sid(*sid)
    }
}

impl From<&str> for ConversationRef {
    /// A `CH…` SID if `s` parses as one, else a `unique_name`: the rule of
    /// Twilio's `{Sid}` path parameter, which takes either.
    fn from(s: &str) -> Self {
        match s.parse::<ConversationSid>() {
            Ok(sid) => ConversationRef::Sid(sid),
            Err(_) => ConversationRef::UniqueName(s.to_string()),
        }
    }
}

impl From<String> for ConversationRef {
    /// As `From<&str>`.
    fn from(s: String) -> Self {
        ConversationRef::from(s.as_str())
    }
}

impl std::fmt::Display for ConversationRef {
    /// The SID, or the unique name as given.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConversationRef::Sid(sid) => sid.fmt(f),
            ConversationRef::UniqueName(name) => f.write_str(name),
        }
    }
}

/// Builder methods that set an optional field: `name(value)` sets
/// `self.name` (or `self.spec.name` with the `spec:` prefix) to
/// `Some(value.into())`.
macro_rules! setters {
    (spec: $($(#[doc = $doc:literal])+ $name:ident: $ty:ty),* $(,)?) => {$(
        $(#[doc = $doc])+
        pub fn $name(mut self, value: impl Into<$ty>) -> Self {
            self.spec.$name = Some(value.into());
            self
        }
    )*};
    ($($(#[doc = $doc:literal])+ $name:ident: $ty:ty),* $(,)?) => {$(
        $(#[doc = $doc])+
        pub fn $name(mut self, value: impl Into<$ty>) -> Self {
            self.$name = Some(value.into());
            self
        }
    )*};
}

/// The fields of a new conversation. Every field is optional; the
/// builder methods set them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ConversationSpec {
    /// Display name.
    pub friendly_name: Option<String>,
    /// Unique within the service; addresses the conversation like its SID.
    pub unique_name: Option<String>,
    /// JSON attributes.
    pub attributes: Option<String>,
    /// Initial state (default `active`).
    pub state: Option<ConversationState>,
    /// State timers.
    pub timers: Timers,
    /// The Messaging Service for non-chat participants.
    pub messaging_service_sid: Option<String>,
}

impl ConversationSpec {
    setters! {
        /// Sets the display name.
        friendly_name: String,
        /// Sets the service-unique name.
        unique_name: String,
        /// Sets the JSON attributes (validated by the engine).
        attributes: String,
        /// Sets the initial state.
        state: ConversationState,
        /// Sets the Messaging Service for non-chat participants.
        messaging_service_sid: String,
    }

    /// Sets the state timers.
    pub fn timers(mut self, timers: Timers) -> Self {
        self.timers = timers;
        self
    }
}

/// The fields of a new participant: [`ParticipantSpec::chat`] or
/// [`ParticipantSpec::binding`], then the optional fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantSpec {
    /// Chat identity or messaging binding.
    pub kind: ParticipantKind,
    /// JSON attributes.
    pub attributes: Option<String>,
    /// Conversation role; the service's default conversation role if `None`.
    pub role_sid: Option<RoleSid>,
}

impl ParticipantSpec {
    /// A chat participant: the user `identity` (created if new).
    pub fn chat(identity: impl Into<String>) -> Self {
        Self::of(ParticipantKind::Chat {
            identity: identity.into(),
            projected_address: None,
        })
    }

    /// A non-chat participant (SMS, WhatsApp, …) reached at `address`
    /// through `proxy_address`, the "window" messages are sent from.
    pub fn binding(address: impl Into<String>, proxy_address: impl Into<String>) -> Self {
        Self::of(ParticipantKind::Messaging(MessagingBinding {
            address: address.into(),
            proxy_address: proxy_address.into(),
            projected_address: None,
        }))
    }

    /// A participant of the given kind, with no attributes and the default
    /// role.
    pub fn of(kind: ParticipantKind) -> Self {
        ParticipantSpec {
            kind,
            attributes: None,
            role_sid: None,
        }
    }

    setters! {
        /// Sets the JSON attributes (validated by the engine).
        attributes: String,
        /// Sets the conversation role.
        role_sid: RoleSid,
    }

    /// Sets the projected address (group MMS), for either kind.
    pub fn projected_address(mut self, address: impl Into<String>) -> Self {
        let slot = match &mut self.kind {
            ParticipantKind::Chat {
                projected_address, ..
            } => projected_address,
            ParticipantKind::Messaging(binding) => &mut binding.projected_address,
        };
        *slot = Some(address.into());
        self
    }
}

/// Create a service with its default roles. Returns its SID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateService {
    /// Display name.
    pub friendly_name: String,
}

impl CreateService {
    /// A service named `friendly_name`.
    pub fn new(friendly_name: impl Into<String>) -> Self {
        CreateService {
            friendly_name: friendly_name.into(),
        }
    }
}

/// Rename a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateService {
    /// The service.
    pub service: ServiceSid,
    /// New display name.
    pub friendly_name: String,
}

impl UpdateService {
    /// Renames `service` to `friendly_name`.
    pub fn new(service: ServiceSid, friendly_name: impl Into<String>) -> Self {
        UpdateService {
            service,
            friendly_name: friendly_name.into(),
        }
    }
}

/// Delete a service and, logically, everything in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteService {
    /// The service.
    pub service: ServiceSid,
}

impl DeleteService {
    /// Deletes `service`.
    pub fn new(service: ServiceSid) -> Self {
        DeleteService { service }
    }
}

/// Create a conversation. Returns its SID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateConversation {
    /// The service.
    pub service: ServiceSid,
    /// Its fields.
    pub spec: ConversationSpec,
}

impl CreateConversation {
    /// A conversation in `service` with no optional fields set.
    pub fn new(service: ServiceSid) -> Self {
        CreateConversation {
            service,
            spec: ConversationSpec::default(),
        }
    }

    /// A conversation in `service` with the fields of `spec`.
    pub fn with_spec(service: ServiceSid, spec: ConversationSpec) -> Self {
        CreateConversation { service, spec }
    }

    setters! { spec:
        /// Sets the display name.
        friendly_name: String,
        /// Sets the service-unique name.
        unique_name: String,
        /// Sets the JSON attributes (validated by the engine).
        attributes: String,
        /// Sets the initial state.
        state: ConversationState,
    }
}

/// Update a conversation; `None` fields are left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateConversation {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationRef,
    /// New display name.
    pub friendly_name: Option<String>,
    /// New unique name.
    pub unique_name: Option<String>,
    /// New JSON attributes.
    pub attributes: Option<String>,
    /// New state.
    pub state: Option<ConversationState>,
    /// New timers.
    pub timers: Option<Timers>,
}

impl UpdateConversation {
    /// Changes nothing yet: set the fields to change.
    pub fn new(service: ServiceSid, conversation: impl Into<ConversationRef>) -> Self {
        UpdateConversation {
            service,
            conversation: conversation.into(),
            friendly_name: None,
            unique_name: None,
            attributes: None,
            state: None,
            timers: None,
        }
    }

    setters! {
        /// Sets a new display name.
        friendly_name: String,
        /// Sets a new unique name.
        unique_name: String,
        /// Sets new JSON attributes.
        attributes: String,
        /// Sets a new state.
        state: ConversationState,
        /// Sets new timers.
        timers: Timers,
    }
}

/// Delete a conversation with its participants and messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteConversation {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationRef,
}

impl DeleteConversation {
    /// Deletes `conversation`.
    pub fn new(service: ServiceSid, conversation: impl Into<ConversationRef>) -> Self {
        DeleteConversation {
            service,
            conversation: conversation.into(),
        }
    }
}

/// Create a conversation and up to 10 participants atomically. Returns the
/// conversation's and the participants' SIDs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateConversationWithParticipants {
    /// The service.
    pub service: ServiceSid,
    /// The conversation's fields.
    pub spec: ConversationSpec,
    /// The participants.
    pub participants: Vec<ParticipantSpec>,
}

impl CreateConversationWithParticipants {
    /// A conversation of `spec` in `service` with no participants yet.
    pub fn new(service: ServiceSid, spec: ConversationSpec) -> Self {
        CreateConversationWithParticipants {
            service,
            spec,
            participants: Vec::new(),
        }
    }

    /// Adds a participant.
    pub fn participant(mut self, participant: ParticipantSpec) -> Self {
        self.participants.push(participant);
        self
    }
}

/// Add a participant (creating the User for a new chat identity). Returns
/// its SID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddParticipant {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationRef,
    /// The participant.
    pub participant: ParticipantSpec,
}

impl AddParticipant {
    /// Adds `participant` to `conversation`.
    pub fn new(
        service: ServiceSid,
        conversation: impl Into<ConversationRef>,
        participant: ParticipantSpec,
    ) -> Self {
        AddParticipant {
            service,
            conversation: conversation.into(),
            participant,
        }
    }
}

/// Update a participant; `None` fields are left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateParticipant {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationRef,
    /// The participant.
    pub participant: ParticipantSid,
    /// New JSON attributes.
    pub attributes: Option<String>,
    /// New conversation role.
    pub role_sid: Option<RoleSid>,
    /// New read horizon (set, clamped to the last index).
    pub last_read_message_index: Option<u64>,
    /// New read timestamp.
    pub last_read_timestamp: Option<TimestampMicros>,
}

impl UpdateParticipant {
    /// Changes nothing yet: set the fields to change.
    pub fn new(
        service: ServiceSid,
        conversation: impl Into<ConversationRef>,
        participant: ParticipantSid,
    ) -> Self {
        UpdateParticipant {
            service,
            conversation: conversation.into(),
            participant,
            attributes: None,
            role_sid: None,
            last_read_message_index: None,
            last_read_timestamp: None,
        }
    }

    setters! {
        /// Sets new JSON attributes.
        attributes: String,
        /// Sets a new conversation role.
        role_sid: RoleSid,
        /// Sets the read horizon (clamped to the last message index).
        last_read_message_index: u64,
        /// Sets the read timestamp.
        last_read_timestamp: TimestampMicros,
    }
}

/// Remove a participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveParticipant {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationRef,
    /// The participant.
    pub participant: ParticipantSid,
}

impl RemoveParticipant {
    /// Removes `participant` from `conversation`.
    pub fn new(
        service: ServiceSid,
        conversation: impl Into<ConversationRef>,
        participant: ParticipantSid,
    ) -> Self {
        RemoveParticipant {
            service,
            conversation: conversation.into(),
            participant,
        }
    }
}

/// Post a message. Returns its SID and index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostMessage {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationRef,
    /// Author identity or address; `system` if `None`.
    pub author: Option<String>,
    /// Text body.
    pub body: Option<String>,
    /// Up to 10 media descriptors.
    pub media: Vec<Media>,
    /// JSON attributes.
    pub attributes: Option<String>,
}

impl PostMessage {
    /// An empty message in `conversation`, by `system`: set a body or
    /// media (the engine refuses a message with neither).
    pub fn new(service: ServiceSid, conversation: impl Into<ConversationRef>) -> Self {
        PostMessage {
            service,
            conversation: conversation.into(),
            author: None,
            body: None,
            media: Vec::new(),
            attributes: None,
        }
    }

    setters! {
        /// Sets the author (an identity or an address).
        author: String,
        /// Sets the text body.
        body: String,
        /// Sets the JSON attributes.
        attributes: String,
    }

    /// Attaches one more media item.
    pub fn media(mut self, media: Media) -> Self {
        self.media.push(media);
        self
    }
}

/// Edit a message's body and/or attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditMessage {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationRef,
    /// The message.
    pub message: MessageSid,
    /// New body.
    pub body: Option<String>,
    /// New JSON attributes.
    pub attributes: Option<String>,
}

impl EditMessage {
    /// Changes nothing yet: set the body and/or attributes.
    pub fn new(
        service: ServiceSid,
        conversation: impl Into<ConversationRef>,
        message: MessageSid,
    ) -> Self {
        EditMessage {
            service,
            conversation: conversation.into(),
            message,
            body: None,
            attributes: None,
        }
    }

    setters! {
        /// Sets a new body.
        body: String,
        /// Sets new JSON attributes.
        attributes: String,
    }
}

/// Delete a message. Its index is never reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteMessage {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationRef,
    /// The message.
    pub message: MessageSid,
}

impl DeleteMessage {
    /// Deletes `message`.
    pub fn new(
        service: ServiceSid,
        conversation: impl Into<ConversationRef>,
        message: MessageSid,
    ) -> Self {
        DeleteMessage {
            service,
            conversation: conversation.into(),
            message,
        }
    }
}

/// Move a participant's read horizon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateReadHorizon {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationRef,
    /// The participant.
    pub participant: ParticipantSid,
    /// The new last-read index (clamped to the last message index);
    /// `None` marks everything unread.
    pub last_read_message_index: Option<u64>,
    /// Set, or advance only.
    pub mode: HorizonMode,
}

impl UpdateReadHorizon {
    /// Moves the horizon forward to `index`, never back (Twilio's
    /// `advanceLastReadMessageIndex`).
    pub fn advance(
        service: ServiceSid,
        conversation: impl Into<ConversationRef>,
        participant: ParticipantSid,
        index: u64,
    ) -> Self {
        Self::with_mode(
            service,
            conversation,
            participant,
            Some(index),
            HorizonMode::Advance,
        )
    }

    /// Sets the horizon to `index`, even backwards; `None` marks everything
    /// unread (Twilio's `setLastReadMessageIndex`).
    pub fn set(
        service: ServiceSid,
        conversation: impl Into<ConversationRef>,
        participant: ParticipantSid,
        index: Option<u64>,
    ) -> Self {
        Self::with_mode(service, conversation, participant, index, HorizonMode::Set)
    }

    fn with_mode(
        service: ServiceSid,
        conversation: impl Into<ConversationRef>,
        participant: ParticipantSid,
        last_read_message_index: Option<u64>,
        mode: HorizonMode,
    ) -> Self {
        UpdateReadHorizon {
            service,
            conversation: conversation.into(),
            participant,
            last_read_message_index,
            mode,
        }
    }
}

/// Create a user. Returns its SID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateUser {
    /// The service.
    pub service: ServiceSid,
    /// Unique identity within the service.
    pub identity: String,
    /// Display name.
    pub friendly_name: Option<String>,
    /// JSON attributes.
    pub attributes: Option<String>,
    /// Service role; the default service role if `None`.
    pub role_sid: Option<RoleSid>,
}

impl CreateUser {
    /// The user `identity`, with the default service role.
    pub fn new(service: ServiceSid, identity: impl Into<String>) -> Self {
        CreateUser {
            service,
            identity: identity.into(),
            friendly_name: None,
            attributes: None,
            role_sid: None,
        }
    }

    setters! {
        /// Sets the display name.
        friendly_name: String,
        /// Sets the JSON attributes.
        attributes: String,
        /// Sets the service role.
        role_sid: RoleSid,
    }
}

/// Update a user; `None` fields are left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateUser {
    /// The service.
    pub service: ServiceSid,
    /// The user.
    pub user: UserSid,
    /// New display name.
    pub friendly_name: Option<String>,
    /// New JSON attributes.
    pub attributes: Option<String>,
    /// New service role.
    pub role_sid: Option<RoleSid>,
}

impl UpdateUser {
    /// Changes nothing yet: set the fields to change.
    pub fn new(service: ServiceSid, user: UserSid) -> Self {
        UpdateUser {
            service,
            user,
            friendly_name: None,
            attributes: None,
            role_sid: None,
        }
    }

    setters! {
        /// Sets a new display name.
        friendly_name: String,
        /// Sets new JSON attributes.
        attributes: String,
        /// Sets a new service role.
        role_sid: RoleSid,
    }
}

/// Delete a user (its participants stay, as in Twilio).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteUser {
    /// The service.
    pub service: ServiceSid,
    /// The user.
    pub user: UserSid,
}

impl DeleteUser {
    /// Deletes `user`.
    pub fn new(service: ServiceSid, user: UserSid) -> Self {
        DeleteUser { service, user }
    }
}

/// Set a user's notification level in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateUserConversation {
    /// The service.
    pub service: ServiceSid,
    /// The user.
    pub user: UserSid,
    /// The conversation.
    pub conversation: ConversationRef,
    /// The new level.
    pub notification_level: NotificationLevel,
}

impl UpdateUserConversation {
    /// Sets `user`'s level in `conversation` to `notification_level`.
    pub fn new(
        service: ServiceSid,
        user: UserSid,
        conversation: impl Into<ConversationRef>,
        notification_level: NotificationLevel,
    ) -> Self {
        UpdateUserConversation {
            service,
            user,
            conversation: conversation.into(),
            notification_level,
        }
    }
}

/// Create a role. Returns its SID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRole {
    /// The service.
    pub service: ServiceSid,
    /// Display name.
    pub friendly_name: String,
    /// Service or conversation role.
    pub role_type: RoleType,
    /// Permission list.
    pub permissions: Vec<Permission>,
}

impl CreateRole {
    /// A role named `friendly_name` of `role_type` granting `permissions`.
    pub fn new(
        service: ServiceSid,
        friendly_name: impl Into<String>,
        role_type: RoleType,
        permissions: impl Into<Vec<Permission>>,
    ) -> Self {
        CreateRole {
            service,
            friendly_name: friendly_name.into(),
            role_type,
            permissions: permissions.into(),
        }
    }
}

/// Replace a role's permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateRole {
    /// The service.
    pub service: ServiceSid,
    /// The role.
    pub role: RoleSid,
    /// New permission list.
    pub permissions: Vec<Permission>,
}

impl UpdateRole {
    /// Replaces `role`'s permissions with `permissions`.
    pub fn new(
        service: ServiceSid,
        role: RoleSid,
        permissions: impl Into<Vec<Permission>>,
    ) -> Self {
        UpdateRole {
            service,
            role,
            permissions: permissions.into(),
        }
    }
}

/// Delete a role that nobody uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRole {
    /// The service.
    pub service: ServiceSid,
    /// The role.
    pub role: RoleSid,
}

impl DeleteRole {
    /// Deletes `role`.
    pub fn new(service: ServiceSid, role: RoleSid) -> Self {
        DeleteRole { service, role }
    }
}

/// Create an address configuration. Returns its SID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateAddressConfiguration {
    /// The service.
    pub service: ServiceSid,
    /// Channel type.
    pub address_type: AddressType,
    /// The address (the proxy address inbound messages arrive at).
    pub address: String,
    /// Display name.
    pub friendly_name: Option<String>,
    /// Autocreation settings.
    pub auto_creation: AutoCreation,
}

impl CreateAddressConfiguration {
    /// A configuration for `address` on `address_type`, with autocreation
    /// off.
    pub fn new(service: ServiceSid, address_type: AddressType, address: impl Into<String>) -> Self {
        CreateAddressConfiguration {
            service,
            address_type,
            address: address.into(),
            friendly_name: None,
            auto_creation: AutoCreation::default(),
        }
    }

    setters! {
        /// Sets the display name.
        friendly_name: String,
    }

    /// Sets the autocreation settings.
    pub fn auto_creation(mut self, auto_creation: AutoCreation) -> Self {
        self.auto_creation = auto_creation;
        self
    }
}

/// Update an address configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateAddressConfiguration {
    /// The service.
    pub service: ServiceSid,
    /// The configuration.
    pub address_configuration: AddressConfigurationSid,
    /// New display name.
    pub friendly_name: Option<String>,
    /// New autocreation settings.
    pub auto_creation: Option<AutoCreation>,
}

impl UpdateAddressConfiguration {
    /// Changes nothing yet: set the fields to change.
    pub fn new(service: ServiceSid, address_configuration: AddressConfigurationSid) -> Self {
        UpdateAddressConfiguration {
            service,
            address_configuration,
            friendly_name: None,
            auto_creation: None,
        }
    }

    setters! {
        /// Sets a new display name.
        friendly_name: String,
        /// Sets new autocreation settings.
        auto_creation: AutoCreation,
    }
}

/// Delete an address configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteAddressConfiguration {
    /// The service.
    pub service: ServiceSid,
    /// The configuration.
    pub address_configuration: AddressConfigurationSid,
}

impl DeleteAddressConfiguration {
    /// Deletes `address_configuration`.
    pub fn new(service: ServiceSid, address_configuration: AddressConfigurationSid) -> Self {
        DeleteAddressConfiguration {
            service,
            address_configuration,
        }
    }
}

/// Record a channel's delivery status for a message to a participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordDeliveryReceipt {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationRef,
    /// The message.
    pub message: MessageSid,
    /// The non-chat participant it was sent to.
    pub participant: ParticipantSid,
    /// The status.
    pub status: DeliveryStatus,
    /// Channel error code, for failed/undelivered.
    pub error_code: Option<u32>,
    /// The channel's own message id.
    pub channel_message_sid: Option<String>,
}

impl RecordDeliveryReceipt {
    /// `message` reached `participant` with `status`.
    pub fn new(
        service: ServiceSid,
        conversation: impl Into<ConversationRef>,
        message: MessageSid,
        participant: ParticipantSid,
        status: DeliveryStatus,
    ) -> Self {
        RecordDeliveryReceipt {
            service,
            conversation: conversation.into(),
            message,
            participant,
            status,
            error_code: None,
            channel_message_sid: None,
        }
    }

    setters! {
        /// Sets the channel's error code (failed/undelivered).
        error_code: u32,
        /// Sets the channel's own message id.
        channel_message_sid: String,
    }
}

/// Set the service's default roles (Twilio's service Configuration);
/// `None` fields are left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateServiceConfiguration {
    /// The service.
    pub service: ServiceSid,
    /// Role given to the creator of a conversation.
    pub default_conversation_creator_role_sid: Option<RoleSid>,
    /// Role given to other conversation participants.
    pub default_conversation_role_sid: Option<RoleSid>,
    /// Service role given to new users.
    pub default_chat_service_role_sid: Option<RoleSid>,
}

impl UpdateServiceConfiguration {
    /// Changes nothing yet: set the roles to change.
    pub fn new(service: ServiceSid) -> Self {
        UpdateServiceConfiguration {
            service,
            default_conversation_creator_role_sid: None,
            default_conversation_role_sid: None,
            default_chat_service_role_sid: None,
        }
    }

    setters! {
        /// Sets the role given to the creator of a conversation.
        default_conversation_creator_role_sid: RoleSid,
        /// Sets the role given to other conversation participants.
        default_conversation_role_sid: RoleSid,
        /// Sets the service role given to new users.
        default_chat_service_role_sid: RoleSid,
    }
}

/// An inbound message from a channel: routed by its (proxy = `to`,
/// address = `from`) binding, or autocreating a conversation as the
/// Address Configuration for `to` allows. Atomic: the conversation,
/// participant and message are appended together or not at all.
///
/// Hosts usually call the engine's `receive_inbound`, which also derives
/// the command id from the channel's message id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiveInbound {
    /// The service.
    pub service: ServiceSid,
    /// The channel it arrived on.
    pub channel: AddressType,
    /// The sender's address (the binding's `address`).
    pub from: String,
    /// The address it was sent to (the binding's `proxy_address`).
    pub to: String,
    /// Text body.
    pub body: Option<String>,
    /// Media descriptors.
    pub media: Vec<Media>,
}

impl ReceiveInbound {
    /// A message from `from` to `to` on `channel`, with no body or media
    /// yet.
    pub fn new(
        service: ServiceSid,
        channel: AddressType,
        from: impl Into<String>,
        to: impl Into<String>,
    ) -> Self {
        ReceiveInbound {
            service,
            channel,
            from: from.into(),
            to: to.into(),
            body: None,
            media: Vec::new(),
        }
    }

    setters! {
        /// Sets the text body.
        body: String,
    }

    /// Sets the media descriptors.
    pub fn media(mut self, media: Vec<Media>) -> Self {
        self.media = media;
        self
    }
}

/// Record that an outbound send to a non-chat participant failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordDeliveryAttemptFailed {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationSid,
    /// The message.
    pub message: MessageSid,
    /// The recipient participant.
    pub participant: ParticipantSid,
    /// Which attempt failed, from 1.
    pub attempt: u32,
    /// What the channel adapter said.
    pub error: String,
}

/// Replace the service's post-event webhook configuration (Twilio's
/// Service Webhook configuration `PostWebhookUrl`, `Method`, `Filters`),
/// with the secret its requests are signed with. Every field is the full
/// new value: `UpdateServiceWebhooks::new(service)` alone turns post-event
/// webhooks off.
///
/// `filters` are Twilio's names (`onMessageAdded`, …), checked when the
/// command is decided (an unknown name refuses the command); the signing
/// secret is stored in the log (see [`crate::ServiceWebhooks`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateServiceWebhooks {
    /// The service.
    pub service: ServiceSid,
    /// Where post-event webhooks go (`http://` or `https://`).
    pub post_webhook_url: Option<String>,
    /// How the URL is called (default `POST`).
    pub method: WebhookMethod,
    /// Twilio's filter names of the events to call it for.
    pub filters: Vec<String>,
    /// The secret requests are signed with (`X-Twilio-Signature`).
    pub signing_secret: Option<String>,
}

impl UpdateServiceWebhooks {
    /// No post-event webhook: set the URL and filters to have one.
    pub fn new(service: ServiceSid) -> Self {
        UpdateServiceWebhooks {
            service,
            post_webhook_url: None,
            method: WebhookMethod::Post,
            filters: Vec::new(),
            signing_secret: None,
        }
    }

    setters! {
        /// Sets where post-event webhooks go.
        post_webhook_url: String,
        /// Sets the secret requests are signed with.
        signing_secret: String,
    }

    /// Sets how the URL is called.
    pub fn method(mut self, method: WebhookMethod) -> Self {
        self.method = method;
        self
    }

    /// Sets the filters, by Twilio's names (`onMessageAdded`, …).
    pub fn filters<S: Into<String>>(mut self, filters: impl IntoIterator<Item = S>) -> Self {
        self.filters = filters.into_iter().map(Into::into).collect();
        self
    }
}

/// Add a conversation-scoped webhook (Twilio's conversation Webhook
/// resource): a [`WebhookTarget::Webhook`] called for the events its
/// `filters` name, or a [`WebhookTarget::Trigger`] called with
/// `onMessageAdded` when a new message holds one of its `triggers`
/// keywords. Filters are Twilio's names, checked when the command is
/// decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateConversationWebhook {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationRef,
    /// What it does.
    pub target: WebhookTarget,
    /// Where it calls (`Configuration.Url`).
    pub url: String,
    /// How it calls (`Configuration.Method`, default `POST`).
    pub method: WebhookMethod,
    /// `Configuration.Filters`, for a webhook.
    pub filters: Vec<String>,
    /// `Configuration.Triggers`, for a trigger.
    pub triggers: Vec<String>,
}

impl CreateConversationWebhook {
    /// A webhook with `target` calling `url` by POST, with no filters or
    /// keywords yet.
    pub fn new(
        service: ServiceSid,
        conversation: impl Into<ConversationRef>,
        target: WebhookTarget,
        url: impl Into<String>,
    ) -> Self {
        CreateConversationWebhook {
            service,
            conversation: conversation.into(),
            target,
            url: url.into(),
            method: WebhookMethod::Post,
            filters: Vec::new(),
            triggers: Vec::new(),
        }
    }

    /// Sets how it calls.
    pub fn method(mut self, method: WebhookMethod) -> Self {
        self.method = method;
        self
    }

    /// Sets the filters, by Twilio's names (`onMessageAdded`, …).
    pub fn filters<S: Into<String>>(mut self, filters: impl IntoIterator<Item = S>) -> Self {
        self.filters = filters.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the trigger keywords.
    pub fn triggers<S: Into<String>>(mut self, triggers: impl IntoIterator<Item = S>) -> Self {
        self.triggers = triggers.into_iter().map(Into::into).collect();
        self
    }
}

/// Delete a conversation-scoped webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteConversationWebhook {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationRef,
    /// The webhook.
    pub webhook: WebhookSid,
}

impl DeleteConversationWebhook {
    /// Deletes `webhook` of `conversation`.
    pub fn new(
        service: ServiceSid,
        conversation: impl Into<ConversationRef>,
        webhook: WebhookSid,
    ) -> Self {
        DeleteConversationWebhook {
            service,
            conversation: conversation.into(),
            webhook,
        }
    }
}

/// Add a conversation-scoped webhook with Twilio's `Target=studio`
/// (`Configuration.FlowSid`, `Configuration.ReplayAfter`): it hands the
/// conversation to the Studio flow `flow_sid`, a reactor the host
/// registers under that SID (`Engine::start_studio_flow`). Delete it with
/// [`DeleteConversationWebhook`]. Returns its SID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateConversationStudioWebhook {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationRef,
    /// `Configuration.FlowSid`.
    pub flow_sid: FlowSid,
    /// `Configuration.ReplayAfter`: hand the flow the messages already in
    /// the conversation with an index above this one.
    pub replay_after: Option<u64>,
}

impl CreateConversationStudioWebhook {
    /// A Studio webhook handing `conversation` to `flow_sid`, with no
    /// replay.
    pub fn new(
        service: ServiceSid,
        conversation: impl Into<ConversationRef>,
        flow_sid: FlowSid,
    ) -> Self {
        CreateConversationStudioWebhook {
            service,
            conversation: conversation.into(),
            flow_sid,
            replay_after: None,
        }
    }

    /// Sets `Configuration.ReplayAfter`.
    pub fn replay_after(mut self, index: u64) -> Self {
        self.replay_after = Some(index);
        self
    }
}

/// Update a conversation-scoped webhook in place (Twilio's
/// UpdateConversationScopedWebhook): each field set replaces that part of
/// its configuration, each absent one stays. Its target never changes:
/// `url`, `method`, `filters` and `triggers` apply to a URL webhook or
/// trigger, `flow_sid` to a Studio webhook; a field of the other kind is
/// refused when the command is decided, as are the checks of
/// [`CreateConversationWebhook`] on the resulting configuration. Returns
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateConversationWebhook {
    /// The service.
    pub service: ServiceSid,
    /// The conversation.
    pub conversation: ConversationRef,
    /// The webhook.
    pub webhook: WebhookSid,
    /// New `Configuration.Url`.
    pub url: Option<String>,
    /// New `Configuration.Method`.
    pub method: Option<WebhookMethod>,
    /// New `Configuration.Filters`, by Twilio's names.
    pub filters: Option<Vec<String>>,
    /// New `Configuration.Triggers`.
    pub triggers: Option<Vec<String>>,
    /// New `Configuration.FlowSid`.
    pub flow_sid: Option<FlowSid>,
}

impl UpdateConversationWebhook {
    /// An update of `webhook` in `conversation` that changes nothing yet.
    pub fn new(
        service: ServiceSid,
        conversation: impl Into<ConversationRef>,
        webhook: WebhookSid,
    ) -> Self {
        UpdateConversationWebhook {
            service,
            conversation: conversation.into(),
            webhook,
            url: None,
            method: None,
            filters: None,
            triggers: None,
            flow_sid: None,
        }
    }

    /// Sets the new URL.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Sets how it calls.
    pub fn method(mut self, method: WebhookMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Sets the new filters, by Twilio's names (`onMessageAdded`, …).
    pub fn filters<S: Into<String>>(mut self, filters: impl IntoIterator<Item = S>) -> Self {
        self.filters = Some(filters.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the new trigger keywords.
    pub fn triggers<S: Into<String>>(mut self, triggers: impl IntoIterator<Item = S>) -> Self {
        self.triggers = Some(triggers.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the new Studio flow.
    pub fn flow_sid(mut self, flow_sid: FlowSid) -> Self {
        self.flow_sid = Some(flow_sid);
        self
    }
}

/// Declares [`Command`]: one newtype variant per command struct, in this
/// order (the order is the serialised form: variant indices are part of a
/// command's canonical bytes, hence of its idempotency fingerprint, so
/// variants are only ever appended). `account:` commands address no
/// service; every other command struct has a `service` field, its
/// idempotency scope.
macro_rules! commands {
    (account: $account:ident; service: $($name:ident),* $(,)?) => {
        /// Every command the engine accepts, in its serialisable form: one
        /// newtype variant per command struct, each with exactly one handler.
        ///
        /// Build a command with its struct ([`PostMessage::new`], …); every
        /// struct converts into this enum with `From`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[allow(missing_docs)] // each variant is documented on its struct
        pub enum Command {
            $account($account),
            $($name($name),)*
        }

        impl From<$account> for Command {
            fn from(command: $account) -> Self {
                Command::$account(command)
            }
        }

        $(impl From<$name> for Command {
            fn from(command: $name) -> Self {
                Command::$name(command)
            }
        })*

        impl Command {
            /// The scope its command id is unique in: the service the command
            /// addresses, or `None` for the one account-level scope of commands
            /// that address no service (`CreateService`).
            ///
            /// Two commands with the same id in different scopes are unrelated: a
            /// key one service used never deduplicates, blocks or reveals a command
            /// of another. The scope is re-derived from the log by
            /// [`idempotency_scope_of_first_record`]; the two must agree for every
            /// command (engine-core's tests check it), so a new account-level
            /// command needs a rule there too.
            pub fn idempotency_scope(&self) -> Option<ServiceSid> {
                match self {
                    Command::$account(_) => None,
                    $(Command::$name(command) => Some(command.service),)*
                }
            }

            /// The variant's name, e.g. `PostMessage`.
            pub fn type_name(&self) -> &'static str {
                match self {
                    Command::$account(_) => stringify!($account),
                    $(Command::$name(_) => stringify!($name),)*
                }
            }
        }
    };
}

commands! {
    account: CreateService;
    service:
    UpdateService,
    DeleteService,
    CreateConversation,
    UpdateConversation,
    DeleteConversation,
    CreateConversationWithParticipants,
    AddParticipant,
    UpdateParticipant,
    RemoveParticipant,
    PostMessage,
    EditMessage,
    DeleteMessage,
    UpdateReadHorizon,
    CreateUser,
    UpdateUser,
    DeleteUser,
    UpdateUserConversation,
    CreateRole,
    UpdateRole,
    DeleteRole,
    CreateAddressConfiguration,
    UpdateAddressConfiguration,
    DeleteAddressConfiguration,
    RecordDeliveryReceipt,
    UpdateServiceConfiguration,
    ReceiveInbound,
    RecordDeliveryAttemptFailed,
    UpdateServiceWebhooks,
    CreateConversationWebhook,
    DeleteConversationWebhook,
    CreateConversationStudioWebhook,
    UpdateConversationWebhook,
}

impl Command {
    /// The service this command acts in; `None` only for `CreateService`.
    pub fn service(&self) -> Option<ServiceSid> {
        self.idempotency_scope()
    }
}

/// The idempotency scope of the command that wrote a run of records,
/// re-derived from the run's first record (the service in its header, and
/// its event): a run that starts with [`Event::ServiceCreated`] was written
/// by an account-level command (`None`); any other run by a command
/// addressing the record's service. This is [`Command::idempotency_scope`]
/// seen from the log, for re-deriving the idempotency index.
pub fn idempotency_scope_of_first_record(
    service_sid: &ServiceSid,
    first_event: &Event,
) -> Option<ServiceSid> {
    match first_event {
        Event::ServiceCreated { .. } => None,
        _ => Some(*service_sid),
    }
}

/// A command's idempotency fingerprint (32 bytes of blake3): what a replay
/// of a command id must match to count as the same command.
pub type Fingerprint = [u8; 32];

/// The blake3 key-derivation context of [`idempotency_fingerprint`]:
/// fingerprints never collide with any other hash the project computes.
const FINGERPRINT_CONTEXT: &str = "colloquy idempotency fingerprint v1";

/// The fingerprint of `command` as issued in `scope` by `acting_identity`
/// (`None`: the trusted host): blake3 over the scope and the canonical
/// bincode bytes of (acting identity, command). Equal inputs give equal
/// fingerprints in every process and build, so a retry is recognised.
///
/// Errors: [`CodecError::Malformed`] if the command cannot be encoded
/// (never for the derived `Serialize` of this crate's types; the error is
/// typed rather than a panic all the same).
pub fn idempotency_fingerprint<T: Serialize + ?Sized>(
    scope: Option<&ServiceSid>,
    acting_identity: Option<&str>,
    command: &T,
) -> Result<Fingerprint, CodecError> {
    let mut hasher = blake3::Hasher::new_derive_key(FINGERPRINT_CONTEXT);
    match scope {
        None => hasher.update(&[0]),
        Some(service) => hasher.update(&[1]).update(service.as_bytes()),
    };
    bincode::serde::encode_into_std_write(
        (acting_identity, command),
        &mut hasher,
        bincode::config::standard(),
    )
    .map_err(|e| CodecError::Malformed(e.to_string()))?;
    Ok(*hasher.finalize().as_bytes())
}

/// What a state machine's `decide` (the event log's hook) sees besides the command.
#[derive(Debug, Clone, Copy)]
pub struct DecideContext {
    /// The position the first produced event will get.
    pub next_position: u64,
    /// The `recorded_at` every produced record will carry, in microseconds.
    pub now_micros: u64,
    /// The command's idempotency key.
    pub command_id: CommandId,
}

/// The events one command produces, all in one service.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The service every event belongs to.
    pub service_sid: ServiceSid,
    /// The conversation stream the command targets, for the optimistic
    /// concurrency check (`None`: the service-level stream).
    pub stream: Option<ConversationSid>,
    /// The events, appended in order and atomically (possibly none).
    pub events: Vec<Event>,
}
