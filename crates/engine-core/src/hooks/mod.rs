//! Pre-event hooks: host code that sees a command before it reaches the
//! log and accepts it, rejects it with a reason, or modifies the fields
//! Twilio lets a pre-event webhook modify. Twilio's pre-event webhooks as
//! an in-process API: a webhook that calls a URL is one implementation of
//! [`PreEventHook`].
//!
//! # Contract
//!
//! - **Filters.** A hook is registered for a [`HookScope`] (one service,
//!   or the whole engine) with Twilio's pre-event filters
//!   ([`PreEventFilter`]); a command fires the filters that
//!   [`PreEventFilter`] maps it to. A service's hook runs before the
//!   engine-wide one, each on the command as the previous one left it.
//! - **Before the append.** Hooks run on the engine's hook threads while
//!   the caller waits, before the command is queued for the log's writer;
//!   the writer never waits for a hook, so a slow hook for one service
//!   delays only its own callers. A rejection is
//!   [`CommandError::PreEventHook`](crate::CommandError::PreEventHook)
//!   ([`HookRefusal::Rejected`] with the hook's reason) and writes
//!   nothing. A modification is applied to the command, which is then
//!   validated and decided like any other (a body a hook made too long is
//!   refused as too long); a modification of a field its filter does not
//!   let a hook modify is [`HookRefusal::FieldNotModifiable`], and nothing
//!   of it is applied.
//! - **Deadline.** Each call has the hook's timeout
//!   ([`HOOK_TIMEOUT_DEFAULT`], 5 s as Twilio's webhooks, by default),
//!   counted from when the caller submits it. Past it, or when the hook
//!   returns a [`HookFailure`], panics, or cannot be run, the hook's
//!   [`FailurePolicy`] decides: `Open` (the default) lets the command
//!   proceed as if the hook had accepted it; `Closed` refuses it
//!   ([`HookRefusal::TimedOut`] or [`HookRefusal::Failed`]). Open is the
//!   default because it is what Twilio does: a pre-event webhook that
//!   times out or answers with a server error has the change published
//!   unmodified; only an explicit rejection (a 4xx answer) stops it.
//!   A panic in a hook is caught on its thread and never reaches the
//!   engine.
//! - **Opt-out.** [`ExecuteOptions::without_pre_event_hooks`] runs a
//!   command without hooks, as Twilio's `X-Twilio-Webhook-Enabled`
//!   header decides for a REST request (Twilio fires webhooks for REST
//!   requests only when it is `true`; a server that maps Twilio's REST
//!   API onto the engine passes this option unless the header is `true`).
//!   The choice is not logged: the log records what was decided (the
//!   events of the command as the hooks left it), and nothing replays or
//!   audits a hook, so whether one ran changes nothing a reader of the log
//!   could check.
//! - **Whose commands.** Every caller's: the host's, a chat identity's,
//!   an inbound channel message's, a reactor's (a reactor opts a command
//!   out with [`crate::ReactorContext::execute_with`]). The engine's own commands
//!   (delivery receipts, conversation timer moves) run none: hooks vet
//!   what callers ask, not what the engine's channels and clock record.
//!   Hooks live in memory, like channel adapters: a host registers them
//!   again after each open.
//! - **Idempotency.** A command id already applied in its scope skips
//!   its hooks: the writer answers the retry with the first outcome. The
//!   idempotency fingerprint is that of the command as its caller sent it,
//!   not as a hook modified it, so two attempts of one request racing each
//!   other are still one command whatever the hook answers each time.
//!   Hooks are not exactly-once: both racing attempts run them, and a
//!   hook with side effects must tolerate a second call.
//!
//! Hooks and reactors differ in when they run: a hook runs before the
//! append, synchronously, and can change or stop the command; a reactor
//! sees events after they are durable and can only issue new commands.
//!
//! The threads: at most [`HOOK_THREADS_MAX`] `colloquy-hook` threads,
//! started as calls need them, and one `colloquy-hook-deadline` thread
//! that answers a call at its deadline (see `pool.rs`). A blocking
//! [`Engine::execute`](crate::Engine::execute) parks its thread while a
//! hook runs; [`Engine::execute_async`](crate::Engine::execute_async)
//! awaits the same call without blocking its executor and without needing
//! any particular runtime. The hook itself is synchronous
//! ([`PreEventHook::call`]): an HTTP hook with a blocking client (as the
//! webhook channel adapter's) fits it as is, and the pool bounds how many
//! run at once, where `spawn_blocking` would need a tokio runtime in the
//! host and an async trait would make every hook a future.

