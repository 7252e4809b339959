//! Twilio's `Target=studio` conversation webhooks: a conversation handed
//! to a Studio flow, and the flow as a host-registered durable reactor.
//!
//! A Studio webhook ([`events::CreateConversationStudioWebhook`], or an
//! address configuration's autocreation of type `studio`) is an event in
//! the log naming a flow SID (`FW…`). A host registers the flow's code
//! under that SID with [`crate::Engine::start_studio_flow`]: a reactor
//! named [`studio_flow_reactor_name`] (`colloquy-studio-FW…`) whose
//! handler is the host's [`Reactor`], wrapped so that it sees exactly the
//! `MessageAdded` records of conversations handed to the flow *when the
//! message was added*: a conversation is handed to the flow at a log
//! position if a Studio webhook naming the flow was created before that
//! position and not removed before it. The wrapper decides this from the
//! log, never from the read models' current state, so every delivery of a
//! record (a retry, a restart, a replay) makes the same decision and the
//! reactor's exactly-once rule (same record, same commands) holds. The
//! reactor machinery is unchanged: checkpoint, retries, parking,
//! re-drive, replay and metrics are a reactor's.
//!
//! - **Deciding.** Per conversation the wrapper caches the flow's Studio
//!   webhooks as of a position, kept current from the webhook records the
//!   reactor also receives (its filter holds `message_added`,
//!   `conversation_studio_webhook_created`, `conversation_webhook_updated`
//!   (a Studio webhook moved to another flow, or to this one),
//!   `conversation_webhook_removed` and `conversation_removed`). A conversation not in the cache (the
//!   first of its records since the reactor started, or one before the
//!   cached position after a replay) costs one read of its stream in the
//!   log up to the record. The cache holds at most
//!   [`STUDIO_CONVERSATIONS_CACHED_MAX`] conversations and is cleared
//!   when full.
//! - **ReplayAfter.** A Studio webhook created with `replay_after: Some(i)`
//!   hands the flow, when the reactor handles the webhook's record, the
//!   `MessageAdded` records of the conversation before it with an index
//!   above `i` (in log order; messages removed before the webhook are
//!   left out). Only their positions are gathered (one pass over the
//!   conversation's stream), and each is read again as it is handed over,
//!   so a long conversation is not held in memory. They are handled
//!   within the webhook's record: the handler's commands get ids derived
//!   from the webhook record's position ([`ReactorContext::position`])
//!   and their ordinals, so a re-delivery replays them with the same ids,
//!   and their effects apply once.
//! - **Retries.** Twilio's `StudioRetryCount` is stored with the address
//!   configuration; the flow's retries are its reactor's
//!   ([`StudioFlowSpec::attempts_max`]).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use events::{ConversationSid, Event, FlowSid, MessageSid, RecordHeader, WebhookSid};
use projections::ConversationWebhookConfig;

use crate::log::CommittedRecord;
use crate::reactor::{
    HandlerError, Reactor, ReactorContext, ReactorError, ReactorFilter, ReactorHandle, ReactorSpec,
    ReactorStart,
};
use crate::sources::ReadSource;
use crate::Engine;

/// The most conversations whose Studio webhooks a flow's reactor caches
/// (a SID, a position and usually an empty set: under 100 bytes each, so
/// about 6 MB): past it the cache is cleared, and a miss costs one read of
/// the conversation's stream.
pub const STUDIO_CONVERSATIONS_CACHED_MAX: usize = 65_536;

/// The event types a flow's reactor receives: the messages, and what
/// changes which conversations are handed to a flow.
const STUDIO_EVENT_TYPES: [&str; 5] = [
    "message_added",
    "conversation_studio_webhook_created",
    "conversation_webhook_updated",
    "conversation_webhook_removed",
    "conversation_removed",
];

/// The name of the reactor running the flow `flow`
/// (`colloquy-studio-FW…`): its checkpoint, parked records and command
/// ids are keyed by it.
pub fn studio_flow_reactor_name(flow: FlowSid) -> String {
    format!("colloquy-studio-{flow}")
}

/// A Studio flow's reactor settings, built fluently from
/// [`StudioFlowSpec::new`]: the flow, where its reactor starts the first
/// time, its attempts and backoff (as [`ReactorSpec`]'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudioFlowSpec {
    flow: FlowSid,
    spec: ReactorSpec,
}

impl StudioFlowSpec {
    /// The flow `flow`, starting [`ReactorStart::Beginning`] the first
    /// time (so conversations handed to the flow before the host first
    /// registered it are handled too), with the reactors' default attempts
    /// and backoff.
    pub fn new(flow: FlowSid) -> Self {
        let spec = ReactorSpec::new(studio_flow_reactor_name(flow))
            .filter(ReactorFilter::all().event_types(STUDIO_EVENT_TYPES))
            .start(ReactorStart::Beginning);
        StudioFlowSpec { flow, spec }
    }

