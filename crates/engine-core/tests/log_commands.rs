//! Command handling on the writer: idempotency, optimistic concurrency,
//! rejections, read-model writes, and poisoning after a failed write.

mod log_support;

use std::sync::Arc;
use std::time::Duration;

use engine_core::log::keys::position_key;
use engine_core::{
    AppendError, AppendOutcome, AppendRequest, DecideContext, Decision, Durability, EventLog,
    Idempotency, LogHead, LogOptions, StateMachine,
};
use events::{CodecError, Event, RecordHeader};
use log_support::*;
use parking_lot::Mutex;

#[test]
fn a_version_conflict_is_typed_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_raw(dir.path(), Durability::Sync);
    let (s, a) = (service(1), conversation(1));
    // A new stream is at version 0.
    let first = log
        .append_blocking(
            AppendRequest::new(command_id(0, 0), raw(s, vec![message(a, 0), message(a, 1)]))
                .expect_version(0),
        )
        .unwrap();
    assert_eq!(
        first,
        AppendOutcome::Appended {
            first_position: 0,
            count: 2,
            stream_version: 2
        }
    );
    let head = log.head();

    let id = command_id(0, 1);
    let err = log
        .append_blocking(AppendRequest::new(id, raw(s, vec![message(a, 2)])).expect_version(1))
        .unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::VersionConflict {
                expected: 1,
                actual: 2
            }
        ),
        "{err:?}"
    );
    assert_eq!(log.head(), head);
    assert_eq!(log.read_range(0..u64::MAX).count(), 2);
    assert_eq!(log.stream_version(s, Some(a)).unwrap(), 2);

    // The conflicting id was not remembered: retried with the right
    // version it appends.
    let retried = log
        .append_blocking(AppendRequest::new(id, raw(s, vec![message(a, 2)])).expect_version(2))
        .unwrap();
    assert_eq!(
        retried,
        AppendOutcome::Appended {
            first_position: 2,
            count: 1,
            stream_version: 3
        }
    );
    // Other streams are unaffected by this one's version.
    log.append_blocking(
        AppendRequest::new(command_id(0, 2), raw(s, vec![message(conversation(2), 0)]))
            .expect_version(0),
    )
    .unwrap();
    assert_eq!(log.verify().unwrap().records, 4);
}

#[test]
fn an_idempotent_retry_returns_the_original_position() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_raw(dir.path(), Durability::Sync);
    let s = service(1);
    log.append_blocking(AppendRequest::new(
        command_id(1, 0),
        raw(s, vec![service_event("before")]),
    ))
    .unwrap();
    let id = command_id(1, 1);
    let events = vec![message(conversation(1), 0), message(conversation(1), 1)];
    let first = log
        .append_blocking(AppendRequest::new(id, raw(s, events.clone())))
        .unwrap();
    assert_eq!(
        first,
        AppendOutcome::Appended {
            first_position: 1,
            count: 2,
            stream_version: 2
        }
    );
    let head = log.head();
    for _ in 0..3 {
        // Even with a stale version, a retry of the same command is a
        // duplicate: the version is not part of the command.
        let retry = log
            .append_blocking(AppendRequest::new(id, raw(s, events.clone())).expect_version(99))
            .unwrap();
        assert_eq!(
            retry,
            AppendOutcome::Duplicate {
                first_position: 1,
                count: 2
            }
        );
    }
    // Other content under the same id in the same scope is refused.
    let reused = log
        .append_blocking(AppendRequest::new(id, raw(s, vec![service_event("other")])))
        .unwrap_err();
    assert!(
        matches!(
            reused,
            AppendError::IdempotencyKeyReused {
                first_position: 1,
                ..
            }
        ),
        "{reused:?}"
    );
    assert_eq!(log.head(), head);
    assert_eq!(log.verify().unwrap().records, 3);
}

