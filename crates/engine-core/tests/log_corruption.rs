//! Damaged stores are detected, naming the first bad position.

mod log_support;

use std::path::Path;

use engine_core::log::keys::{position_key, CF_LOG};
use engine_core::{
    AppendRequest, ChainFault, Durability, EventLog, FaultKind, LogOptions, LogReader, OpenError,
    RawEvents, ReadError,
};
use events::{Record, RecordHeader};
use log_support::*;

/// Writes `n` single-event records and closes the log.
fn write_log(path: &Path, n: u64) {
    let log = open_raw(path, Durability::Buffered);
    for i in 0..n {
        log.append_blocking(AppendRequest::new(
            command_id(9, i),
            raw(service(1), vec![message(conversation(1), i)]),
        ))
        .unwrap();
    }
}

fn fault_of(result: Result<engine_core::VerifyReport, ReadError>) -> ChainFault {
    match result {
        Err(ReadError::Fault(fault)) => fault,
        other => panic!("expected a chain fault, got {other:?}"),
    }
}

/// Opening with the default (tail-verifying) open, returning its error.
fn open_error(path: &Path) -> OpenError {
    EventLog::<RawEvents>::open_default(path, LogOptions::default()).unwrap_err()
}

#[test]
fn a_flipped_byte_is_detected_at_its_position() {
    // Offsets: the version prefix, inside the header, inside the stored
    // hashes, inside the payload, the last byte.
    for offset in [0usize, 1, 5, 20, 60, 100, 140, usize::MAX] {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), 10);
        let len = {
            let db = open_rocks(dir.path());
            let cf = db.cf_handle(CF_LOG).unwrap();
            db.get_cf(cf, position_key(5)).unwrap().unwrap().len()
        };
        flip_record_byte(dir.path(), 5, offset.min(len - 1));

        // The record is inside the tail window, so the open refuses it.
        match open_error(dir.path()) {
            OpenError::Fault(ChainFault { position: 5, .. }) => {}
            other => panic!("offset {offset}: expected a fault at 5, got {other:?}"),
        }
        let reader = LogReader::open_read_only(dir.path()).unwrap();
        let fault = fault_of(reader.verify());
        assert_eq!(fault.position, 5, "offset {offset}: {fault}");
        assert!(
            matches!(
                fault.kind,
                FaultKind::Decode(_)
                    | FaultKind::HashMismatch
                    | FaultKind::KeyHeaderMismatch { .. }
            ),
            "offset {offset}: {fault}"
        );
        // Reading across it reports the same fault after the good records.
        let read: Vec<_> = reader.read_range(0..10).collect();
        assert_eq!(read.len(), 6);
        assert!(read[..5].iter().all(Result::is_ok));
        assert!(matches!(
            &read[5],
            Err(ReadError::Fault(ChainFault { position: 5, .. }))
        ));
    }
}

#[test]
fn a_flipped_byte_in_the_tail_fails_the_open() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30);
    flip_record_byte(dir.path(), 29, 70);
    match open_error(dir.path()) {
        OpenError::Fault(ChainFault { position: 29, .. }) => {}
        other => panic!("expected a fault at 29, got {other:?}"),
    }

    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30);
    flip_record_byte(dir.path(), 3, 70);
    match open_error(dir.path()) {
        OpenError::Fault(ChainFault { position: 3, .. }) => {}
        other => panic!("expected a fault at 3, got {other:?}"),
    }
}

#[test]
fn a_deleted_record_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10);
    delete_record(dir.path(), 4);
    // Inside the tail window: the open refuses the store.
    match open_error(dir.path()) {
        OpenError::Fault(ChainFault {
            position: 4,
            kind: FaultKind::Gap { next_found: 5 },
        }) => {}
        other => panic!("expected a gap at 4, got {other:?}"),
    }
    let reader = LogReader::open_read_only(dir.path()).unwrap();
    let fault = fault_of(reader.verify());
    assert_eq!(fault.position, 4);
    assert_eq!(fault.kind, FaultKind::Gap { next_found: 5 });
}

