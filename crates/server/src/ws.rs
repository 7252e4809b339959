//! The real-time WebSocket: `GET /v1/Realtime`.
//!
//! A client authenticates with an access token ([`crate::token`]), in the
//! query (`?token=…`, what a browser can send) or in its first message
//! (`{"type":"authenticate","token":…}` within [`WS_AUTH_TIMEOUT`]). It
//! then receives its identity's events from one engine [`Session`]
//! (`conversationAdded`, `messageAdded`, `participantUpdated`,
//! `typingStarted`, …), each with its cursor (the log position it comes
//! from). Reconnecting with `since=<cursor>` replays every event it missed
//! after that cursor, in order and exactly once, then continues live: the
//! engine's resume guarantees it. It can send typing, post messages,
//! advance its read horizon, page history and refresh its token; each
//! request carries a client-chosen `id` that is its reply's `id` and the
//! command's idempotency key (a retry under the same `id`, even on another
//! connection, is answered with the first outcome and written once). The
//! protocol, with examples of every message, is docs/REALTIME.md.
//!
//! Access: every request acts as the token's identity
//! (`CommandEnvelope::acting_as`), so role permissions apply, and reaches
//! only conversations the identity participates in: any other SID, real
//! or not, answers not-found (20404), never forbidden.
//!
//! One connection is three tasks:
//! - the **reader** (the connection's own task) reads the client's
//!   frames, runs its requests one at a time (engine commands through
//!   `execute_async_with`, reads and typing on blocking threads), and
//!   queues the replies; it closes an idle connection
//!   ([`WS_IDLE_TIMEOUT`]) and begins the close on server shutdown;
//! - the **pump** moves the session's events into the outbound queue: a
//!   replay (after `since`, or after the session lagged) is drained on a
//!   blocking thread, [`WS_REPLAY_BATCH_EVENTS`] at a time, since it may
//!   read the log; live events are polled as an async stream. It closes
//!   the connection when the token expires;
//! - the **writer** owns the socket's sending half: it writes the queue in
//!   order, what is queued together in one flush (up to
//!   [`WS_WRITE_BATCH_FRAMES`]) within [`WS_WRITE_TIMEOUT`], pings every
//!   [`WS_PING_INTERVAL`], and on close sends the close frame, whose reason
//!   is `{"reason":…,"cursor":…}` with the cursor of the last event it
//!   wrote.
//!
//! Each logged event's frame is rendered once and its bytes shared by
//! every connection that sends it (a small cache keyed by cursor and kind,
//! [`WS_FRAME_CACHE_SLOTS`]).
//!
//! A slow client is handled as the fan-out core handles one: never waited
//! on, nothing lost, memory bounded. The outbound queue holds at most
//! [`WS_OUTBOUND_BYTES_MAX`] bytes of frames not yet written; a live event
//! that does not fit closes the connection with reason `slow_consumer`
//! and the resume cursor, and the client reconnects with `since`. (A
//! replay waits for room instead: it is the client catching up at its own
//! pace.) Behind the queue, the engine's session keeps its own bound: an
//! identity's backlog stops at the lag cap and the session resumes from
//! its cursor.
//!
//! Shutdown: [`Realtime`] tells every connection to close (`going_away`,
//! with its cursor) when the server's drain begins, and the server waits
//! up to [`WS_SHUTDOWN_DRAIN`] for them before it closes the engine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use engine_core::{
    ClientEvent, ClientEventKind, ExecuteOptions, SessionError, SessionStart, SessionStream,
};
use events::command::{
    CommandEnvelope, CommandId, ConversationRef, PostMessage, UpdateReadHorizon,
};
use events::{ConversationSid, ParticipantSid, ServiceSid};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use projections::{MessageRow, Order, PageRequest};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use crate::app::{conversation_ref, AppState};
use crate::error::{ApiError, CODE_INVALID_PARAMETER};
use crate::params::Query;
use crate::render::iso8601;
use crate::token::{self, TokenError, Verified};