#[test]
fn two_identical_command_ids_in_one_batch_append_once() {
    let dir = tempfile::tempdir().unwrap();
    let (options, gate) = gated(LogOptions::default());
    let log = EventLog::<engine_core::RawEvents>::open_default(dir.path(), options).unwrap();
    let s = service(1);

    // Hold a first batch at the gate so the next requests queue up.
    let mut blocker = Box::pin(log.append(AppendRequest::new(
        command_id(2, 0),
        raw(s, vec![service_event("first")]),
    )));
    poll_pending(&mut blocker);
    assert_eq!(gate.wait_entered().requests, 1);

    let id = command_id(2, 1);
    let mut one = Box::pin(log.append(AppendRequest::new(
        id,
        raw(
            s,
            vec![message(conversation(1), 0), message(conversation(1), 1)],
        ),
    )));
    let mut two = Box::pin(log.append(AppendRequest::new(
        id,
        raw(
            s,
            vec![message(conversation(1), 0), message(conversation(1), 1)],
        ),
    )));
    poll_pending(&mut one);
    poll_pending(&mut two);

    gate.release();
    gate.release();
    let (b, x, y) = block_on(async { (blocker.await, one.await, two.await) });
    assert!(matches!(
        b.unwrap(),
        AppendOutcome::Appended {
            first_position: 0,
            ..
        }
    ));
    // Both queued requests went into the second batch; only one appended.
    let second = gate.wait_entered();
    assert_eq!((second.requests, second.records), (2, 2));
    assert_eq!(
        x.unwrap(),
        AppendOutcome::Appended {
            first_position: 1,
            count: 2,
            stream_version: 2
        }
    );
    assert_eq!(
        y.unwrap(),
        AppendOutcome::Duplicate {
            first_position: 1,
            count: 2
        }
    );
    assert_eq!(log.head().next_position, 3);
    assert_eq!(log.verify().unwrap().records, 3);
}

#[test]
fn one_batch_scopes_command_ids_and_tells_retries_from_reused_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (options, gate) = gated(LogOptions::default());
    let log = EventLog::<engine_core::RawEvents>::open_default(dir.path(), options).unwrap();
    let (a, b) = (service(1), service(2));

    // Hold a first batch at the gate so the next requests queue up.
    let mut blocker = Box::pin(log.append(AppendRequest::new(
        command_id(3, 0),
        raw(a, vec![service_event("first")]),
    )));
    poll_pending(&mut blocker);
    assert_eq!(gate.wait_entered().requests, 1);

    // Two services with one key: both apply, each its own records.
    let shared = command_id(3, 1);
    let in_a = raw(a, vec![message(conversation(1), 0)]);
    let in_b = raw(b, vec![message(conversation(2), 0)]);
    // One key, two different commands in one service: the second is refused.
    let reused = command_id(3, 2);
    let first_use = raw(a, vec![message(conversation(1), 1)]);
    let second_use = raw(a, vec![message(conversation(1), 99)]);
    // One key, the same command twice: the second is a duplicate.
    let retried = command_id(3, 3);
    let once = raw(a, vec![message(conversation(1), 2)]);
    let requests = [
        AppendRequest::new(shared, in_a),
        AppendRequest::new(shared, in_b),
        AppendRequest::new(reused, first_use),
        AppendRequest::new(reused, second_use),
        AppendRequest::new(retried, once.clone()),
        AppendRequest::new(retried, once),
    ];
    let mut pending: Vec<_> = requests
        .into_iter()
        .map(|request| Box::pin(log.append(request)))
        .collect();
    for future in &mut pending {
        poll_pending(future);
    }
    gate.release();
    gate.release();
    let (first, answers) = block_on(async {
        let first = blocker.await.unwrap();
        let mut answers = Vec::new();
        for future in pending {
            answers.push(future.await);
        }
        (first, answers)
    });
    assert!(matches!(
        first,
        AppendOutcome::Appended {
            first_position: 0,
            ..
        }
    ));
    // All six went into the second batch; four appended one record each.
    let second = gate.wait_entered();
    assert_eq!((second.requests, second.records), (6, 4));
    let positions: Vec<_> = answers
        .iter()
        .map(|answer| match answer {
            Ok(AppendOutcome::Appended { first_position, .. }) => Ok(("appended", *first_position)),
            Ok(AppendOutcome::Duplicate { first_position, .. }) => {
                Ok(("duplicate", *first_position))
            }
            Err(AppendError::IdempotencyKeyReused { first_position, .. }) => {
                Ok(("reused", *first_position))
            }
            Err(other) => Err(format!("{other:?}")),
        })
        .collect();
    assert_eq!(
        positions,
        vec![
            Ok(("appended", 1)),
            Ok(("appended", 2)),
            Ok(("appended", 3)),
            Ok(("reused", 3)),
            Ok(("appended", 4)),
            Ok(("duplicate", 4)),
        ]
    );
    let records: Vec<_> = log.read_range(0..u64::MAX).map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 5);
    assert_eq!(records[2].header.service_sid, b, "B's command is its own");
    assert_eq!(log.verify().unwrap().records, 5);
}

// A tiny state machine with a read model.

