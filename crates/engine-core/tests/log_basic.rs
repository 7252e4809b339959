//! Appending, reading back (by range and by stream) and reopening.

mod log_support;

use engine_core::log::keys::CF_STREAMS;
use engine_core::{
    AppendOutcome, AppendRequest, Durability, EventLog, LogHead, LogOptions, RawEvents,
};
use events::{Event, GENESIS_HASH};
use log_support::*;

#[test]
fn append_and_read_back_by_range_and_stream() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_raw(dir.path(), Durability::Sync);
    assert_eq!(log.head(), LogHead::EMPTY);

    let s = service(1);
    let (a, b) = (conversation(1), conversation(2));
    let plan: Vec<Vec<Event>> = vec![
        vec![service_event("one")],
        vec![message(a, 0), message(a, 1)],
        vec![message(b, 0)],
        vec![message(a, 2)],
        vec![service_event("two")],
    ];
    let mut expected_positions = Vec::new();
    for (i, events) in plan.iter().enumerate() {
        let outcome = log
            .append_blocking(AppendRequest::new(
                command_id(0, i as u64),
                raw(s, events.clone()),
            ))
            .unwrap();
        let AppendOutcome::Appended {
            first_position,
            count,
            ..
        } = outcome
        else {
            panic!("expected an append, got {outcome:?}");
        };
        assert_eq!(count as usize, events.len());
        expected_positions.push(first_position);
    }
    assert_eq!(expected_positions, vec![0, 1, 3, 4, 5]);
    assert_eq!(log.head().next_position, 6);

    // The whole range, in order, with the events as appended.
    let all: Vec<_> = log.read_range(0..u64::MAX).map(Result::unwrap).collect();
    let flat: Vec<Event> = plan.iter().flatten().cloned().collect();
    assert_eq!(all.len(), 6);
    let mut prev = GENESIS_HASH;
    for (i, record) in all.iter().enumerate() {
        assert_eq!(record.header.position, i as u64);
        assert_eq!(record.header.service_sid, s);
        assert_eq!(record.prev_hash, prev);
        assert_eq!(record.event().unwrap(), flat[i]);
        prev = record.hash;
    }
    assert_eq!(log.head().last_hash, prev);
    // Both records of one command share its id.
    assert_eq!(all[1].header.command_id, command_id(0, 1));
    assert_eq!(all[2].header.command_id, command_id(0, 1));

    // A sub-range.
    let middle: Vec<u64> = log
        .read_range(2..4)
        .map(|r| r.unwrap().header.position)
        .collect();
    assert_eq!(middle, vec![2, 3]);
    assert_eq!(log.read_range(4..4).count(), 0);
    assert_eq!(log.read_range(10..20).count(), 0);

    // Streams: one conversation on its own, and the service-level stream.
    let stream_a: Vec<u64> = log
        .read_stream(s, Some(a), 0)
        .map(|r| r.unwrap().header.position)
        .collect();
    assert_eq!(stream_a, vec![1, 2, 4]);
    let stream_a_later: Vec<u64> = log
        .read_stream(s, Some(a), 3)
        .map(|r| r.unwrap().header.position)
        .collect();
    assert_eq!(stream_a_later, vec![4]);
    let stream_b: Vec<Event> = log
        .read_stream(s, Some(b), 0)
        .map(|r| r.unwrap().event().unwrap())
        .collect();
    assert_eq!(stream_b, vec![message(b, 0)]);
    let service_level: Vec<u64> = log
        .read_stream(s, None, 0)
        .map(|r| r.unwrap().header.position)
        .collect();
    assert_eq!(service_level, vec![0, 5]);
    assert_eq!(log.read_stream(service(2), Some(a), 0).count(), 0);

    // Stream versions count each stream's records.
    assert_eq!(log.stream_version(s, Some(a)).unwrap(), 3);
    assert_eq!(log.stream_version(s, Some(b)).unwrap(), 1);
    assert_eq!(log.stream_version(s, None).unwrap(), 2);
    assert_eq!(log.stream_version(service(2), None).unwrap(), 0);
    assert!(log.db().cf_handle(CF_STREAMS).is_some());

    let report = log.verify().unwrap();
    assert_eq!(report.records, 6);
    assert_eq!(report.head, log.head());
    assert!(report.bytes > 0);
    assert!(report.first_recorded_at.unwrap() <= report.last_recorded_at.unwrap());
}