    /// Sets where the flow's reactor starts if it has no checkpoint yet.
    pub fn start(mut self, start: ReactorStart) -> Self {
        self.spec = self.spec.start(start);
        self
    }

    /// Sets how many times a record is tried before it is parked (as
    /// [`ReactorSpec::attempts_max`]).
    pub fn attempts_max(mut self, attempts: u32) -> Self {
        self.spec = self.spec.attempts_max(attempts);
        self
    }

    /// Sets the backoff between attempts (as [`ReactorSpec::backoff`]).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.spec = self.spec.backoff(initial, max);
        self
    }

    /// The flow.
    pub fn flow(&self) -> FlowSid {
        self.flow
    }
}

impl Engine {
    /// Registers the Studio flow `spec.flow()` with its handler `flow`,
    /// and starts its reactor (see [`crate::studio`]): `flow` receives the
    /// `MessageAdded` records of each conversation handed to the flow by a
    /// Studio webhook, in log order, once durable, with a
    /// [`ReactorContext`] whose commands are exactly once. It runs until
    /// the engine is dropped or
    /// [`Engine::stop_reactor`]`(&`[`studio_flow_reactor_name`]`(flow))`.
    ///
    /// Errors: [`ReactorError::AlreadyRunning`] if the flow runs already,
    /// and the other errors of [`Engine::start_reactor`].
    pub fn start_studio_flow(
        &self,
        spec: StudioFlowSpec,
        flow: impl Reactor,
    ) -> Result<ReactorHandle, ReactorError> {
        let StudioFlowSpec { flow: sid, spec } = spec;
        self.start_reactor(
            spec,
            StudioFlow {
                flow: sid,
                inner: flow,
                handed: HashMap::new(),
            },
        )
    }
}

/// The Studio webhooks naming one flow that one conversation has, after
/// every record of it before `next`.
struct Handed {
    next: u64,
    webhooks: BTreeSet<WebhookSid>,
}

/// A flow's reactor: the host's handler behind the hand-off decision.
struct StudioFlow<R> {
    flow: FlowSid,
    inner: R,
    /// The cache of the module docs.
    handed: HashMap<ConversationSid, Handed>,
}

impl<R: Reactor> StudioFlow<R> {
    /// Whether `conversation` was handed to the flow just before the record
    /// at `header.position`.
    ///
    /// Errors: the engine is closed, or reading the stream failed.
    fn is_handed(
        &mut self,
        reads: &dyn ReadSource,
        header: &RecordHeader,
        conversation: ConversationSid,
    ) -> Result<bool, HandlerError> {
        let cached = self.handed.get(&conversation).map(|h| h.next);
        if let Some(h) = self.handed.get(&conversation) {
            if h.next <= header.position {
                return Ok(!h.webhooks.is_empty());
            }
        }
        let webhooks = conversation_webhooks_before(reads, header, conversation)?
            .into_iter()
            .filter(|(_, w)| w.studio().is_some_and(|s| s.flow_sid == self.flow))
            .map(|(sid, _)| sid)
            .collect::<BTreeSet<_>>();
        let handed = !webhooks.is_empty();
        // A cached entry ahead of the record (a replay, a re-drive) stays:
        // the records between were tracked into it.
        if cached.is_none() {
            if self.handed.len() >= STUDIO_CONVERSATIONS_CACHED_MAX {
                self.handed.clear();
            }
            self.handed.insert(
                conversation,
                Handed {
                    next: header.position,
                    webhooks,
                },
            );
        }
        Ok(handed)
    }

    /// Applies a webhook record of `conversation` at `position` to its
    /// cached entry (once: a retry of the record finds it applied); an
    /// entry already past it (a replay, a re-drive) is dropped, to be read
    /// again from the log.
    fn track(
        &mut self,
        conversation: ConversationSid,
        position: u64,
        change: impl FnOnce(&mut BTreeSet<WebhookSid>),
    ) {
        let Some(h) = self.handed.get_mut(&conversation) else {
            return;
        };
        if h.next <= position {
            change(&mut h.webhooks);
            h.next = position + 1;
        } else if h.next != position + 1 {
            self.handed.remove(&conversation);
        }
    }

    /// Hands the flow the messages `conversation` held before the webhook
    /// record `header` with an index above `after`.
    ///
    /// Errors: reading the stream failed, or the handler's.
    fn replay(
        &mut self,
        cx: &mut ReactorContext<'_>,
        header: &RecordHeader,
        conversation: ConversationSid,
        after: u64,
    ) -> Result<(), HandlerError> {
        // The positions only (8 bytes a message, plus the SID while it
        // is live): a long conversation is not held in memory; each
        // message is read again when it is handed over.
        let mut live: HashMap<MessageSid, u64> = HashMap::new();
        visit_stream_before(cx.reads(), header, Some(conversation), |h, event| {
            match event {
                Event::MessageAdded {
                    index, message_sid, ..
                } if index > after => {
                    live.insert(message_sid, h.position);
                }
                Event::MessageRemoved { message_sid, .. } => {
                    live.remove(&message_sid);
                }
                _ => {}
            }
            true
        })?;
        let mut positions: Vec<u64> = live.into_values().collect();
        positions.sort_unstable();
        for position in positions {
            let read = cx.reads().read_range(position..position + 1).next();
            let record = read.ok_or_else(|| format!("no record at position {position}"))??;
            let message = CommittedRecord {
                event: record.event()?,
                header: record.header,
            };
            self.inner.react(cx, &message)?;
        }
        Ok(())
    }
}

