//! Colloquy's engine core: the facade that ties the event log, command
//! handling and read models together, and delivers what they commit.
//!
//! - [`engine`]: the [`Engine`] a host embeds (open, execute commands, query
//!   the read models, open sessions) and the state machine it plugs into
//!   the log: [`commands::decide`] decides, [`projections::ReadModels`]
//!   folds, and fan-out routes each event as it is applied;
//! - [`Engine::read`]: the one way to read the read models, a read scoped
//!   to a closure that hands out no lock guard and cannot deadlock the
//!   log's writer;
//! - [`fanout`]: committed events to device sessions, with gap-free resume,
//!   lag handling and typing indicators;
//! - [`delivery`]: messages to non-chat participants through the host's
//!   [`ChannelAdapter`]s, durable and at least once;
//! - [`timers`]: conversation timers (`timers.inactive`, `timers.closed`)
//!   that move idle conversations to inactive or closed, on the log's
//!   clock.
//! - [`subscription`]: following the durable log from a position, blocking
//!   or async, woken on commit ([`Engine::subscribe`]);
//! - [`reactor`]: durable reactors, named subscriptions whose handlers
//!   issue commands back with exactly-once effects
//!   ([`Engine::start_reactor`]);
//! - [`hooks`]: pre-event hooks, host code that accepts, rejects or
//!   modifies a command before it reaches the log.
//! - `webhooks` (feature `webhook`): Twilio's post-event webhooks, a
//!   built-in reactor ([`Engine::start_post_event_webhooks`]) calling each
//!   service's configured URL, signed with `X-Twilio-Signature`.
//!
//! The log and command handling live in crates of their own and are
//! re-exported here: [`log`] is the `event-log` crate (the RocksDB,
//! hash-chained, group-committed log, generic over [`StateMachine`]) and
//! [`commands`] is the pure command-handling crate.

#![warn(missing_docs)]

pub mod delivery;
pub mod engine;
pub mod fanout;
pub mod hooks;
mod outcome;
pub mod reactor;
mod read_view;
mod sources;
pub mod studio;
pub mod subscription;
pub mod timers;
#[cfg(feature = "webhook")]
pub mod webhooks;

pub use commands;
pub use event_log as log;

pub use commands::{CommandError, EngineCommand, HookRefusal, StorageFailure};
#[cfg(feature = "webhook")]
pub use delivery::WebhookAdapter;
pub use delivery::{
    channel_of, ChannelAdapter, DeliveryId, DeliveryMetrics, DeliveryOptions, InMemoryAdapter,
    OutboundMessage, SendError, SendReceipt,
};
pub use engine::{
    fold_records, inbound_command_id, load_read_models, read_models_digest, state_digest, DbRows,
    Engine, EngineError, EngineOptions,
};
pub use fanout::{
    client_event_kind, ClientEvent, ClientEventKind, FanoutMetrics, FanoutOptions, Perspective,
    Session, SessionError, SessionStart, SessionStream, TypingNotice,
};
pub use hooks::{
    ExecuteOptions, FailurePolicy, HookDecision, HookFailure, HookField, HookMetrics, HookScope,
    Modifications, PreEvent, PreEventFilter, PreEventHook, PreEventHookConfig, PreEventTarget,
    HOOK_TIMEOUT_DEFAULT,
};
pub use log::{
    AppendError, AppendOutcome, AppendRequest, Backoff, ChainFault, Clock, CommittedRecord,
    DamageKind, DecideContext, Decision, Durability, EventLog, FaultKind, FileDamage,
    HeadMarkerStatus, Idempotency, LogFileFault, LogHead, LogMetrics, LogOptions, LogReader,
    OpenError, RawAppend, RawEvents, ReadError, StateMachine, SystemClock, TestClock, VerifyReport,
};
pub use outcome::{CommandOutcome, CreatedConversation, PostedMessage, TypedCommand};
pub use reactor::{
    reactor_command_id, reactor_fn, HandlerError, ParkedEvent, Reactor, ReactorContext,
    ReactorError, ReactorFilter, ReactorHandle, ReactorMetrics, ReactorSpec, ReactorStart,
};
pub use studio::{studio_flow_reactor_name, StudioFlowSpec};
pub use subscription::{SubscribeFrom, Subscription, SubscriptionError};
pub use timers::{timer_command_id, timer_dates, TimerDates, TimerKind, TimerMetrics};
#[cfg(feature = "webhook")]
pub use webhooks::{WebhookOptions, POST_EVENT_WEBHOOKS_REACTOR};
