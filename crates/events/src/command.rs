//! Commands: what a caller asks the engine to do.
//!
//! A command is an intent. The engine validates it against the read models
//! and, if it holds, turns it into one or more [`Event`](crate::Event)s that
//! are appended to the log in one batch. Optional fields in `Update*`
//! commands mean "leave unchanged". JSON `attributes` travel as text and are
//! validated by the engine.

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::model::*;
use crate::record::CodecError;
use crate::sid::*;

/// A command plus the metadata the log needs to apply it exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandEnvelope {
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
    pub command: Command,
}

/// A 128-bit idempotency key chosen by the caller (or generated).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub struct CommandId(pub [u8; 16]);

impl CommandId {
    /// Derives a command id from caller-chosen bytes (e.g. an HTTP
    /// `I-Twilio-Idempotency-Token`).
    pub fn from_key(key: &[u8]) -> Self {
        let mut out = [0u8; 16];
        out.copy_from_slice(&blake3::hash(key).as_bytes()[..16]);
        Self(out)
    }
}

impl std::fmt::Display for CommandId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
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

/// The fields of a new conversation.
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

/// The fields of a new participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantSpec {
    /// Chat identity or messaging binding.
    pub kind: ParticipantKind,
    /// JSON attributes.
    pub attributes: Option<String>,
    /// Conversation role; the service's default conversation role if `None`.
    pub role_sid: Option<RoleSid>,
}

/// Every command the engine accepts. Each variant has exactly one handler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Create a service with its default roles.
    CreateService {
        /// Display name.
        friendly_name: String,
    },
    /// Rename a service.
    UpdateService {
        /// The service.
        service: ServiceSid,
        /// New display name.
        friendly_name: String,
    },
    /// Delete a service and, logically, everything in it.
    DeleteService {
        /// The service.
        service: ServiceSid,
    },
    /// Create a conversation.
    CreateConversation {
        /// The service.
        service: ServiceSid,
        /// Its fields.
        spec: ConversationSpec,
    },
    /// Update a conversation; `None` fields are left unchanged.
    UpdateConversation {
        /// The service.
        service: ServiceSid,
        /// The conversation.
        conversation: ConversationRef,
        /// New display name.
        friendly_name: Option<String>,
        /// New unique name.
        unique_name: Option<String>,
        /// New JSON attributes.
        attributes: Option<String>,
        /// New state.
        state: Option<ConversationState>,
        /// New timers.
        timers: Option<Timers>,
    },
    /// Delete a conversation with its participants and messages.
    DeleteConversation {
        /// The service.
        service: ServiceSid,
        /// The conversation.
        conversation: ConversationRef,
    },
    /// Create a conversation and up to 10 participants atomically.
    CreateConversationWithParticipants {
        /// The service.
        service: ServiceSid,
        /// The conversation's fields.
        spec: ConversationSpec,
        /// The participants.
        participants: Vec<ParticipantSpec>,
    },
    /// Add a participant (creating the User for a new chat identity).
    AddParticipant {
        /// The service.
        service: ServiceSid,
        /// The conversation.
        conversation: ConversationRef,
        /// The participant.
        participant: ParticipantSpec,
    },
    /// Update a participant; `None` fields are left unchanged.
    UpdateParticipant {
        /// The service.
        service: ServiceSid,
        /// The conversation.
        conversation: ConversationRef,
        /// The participant.
        participant: ParticipantSid,
        /// New JSON attributes.
        attributes: Option<String>,
        /// New conversation role.
        role_sid: Option<RoleSid>,
        /// New read horizon (set, clamped to the last index).
        last_read_message_index: Option<u64>,
        /// New read timestamp.
        last_read_timestamp: Option<TimestampMicros>,
    },
    /// Remove a participant.
    RemoveParticipant {
        /// The service.
        service: ServiceSid,
        /// The conversation.
        conversation: ConversationRef,
        /// The participant.
        participant: ParticipantSid,
    },
    /// Post a message.
    PostMessage {
        /// The service.
        service: ServiceSid,
        /// The conversation.
        conversation: ConversationRef,
        /// Author identity or address; `system` if `None`.
        author: Option<String>,
        /// Text body.
        body: Option<String>,
        /// Up to 10 media descriptors.
        media: Vec<Media>,
        /// JSON attributes.
        attributes: Option<String>,
    },
    /// Edit a message's body and/or attributes.
    EditMessage {
        /// The service.
        service: ServiceSid,
        /// The conversation.
        conversation: ConversationRef,
        /// The message.
        message: MessageSid,
        /// New body.
        body: Option<String>,
        /// New JSON attributes.
        attributes: Option<String>,
    },
    /// Delete a message. Its index is never reused.
    DeleteMessage {
        /// The service.
        service: ServiceSid,
        /// The conversation.
        conversation: ConversationRef,
        /// The message.
        message: MessageSid,
    },
    /// Move a participant's read horizon.
    UpdateReadHorizon {
        /// The service.
        service: ServiceSid,
        /// The conversation.
        conversation: ConversationRef,
        /// The participant.
        participant: ParticipantSid,
        /// The new last-read index (clamped to the last message index);
        /// `None` marks everything unread.
        last_read_message_index: Option<u64>,
        /// Set, or advance only.
        mode: HorizonMode,
    },
    /// Create a user.
    CreateUser {
        /// The service.
        service: ServiceSid,
        /// Unique identity within the service.
        identity: String,
        /// Display name.
        friendly_name: Option<String>,
        /// JSON attributes.
        attributes: Option<String>,
        /// Service role; the default service role if `None`.
        role_sid: Option<RoleSid>,
    },
    /// Update a user; `None` fields are left unchanged.
    UpdateUser {
        /// The service.
        service: ServiceSid,
        /// The user.
        user: UserSid,
        /// New display name.
        friendly_name: Option<String>,
        /// New JSON attributes.
        attributes: Option<String>,
        /// New service role.
        role_sid: Option<RoleSid>,
    },
    /// Delete a user (its participants stay, as in Twilio).
    DeleteUser {
        /// The service.
        service: ServiceSid,
        /// The user.
        user: UserSid,
    },
    /// Set a user's notification level in a conversation.
    UpdateUserConversation {
        /// The service.
        service: ServiceSid,
        /// The user.
        user: UserSid,
        /// The conversation.
        conversation: ConversationRef,
        /// The new level.
        notification_level: NotificationLevel,
    },
    /// Create a role.
    CreateRole {
        /// The service.
        service: ServiceSid,
        /// Display name.
        friendly_name: String,
        /// Service or conversation role.
        role_type: RoleType,
        /// Permission list.
        permissions: Vec<Permission>,
    },
    /// Replace a role's permissions.
    UpdateRole {
        /// The service.
        service: ServiceSid,
        /// The role.
        role: RoleSid,
        /// New permission list.
        permissions: Vec<Permission>,
    },
    /// Delete a role that nobody uses.
    DeleteRole {
        /// The service.
        service: ServiceSid,
        /// The role.
        role: RoleSid,
    },
    /// Create an address configuration.
    CreateAddressConfiguration {
        /// The service.
        service: ServiceSid,
        /// Channel type.
        address_type: AddressType,
        /// The address (the proxy address inbound messages arrive at).
        address: String,
        /// Display name.
        friendly_name: Option<String>,
        /// Autocreation settings.
        auto_creation: AutoCreation,
    },
    /// Update an address configuration.
    UpdateAddressConfiguration {
        /// The service.
        service: ServiceSid,
        /// The configuration.
        address_configuration: AddressConfigurationSid,
        /// New display name.
        friendly_name: Option<String>,
        /// New autocreation settings.
        auto_creation: Option<AutoCreation>,
    },
    /// Delete an address configuration.
    DeleteAddressConfiguration {
        /// The service.
        service: ServiceSid,
        /// The configuration.
        address_configuration: AddressConfigurationSid,
    },
    /// Record a channel's delivery status for a message to a participant.
    RecordDeliveryReceipt {
        /// The service.
        service: ServiceSid,
        /// The conversation.
        conversation: ConversationRef,
        /// The message.
        message: MessageSid,
        /// The non-chat participant it was sent to.
        participant: ParticipantSid,
        /// The status.
        status: DeliveryStatus,
        /// Channel error code, for failed/undelivered.
        error_code: Option<u32>,
        /// The channel's own message id.
        channel_message_sid: Option<String>,
    },
    /// Set the service's default roles (Twilio's service Configuration).
    UpdateServiceConfiguration {
        /// The service.
        service: ServiceSid,
        /// Role given to the creator of a conversation.
        default_conversation_creator_role_sid: Option<RoleSid>,
        /// Role given to other conversation participants.
        default_conversation_role_sid: Option<RoleSid>,
        /// Service role given to new users.
        default_chat_service_role_sid: Option<RoleSid>,
    },
    /// An inbound message from a channel: routed by its (proxy = `to`,
    /// address = `from`) binding, or autocreating a conversation as the
    /// Address Configuration for `to` allows. Atomic: the conversation,
    /// participant and message are appended together or not at all.
    ReceiveInbound {
        /// The service.
        service: ServiceSid,
        /// The channel it arrived on.
        channel: AddressType,
        /// The sender's address (the binding's `address`).
        from: String,
        /// The address it was sent to (the binding's `proxy_address`).
        to: String,
        /// Text body.
        body: Option<String>,
        /// Media descriptors.
        media: Vec<Media>,
    },
    /// Record that an outbound send to a non-chat participant failed.
    RecordDeliveryAttemptFailed {
        /// The service.
        service: ServiceSid,
        /// The conversation.
        conversation: ConversationSid,
        /// The message.
        message: MessageSid,
        /// The recipient participant.
        participant: ParticipantSid,
        /// Which attempt failed, from 1.
        attempt: u32,
        /// What the channel adapter said.
        error: String,
    },
}