mod command_map;
mod pool;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use commands::HookRefusal;
use events::{Command, CommandEnvelope, CommandId, ConversationSid, ServiceSid};
use parking_lot::RwLock;

pub use command_map::PreEventTarget;
pub use pool::HOOK_QUEUE_CALLS_MAX;

use pool::{CallOutcome, HookPool};

pub(crate) use command_map::conversation_ref;
pub(crate) use pool::block_on;

/// A hook's deadline unless configured otherwise
/// ([`PreEventHookConfig::timeout`]): 5 seconds, Twilio's timeout for
/// Conversations webhooks, so a hook written against Twilio's budget
/// behaves the same here.
pub const HOOK_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// The most hook calls that run at once, each on its own `colloquy-hook`
/// thread: a hook typically waits on the network, so threads, not cores,
/// bound them. 64 lets 64 callers wait on slow hooks at once while a
/// stuck hook can hold at most 64 idle stacks; further calls wait in the
/// queue within their own deadlines. Threads start only when calls need
/// them: an engine without hooks starts none.
pub const HOOK_THREADS_MAX: usize = 64;

/// Twilio's pre-event filters, and the commands that fire each:
///
/// | filter | commands | a hook may modify |
/// |---|---|---|
/// | `onMessageAdd` | `PostMessage` | `Body`, `Author`, `Attributes` |
/// | `onMessageAdd` | `ReceiveInbound` (an inbound channel message) | `Body` |
/// | `onMessageUpdate` | `EditMessage` | `Body`, `Attributes` |
/// | `onMessageRemove` | `DeleteMessage` | — |
/// | `onConversationAdd` | `CreateConversation`, `CreateConversationWithParticipants` | `FriendlyName`, `UniqueName`, `Attributes` |
/// | `onConversationUpdate` | `UpdateConversation` | `FriendlyName`, `UniqueName`, `Attributes` |
/// | `onConversationRemove` | `DeleteConversation` | — |
/// | `onParticipantAdd` | `AddParticipant`, and each participant of `CreateConversationWithParticipants` | `Attributes` |
/// | `onParticipantUpdate` | `UpdateParticipant` | `Attributes` |
/// | `onParticipantRemove` | `RemoveParticipant` | — |
/// | `onUserUpdate` | `UpdateUser` | `FriendlyName`, `Attributes` |
///
/// The modifiable fields are those Twilio's pre-event response may carry
/// for the resource (a message's `Body`, `Author` and `Attributes`; a
/// conversation's, participant's or user's descriptive fields), less those
/// the command does not have (an inbound message's author is its sender's
/// binding, an edit keeps its author). SIDs, identities, bindings, roles,
/// states and timers are never modifiable: they route and authorise, and
/// a hook that wants another one rejects the command instead. Other
/// commands (services, roles, user creation and deletion, read horizons,
/// receipts, configuration) fire no pre-event, as in Twilio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PreEventFilter {
    /// `onMessageAdd`.
    OnMessageAdd,
    /// `onMessageUpdate`.
    OnMessageUpdate,
    /// `onMessageRemove`.
    OnMessageRemove,
    /// `onConversationAdd`.
    OnConversationAdd,
    /// `onConversationUpdate`.
    OnConversationUpdate,
    /// `onConversationRemove`.
    OnConversationRemove,
    /// `onParticipantAdd`.
    OnParticipantAdd,
    /// `onParticipantUpdate`.
    OnParticipantUpdate,
    /// `onParticipantRemove`.
    OnParticipantRemove,
    /// `onUserUpdate`.
    OnUserUpdate,
}

