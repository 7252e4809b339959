//! The writer hands each caller its own records back with its answer
//! (`append_blocking_with_records`): the very records it sealed and passed
//! to `StateMachine::committed`, not a copy read back from the store; they
//! equal what the log holds. A batch of several callers is answered off the
//! writer thread. Stream versions, which the writer keeps in memory once
//! read, stay right across batches and reopens.

mod log_support;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use engine_core::log::{Appended, Never};
use engine_core::{
    AppendError, AppendOutcome, AppendRequest, CommittedRecord, DecideContext, Decision,
    Durability, EventLog, Idempotency, LogOptions, RawAppend, RawEvents, StateMachine,
};
use events::{CodecError, Event, RecordHeader};
use log_support::*;

/// Concurrent appenders: enough that batches group several requests.
const APPENDERS: u64 = 8;
/// Appends per appender.
const APPENDS_EACH: u64 = 25;
/// Callers queued together behind a held batch.
const GROUPED_CALLERS: u64 = 6;
/// How long the test waits for an answer.
const ANSWER_DEADLINE: Duration = Duration::from_secs(30);

/// The records `committed` saw, by position.
type Seen = Arc<Mutex<BTreeMap<u64, Arc<CommittedRecord>>>>;

/// [`RawEvents`], remembering every record handed to `committed`.
struct Recording {
    seen: Seen,
}

impl StateMachine for Recording {
    type Command = RawAppend;
    type Rejection = Never;
    const COLUMN_FAMILIES: &'static [&'static str] = &[];

    fn idempotency(command: &RawAppend) -> Result<Idempotency, CodecError> {
        RawEvents::idempotency(command)
    }

    fn decide(&self, command: &RawAppend, ctx: &DecideContext) -> Result<Decision, Never> {
        RawEvents.decide(command, ctx)
    }

    fn apply(&mut self, _: &rocksdb::DB, _: &mut rocksdb::WriteBatch, _: &RecordHeader, _: &Event) {
    }

    fn committed(&mut self, records: &[Arc<CommittedRecord>]) {
        let mut seen = self.seen.lock().unwrap();
        for record in records {
            let previous = seen.insert(record.header.position, record.clone());
            assert!(previous.is_none(), "each record is committed once");
        }
    }
}

/// The `n`th request of `thread`: one to three messages in the thread's
/// conversation.
fn request(thread: u64, n: u64) -> AppendRequest<RawAppend> {
    let events = (0..1 + n % 3)
        .map(|k| message(conversation(thread as u32), n * 3 + k))
        .collect();
    AppendRequest::new(command_id(thread, n), raw(service(1), events))
}

