//! The delivery scheduler: outbox facts from the writer, the pending set
//! with its backoff timers, recovery at open, and the sender threads.

use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use events::{
    AddressType, Command, CommandEnvelope, CommandId, ConversationRef, ConversationSid,
    DeliveryStatus, Event, MessageSid, ParticipantSid, RecordHeader, ServiceSid,
};
use parking_lot::RwLock;
use projections::{Conversation, ReadModels};

use super::{
    channel_of, DeliveryId, DeliveryMetrics, DeliveryOptions, OutboundMessage, SendError,
    SharedAdapter,
};
use crate::commands::CommandError;
use crate::engine::Core;
use crate::read_view::ReadView;

/// What the writer learned about the outbox from one durable record.
pub(crate) enum Fact {
    /// A message with non-chat recipients (never its author).
    Outbox {
        service: ServiceSid,
        conversation: ConversationSid,
        message: MessageSid,
        recipients: Vec<(ParticipantSid, AddressType)>,
    },
    /// A receipt exists for the pair: the delivery is done.
    Receipt {
        message: MessageSid,
        participant: ParticipantSid,
    },
    /// The participant left: its deliveries are void.
    ParticipantGone(ParticipantSid),
    /// The message was deleted.
    MessageGone(MessageSid),
    /// The conversation was deleted.
    ConversationGone(ServiceSid, ConversationSid),
    /// The service was deleted.
    ServiceGone(ServiceSid),
}

/// What the scheduler is sent.
pub(crate) enum SchedMsg {
    /// Facts of a durable batch, with their positions, in log order.
    Facts(Vec<(u64, Fact)>),
    /// An adapter was registered for a channel.
    AdapterAdded(AddressType),
    /// A sender finished a job.
    Finished { id: DeliveryId, outcome: Outcome },
    /// Stop.
    Shutdown,
}

/// How a job ended.
pub(crate) enum Outcome {
    /// A receipt was recorded, or the delivery is void.
    Done,
    /// The attempt failed and was recorded; retry later.
    Retry { failed_attempts: u32 },
    /// Recording the result failed (the log refuses appends): keep the
    /// pair out of circulation rather than resend it in a loop.
    Stuck,
}

/// The delivery part of the writer's state machine.
pub(crate) struct DeliveryWriter {
    non_chat: HashMap<(ServiceSid, ConversationSid), Vec<(ParticipantSid, AddressType)>>,
    pending: Vec<(u64, Fact)>,
    tx: Sender<SchedMsg>,
}

fn non_chat_index(
    rm: &ReadModels,
) -> HashMap<(ServiceSid, ConversationSid), Vec<(ParticipantSid, AddressType)>> {
    let mut index = HashMap::new();
    for svc in rm.services() {
        for conv in svc.conversations() {
            if conv.non_chat_count() == 0 {
                continue;
            }
            let list: Vec<_> = conv
                .participants()
                .filter_map(|p| p.kind.binding().map(|b| (p.sid, channel_of(b))))
                .collect();
            index.insert((svc.row().sid, conv.row().sid), list);
        }
    }
    index
}

impl DeliveryWriter {
    pub(crate) fn new(rm: &ReadModels, tx: Sender<SchedMsg>) -> Self {
        DeliveryWriter {
            non_chat: non_chat_index(rm),
            pending: Vec::new(),
            tx,
        }
    }

    /// Notes what `event` means for the outbox; `rm` is as just before it.
    pub(crate) fn observe(&mut self, rm: &ReadModels, header: &RecordHeader, event: &Event) {
        let service = header.service_sid;
        let position = header.position;
        let fact = match event {
            Event::ParticipantAdded {
                conversation_sid,
                participant_sid,
                kind,
                ..
            } => {
                let exists = rm
                    .service(&service)
                    .is_some_and(|s| s.conversation_by_sid(conversation_sid).is_some());
                if let (true, Some(binding)) = (exists, kind.binding()) {
                    self.non_chat
                        .entry((service, *conversation_sid))
                        .or_default()
                        .push((*participant_sid, channel_of(binding)));
                }
                return;
            }
            Event::ParticipantRemoved {
                conversation_sid,
                participant_sid,
            } => {
                let Some(list) = self.non_chat.get_mut(&(service, *conversation_sid)) else {
                    return;
                };
                let Some(i) = list.iter().position(|(p, _)| p == participant_sid) else {
                    return;
                };
                list.swap_remove(i);
                Fact::ParticipantGone(*participant_sid)
            }
            Event::MessageAdded {
                conversation_sid,
                message_sid,
                participant_sid,
                ..
            } => {
                let Some(list) = self.non_chat.get(&(service, *conversation_sid)) else {
                    return;
                };
                let recipients: Vec<_> = list
                    .iter()
                    .filter(|(p, _)| Some(*p) != *participant_sid)
                    .copied()
                    .collect();
                if recipients.is_empty() {
                    return;
                }
                Fact::Outbox {
                    service,
                    conversation: *conversation_sid,
                    message: *message_sid,
                    recipients,
                }
            }
            Event::DeliveryReceiptRecorded {
                message_sid,
                participant_sid,
                ..
            } => Fact::Receipt {
                message: *message_sid,
                participant: *participant_sid,
            },
            Event::MessageRemoved { message_sid, .. } => Fact::MessageGone(*message_sid),
            Event::ConversationRemoved { conversation_sid } => {
                if self
                    .non_chat
                    .remove(&(service, *conversation_sid))
                    .is_none()
                {
                    return;
                }
                Fact::ConversationGone(service, *conversation_sid)
            }
            Event::ServiceDeleted => {
                self.non_chat.retain(|(s, _), _| *s != service);
                Fact::ServiceGone(service)
            }
            _ => return,
        };
        self.pending.push((position, fact));
    }

