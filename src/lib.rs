//! Colloquy: an embeddable, event-sourced messaging engine that does the job
//! of Twilio Conversations.
//!
//! This facade re-exports the public API of the workspace's crates:
//! - [`events`]: SIDs, limits, commands, events and the record codec;
//! - [`projections`]: the read models and their queries;
//! - [`engine_core`]: the [`Engine`], its log and command handling.
//!
//! ```no_run
//! use colloquy::prelude::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::open("data", LogOptions::default())?;
//! let service = engine.execute(CreateService::new("demo").keyed("create-service-1"))?;
//! let ticket = engine.execute(CreateConversation::new(service).keyed("ticket-42"))?;
//! engine.execute(PostMessage::new(service, ticket).body("hello").keyed("ticket-42/1"))?;
//! # Ok(()) }
//! ```
//!
//! [`prelude`] brings in what a host uses every day.

pub use engine_core;
pub use events;
pub use projections;

pub use engine_core::log::hash_hex;
/// Log subscriptions, durable reactors and Studio flows
/// ([`Engine::subscribe`], [`Engine::start_reactor`],
/// [`Engine::start_studio_flow`]).
pub use engine_core::{
    reactor_command_id, reactor_fn, studio_flow_reactor_name, CommittedRecord, HandlerError,
    ParkedEvent, Reactor, ReactorContext, ReactorError, ReactorFilter, ReactorHandle,
    ReactorMetrics, ReactorSpec, ReactorStart, StudioFlowSpec, SubscribeFrom, Subscription,
    SubscriptionError,
};
pub use engine_core::{
    CommandError, CommandOutcome, Durability, Engine, EngineError, LogOptions, StorageFailure,
};
/// Pre-event hooks ([`Engine::set_pre_event_hook`], [`Engine::execute_with`]).
pub use engine_core::{
    ExecuteOptions, FailurePolicy, HookDecision, HookFailure, HookField, HookMetrics, HookRefusal,
    HookScope, Modifications, PreEvent, PreEventFilter, PreEventHook, PreEventHookConfig,
    PreEventTarget, HOOK_TIMEOUT_DEFAULT,
};
pub use projections::{Order, Page, PageRequest, QueryError, ReadModels};

/// What a host uses every day: the engine, every command struct with
/// [`Keyed`](events::Keyed) and the envelope, the SIDs and value types,
/// sessions, log subscriptions and reactors, paging and the error types.
///
/// `use colloquy::prelude::*;` is all the quickstart imports.
pub mod prelude {
    pub use engine_core::{
        reactor_fn, CommandError, CommandOutcome, CreatedConversation, Durability, Engine,
        EngineOptions, LogOptions, PostedMessage, ReactorFilter, ReactorSpec, ReactorStart,
        Session, SessionStart, StorageFailure, SubscribeFrom, TypedCommand,
    };
    pub use events::command::*;
    pub use events::model::*;
    pub use events::sid::*;
    pub use projections::{Order, Page, PageRequest, QueryError};
}
