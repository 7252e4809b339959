//! The engine's [`StateMachine`]: what the log's single writer runs for
//! each request (decide with the pure `commands` crate, then apply to the
//! read models, route for fan-out and note deliveries), and what it hands
//! on once a batch is durable (fan-out, log subscriptions, conversation
//! timers).

use std::sync::Arc;

use events::{CodecError, Command, Event, Fingerprint, RecordHeader};
use parking_lot::lock_api::ArcRwLockWriteGuard;
use parking_lot::{RawRwLock, RwLock};
use projections::{ReadModels, Table};
use rocksdb::{WriteBatch, DB};

use super::store::{load_read_models, BatchSink};
use crate::commands::{self, CommandError, EngineCommand};
use crate::delivery::DeliveryWriter;
use crate::fanout::FanoutWriter;
use crate::log::{CommittedRecord, DecideContext, Decision, Idempotency, StateMachine};
use crate::reactor::CF_REACTORS;
use crate::subscription::LogFeed;
use crate::timers::TimerWriter;

/// The engine's column families beside the log's: the read models' tables,
/// then the reactors' checkpoints and parked events.
const ENGINE_COLUMN_FAMILIES: [&str; Table::NAMES.len() + 1] = {
    let mut names = [CF_REACTORS; Table::NAMES.len() + 1];
    let mut i = 0;
    while i < Table::NAMES.len() {
        names[i] = Table::NAMES[i];
        i += 1;
    }
    names
};

/// The writer thread's state machine: the read models behind a lock that
/// the writer holds for a whole batch, so readers never see state that is
/// not yet durable. Each event is also routed for fan-out and noted for
/// non-chat delivery as it is applied (membership at its own position);
/// both are handed on once the batch is durable.
pub(crate) struct EngineState {
    pub(super) db: Arc<DB>,
    pub(super) read: Arc<RwLock<ReadModels>>,
    pub(super) guard: Option<ArcRwLockWriteGuard<RawRwLock, ReadModels>>,
    pub(super) fanout: FanoutWriter,
    pub(super) delivery: DeliveryWriter,
    pub(super) timers: TimerWriter,
    /// Log subscriptions' (and reactors') wake-up on commit.
    pub(super) feed: Arc<LogFeed>,
}

/// The idempotency fingerprint of `command` issued by `acting_identity`
/// (`None`: the host), in the command's own scope.
///
/// Errors: the command cannot be encoded (see
/// [`events::idempotency_fingerprint`]).
pub(super) fn fingerprint(
    acting_identity: Option<&str>,
    command: &Command,
) -> Result<Fingerprint, CodecError> {
    events::idempotency_fingerprint(
        command.idempotency_scope().as_ref(),
        acting_identity,
        command,
    )
}

impl StateMachine for EngineState {
    type Command = EngineCommand;
    type Rejection = CommandError;
    const COLUMN_FAMILIES: &'static [&'static str] = &ENGINE_COLUMN_FAMILIES;

    /// The envelope's `acting_identity` (validated by `decide`).
    fn actor(command: &EngineCommand) -> Option<String> {
        command.acting_identity.clone()
    }

    /// Scope: [`Command::idempotency_scope`]. Fingerprint: over the scope,
    /// the acting identity and the command as its caller sent it (the
    /// `requested_fingerprint` a pre-event hook's modification left, see
    /// [`crate::hooks`]).
    fn idempotency(command: &EngineCommand) -> Result<Idempotency, CodecError> {
        let scope = command.command.idempotency_scope();
        let fingerprint = match command.requested_fingerprint {
            Some(fingerprint) => fingerprint,
            None => fingerprint(command.acting_identity.as_deref(), &command.command)?,
        };
        Ok(Idempotency { scope, fingerprint })
    }

    fn begin_batch(&mut self) {
        self.guard = Some(self.read.write_arc());
    }

    fn decide(
        &self,
        command: &EngineCommand,
        ctx: &DecideContext,
    ) -> Result<Decision, CommandError> {
        let rm = self.guard.as_deref().expect("decide runs inside a batch");
        commands::decide(rm, command, ctx)
    }

    fn apply(&mut self, db: &DB, batch: &mut WriteBatch, header: &RecordHeader, event: &Event) {
        let rm = self
            .guard
            .as_deref_mut()
            .expect("apply runs inside a batch");
        // Routed against the state just before the event.
        self.fanout.route(rm, header, event);
        self.delivery.observe(rm, header, event);
        rm.apply(header, event, &mut BatchSink { db, batch });
    }

    /// The read models' bookkeeping rows, once per batch.
    fn seal_batch(&mut self, db: &DB, batch: &mut WriteBatch) {
        let rm = self
            .guard
            .as_deref_mut()
            .expect("a batch is sealed inside it");
        rm.finish_batch(&mut BatchSink { db, batch });
    }

    fn end_batch(&mut self, durable: bool) {
        if let Some(mut guard) = self.guard.take() {
            if !durable {
                // The batch never reached the disk: go back to what did.
                // After a failed write the log is poisoned, so this state
                // is only read; after a stall the next batch starts here.
                match load_read_models(&self.db) {
                    Ok(rm) => *guard = rm,
                    Err(e) => tracing::error!("reloading read models after a failed write: {e}"),
                }
                self.fanout.discard(&guard);
                self.delivery.discard(&guard);
            }
        }
    }

    fn committed(&mut self, records: &[Arc<CommittedRecord>]) {
        self.fanout.committed(records);
        self.delivery.committed();
        self.timers.committed(records);
        // After the fan-out put them in its cache of recent records, which
        // subscriptions read first.
        self.feed.committed(records);
    }
}
