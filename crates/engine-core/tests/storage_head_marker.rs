//! The head marker turns a silent loss of acknowledged records into an open
//! error: a deleted newest WAL, or one cut short inside acknowledged
//! records, opened on main with the records simply gone (200 acknowledged,
//! fsynced records became 0, or fewer). Under `Durability::Sync` every way
//! of opening the store now refuses it with `AcknowledgedRecordsMissing`;
//! under `Durability::Buffered` the loss is reported, not refused. Torn
//! tails, a torn marker slot, a missing marker and clean reopens raise no
//! false alarm.

mod log_support;

use std::path::{Path, PathBuf};

use engine_core::log::head_marker::{
    read_head_marker, HEAD_MARKER_BYTES, HEAD_MARKER_FILE, HEAD_MARKER_SLOT_BYTES,
};
use engine_core::{
    AppendRequest, Durability, Engine, EngineError, EventLog, HeadMarkerStatus, LogOptions,
    LogReader, OpenError, RawEvents,
};
use log_support::*;

/// Acknowledged, fsynced records in each crashed store.
const RECORDS: u64 = 200;
/// Truncation points tried, as fractions of the WAL's length (in
/// `1 / TRUNCATION_STEPS` steps, from the first to the last but one).
const TRUNCATION_STEPS: u64 = 7;
/// Clean close-and-reopen cycles in the false-alarm test.
const REOPEN_CYCLES: u64 = 30;
/// Appends per durability in the ordering test: a writer that answered
/// before updating the marker loses the race to the woken caller in a
/// good share of appends, so a few hundred catch it.
const ORDERING_APPENDS: u64 = 300;

/// What an open of `path` says: the records it holds and the marker's
/// status, or the error.
fn open_log(path: &Path, options: LogOptions) -> Result<(u64, HeadMarkerStatus), OpenError> {
    let path = path.to_path_buf();
    within_deadline("EventLog::open", move || {
        let log = EventLog::<RawEvents>::open_default(&path, options)?;
        let records = log.verify().expect("an opened log verifies").records;
        Ok((records, log.storage_check().head_marker.clone()))
    })
}