    /// Hands a durable batch's facts to the scheduler (never blocks).
    pub(crate) fn committed(&mut self) {
        if !self.pending.is_empty() {
            let facts = std::mem::take(&mut self.pending);
            let _ = self.tx.send(SchedMsg::Facts(facts));
        }
    }

    /// Forgets a batch that did not become durable.
    pub(crate) fn discard(&mut self, rm: &ReadModels) {
        self.pending.clear();
        self.non_chat = non_chat_index(rm);
    }
}

#[derive(Debug, Default)]
struct Counters {
    pending: AtomicU64,
    recovered: AtomicU64,
    attempts: AtomicU64,
    sent: AtomicU64,
    failed_attempts: AtomicU64,
    failed: AtomicU64,
}

/// What the engine, the scheduler and the senders share.
pub(crate) struct DeliveryShared {
    pub(crate) options: DeliveryOptions,
    adapters: RwLock<HashMap<AddressType, SharedAdapter>>,
    counters: Counters,
    tx: Sender<SchedMsg>,
}

impl DeliveryShared {
    pub(crate) fn new(options: DeliveryOptions, tx: Sender<SchedMsg>) -> Self {
        DeliveryShared {
            options,
            adapters: RwLock::new(HashMap::new()),
            counters: Counters::default(),
            tx,
        }
    }

    /// Registers (or replaces) the adapter for `channel`; deliveries
    /// waiting for one start.
    pub(crate) fn register(&self, channel: AddressType, adapter: SharedAdapter) {
        self.adapters.write().insert(channel, adapter);
        let _ = self.tx.send(SchedMsg::AdapterAdded(channel));
    }

    fn adapter(&self, channel: AddressType) -> Option<SharedAdapter> {
        self.adapters.read().get(&channel).cloned()
    }

