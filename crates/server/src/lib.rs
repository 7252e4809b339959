//! Colloquy's server: the host most users meet first. It embeds the engine
//! and serves
//! - the Twilio Conversations v1 REST API ([`rest`]), path for path, with
//!   Twilio's form-encoded parameters ([`params`]), JSON field names, SIDs,
//!   paging ([`paging`]) and error bodies ([`error`]), behind HTTP Basic
//!   authentication ([`auth`]);
//! - the media store ([`media`]): uploads messages attach by `MediaSid`;
//! - the account's credentials and configuration ([`account`]), made on
//!   first start;
//! - the inbound channel endpoint ([`inbound`]), where a gateway hands in
//!   what it received and reports delivery statuses;
//! - access tokens for real-time clients ([`token`]: minted in process or
//!   with `POST /v1/Tokens`) and the real-time WebSocket ([`ws`],
//!   `GET /v1/Realtime`, protocol in docs/REALTIME.md), with the browser
//!   demo at `GET /demo`.
//!
//! The binary (`colloquy-server`, `src/main.rs`) resolves a
//! [`ServerConfig`] from flags, environment and file, [`Server::bind`]s,
//! prints the credentials on first start and [`Server::run`]s until
//! Ctrl-C or SIGTERM, then drains and closes the engine.
//!
//! Every write is one engine command (`Engine::execute_async_with`), so
//! everything the API does is in the log, validated before it is written,
//! and idempotent under `I-Twilio-Idempotency-Token`. Reads go through
//! `Engine::read` on a blocking thread.

#![warn(missing_docs)]

pub mod account;
pub mod app;
pub mod auth;
pub mod config;
pub mod demo;
pub mod error;
pub mod inbound;
pub mod media;
pub mod paging;
pub mod params;
pub mod render;
pub mod rest;
pub mod token;
pub mod ws;

pub use account::{Account, Credentials};
pub use app::{AppState, Server, ServerError};
pub use config::{Cli, ServerConfig};
pub use error::ApiError;
