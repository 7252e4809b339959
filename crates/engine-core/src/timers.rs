//! Conversation timers: `timers.inactive` and `timers.closed` move a
//! conversation to `inactive` or `closed` once it has been idle that long.
//!
//! Semantics (Twilio's, as its Conversation resource describes them):
//! - Both timers are measured from the conversation's last activity,
//!   [`projections::Conversation::last_activity`]: its last message posted
//!   (deleted or not), or its creation before the first. Twilio's example
//!   conversation shows `date_inactive` and `date_closed` one and ten
//!   minutes after the same instant, so the closed timer keeps running
//!   while the conversation is inactive: it is not restarted when the
//!   inactive timer fires.
//! - The inactive timer fires on an `active` (or `initializing`)
//!   conversation; the closed timer on any conversation not yet `closed`.
//!   When both are due (an engine that was down for a while), the
//!   conversation goes to `closed` at once, with one event.
//! - A new message re-activates an `inactive` conversation (the command
//!   handlers do that) and, being activity, re-arms both timers from its
//!   time. `closed` is final.
//! - The minimums (1 minute inactive, 10 minutes closed:
//!   [`events::limits::TIMER_INACTIVE_MICROS_MIN`],
//!   [`events::limits::TIMER_CLOSED_MICROS_MIN`]) are enforced on the
//!   commands that set timers.
//!
//! The move is an ordinary command through the engine:
//! `UpdateConversation` with the new state, by the trusted host, under a
//! command id derived from (service, conversation, the activity time the
//! timer was measured from, which timer) ([`timer_command_id`]). A timer
//! therefore fires at most once per activity, across restarts and crashes:
//! a second attempt is answered as a duplicate and appends nothing. This
//! also means a host that sets an idle conversation back to `active` by
//! hand keeps it active until its next activity. The command carries the
//! conversation's stream version read together with the state it was
//! decided on, so a message that lands in between makes it a version
//! conflict (and the timer is re-evaluated) instead of an inactive
//! conversation with a fresh message.
//!
//! How due timers are found without scanning conversations: the timer
//! thread (`colloquy-timers`) keeps, for the conversations that have a
//! timer set, their timers, state and last activity, and an ordered set of
//! (due time, conversation, timer). It is built at open from the read
//! models (so a timer that fell due while the engine was down fires on
//! open) and kept current from the records the writer hands over once they
//! are durable (`TimerWriter::committed`: only conversation events, and
//! messages in conversations with a timer, one channel message per batch;
//! nothing while no conversation has a timer). Before acting on a due entry
//! the thread checks it against the read models, which stay the truth; an
//! entry that disagrees is refreshed from them.
//!
//! Time comes from the log's [`crate::log::Clock`] (the one that stamps
//! the records): with a [`crate::log::TestClock`] a test moves time by
//! hand and the thread is woken by each move, so no test sleeps. The
//! thread never runs on the writer and never blocks it: it executes its
//! commands like any caller. It stops when the engine is dropped.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use events::{
    CommandEnvelope, CommandId, ConversationRef, ConversationSid, ConversationState, Event,
    ServiceSid, Timers, TimestampMicros, UpdateConversation,
};
use projections::{Conversation, ReadModels};

use crate::commands::CommandError;
use crate::delivery::Execute;
use crate::log::{Clock, CommittedRecord};
use crate::read_view::ReadView;
use crate::sources::ReadSource;

/// The longest the timer thread waits without looking at the clock, in
/// milliseconds. A wall clock that jumps forward is noticed within this;
/// timers have minute granularity (the shortest is one minute), so a
/// minute's delay at most after such a jump is acceptable.
pub const TIMER_CLOCK_RECHECK_MS_MAX: u64 = 60_000;

