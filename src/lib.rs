//! Colloquy: an embeddable, event-sourced messaging engine that does the job
//! of Twilio Conversations.
//!
//! This facade re-exports the public API of the workspace's crates:
//! - [`events`]: SIDs, limits, commands, events and the record codec;
//! - [`projections`]: the read models and their queries;
//! - [`engine_core`]: the [`Engine`], its log and command handling.
//!
//! ```no_run
//! use colloquy::events::{Command, CommandEnvelope, CommandId};
//! use colloquy::{Engine, LogOptions};
//!
//! let engine = Engine::open("data", LogOptions::default()).unwrap();
//! let outcome = engine
//!     .execute(CommandEnvelope {
//!         command_id: CommandId::from_key(b"create-service-1"),
//!         acting_identity: None,
//!         expected_version: None,
//!         command: Command::CreateService(CreateService { friendly_name: "demo".into() }),
//!     })
//!     .unwrap();
//! let service = outcome.service_sid().unwrap();
//! assert!(engine.read(|q| q.service(&service).is_some()));
//! ```

pub use engine_core;
pub use events;
pub use projections;

pub use engine_core::log::hash_hex;
pub use engine_core::{
    CommandError, CommandOutcome, Durability, Engine, EngineError, LogOptions, StorageFailure,
};
pub use projections::{Order, Page, PageRequest, QueryError, ReadModels};
