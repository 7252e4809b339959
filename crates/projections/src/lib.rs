//! Colloquy's read models (the query side of CQRS), folded from the log.
//!
//! [`ReadModels`] holds, per service:
//! 1. the conversation index: by SID, by `unique_name`, by creation date
//!    and state, with paging ([`ReadModels::list_conversations`]);
//! 2. the participant-binding index: (proxy_address, address) →
//!    participant for inbound routing, conversation → participants, and
//!    identity/address → participants ([`ReadModels::participant_by_binding`]);
//! 3. the per-user subscription index with exact unread counts, newest
//!    activity first ([`ReadModels::user_conversations`]);
//! 4. messages per conversation with edits and deletes applied, paged in
//!    Twilio's `Order` ([`ReadModels::messages`]), plus receipts.
//!
//! Every list is paged ([`PageRequest`], [`Page`]): users, roles,
//! services, address configurations, conversations, participants,
//! ParticipantConversations, receipts and messages. A page token names the
//! key of the last item served, so a walk stays exact while items are
//! added; a token from another list is a typed [`QueryError::PageToken`].
//!
//! The state is persisted as rows ([`rows`]), one table per resource
//! kind. [`ReadModels::apply`] folds one event and emits the rows it
//! changes to a [`RowSink`] (a posted message: its own row and its SID's);
//! [`ReadModels::finish_batch`] emits the bookkeeping rows (applied
//! position, [`READ_MODEL_FORMAT_VERSION`]) once per write batch. The
//! engine points that sink at the same RocksDB `WriteBatch` as the events
//! themselves, so the persisted read side is never behind the log.
//!
//! Everything but messages is also held in memory, in compact indexes.
//! Messages grow with all history, so their rows are cold ([`cold`]):
//! written by `apply`, never read back by it, and read by queries through
//! a [`ColdRows`] source (the engine's RocksDB, behind its block cache).
//! In memory, a conversation keeps only its next message index and its
//! deleted indexes, which give exact unread counts. This crate does no
//! I/O itself and never writes the log.

#![warn(missing_docs)]

pub mod cold;
pub mod digest;
pub mod query;
pub mod rows;
pub mod state;

pub use cold::{ColdError, ColdRows, NoColdRows};
pub use digest::{digest_rows, Digester};
pub use query::{DeliverySummary, Order, Page, PageRequest, QueryError, UserConversation};
pub use rows::*;
pub use state::{Conversation, LoadError, ReadModels, Service};
