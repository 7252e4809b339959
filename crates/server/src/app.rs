//! The server's lifecycle and shared state: open the engine, load or
//! create the account, bind, serve until shutdown, drain, close.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::Router;
use engine_core::{
    Engine, ExecuteOptions, LogOptions, ReactorHandle, TypedCommand, WebhookOptions,
};
use events::command::{CommandEnvelope, CommandId, ConversationRef};
use events::ServiceSid;
use parking_lot::RwLock;
use tokio::net::TcpListener;

use crate::account::{Account, AccountError, Credentials};
use crate::config::ServerConfig;
use crate::error::ApiError;

/// The directory, inside the data directory, that holds the engine's store.
pub const ENGINE_DIR_NAME: &str = "engine";
/// Twilio's idempotency header: a retry with the same token is the same
/// command, answered with the first outcome and written once.
pub const IDEMPOTENCY_TOKEN_HEADER: &str = "I-Twilio-Idempotency-Token";
/// Twilio's opt-in for pre-event webhooks on REST actions: only `true`
/// runs the engine's pre-event hooks (Twilio's default is that REST
/// actions trigger no webhooks).
pub const WEBHOOK_ENABLED_HEADER: &str = "X-Twilio-Webhook-Enabled";

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be created.
    #[error("creating the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The engine could not open its store.
    #[error("opening the engine's store: {0}")]
    Engine(#[from] engine_core::EngineError),
    /// The account could not be loaded or created.
    #[error("the account: {0}")]
    Account(#[from] AccountError),
    /// The listening socket could not be bound or served.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The post-event webhook reactor could not start.
    #[error("starting the post-event webhooks: {0}")]
    Webhooks(#[from] engine_core::ReactorError),
    /// A blocking task (engine open or close) panicked.
    #[error("a blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// What every handler shares: the engine, the account and the base URL.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The shared state behind [`AppState`].
pub struct Inner {
    /// The embedded engine.
    pub engine: Arc<Engine>,
    /// The account; written by the account Configuration resource.
    pub account: RwLock<Account>,
    /// The base of every URL answered, without a trailing slash.
    pub base_url: String,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The engine's post-event webhook reactor (its metrics and parked
    /// calls); it runs until the engine closes.
    pub post_event_webhooks: ReactorHandle,
    /// The WebSocket connections' shutdown signal and count.
    pub realtime: crate::ws::Realtime,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Executes `command` as the trusted host (REST with account
    /// credentials), keyed by the request's `I-Twilio-Idempotency-Token`
    /// when it has one (so a retry is answered, not applied twice) and by
    /// a fresh id otherwise, with pre-event hooks only when
    /// `X-Twilio-Webhook-Enabled: true`. Errors: the engine's refusal,
    /// mapped to Twilio's status and code.
    pub async fn execute<C: TypedCommand>(
        &self,
        headers: &HeaderMap,
        command: C,
    ) -> Result<C::Output, ApiError> {
        self.execute_step(headers, "", command).await
    }

    /// [`AppState::execute`] for one of several commands a single request
    /// runs (e.g. a User Conversation update that sets both a notification
    /// level and a read horizon): the command id is derived from the
    /// request's `I-Twilio-Idempotency-Token` and `step`, so a retry of the
    /// request retries each step under its own id, and two steps never
    /// collide as one key reused for different commands. The empty step is
    /// exactly [`AppState::execute`]'s id. Errors: as
    /// [`AppState::execute`].
    pub async fn execute_step<C: TypedCommand>(
        &self,
        headers: &HeaderMap,
        step: &str,
        command: C,
    ) -> Result<C::Output, ApiError> {
        let id = match headers.get(IDEMPOTENCY_TOKEN_HEADER) {
            Some(v) if step.is_empty() => CommandId::from_key(v.as_bytes()),
            Some(v) => CommandId::from_key(&[v.as_bytes(), b"\0", step.as_bytes()].concat()),
            None => CommandId::fresh(),
        };
        let hooks = headers
            .get(WEBHOOK_ENABLED_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let options = if hooks {
            ExecuteOptions::default()
        } else {
            ExecuteOptions::default().without_pre_event_hooks()
        };
        Ok(self
            .engine
            .execute_async_with(CommandEnvelope::new(id, command), options)
            .await?)
    }

    /// Runs a read-model query on a blocking-safe thread: reads are short,
    /// but message reads touch RocksDB, which must not stall the async
    /// workers.
    pub async fn read<R: Send + 'static>(
        &self,
        query: impl FnOnce(&projections::ReadModels) -> R + Send + 'static,
    ) -> Result<R, ApiError> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || engine.read(query))
            .await
            .map_err(ApiError::internal)
    }
}

/// The service a request addresses and the URL prefix it used: the
/// `{ChatServiceSid}` path segment, or the account's default service for
/// the paths without `/Services/…`. Answers are rendered under the same
/// prefix the request used, as Twilio does.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The service.
    pub service: ServiceSid,
    /// `{base}/v1` or `{base}/v1/Services/{sid}`.
    pub prefix: String,
}

impl FromRequestParts<AppState> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(params) =
            Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::invalid("path", e))?;
        match params.get("ChatServiceSid") {
            Some(raw) => {
                let service: ServiceSid = raw
                    .parse()
                    .map_err(|e| ApiError::invalid("ChatServiceSid", e))?;
                let exists = state.read(move |q| q.get_service(&service).is_ok()).await?;
                if !exists {
                    return Err(ApiError::not_found(format!("service {service}")));
                }
                Ok(Scope {
                    service,
                    prefix: format!("{}/v1/Services/{service}", state.base_url),
                })
            }
            None => Ok(Scope {
                service: state.account.read().default_chat_service_sid,
                prefix: format!("{}/v1", state.base_url),
            }),
        }
    }
}