impl<R: Reactor> Reactor for StudioFlow<R> {
    fn react(
        &mut self,
        cx: &mut ReactorContext<'_>,
        record: &CommittedRecord,
    ) -> Result<(), HandlerError> {
        let position = record.header.position;
        match &record.event {
            Event::MessageAdded {
                conversation_sid, ..
            } if self.is_handed(cx.reads(), &record.header, *conversation_sid)? => {
                self.inner.react(cx, record)?;
            }
            Event::ConversationStudioWebhookCreated {
                conversation_sid,
                webhook_sid,
                studio,
            } if studio.flow_sid == self.flow => {
                // What the log says first: a replay that fails (and is
                // parked) does not undo the hand-off.
                self.track(*conversation_sid, position, |w| {
                    w.insert(*webhook_sid);
                });
                if let Some(after) = studio.replay_after {
                    self.replay(cx, &record.header, *conversation_sid, after)?;
                }
            }
            Event::ConversationWebhookUpdated {
                conversation_sid,
                webhook_sid,
                webhook,
            } => {
                let flow = self.flow;
                self.track(*conversation_sid, position, |w| {
                    if webhook.studio().is_some_and(|s| s.flow_sid == flow) {
                        w.insert(*webhook_sid);
                    } else {
                        w.remove(webhook_sid);
                    }
                })
            }
            Event::ConversationWebhookRemoved {
                conversation_sid,
                webhook_sid,
            } => self.track(*conversation_sid, position, |w| {
                w.remove(webhook_sid);
            }),
            Event::ConversationRemoved { conversation_sid } => {
                self.handed.remove(conversation_sid);
            }
            _ => {}
        }
        Ok(())
    }
}

/// The conversation-scoped webhooks `conversation` had just before the
/// record `header` (its records before `header.position` folded from its
/// stream in the log): what a reader deciding by the configuration *at
/// an event* needs, once the read models have moved on (the flow's
/// hand-off, a deleted conversation's `onConversationRemoved`).
///
/// Errors: the engine's stream read or a record's decoding failed.
pub(crate) fn conversation_webhooks_before(
    reads: &dyn ReadSource,
    header: &RecordHeader,
    conversation: ConversationSid,
) -> Result<Vec<(WebhookSid, ConversationWebhookConfig)>, HandlerError> {
    let mut webhooks: Vec<(WebhookSid, ConversationWebhookConfig)> = Vec::new();
    visit_stream_before(reads, header, Some(conversation), |_, event| {
        match event {
            Event::ConversationWebhookCreated {
                webhook_sid,
                webhook,
                ..
            } => webhooks.push((webhook_sid, ConversationWebhookConfig::Url(webhook))),
            Event::ConversationStudioWebhookCreated {
                webhook_sid,
                studio,
                ..
            } => webhooks.push((webhook_sid, ConversationWebhookConfig::Studio(studio))),
            Event::ConversationWebhookUpdated {
                webhook_sid,
                webhook,
                ..
            } => {
                if let Some((_, current)) = webhooks.iter_mut().find(|(sid, _)| *sid == webhook_sid)
                {
                    *current = webhook;
                }
            }
            Event::ConversationWebhookRemoved { webhook_sid, .. } => {
                webhooks.retain(|(sid, _)| *sid != webhook_sid)
            }
            _ => {}
        }
        true
    })?;
    webhooks.sort_by_key(|(sid, _)| *sid);
    Ok(webhooks)
}

/// Calls `visit` with each record of the stream of `conversation` (or of
/// the service's own records, for `None`) in the service of `header`, in
/// log order, up to the record `header` (excluded) or until `visit`
/// answers `false`: a reader's view of the log as it was just before a
/// record.
///
/// Errors: reading the stream or decoding a record failed.
pub(crate) fn visit_stream_before(
    reads: &dyn ReadSource,
    header: &RecordHeader,
    conversation: Option<ConversationSid>,
    mut visit: impl FnMut(&RecordHeader, Event) -> bool,
) -> Result<(), HandlerError> {
    for record in reads.read_stream(header.service_sid, conversation, 0) {
        let record = record?;
        if record.header.position >= header.position {
            break;
        }
        let event = record.event()?;
        if !visit(&record.header, event) {
            break;
        }
    }
    Ok(())
}