#[test]
fn reopen_resumes_position_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(1);
    let head = {
        let log = open_raw(dir.path(), Durability::Buffered);
        for i in 0..50 {
            log.append_blocking(AppendRequest::new(
                command_id(1, i),
                raw(s, vec![message(conversation(1), i)]),
            ))
            .unwrap();
        }
        log.head()
    };
    assert_eq!(head.next_position, 50);

    let log = open_raw(dir.path(), Durability::Buffered);
    assert_eq!(log.head(), head);
    let outcome = log
        .append_blocking(AppendRequest::new(
            command_id(2, 0),
            raw(s, vec![message(conversation(1), 50)]),
        ))
        .unwrap();
    assert_eq!(
        outcome,
        AppendOutcome::Appended {
            first_position: 50,
            count: 1,
            stream_version: 51
        }
    );
    let record = log.read_range(50..51).next().unwrap().unwrap();
    assert_eq!(record.prev_hash, head.last_hash);
    // Idempotency survives the reopen.
    let again = log
        .append_blocking(AppendRequest::new(
            command_id(1, 7),
            raw(s, vec![message(conversation(1), 7)]),
        ))
        .unwrap();
    assert_eq!(
        again,
        AppendOutcome::Duplicate {
            first_position: 7,
            count: 1
        }
    );
    assert_eq!(log.verify().unwrap().records, 51);
    // recorded_at never goes backwards.
    let times: Vec<u64> = log
        .read_range(0..u64::MAX)
        .map(|r| r.unwrap().header.recorded_at)
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn async_append_resolves_when_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(open_raw(dir.path(), Durability::Sync));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let outcomes = runtime.block_on(async {
        let mut outcomes = Vec::new();
        for i in 0..20u64 {
            let outcome = log
                .append(AppendRequest::new(
                    command_id(3, i),
                    raw(service(1), vec![message(conversation(1), i)]),
                ))
                .await
                .unwrap();
            outcomes.push(outcome);
        }
        outcomes
    });
    for (i, outcome) in outcomes.iter().enumerate() {
        assert_eq!(
            *outcome,
            AppendOutcome::Appended {
                first_position: i as u64,
                count: 1,
                stream_version: i as u64 + 1
            }
        );
    }
    assert_eq!(log.verify().unwrap().records, 20);
}

#[test]
fn async_appends_wait_for_room_in_a_tiny_queue() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(
        EventLog::<RawEvents>::open_default(
            dir.path(),
            LogOptions::default()
                .durability(Durability::Buffered)
                .channel_capacity_requests(1)
                .batch_requests_max(2),
        )
        .unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..16u64 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50u64 {
                    log.append(AppendRequest::new(
                        command_id(t, i),
                        raw(service(1), vec![message(conversation(t as u32), i)]),
                    ))
                    .await
                    .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    let report = log.verify().unwrap();
    assert_eq!(report.records, 16 * 50);
}

#[test]
fn an_empty_decision_is_acknowledged_without_writing_or_remembering() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_raw(dir.path(), Durability::Sync);
    let id = command_id(4, 0);
    let outcome = log
        .append_blocking(AppendRequest::new(id, raw(service(1), vec![])))
        .unwrap();
    assert_eq!(
        outcome,
        AppendOutcome::Appended {
            first_position: 0,
            count: 0,
            stream_version: 0
        }
    );
    assert_eq!(log.head(), LogHead::EMPTY);
    // The id was not remembered: the same id with events appends.
    let outcome = log
        .append_blocking(AppendRequest::new(
            id,
            raw(service(1), vec![service_event("x")]),
        ))
        .unwrap();
    assert!(matches!(
        outcome,
        AppendOutcome::Appended {
            first_position: 0,
            count: 1,
            ..
        }
    ));
}

#[test]
fn too_many_events_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_raw(dir.path(), Durability::Sync);
    let events: Vec<Event> = (0..=events::limits::EVENTS_PER_COMMAND_MAX as u64)
        .map(|i| message(conversation(1), i))
        .collect();
    let err = log
        .append_blocking(AppendRequest::new(
            command_id(5, 0),
            raw(service(1), events),
        ))
        .unwrap_err();
    assert!(
        matches!(
            err,
            engine_core::AppendError::TooManyEvents { count, max }
                if count == max + 1 && max == events::limits::EVENTS_PER_COMMAND_MAX
        ),
        "{err:?}"
    );
    assert_eq!(log.head(), LogHead::EMPTY);
    assert_eq!(log.read_range(0..u64::MAX).count(), 0);
}

#[test]
fn an_oversized_event_is_refused_with_its_index_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_raw(dir.path(), Durability::Sync);
    let huge = Event::ServiceUpdated {
        friendly_name: "x".repeat(events::limits::RECORD_BYTES_MAX + 1),
    };
    let err = log
        .append_blocking(AppendRequest::new(
            command_id(6, 0),
            raw(service(1), vec![service_event("fine"), huge]),
        ))
        .unwrap_err();
    assert!(
        matches!(err, engine_core::AppendError::Encode { index: 1, .. }),
        "{err:?}"
    );
    assert_eq!(log.head(), LogHead::EMPTY);
    assert_eq!(log.stream_version(service(1), None).unwrap(), 0);
    // The log still works.
    log.append_blocking(AppendRequest::new(
        command_id(6, 1),
        raw(service(1), vec![service_event("fine")]),
    ))
    .unwrap();
    assert_eq!(log.verify().unwrap().records, 1);
}

/// Bytes in the store's write-ahead log files.
fn wal_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn closing_the_log_leaves_no_write_ahead_log_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open_raw(dir.path(), Durability::Buffered);
        for i in 0..2_000 {
            log.append_blocking(AppendRequest::new(
                command_id(7, i),
                raw(service(1), vec![message(conversation(1), i)]),
            ))
            .unwrap();
        }
        assert!(
            wal_bytes(dir.path()) > 100_000,
            "the appends went to the WAL"
        );
    }
    assert!(
        wal_bytes(dir.path()) < 4_096,
        "{} WAL bytes left after close",
        wal_bytes(dir.path())
    );
    let log = open_raw(dir.path(), Durability::Buffered);
    assert_eq!(log.verify().unwrap().records, 2_000);
}