impl Command {
    /// The service this command acts in; `None` only for `CreateService`.
    pub fn service(&self) -> Option<ServiceSid> {
        self.idempotency_scope()
    }

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
        use Command::*;
        match self {
            CreateService { .. } => None,
            UpdateService { service, .. }
            | DeleteService { service }
            | CreateConversation { service, .. }
            | UpdateConversation { service, .. }
            | DeleteConversation { service, .. }
            | CreateConversationWithParticipants { service, .. }
            | AddParticipant { service, .. }
            | UpdateParticipant { service, .. }
            | RemoveParticipant { service, .. }
            | PostMessage { service, .. }
            | EditMessage { service, .. }
            | DeleteMessage { service, .. }
            | UpdateReadHorizon { service, .. }
            | CreateUser { service, .. }
            | UpdateUser { service, .. }
            | DeleteUser { service, .. }
            | UpdateUserConversation { service, .. }
            | CreateRole { service, .. }
            | UpdateRole { service, .. }
            | DeleteRole { service, .. }
            | CreateAddressConfiguration { service, .. }
            | UpdateAddressConfiguration { service, .. }
            | DeleteAddressConfiguration { service, .. }
            | RecordDeliveryReceipt { service, .. }
            | UpdateServiceConfiguration { service, .. }
            | ReceiveInbound { service, .. }
            | RecordDeliveryAttemptFailed { service, .. } => Some(*service),
        }
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
