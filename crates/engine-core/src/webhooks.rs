//! Twilio's post-event webhooks, delivered by a built-in durable reactor.
//!
//! A service's configuration ([`events::ServiceWebhooks`]: post-event URL,
//! method, Twilio's filter names, signing secret) is set with
//! [`events::UpdateServiceWebhooks`], so it is an event in the log and a
//! field of the service's read-model row; it survives restarts as the
//! log does. [`crate::Engine::start_post_event_webhooks`] starts one
//! reactor per engine, named [`POST_EVENT_WEBHOOKS_REACTOR`], on the
//! reactor API ([`crate::reactor`]): its checkpoint and parked events live
//! in the reactors' column family of the engine's store.
//!
//! For each durable record of an event type that has a post-event filter
//! ([`post_event_payload`]), the reactor reads its service's configuration
//! from the read models (the configuration in force when the record is
//! delivered, as Twilio's webhooks use the current one) and, if the URL is
//! set and the filter is among the service's filters, calls the URL:
//! - **Payload.** Twilio's field names (`EventType`, `ConversationSid`,
//!   `MessageSid`, `Index`, `Author`, `Body`, `Attributes`, `Media` as a
//!   JSON array of media descriptors, `DateCreated`, `Source`,
//!   `ClientIdentity`, `ChatServiceSid`, `RetryCount`, …), form-encoded in
//!   the body of a POST or in the query string of a GET. There is no
//!   `AccountSid`: an embedded engine has no account. Fields an update's
//!   event does not carry but never change are added from the read models
//!   (or, for a resource deleted since, from its creation record in the
//!   log): `onMessageUpdated` has the message's `Author` and
//!   `DateCreated`, `onUserUpdated` the user's `Identity`.
//! - **Idempotency.** Every attempt at one webhook carries the same
//!   [`IDEMPOTENCY_HEADER`] (`I-Twilio-Idempotency-Token`, Twilio's name):
//!   `<service SID>-<log position>-<EventType>` (a record fires two
//!   webhooks when a conversation update changes its state), plus
//!   `-<webhook SID>` for a conversation-scoped one: unique per webhook
//!   and stable across retries, replays, re-drives and restarts, so a
//!   receiver can drop repeats. Delivery is at least once; a record's
//!   webhooks are called in order (service, then conversation-scoped by
//!   SID), and a retry calls them all again.
//! - **Signature.** With a signing secret (the service's own, else the
//!   host's [`WebhookOptions::default_signing_secret`], which is never
//!   written to the log), [`SIGNATURE_HEADER`] (`X-Twilio-Signature`) is
//!   [`twilio_signature`] of the URL called and the form parameters,
//!   exactly as Twilio computes it, so Twilio's request validators accept
//!   the request unchanged.
//! - **Retries.** A 2xx answer is success. Anything else (another status,
//!   a connection error, no answer within the timeout,
//!   [`POST_EVENT_WEBHOOK_TIMEOUT_MS_DEFAULT`]) fails the attempt; the
//!   reactor retries it with jittered backoff and parks the record after
//!   its attempts ([`WebhookOptions`]), where
//!   [`crate::ReactorHandle::parked`] lists it and
//!   [`crate::ReactorHandle::redrive`] sends it again. Records after a
//!   failing one wait for it: webhooks are delivered in log order.
//! - **HTTPS** needs the crate feature `webhook-tls`, as the webhook
//!   channel adapter does; without it an `https://` URL's calls fail and
//!   their records are parked with the client's error.
//!
//! - **State changes.** `onConversationStateUpdated` fires, after
//!   `onConversationUpdated`, for a `ConversationUpdated` whose state
//!   differs from the one before (`StateFrom`, `StateTo`, `StateUpdated`,
//!   and `Reason`: `TIMER` for a conversation timer's move, `EVENT` for
//!   the reactivation a new message makes, `API` otherwise). The event
//!   carries only the new state; the one before, and the last activity a
//!   timer's command id derives from, come from a cache of conversations
//!   (at most [`CONVERSATION_STATES_CACHED_MAX`], cleared when full) kept
//!   current from the records the reactor handles, and on a miss (first
//!   update since start, a replay, a re-drive) from the conversation's
//!   stream in the log, read up to the record. Only services with that
//!   filter use either.
//!
//! - **Conversation-scoped webhooks** ([`events::CreateConversationWebhook`],
//!   rows of the conversation in the read models, also created by an
//!   address configuration's autocreation of type `webhook`): a `webhook`
//!   target is called like the service's URL for the events of its
//!   conversation its filters name; a `trigger` is called with
//!   `onMessageAdded` when a new message's body holds one of its keywords
//!   ([`body_triggers`]). Both are signed with the service's secret, and
//!   their tokens end in `-<webhook SID>`. They are read when the record
//!   is delivered (so an [`events::UpdateConversationWebhook`] applies to
//!   every record delivered after it), except for `onConversationRemoved`,
//!   which goes to the webhooks the conversation had when it was removed
//!   (folded, updates included, from its stream in the log: the read
//!   models no longer hold it). `Target=studio`
//!   webhooks are not called here: they hand the conversation to a flow
//!   ([`crate::studio`]).