impl PreEventFilter {
    /// Every filter.
    pub const ALL: [PreEventFilter; 10] = [
        PreEventFilter::OnMessageAdd,
        PreEventFilter::OnMessageUpdate,
        PreEventFilter::OnMessageRemove,
        PreEventFilter::OnConversationAdd,
        PreEventFilter::OnConversationUpdate,
        PreEventFilter::OnConversationRemove,
        PreEventFilter::OnParticipantAdd,
        PreEventFilter::OnParticipantUpdate,
        PreEventFilter::OnParticipantRemove,
        PreEventFilter::OnUserUpdate,
    ];

    /// Twilio's name of the filter, e.g. `onMessageAdd`.
    pub fn twilio_name(self) -> &'static str {
        match self {
            PreEventFilter::OnMessageAdd => "onMessageAdd",
            PreEventFilter::OnMessageUpdate => "onMessageUpdate",
            PreEventFilter::OnMessageRemove => "onMessageRemove",
            PreEventFilter::OnConversationAdd => "onConversationAdd",
            PreEventFilter::OnConversationUpdate => "onConversationUpdate",
            PreEventFilter::OnConversationRemove => "onConversationRemove",
            PreEventFilter::OnParticipantAdd => "onParticipantAdd",
            PreEventFilter::OnParticipantUpdate => "onParticipantUpdate",
            PreEventFilter::OnParticipantRemove => "onParticipantRemove",
            PreEventFilter::OnUserUpdate => "onUserUpdate",
        }
    }

    /// The filter Twilio names `name` (`onMessageAdd`, …); `None` for any
    /// other name, post-event filters (`onMessageAdded`) included.
    pub fn from_twilio_name(name: &str) -> Option<PreEventFilter> {
        PreEventFilter::ALL
            .into_iter()
            .find(|f| f.twilio_name() == name)
    }

    /// The fields a hook of this filter may modify on some command (the
    /// table above; per command it may be fewer, see
    /// [`PreEvent::modifiable_fields`]). Empty for the removals.
    pub fn modifiable_fields(self) -> &'static [HookField] {
        use HookField::*;
        match self {
            PreEventFilter::OnMessageAdd | PreEventFilter::OnMessageUpdate => {
                &[Body, Author, Attributes]
            }
            PreEventFilter::OnConversationAdd | PreEventFilter::OnConversationUpdate => {
                &[FriendlyName, UniqueName, Attributes]
            }
            PreEventFilter::OnParticipantAdd | PreEventFilter::OnParticipantUpdate => &[Attributes],
            PreEventFilter::OnUserUpdate => &[FriendlyName, Attributes],
            PreEventFilter::OnMessageRemove
            | PreEventFilter::OnConversationRemove
            | PreEventFilter::OnParticipantRemove => &[],
        }
    }
}

/// A field a pre-event hook may modify, named as in Twilio's payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookField {
    /// A message's `Body`.
    Body,
    /// A message's `Author`.
    Author,
    /// A resource's JSON `Attributes` (validated as JSON when decided).
    Attributes,
    /// A conversation's or user's `FriendlyName`.
    FriendlyName,
    /// A conversation's `UniqueName`.
    UniqueName,
}

impl HookField {
    /// Twilio's name of the field (`Body`, `Author`, `Attributes`,
    /// `FriendlyName`, `UniqueName`).
    pub fn twilio_name(self) -> &'static str {
        match self {
            HookField::Body => "Body",
            HookField::Author => "Author",
            HookField::Attributes => "Attributes",
            HookField::FriendlyName => "FriendlyName",
            HookField::UniqueName => "UniqueName",
        }
    }

    /// The field Twilio names `name`, in Twilio's form-parameter spelling
    /// (`Body`) or its JSON response spelling (`body`, `friendlyName`);
    /// `None` for any other name.
    pub fn from_twilio_name(name: &str) -> Option<HookField> {
        [
            HookField::Body,
            HookField::Author,
            HookField::Attributes,
            HookField::FriendlyName,
            HookField::UniqueName,
        ]
        .into_iter()
        .find(|f| {
            let twilio = f.twilio_name();
            let mut chars = twilio.chars();
            let camel: String = chars
                .next()
                .map(|c| c.to_ascii_lowercase())
                .into_iter()
                .chain(chars)
                .collect();
            name == twilio || name == camel
        })
    }
}

