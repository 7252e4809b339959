//! Colloquy's engine core: the durable hash-chained event log, command
//! handling and fan-out.

#![warn(missing_docs)]

pub mod commands;
pub mod delivery;
pub mod engine;
pub mod fanout;
pub mod log;

pub use commands::{CommandError, EngineCommand};
pub use delivery::{
    channel_of, ChannelAdapter, DeliveryId, DeliveryMetrics, DeliveryOptions, InMemoryAdapter,
    OutboundMessage, SendError, SendReceipt, WebhookAdapter,
};
pub use engine::{
    fold_records, load_read_models, read_models_digest, state_digest, CommandOutcome, Engine,
    EngineError, EngineOptions,
};
pub use fanout::{
    client_event_kind, ClientEvent, ClientEventKind, FanoutMetrics, FanoutOptions, Perspective,
    Session, SessionError, SessionStart, SessionStream, TypingNotice,
};
pub use log::{
    AppendError, AppendOutcome, AppendRequest, ChainFault, CommittedRecord, DamageKind,
    DecideContext, Decision, Durability, EventLog, FaultKind, FileDamage, LogHead, LogOptions,
    LogReader, OpenError, RawAppend, RawEvents, ReadError, StateMachine, VerifyReport,
};