    pub(crate) fn metrics(&self) -> DeliveryMetrics {
        let c = &self.counters;
        DeliveryMetrics {
            pending: c.pending.load(Ordering::Relaxed),
            recovered: c.recovered.load(Ordering::Relaxed),
            attempts: c.attempts.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn shutdown(&self) {
        let _ = self.tx.send(SchedMsg::Shutdown);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting(Instant),
    Parked,
    InFlight,
    Stuck,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    service: ServiceSid,
    conversation: ConversationSid,
    channel: AddressType,
    failed: u32,
    state: State,
}

struct Job {
    id: DeliveryId,
    service: ServiceSid,
    conversation: ConversationSid,
    channel: AddressType,
    attempt: u32,
    adapter: SharedAdapter,
}

struct Scheduler {
    core: Arc<Core>,
    rx: Receiver<SchedMsg>,
    jobs: Sender<Job>,
    entries: HashMap<DeliveryId, Entry>,
    queue: BTreeSet<(Instant, DeliveryId)>,
    recovered_upto: Option<u64>,
}

/// The delivery threads, joined by [`DeliveryThreads::join`].
pub(crate) struct DeliveryThreads {
    scheduler: Option<JoinHandle<()>>,
}

impl DeliveryThreads {
    /// Waits for the scheduler (which waits for its senders) after
    /// [`DeliveryShared::shutdown`].
    pub(crate) fn join(&mut self) {
        if let Some(h) = self.scheduler.take() {
            if h.join().is_err() {
                tracing::error!("the delivery scheduler thread panicked");
            }
        }
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Recovers the pending deliveries from the read models and starts the
/// scheduler and sender threads.
///
/// Errors: a thread could not be spawned.
pub(crate) fn start(
    core: &Arc<Core>,
    rx: Receiver<SchedMsg>,
) -> Result<DeliveryThreads, std::io::Error> {
    let now = Instant::now();
    let (recovered_upto, entries) = recover(core, now);
    let shared = &core.delivery;
    shared
        .counters
        .recovered
        .store(entries.len() as u64, Ordering::Relaxed);
    let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded::<Job>();
    let mut senders = Vec::new();
    for i in 0..shared.options.sender_threads {
        let core = core.clone();
        let jobs = jobs_rx.clone();
        senders.push(
            std::thread::Builder::new()
                .name(format!("colloquy-delivery-{i}"))
                .spawn(move || sender_loop(&core, &jobs))?,
        );
    }
    let mut scheduler = Scheduler {
        core: core.clone(),
        rx,
        jobs: jobs_tx,
        entries: HashMap::new(),
        queue: BTreeSet::new(),
        recovered_upto,
    };
    for (id, entry) in entries {
        scheduler.insert(id, entry);
    }
    let handle = std::thread::Builder::new()
        .name("colloquy-delivery-scheduler".into())
        .spawn(move || {
            scheduler.run();
            let Scheduler { jobs, .. } = scheduler;
            drop(jobs);
            for s in senders {
                if s.join().is_err() {
                    tracing::error!("a delivery sender thread panicked");
                }
            }
        })?;
    Ok(DeliveryThreads {
        scheduler: Some(handle),
    })
}

impl Scheduler {
    fn run(&mut self) {
        loop {
            self.dispatch_due(Instant::now());
            self.core
                .delivery
                .counters
                .pending
                .store(self.entries.len() as u64, Ordering::Relaxed);
            let msg = match self.queue.first() {
                Some((due, _)) => match self.rx.recv_deadline(*due) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match self.rx.recv() {
                    Ok(m) => m,
                    Err(_) => return,
                },
            };
            match msg {
                SchedMsg::Facts(facts) => {
                    for (position, fact) in facts {
                        self.fact(position, fact);
                    }
                }
                SchedMsg::AdapterAdded(channel) => {
                    let now = Instant::now();
                    let parked: Vec<DeliveryId> = self
                        .entries
                        .iter()
                        .filter(|(_, e)| e.channel == channel && e.state == State::Parked)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in parked {
                        self.wait(id, now);
                    }
                }
                SchedMsg::Finished { id, outcome } => self.finished(id, outcome),
                SchedMsg::Shutdown => return,
            }
        }
    }

    fn insert(&mut self, id: DeliveryId, entry: Entry) {
        if let State::Waiting(due) = entry.state {
            self.queue.insert((due, id));
        }
        self.entries.insert(id, entry);
    }

    fn wait(&mut self, id: DeliveryId, due: Instant) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.state = State::Waiting(due);
            self.queue.insert((due, id));
        }
    }

    fn dispatch_due(&mut self, now: Instant) {
        while let Some(&(due, id)) = self.queue.first() {
            if due > now {
                break;
            }
            self.queue.pop_first();
            let Some(e) = self.entries.get_mut(&id) else {
                continue;
            };
            if e.state != State::Waiting(due) {
                continue;
            }
            let Some(adapter) = self.core.delivery.adapter(e.channel) else {
                e.state = State::Parked;
                continue;
            };
            e.state = State::InFlight;
            let job = Job {
                id,
                service: e.service,
                conversation: e.conversation,
                channel: e.channel,
                attempt: e.failed + 1,
                adapter,
            };
            if self.jobs.send(job).is_err() {
                return;
            }
        }
    }

    fn fact(&mut self, position: u64, fact: Fact) {
        match fact {
            Fact::Outbox {
                service,
                conversation,
                message,
                recipients,
            } => {
                if self.recovered_upto.is_some_and(|r| position <= r) {
                    // Recovery already saw this message in the read models.
                    return;
                }
                let now = Instant::now();
                for (participant, channel) in recipients {
                    let id = DeliveryId {
                        message_sid: message,
                        participant_sid: participant,
                    };
                    if self.entries.contains_key(&id) {
                        continue;
                    }
                    self.insert(
                        id,
                        Entry {
                            service,
                            conversation,
                            channel,
                            failed: 0,
                            state: State::Waiting(now),
                        },
                    );
                }
            }
            Fact::Receipt {
                message,
                participant,
            } => {
                self.entries.remove(&DeliveryId {
                    message_sid: message,
                    participant_sid: participant,
                });
            }
            Fact::ParticipantGone(p) => self.entries.retain(|id, _| id.participant_sid != p),
            Fact::MessageGone(m) => self.entries.retain(|id, _| id.message_sid != m),
            Fact::ConversationGone(s, c) => self
                .entries
                .retain(|_, e| !(e.service == s && e.conversation == c)),
            Fact::ServiceGone(s) => self.entries.retain(|_, e| e.service != s),
        }
    }

    fn finished(&mut self, id: DeliveryId, outcome: Outcome) {
        let Some(e) = self.entries.get_mut(&id) else {
            return;
        };
        if e.state != State::InFlight {
            return;
        }
        match outcome {
            Outcome::Done => {
                self.entries.remove(&id);
            }
            Outcome::Retry { failed_attempts } => {
                e.failed = failed_attempts;
                let due = Instant::now() + self.core.delivery.options.backoff(failed_attempts);
                self.wait(id, due);
            }
            Outcome::Stuck => {
                tracing::error!(delivery = %id, "delivery result could not be recorded; the delivery is held until the engine is reopened");
                e.state = State::Stuck;
            }
        }
    }
}

/// Whether non-chat participant `participant` had joined `conv` before
/// message `message` was posted, by timestamps, and by log positions when
/// the timestamps are equal (`positions` is read once per conversation).
fn joined_before(
    core: &Core,
    service: ServiceSid,
    conv: &Conversation,
    (participant, joined_at): (ParticipantSid, u64),
    (message, posted_at): (MessageSid, u64),
    positions: &mut Option<HashMap<[u8; 16], u64>>,
) -> bool {
    match joined_at.cmp(&posted_at) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => {
            let map = positions.get_or_insert_with(|| {
                let mut map = HashMap::new();
                for record in core.log.read_stream(service, Some(conv.row().sid), 0) {
                    let Ok(record) = record else { break };
                    match record.event() {
                        Ok(Event::MessageAdded { message_sid, .. }) => {
                            map.insert(message_sid.0, record.header.position);
                        }
                        Ok(Event::ParticipantAdded {
                            participant_sid, ..
                        }) => {
                            map.insert(participant_sid.0, record.header.position);
                        }
                        _ => {}
                    }
                }
                map
            });
            match (map.get(&participant.0), map.get(&message.0)) {
                (Some(p), Some(m)) => p < m,
                // Unreadable history: prefer sending (at least once).
                _ => true,
            }
        }
    }
}

/// Pending deliveries in the read models: for each message, each non-chat
/// participant (not its author) that had joined before it and has no
/// receipt for it. Returns the position the read models were at.
fn recover(core: &Core, now: Instant) -> (Option<u64>, Vec<(DeliveryId, Entry)>) {
    let options = core.delivery.options;
    let wall_now = now_micros();
    let rm = ReadView::acquire(&core.read);
    let mut out = Vec::new();
    for svc in rm.services() {
        let service = &svc.row().sid;
        for conv in svc.conversations() {
            if conv.non_chat_count() == 0 {
                continue;
            }
            let non_chat: Vec<_> = conv
                .participants()
                .filter_map(|p| p.kind.binding().map(|b| (p, channel_of(b))))
                .collect();
            let mut positions = None;
            for m in conv.messages() {
                for (p, channel) in &non_chat {
                    if m.participant_sid == Some(p.sid) || conv.receipt(&m.sid, &p.sid).is_some() {
                        continue;
                    }
                    if !joined_before(
                        core,
                        *service,
                        conv,
                        (p.sid, p.date_created),
                        (m.sid, m.date_created),
                        &mut positions,
                    ) {
                        continue;
                    }
                    let attempts = conv.delivery_attempts(&m.sid, &p.sid);
                    let failed = attempts.map_or(0, |a| a.failed_attempts);
                    let due = match attempts {
                        None => now,
                        Some(a) => {
                            let wait = options.backoff(failed).as_micros() as u64;
                            let due_micros = a.last_failed_at.saturating_add(wait);
                            now + Duration::from_micros(due_micros.saturating_sub(wall_now))
                        }
                    };
                    out.push((
                        DeliveryId {
                            message_sid: m.sid,
                            participant_sid: p.sid,
                        },
                        Entry {
                            service: *service,
                            conversation: conv.row().sid,
                            channel: *channel,
                            failed,
                            state: State::Waiting(due),
                        },
                    ));
                }
            }
        }
    }
    (rm.applied_position(), out)
}

fn sender_loop(core: &Arc<Core>, jobs: &Receiver<Job>) {
    for job in jobs {
        let outcome = run_job(core, &job);
        let _ = core.delivery.tx.send(SchedMsg::Finished {
            id: job.id,
            outcome,
        });
    }
}

/// What happened when the engine was asked to record a delivery result.
enum Recorded {
    Ok,
    /// The pair is void (message, participant or conversation gone).
    Void,
    /// The log could not append.
    Failed,
}

fn record(core: &Core, key: String, command: Command) -> Recorded {
    let envelope = CommandEnvelope {
        command_id: CommandId::from_key(key.as_bytes()),
        acting_identity: None,
        expected_version: None,
        command,
    };
    match core.execute(envelope) {
        Ok(_) => Recorded::Ok,
        Err(CommandError::Storage(e)) => {
            tracing::error!(error = %e, "recording a delivery result failed");
            Recorded::Failed
        }
        Err(e) => {
            tracing::debug!(error = %e, "delivery result refused: the delivery is void");
            Recorded::Void
        }
    }
}

fn outbound(rm: &ReadModels, job: &Job) -> Option<OutboundMessage> {
    let conv = rm
        .service(&job.service)?
        .conversation_by_sid(&job.conversation)?;
    if conv
        .receipt(&job.id.message_sid, &job.id.participant_sid)
        .is_some()
    {
        return None;
    }
    let message = conv.message(&job.id.message_sid)?;
    let binding = conv.participant(&job.id.participant_sid)?.kind.binding()?;
    Some(OutboundMessage {
        delivery_id: job.id,
        service_sid: job.service,
        conversation_sid: job.conversation,
        message_index: message.index,
        channel: job.channel,
        from: binding.proxy_address.clone(),
        to: binding.address.clone(),
        projected_address: binding.projected_address.clone(),
        author: message.author.clone(),
        body: message.body.clone(),
        media: message.media.clone(),
        attributes: message.attributes.clone(),
        attempt: job.attempt,
    })
}

fn run_job(core: &Core, job: &Job) -> Outcome {
    let shared = &core.delivery;
    let max = shared.options.attempts_max;
    let (m, p) = (job.id.message_sid, job.id.participant_sid);
    let receipt = |status: DeliveryStatus, error_code, channel_message_sid| {
        Command::RecordDeliveryReceipt(events::RecordDeliveryReceipt {
            service: job.service,
            conversation: ConversationRef::Sid(job.conversation),
            message: m,
            participant: p,
            status,
            error_code,
            channel_message_sid,
        })
    };
    let done = |r: Recorded| match r {
        Recorded::Ok | Recorded::Void => Outcome::Done,
        Recorded::Failed => Outcome::Stuck,
    };
    if job.attempt > max {
        // Every attempt failed but the final receipt was never recorded
        // (a crash in between): record it now, without sending again.
        shared.counters.failed.fetch_add(1, Ordering::Relaxed);
        let r = record(
            core,
            format!("colloquy/delivery/failed/{m}/{p}"),
            receipt(DeliveryStatus::Failed, None, None),
        );
        return done(r);
    }
    let Some(message) = outbound(&ReadView::acquire(&core.read), job) else {
        return Outcome::Done;
    };
    shared.counters.attempts.fetch_add(1, Ordering::Relaxed);
    let result = catch_unwind(AssertUnwindSafe(|| job.adapter.send(&message)))
        .unwrap_or_else(|_| Err(SendError::transient("the channel adapter panicked")));
    match result {
        Ok(sent) => {
            shared.counters.sent.fetch_add(1, Ordering::Relaxed);
            done(record(
                core,
                format!("colloquy/delivery/sent/{m}/{p}/{}", job.attempt),
                receipt(DeliveryStatus::Sent, None, sent.channel_message_sid),
            ))
        }
        Err(e) => {
            shared
                .counters
                .failed_attempts
                .fetch_add(1, Ordering::Relaxed);
            let r = record(
                core,
                format!("colloquy/delivery/attempt/{m}/{p}/{}", job.attempt),
                Command::RecordDeliveryAttemptFailed(events::RecordDeliveryAttemptFailed {
                    service: job.service,
                    conversation: job.conversation,
                    message: m,
                    participant: p,
                    attempt: job.attempt,
                    error: e.message.clone(),
                }),
            );
            match r {
                Recorded::Ok => {}
                other => return done(other),
            }
            if e.permanent || job.attempt >= max {
                shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                done(record(
                    core,
                    format!("colloquy/delivery/failed/{m}/{p}"),
                    receipt(DeliveryStatus::Failed, e.error_code, None),
                ))
            } else {
                Outcome::Retry {
                    failed_attempts: job.attempt,
                }
            }
        }
    }
}