/// How long the timer thread waits before firing a timer again after the
/// log refused its command for a reason that passes (a full or stalled
/// disk), in microseconds: as long as the log itself waits out a stall
/// ([`crate::log::WRITE_STALL_WAIT_MAX_MS`], 5 s) before refusing, so a
/// stalled disk gets one timer command per stall, not a stream of them.
pub const TIMER_RETRY_DELAY_MICROS: u64 = 5_000_000;

/// Which conversation timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// `timers.inactive`: the conversation becomes `inactive`.
    Inactive,
    /// `timers.closed`: the conversation becomes `closed`.
    Closed,
}

impl TimerKind {
    /// The state the conversation moves to when this timer fires.
    pub fn target(self) -> ConversationState {
        match self {
            TimerKind::Inactive => ConversationState::Inactive,
            TimerKind::Closed => ConversationState::Closed,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TimerKind::Inactive => "inactive",
            TimerKind::Closed => "closed",
        }
    }
}

/// The command id of `timer` firing for `conversation` of `service`,
/// measured from the activity at `activity_micros`: the same inputs give
/// the same id, so a timer fires at most once per activity.
pub fn timer_command_id(
    service: ServiceSid,
    conversation: ConversationSid,
    activity_micros: TimestampMicros,
    timer: TimerKind,
) -> CommandId {
    let key = format!(
        "colloquy/timer/{service}/{conversation}/{activity_micros}/{}",
        timer.name()
    );
    CommandId::from_key(key.as_bytes())
}

/// The timers armed for a conversation with these timers and state whose
/// last activity was at `activity`, with their due times.
fn armed(
    timers: Timers,
    state: ConversationState,
    activity: TimestampMicros,
) -> impl Iterator<Item = (TimerKind, TimestampMicros)> {
    let inactive = match state {
        ConversationState::Active | ConversationState::Initializing => timers.inactive_micros,
        ConversationState::Inactive | ConversationState::Closed => None,
    };
    let closed = match state {
        ConversationState::Closed => None,
        _ => timers.closed_micros,
    };
    [(TimerKind::Inactive, inactive), (TimerKind::Closed, closed)]
        .into_iter()
        .filter_map(move |(kind, after)| after.map(|after| (kind, activity.saturating_add(after))))
}

/// The timer that is due at `now` and moves the conversation furthest
/// (closed before inactive), if any.
fn due_now(
    timers: Timers,
    state: ConversationState,
    activity: TimestampMicros,
    now: TimestampMicros,
) -> Option<TimerKind> {
    armed(timers, state, activity)
        .filter(|(_, due)| *due <= now)
        .map(|(kind, _)| kind)
        .max()
}

/// When a conversation's armed timers fall due, µs since the epoch
/// (Twilio's `timers.date_inactive` and `timers.date_closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimerDates {
    /// When it becomes `inactive`: `None` if no inactive timer is set or
    /// it is not `active` (or `initializing`).
    pub date_inactive: Option<TimestampMicros>,
    /// When it becomes `closed`: `None` if no closed timer is set or it
    /// is already closed.
    pub date_closed: Option<TimestampMicros>,
}

/// The due dates of `conversation`'s armed timers, measured from its last
/// activity as the timer thread measures them (read it inside
/// [`crate::Engine::read`]).
pub fn timer_dates(conversation: &Conversation) -> TimerDates {
    let row = conversation.row();
    let mut dates = TimerDates::default();
    for (kind, due) in armed(row.timers, row.state, conversation.last_activity()) {
        match kind {
            TimerKind::Inactive => dates.date_inactive = Some(due),
            TimerKind::Closed => dates.date_closed = Some(due),
        }
    }
    dates
}

/// What the timer thread knows of one conversation with a timer set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    timers: Timers,
    state: ConversationState,
    activity: TimestampMicros,
}

impl Entry {
    fn of(conv: &Conversation) -> Self {
        Entry {
            timers: conv.row().timers,
            state: conv.row().state,
            activity: conv.last_activity(),
        }
    }
}

type Key = (ServiceSid, ConversationSid);