/// The WebSocket's path.
pub const WS_PATH: &str = "/v1/Realtime";
/// How long a connection without `?token=` has to send its
/// `authenticate` message: 10 seconds is ample for a client that has its
/// token, and bounds what an unauthenticated socket costs.
pub const WS_AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the server pings: 20 seconds keeps NAT and proxy mappings
/// (commonly dropped after 30–60 s idle) alive.
pub const WS_PING_INTERVAL: Duration = Duration::from_secs(20);
/// A connection from which nothing (a pong included) arrives for this long
/// is closed (`idle`): three missed pings, so one lost packet or a paused
/// tab does not drop it.
pub const WS_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest one frame may take to write: a client whose socket accepts
/// nothing for 10 seconds is gone or stuck, and is dropped (it resumes
/// from the last cursor it received).
pub const WS_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The bytes of frames a connection may have queued and not yet written
/// (the per-connection outbound bound). 1 MiB holds about 5,000 ordinary
/// events (about 200 bytes each) and any single one (a 32 KiB body,
/// escaped, is well under it), and bounds 1,000 stalled clients at 1 GiB.
pub const WS_OUTBOUND_BYTES_MAX: usize = 1024 * 1024;
/// The most queued frames the writer sends per flush: a burst goes out in
/// one write instead of one per frame, and one batch (at most this many
/// frames, within the outbound bound) has one write deadline.
pub const WS_WRITE_BATCH_FRAMES: usize = 64;
/// The largest message a client may send: a request with the largest
/// body (32 KiB) and attributes (4 KiB) fits with room for JSON escaping.
pub const WS_INBOUND_MESSAGE_BYTES_MAX: usize = 128 * 1024;
/// Events a replay moves per trip to a blocking thread: bounds how long
/// the pump is away from its select (and the frames it holds at once).
pub const WS_REPLAY_BATCH_EVENTS: usize = 256;
/// The longest client-chosen request `id`, in characters.
pub const WS_REQUEST_ID_CHARS_MAX: usize = 128;
/// Rendered event frames kept for sharing between connections: every
/// recipient of one event is sent the same bytes, rendered once. Slots
/// are picked by cursor, so 256 cover the spread between the fastest and
/// the slowest live connection in a burst, at a few hundred bytes each.
pub const WS_FRAME_CACHE_SLOTS: usize = 256;
/// How long a server shutdown waits for its WebSocket connections to
/// close before it closes the engine anyway (5 s: a close frame each, at
/// most one write timeout for a stuck client is not waited out).
pub const WS_SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// Close code: the server is shutting down (`going_away`).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: the client broke the protocol (`protocol_error`).
pub const CLOSE_PROTOCOL: u16 = 1002;
/// Close code: authentication failed (`unauthorized`).
pub const CLOSE_POLICY: u16 = 1008;
/// Close code: the server failed (`internal`).
pub const CLOSE_INTERNAL: u16 = 1011;
/// Close code: the token expired (`token_expired`).
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;
/// Close code: nothing arrived for [`WS_IDLE_TIMEOUT`] (`idle`).
pub const CLOSE_IDLE: u16 = 4002;
/// Close code: the session could not open or continue (`session`): a
/// `since` ahead of the log, the service deleted, the engine closing.
pub const CLOSE_SESSION: u16 = 4003;
/// Close code: the client fell [`WS_OUTBOUND_BYTES_MAX`] behind
/// (`slow_consumer`); reconnect with `since` set to the close cursor.
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;

/// The WebSocket side of the server's shared state: tells connections to
/// close when the server shuts down, and counts them.
#[derive(Clone)]
pub struct Realtime {
    shutdown: Arc<watch::Sender<bool>>,
    slow_consumer_closes: Arc<AtomicU64>,
    frames: Arc<FrameCache>,
}

impl Default for Realtime {
    fn default() -> Self {
        Realtime {
            shutdown: Arc::new(watch::channel(false).0),
            slow_consumer_closes: Arc::new(AtomicU64::new(0)),
            frames: Arc::new(FrameCache::default()),
        }
    }
}

/// The frames of recent logged events, rendered once and shared by every
/// connection that sends them (a frame depends only on the event's log
/// position and kind). A slot holds the last frame whose cursor maps to
/// it; a miss renders the frame again, so the cache changes cost, never
/// content.
struct FrameCache {
    slots: Box<[parking_lot::Mutex<Option<CachedFrame>>]>,
}

struct CachedFrame {
    cursor: u64,
    kind: ClientEventKind,
    frame: Utf8Bytes,
}

impl Default for FrameCache {
    fn default() -> Self {
        FrameCache::with_slots(WS_FRAME_CACHE_SLOTS)
    }
}

impl FrameCache {
    fn with_slots(slots: usize) -> Self {
        FrameCache {
            slots: (0..slots.max(1))
                .map(|_| parking_lot::Mutex::new(None))
                .collect(),
        }
    }