use std::collections::HashMap;
use std::time::Duration;

use events::{
    ConversationSid, ConversationState, ConversationWebhook, Event, MessageSid, MessagingBinding,
    ParticipantKind, RecordHeader, UserSid, WebhookFilter, WebhookMethod, WebhookSid,
    WebhookTarget,
};
use hmac::{Hmac, Mac};
use projections::ConversationWebhookConfig;
use sha1::Sha1;

use crate::log::CommittedRecord;
use crate::reactor::{
    HandlerError, Reactor, ReactorContext, ReactorError, ReactorFilter, ReactorHandle, ReactorSpec,
    ReactorStart, REACTOR_ATTEMPTS_MAX_DEFAULT, REACTOR_BACKOFF_INITIAL_MS_DEFAULT,
    REACTOR_BACKOFF_MAX_MS_DEFAULT,
};
use crate::sources::Sources;
use crate::studio::{conversation_webhooks_before, visit_stream_before};
use crate::timers::{timer_command_id, TimerKind};
use crate::Engine;

/// The name of the post-event webhook reactor: its checkpoint and parked
/// events are stored under it.
pub const POST_EVENT_WEBHOOKS_REACTOR: &str = "colloquy-post-event-webhooks";

/// The header carrying a record's idempotency token (Twilio's name).
pub const IDEMPOTENCY_HEADER: &str = "I-Twilio-Idempotency-Token";

/// The header carrying the request's signature (Twilio's name).
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// The default time limit of one webhook call, connect to last byte of the
/// answer, in milliseconds: Twilio gives its webhooks 5 seconds. The
/// reactor waits this long at most per attempt, holding later records back.
pub const POST_EVENT_WEBHOOK_TIMEOUT_MS_DEFAULT: u64 = 5_000;

/// The most bytes of a webhook's answer that are read (for the error
/// message of a failed attempt): the body is otherwise ignored.
pub const POST_EVENT_WEBHOOK_RESPONSE_BYTES_MAX: u64 = 4 * 1024;

/// The most conversations whose last handled state the reactor caches
/// for `onConversationStateUpdated` (about 40 bytes each, so about 2.5 MB):
/// past it the cache is cleared, and a miss costs one read of the
/// conversation's stream.
pub const CONVERSATION_STATES_CACHED_MAX: usize = 65_536;

/// The event types with a post-event filter: the reactor's filter, so the
/// others only move its checkpoint.
const WEBHOOK_EVENT_TYPES: [&str; 12] = [
    "message_added",
    "message_updated",
    "message_removed",
    "conversation_created",
    "conversation_updated",
    "conversation_removed",
    "participant_added",
    "participant_updated",
    "participant_removed",
    "delivery_receipt_recorded",
    "user_created",
    "user_updated",
];

/// How the post-event webhook reactor calls and retries, built fluently
/// from [`WebhookOptions::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOptions {
    timeout: Duration,
    attempts_max: u32,
    backoff_initial: Duration,
    backoff_max: Duration,
    start: ReactorStart,
    default_signing_secret: Option<SigningSecret>,
}

/// A signing secret held in memory only; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
struct SigningSecret(String);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

impl Default for WebhookOptions {
    /// [`POST_EVENT_WEBHOOK_TIMEOUT_MS_DEFAULT`], the reactors' default
    /// attempts and backoff, starting [`ReactorStart::Now`] the first time.
    fn default() -> Self {
        WebhookOptions {
            timeout: Duration::from_millis(POST_EVENT_WEBHOOK_TIMEOUT_MS_DEFAULT),
            attempts_max: REACTOR_ATTEMPTS_MAX_DEFAULT,
            backoff_initial: Duration::from_millis(REACTOR_BACKOFF_INITIAL_MS_DEFAULT),
            backoff_max: Duration::from_millis(REACTOR_BACKOFF_MAX_MS_DEFAULT),
            start: ReactorStart::Now,
            default_signing_secret: None,
        }
    }
}

impl WebhookOptions {
    /// Sets the time limit of one call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many times a record's webhook is tried before the record
    /// is parked (values below 1 are taken as 1).
    pub fn attempts_max(mut self, attempts: u32) -> Self {
        self.attempts_max = attempts.max(1);
        self
    }

    /// Sets the backoff between attempts: the ceiling starts at `initial`
    /// and doubles up to `max`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self
    }

    /// Sets where the reactor starts the first time (later it resumes
    /// from its checkpoint).
    pub fn start(mut self, start: ReactorStart) -> Self {
        self.start = start;
        self
    }

    /// Signs the webhooks of every service whose configuration names no
    /// signing secret with `secret`. A host that signs as Twilio does,
    /// with its account's auth token, passes the token here: it stays in
    /// this process's memory and is never written to the log, where a
    /// secret in a service's configuration would be. A service's own
    /// secret still wins.
    pub fn default_signing_secret(mut self, secret: impl Into<String>) -> Self {
        self.default_signing_secret = Some(SigningSecret(secret.into()));
        self
    }
}

