//! [`ReadSource`]: the narrow read side the engine hands to fan-out and
//! delivery, so that neither depends on the engine facade; and
//! [`CommandSink`], what reactors need beyond it (issuing commands, their
//! column family).
//!
//! Fan-out sessions replay missed events from the log and fix their replay
//! range under the read-model lock; delivery recovers its pending set from
//! the read models and reads a conversation's stream to order a join
//! against a message; the timer thread checks a due timer against the read
//! models and the conversation's stream version. That is all they read,
//! and it is all this trait offers. The engine implements it. Sessions get it as a [`Weak`] pointer
//! ([`Sources`]), so a session that outlives the engine neither keeps the
//! store open nor its read models in memory: it sees the engine gone and
//! ends. Delivery's threads hold it strongly; the engine joins them before
//! it closes the log.

use std::ops::Range;
use std::sync::{Arc, Weak};

use events::{CommandEnvelope, ConversationSid, ServiceSid};
use parking_lot::RwLock;
use projections::ReadModels;
use rocksdb::DB;

use crate::commands::CommandError;
use crate::hooks::ExecuteOptions;
use crate::log::{ReadError, RecordIter, StreamIter};
use crate::outcome::CommandOutcome;

/// The log's records and the read models, as fan-out and delivery read
/// them. Implemented by the engine.
pub(crate) trait ReadSource: Send + Sync {
    /// Written records with positions in `range`, in order (as
    /// [`crate::EventLog::read_range`], errors included).
    fn read_range(&self, range: Range<u64>) -> RecordIter<'_>;

    /// One stream's written records from `from_position` on (as
    /// [`crate::EventLog::read_stream`], errors included).
    fn read_stream(
        &self,
        service: ServiceSid,
        conversation: Option<ConversationSid>,
        from_position: u64,
    ) -> StreamIter<'_>;

    /// The read models' lock; read it through [`crate::ReadView`]'s
    /// `acquire` only, never by locking it directly.
    fn read_models(&self) -> &RwLock<ReadModels>;

    /// A stream's durable version (as [`crate::EventLog::stream_version`],
    /// errors included). Read under a read view, it is the version of
    /// exactly the state that view shows.
    fn stream_version(
        &self,
        service: ServiceSid,
        conversation: Option<ConversationSid>,
    ) -> Result<u64, ReadError>;
}

/// What a reactor's thread needs of the engine beyond reading: executing
/// the commands its handler issues, and the store its checkpoints and
/// parked events live in. Implemented by the engine.
pub(crate) trait CommandSink: Send + Sync {
    /// The engine's read side.
    fn reads(&self) -> &dyn ReadSource;

    /// Executes a command and waits until it is durable (as
    /// [`crate::Engine::execute_with`] for the serialisable command,
    /// pre-event hooks as `options` say, errors included).
    fn execute(
        &self,
        envelope: CommandEnvelope,
        options: ExecuteOptions,
    ) -> Result<CommandOutcome, CommandError>;

    /// The engine's RocksDB store.
    fn db(&self) -> &DB;
}

/// A weak handle on the engine's [`ReadSource`]: it does not keep a closed
/// engine's store or read models alive.
#[derive(Clone)]
pub(crate) struct Sources(Weak<dyn ReadSource>);

impl Sources {
    /// Wraps the engine's read side (see the module docs for why weakly).
    pub(crate) fn new(source: Weak<dyn ReadSource>) -> Self {
        Sources(source)
    }

    /// The read side, or `None` once the engine is dropped.
    pub(crate) fn upgrade(&self) -> Option<Arc<dyn ReadSource>> {
        self.0.upgrade()
    }
}