    /// `event`'s frame: from the cache if this position and kind were
    /// rendered recently, else rendered (and kept, for logged events).
    fn frame(&self, event: &ClientEvent) -> Utf8Bytes {
        let Some(cursor) = event.cursor() else {
            return render_event(event).into();
        };
        let slot = &self.slots[(cursor % self.slots.len() as u64) as usize];
        if let Some(hit) = slot
            .lock()
            .as_ref()
            .filter(|c| c.cursor == cursor && c.kind == event.kind())
        {
            return hit.frame.clone();
        }
        let frame: Utf8Bytes = render_event(event).into();
        *slot.lock() = Some(CachedFrame {
            cursor,
            kind: event.kind(),
            frame: frame.clone(),
        });
        frame
    }
}

impl Realtime {
    /// Open WebSocket connections (authenticated or not yet).
    pub fn connections(&self) -> usize {
        self.shutdown.receiver_count()
    }

    /// Connections closed so far because their client fell
    /// [`WS_OUTBOUND_BYTES_MAX`] behind (`slow_consumer`).
    pub fn slow_consumer_closes(&self) -> u64 {
        self.slow_consumer_closes.load(Ordering::Relaxed)
    }

    /// Tells every connection to close (`going_away`, with its cursor).
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Waits until every connection has closed, or `deadline` passed;
    /// returns how many are still open.
    pub async fn drained(&self, deadline: Duration) -> usize {
        let until = tokio::time::Instant::now() + deadline;
        while self.connections() > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.connections()
    }
}

/// Why the server closes a connection: the close frame's code and the
/// `reason` word in its JSON reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Close {
    code: u16,
    reason: &'static str,
}

impl Close {
    const GOING_AWAY: Close = Close::new(CLOSE_GOING_AWAY, "going_away");
    const PROTOCOL: Close = Close::new(CLOSE_PROTOCOL, "protocol_error");
    const UNAUTHORIZED: Close = Close::new(CLOSE_POLICY, "unauthorized");
    const INTERNAL: Close = Close::new(CLOSE_INTERNAL, "internal");
    const TOKEN_EXPIRED: Close = Close::new(CLOSE_TOKEN_EXPIRED, "token_expired");
    const IDLE: Close = Close::new(CLOSE_IDLE, "idle");
    const SESSION: Close = Close::new(CLOSE_SESSION, "session");
    const SLOW_CONSUMER: Close = Close::new(CLOSE_SLOW_CONSUMER, "slow_consumer");
    /// The client closed or its socket failed: the close frame is only a
    /// courtesy.
    const CLIENT_GONE: Close = Close::new(1000, "closed");

    const fn new(code: u16, reason: &'static str) -> Close {
        Close { code, reason }
    }
}

/// Starts the close once: the first reason given wins.
#[derive(Clone)]
struct Closer(Arc<watch::Sender<Option<Close>>>);

impl Closer {
    fn close(&self, close: Close) {
        self.0.send_if_modified(|c| {
            if c.is_none() {
                *c = Some(close);
                true
            } else {
                false
            }
        });
    }
}

/// One text frame on its way out, holding its share of the outbound bound
/// until written.
struct Frame {
    text: Utf8Bytes,
    cursor: Option<u64>,
    _room: OwnedSemaphorePermit,
}

/// The outbound queue: frames in order, bounded in bytes by
/// [`WS_OUTBOUND_BYTES_MAX`].
#[derive(Clone)]
struct Outbox {
    tx: mpsc::UnboundedSender<Frame>,
    room: Arc<Semaphore>,
}

/// The frame did not fit, or the writer is gone.
struct Full;

impl Outbox {
    fn permits(text: &Utf8Bytes) -> u32 {
        text.len().clamp(1, WS_OUTBOUND_BYTES_MAX) as u32
    }

    /// Queues `text` if it fits now.
    fn try_push(&self, text: Utf8Bytes, cursor: Option<u64>) -> Result<(), Full> {
        let room = self
            .room
            .clone()
            .try_acquire_many_owned(Self::permits(&text))
            .map_err(|_| Full)?;
        self.tx
            .send(Frame {
                text,
                cursor,
                _room: room,
            })
            .map_err(|_| Full)
    }

    /// Queues `text`, waiting for room. Errors: the writer is gone.
    async fn push(&self, text: Utf8Bytes, cursor: Option<u64>) -> Result<(), Full> {
        let room = self
            .room
            .clone()
            .acquire_many_owned(Self::permits(&text))
            .await
            .map_err(|_| Full)?;
        self.tx
            .send(Frame {
                text,
                cursor,
                _room: room,
            })
            .map_err(|_| Full)
    }
}

