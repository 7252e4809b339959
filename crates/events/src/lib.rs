//! Colloquy's event model: pure data, no I/O.
//!
//! This crate is the vocabulary every other crate speaks:
//! - [`sid`]: Twilio-style SIDs, one type per resource kind;
//! - [`hex`]: lowercase hex, the one encoder and decoder every crate uses;
//! - [`limits`]: every enforced limit, named with its unit;
//! - [`duration`]: ISO 8601 durations (Twilio's `Timers.Inactive=PT1M`)
//!   read into microseconds;
//! - [`model`]: value types (states, bindings, media, permissions, …);
//! - [`command`]: what callers ask for ([`Command`], [`CommandEnvelope`]);
//! - [`event`]: what the log records ([`Event`]);
//! - [`record`]: the versioned, hash-chained envelope and its codec;
//! - [`fast`]: the in-place record parser and event-grammar check that
//!   verify walks use, never disagreeing with [`record`]'s decoder, and the
//!   variant counts of the encoded enums.
//!
//! Field names follow Twilio's Conversations v1 OpenAPI description. Nothing
//! here touches a disk, a clock or a thread (the one exception,
//! [`CommandId::fresh`], draws an id from the OS's random source): callers supply timestamps and
//! positions, which keeps every function deterministic and fuzzable.

#![warn(missing_docs)]

pub mod command;
pub mod duration;
pub mod event;
pub mod fast;
pub mod hex;
pub mod limits;
pub mod model;
pub mod record;
pub mod sid;

pub use command::{
    idempotency_fingerprint, idempotency_scope_of_first_record, AddParticipant, Command,
    CommandEnvelope, CommandId, ConversationRef, ConversationSpec, CreateAddressConfiguration,
    CreateConversation, CreateConversationStudioWebhook, CreateConversationWebhook,
    CreateConversationWithParticipants, CreateRole, CreateService, CreateUser, DecideContext,
    Decision, DeleteAddressConfiguration, DeleteConversation, DeleteConversationWebhook,
    DeleteMessage, DeleteRole, DeleteService, DeleteUser, EditMessage, Fingerprint, Keyed,
    ParticipantSpec, PostMessage, ReceiveInbound, RecordDeliveryAttemptFailed,
    RecordDeliveryReceipt, RemoveParticipant, UpdateAddressConfiguration, UpdateConversation,
    UpdateConversationWebhook, UpdateParticipant, UpdateReadHorizon, UpdateRole, UpdateService,
    UpdateServiceConfiguration, UpdateServiceWebhooks, UpdateUser, UpdateUserConversation,
};
pub use duration::{parse_iso8601_duration_micros, timers_from_iso8601, DurationError};
pub use event::Event;
pub use model::*;
pub use record::{
    CodecError, Hash, Record, RecordHeader, FORMAT_VERSIONS_KNOWN, FORMAT_VERSION_CURRENT,
    GENESIS_HASH,
};
pub use sid::*;