#[test]
fn damage_before_the_tail_window_is_found_by_verify() {
    let records = engine_core::log::TAIL_VERIFY_RECORDS + 50;

    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), records);
    delete_record(dir.path(), 0);
    // The open only checks the tail, so it succeeds...
    let log = open_raw(dir.path(), Durability::Sync);
    assert_eq!(log.head().next_position, records);
    // ...and the full walk names the missing first record.
    let fault = fault_of(log.verify());
    assert_eq!(fault.position, 0);
    assert_eq!(fault.kind, FaultKind::Gap { next_found: 1 });
    drop(log);

    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), records);
    flip_record_byte(dir.path(), 10, 90);
    let log = open_raw(dir.path(), Durability::Sync);
    assert_eq!(fault_of(log.verify()).position, 10);
    // Appends still work on top (the damage is old), and verify still
    // names the first bad position.
    log.append_blocking(AppendRequest::new(
        command_id(11, 0),
        raw(service(1), vec![service_event("after")]),
    ))
    .unwrap();
    assert_eq!(fault_of(log.verify()).position, 10);
}

#[test]
fn a_broken_link_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10);
    {
        // Re-seal record 6 over a wrong predecessor hash: it decodes and
        // its own hash is right, but it does not link.
        let db = open_rocks(dir.path());
        let cf = db.cf_handle(CF_LOG).unwrap();
        let old = Record::decode(&db.get_cf(cf, position_key(6)).unwrap().unwrap()).unwrap();
        let header: RecordHeader = old.header.clone();
        let forged = Record::seal(header, &old.event().unwrap(), [7u8; 32]).unwrap();
        db.put_cf(cf, position_key(6), forged.encode().unwrap())
            .unwrap();
    }
    let reader = LogReader::open_read_only(dir.path()).unwrap();
    let fault = fault_of(reader.verify());
    assert_eq!(fault.position, 6);
    assert!(
        matches!(fault.kind, FaultKind::BrokenLink { .. }),
        "{fault}"
    );
    assert!(fault.to_string().contains("position 6"));
}

#[test]
fn a_record_under_the_wrong_key_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10);
    {
        let db = open_rocks(dir.path());
        let cf = db.cf_handle(CF_LOG).unwrap();
        let eight = db.get_cf(cf, position_key(8)).unwrap().unwrap();
        db.put_cf(cf, position_key(2), eight).unwrap();
    }
    let reader = LogReader::open_read_only(dir.path()).unwrap();
    let fault = fault_of(reader.verify());
    assert_eq!(fault.position, 2);
    assert_eq!(
        fault.kind,
        FaultKind::KeyHeaderMismatch { header_position: 8 }
    );
}

#[test]
fn a_secondary_reader_works_while_the_log_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let log = open_raw(dir.path(), Durability::Sync);
    for i in 0..5 {
        log.append_blocking(AppendRequest::new(
            command_id(10, i),
            raw(service(1), vec![message(conversation(1), i)]),
        ))
        .unwrap();
    }
    // A second writer is refused while the first holds the store...
    assert!(matches!(open_error(dir.path()), OpenError::Storage(_)));
    // ...but a secondary reader can follow it.
    let reader = LogReader::open_secondary(dir.path(), scratch.path()).unwrap();
    let report = reader.verify().unwrap();
    assert_eq!(report.records, 5);
    assert_eq!(report.head, log.head());
    assert_eq!(reader.head().unwrap(), log.head());
    for i in 5..8 {
        log.append_blocking(AppendRequest::new(
            command_id(10, i),
            raw(service(1), vec![message(conversation(1), i)]),
        ))
        .unwrap();
    }
    reader.catch_up().unwrap();
    assert_eq!(reader.verify().unwrap().records, 8);
    assert_eq!(
        reader
            .read_stream(service(1), Some(conversation(1)), 6)
            .count(),
        2
    );
    assert_eq!(
        reader
            .stream_version(service(1), Some(conversation(1)))
            .unwrap(),
        8
    );
}

#[test]
fn readers_refuse_what_is_not_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    assert!(matches!(
        LogReader::open_read_only(&missing),
        Err(OpenError::Storage(_))
    ));
    assert!(!missing.exists(), "a reader must not create a store");
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        rocksdb::DB::open(&options, dir.path().join("plain")).unwrap();
    }
    assert!(matches!(
        LogReader::open_read_only(dir.path().join("plain")),
        Err(OpenError::MissingColumnFamily("log"))
    ));
}