/// Column family of the test read model: one key per applied record.
const LEDGER_CF: &str = "ledger";

#[derive(Debug)]
enum LedgerCommand {
    /// Post `count` messages.
    Post { count: u64 },
    /// Post one message if exactly `expected` records were applied.
    PostIfApplied { expected: u64 },
    /// Always refused.
    Refuse,
}

#[derive(Debug, PartialEq, Eq)]
enum LedgerRejection {
    Refused,
    Stale { applied: u64 },
}

#[derive(Default, Clone)]
struct Probe {
    committed: Arc<Mutex<Vec<u64>>>,
    batches: Arc<Mutex<Vec<bool>>>,
}

struct Ledger {
    applied: u64,
    in_batch: bool,
    probe: Probe,
}

impl StateMachine for Ledger {
    type Command = LedgerCommand;
    type Rejection = LedgerRejection;
    const COLUMN_FAMILIES: &'static [&'static str] = &[LEDGER_CF];

    fn idempotency(command: &LedgerCommand) -> Result<Idempotency, CodecError> {
        let scope = Some(service(7));
        let fingerprint =
            events::idempotency_fingerprint(scope.as_ref(), None, &format!("{command:?}"))?;
        Ok(Idempotency { scope, fingerprint })
    }

    fn begin_batch(&mut self) {
        assert!(!self.in_batch);
        self.in_batch = true;
    }

    fn decide(
        &self,
        command: &LedgerCommand,
        ctx: &DecideContext,
    ) -> Result<Decision, LedgerRejection> {
        assert!(self.in_batch);
        let count = match command {
            LedgerCommand::Post { count } => *count,
            LedgerCommand::PostIfApplied { expected } => {
                if *expected != self.applied {
                    return Err(LedgerRejection::Stale {
                        applied: self.applied,
                    });
                }
                1
            }
            LedgerCommand::Refuse => return Err(LedgerRejection::Refused),
        };
        Ok(Decision {
            service_sid: service(7),
            stream: Some(conversation(7)),
            events: (0..count)
                .map(|i| message(conversation(7), ctx.next_position + i))
                .collect(),
        })
    }

    fn apply(
        &mut self,
        db: &rocksdb::DB,
        batch: &mut rocksdb::WriteBatch,
        header: &RecordHeader,
        _event: &Event,
    ) {
        self.applied += 1;
        batch.put_cf(
            db.cf_handle(LEDGER_CF).unwrap(),
            position_key(header.position),
            b"",
        );
    }

    fn end_batch(&mut self, durable: bool) {
        assert!(self.in_batch);
        self.in_batch = false;
        self.probe.batches.lock().push(durable);
    }

    fn committed(&mut self, records: &[Arc<engine_core::CommittedRecord>]) {
        // Slow on purpose: an acknowledgement sent before this returns
        // would be seen by the test as a missing position.
        std::thread::sleep(Duration::from_millis(20));
        self.probe
            .committed
            .lock()
            .extend(records.iter().map(|r| r.header.position));
    }
}

fn ledger_rows(db: &rocksdb::DB) -> u64 {
    db.iterator_cf(
        db.cf_handle(LEDGER_CF).unwrap(),
        rocksdb::IteratorMode::Start,
    )
    .count() as u64
}

fn open_ledger(path: &std::path::Path, options: LogOptions, probe: &Probe) -> EventLog<Ledger> {
    let probe = probe.clone();
    EventLog::open(path, options, move |db, head: &LogHead| {
        let applied = ledger_rows(db);
        if applied != head.next_position {
            return Err(format!(
                "read model has {applied} rows, log has {} records",
                head.next_position
            ));
        }
        Ok(Ledger {
            applied,
            in_batch: false,
            probe,
        })
    })
    .unwrap()
}

#[test]
fn a_rejection_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Probe::default();
    let log = open_ledger(dir.path(), LogOptions::default(), &probe);
    let id = command_id(3, 0);
    let err = log
        .append_blocking(AppendRequest::new(id, LedgerCommand::Refuse))
        .unwrap_err();
    assert!(
        matches!(err, AppendError::Rejected(LedgerRejection::Refused)),
        "{err:?}"
    );
    assert_eq!(log.head(), LogHead::EMPTY);
    assert_eq!(log.read_range(0..u64::MAX).count(), 0);
    assert_eq!(ledger_rows(log.db()), 0);
    assert!(probe.committed.lock().is_empty());
    // The refused id is not remembered.
    let outcome = log
        .append_blocking(AppendRequest::new(id, LedgerCommand::Post { count: 2 }))
        .unwrap();
    assert!(matches!(
        outcome,
        AppendOutcome::Appended {
            first_position: 0,
            count: 2,
            ..
        }
    ));
    assert_eq!(ledger_rows(log.db()), 2);
}