/// A conversation path segment: a `CH…` SID, or else a unique name
/// (Twilio accepts either wherever a conversation is named).
pub fn conversation_ref(raw: &str) -> ConversationRef {
    match raw.parse() {
        Ok(sid) => ConversationRef::Sid(sid),
        Err(_) => ConversationRef::UniqueName(raw.to_owned()),
    }
}

/// A bound server, ready to [`Server::run`].
pub struct Server {
    state: AppState,
    listener: TcpListener,
    credentials: Option<Credentials>,
}

impl Server {
    /// Creates the data directory if needed, opens the engine in it, loads
    /// (or on first start creates) the account and binds the listener.
    /// Errors: [`ServerError`] naming what failed.
    pub async fn bind(config: &ServerConfig) -> Result<Server, ServerError> {
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| ServerError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let dir = data_dir.clone();
        let (engine, account, credentials, post_event_webhooks) =
            tokio::task::spawn_blocking(move || {
                let engine = Engine::open(dir.join(ENGINE_DIR_NAME), LogOptions::default())?;
                let (account, credentials) = Account::load_or_create(&dir, &engine)?;
                // The services' post-event webhooks (configured through
                // `…/Configuration/Webhooks` and conversation-scoped Webhooks)
                // are called by the engine's built-in durable reactor, signed
                // with the auth token as Twilio signs them; the token stays
                // in memory, never in the log.
                let webhooks = engine.start_post_event_webhooks(
                    WebhookOptions::default().default_signing_secret(account.auth_token.clone()),
                )?;
                Ok::<_, ServerError>((engine, account, credentials, webhooks))
            })
            .await??;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local = listener
            .local_addr()
            .map_err(|source| ServerError::Listen {
                addr: config.listen,
                source,
            })?;
        let base_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local}"));
        let state = AppState(Arc::new(Inner {
            engine: Arc::new(engine),
            account: RwLock::new(account),
            base_url,
            data_dir,
            post_event_webhooks,
            realtime: crate::ws::Realtime::default(),
        }));
        Ok(Server {
            state,
            listener,
            credentials,
        })
    }

    /// The address actually bound (the port, when the config asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The base URL answers are rendered under.
    pub fn base_url(&self) -> &str {
        &self.state.base_url
    }

    /// The credentials made on first start; `None` on later starts.
    pub fn first_start_credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The shared state (for tests and embedding hosts).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The whole HTTP application.
    pub fn router(&self) -> Router {
        crate::rest::router(self.state.clone())
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets the
    /// requests in flight finish, closes the WebSocket connections (each
    /// gets a `going_away` close with its resume cursor; waited for up to
    /// [`crate::ws::WS_SHUTDOWN_DRAIN`]), and closes the engine (which
    /// makes every acknowledged command durable before it returns; nothing
    /// acknowledged is lost). Errors: the listener failed.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let addr = self.local_addr();
        let app = self.router();
        let realtime = self.state.realtime.clone();
        let shutdown = async move {
            shutdown.await;
            realtime.begin_shutdown();
        };
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| ServerError::Listen { addr, source })?;
        let open = self
            .state
            .realtime
            .drained(crate::ws::WS_SHUTDOWN_DRAIN)
            .await;
        if open > 0 {
            tracing::warn!(open, "WebSocket connections still open after the drain");
        }
        tracing::info!("drained; closing the engine");
        let engine = self.state.engine.clone();
        drop(self.state);
        tokio::task::spawn_blocking(move || match Arc::try_unwrap(engine) {
            Ok(engine) => drop(engine),
            Err(_) => tracing::warn!(
                "the engine is still referenced by a connection that outlived the drain; it closes when that ends"
            ),
        })
        .await?;
        Ok(())
    }
}