#[test]
fn each_caller_gets_the_records_it_appended_as_committed_saw_them() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Seen::default();
    let state = Recording { seen: seen.clone() };
    let log = EventLog::open(
        dir.path(),
        LogOptions::default().durability(Durability::Buffered),
        move |_, _| Ok::<_, std::convert::Infallible>(state),
    )
    .unwrap();
    let answers: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..APPENDERS)
            .map(|thread| {
                let log = &log;
                scope.spawn(move || {
                    (0..APPENDS_EACH)
                        .map(|n| {
                            let appended = log
                                .append_blocking_with_records(request(thread, n))
                                .expect("append");
                            (thread, n, appended)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let metrics = log.metrics();
    assert!(
        metrics.batches < metrics.requests,
        "batches grouped several requests: {metrics:?}"
    );
    let seen = seen.lock().unwrap();
    for (thread, n, appended) in answers {
        let AppendOutcome::Appended {
            first_position,
            count,
            ..
        } = appended.outcome
        else {
            panic!("a fresh command appends: {:?}", appended.outcome);
        };
        let wanted = request(thread, n).command.events;
        assert_eq!(count as usize, wanted.len());
        assert_eq!(appended.records.len(), wanted.len());
        let stored: Vec<_> = log
            .read_range(first_position..first_position + u64::from(count))
            .map(|r| r.expect("read back"))
            .collect();
        for (k, record) in appended.records.iter().enumerate() {
            let position = first_position + k as u64;
            assert_eq!(record.header.position, position);
            assert_eq!(record.header.command_id, command_id(thread, n));
            assert_eq!(record.event, wanted[k]);
            assert!(
                Arc::ptr_eq(record, &seen[&position]),
                "the record at {position} is the one committed saw, not a copy"
            );
            assert_eq!(record.header, stored[k].header);
            assert_eq!(record.event, stored[k].event().unwrap());
        }
    }
}

#[test]
fn a_duplicate_and_an_empty_decision_carry_no_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_raw(dir.path(), Durability::Buffered);
    let first = log.append_blocking_with_records(request(1, 1)).unwrap();
    assert_eq!(first.records.len(), 2);
    let again = log.append_blocking_with_records(request(1, 1)).unwrap();
    assert_eq!(
        again.outcome,
        AppendOutcome::Duplicate {
            first_position: 0,
            count: 2
        }
    );
    assert!(again.records.is_empty());
    let empty = log
        .append_blocking_with_records(AppendRequest::new(
            command_id(2, 0),
            raw(service(1), Vec::new()),
        ))
        .unwrap();
    assert!(matches!(
        empty.outcome,
        AppendOutcome::Appended { count: 0, .. }
    ));
    assert!(empty.records.is_empty());
}

/// Records the names of the threads that woke it.
#[derive(Default)]
struct WakeRecorder {
    threads: Mutex<Vec<String>>,
}

impl std::task::Wake for WakeRecorder {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let name = std::thread::current().name().unwrap_or("").to_string();
        self.threads.lock().unwrap().push(name);
    }
}

/// Polls `future` with `waker` until it resolves, within
/// [`ANSWER_DEADLINE`].
fn poll_until_ready<F: Future + Unpin>(future: &mut F, waker: &Waker) -> F::Output {
    let started = Instant::now();
    loop {
        if let Poll::Ready(out) =
            std::pin::Pin::new(&mut *future).poll(&mut Context::from_waker(waker))
        {
            return out;
        }
        assert!(started.elapsed() < ANSWER_DEADLINE, "answered in time");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_batch_of_several_callers_is_answered_off_the_writer_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (options, gate) = gated(LogOptions::default().durability(Durability::Buffered));
    let log = EventLog::<RawEvents>::open_default(dir.path(), options).unwrap();
    std::thread::scope(|scope| {
        let log = &log;
        let first = scope.spawn(move || log.append_blocking(request(0, 0)));
        assert_eq!(gate.wait_entered().requests, 1);
        // The writer is held inside the first batch: queue the others.
        let recorders: Vec<_> = (0..GROUPED_CALLERS)
            .map(|_| Arc::new(WakeRecorder::default()))
            .collect();
        let mut futures: Vec<_> = (0..GROUPED_CALLERS)
            .map(|n| Box::pin(log.append_with_records(request(1, n))))
            .collect();
        for (future, recorder) in futures.iter_mut().zip(&recorders) {
            // Registers the recording waker; the request is now queued.
            let waker = Waker::from(recorder.clone());
            let poll = future.as_mut().poll(&mut Context::from_waker(&waker));
            assert!(poll.is_pending(), "queued behind the held batch");
        }
        gate.release();
        assert!(first.join().unwrap().is_ok());
        assert_eq!(
            gate.wait_entered().requests as u64,
            GROUPED_CALLERS,
            "the queued callers form one batch"
        );
        gate.release();
        for (n, (future, recorder)) in futures.iter_mut().zip(&recorders).enumerate() {
            let waker = Waker::from(recorder.clone());
            let appended: Appended = poll_until_ready(future, &waker).expect("append");
            assert_eq!(appended.records.len(), 1 + n % 3);
            let woken_by = recorder.threads.lock().unwrap().clone();
            assert!(
                woken_by.iter().any(|t| t == "colloquy-log-answer"),
                "the answer thread delivered the answer: woken by {woken_by:?}"
            );
        }
    });
}

/// One message in `conversation(1)` under `id`, expecting `version`.
fn append_expecting(
    log: &EventLog<RawEvents>,
    id: u64,
    version: u64,
) -> Result<AppendOutcome, AppendError<Never>> {
    log.append_blocking(
        AppendRequest::new(
            command_id(9, id),
            raw(service(1), vec![message(conversation(1), id)]),
        )
        .expect_version(version),
    )
}

#[test]
fn stream_versions_held_in_memory_agree_with_the_store_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    for session in 0..3u64 {
        let log = open_raw(dir.path(), Durability::Buffered);
        for k in 0..4 {
            let version = session * 4 + k;
            let outcome = append_expecting(&log, version, version).unwrap();
            assert!(matches!(
                outcome,
                AppendOutcome::Appended { stream_version, .. } if stream_version == version + 1
            ));
            // The version it now holds in memory is the stored one.
            assert_eq!(
                log.stream_version(service(1), Some(conversation(1)))
                    .unwrap(),
                version + 1
            );
            let stale = append_expecting(&log, 1000 + version, version).unwrap_err();
            assert!(matches!(
                stale,
                AppendError::VersionConflict { expected, actual }
                    if expected == version && actual == version + 1
            ));
        }
    }
}