/// The conversations with timers, and their armed timers ordered by due time.
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    entries: HashMap<Key, Entry>,
    due: BTreeSet<(TimestampMicros, Key, TimerKind)>,
}

impl Schedule {
    /// Every conversation of `rm` with a timer set.
    pub(crate) fn from_read_models(rm: &ReadModels) -> Self {
        let mut schedule = Schedule::default();
        for svc in rm.services() {
            for conv in svc.conversations() {
                if conv.row().timers != Timers::default() {
                    schedule.set((svc.row().sid, conv.row().sid), Some(Entry::of(conv)));
                }
            }
        }
        schedule
    }

    /// Replaces what is known of `key` (`None`: it has no timer any more).
    fn set(&mut self, key: Key, entry: Option<Entry>) {
        if let Some(old) = self.entries.remove(&key) {
            for (kind, due) in armed(old.timers, old.state, old.activity) {
                self.due.remove(&(due, key, kind));
            }
        }
        if let Some(entry) = entry.filter(|e| e.timers != Timers::default()) {
            for (kind, due) in armed(entry.timers, entry.state, entry.activity) {
                self.due.insert((due, key, kind));
            }
            self.entries.insert(key, entry);
        }
    }

    /// Folds one durable record. `rm` is asked only when timers are set on
    /// a conversation the schedule did not know (for its last activity).
    fn observe(&mut self, record: &CommittedRecord, source: &dyn ReadSource) {
        let service = record.header.service_sid;
        match &record.event {
            Event::ConversationCreated {
                conversation_sid,
                state,
                timers,
                ..
            } => {
                let entry = Entry {
                    timers: *timers,
                    state: *state,
                    activity: record.header.recorded_at,
                };
                self.set((service, *conversation_sid), Some(entry));
            }
            Event::ConversationUpdated {
                conversation_sid,
                state,
                timers,
                ..
            } => {
                let key = (service, *conversation_sid);
                let entry = match self.entries.get(&key) {
                    Some(known) => Some(Entry {
                        timers: *timers,
                        state: *state,
                        activity: known.activity,
                    }),
                    None if *timers == Timers::default() => None,
                    None => {
                        let rm = ReadView::acquire(source.read_models());
                        rm.service(&service)
                            .and_then(|s| s.conversation_by_sid(conversation_sid))
                            .map(|c| Entry {
                                timers: *timers,
                                state: *state,
                                activity: c.last_activity(),
                            })
                    }
                };
                self.set(key, entry);
            }
            Event::MessageAdded {
                conversation_sid, ..
            } => {
                let key = (service, *conversation_sid);
                if let Some(known) = self.entries.get(&key).copied() {
                    let entry = Entry {
                        activity: record.header.recorded_at,
                        ..known
                    };
                    self.set(key, Some(entry));
                }
            }
            Event::ConversationRemoved { conversation_sid } => {
                self.set((service, *conversation_sid), None);
            }
            Event::ServiceDeleted => {
                let gone: Vec<Key> = self
                    .entries
                    .keys()
                    .filter(|(s, _)| *s == service)
                    .copied()
                    .collect();
                for key in gone {
                    self.set(key, None);
                }
            }
            _ => {}
        }
    }

    /// The earliest armed timer, if any.
    fn next(&self) -> Option<(TimestampMicros, Key, TimerKind)> {
        self.due.first().copied()
    }
}

/// What the timer thread is sent.
pub(crate) enum TimerMsg {
    /// Durable records that may change a timer, in log order.
    Records(Vec<Arc<CommittedRecord>>),
    /// The clock was moved by hand: look at it again.
    Tick,
    /// The engine is closing.
    Shutdown,
}

/// The writer's side: hands the timer thread the durable records that may
/// change a timer, one message per batch (none for a batch without any).
///
/// It keeps the set of conversations that have a timer set (from the same
/// records, in log order), so a message in a conversation without timers
/// costs the writer one set lookup, and nothing at all while no
/// conversation has a timer.
pub(crate) struct TimerWriter {
    tx: Sender<TimerMsg>,
    timed: HashSet<Key>,
}