/// `GET /v1/Realtime[?token=…][&since=…]`: upgrades to the WebSocket. A
/// token in the query is verified before the upgrade.
///
/// Errors (plain HTTP, before any upgrade): 400 (20001) for an unknown
/// parameter, a `since` that is not a number, or a request that is not a
/// WebSocket upgrade; 401 (20101, or 20104 when expired) for a bad token.
pub async fn upgrade(
    State(state): State<AppState>,
    Query(mut p): Query,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let checked = (|| {
        let token = p.opt("token")?;
        let since = p.opt_parse::<u64>("since")?;
        p.finish()?;
        let verified = token.map(|t| authenticate(&state, &t)).transpose()?;
        let ws = ws.map_err(|e| {
            ApiError::new(
                e.status(),
                CODE_INVALID_PARAMETER,
                format!("{WS_PATH} is a WebSocket: {e}"),
            )
        })?;
        Ok::<_, ApiError>((ws, verified, since))
    })();
    match checked {
        Ok((ws, verified, since)) => {
            let shutdown = state.realtime.shutdown.subscribe();
            ws.max_message_size(WS_INBOUND_MESSAGE_BYTES_MAX)
                .on_upgrade(move |socket| connection(state, socket, shutdown, verified, since))
        }
        Err(e) => e.into_response(),
    }
}

fn authenticate(state: &AppState, token: &str) -> Result<Verified, ApiError> {
    token::verify(&state.account.read(), token, SystemTime::now()).map_err(token_error)
}

fn token_error(e: TokenError) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string())
}

/// What a client sends. The `id` fields are declared so that the
/// unknown-field check accepts them; [`handle`] reads the id from the raw
/// JSON instead, so that even a request that does not parse is answered
/// under its id.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Request {
    Authenticate {
        token: String,
        since: Option<u64>,
    },
    Typing {
        id: String,
        conversation_sid: String,
    },
    SendMessage {
        id: String,
        conversation_sid: String,
        body: Option<String>,
        attributes: Option<String>,
    },
    AdvanceReadHorizon {
        id: String,
        conversation_sid: String,
        index: u64,
    },
    History {
        id: String,
        conversation_sid: String,
        order: Option<String>,
        page_size: Option<usize>,
        page_token: Option<String>,
    },
    UpdateToken {
        id: String,
        token: String,
    },
}

/// The authenticated connection's identity and service.
struct Conn {
    state: AppState,
    identity: String,
    service: ServiceSid,
    /// The token's `exp` (Unix seconds); replaced by `update_token`.
    expiry: watch::Sender<u64>,
}