/// What a hook changes: new values of modifiable fields, applied in
/// order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Modifications {
    fields: Vec<(HookField, String)>,
}

impl Modifications {
    /// No changes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `field` to `value`.
    pub fn set(mut self, field: HookField, value: impl Into<String>) -> Self {
        self.fields.push((field, value.into()));
        self
    }

    /// Sets the message body.
    pub fn body(self, value: impl Into<String>) -> Self {
        self.set(HookField::Body, value)
    }

    /// Sets the message author.
    pub fn author(self, value: impl Into<String>) -> Self {
        self.set(HookField::Author, value)
    }

    /// Sets the JSON attributes.
    pub fn attributes(self, value: impl Into<String>) -> Self {
        self.set(HookField::Attributes, value)
    }

    /// Sets the friendly name.
    pub fn friendly_name(self, value: impl Into<String>) -> Self {
        self.set(HookField::FriendlyName, value)
    }

    /// Sets the unique name.
    pub fn unique_name(self, value: impl Into<String>) -> Self {
        self.set(HookField::UniqueName, value)
    }

    /// The changes, in order.
    pub fn iter(&self) -> impl Iterator<Item = (HookField, &str)> {
        self.fields.iter().map(|(f, v)| (*f, v.as_str()))
    }
}

/// A hook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookDecision {
    /// Let the command proceed as it is.
    Accept,
    /// Refuse the command; the caller gets
    /// [`HookRefusal::Rejected`] with `reason`, and nothing is written.
    Reject {
        /// Why, for the caller.
        reason: String,
    },
    /// Let the command proceed with these fields changed.
    Modify(Modifications),
}

impl HookDecision {
    /// [`HookDecision::Reject`] with `reason`.
    pub fn reject(reason: impl Into<String>) -> Self {
        HookDecision::Reject {
            reason: reason.into(),
        }
    }
}

/// A hook could not decide (its backend is down, it answered nonsense):
/// treated as its [`FailurePolicy`] says, like a timeout. An HTTP hook
/// returns it for a server error, as Twilio treats a 5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HookFailure {
    /// What went wrong.
    pub message: String,
}

impl HookFailure {
    /// A failure with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        HookFailure {
            message: message.into(),
        }
    }
}

/// What a hook is asked about: one pre-event of a command.
#[derive(Debug, Clone)]
pub struct PreEvent {
    /// The filter that fired.
    pub filter: PreEventFilter,
    /// Which part of the command it is about (a participant of a
    /// `CreateConversationWithParticipants` fires one `onParticipantAdd`
    /// each).
    pub target: PreEventTarget,
    /// The service the command acts in.
    pub service: ServiceSid,
    /// The conversation the command addresses: the SID it names, or the
    /// one its unique name named when the hook was called. `None` for a
    /// conversation not created yet, a unique name no conversation has
    /// (the command will then be refused as not found), and an inbound
    /// message (routed when decided). A SID is passed as named: whether
    /// that conversation exists is decided after the hooks.
    pub conversation_sid: Option<ConversationSid>,
    /// The chat identity acting (Twilio's `ClientIdentity`), `None` for
    /// the trusted host.
    pub acting_identity: Option<String>,
    /// The command's idempotency key.
    pub command_id: CommandId,
    /// The command as the hooks before this one left it.
    pub command: Command,
    /// When the engine stops waiting for this call: an HTTP hook sets its
    /// request timeout from it.
    pub deadline: Instant,
}

impl PreEvent {
    /// The fields this hook may modify here.
    pub fn modifiable_fields(&self) -> &'static [HookField] {
        command_map::modifiable(&self.command, self.target)
    }

    /// The current value of a modifiable `field` (`None` if unset, or if
    /// it is not modifiable here).
    pub fn field(&self, field: HookField) -> Option<String> {
        command_map::field(&self.command, self.target, field)
    }
}

