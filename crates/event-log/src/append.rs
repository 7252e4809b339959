//! What the writer is asked and what it answers: an [`AppendRequest`] in,
//! an [`AppendOutcome`] out, or an [`Appended`]: the outcome with the
//! caller's own [`CommittedRecords`], handed back from the writer's memory
//! so a caller that needs its records never reads them back. These types
//! sit below both the [`EventLog`](crate::EventLog) front end and the
//! writer thread, so neither module depends on the other for them.

use std::ops::{Deref, Range};
use std::sync::Arc;

use events::CommandId;

use crate::state::CommittedRecord;

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

/// A successful append together with the records it appended, as the
/// writer sealed them and handed them to
/// [`StateMachine::committed`](crate::StateMachine::committed): what
/// [`EventLog::append_blocking_with_records`](crate::EventLog::append_blocking_with_records)
/// and [`EventLog::append_with_records`](crate::EventLog::append_with_records)
/// answer.
#[derive(Debug, Clone)]
pub struct Appended {
    /// What the append did, exactly as [`EventLog::append_blocking`](crate::EventLog::append_blocking)
    /// would have answered.
    pub outcome: AppendOutcome,
    /// The records of this request, in position order: for
    /// [`AppendOutcome::Appended`] exactly the `count` records at
    /// `first_position ..`, durable; empty for a decision with no events
    /// and for [`AppendOutcome::Duplicate`] (the first application's
    /// records are not in the writer's memory: read them with
    /// [`EventLog::read_range`](crate::EventLog::read_range)).
    pub records: CommittedRecords,
}

/// The records one request appended: a window onto its group-commit
/// batch's records, shared by every caller of the batch (and by the state
/// machine's [`committed`](crate::StateMachine::committed)), so handing
/// them back copies nothing. Dereferences to a slice in position order.
#[derive(Clone, Default)]
pub struct CommittedRecords {
    /// The whole batch's records; `None` when empty.
    batch: Option<Arc<[Arc<CommittedRecord>]>>,
    /// This request's records within `batch`.
    range: Range<usize>,
}

impl CommittedRecords {
    /// The records `range` of a batch's `records`.
    ///
    /// Panics if `range` is not inside `records`: the writer computes it
    /// from positions it assigned itself, so a bad range is a bug in the
    /// writer, not bad input.
    pub(crate) fn window(records: &Arc<[Arc<CommittedRecord>]>, range: Range<usize>) -> Self {
        assert!(
            range.start <= range.end && range.end <= records.len(),
            "a request's records lie inside its batch"
        );
        if range.is_empty() {
            return CommittedRecords::default();
        }
        CommittedRecords {
            batch: Some(records.clone()),
            range,
        }
    }
}

impl Deref for CommittedRecords {
    type Target = [Arc<CommittedRecord>];

    fn deref(&self) -> &Self::Target {
        match &self.batch {
            Some(batch) => &batch[self.range.clone()],
            None => &[],
        }
    }
}

impl std::fmt::Debug for CommittedRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