async fn connection(
    state: AppState,
    socket: WebSocket,
    mut shutdown: watch::Receiver<bool>,
    verified: Option<Verified>,
    since: Option<u64>,
) {
    let (mut sink, mut stream) = socket.split();
    let (verified, since) = match verified {
        Some(v) => (v, since),
        None => match first_message(&state, &mut stream).await {
            Ok((v, s)) => (v, s.or(since)),
            Err((e, close)) => {
                refuse(&mut sink, None, e, close).await;
                return;
            }
        },
    };
    let identity = verified.grant.identity.clone();
    let service = verified.grant.service;
    let start = since.map_or(SessionStart::Live, SessionStart::After);
    let engine = state.engine.clone();
    let who = identity.clone();
    let opened = tokio::task::spawn_blocking(move || engine.open_session(service, &who, start))
        .await
        .map_err(ApiError::internal)
        .and_then(|r| r.map_err(session_error));
    let session = match opened {
        Ok(s) => s.into_stream(),
        Err(e) => {
            refuse(&mut sink, since, e, Close::SESSION).await;
            return;
        }
    };
    let cursor = session.cursor();
    let hello = json!({
        "type": "connected",
        "identity": identity,
        "chat_service_sid": service.to_string(),
        "cursor": cursor,
        "expires": iso8601(verified.expires_at.saturating_mul(1_000_000)),
    });
    if write(&mut sink, Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    tracing::debug!(%service, %identity, ?cursor, "WebSocket session opened");

    let (close_tx, closing) = watch::channel(None);
    let closer = Closer(Arc::new(close_tx));
    let (tx, rx) = mpsc::unbounded_channel();
    let out = Outbox {
        tx,
        room: Arc::new(Semaphore::new(WS_OUTBOUND_BYTES_MAX)),
    };
    let (expiry, expiry_rx) = watch::channel(verified.expires_at);
    let writer = tokio::spawn(writer(sink, rx, closer.clone(), closing.clone(), cursor));
    let pump = tokio::spawn(pump(
        state.realtime.clone(),
        session,
        out.clone(),
        closer.clone(),
        closing.clone(),
        expiry_rx,
    ));
    let conn = Conn {
        state,
        identity,
        service,
        expiry,
    };
    reader(&conn, &mut stream, &out, &closer, closing, &mut shutdown).await;
    drop(out);
    let _ = pump.await;
    let _ = writer.await;
    tracing::debug!(service = %conn.service, identity = %conn.identity, "WebSocket session closed");
}

/// Reads the `authenticate` message a connection without `?token=` must
/// send first.
async fn first_message(
    state: &AppState,
    stream: &mut SplitStream<WebSocket>,
) -> Result<(Verified, Option<u64>), (ApiError, Close)> {
    let unauthorized = |message: &str| {
        (
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                crate::error::CODE_ACCESS_TOKEN_INVALID,
                message,
            ),
            Close::UNAUTHORIZED,
        )
    };
    let text = loop {
        match tokio::time::timeout(WS_AUTH_TIMEOUT, stream.next()).await {
            Err(_) => return Err(unauthorized("no authenticate message in time")),
            Ok(Some(Ok(Message::Text(t)))) => break t,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(_) => {
                return Err(unauthorized(
                    "the first message must be {\"type\":\"authenticate\",\"token\":…}",
                ))
            }
        }
    };
    match serde_json::from_str::<Request>(&text) {
        Ok(Request::Authenticate { token, since }) => authenticate(state, &token)
            .map(|v| (v, since))
            .map_err(|e| (e, Close::UNAUTHORIZED)),
        _ => Err(unauthorized(
            "the first message must be {\"type\":\"authenticate\",\"token\":…}",
        )),
    }
}

/// Sends an error and closes, before the session exists.
async fn refuse(
    sink: &mut SplitSink<WebSocket, Message>,
    cursor: Option<u64>,
    error: ApiError,
    close: Close,
) {
    let _ = write(sink, Message::Text(error_frame(None, &error).into())).await;
    let _ = write(sink, close_message(close, cursor)).await;
}

fn session_error(e: SessionError) -> ApiError {
    match e {
        SessionError::ServiceNotFound(s) => ApiError::not_found(format!("service {s}")),
        SessionError::CursorAhead { .. } => ApiError::invalid("since", e),
        SessionError::Read(_) | SessionError::Closed => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::error::CODE_UNAVAILABLE,
            e.to_string(),
        ),
    }
}

fn close_message(close: Close, cursor: Option<u64>) -> Message {
    let reason = json!({ "reason": close.reason, "cursor": cursor }).to_string();
    Message::Close(Some(CloseFrame {
        code: close.code,
        reason: reason.into(),
    }))
}

