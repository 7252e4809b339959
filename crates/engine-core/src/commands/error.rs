//! The typed errors a command can be refused with.

use events::{CommandId, ConversationSid, Permission, ServiceSid};

/// Why the engine refused a command. A refused command writes nothing.
///
/// Variants name what was wrong; where Twilio documents an error code for
/// the same condition, [`CommandError::twilio_code`] returns it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// A resource the command names does not exist in its service.
    #[error("{kind} {id} not found")]
    NotFound {
        /// Resource kind, e.g. `conversation`.
        kind: &'static str,
        /// The SID or name given.
        id: String,
    },
    /// Another conversation in the service already has this `unique_name`.
    #[error("unique_name {unique_name:?} is already taken")]
    UniqueNameConflict {
        /// The name.
        unique_name: String,
    },
    /// The (proxy_address, address) binding already belongs to an active
    /// conversation (Twilio 50416).
    #[error(
        "binding {address} via {proxy_address} already belongs to conversation {conversation_sid}"
    )]
    BindingConflict {
        /// The participant address.
        address: String,
        /// The proxy address.
        proxy_address: String,
        /// The conversation that holds it.
        conversation_sid: ConversationSid,
    },
    /// The identity is already a participant of the conversation (Twilio 50433).
    #[error("identity {identity:?} is already a participant")]
    ParticipantExists {
        /// The identity.
        identity: String,
    },
    /// A user with this identity already exists (Twilio 50201).
    #[error("user {identity:?} already exists")]
    UserExists {
        /// The identity.
        identity: String,
    },
    /// An address configuration for this address already exists.
    #[error("address configuration for {address:?} already exists")]
    AddressConfigurationExists {
        /// The address.
        address: String,
    },
    /// The role is still assigned and cannot be deleted.
    #[error("role {role} is in use")]
    RoleInUse {
        /// The role SID.
        role: String,
    },
    /// A per-conversation participant limit would be exceeded.
    #[error("conversation already has {count} {what} participants (max {max})")]
    ParticipantLimit {
        /// `all` or `non-chat`.
        what: &'static str,
        /// How many there are now.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A field is longer than its limit.
    #[error("{field} is {len} {unit} long (max {max})")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
        /// `bytes`, `chars` or `items`.
        unit: &'static str,
    },
    /// A field is empty or otherwise malformed.
    #[error("{field} is invalid: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// An `attributes` value is not valid JSON.
    #[error("{field} is not valid JSON: {reason}")]
    AttributesNotJson {
        /// The field.
        field: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// The conversation is closed: no new messages, participants or edits.
    #[error("conversation {conversation_sid} is closed")]
    ConversationClosed {
        /// The conversation.
        conversation_sid: ConversationSid,
    },
    /// The acting user lacks a permission.
    #[error("{identity:?} lacks permission {permission:?}")]
    PermissionDenied {
        /// The acting identity.
        identity: String,
        /// The permission it needed (`None`: only the host may do this).
        permission: Option<Permission>,
    },
    /// An inbound message matched no binding and no address configuration
    /// allows autocreation for its `to` address.
    #[error("no route for inbound message from {from} to {to}")]
    NoRoute {
        /// The sender.
        from: String,
        /// The address it was sent to.
        to: String,
    },
    /// The stream version was not the expected one (optimistic concurrency).
    #[error("expected stream version {expected}, found {actual}")]
    VersionConflict {
        /// What the caller expected.
        expected: u64,
        /// What it is.
        actual: u64,
    },
    /// The command id was already used in this idempotency scope (the
    /// service the command addresses, or the account scope for
    /// `CreateService`) by a different command: other fields or another
    /// acting identity. Nothing was written; send a new command with a
    /// fresh command id.
    #[error(
        "command id {command_id} was already used {} for a different command \
         (first applied at position {first_position}); use a fresh command id",
        scope_name(.scope)
    )]
    IdempotencyKeyReused {
        /// The reused command id.
        command_id: CommandId,
        /// The scope it was reused in (`None`: the account scope).
        scope: Option<ServiceSid>,
        /// Where the first command's records start.
        first_position: u64,
    },
    /// The log could not durably append (I/O); nothing was acknowledged.
    #[error("storage error: {0}")]
    Storage(String),
}

/// How an idempotency scope reads in messages.
fn scope_name(scope: &Option<ServiceSid>) -> String {
    match scope {
        Some(service) => format!("in service {service}"),
        None => "in the account scope".to_string(),
    }
}

impl CommandError {
    /// Twilio's error code for the same condition, where it documents one.
    pub fn twilio_code(&self) -> Option<u32> {
        match self {
            CommandError::NotFound { .. } => Some(20404),
            CommandError::BindingConflict { .. } => Some(50416),
            CommandError::ParticipantExists { .. } => Some(50433),
            CommandError::UserExists { .. } => Some(50201),
            CommandError::UniqueNameConflict { .. } => Some(50353),
            CommandError::PermissionDenied { .. } => Some(50107),
            _ => None,
        }
    }
}