impl TimerWriter {
    /// The writer side for a schedule built at open (`schedule`) and the
    /// timer thread listening on `tx`'s channel.
    pub(crate) fn new(schedule: &Schedule, tx: Sender<TimerMsg>) -> Self {
        TimerWriter {
            tx,
            timed: schedule.entries.keys().copied().collect(),
        }
    }

    /// Whether `record` can change a timer, keeping the set of timed
    /// conversations current.
    fn concerns_timers(&mut self, record: &CommittedRecord) -> bool {
        let service = record.header.service_sid;
        match &record.event {
            Event::ConversationCreated {
                conversation_sid,
                timers,
                ..
            }
            | Event::ConversationUpdated {
                conversation_sid,
                timers,
                ..
            } => {
                let key = (service, *conversation_sid);
                if *timers == Timers::default() {
                    // The thread may know it: let it forget it.
                    self.timed.remove(&key)
                } else {
                    self.timed.insert(key);
                    true
                }
            }
            Event::ConversationRemoved { conversation_sid } => {
                self.timed.remove(&(service, *conversation_sid))
            }
            Event::MessageAdded {
                conversation_sid, ..
            } => !self.timed.is_empty() && self.timed.contains(&(service, *conversation_sid)),
            Event::ServiceDeleted => {
                let before = self.timed.len();
                self.timed.retain(|(s, _)| *s != service);
                self.timed.len() != before
            }
            _ => false,
        }
    }

    /// Called with each durable batch, in log order.
    pub(crate) fn committed(&mut self, records: &[Arc<CommittedRecord>]) {
        let mut relevant = Vec::new();
        for record in records {
            if self.concerns_timers(record) {
                relevant.push(record.clone());
            }
        }
        if !relevant.is_empty() {
            // The thread is gone only while the engine shuts down.
            let _ = self.tx.send(TimerMsg::Records(relevant));
        }
    }
}

/// The timer thread's counters, readable from any thread without waiting.
#[derive(Debug, Default)]
pub(crate) struct TimerCounters {
    armed: AtomicU64,
    fired: AtomicU64,
    conflicts: AtomicU64,
    checked_until: AtomicU64,
}

/// What the timer thread has done (see [`crate::Engine::timer_metrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimerMetrics {
    /// Timers armed now (a conversation with both timers set counts two).
    pub armed: u64,
    /// Timer commands the thread executed that the log accepted (a
    /// duplicate of an earlier firing included).
    pub fired: u64,
    /// Timer commands refused with a version conflict because the
    /// conversation changed between the check and the append (each was
    /// re-evaluated).
    pub conflicts: u64,
    /// The clock time, in µs, up to which every due timer has been handled
    /// (fired, found not due after all, or put back for another try after
    /// a version conflict or a storage refusal, counted in `conflicts` or
    /// logged): after moving a test clock to `t`, waiting until this
    /// reaches `t` waits for the thread to act.
    pub checked_until_micros: TimestampMicros,
}

impl TimerCounters {
    pub(crate) fn metrics(&self) -> TimerMetrics {
        TimerMetrics {
            armed: self.armed.load(Ordering::Acquire),
            fired: self.fired.load(Ordering::Acquire),
            conflicts: self.conflicts.load(Ordering::Acquire),
            checked_until_micros: self.checked_until.load(Ordering::Acquire),
        }
    }
}

/// The running timer thread: dropped (or [`TimerThread::stop`]ped) with
/// the engine.
pub(crate) struct TimerThread {
    tx: Sender<TimerMsg>,
    handle: Option<JoinHandle<()>>,
    counters: Arc<TimerCounters>,
}