/// Host code run before a command is appended (see the module docs).
///
/// Implemented for every `Fn(&PreEvent) -> Result<HookDecision,
/// HookFailure>` closure that is `Send + Sync + 'static`.
pub trait PreEventHook: Send + Sync + 'static {
    /// Decides on `event`. Runs on a `colloquy-hook` thread while the
    /// command's caller waits, at most until `event.deadline`; a late
    /// answer is dropped. A panic counts as a failure.
    ///
    /// Errors: a [`HookFailure`] when the hook cannot decide; its
    /// [`FailurePolicy`] then applies.
    fn call(&self, event: &PreEvent) -> Result<HookDecision, HookFailure>;
}

impl<F> PreEventHook for F
where
    F: Fn(&PreEvent) -> Result<HookDecision, HookFailure> + Send + Sync + 'static,
{
    fn call(&self, event: &PreEvent) -> Result<HookDecision, HookFailure> {
        self(event)
    }
}

/// Which commands a hook sees: one service's, or every service's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookScope {
    /// Every service (Twilio's account-level webhook).
    Engine,
    /// One service (Twilio's service-level webhook); runs before the
    /// engine-wide hook.
    Service(ServiceSid),
}

/// What a hook that times out, fails or panics means for the command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// The command proceeds as if the hook had accepted it (Twilio's
    /// behaviour, the default).
    #[default]
    Open,
    /// The command is refused ([`HookRefusal::TimedOut`] or
    /// [`HookRefusal::Failed`]).
    Closed,
}

/// A hook with its filters, deadline and failure policy, for
/// [`crate::Engine::set_pre_event_hook`].
#[derive(Clone)]
pub struct PreEventHookConfig {
    hook: Arc<dyn PreEventHook>,
    filters: Vec<PreEventFilter>,
    timeout: Duration,
    on_failure: FailurePolicy,
}

impl std::fmt::Debug for PreEventHookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreEventHookConfig")
            .field("filters", &self.filters)
            .field("timeout", &self.timeout)
            .field("on_failure", &self.on_failure)
            .finish_non_exhaustive()
    }
}

impl PreEventHookConfig {
    /// `hook` for `filters` (with none it never runs), with the default
    /// deadline ([`HOOK_TIMEOUT_DEFAULT`]) and policy
    /// ([`FailurePolicy::Open`]).
    pub fn new(filters: impl IntoIterator<Item = PreEventFilter>, hook: impl PreEventHook) -> Self {
        PreEventHookConfig {
            hook: Arc::new(hook),
            filters: filters.into_iter().collect(),
            timeout: HOOK_TIMEOUT_DEFAULT,
            on_failure: FailurePolicy::default(),
        }
    }

    /// How long a call may take, counted from when the caller submits it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What a timeout, failure or panic means for the command.
    pub fn on_failure(mut self, policy: FailurePolicy) -> Self {
        self.on_failure = policy;
        self
    }
}

/// Per-execution options, for [`crate::Engine::execute_with`] and
/// [`crate::Engine::execute_async_with`]. The default runs hooks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecuteOptions {
    skip_pre_event_hooks: bool,
}

impl ExecuteOptions {
    /// Runs the command without pre-event hooks (Twilio's
    /// `X-Twilio-Webhook-Enabled` not `true`; see the module docs).
    pub fn without_pre_event_hooks(mut self) -> Self {
        self.skip_pre_event_hooks = true;
        self
    }

    /// Whether pre-event hooks run.
    pub fn pre_event_hooks(&self) -> bool {
        !self.skip_pre_event_hooks
    }
}

/// Counters of hook calls since the engine opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookMetrics {
    /// Hook calls made.
    pub calls: u64,
    /// Calls answered [`HookDecision::Accept`].
    pub accepted: u64,
    /// Calls answered [`HookDecision::Reject`].
    pub rejected: u64,
    /// Calls answered [`HookDecision::Modify`] (applied or refused).
    pub modified: u64,
    /// Calls that reached their deadline.
    pub timed_out: u64,
    /// Calls that failed: a [`HookFailure`], a panic, or no thread to run.
    pub failed: u64,
    /// Of the failures, panics.
    pub panicked: u64,
    /// Commands whose hooks were skipped because their id was already
    /// applied (a retry).
    pub retries_skipped: u64,
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    modified: AtomicU64,
    timed_out: AtomicU64,
    failed: AtomicU64,
    panicked: AtomicU64,
    retries_skipped: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The hooks registered, by scope.
