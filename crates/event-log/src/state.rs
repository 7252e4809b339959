//! The hook through which the single writer thread runs command handling.
//!
//! Decide, append and apply are serialised on the writer thread: for each
//! request in a group-commit batch the writer calls [`StateMachine::decide`]
//! (validate against the read models, produce events), seals the records,
//! then calls [`StateMachine::apply`] for each record so the next request in
//! the same batch sees its effects. Read-model writes go into the same
//! RocksDB `WriteBatch` as the records, so the read side is never behind the
//! log after a crash.

use std::sync::Arc;

use events::{CodecError, Event, Fingerprint, RecordHeader, ServiceSid};

pub use events::{DecideContext, Decision};

/// Where a command's id is unique, and what identifies the command itself:
/// what the writer checks a command id against before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Idempotency {
    /// The idempotency scope: the service the command addresses, or `None`
    /// for the account scope. A command id is looked up in its scope only.
    pub scope: Option<ServiceSid>,
    /// The command's fingerprint. The same id with the same fingerprint in
    /// the same scope is a retry (answered as a duplicate); with another
    /// fingerprint it is refused as a reused key.
    pub fingerprint: Fingerprint,
}

/// A record that is durable, handed to [`StateMachine::committed`].
#[derive(Debug, Clone)]
pub struct CommittedRecord {
    /// Its header (position, time, service, conversation, command id).
    pub header: RecordHeader,
    /// Its event.
    pub event: Event,
}

/// The write-side state the writer thread drives. The engine implements it
/// with its read models; the bare log uses [`RawEvents`].
pub trait StateMachine: Send + 'static {
    /// What callers send.
    type Command: Send + 'static;
    /// Why a command was refused (a typed, user-facing error).
    type Rejection: Send + std::fmt::Debug + 'static;

    /// Column families the state machine persists its read models in. The
    /// log creates them next to its own.
    const COLUMN_FAMILIES: &'static [&'static str];

    /// The command's idempotency scope and fingerprint, computed once per
    /// request before anything else, on the caller's thread before the
    /// request is queued for the writer (an associated function: it may
    /// depend on the command only). The scope must be the one
    /// [`events::idempotency_scope_of_first_record`] re-derives from the
    /// command's first record; the writer refuses a decision that
    /// disagrees ([`super::AppendError::ScopeMismatch`]).
    ///
    /// Errors: the command cannot be encoded for its fingerprint; the
    /// request is then refused with [`super::AppendError::Fingerprint`] and
    /// nothing is written.
    fn idempotency(command: &Self::Command) -> Result<Idempotency, CodecError>;

    /// Who acts for `command`: the chat identity the writer seals into the
    /// `actor` of every record the command produces, so the audit trail
    /// says who acted; `None` for the trusted host. The default, `None`,
    /// suits state machines whose commands all come from the host, such as
    /// [`RawEvents`].
    ///
    /// An actor over [`events::limits::IDENTITY_CHARS_MAX`] characters
    /// cannot be sealed: the append then fails with `AppendError::Encode`
    /// and writes nothing, so `decide` should refuse such a command first.
    fn actor(command: &Self::Command) -> Option<String> {
        let _ = command;
        None
    }

    /// Called once per group-commit batch before the first `decide`.
    fn begin_batch(&mut self) {}

    /// Validates `command` against the current state (including everything
    /// applied earlier in this batch) and returns the events to append.
    /// Must not change state: a refused or version-conflicted command
    /// leaves no trace.
    fn decide(
        &self,
        command: &Self::Command,
        ctx: &DecideContext,
    ) -> Result<Decision, Self::Rejection>;

    /// Folds one sealed record into the state and adds the read-model
    /// writes to `batch` (column families from `db`). Never fails: the
    /// event was decided against this very state.
    fn apply(
        &mut self,
        db: &rocksdb::DB,
        batch: &mut rocksdb::WriteBatch,
        header: &RecordHeader,
        event: &Event,
    );

    /// Called once per batch after its last `apply` and before it is
    /// written: adds the writes that are due once per batch rather than
    /// per record (the engine's applied read-model position).
    fn seal_batch(&mut self, db: &rocksdb::DB, batch: &mut rocksdb::WriteBatch) {
        let _ = (db, batch);
    }

    /// Called once per batch after it was written. `durable` is false if the
    /// write failed or was refused: the in-memory state is then ahead of the
    /// disk and must go back to it. After a failed write the log refuses
    /// further appends until it is reopened; after a write refused by a
    /// storage stall (nothing written) it goes on with the next batch.
    fn end_batch(&mut self, durable: bool) {
        let _ = durable;
    }

    /// Called with every record of a batch once it is durable, in position
    /// order, before any caller is acknowledged. The fan-out hangs here.
    /// The same `Arc`s are handed to the callers that asked for their
    /// records ([`crate::Appended::records`]).
    fn committed(&mut self, records: &[Arc<CommittedRecord>]) {
        let _ = records;
    }
}

/// The bare log's state machine: a command is a ready list of events,
/// appended as given, by the trusted host (its records' `actor` is `None`).
/// Used by tests, benches and tools that write raw events.
#[derive(Debug, Default)]
pub struct RawEvents;

/// A raw append: events for one service (and optionally one stream).
#[derive(Debug, Clone, PartialEq)]
pub struct RawAppend {
    /// The service.
    pub service_sid: ServiceSid,
    /// The events.
    pub events: Vec<Event>,
}

/// [`RawEvents`] never refuses, so its rejection type is uninhabited.
#[derive(Debug)]
pub enum Never {}

impl StateMachine for RawEvents {
    type Command = RawAppend;
    type Rejection = Never;
    const COLUMN_FAMILIES: &'static [&'static str] = &[];

    /// Scope: the service, or the account scope when the first event is
    /// `ServiceCreated` (as for the engine's `CreateService`), so raw logs
    /// re-derive like engine logs. Fingerprint: over the service and the
    /// events.
    fn idempotency(command: &RawAppend) -> Result<Idempotency, CodecError> {
        let scope = match command.events.first() {
            Some(first) => events::idempotency_scope_of_first_record(&command.service_sid, first),
            None => Some(command.service_sid),
        };
        let fingerprint = events::idempotency_fingerprint(
            scope.as_ref(),
            None,
            &(&command.service_sid, &command.events),
        )?;
        Ok(Idempotency { scope, fingerprint })
    }

    fn decide(&self, command: &RawAppend, _ctx: &DecideContext) -> Result<Decision, Never> {
        Ok(Decision {
            service_sid: command.service_sid,
            stream: command.events.first().and_then(Event::conversation_sid),
            events: command.events.clone(),
        })
    }

    fn apply(&mut self, _: &rocksdb::DB, _: &mut rocksdb::WriteBatch, _: &RecordHeader, _: &Event) {
    }
}