impl TimerThread {
    /// Starts the thread with `schedule` (built at open) and the messages
    /// of `rx` (from the [`TimerWriter`] made with `tx`).
    ///
    /// Errors: the thread could not be spawned.
    pub(crate) fn start(
        schedule: Schedule,
        clock: Arc<dyn Clock>,
        source: Arc<dyn ReadSource>,
        execute: Execute,
        tx: Sender<TimerMsg>,
        rx: Receiver<TimerMsg>,
    ) -> Result<Self, std::io::Error> {
        let counters = Arc::new(TimerCounters::default());
        let wake = tx.clone();
        clock.listen(Box::new(move || wake.send(TimerMsg::Tick).is_ok()));
        let mut runner = Runner {
            schedule,
            clock,
            source,
            execute,
            rx,
            counters: counters.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("colloquy-timers".into())
            .spawn(move || runner.run())?;
        Ok(TimerThread {
            tx,
            handle: Some(handle),
            counters,
        })
    }

    pub(crate) fn metrics(&self) -> TimerMetrics {
        self.counters.metrics()
    }

    /// Stops the thread and waits for it (a command it is executing
    /// completes first).
    pub(crate) fn stop(&mut self) {
        let _ = self.tx.send(TimerMsg::Shutdown);
        if let Some(handle) = self.handle.take() {
            if handle.join().is_err() {
                tracing::error!("the timer thread panicked");
            }
        }
    }
}

impl Drop for TimerThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What became of one due timer.
enum Fired {
    /// Done: fired, a duplicate, or not due after all.
    Done,
    /// Look at it again at this time.
    Retry(TimestampMicros),
    /// The engine is closing.
    Closing,
}

struct Runner {
    schedule: Schedule,
    clock: Arc<dyn Clock>,
    source: Arc<dyn ReadSource>,
    execute: Execute,
    rx: Receiver<TimerMsg>,
    counters: Arc<TimerCounters>,
}

impl Runner {
    fn run(&mut self) {
        loop {
            // Everything committed so far first, so the schedule is current.
            loop {
                match self.rx.try_recv() {
                    Ok(msg) => {
                        if !self.handle(msg) {
                            return;
                        }
                    }
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => return,
                }
            }
            let now = self.clock.now_micros();
            if !self.fire_due(now) {
                self.wait_for_shutdown();
                return;
            }
            self.counters
                .armed
                .store(self.schedule.due.len() as u64, Ordering::Release);
            self.counters.checked_until.store(now, Ordering::Release);
            let wait = match self.schedule.next() {
                Some((due, _, _)) if due > now => Duration::from_micros(due - now),
                Some(_) => Duration::ZERO,
                None => Duration::from_millis(TIMER_CLOCK_RECHECK_MS_MAX),
            }
            .min(Duration::from_millis(TIMER_CLOCK_RECHECK_MS_MAX));
            match self.rx.recv_timeout(wait) {
                Ok(msg) => {
                    if !self.handle(msg) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Takes in one message; `false` on shutdown.
    fn handle(&mut self, msg: TimerMsg) -> bool {
        match msg {
            TimerMsg::Records(records) => {
                for record in &records {
                    self.schedule.observe(record, &*self.source);
                }
                true
            }
            TimerMsg::Tick => true,
            TimerMsg::Shutdown => false,
        }
    }

    fn wait_for_shutdown(&self) {
        while let Ok(msg) = self.rx.recv() {
            if matches!(msg, TimerMsg::Shutdown) {
                return;
            }
        }
    }

    /// Fires every timer due at `now`; `false` if the engine is closing.
    fn fire_due(&mut self, now: TimestampMicros) -> bool {
        let mut retries = Vec::new();
        while let Some(slot) = self.schedule.next().filter(|(due, _, _)| *due <= now) {
            self.schedule.due.remove(&slot);
            let (_, key, kind) = slot;
            match self.fire(key, now) {
                Fired::Done => {}
                Fired::Retry(at) => retries.push((at, key, kind)),
                Fired::Closing => return false,
            }
        }
        self.schedule.due.extend(retries);
        true
    }

    /// Checks the conversation's due timer against the read models and
    /// executes its move.
    fn fire(&mut self, key: Key, now: TimestampMicros) -> Fired {
        let (service, conversation) = key;
        let decided = {
            let rm = ReadView::acquire(self.source.read_models());
            let conv = rm
                .service(&service)
                .and_then(|s| s.conversation_by_sid(&conversation));
            match conv {
                None => Err(None),
                Some(conv) => {
                    let entry = Entry::of(conv);
                    match due_now(entry.timers, entry.state, entry.activity, now) {
                        None => Err(Some(entry)),
                        // Read under the same view: the version of exactly
                        // the state just checked.
                        Some(kind) => match self.source.stream_version(service, Some(conversation))
                        {
                            Ok(version) => Ok((kind, entry.activity, version)),
                            Err(e) => {
                                tracing::error!(%service, %conversation, "timer: reading the stream version failed: {e}");
                                return Fired::Retry(now.saturating_add(TIMER_RETRY_DELAY_MICROS));
                            }
                        },
                    }
                }
            }
        };
        let (kind, activity, version) = match decided {
            Ok(plan) => plan,
            Err(refreshed) => {
                // Not due after all (the schedule was behind or ahead of
                // the read models): take their word for it.
                self.schedule.set(key, refreshed);
                return Fired::Done;
            }
        };
        let command = UpdateConversation::new(service, ConversationRef::Sid(conversation))
            .state(kind.target());
        let id = timer_command_id(service, conversation, activity, kind);
        let envelope = CommandEnvelope::new(id, command)
            .expect_version(version)
            .into_command();
        match (self.execute)(envelope) {
            Ok(()) => {
                self.counters.fired.fetch_add(1, Ordering::AcqRel);
                tracing::debug!(%service, %conversation, timer = kind.name(), "timer fired");
                Fired::Done
            }
            Err(CommandError::VersionConflict { .. }) => {
                // The conversation changed meanwhile; its records are
                // already queued for this thread. Look again.
                self.counters.conflicts.fetch_add(1, Ordering::AcqRel);
                Fired::Retry(now)
            }
            Err(CommandError::Storage(failure)) if failure.needs_reopen() => {
                tracing::warn!(%service, %conversation, "timer: the log refuses appends ({failure}); timers fire again after reopening");
                Fired::Closing
            }
            Err(CommandError::Storage(failure)) => {
                tracing::warn!(%service, %conversation, "timer: will retry: {failure}");
                Fired::Retry(now.saturating_add(TIMER_RETRY_DELAY_MICROS))
            }
            Err(refused) => {
                // Decided against a state the writer no longer had (closed
                // or removed meanwhile): its records will say so.
                tracing::debug!(%service, %conversation, timer = kind.name(), ?refused, "timer refused");
                Fired::Done
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000_000;

    fn timers(inactive: Option<u64>, closed: Option<u64>) -> Timers {
        Timers {
            inactive_micros: inactive,
            closed_micros: closed,
        }
    }

    #[test]
    fn both_timers_run_from_the_last_activity_and_closed_wins_when_both_are_due() {
        let t = timers(Some(MIN), Some(10 * MIN));
        let active = ConversationState::Active;
        assert_eq!(due_now(t, active, 100, 100 + MIN - 1), None);
        assert_eq!(
            due_now(t, active, 100, 100 + MIN),
            Some(TimerKind::Inactive)
        );
        // Inactive: only the closed timer is armed, from the same activity.
        let inactive = ConversationState::Inactive;
        assert_eq!(due_now(t, inactive, 100, 100 + 9 * MIN), None);
        assert_eq!(
            due_now(t, inactive, 100, 100 + 10 * MIN),
            Some(TimerKind::Closed)
        );
        assert_eq!(
            due_now(t, active, 100, 100 + 10 * MIN),
            Some(TimerKind::Closed)
        );
        assert_eq!(
            due_now(t, ConversationState::Closed, 100, u64::MAX),
            None,
            "closed is final"
        );
    }

    #[test]
    fn a_schedule_entry_is_replaced_not_added_to() {
        let mut s = Schedule::default();
        let key = (ServiceSid::derive(b"s"), ConversationSid::derive(b"c"));
        let entry = Entry {
            timers: timers(Some(MIN), Some(10 * MIN)),
            state: ConversationState::Active,
            activity: 5,
        };
        s.set(key, Some(entry));
        assert_eq!(s.due.len(), 2);
        s.set(
            key,
            Some(Entry {
                activity: 7,
                ..entry
            }),
        );
        assert_eq!(s.due.len(), 2);
        assert_eq!(s.next(), Some((7 + MIN, key, TimerKind::Inactive)));
        s.set(key, None);
        assert!(s.due.is_empty() && s.entries.is_empty());
    }

    fn record(
        service: ServiceSid,
        conversation: ConversationSid,
        event: Event,
    ) -> Arc<CommittedRecord> {
        Arc::new(CommittedRecord {
            header: events::RecordHeader {
                position: 0,
                recorded_at: 0,
                service_sid: service,
                conversation_sid: Some(conversation),
                command_id: CommandId::from_key(b"t"),
                actor: None,
            },
            event,
        })
    }

    #[test]
    fn the_writer_hands_over_messages_only_of_conversations_with_timers() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut writer = TimerWriter::new(&Schedule::default(), tx);
        let service = ServiceSid::derive(b"s");
        let (timed, untimed) = (ConversationSid::derive(b"t"), ConversationSid::derive(b"u"));
        let message = |c| Event::MessageAdded {
            conversation_sid: c,
            message_sid: events::MessageSid::derive(b"m"),
            index: 0,
            author: "a".into(),
            participant_sid: None,
            body: Some("b".into()),
            media: Vec::new(),
            attributes: "{}".into(),
        };
        let created = |c, timers| Event::ConversationCreated {
            conversation_sid: c,
            friendly_name: None,
            unique_name: None,
            attributes: "{}".into(),
            state: ConversationState::Active,
            timers,
            messaging_service_sid: None,
        };
        let handed = |rx: &Receiver<TimerMsg>| match rx.try_recv() {
            Ok(TimerMsg::Records(r)) => r.len(),
            Ok(_) => panic!("only records are sent"),
            Err(_) => 0,
        };
        // No conversation has a timer: nothing is handed over.
        writer.committed(&[
            record(service, untimed, created(untimed, Timers::default())),
            record(service, untimed, message(untimed)),
        ]);
        assert_eq!(handed(&rx), 0);
        let t = timers(Some(MIN), None);
        writer.committed(&[
            record(service, timed, created(timed, t)),
            record(service, timed, message(timed)),
            record(service, untimed, message(untimed)),
        ]);
        assert_eq!(
            handed(&rx),
            2,
            "the timed conversation's creation and message"
        );
        writer.committed(&[record(
            service,
            timed,
            Event::ConversationRemoved {
                conversation_sid: timed,
            },
        )]);
        assert_eq!(handed(&rx), 1);
        writer.committed(&[record(service, timed, message(timed))]);
        assert_eq!(handed(&rx), 0);
    }

    #[test]
    fn the_command_id_names_the_activity_and_the_timer() {
        let (s, c) = (ServiceSid::derive(b"s"), ConversationSid::derive(b"c"));
        let id = timer_command_id(s, c, 1, TimerKind::Inactive);
        assert_eq!(id, timer_command_id(s, c, 1, TimerKind::Inactive));
        assert_ne!(id, timer_command_id(s, c, 2, TimerKind::Inactive));
        assert_ne!(id, timer_command_id(s, c, 1, TimerKind::Closed));
    }
}