#[test]
fn state_machine_hooks_run_in_order_and_see_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Probe::default();
    let (options, gate) = gated(LogOptions::default());
    let log = open_ledger(dir.path(), options, &probe);

    // Batch 1 is held at the gate.
    let mut first = Box::pin(log.append(AppendRequest::new(
        command_id(4, 0),
        LedgerCommand::Post { count: 1 },
    )));
    poll_pending(&mut first);
    gate.wait_entered();
    // Both expect 1 applied record; in one batch the second must see the
    // first's apply and be refused.
    let mut a = Box::pin(log.append(AppendRequest::new(
        command_id(4, 1),
        LedgerCommand::PostIfApplied { expected: 1 },
    )));
    let mut b = Box::pin(log.append(AppendRequest::new(
        command_id(4, 2),
        LedgerCommand::PostIfApplied { expected: 1 },
    )));
    poll_pending(&mut a);
    poll_pending(&mut b);
    gate.release();
    gate.release();
    let (first, a, b) = block_on(async { (first.await, a.await, b.await) });
    first.unwrap();
    assert!(matches!(
        a.unwrap(),
        AppendOutcome::Appended {
            first_position: 1,
            ..
        }
    ));
    assert!(matches!(
        b,
        Err(AppendError::Rejected(LedgerRejection::Stale { applied: 2 }))
    ));
    let second = gate.wait_entered();
    assert_eq!((second.requests, second.records), (2, 1));

    // `committed` ran before each acknowledgement.
    gate.release();
    let outcome = log
        .append_blocking(AppendRequest::new(
            command_id(4, 3),
            LedgerCommand::Post { count: 3 },
        ))
        .unwrap();
    assert!(matches!(
        outcome,
        AppendOutcome::Appended {
            first_position: 2,
            count: 3,
            ..
        }
    ));
    assert_eq!(*probe.committed.lock(), vec![0, 1, 2, 3, 4]);
    assert_eq!(*probe.batches.lock(), vec![true, true, true]);
    // The read model was written in the same batches as the records.
    assert_eq!(ledger_rows(log.db()), 5);
    drop(log);

    // Reopening hands the state machine a consistent database and head.
    let log = open_ledger(dir.path(), LogOptions::default(), &Probe::default());
    assert_eq!(log.head().next_position, 5);
}

#[test]
fn a_failed_write_poisons_the_log_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Probe::default();
    let (options, gate) = gated(LogOptions::default());
    let log = open_ledger(dir.path(), options, &probe);
    gate.release();
    log.append_blocking(AppendRequest::new(
        command_id(5, 0),
        LedgerCommand::Post { count: 1 },
    ))
    .unwrap();
    assert_eq!(gate.wait_entered().requests, 1);

    // The next batch, with two requests, fails to write.
    let mut blocker = Box::pin(log.append(AppendRequest::new(
        command_id(5, 1),
        LedgerCommand::Post { count: 1 },
    )));
    poll_pending(&mut blocker);
    assert_eq!(gate.wait_entered().requests, 1);
    let mut refused =
        Box::pin(log.append(AppendRequest::new(command_id(5, 2), LedgerCommand::Refuse)));
    let mut other = Box::pin(log.append(AppendRequest::new(
        command_id(5, 3),
        LedgerCommand::Post { count: 2 },
    )));
    poll_pending(&mut refused);
    poll_pending(&mut other);
    gate.release(); // batch 2 (blocker alone) is written
    gate.fail("disk on fire"); // batch 3 fails
    let (blocker, refused, other) = block_on(async { (blocker.await, refused.await, other.await) });
    blocker.unwrap();
    let head = log.head();
    assert_eq!(head.next_position, 2);
    let failed = gate.wait_entered();
    assert_eq!((failed.requests, failed.records), (2, 2));
    for result in [refused.map(|_| ()), other.map(|_| ())] {
        match result {
            Err(AppendError::WriteFailed { message }) => assert_eq!(message, "disk on fire"),
            other => panic!("expected WriteFailed, got {other:?}"),
        }
    }
    assert!(log.is_poisoned());
    assert_eq!(log.head(), head);
    assert_eq!(*probe.batches.lock(), vec![true, true, false]);
    assert_eq!(*probe.committed.lock(), vec![0, 1]);
    assert_eq!(log.read_range(0..u64::MAX).count(), 2);
    assert_eq!(ledger_rows(log.db()), 2);
    // Every later append is refused without reaching the writer.
    let err = log
        .append_blocking(AppendRequest::new(
            command_id(5, 4),
            LedgerCommand::Post { count: 1 },
        ))
        .unwrap_err();
    assert!(matches!(err, AppendError::Poisoned), "{err:?}");
    drop(log);

    // Reopening clears the poison; the failed batch's ids were never
    // remembered.
    let log = open_ledger(dir.path(), LogOptions::default(), &Probe::default());
    assert_eq!(log.head(), head);
    let outcome = log
        .append_blocking(AppendRequest::new(
            command_id(5, 3),
            LedgerCommand::Post { count: 2 },
        ))
        .unwrap();
    assert!(matches!(
        outcome,
        AppendOutcome::Appended {
            first_position: 2,
            count: 2,
            ..
        }
    ));
    assert_eq!(log.verify().unwrap().records, 4);
}