#[derive(Default)]
struct Registry {
    engine: Option<Arc<PreEventHookConfig>>,
    services: HashMap<ServiceSid, Arc<PreEventHookConfig>>,
}

/// The hooks to run for one command, in order: per pre-event, the
/// service's hook, then the engine-wide one, each if its filters hold it.
pub(crate) struct Plan {
    steps: Vec<(PreEventFilter, PreEventTarget, Arc<PreEventHookConfig>)>,
}

/// The engine's hooks: the registry and the threads they run on.
pub(crate) struct Hooks {
    registry: RwLock<Registry>,
    /// Whether any hook is registered: a command skips the registry's lock
    /// when none is.
    any: AtomicBool,
    pool: HookPool,
    counters: Counters,
}

impl Hooks {
    pub(crate) fn new() -> Hooks {
        Hooks {
            registry: RwLock::new(Registry::default()),
            any: AtomicBool::new(false),
            pool: HookPool::new(HOOK_THREADS_MAX),
            counters: Counters::default(),
        }
    }

    /// Registers `config` for `scope`, replacing the hook it had.
    pub(crate) fn set(&self, scope: HookScope, config: PreEventHookConfig) {
        let mut registry = self.registry.write();
        let config = Arc::new(config);
        match scope {
            HookScope::Engine => registry.engine = Some(config),
            HookScope::Service(service) => {
                registry.services.insert(service, config);
            }
        }
        self.any.store(true, Ordering::SeqCst);
    }

    /// Removes `scope`'s hook; whether it had one.
    pub(crate) fn remove(&self, scope: HookScope) -> bool {
        let mut registry = self.registry.write();
        let had = match scope {
            HookScope::Engine => registry.engine.take().is_some(),
            HookScope::Service(service) => registry.services.remove(&service).is_some(),
        };
        let any = registry.engine.is_some() || !registry.services.is_empty();
        self.any.store(any, Ordering::SeqCst);
        had
    }

    /// The hooks `command` would run; `None` when it runs none (options
    /// skip them, no pre-event, or no hook registered for its filters).
    pub(crate) fn plan(&self, command: &Command, options: ExecuteOptions) -> Option<Plan> {
        if !options.pre_event_hooks() || !self.any.load(Ordering::SeqCst) {
            return None;
        }
        let service = command.service()?;
        let registry = self.registry.read();
        let scoped = [registry.services.get(&service), registry.engine.as_ref()];
        if scoped.iter().all(Option::is_none) {
            return None;
        }
        let steps: Vec<_> = command_map::pre_events(command)
            .into_iter()
            .flat_map(|(filter, target)| {
                scoped
                    .into_iter()
                    .flatten()
                    .filter(move |config| config.filters.contains(&filter))
                    .map(move |config| (filter, target, config.clone()))
            })
            .collect();
        (!steps.is_empty()).then_some(Plan { steps })
    }

    /// Counts a command whose hooks were skipped as a retry.
    pub(crate) fn note_retry(&self) {
        bump(&self.counters.retries_skipped);
    }