/// Asserts `result` is `AcknowledgedRecordsMissing` for the store at
/// `store`, with the marker at `marker_next` and the log short of it.
fn assert_missing<T: std::fmt::Debug>(
    what: &str,
    store: &Path,
    marker_next: u64,
    result: Result<T, OpenError>,
) {
    match result {
        Err(e @ OpenError::AcknowledgedRecordsMissing { .. }) => {
            let message = e.to_string();
            let OpenError::AcknowledgedRecordsMissing {
                marker,
                store: named,
                marker_next_position,
                log_next_position,
                ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!(marker, store.join(HEAD_MARKER_FILE), "{what}");
            assert_eq!(named, store, "{what}");
            assert_eq!(marker_next_position, marker_next, "{what}");
            assert!(log_next_position < marker_next, "{what}: {message}");
            assert!(
                message.contains(HEAD_MARKER_FILE) && message.contains("WAL"),
                "{what}: the message names the marker and the likely cause: {message}"
            );
        }
        Ok(found) => panic!(
            "{what}: opened silently, {found:?}, though {marker_next} records were acknowledged"
        ),
        Err(other) => panic!("{what}: expected AcknowledgedRecordsMissing, got {other}"),
    }
}

/// Every reader refuses the store too.
fn assert_readers_refuse(store: &Path, marker_next: u64) {
    let path = store.to_path_buf();
    let result = within_deadline("LogReader::open_read_only", move || {
        LogReader::open_read_only(&path).map(|r| r.head().unwrap().next_position)
    });
    assert_missing("LogReader::open_read_only", store, marker_next, result);
    let path = store.to_path_buf();
    let scratch = tempfile::tempdir().unwrap();
    let scratch_path = scratch.path().to_path_buf();
    let result = within_deadline("LogReader::open_secondary", move || {
        LogReader::open_secondary(&path, &scratch_path).map(|r| r.head().unwrap().next_position)
    });
    assert_missing("LogReader::open_secondary", store, marker_next, result);
}

fn same_file_in(dir: &Path, file: &Path) -> PathBuf {
    dir.join(file.file_name().expect("a file name"))
}

#[test]
fn a_deleted_newest_wal_is_acknowledged_records_missing() {
    let crashed = crashed_store(
        "a_deleted_newest_wal_is_acknowledged_records_missing",
        RECORDS,
    );
    let wal = newest_wal(crashed.path());
    std::fs::remove_file(&wal).unwrap();
    // The readers first: the engine's open below lets RocksDB recover.
    assert_readers_refuse(crashed.path(), RECORDS);
    for attempt in 0..2 {
        let result = open_log(crashed.path(), LogOptions::default());
        assert_missing(
            &format!("EventLog::open, attempt {attempt}"),
            crashed.path(),
            RECORDS,
            result,
        );
    }
}

#[test]
fn a_wal_truncated_inside_acknowledged_records_is_acknowledged_records_missing() {
    let crashed = crashed_store(
        "a_wal_truncated_inside_acknowledged_records_is_acknowledged_records_missing",
        RECORDS,
    );
    let wal = newest_wal(crashed.path());
    let len = std::fs::metadata(&wal).unwrap().len();
    for step in 1..TRUNCATION_STEPS {
        let cut = len * step / TRUNCATION_STEPS;
        let store = copy_store(crashed.path());
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(same_file_in(store.path(), &wal))
            .unwrap();
        file.set_len(cut).unwrap();
        drop(file);
        if step == 1 {
            assert_readers_refuse(store.path(), RECORDS);
        }
        let result = open_log(store.path(), LogOptions::default());
        assert_missing(
            &format!("truncated to {cut} of {len} bytes"),
            store.path(),
            RECORDS,
            result,
        );
    }
}

#[test]
fn garbage_or_zeros_after_the_real_end_open_intact() {
    let crashed = crashed_store("garbage_or_zeros_after_the_real_end_open_intact", RECORDS);
    let wal = newest_wal(crashed.path());
    let mut garbage = vec![0xab, 0xcd, 0xef, 0x01, 0xff, 0xff, 0x01];
    garbage.extend((0..50u8).map(|i| i.wrapping_mul(37)));
    for tail in [vec![0u8; 100], vec![0u8; 40_000], garbage] {
        let store = copy_store(crashed.path());
        append_to(&same_file_in(store.path(), &wal), &tail);
        let path = store.path().to_path_buf();
        let status = within_deadline("LogReader::open_read_only", move || {
            let reader = LogReader::open_read_only(&path).expect("a reader opens it");
            reader.storage_check().head_marker.clone()
        });
        assert_eq!(
            status,
            HeadMarkerStatus::Intact,
            "reader, {} bytes appended",
            tail.len()
        );
        assert_eq!(
            open_log(store.path(), LogOptions::default()).expect("opens"),
            (RECORDS, HeadMarkerStatus::Intact),
            "{} bytes appended",
            tail.len()
        );
    }
}

#[test]
fn engine_open_and_rebuild_refuse_a_deleted_newest_wal() {
    let crashed = crashed_store(
        "engine_open_and_rebuild_refuse_a_deleted_newest_wal",
        RECORDS,
    );
    std::fs::remove_file(newest_wal(crashed.path())).unwrap();
    let path = crashed.path().to_path_buf();
    let rebuilt = within_deadline("Engine::rebuild", move || {
        Engine::rebuild(&path, LogOptions::default(), &mut |_, _| {}).map(drop)
    });
    let path = crashed.path().to_path_buf();
    let opened = within_deadline("Engine::open", move || {
        Engine::open(&path, LogOptions::default()).map(drop)
    });
    for (what, result) in [("Engine::rebuild", rebuilt), ("Engine::open", opened)] {
        let result = match result {
            Ok(()) => Ok(()),
            Err(EngineError::Open(e)) => Err(e),
            Err(other) => panic!("{what}: expected EngineError::Open, got {other}"),
        };
        assert_missing(what, crashed.path(), RECORDS, result);
    }
}

#[test]
fn a_torn_marker_slot_falls_back_to_the_other_slot() {
    let crashed = crashed_store("a_torn_marker_slot_falls_back_to_the_other_slot", RECORDS);
    let newest = read_head_marker(crashed.path()).unwrap().expect("a marker");
    assert_eq!(newest.next_position, RECORDS);
    // A write torn half-way through the newest slot.
    let marker = crashed.path().join(HEAD_MARKER_FILE);
    let mut bytes = std::fs::read(&marker).unwrap();
    let start = newest.slot * HEAD_MARKER_SLOT_BYTES + HEAD_MARKER_SLOT_BYTES / 2;
    bytes[start..(newest.slot + 1) * HEAD_MARKER_SLOT_BYTES].fill(0);
    std::fs::write(&marker, &bytes).unwrap();
    let other = read_head_marker(crashed.path()).unwrap().expect("a marker");
    assert_ne!(other.slot, newest.slot);
    assert_eq!(
        other.next_position,
        RECORDS - 1,
        "the previous batch's head"
    );

    // With the WAL gone, the other slot still catches the loss.
    let lost = copy_store(crashed.path());
    std::fs::remove_file(newest_wal(lost.path())).unwrap();
    assert_missing(
        "torn slot and deleted WAL",
        lost.path(),
        RECORDS - 1,
        open_log(lost.path(), LogOptions::default()),
    );

    // Intact otherwise: the marker is behind the log, and rewritten.
    assert_eq!(
        open_log(crashed.path(), LogOptions::default()).unwrap(),
        (
            RECORDS,
            HeadMarkerStatus::Behind {
                marker_next_position: RECORDS - 1,
                log_next_position: RECORDS
            }
        )
    );
    assert_eq!(
        open_log(crashed.path(), LogOptions::default()).unwrap(),
        (RECORDS, HeadMarkerStatus::Intact)
    );
}

#[test]
fn a_marker_with_both_slots_invalid_is_head_marker_damaged() {
    let dir = tempfile::tempdir().unwrap();
    drop(open_raw(dir.path(), Durability::Sync));
    let marker = dir.path().join(HEAD_MARKER_FILE);
    let mut bytes = std::fs::read(&marker).unwrap();
    assert_eq!(bytes.len(), HEAD_MARKER_BYTES);
    for slot in bytes.chunks_exact_mut(HEAD_MARKER_SLOT_BYTES) {
        slot[0] ^= 1;
    }
    std::fs::write(&marker, &bytes).unwrap();
    for result in [
        open_log(dir.path(), LogOptions::default()).map(drop),
        LogReader::open_read_only(dir.path()).map(drop),
    ] {
        match result {
            Err(e @ OpenError::HeadMarkerDamaged { .. }) => {
                assert!(e.to_string().contains(&marker.display().to_string()), "{e}");
            }
            other => panic!("expected HeadMarkerDamaged, got {other:?}"),
        }
    }
}

#[test]
fn a_missing_marker_is_recreated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open_raw(dir.path(), Durability::Sync);
        for i in 0..3 {
            log.append_blocking(AppendRequest::new(
                command_id(1, i),
                raw(service(1), vec![service_event("a")]),
            ))
            .unwrap();
        }
    }
    assert_eq!(
        open_log(dir.path(), LogOptions::default()).unwrap(),
        (3, HeadMarkerStatus::Intact)
    );
    std::fs::remove_file(dir.path().join(HEAD_MARKER_FILE)).unwrap();
    let reader = LogReader::open_read_only(dir.path()).unwrap();
    assert_eq!(
        reader.storage_check().head_marker,
        HeadMarkerStatus::Missing {
            log_next_position: 3
        }
    );
    drop(reader);
    assert_eq!(
        open_log(dir.path(), LogOptions::default()).unwrap(),
        (
            3,
            HeadMarkerStatus::Missing {
                log_next_position: 3
            }
        )
    );
    let recreated = read_head_marker(dir.path()).unwrap().expect("recreated");
    assert_eq!(recreated.next_position, 3);
    assert_eq!(
        open_log(dir.path(), LogOptions::default()).unwrap(),
        (3, HeadMarkerStatus::Intact)
    );
}