impl Engine {
    /// Starts the post-event webhook reactor (see [`crate::webhooks`]):
    /// it calls each service's post-event URL for the durable events its
    /// filters name, with retries, until the engine is dropped or
    /// [`Engine::stop_reactor`]`(`[`POST_EVENT_WEBHOOKS_REACTOR`]`)`. Its
    /// handle lists and re-drives parked webhooks.
    ///
    /// Errors: [`ReactorError::AlreadyRunning`] if it runs already, and
    /// the other errors of [`Engine::start_reactor`].
    pub fn start_post_event_webhooks(
        &self,
        options: WebhookOptions,
    ) -> Result<ReactorHandle, ReactorError> {
        let spec = ReactorSpec::new(POST_EVENT_WEBHOOKS_REACTOR)
            .filter(ReactorFilter::all().event_types(WEBHOOK_EVENT_TYPES))
            .start(options.start)
            .attempts_max(options.attempts_max)
            .backoff(options.backoff_initial, options.backoff_max);
        let mut handler = PostEventWebhooks::new(options.timeout, self.sources());
        handler.default_secret = options.default_signing_secret.map(|s| s.0);
        self.start_reactor(spec, handler)
    }
}

/// What `onConversationStateUpdated` needs of a conversation as of a
/// log position: its state and last activity after every record of it
/// before `next`.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    next: u64,
    state: ConversationState,
    /// The time of its last message, or of its creation before any: the
    /// activity a timer is measured from.
    activity: u64,
}

/// The post-event webhook reactor's handler.
struct PostEventWebhooks {
    agent: ureq::Agent,
    /// The engine's read side, for conversation streams.
    sources: Sources,
    /// Per conversation, its [`Snapshot`] (conversations whose state
    /// change was asked for since start only).
    snapshots: HashMap<ConversationSid, Snapshot>,
    /// The secret for services whose configuration names none
    /// ([`WebhookOptions::default_signing_secret`]).
    default_secret: Option<String>,
}