/// A state machine whose `decide` panics on demand.
struct Fragile;

impl StateMachine for Fragile {
    type Command = bool;
    type Rejection = std::convert::Infallible;
    const COLUMN_FAMILIES: &'static [&'static str] = &[];

    fn idempotency(panic: &bool) -> Result<Idempotency, CodecError> {
        let scope = Some(service(8));
        let fingerprint = events::idempotency_fingerprint(scope.as_ref(), None, panic)?;
        Ok(Idempotency { scope, fingerprint })
    }

    fn decide(
        &self,
        panic: &bool,
        _ctx: &DecideContext,
    ) -> Result<Decision, std::convert::Infallible> {
        assert!(!panic, "the test asked decide to panic");
        Ok(Decision {
            service_sid: service(8),
            stream: None,
            events: vec![service_event("ok")],
        })
    }

    fn apply(&mut self, _: &rocksdb::DB, _: &mut rocksdb::WriteBatch, _: &RecordHeader, _: &Event) {
    }
}

#[test]
fn a_crashed_writer_answers_closed_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), LogOptions::default(), |_, _| {
        Ok::<_, std::convert::Infallible>(Fragile)
    })
    .unwrap();
    log.append_blocking(AppendRequest::new(command_id(6, 0), false))
        .unwrap();
    let err = log
        .append_blocking(AppendRequest::new(command_id(6, 1), true))
        .unwrap_err();
    assert!(matches!(err, AppendError::Closed), "{err:?}");
    // Later appends, blocking or async, are refused too.
    let err = log
        .append_blocking(AppendRequest::new(command_id(6, 2), false))
        .unwrap_err();
    assert!(matches!(err, AppendError::Closed), "{err:?}");
    let err = block_on(log.append(AppendRequest::new(command_id(6, 3), false))).unwrap_err();
    assert!(matches!(err, AppendError::Closed), "{err:?}");
    // What was durable stays readable.
    assert_eq!(log.verify().unwrap().records, 1);
}

/// A state machine whose scope rule disagrees with its decisions: it files
/// every command under the account scope, but decides service events.
#[derive(Debug, Default)]
struct Misfiled;

impl StateMachine for Misfiled {
    type Command = ();
    type Rejection = std::convert::Infallible;
    const COLUMN_FAMILIES: &'static [&'static str] = &[];

    fn idempotency(command: &()) -> Result<Idempotency, CodecError> {
        let fingerprint = events::idempotency_fingerprint(None, None, command)?;
        Ok(Idempotency {
            scope: None,
            fingerprint,
        })
    }

    fn decide(&self, _: &(), _: &DecideContext) -> Result<Decision, std::convert::Infallible> {
        Ok(Decision {
            service_sid: service(9),
            stream: None,
            events: vec![service_event("misfiled")],
        })
    }

    fn apply(&mut self, _: &rocksdb::DB, _: &mut rocksdb::WriteBatch, _: &RecordHeader, _: &Event) {
    }
}

#[test]
fn a_scope_rule_that_disagrees_with_the_decision_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::<Misfiled>::open_default(dir.path(), LogOptions::default()).unwrap();
    let err = log
        .append_blocking(AppendRequest::new(command_id(7, 0), ()))
        .unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::ScopeMismatch {
                declared: None,
                derived: Some(s),
            } if s == service(9)
        ),
        "{err:?}"
    );
    assert_eq!(log.head(), LogHead::EMPTY);
    assert_eq!(log.verify().unwrap().records, 0);
}