async fn write(sink: &mut SplitSink<WebSocket, Message>, message: Message) -> Result<(), ()> {
    match tokio::time::timeout(WS_WRITE_TIMEOUT, sink.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Writes `batch` in order and flushes once, all within
/// [`WS_WRITE_TIMEOUT`].
async fn write_batch(sink: &mut SplitSink<WebSocket, Message>, batch: &[Frame]) -> Result<(), ()> {
    let written = async {
        for frame in batch {
            sink.feed(Message::Text(frame.text.clone())).await?;
        }
        sink.flush().await
    };
    match tokio::time::timeout(WS_WRITE_TIMEOUT, written).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

async fn writer(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::UnboundedReceiver<Frame>,
    closer: Closer,
    mut closing: watch::Receiver<Option<Close>>,
    mut cursor: Option<u64>,
) {
    let mut ping = tokio::time::interval(WS_PING_INTERVAL);
    ping.tick().await;
    loop {
        tokio::select! {
            biased;
            _ = closing.changed() => break,
            frame = rx.recv() => {
                let Some(frame) = frame else { break };
                // Whatever else is queued goes out with it, in one flush.
                let mut batch = vec![frame];
                while batch.len() < WS_WRITE_BATCH_FRAMES {
                    match rx.try_recv() {
                        Ok(f) => batch.push(f),
                        Err(_) => break,
                    }
                }
                if write_batch(&mut sink, &batch).await.is_err() {
                    closer.close(Close::CLIENT_GONE);
                    return;
                }
                // Written: the frames give their room back as they drop.
                if let Some(c) = batch.iter().rev().find_map(|f| f.cursor) {
                    cursor = Some(c);
                }
            }
            _ = ping.tick() => {
                if write(&mut sink, Message::Ping(Default::default())).await.is_err() {
                    closer.close(Close::CLIENT_GONE);
                    return;
                }
            }
        }
    }
    let close = (*closing.borrow()).unwrap_or(Close::CLIENT_GONE);
    let _ = write(&mut sink, close_message(close, cursor)).await;
}

async fn pump(
    realtime: Realtime,
    mut events: SessionStream,
    out: Outbox,
    closer: Closer,
    mut closing: watch::Receiver<Option<Close>>,
    mut expiry: watch::Receiver<u64>,
) {
    loop {
        if !events.session().is_live() {
            // A replay may read the log: drain a batch on a blocking thread.
            let joined = tokio::task::spawn_blocking(move || {
                let mut batch = Vec::new();
                let mut failed = None;
                while batch.len() < WS_REPLAY_BATCH_EVENTS && !events.session().is_live() {
                    match events.session_mut().try_recv() {
                        Ok(Some(e)) => batch.push(e),
                        Ok(None) => break,
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                (events, batch, failed)
            })
            .await;
            let (back, batch, failed) = match joined {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!("a WebSocket replay task failed: {e}");
                    closer.close(Close::INTERNAL);
                    return;
                }
            };
            events = back;
            for event in batch {
                tokio::select! {
                    pushed = out.push(realtime.frames.frame(&event), event.cursor()) => {
                        if pushed.is_err() {
                            return;
                        }
                    }
                    _ = closing.changed() => return,
                }
            }
            if let Some(e) = failed {
                tracing::warn!("a WebSocket session's replay failed: {e}");
                closer.close(Close::SESSION);
                return;
            }
            continue;
        }
        let expires_in = Duration::from_secs(
            expiry
                .borrow()
                .saturating_add(token::CLOCK_SKEW_SECS)
                .saturating_sub(unix_now()),
        );
        tokio::select! {
            _ = closing.changed() => return,
            _ = expiry.changed() => continue,
            _ = tokio::time::sleep(expires_in) => {
                closer.close(Close::TOKEN_EXPIRED);
                return;
            }
            next = events.next() => match next {
                Some(Ok(event)) => {
                    if out.try_push(realtime.frames.frame(&event), event.cursor()).is_err() {
                        tracing::info!(
                            service = %events.session().service_sid(),
                            identity = %events.session().identity(),
                            "WebSocket client fell {WS_OUTBOUND_BYTES_MAX} bytes behind; closing with its resume cursor"
                        );
                        closer.close(Close::SLOW_CONSUMER);
                        realtime.slow_consumer_closes.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!("a WebSocket session's replay failed: {e}");
                    closer.close(Close::SESSION);
                    return;
                }
                None => {
                    closer.close(Close::GOING_AWAY);
                    return;
                }
            },
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn reader(
    conn: &Conn,
    stream: &mut SplitStream<WebSocket>,
    out: &Outbox,
    closer: &Closer,
    mut closing: watch::Receiver<Option<Close>>,
    shutdown: &mut watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow_and_update() {
            closer.close(Close::GOING_AWAY);
            return;
        }
        let next = tokio::select! {
            _ = closing.changed() => return,
            _ = shutdown.changed() => continue,
            next = tokio::time::timeout(WS_IDLE_TIMEOUT, stream.next()) => next,
        };
        let text = match next {
            Err(_) => {
                closer.close(Close::IDLE);
                return;
            }
            Ok(None) | Ok(Some(Ok(Message::Close(_)))) => {
                closer.close(Close::CLIENT_GONE);
                return;
            }
            Ok(Some(Err(e))) => {
                tracing::debug!("WebSocket read failed: {e}");
                closer.close(Close::PROTOCOL);
                return;
            }
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(Message::Binary(_)))) => {
                let e = ApiError::invalid("message", "send JSON text frames");
                if out.push(error_frame(None, &e).into(), None).await.is_err() {
                    return;
                }
                continue;
            }
            Ok(Some(Ok(_))) => continue,
        };
        let reply = handle(conn, &text).await;
        tokio::select! {
            pushed = out.push(reply.into(), None) => {
                if pushed.is_err() {
                    return;
                }
            }
            _ = closing.changed() => return,
        }
    }
}

/// Runs one client request; returns the reply frame.
async fn handle(conn: &Conn, text: &str) -> String {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return error_frame(None, &ApiError::invalid("message", e)),
    };
    let id = value.get("id").and_then(Value::as_str).map(str::to_owned);
    let request = match serde_json::from_value::<Request>(value) {
        Ok(r) => r,
        Err(e) => return error_frame(id.as_deref(), &ApiError::invalid("message", e)),
    };
    if let Some(id) = &id {
        let chars = id.chars().count();
        if chars == 0 || chars > WS_REQUEST_ID_CHARS_MAX {
            let e = ApiError::invalid("id", format!("1 to {WS_REQUEST_ID_CHARS_MAX} characters"));
            return error_frame(None, &e);
        }
    }
    let id = id.unwrap_or_default();
    match run(conn, &id, request).await {
        Ok(result) => json!({ "type": "result", "id": id, "result": result }).to_string(),
        Err(e) => error_frame(Some(&id), &e),
    }
}

fn error_frame(id: Option<&str>, e: &ApiError) -> String {
    let mut body = e.body();
    body["type"] = json!("error");
    body["id"] = json!(id);
    body.to_string()
}

async fn run(conn: &Conn, id: &str, request: Request) -> Result<Value, ApiError> {
    match request {
        Request::Authenticate { .. } => Err(ApiError::invalid(
            "type",
            "already authenticated: use update_token to replace the token",
        )),
        Request::UpdateToken { token, .. } => {
            let v = authenticate(&conn.state, &token)?;
            if v.grant.identity != conn.identity || v.grant.service != conn.service {
                return Err(token_error(TokenError::MissingGrant(
                    "identity and service of this connection",
                )));
            }
            conn.expiry.send_replace(v.expires_at);
            Ok(json!({ "expires": iso8601(v.expires_at.saturating_mul(1_000_000)) }))
        }
        Request::Typing {
            conversation_sid, ..
        } => {
            let (conversation, _) = membership(conn, &conversation_sid).await?;
            let engine = conn.state.engine.clone();
            let (service, identity) = (conn.service, conn.identity.clone());
            tokio::task::spawn_blocking(move || {
                engine.typing(service, &ConversationRef::Sid(conversation), &identity)
            })
            .await
            .map_err(ApiError::internal)??;
            Ok(json!({}))
        }
        Request::SendMessage {
            conversation_sid,
            body,
            attributes,
            ..
        } => {
            let (conversation, _) = membership(conn, &conversation_sid).await?;
            let mut command = PostMessage::new(conn.service, conversation);
            command.body = body;
            command.attributes = attributes;
            let posted = execute(conn, id, command).await?;
            Ok(json!({
                "conversation_sid": posted.conversation_sid.to_string(),
                "message_sid": posted.message_sid.to_string(),
                "index": posted.index,
                "cursor": posted.position,
            }))
        }
        Request::AdvanceReadHorizon {
            conversation_sid,
            index,
            ..
        } => {
            let (conversation, participant) = membership(conn, &conversation_sid).await?;
            let command =
                UpdateReadHorizon::advance(conn.service, conversation, participant, index);
            execute(conn, id, command).await?;
            let service = conn.service;
            let horizon = conn
                .state
                .read(move |q| {
                    q.get_conversation(&service, &ConversationRef::Sid(conversation))
                        .ok()
                        .and_then(|c| c.participant(&participant).cloned())
                        .and_then(|p| p.last_read_message_index)
                })
                .await?;
            Ok(json!({
                "conversation_sid": conversation.to_string(),
                "last_read_message_index": horizon,
            }))
        }
        Request::History {
            conversation_sid,
            order,
            page_size,
            page_token,
            ..
        } => {
            let order = match order.as_deref() {
                None | Some("asc") => Order::Asc,
                Some("desc") => Order::Desc,
                Some(o) => {
                    return Err(ApiError::invalid(
                        "order",
                        format!("{o:?} is not asc or desc"),
                    ))
                }
            };
            let (conversation, _) = membership(conn, &conversation_sid).await?;
            let service = conn.service;
            let request = PageRequest {
                page_size,
                page_token,
            };
            let page = conn
                .state
                .read(move |q| {
                    q.messages(
                        &service,
                        &ConversationRef::Sid(conversation),
                        order,
                        &request,
                    )
                })
                .await??;
            Ok(json!({
                "messages": page.items.iter().map(render_message).collect::<Vec<_>>(),
                "next_page_token": page.next_page_token,
            }))
        }
    }
}

/// Runs `command` as the connection's identity under the idempotency key
/// derived from the request `id` (scoped to the service and identity, so
/// two users' ids never collide), with pre-event hooks as for any client
/// action.
async fn execute<C: engine_core::TypedCommand>(
    conn: &Conn,
    id: &str,
    command: C,
) -> Result<C::Output, ApiError> {
    if id.is_empty() {
        return Err(ApiError::invalid("id", "every request names an id"));
    }
    let key = format!("ws/{}/{}/{id}", conn.service, conn.identity);
    let envelope = CommandEnvelope::new(CommandId::from_key(key.as_bytes()), command)
        .acting_as(&conn.identity);
    Ok(conn
        .state
        .engine
        .execute_async_with(envelope, ExecuteOptions::default())
        .await?)
}

/// The conversation (a SID or unique name) and the connection's
/// participant in it; not-found alike for a conversation that does not
/// exist and one the identity is not in.
async fn membership(conn: &Conn, raw: &str) -> Result<(ConversationSid, ParticipantSid), ApiError> {
    let (service, identity) = (conn.service, conn.identity.clone());
    let named = conversation_ref(raw);
    let found = conn
        .state
        .read(move |q| {
            let c = q.get_conversation(&service, &named).ok()?;
            let p = c.participant_by_identity(&identity)?;
            Some((c.row().sid, p.sid))
        })
        .await?;
    found.ok_or_else(|| ApiError::not_found(format!("conversation {raw}")))
}

/// One client event as its frame.
fn render_event(event: &ClientEvent) -> String {
    let mut frame = json!({
        "type": "event",
        "event": event.name(),
        "cursor": event.cursor(),
        "conversation_sid": event.conversation_sid().map(|s| s.to_string()),
    });
    if let Some(record) = event.record() {
        frame["date"] = json!(iso8601(record.header.recorded_at));
        frame["data"] = serde_json::to_value(&record.event).unwrap_or(Value::Null);
    }
    if let Some(typing) = event.typing_notice() {
        frame["participant_sid"] = json!(typing.participant_sid.to_string());
        frame["identity"] = json!(typing.identity);
    }
    frame.to_string()
}

/// A message in a history page.
fn render_message(m: &MessageRow) -> Value {
    json!({
        "sid": m.sid.to_string(),
        "conversation_sid": m.conversation_sid.to_string(),
        "index": m.index,
        "author": m.author,
        "participant_sid": m.participant_sid.map(|p| p.to_string()),
        "body": m.body,
        "attributes": m.attributes,
        "media": m.media,
        "date_created": iso8601(m.date_created),
        "date_updated": iso8601(m.date_updated),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine_core::{Engine, LogOptions};
    use events::command::{
        AddParticipant, CreateConversation, CreateService, Keyed, ParticipantSpec,
    };

    #[test]
    fn the_frame_cache_serves_exactly_what_rendering_would() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), LogOptions::default()).unwrap();
        let service = engine.execute(CreateService::new("s").keyed("s")).unwrap();
        let conversation = engine
            .execute(CreateConversation::new(service).keyed("c"))
            .unwrap();
        let join = |who: &str| {
            engine
                .execute(
                    AddParticipant::new(service, conversation, ParticipantSpec::chat(who))
                        .keyed(who),
                )
                .unwrap();
        };
        join("alice");
        let mut alice = engine
            .open_session(service, "alice", SessionStart::Live)
            .unwrap();
        let mut bob = engine
            .open_session(service, "bob", SessionStart::Live)
            .unwrap();
        // bob's join: bob gets conversationAdded, alice participantJoined,
        // at the same cursor; then three messages.
        join("bob");
        for i in 0..3 {
            engine
                .execute(
                    PostMessage::new(service, conversation)
                        .author("alice")
                        .body(format!("m{i}"))
                        .keyed(format!("m{i}")),
                )
                .unwrap();
        }
        let wait = Duration::from_secs(10);
        let take = |s: &mut engine_core::Session| {
            (0..4)
                .map(|_| s.recv_timeout(wait).unwrap().expect("an event"))
                .collect::<Vec<_>>()
        };
        let (a, b) = (take(&mut alice), take(&mut bob));
        assert_eq!(a[0].cursor(), b[0].cursor());
        assert_ne!(a[0].kind(), b[0].kind());
        // One slot: every event collides with the previous one.
        for cache in [FrameCache::with_slots(1), FrameCache::default()] {
            for e in a.iter().chain(&b).chain(&a) {
                assert_eq!(cache.frame(e).as_str(), render_event(e), "{}", e.name());
            }
        }
    }
}
