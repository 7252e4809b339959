//! Conversation timers on a test clock: `timers.inactive` and
//! `timers.closed` fire at their due time, measured from the last
//! activity; a message re-arms them; a timer that fell due while the
//! engine was down fires on open; a timer fires once per activity, across
//! restarts. No test sleeps: the clock is moved by hand, and each wait is
//! for the timer thread to have handled that time, with a deadline.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{options, temp_dir};
use engine_core::{timer_command_id, timer_dates, Engine, TestClock, TimerDates, TimerKind};
use events::limits::{TIMER_CLOSED_MICROS_MIN, TIMER_INACTIVE_MICROS_MIN};
use events::*;

/// Where the test clock starts: 2023-11-14, in µs since the epoch.
const START_MICROS: u64 = 1_700_000_000_000_000;
/// How long a test waits for the timer thread to act.
const THREAD_DEADLINE: Duration = Duration::from_secs(20);

const MINUTE: Duration = Duration::from_secs(60);

struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<TestClock>,
    engine: Option<Engine>,
    service: ServiceSid,
    next_id: u64,
}

impl Fixture {
    fn new() -> Self {
        let dir = temp_dir();
        let clock = Arc::new(TestClock::new(START_MICROS));
        let engine = open(&dir, &clock);
        let mut f = Fixture {
            dir,
            clock,
            engine: Some(engine),
            service: ServiceSid::default(),
            next_id: 0,
        };
        f.service = f.run(CreateService::new("timers"));
        f
    }

    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("open")
    }

    fn run<C: engine_core::TypedCommand + std::fmt::Debug>(&mut self, command: C) -> C::Output {
        self.next_id += 1;
        let shown = format!("{command:?}");
        self.engine()
            .execute(CommandEnvelope::new(
                CommandId::from_key(&self.next_id.to_be_bytes()),
                command,
            ))
            .unwrap_or_else(|e| panic!("{shown:.200} was refused: {e}"))
    }

    /// A conversation with both timers at Twilio's minimums.
    fn conversation(&mut self) -> ConversationSid {
        let timers = Timers {
            inactive_micros: Some(TIMER_INACTIVE_MICROS_MIN),
            closed_micros: Some(TIMER_CLOSED_MICROS_MIN),
        };
        let spec = ConversationSpec::default().timers(timers);
        self.run(CreateConversation::with_spec(self.service, spec))
    }

    fn state(&self, c: ConversationSid) -> ConversationState {
        self.engine().read(|rm| {
            rm.get_conversation(&self.service, &ConversationRef::Sid(c))
                .expect("the conversation exists")
                .row()
                .state
        })
    }

    fn last_activity(&self, c: ConversationSid) -> u64 {
        self.engine().read(|rm| {
            rm.get_conversation(&self.service, &ConversationRef::Sid(c))
                .expect("the conversation exists")
                .last_activity()
        })
    }

    fn head(&self) -> u64 {
        self.engine().log().head().next_position
    }

    /// Moves the clock to `micros` after the start and waits until the
    /// timer thread has handled every timer due by then.
    fn at(&self, after_start: Duration) {
        let t = START_MICROS + after_start.as_micros() as u64;
        self.clock.set(t);
        self.wait_handled(t);
    }

    fn wait_handled(&self, t: u64) {
        let deadline = Instant::now() + THREAD_DEADLINE;
        while self.engine().timer_metrics().checked_until_micros < t {
            assert!(
                Instant::now() < deadline,
                "the timer thread did not handle {t} within {THREAD_DEADLINE:?}: {:?}",
                self.engine().timer_metrics()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn reopen(&mut self) {
        drop(self.engine.take());
        self.engine = Some(open(&self.dir, &self.clock));
    }

    /// The records at and after `from`.
    fn records_from(&self, from: u64) -> Vec<(RecordHeader, Event)> {
        self.engine()
            .log()
            .read_range(from..self.head())
            .map(|r| {
                let r = r.unwrap();
                let event = r.event().unwrap();
                (r.header, event)
            })
            .collect()
    }
}

fn open(dir: &tempfile::TempDir, clock: &Arc<TestClock>) -> Engine {
    Engine::open(dir.path(), options().clock(clock.clone())).expect("open the engine")
}

fn updated_state(event: &Event) -> Option<ConversationState> {
    match event {
        Event::ConversationUpdated { state, .. } => Some(*state),
        _ => None,
    }
}

#[test]
fn the_inactive_then_the_closed_timer_fire_at_their_due_times() {
    let mut f = Fixture::new();
    let c = f.conversation();
    let created = f.head();
    assert_eq!(
        f.last_activity(c),
        START_MICROS,
        "records carry the test clock's time"
    );

    let dates = |f: &Fixture| {
        f.engine().read(|rm| {
            timer_dates(
                rm.get_conversation(&f.service, &ConversationRef::Sid(c))
                    .unwrap(),
            )
        })
    };
    assert_eq!(
        dates(&f),
        TimerDates {
            date_inactive: Some(START_MICROS + TIMER_INACTIVE_MICROS_MIN),
            date_closed: Some(START_MICROS + TIMER_CLOSED_MICROS_MIN),
        }
    );

    f.at(MINUTE - Duration::from_micros(1));
    assert_eq!(f.state(c), ConversationState::Active);
    f.at(MINUTE);
    assert_eq!(f.state(c), ConversationState::Inactive);
    assert_eq!(
        dates(&f),
        TimerDates {
            date_inactive: None,
            date_closed: Some(START_MICROS + TIMER_CLOSED_MICROS_MIN),
        }
    );
    // The closed timer runs from the same activity, not from the move.
    f.at(10 * MINUTE - Duration::from_micros(1));
    assert_eq!(f.state(c), ConversationState::Inactive);
    f.at(10 * MINUTE);
    assert_eq!(f.state(c), ConversationState::Closed);

    let moves = f.records_from(created);
    let states: Vec<_> = moves.iter().filter_map(|(_, e)| updated_state(e)).collect();
    assert_eq!(
        states,
        [ConversationState::Inactive, ConversationState::Closed]
    );
    assert_eq!(moves.len(), 2, "the moves are the only records: {moves:?}");
    let ids: Vec<_> = moves.iter().map(|(h, _)| h.command_id).collect();
    assert_eq!(
        ids,
        [
            timer_command_id(f.service, c, START_MICROS, TimerKind::Inactive),
            timer_command_id(f.service, c, START_MICROS, TimerKind::Closed),
        ]
    );
    assert_eq!(
        moves[0].0.recorded_at,
        START_MICROS + TIMER_INACTIVE_MICROS_MIN
    );
    // Closed is final: nothing more fires.
    f.at(100 * MINUTE);
    assert_eq!(f.records_from(created).len(), 2);
}

#[test]
fn a_message_reactivates_and_rearms_both_timers_from_its_time() {
    let mut f = Fixture::new();
    let c = f.conversation();
    f.at(MINUTE);
    assert_eq!(f.state(c), ConversationState::Inactive);

    f.at(MINUTE + 30 * Duration::from_secs(1));
    let service = f.service;
    f.run(PostMessage::new(service, c).body("still here"));
    assert_eq!(f.state(c), ConversationState::Active);
    let activity = START_MICROS + 90_000_000;
    assert_eq!(f.last_activity(c), activity);

    let since_post = |d: Duration| Duration::from_secs(90) + d;
    f.at(since_post(MINUTE - Duration::from_micros(1)));
    assert_eq!(f.state(c), ConversationState::Active);
    f.at(since_post(MINUTE));
    assert_eq!(f.state(c), ConversationState::Inactive);
    // Ten minutes after creation is no longer due: the message re-armed it.
    f.at(10 * MINUTE);
    assert_eq!(f.state(c), ConversationState::Inactive);
    f.at(since_post(10 * MINUTE));
    assert_eq!(f.state(c), ConversationState::Closed);
    // A closed conversation takes no message.
    let err = f
        .engine()
        .execute(CommandEnvelope::new(
            "after close",
            PostMessage::new(service, c).body("too late"),
        ))
        .unwrap_err();
    assert!(
        matches!(err, engine_core::CommandError::ConversationClosed { .. }),
        "{err:?}"
    );
}

#[test]
fn timers_set_later_run_from_the_last_activity_and_cleared_timers_never_fire() {
    let mut f = Fixture::new();
    let service = f.service;
    let c = f.run(CreateConversation::new(service));
    let untimed = f.run(CreateConversation::new(service));
    f.at(30 * Duration::from_secs(1));
    f.run(UpdateConversation::new(service, c).timers(Timers {
        inactive_micros: Some(TIMER_INACTIVE_MICROS_MIN),
        closed_micros: None,
    }));
    f.at(MINUTE);
    assert_eq!(f.state(c), ConversationState::Inactive);
    assert_eq!(f.state(untimed), ConversationState::Active);

    // Cleared before it is due: it never fires.
    let cleared = f.conversation();
    f.run(UpdateConversation::new(service, cleared).timers(Timers::default()));
    f.at(60 * MINUTE);
    assert_eq!(f.state(cleared), ConversationState::Active);
    assert_eq!(f.engine().timer_metrics().armed, 0);
}

#[test]
fn a_timer_that_fell_due_while_the_engine_was_down_fires_on_open() {
    let mut f = Fixture::new();
    let c = f.conversation();
    drop(f.engine.take());
    // Both are overdue: the conversation goes to closed in one move.
    f.clock.set(START_MICROS + 11 * 60_000_000);
    f.engine = Some(open(&f.dir, &f.clock));
    let head_at_open = START_MICROS + 11 * 60_000_000;
    f.wait_handled(head_at_open);
    assert_eq!(f.state(c), ConversationState::Closed);
    let (last, event) = f.records_from(f.head() - 1).remove(0);
    assert_eq!(updated_state(&event), Some(ConversationState::Closed));
    assert_eq!(
        last.command_id,
        timer_command_id(f.service, c, START_MICROS, TimerKind::Closed)
    );
}

#[test]
fn a_timer_fires_once_per_activity_even_across_restarts() {
    let mut f = Fixture::new();
    let service = f.service;
    let c = f.conversation();
    f.at(MINUTE);
    assert_eq!(f.state(c), ConversationState::Inactive);
    // The host makes it active again by hand: the inactive timer, already
    // fired for this activity, does not fire again (its command id is a
    // duplicate), not now and not after a restart.
    f.run(UpdateConversation::new(service, c).state(ConversationState::Active));
    let head = f.head();
    f.at(2 * MINUTE);
    assert_eq!(f.state(c), ConversationState::Active);
    f.reopen();
    f.at(3 * MINUTE);
    assert_eq!(f.state(c), ConversationState::Active);
    assert_eq!(f.head(), head, "no timer fired twice");
    // The closed timer is another timer: it still fires at its time.
    f.at(10 * MINUTE);
    assert_eq!(f.state(c), ConversationState::Closed);
    assert_eq!(f.head(), head + 1);
}
