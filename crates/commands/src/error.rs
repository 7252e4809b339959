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
    /// A conversation timer is shorter than Twilio's minimum for it
    /// ([`events::limits::TIMER_INACTIVE_MICROS_MIN`] for
    /// `timers.inactive`, [`events::limits::TIMER_CLOSED_MICROS_MIN`] for
    /// `timers.closed`). Nothing was written.
    #[error("{timer} is {micros} µs, shorter than its minimum of {min_micros} µs")]
    TimerTooShort {
        /// `timers.inactive` or `timers.closed`.
        timer: &'static str,
        /// The duration given, in microseconds.
        micros: u64,
        /// The minimum, in microseconds.
        min_micros: u64,
    },
    /// A webhook filter is not one of Twilio's post-event filter names
    /// (`onMessageAdded`, …; see [`events::WebhookFilter`]). Nothing was
    /// written.
    #[error(
        "{filter:?} is not a post-event webhook filter (onMessageAdded, onParticipantAdded, …)"
    )]
    UnknownWebhookFilter {
        /// The name given.
        filter: String,
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
    /// The log could not take the command; nothing of it was acknowledged.
    /// [`StorageFailure::is_retryable`] and [`StorageFailure::needs_reopen`]
    /// tell the host what to do.
    #[error(transparent)]
    Storage(#[from] StorageFailure),
    /// The calling thread is inside a read of the engine's read models
    /// (the closure given to `Engine::read`). The writer waits for every
    /// read in progress before it applies a batch, so waiting for it here
    /// would never end; nothing was written. Return from the read, then
    /// execute.
    #[error(
        "this thread is inside a read of the engine (the closure given to Engine::read), and \
         the writer waits for it: execute the command after the read returns"
    )]
    ReadViewHeld,
    /// A pre-event hook the host registered refused the command, or could
    /// not decide it under a fail-closed policy. Nothing was written.
    #[error(transparent)]
    PreEventHook(#[from] HookRefusal),
}

/// Why a pre-event hook (engine-core's `hooks`) stopped a command before
/// it reached the log. Nothing of the command was written. `filter` is
/// the Twilio name of the hook's filter (`onMessageAdd`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookRefusal {
    /// The hook rejected the command, with its reason for the caller.
    #[error("the {filter} hook rejected the command: {reason}")]
    Rejected {
        /// The filter the hook ran for.
        filter: &'static str,
        /// The hook's reason.
        reason: String,
    },
    /// The hook tried to modify a field that its filter does not let a
    /// hook modify for this command; nothing was applied.
    #[error(
        "the {filter} hook modified {field} of {command}, which it may not modify \
         (modifiable: {allowed:?})"
    )]
    FieldNotModifiable {
        /// The filter the hook ran for.
        filter: &'static str,
        /// The command's type name, e.g. `PostMessage`.
        command: &'static str,
        /// The field, by its Twilio name (`Body`, `Author`, …).
        field: &'static str,
        /// The fields it may modify for this command.
        allowed: Vec<&'static str>,
    },
    /// The hook did not answer within its deadline, and it is configured
    /// fail-closed.
    #[error("the {filter} hook did not answer within {timeout_ms} ms (fail-closed)")]
    TimedOut {
        /// The filter the hook ran for.
        filter: &'static str,
        /// Its deadline, in milliseconds.
        timeout_ms: u64,
    },
    /// The hook failed (returned an error, panicked, or could not be
    /// run), and it is configured fail-closed.
    #[error("the {filter} hook failed (fail-closed): {message}")]
    Failed {
        /// The filter the hook ran for.
        filter: &'static str,
        /// What went wrong.
        message: String,
    },
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

/// Why the log could not take a command. Nothing of the command was
/// acknowledged; whether it was written is said per variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageFailure {
    /// The engine is shutting down, or its writer thread stopped. Whether
    /// a command in flight was written is unknown: retrying it with the
    /// same command id (after reopening, if the engine is gone) is safe and
    /// answers the original outcome if it was.
    #[error("the engine is closed: reopen it and retry with the same command id")]
    Closed,
    /// The batch holding the command failed to write; the log refuses
    /// further appends until the engine is reopened. Nothing was written.
    #[error("writing to the log failed ({message}): reopen the engine, then retry")]
    WriteFailed {
        /// RocksDB's message.
        message: String,
    },
    /// An earlier batch failed to write; the log refuses appends until the
    /// engine is reopened. Nothing was written.
    #[error("the log refuses writes after an earlier failed write: reopen the engine, then retry")]
    Poisoned,
    /// RocksDB stopped taking writes (a write stall, typically a full disk
    /// during a flush) for longer than
    /// `event_log::WRITE_STALL_WAIT_MAX_MS`. Nothing was written and the
    /// engine stays usable: retry later with the same command id.
    #[error(
        "storage stalled for {waited_ms} ms (is the disk full?): nothing was written; \
         free space and retry with the same command id"
    )]
    Stalled {
        /// How long the write waited, in milliseconds.
        waited_ms: u64,
    },
    /// The disk is full: RocksDB refused writes after a flush failed for
    /// lack of space. Nothing was written and the engine stays usable; it
    /// resumes by itself once the disk has room for a memtable flush (the
    /// write buffer, 64 MiB by default): retry later with the same
    /// command id.
    #[error(
        "storage full ({message}): nothing was written. The engine resumes by itself once the \
         disk has room for a memtable flush (64 MiB with the default write buffer): free that \
         much, then retry with the same command id"
    )]
    Full {
        /// How long the write waited, in milliseconds.
        waited_ms: u64,
        /// RocksDB's background error.
        message: String,
    },
    /// Reading the log's own indexes (idempotency, stream versions) or the
    /// records just appended failed: the store is damaged or unreadable.
    /// Run `replay-tool verify` on it.
    #[error("reading the log failed ({0}): run `replay-tool verify` on the store")]
    Read(String),
    /// A broken invariant of the engine itself (a command produced more
    /// events than a command may, or an event that cannot be encoded).
    /// Nothing was written. This is a bug: please report it.
    #[error("internal error, nothing was written (a bug, please report it): {0}")]
    Internal(String),
}

impl StorageFailure {
    /// Whether the same command, with the same command id, may simply be
    /// sent again later to the same engine.
    pub fn is_retryable(&self) -> bool {
        match self {
            StorageFailure::Stalled { .. } | StorageFailure::Full { .. } => true,
            StorageFailure::Closed
            | StorageFailure::WriteFailed { .. }
            | StorageFailure::Poisoned
            | StorageFailure::Read(_)
            | StorageFailure::Internal(_) => false,
        }
    }

    /// Whether the engine must be dropped and opened again before any
    /// command can succeed.
    pub fn needs_reopen(&self) -> bool {
        match self {
            StorageFailure::Closed
            | StorageFailure::WriteFailed { .. }
            | StorageFailure::Poisoned => true,
            StorageFailure::Stalled { .. }
            | StorageFailure::Full { .. }
            | StorageFailure::Read(_)
            | StorageFailure::Internal(_) => false,
        }
    }
}
