//! What the writer is asked and what it answers: an [`AppendRequest`] in,
//! an [`AppendOutcome`] out. These types sit below both the
//! [`EventLog`](crate::EventLog) front end and the writer thread, so neither
//! module depends on the other for them.

use events::CommandId;

/// One append: a command with its idempotency key and an optional
/// optimistic-concurrency expectation.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRequest<C> {
    /// Idempotency key, unique within the command's idempotency scope
    /// ([`StateMachine::idempotency`](crate::StateMachine::idempotency)). Once a request with this id
    /// appended records, a later request with the same id in the same
    /// scope answers [`AppendOutcome::Duplicate`] if it carries the same
    /// command (same fingerprint), or [`AppendError::IdempotencyKeyReused`](crate::AppendError::IdempotencyKeyReused)
    /// if not; either way it appends nothing, for the life of the log (ids
    /// are never forgotten). The same id in another scope is unrelated.
    pub command_id: CommandId,
    /// If set, the append only happens when the version (record count) of
    /// the decision's stream (`Decision::service_sid`, `Decision::stream`)
    /// equals it; otherwise [`AppendError::VersionConflict`](crate::AppendError::VersionConflict).
    pub expected_version: Option<u64>,
    /// The command for [`StateMachine::decide`](crate::StateMachine::decide).
    pub command: C,
}

impl<C> AppendRequest<C> {
    /// A request with no version expectation.
    pub fn new(command_id: CommandId, command: C) -> Self {
        AppendRequest {
            command_id,
            expected_version: None,
            command,
        }
    }

    /// Sets the expected stream version.
    pub fn expect_version(mut self, version: u64) -> Self {
        self.expected_version = Some(version);
        self
    }
}

/// What a successful append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The command's records are durable at
    /// `first_position .. first_position + count`. A decision with no
    /// events is answered with `count == 0` (and `first_position` the
    /// head's next position) without writing anything; its command id is
    /// not remembered, so a retry decides again.
    Appended {
        /// The first record's position.
        first_position: u64,
        /// How many records were appended.
        count: u32,
        /// The decision stream's version (record count) after this append.
        stream_version: u64,
    },
    /// The command id had already been applied; nothing was appended. The
    /// fields describe the first application.
    Duplicate {
        /// The first record's position, as first appended.
        first_position: u64,
        /// How many records it appended.
        count: u32,
    },
}