impl PostEventWebhooks {
    fn new(timeout: Duration, sources: Sources) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build();
        PostEventWebhooks {
            agent: ureq::Agent::new_with_config(config),
            sources,
            snapshots: HashMap::new(),
            default_secret: None,
        }
    }

    /// The state and activity `conversation` had before the record
    /// `header`: from the cache if it is current there, else from the
    /// conversation's stream in the log (then cached).
    ///
    /// Errors: the engine is closed, or reading or decoding the stream
    /// failed (the attempt fails and is retried).
    fn snapshot_before(
        &mut self,
        header: &RecordHeader,
        conversation: ConversationSid,
    ) -> Result<Option<Snapshot>, HandlerError> {
        let cached = self.snapshots.get(&conversation).map(|s| s.next);
        if let Some(s) = self.snapshots.get(&conversation) {
            if s.next <= header.position {
                return Ok(Some(*s));
            }
        }
        let source = self.sources.upgrade().ok_or("the engine is closed")?;
        let mut before: Option<Snapshot> = None;
        visit_stream_before(source.as_ref(), header, Some(conversation), |h, event| {
            let at = h.recorded_at;
            match event {
                Event::ConversationCreated { state, .. } => {
                    before = Some(Snapshot {
                        next: 0,
                        state,
                        activity: at,
                    })
                }
                Event::ConversationUpdated { state, .. } => {
                    if let Some(b) = &mut before {
                        b.state = state;
                    }
                }
                Event::MessageAdded { .. } => {
                    if let Some(b) = &mut before {
                        b.activity = at;
                    }
                }
                _ => {}
            }
            true
        })?;
        let Some(mut before) = before else {
            return Ok(None);
        };
        before.next = header.position;
        // A cached snapshot ahead of the record (a replay, a re-drive)
        // stays: the records between were tracked into it.
        if cached.is_none() {
            if self.snapshots.len() >= CONVERSATION_STATES_CACHED_MAX {
                self.snapshots.clear();
            }
            self.snapshots.insert(conversation, before);
        }
        Ok(Some(before))
    }

    /// Keeps a cached [`Snapshot`] current with `record` (once: a retry of
    /// the record finds it applied); a snapshot already past the record (a
    /// replay, a re-drive) is dropped, to be read again from the log.
    fn track(&mut self, record: &CommittedRecord) {
        let (conversation, state) = match &record.event {
            Event::ConversationUpdated {
                conversation_sid,
                state,
                ..
            } => (conversation_sid, Some(*state)),
            Event::MessageAdded {
                conversation_sid, ..
            } => (conversation_sid, None),
            Event::ConversationRemoved { conversation_sid } => {
                self.snapshots.remove(conversation_sid);
                return;
            }
            _ => return,
        };
        let position = record.header.position;
        let Some(s) = self.snapshots.get_mut(conversation) else {
            return;
        };
        if s.next <= position {
            match state {
                Some(state) => s.state = state,
                None => s.activity = record.header.recorded_at,
            }
            s.next = position + 1;
        } else if s.next != position + 1 {
            self.snapshots.remove(conversation);
        }
    }

    /// Why the `ConversationUpdated` record `record` changed its
    /// conversation's state from `before` (Twilio's `Reason`): `TIMER` if
    /// its command is the conversation timer's for that activity,
    /// `EVENT` if it is the reactivation a new message makes (the next
    /// record, of the same command, adds a message), `API` otherwise.
    ///
    /// Errors: the engine is closed, or reading the next record failed.
    fn reason(
        &self,
        record: &CommittedRecord,
        conversation: ConversationSid,
        to: ConversationState,
        before: &Snapshot,
    ) -> Result<&'static str, HandlerError> {
        let h = &record.header;
        let timer = match to {
            ConversationState::Inactive => Some(TimerKind::Inactive),
            ConversationState::Closed => Some(TimerKind::Closed),
            _ => None,
        };
        if timer.is_some_and(|kind| {
            h.command_id == timer_command_id(h.service_sid, conversation, before.activity, kind)
        }) {
            return Ok("TIMER");
        }
        if before.state == ConversationState::Inactive && to == ConversationState::Active {
            let source = self.sources.upgrade().ok_or("the engine is closed")?;
            let next = source.read_range(h.position + 1..h.position + 2).next();
            if let Some(next) = next {
                let next = next?;
                if next.header.command_id == h.command_id
                    && matches!(next.event()?, Event::MessageAdded { .. })
                {
                    return Ok("EVENT");
                }
            }
        }
        Ok("API")
    }

    /// Calls one webhook: `params` to `url` by `method`, signed with
    /// `secret` if there is one.
    ///
    /// Errors: [`WebhookFailure`] for a failed call or a non-2xx answer.
    fn call(&self, call: &Call, secret: Option<&str>) -> Result<(), WebhookFailure> {
        let Call {
            url,
            method,
            token,
            params,
        } = call;
        let (url, token) = (url.as_str(), token.as_str());
        let query = form_encode(params);
        let (target, signed_params): (String, &[(&str, String)]) = match method {
            WebhookMethod::Post => (url.to_string(), params),
            WebhookMethod::Get => {
                let sep = if url.contains('?') { '&' } else { '?' };
                (format!("{url}{sep}{query}"), &[])
            }
        };
        let signature = secret.map(|secret| twilio_signature(secret, &target, signed_params));
        let sent = match method {
            WebhookMethod::Post => {
                let mut request = self
                    .agent
                    .post(&target)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .header(IDEMPOTENCY_HEADER, token);
                if let Some(s) = &signature {
                    request = request.header(SIGNATURE_HEADER, s);
                }
                request.send(query)
            }
            WebhookMethod::Get => {
                let mut request = self.agent.get(&target).header(IDEMPOTENCY_HEADER, token);
                if let Some(s) = &signature {
                    request = request.header(SIGNATURE_HEADER, s);
                }
                request.call()
            }
        };
        let mut response = sent.map_err(|e| WebhookFailure::Call {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(POST_EVENT_WEBHOOK_RESPONSE_BYTES_MAX)
            .read_to_string()
            .unwrap_or_default();
        Err(WebhookFailure::Status {
            url: url.to_string(),
            status,
            body,
        })
    }
}

/// Why a webhook attempt failed.
#[derive(Debug, thiserror::Error)]
enum WebhookFailure {
    /// The call did not complete (connection, timeout, bad URL).
    #[error("webhook call to {url} failed: {message}")]
    Call {
        /// The URL called.
        url: String,
        /// ureq's message.
        message: String,
    },
    /// The receiver answered with a status other than 2xx.
    #[error("webhook {url} answered {status}: {body}")]
    Status {
        /// The URL called.
        url: String,
        /// The status.
        status: u16,
        /// The start of its body.
        body: String,
    },
}

/// One webhook to call.
struct Call {
    url: String,
    method: WebhookMethod,
    /// The idempotency token.
    token: String,
    params: Vec<(&'static str, String)>,
}

/// Whether `body` holds one of `triggers`: a word of it (split at
/// whitespace, ASCII punctuation trimmed) equal to a keyword, ignoring
/// case.
pub fn body_triggers(body: &str, triggers: &[String]) -> bool {
    body.split_whitespace()
        .map(|w| w.trim_matches(|c: char| c.is_ascii_punctuation()))
        .any(|w| {
            triggers
                .iter()
                .any(|t| t.to_lowercase() == w.to_lowercase())
        })
}

impl Reactor for PostEventWebhooks {
    fn react(
        &mut self,
        cx: &mut ReactorContext<'_>,
        record: &CommittedRecord,
    ) -> Result<(), HandlerError> {
        let h = &record.header;
        let Some((filter, params)) = post_event_payload(record) else {
            return Ok(());
        };
        // The configuration in force when the record is delivered; a
        // deleted service has none: nothing to call.
        let Some((config, hooks, message, identity)) = cx.read(|rm| {
            let svc = rm.service(&h.service_sid)?;
            let conv = h.conversation_sid.and_then(|c| svc.conversation_by_sid(&c));
            let hooks: Vec<(WebhookSid, ConversationWebhookConfig)> = conv
                .map(|c| {
                    c.webhooks()
                        .iter()
                        .map(|(sid, row)| (*sid, row.webhook.clone()))
                        .collect()
                })
                .unwrap_or_default();
            // The fields an update's event does not carry, which never
            // change: a message's author and post time, a user's identity.
            let message = match (&record.event, conv) {
                (Event::MessageUpdated { message_sid, .. }, Some(conv)) => {
                    rm.message_in(conv, message_sid).ok().flatten()
                }
                _ => None,
            };
            let identity = match &record.event {
                Event::UserUpdated { user_sid, .. } => {
                    svc.user(user_sid).map(|u| u.identity.clone())
                }
                _ => None,
            };
            Some((svc.webhooks().clone(), hooks, message, identity))
        }) else {
            return Ok(());
        };
        let mut params = params;
        match &record.event {
            Event::MessageUpdated {
                conversation_sid,
                message_sid,
                ..
            } => {
                let (author, created) = match message {
                    Some(m) => (m.author, m.date_created),
                    // Deleted since: its post is in the log.
                    None => message_added_before(&self.sources, h, *conversation_sid, message_sid)?,
                };
                params.push(("Author", author));
                params.push(("DateCreated", iso8601_millis(created)));
            }
            Event::UserUpdated { user_sid, .. } => {
                let identity = match identity {
                    Some(identity) => identity,
                    // Deleted since: its creation is in the log.
                    None => user_identity_before(&self.sources, h, user_sid)?,
                };
                params.push(("Identity", identity));
            }
            _ => {}
        }
        // A removed conversation's own webhooks are gone from the read
        // models: it gets those it had when it was removed.
        let hooks = match &record.event {
            Event::ConversationRemoved { conversation_sid } => {
                let source = self.sources.upgrade().ok_or("the engine is closed")?;
                conversation_webhooks_before(source.as_ref(), h, *conversation_sid)?
            }
            _ => hooks,
        };
        let hooks: Vec<(WebhookSid, ConversationWebhook)> = hooks
            .into_iter()
            .filter_map(|(sid, w)| match w {
                ConversationWebhookConfig::Url(w) => Some((sid, w)),
                ConversationWebhookConfig::Studio(_) => None,
            })
            .collect();
        // (url, method, filters, token suffix) of each webhook with filters.
        let mut targets: Vec<(&str, WebhookMethod, &[WebhookFilter], String)> = Vec::new();
        if let Some(url) = config.post_webhook_url.as_deref() {
            targets.push((url, config.method, &config.filters, String::new()));
        }
        for (sid, w) in &hooks {
            if w.target == WebhookTarget::Webhook {
                targets.push((&w.url, w.method, &w.filters, format!("-{sid}")));
            }
        }
        let state_wanted = targets
            .iter()
            .any(|t| t.2.contains(&WebhookFilter::OnConversationStateUpdated));
        let mut state_params = None;
        if let Event::ConversationUpdated {
            conversation_sid,
            state,
            ..
        } = &record.event
        {
            if state_wanted {
                let before = self.snapshot_before(h, *conversation_sid)?;
                // Tracked before anything else can fail, so a record that
                // ends up parked still moves the cache on.
                self.track(record);
                if let Some(before) = before {
                    if before.state != *state {
                        let reason = self.reason(record, *conversation_sid, *state, &before)?;
                        state_params = state_updated_payload(record, before.state).map(|mut p| {
                            p.push(("Reason", reason.to_string()));
                            p
                        });
                    }
                }
            }
        }
        // Once per record: a second call finds it applied.
        self.track(record);
        let retry_count = cx.attempt().saturating_sub(1).to_string();
        let token = |event: WebhookFilter, suffix: &str| {
            format!(
                "{}-{}-{}{suffix}",
                h.service_sid,
                h.position,
                event.twilio_name()
            )
        };
        let with_retry = |mut p: Vec<(&'static str, String)>| {
            p.push(("RetryCount", retry_count.clone()));
            p
        };
        let mut calls = Vec::new();
        for (url, method, filters, suffix) in &targets {
            if filters.contains(&filter) {
                calls.push(Call {
                    url: url.to_string(),
                    method: *method,
                    token: token(filter, suffix),
                    params: with_retry(params.clone()),
                });
            }
            if let Some(p) = &state_params {
                if filters.contains(&WebhookFilter::OnConversationStateUpdated) {
                    calls.push(Call {
                        url: url.to_string(),
                        method: *method,
                        token: token(WebhookFilter::OnConversationStateUpdated, suffix),
                        params: with_retry(p.clone()),
                    });
                }
            }
        }
        if let Event::MessageAdded {
            body: Some(body), ..
        } = &record.event
        {
            for (sid, w) in &hooks {
                if w.target == WebhookTarget::Trigger && body_triggers(body, &w.triggers) {
                    calls.push(Call {
                        url: w.url.clone(),
                        method: w.method,
                        token: token(filter, &format!("-{sid}")),
                        params: with_retry(params.clone()),
                    });
                }
            }
        }
        for call in &calls {
            let secret = config
                .signing_secret
                .as_deref()
                .or(self.default_secret.as_deref());
            self.call(call, secret)?;
        }
        Ok(())
    }
}

/// The author and post time of `message`, from its `MessageAdded` record
/// in `conversation`'s stream before the record `header` (for a message
/// deleted since).
///
/// Errors: the engine is closed, reading the stream failed, or the
/// stream holds no such message (a damaged log).
fn message_added_before(
    sources: &Sources,
    header: &RecordHeader,
    conversation: ConversationSid,
    message: &MessageSid,
) -> Result<(String, u64), HandlerError> {
    let source = sources.upgrade().ok_or("the engine is closed")?;
    let mut found = None;
    visit_stream_before(
        source.as_ref(),
        header,
        Some(conversation),
        |h, event| match event {
            Event::MessageAdded {
                message_sid,
                author,
                ..
            } if message_sid == *message => {
                found = Some((author, h.recorded_at));
                false
            }
            _ => true,
        },
    )?;
    if let Some(found) = found {
        return Ok(found);
    }
    Err(format!(
        "no MessageAdded of {message} before position {}",
        header.position
    )
    .into())
}

/// The identity of `user`, from its `UserCreated` record in the service's
/// stream before the record `header` (for a user deleted since).
///
/// Errors: the engine is closed, reading the stream failed, or the
/// stream holds no such user (a damaged log).
fn user_identity_before(
    sources: &Sources,
    header: &RecordHeader,
    user: &UserSid,
) -> Result<String, HandlerError> {
    let source = sources.upgrade().ok_or("the engine is closed")?;
    let mut found = None;
    visit_stream_before(source.as_ref(), header, None, |_, event| match event {
        Event::UserCreated {
            user_sid, identity, ..
        } if user_sid == *user => {
            found = Some(identity);
            false
        }
        _ => true,
    })?;
    if let Some(found) = found {
        return Ok(found);
    }
    Err(format!(
        "no UserCreated of {user} before position {}",
        header.position
    )
    .into())
}

/// The `onConversationStateUpdated` webhook's parameters for a
/// `ConversationUpdated` record whose conversation was in `from` before,
/// by Twilio's names: `ConversationSid`, `StateFrom`, `StateTo`,
/// `StateUpdated` and the common fields of [`post_event_payload`]. `None`
/// for another event, or when the state did not change.
pub fn state_updated_payload(
    record: &CommittedRecord,
    from: ConversationState,
) -> Option<Vec<(&'static str, String)>> {
    let Event::ConversationUpdated {
        conversation_sid,
        state,
        ..
    } = &record.event
    else {
        return None;
    };
    if *state == from {
        return None;
    }
    let mut p = vec![
        ("ConversationSid", conversation_sid.to_string()),
        ("StateFrom", state_name(from).to_string()),
        ("StateTo", state_name(*state).to_string()),
        ("StateUpdated", iso8601_millis(record.header.recorded_at)),
    ];
    common_fields(
        WebhookFilter::OnConversationStateUpdated,
        &record.header,
        &mut p,
    );
    Some(p)
}

/// Appends `name` with `value`'s text if there is a value.
fn push_opt(
    p: &mut Vec<(&'static str, String)>,
    name: &'static str,
    value: Option<&impl ToString>,
) {
    if let Some(v) = value {
        p.push((name, v.to_string()));
    }
}

/// Appends the fields every webhook has: `EventType`, `ChatServiceSid`,
/// `Source` and, when an identity acted, `ClientIdentity`.
fn common_fields(filter: WebhookFilter, h: &RecordHeader, p: &mut Vec<(&'static str, String)>) {
    p.push(("EventType", filter.twilio_name().to_string()));
    p.push(("ChatServiceSid", h.service_sid.to_string()));
    match &h.actor {
        Some(identity) => {
            p.push(("Source", "SDK".to_string()));
            p.push(("ClientIdentity", identity.clone()));
        }
        None => p.push(("Source", "API".to_string())),
    }
}

/// The post-event filter a record's event fires and its webhook's
/// parameters by Twilio's names (without `RetryCount`, which the attempt
/// adds), or `None` for an event with no post-event webhook.
///
/// Every payload has `EventType` (the filter's Twilio name),
/// `ChatServiceSid`, `Source` (`SDK` when a chat identity acted, `API`
/// for the host) and, when an identity acted, `ClientIdentity`. Dates are
/// the record's time in ISO 8601 UTC with milliseconds.
pub fn post_event_payload(
    record: &CommittedRecord,
) -> Option<(WebhookFilter, Vec<(&'static str, String)>)> {
    use WebhookFilter::*;
    let h = &record.header;
    let date = iso8601_millis(h.recorded_at);
    let mut p: Vec<(&'static str, String)> = Vec::new();
    let filter = match &record.event {
        Event::MessageAdded {
            conversation_sid,
            message_sid,
            index,
            author,
            participant_sid,
            body,
            media,
            attributes,
        } => {
            p.push(("ConversationSid", conversation_sid.to_string()));
            p.push(("MessageSid", message_sid.to_string()));
            p.push(("Index", index.to_string()));
            p.push(("Author", author.clone()));
            push_opt(&mut p, "Body", body.as_ref());
            push_opt(&mut p, "ParticipantSid", participant_sid.as_ref());
            if !media.is_empty() {
                p.push(("Media", media_json(media)));
            }
            p.push(("Attributes", attributes.clone()));
            p.push(("DateCreated", date));
            OnMessageAdded
        }
        Event::MessageUpdated {
            conversation_sid,
            message_sid,
            index,
            body,
            attributes,
        } => {
            p.push(("ConversationSid", conversation_sid.to_string()));
            p.push(("MessageSid", message_sid.to_string()));
            p.push(("Index", index.to_string()));
            push_opt(&mut p, "Body", body.as_ref());
            p.push(("Attributes", attributes.clone()));
            p.push(("DateUpdated", date));
            OnMessageUpdated
        }
        Event::MessageRemoved {
            conversation_sid,
            message_sid,
            index,
        } => {
            p.push(("ConversationSid", conversation_sid.to_string()));
            p.push(("MessageSid", message_sid.to_string()));
            p.push(("Index", index.to_string()));
            p.push(("DateRemoved", date));
            OnMessageRemoved
        }
        Event::ConversationCreated {
            conversation_sid,
            friendly_name,
            unique_name,
            attributes,
            state,
            messaging_service_sid,
            ..
        } => {
            p.push(("ConversationSid", conversation_sid.to_string()));
            push_opt(&mut p, "FriendlyName", friendly_name.as_ref());
            push_opt(&mut p, "UniqueName", unique_name.as_ref());
            p.push(("Attributes", attributes.clone()));
            p.push(("State", state_name(*state).to_string()));
            push_opt(
                &mut p,
                "MessagingServiceSid",
                messaging_service_sid.as_ref(),
            );
            p.push(("DateCreated", date));
            OnConversationAdded
        }
        Event::ConversationUpdated {
            conversation_sid,
            friendly_name,
            unique_name,
            attributes,
            state,
            ..
        } => {
            p.push(("ConversationSid", conversation_sid.to_string()));
            push_opt(&mut p, "FriendlyName", friendly_name.as_ref());
            push_opt(&mut p, "UniqueName", unique_name.as_ref());
            p.push(("Attributes", attributes.clone()));
            p.push(("State", state_name(*state).to_string()));
            p.push(("DateUpdated", date));
            OnConversationUpdated
        }
        Event::ConversationRemoved { conversation_sid } => {
            p.push(("ConversationSid", conversation_sid.to_string()));
            p.push(("DateRemoved", date));
            OnConversationRemoved
        }
        Event::ParticipantAdded {
            conversation_sid,
            participant_sid,
            kind,
            attributes,
            role_sid,
            ..
        } => {
            p.push(("ConversationSid", conversation_sid.to_string()));
            p.push(("ParticipantSid", participant_sid.to_string()));
            match kind {
                ParticipantKind::Chat { identity, .. } => p.push(("Identity", identity.clone())),
                ParticipantKind::Messaging(MessagingBinding {
                    address,
                    proxy_address,
                    projected_address,
                }) => {
                    p.push(("MessagingBinding.Address", address.clone()));
                    p.push(("MessagingBinding.ProxyAddress", proxy_address.clone()));
                    push_opt(
                        &mut p,
                        "MessagingBinding.ProjectedAddress",
                        projected_address.as_ref(),
                    );
                }
            }
            p.push(("Attributes", attributes.clone()));
            push_opt(&mut p, "RoleSid", role_sid.as_ref());
            p.push(("DateCreated", date));
            OnParticipantAdded
        }
        Event::ParticipantUpdated {
            conversation_sid,
            participant_sid,
            attributes,
            role_sid,
        } => {
            p.push(("ConversationSid", conversation_sid.to_string()));
            p.push(("ParticipantSid", participant_sid.to_string()));
            p.push(("Attributes", attributes.clone()));
            push_opt(&mut p, "RoleSid", role_sid.as_ref());
            p.push(("DateUpdated", date));
            OnParticipantUpdated
        }
        Event::ParticipantRemoved {
            conversation_sid,
            participant_sid,
        } => {
            p.push(("ConversationSid", conversation_sid.to_string()));
            p.push(("ParticipantSid", participant_sid.to_string()));
            p.push(("DateRemoved", date));
            OnParticipantRemoved
        }
        Event::DeliveryReceiptRecorded {
            conversation_sid,
            receipt_sid,
            message_sid,
            participant_sid,
            status,
            error_code,
            channel_message_sid,
        } => {
            p.push(("ConversationSid", conversation_sid.to_string()));
            p.push(("DeliveryReceiptSid", receipt_sid.to_string()));
            p.push(("MessageSid", message_sid.to_string()));
            p.push(("ParticipantSid", participant_sid.to_string()));
            p.push(("Status", delivery_status_name(*status).to_string()));
            push_opt(&mut p, "ErrorCode", error_code.as_ref());
            push_opt(&mut p, "ChannelMessageSid", channel_message_sid.as_ref());
            p.push(("DateUpdated", date));
            OnDeliveryUpdated
        }
        Event::UserCreated {
            user_sid,
            identity,
            friendly_name,
            attributes,
            role_sid,
        } => {
            p.push(("UserSid", user_sid.to_string()));
            p.push(("Identity", identity.clone()));
            push_opt(&mut p, "FriendlyName", friendly_name.as_ref());
            p.push(("Attributes", attributes.clone()));
            push_opt(&mut p, "RoleSid", role_sid.as_ref());
            p.push(("DateCreated", date));
            OnUserAdded
        }
        Event::UserUpdated {
            user_sid,
            friendly_name,
            attributes,
            role_sid,
        } => {
            p.push(("UserSid", user_sid.to_string()));
            push_opt(&mut p, "FriendlyName", friendly_name.as_ref());
            p.push(("Attributes", attributes.clone()));
            push_opt(&mut p, "RoleSid", role_sid.as_ref());
            p.push(("DateUpdated", date));
            OnUserUpdated
        }
        _ => return None,
    };
    common_fields(filter, h, &mut p);
    Some((filter, p))
}

/// `X-Twilio-Signature` as Twilio computes it: base64 of the HMAC-SHA1,
/// keyed with `secret`, of `url` (exactly as called, query string
/// included) followed by each form parameter's name and value, sorted by
/// name (then value), with nothing between them. A GET passes no
/// parameters: they are in the URL.
pub fn twilio_signature<K: AsRef<str>, V: AsRef<str>>(
    secret: &str,
    url: &str,
    params: &[(K, V)],
) -> String {
    use base64::Engine as _;
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    sorted.sort_unstable();
    // HMAC takes a key of any length: this never fails.
    let mut mac = <Hmac<Sha1>>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `application/x-www-form-urlencoded`: `name=value` pairs joined by `&`,
/// unreserved bytes as they are, a space as `+`, every other byte
/// percent-encoded.
pub fn form_encode<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    fn push(out: &mut String, s: &str) {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    out.push(char::from(b))
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        push(&mut out, k.as_ref());
        out.push('=');
        push(&mut out, v.as_ref());
    }
    out
}

/// Twilio's `Media` field: a JSON array of the media descriptors.
fn media_json(media: &[events::Media]) -> String {
    let items: Vec<serde_json::Value> = media
        .iter()
        .map(|m| {
            serde_json::json!({
                "Sid": m.sid.to_string(),
                "ContentType": m.content_type,
                "Filename": m.filename,
                "Size": m.size,
            })
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}

fn state_name(state: events::ConversationState) -> &'static str {
    use events::ConversationState::*;
    match state {
        Initializing => "initializing",
        Active => "active",
        Inactive => "inactive",
        Closed => "closed",
    }
}

fn delivery_status_name(status: events::DeliveryStatus) -> &'static str {
    use events::DeliveryStatus::*;
    match status {
        Sent => "sent",
        Delivered => "delivered",
        Read => "read",
        Failed => "failed",
        Undelivered => "undelivered",
    }
}

/// Microseconds since the epoch as ISO 8601 UTC with milliseconds
/// (`2026-12-01T21:42:44.123Z`), the form of Twilio's webhook dates.
fn iso8601_millis(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let millis = (micros % 1_000_000) / 1_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01
/// (Howard Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twilio's published example (its request-validation docs; the
    /// official `twilio` Python package's `RequestValidator` gives the
    /// same): auth token `12345`, a URL with a query string and five
    /// POST parameters.
    #[test]
    fn the_signature_matches_twilios_published_example() {
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ];
        // The order given does not matter: parameters are sorted.
        let mut reversed = params;
        reversed.reverse();
        for p in [&params, &reversed] {
            assert_eq!(
                twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", p),
                "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
            );
        }
    }

    #[test]
    fn dates_are_iso8601_utc_with_millis() {
        assert_eq!(iso8601_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso8601_millis(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123Z"
        );
        // A leap day and the turn of a century leap year.
        assert_eq!(
            iso8601_millis(951_782_400_000_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            iso8601_millis(1_709_164_799_999_999),
            "2024-02-28T23:59:59.999Z"
        );
    }

    #[test]
    fn form_encoding_escapes_reserved_and_unicode() {
        assert_eq!(
            form_encode(&[("Body", "a b&c=d/ü"), ("Index", "0")]),
            "Body=a+b%26c%3Dd%2F%C3%BC&Index=0"
        );
    }
}