#[test]
fn clean_close_and_reopen_never_raise_a_false_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = 0u64;
    for cycle in 0..REOPEN_CYCLES {
        let durability = if cycle % 3 == 2 {
            Durability::Buffered
        } else {
            Durability::Sync
        };
        let log = EventLog::<RawEvents>::open_default(
            dir.path(),
            LogOptions::default().durability(durability),
        )
        .unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
        let status = &log.storage_check().head_marker;
        let want = if cycle == 0 {
            HeadMarkerStatus::Created
        } else {
            HeadMarkerStatus::Intact
        };
        assert_eq!(status, &want, "cycle {cycle}");
        // A few appends, some in one batch, some with several records.
        for i in 0..cycle % 4 {
            log.append_blocking(AppendRequest::new(
                command_id(cycle, i),
                raw(
                    service(1),
                    vec![message(conversation(1), i), service_event("b")],
                ),
            ))
            .unwrap();
            expected += 2;
        }
        assert_eq!(log.head().next_position, expected);
        drop(log);
        let reader = LogReader::open_read_only(dir.path()).unwrap();
        assert_eq!(
            reader.storage_check().head_marker,
            HeadMarkerStatus::Intact,
            "reader after cycle {cycle}"
        );
    }
    assert!(expected > 0);
}

#[test]
fn a_buffered_loss_is_reported_not_refused() {
    let crashed = crashed_store_with(
        "a_buffered_loss_is_reported_not_refused",
        RECORDS,
        Durability::Buffered,
    );
    // What a power loss does to buffered writes the OS had not written
    // back yet: the WAL holding them is gone.
    std::fs::remove_file(newest_wal(crashed.path())).unwrap();
    let path = crashed.path().to_path_buf();
    let loss = within_deadline("LogReader::open_read_only", move || {
        let reader = LogReader::open_read_only(&path).expect("a reader opens it");
        reader.storage_check().head_marker.clone()
    });
    let (records, status) =
        open_log(crashed.path(), LogOptions::default()).expect("a buffered loss opens");
    assert!(records < RECORDS);
    let want = HeadMarkerStatus::BufferedLoss {
        marker_next_position: RECORDS,
        log_next_position: records,
    };
    assert_eq!(status, want);
    assert_eq!(loss, want, "the reader reports it too");
    assert!(status.to_string().contains("Buffered"), "{status}");
    // Reported once: the marker now matches the log.
    assert_eq!(
        open_log(crashed.path(), LogOptions::default()).unwrap(),
        (records, HeadMarkerStatus::Intact)
    );
}