    /// Runs `plan` on `envelope`'s command, hook after hook. Returns the
    /// command as the hooks modified it, or `None` if none did.
    ///
    /// Errors: the first [`HookRefusal`]; the hooks after it do not run.
    pub(crate) async fn run(
        &self,
        plan: Plan,
        envelope: &CommandEnvelope,
        conversation_sid: Option<ConversationSid>,
    ) -> Result<Option<Command>, HookRefusal> {
        let service = envelope
            .command
            .service()
            .expect("a planned command acts in a service");
        let mut command = envelope.command.clone();
        let mut modified = false;
        for (filter, target, config) in plan.steps {
            let now = Instant::now();
            // A timeout too large for the clock waits as long as it can.
            let deadline = now
                .checked_add(config.timeout)
                .unwrap_or_else(|| now + Duration::from_secs(u32::MAX.into()));
            let event = PreEvent {
                filter,
                target,
                service,
                conversation_sid,
                acting_identity: envelope.acting_identity.clone(),
                command_id: envelope.command_id,
                command: command.clone(),
                deadline,
            };
            bump(&self.counters.calls);
            let slot = self.pool.call(config.hook.clone(), event, deadline);
            let failure = match slot.wait().await {
                CallOutcome::Answered(Ok(HookDecision::Accept)) => {
                    bump(&self.counters.accepted);
                    continue;
                }
                CallOutcome::Answered(Ok(HookDecision::Reject { reason })) => {
                    bump(&self.counters.rejected);
                    return Err(HookRefusal::Rejected {
                        filter: filter.twilio_name(),
                        reason,
                    });
                }
                CallOutcome::Answered(Ok(HookDecision::Modify(changes))) => {
                    bump(&self.counters.modified);
                    for (field, value) in changes.fields {
                        if !command_map::set_field(&mut command, target, field, value) {
                            return Err(HookRefusal::FieldNotModifiable {
                                filter: filter.twilio_name(),
                                command: command.type_name(),
                                field: field.twilio_name(),
                                allowed: command_map::modifiable(&command, target)
                                    .iter()
                                    .map(|f| f.twilio_name())
                                    .collect(),
                            });
                        }
                        modified = true;
                    }
                    continue;
                }
                CallOutcome::Answered(Err(failure)) => {
                    bump(&self.counters.failed);
                    HookRefusal::Failed {
                        filter: filter.twilio_name(),
                        message: failure.message,
                    }
                }
                CallOutcome::Panicked(message) => {
                    bump(&self.counters.failed);
                    bump(&self.counters.panicked);
                    HookRefusal::Failed {
                        filter: filter.twilio_name(),
                        message: format!("the hook panicked: {message}"),
                    }
                }
                CallOutcome::Unavailable(why) => {
                    bump(&self.counters.failed);
                    HookRefusal::Failed {
                        filter: filter.twilio_name(),
                        message: why,
                    }
                }
                CallOutcome::TimedOut => {
                    bump(&self.counters.timed_out);
                    HookRefusal::TimedOut {
                        filter: filter.twilio_name(),
                        timeout_ms: u64::try_from(config.timeout.as_millis()).unwrap_or(u64::MAX),
                    }
                }
            };
            match config.on_failure {
                FailurePolicy::Closed => return Err(failure),
                FailurePolicy::Open => {
                    tracing::warn!(
                        command_id = %envelope.command_id,
                        "{failure}; the hook is fail-open, so the command proceeds"
                    );
                }
            }
        }
        Ok(modified.then_some(command))
    }

    /// The counters.
    pub(crate) fn metrics(&self) -> HookMetrics {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HookMetrics {
            calls: get(&c.calls),
            accepted: get(&c.accepted),
            rejected: get(&c.rejected),
            modified: get(&c.modified),
            timed_out: get(&c.timed_out),
            failed: get(&c.failed),
            panicked: get(&c.panicked),
            retries_skipped: get(&c.retries_skipped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_fields_round_trip_through_their_twilio_names() {
        for filter in PreEventFilter::ALL {
            assert_eq!(
                PreEventFilter::from_twilio_name(filter.twilio_name()),
                Some(filter)
            );
        }
        // Post-event filters and unknown names are not pre-event filters.
        assert_eq!(PreEventFilter::from_twilio_name("onMessageAdded"), None);
        assert_eq!(PreEventFilter::from_twilio_name("onmessageadd"), None);
        for (name, field) in [
            ("Body", HookField::Body),
            ("body", HookField::Body),
            ("author", HookField::Author),
            ("Attributes", HookField::Attributes),
            ("friendlyName", HookField::FriendlyName),
            ("FriendlyName", HookField::FriendlyName),
            ("uniqueName", HookField::UniqueName),
        ] {
            assert_eq!(HookField::from_twilio_name(name), Some(field), "{name}");
        }
        for name in ["BODY", "friendlyname", "Sid", ""] {
            assert_eq!(HookField::from_twilio_name(name), None, "{name}");
        }
    }
}
