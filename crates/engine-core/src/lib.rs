//! Colloquy's engine core: the durable hash-chained event log, command
//! handling and fan-out.

#![warn(missing_docs)]

pub mod delivery;
pub mod engine;
pub mod fanout;
mod read_view;
mod sources;

pub use commands;
pub use event_log as log;

pub use commands::{CommandError, EngineCommand, StorageFailure};
#[cfg(feature = "webhook")]
pub use delivery::WebhookAdapter;
pub use delivery::{
    channel_of, ChannelAdapter, DeliveryId, DeliveryMetrics, DeliveryOptions, InMemoryAdapter,
    OutboundMessage, SendError, SendReceipt,
};
pub use engine::{
    fold_records, inbound_command_id, load_read_models, read_models_digest, state_digest,
    CommandOutcome, Engine, EngineError, EngineOptions, InboundReceipt,
};
pub use fanout::{
    client_event_kind, ClientEvent, ClientEventKind, FanoutMetrics, FanoutOptions, Perspective,
    Session, SessionError, SessionStart, SessionStream, TypingNotice,
};
pub use log::{
    AppendError, AppendOutcome, AppendRequest, Backoff, ChainFault, CommittedRecord, DamageKind,
    DecideContext, Decision, Durability, EventLog, FaultKind, FileDamage, HeadMarkerStatus,
    Idempotency, LogFileFault, LogHead, LogMetrics, LogOptions, LogReader, OpenError, RawAppend,
    RawEvents, ReadError, StateMachine, VerifyReport,
};
pub use read_view::ReadView;