#[test]
fn a_marker_from_another_log_is_log_rewritten() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, name) in [(&a, "a"), (&b, "b")] {
        let log = open_raw(dir.path(), Durability::Sync);
        for i in 0..2 {
            log.append_blocking(AppendRequest::new(
                command_id(2, i),
                raw(service(1), vec![service_event(name)]),
            ))
            .unwrap();
        }
    }
    std::fs::copy(
        a.path().join(HEAD_MARKER_FILE),
        b.path().join(HEAD_MARKER_FILE),
    )
    .unwrap();
    match open_log(b.path(), LogOptions::default()) {
        Err(OpenError::LogRewritten {
            marker, position, ..
        }) => {
            assert_eq!(marker, b.path().join(HEAD_MARKER_FILE));
            assert_eq!(position, 1);
        }
        other => panic!("expected LogRewritten, got {other:?}"),
    }
}

#[test]
fn an_acknowledged_append_is_already_in_the_marker() {
    let dir = tempfile::tempdir().unwrap();
    for (round, durability) in [Durability::Sync, Durability::Buffered]
        .into_iter()
        .enumerate()
    {
        let log = open_raw(dir.path(), durability);
        for i in 0..ORDERING_APPENDS {
            log.append_blocking(AppendRequest::new(
                command_id(round as u64, i),
                raw(service(1), vec![service_event("c")]),
            ))
            .unwrap();
            let head = log.head();
            let marker = read_head_marker(dir.path()).unwrap().expect("a marker");
            assert_eq!(
                (marker.next_position, marker.last_hash, marker.durability),
                (head.next_position, head.last_hash, durability),
                "{durability:?}, append {i}: answered before the marker covered it"
            );
        }
    }
}
