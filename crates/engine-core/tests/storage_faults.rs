//! Damaged storage is never silent and never hangs: damage to the WAL or
//! MANIFEST where acknowledged records live fails the open with a typed
//! error naming the file, a torn tail left by a crash still opens (and is
//! reported), and no open, of any kind, hangs.

mod log_support;

use std::path::{Path, PathBuf};

use engine_core::log::storage::{LogFileKind, TornKind, LOG_HEADER_BYTES};
use engine_core::{
    AppendRequest, Durability, EventLog, LogFileFault, LogOptions, LogReader, OpenError, RawEvents,
};
use log_support::*;

/// Acknowledged, fsynced records in each crashed store.
const RECORDS: u64 = 200;
/// Bit flips tried per store.
const BIT_FLIP_TRIALS: u64 = 24;

/// Opens the log under a deadline; the records it then holds (checked end
/// to end), or the open's error.
fn open_and_count(path: &Path) -> Result<u64, OpenError> {
    let path = path.to_path_buf();
    within_deadline("EventLog::open", move || {
        let log = EventLog::<RawEvents>::open_default(&path, LogOptions::default())?;
        Ok(log.verify().expect("an opened log verifies").records)
    })
}

/// The same file in another store directory.
fn same_file_in(dir: &Path, file: &Path) -> PathBuf {
    dir.join(file.file_name().expect("a file name"))
}

fn file_len(file: &Path) -> u64 {
    std::fs::metadata(file).expect("stat").len()
}

#[test]
fn a_flipped_bit_in_the_wal_fails_the_open_naming_the_file() {
    let crashed = crashed_store(
        "a_flipped_bit_in_the_wal_fails_the_open_naming_the_file",
        RECORDS,
    );
    let wal = newest_wal(crashed.path());
    let len = file_len(&wal);
    let mut refused = 0;
    for trial in 0..BIT_FLIP_TRIALS {
        let store = copy_store(crashed.path());
        let damaged = same_file_in(store.path(), &wal);
        let offset = len * (trial + 1) / (BIT_FLIP_TRIALS + 1);
        flip_bit(&damaged, offset, (trial % 8) as u8);
        match open_and_count(store.path()) {
            Err(OpenError::LogFileDamaged {
                file, offset: at, ..
            }) => {
                assert_eq!(file, damaged, "trial {trial}: the error names the WAL");
                assert!(
                    at <= offset,
                    "trial {trial}: damage at {offset}, reported at {at}"
                );
                refused += 1;
            }
            // A flip in bytes no reader looks at (a block's zero trailer)
            // loses nothing.
            Ok(records) => assert_eq!(
                records, RECORDS,
                "trial {trial}: a bit flipped at byte {offset} of the WAL silently dropped records"
            ),
            Err(other) => panic!("trial {trial}: expected LogFileDamaged, got {other}"),
        }
    }
    assert!(
        refused >= BIT_FLIP_TRIALS - 1,
        "only {refused} of {BIT_FLIP_TRIALS} flips were refused"
    );
}

#[test]
fn a_recyclable_record_type_in_the_wal_is_an_error_not_a_hang() {
    let crashed = crashed_store(
        "a_recyclable_record_type_in_the_wal_is_an_error_not_a_hang",
        RECORDS,
    );
    let wal = newest_wal(crashed.path());
    let len = file_len(&wal);
    // A header of type 6 (a recycled-log "first fragment"): RocksDB 11.8's
    // reader spins on it forever.
    append_to(&wal, &[0, 0, 0, 0, 0, 0, 6]);
    let expect = |what: &str, result: Result<(), OpenError>| match result {
        Err(OpenError::LogFileDamaged {
            file,
            offset,
            fault: LogFileFault::RecyclableType(6),
        }) => {
            assert_eq!(file, wal, "{what}");
            assert_eq!(offset, len, "{what}");
        }
        other => panic!("{what}: expected LogFileDamaged, got {other:?}"),
    };
    let path = crashed.path().to_path_buf();
    expect(
        "EventLog::open",
        within_deadline("EventLog::open", move || {
            EventLog::<RawEvents>::open_default(&path, LogOptions::default()).map(drop)
        }),
    );
    let path = crashed.path().to_path_buf();
    expect(
        "LogReader::open_read_only",
        within_deadline("LogReader::open_read_only", move || {
            LogReader::open_read_only(&path).map(drop)
        }),
    );
    let path = crashed.path().to_path_buf();
    let scratch = tempfile::tempdir().unwrap();
    let scratch_path = scratch.path().to_path_buf();
    expect(
        "LogReader::open_secondary",
        within_deadline("LogReader::open_secondary", move || {
            LogReader::open_secondary(&path, &scratch_path).map(drop)
        }),
    );
}

/// A store closed cleanly after one synced append (of command `n`), so its
/// MANIFEST holds several records.
fn closed_store_with_one_record(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let log = open_raw(dir.path(), Durability::Sync);
    log.append_blocking(AppendRequest::new(
        command_id(n, 0),
        raw(service(1), vec![service_event("a")]),
    ))
    .unwrap();
    drop(log);
    dir
}

#[test]
fn a_recyclable_record_type_in_the_manifest_is_an_error_not_a_hang() {
    let dir = closed_store_with_one_record(5);
    // Turn the MANIFEST's second record into a recyclable type.
    let manifest = current_manifest(dir.path());
    let bytes = std::fs::read(&manifest).unwrap();
    let first_len = u64::from(u16::from_le_bytes([bytes[4], bytes[5]]));
    let second = LOG_HEADER_BYTES + first_len;
    assert!(
        second + LOG_HEADER_BYTES < bytes.len() as u64,
        "two records"
    );
    let mut damaged = bytes.clone();
    damaged[second as usize + 6] = 5;
    std::fs::write(&manifest, damaged).unwrap();

    let path = dir.path().to_path_buf();
    let result = within_deadline("EventLog::open", move || {
        EventLog::<RawEvents>::open_default(&path, LogOptions::default()).map(drop)
    });
    match result {
        Err(OpenError::LogFileDamaged {
            file,
            offset,
            fault: LogFileFault::RecyclableType(5),
        }) => {
            assert_eq!(file, manifest);
            assert_eq!(offset, second);
        }
        other => panic!("expected LogFileDamaged, got {other:?}"),
    }
    let path = dir.path().to_path_buf();
    let result = within_deadline("LogReader::open_read_only", move || {
        LogReader::open_read_only(&path).map(drop)
    });
    assert!(
        matches!(result, Err(OpenError::LogFileDamaged { .. })),
        "{result:?}"
    );
}

#[test]
fn a_flipped_bit_in_the_manifest_fails_the_open_naming_the_file() {
    let dir = closed_store_with_one_record(6);
    let manifest = current_manifest(dir.path());
    let len = file_len(&manifest);
    // Inside the first record's payload.
    flip_bit(&manifest, LOG_HEADER_BYTES + 2, 3);
    let path = dir.path().to_path_buf();
    let result = within_deadline("EventLog::open", move || {
        EventLog::<RawEvents>::open_default(&path, LogOptions::default()).map(drop)
    });
    match result {
        Err(OpenError::LogFileDamaged {
            file,
            offset: 0,
            fault: LogFileFault::ChecksumMismatch,
        }) => assert_eq!(file, manifest),
        other => panic!("expected LogFileDamaged at 0 of {len} bytes, got {other:?}"),
    }
}

#[test]
fn torn_wal_tails_still_open_and_are_reported() {
    let crashed = crashed_store("torn_wal_tails_still_open_and_are_reported", RECORDS);
    let wal = newest_wal(crashed.path());
    let len = file_len(&wal);

    // Truncation inside the last record: it is dropped, nothing else. A
    // write cut short was never acknowledged, so the head marker does not
    // cover it (cutting an acknowledged record is refused instead:
    // storage_head_marker.rs).
    for cut in [1u64, 5, 40] {
        let store = copy_store(crashed.path());
        let torn = same_file_in(store.path(), &wal);
        let file = std::fs::OpenOptions::new().write(true).open(&torn).unwrap();
        file.set_len(len - cut).unwrap();
        drop(file);
        assert_eq!(unacknowledge_last_batch(store.path()), RECORDS - 1);
        let path = store.path().to_path_buf();
        let (records, check) = within_deadline("EventLog::open", move || {
            let log = EventLog::<RawEvents>::open_default(&path, LogOptions::default())
                .expect("a torn tail opens");
            (log.verify().unwrap().records, log.storage_check().clone())
        });
        assert_eq!(
            records,
            RECORDS - 1,
            "cut {cut}: only the torn record is gone"
        );
        assert_eq!(check.torn_tails.len(), 1, "cut {cut}: {check}");
        let tail = &check.torn_tails[0];
        assert_eq!((&tail.file, tail.kind), (&torn, LogFileKind::Wal));
        assert_eq!(tail.offset + tail.bytes, len - cut, "cut {cut}: {tail}");
        assert!(
            matches!(tail.torn, TornKind::Record { .. } | TornKind::Header { .. }),
            "cut {cut}: {tail}"
        );
    }

    // A zero-filled tail (the file grew, its data never landed), short and
    // longer than a block: every record is there.
    for zeros in [100usize, 40_000] {
        let store = copy_store(crashed.path());
        append_to(&same_file_in(store.path(), &wal), &vec![0u8; zeros]);
        assert_eq!(
            open_and_count(store.path()).expect("a zeroed tail opens"),
            RECORDS,
            "{zeros} zero bytes"
        );
    }

    // A garbage tail: a header whose length runs past the end of the file,
    // then junk. Every record is there, and the tail is reported.
    let store = copy_store(crashed.path());
    let torn = same_file_in(store.path(), &wal);
    let mut garbage = vec![0xab, 0xcd, 0xef, 0x01, 0xff, 0xff, 0x01];
    garbage.extend((0..50u8).map(|i| i.wrapping_mul(37)));
    append_to(&torn, &garbage);
    // A reader sees the torn tail as the engine will (before the engine's
    // open recovers the WAL and removes it).
    let reader_check = {
        let reader = LogReader::open_read_only(store.path()).expect("a reader opens it");
        assert_eq!(reader.verify().unwrap().records, RECORDS);
        reader.storage_check().clone()
    };
    let path = store.path().to_path_buf();
    let (records, check) = within_deadline("EventLog::open", move || {
        let log = EventLog::<RawEvents>::open_default(&path, LogOptions::default())
            .expect("a garbage tail opens");
        (log.verify().unwrap().records, log.storage_check().clone())
    });
    assert_eq!(records, RECORDS);
    assert_eq!(check.torn_tails.len(), 1, "{check}");
    let tail = &check.torn_tails[0];
    assert_eq!((tail.offset, tail.bytes), (len, garbage.len() as u64));
    assert_eq!(
        tail.torn,
        TornKind::Record {
            declared: 0xffff,
            present: garbage.len() as u64 - LOG_HEADER_BYTES
        }
    );
    assert_eq!(reader_check.torn_tails, check.torn_tails);
}

#[test]
fn a_deleted_wal_fails_the_open() {
    // Several WAL files, each holding synced writes that no table file
    // holds yet: a small column family that fills and switches memtables,
    // and one that never flushes, so every WAL stays live. The host is
    // killed (no flush), as after a crash.
    let dir = tempfile::tempdir().unwrap();
    let (filling, pinning) = ("filling", "pinning");
    {
        let mut options = engine_core::log::storage::db_options();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let mut small = rocksdb::Options::default();
        small.set_write_buffer_size(64 * 1024);
        let db = rocksdb::DB::open_cf_descriptors(
            &options,
            dir.path(),
            vec![
                rocksdb::ColumnFamilyDescriptor::new(filling, small),
                rocksdb::ColumnFamilyDescriptor::new(pinning, rocksdb::Options::default()),
            ],
        )
        .unwrap();
        let mut sync = rocksdb::WriteOptions::default();
        sync.set_sync(true);
        db.put_cf_opt(db.cf_handle(pinning).unwrap(), b"acknowledged", b"1", &sync)
            .unwrap();
        for i in 0..2_000u32 {
            db.put_cf_opt(
                db.cf_handle(filling).unwrap(),
                i.to_be_bytes(),
                vec![1u8; 200],
                &sync,
            )
            .unwrap();
        }
    }
    let wals = wal_files(dir.path());
    assert!(wals.len() >= 2, "several WAL files: {wals:?}");
    std::fs::remove_file(&wals[0]).unwrap();
    let path = dir.path().to_path_buf();
    let result = within_deadline("EventLog::open", move || {
        EventLog::<RawEvents>::open_default(&path, LogOptions::default()).map(drop)
    });
    match result {
        Err(OpenError::StoreDamaged { path, detail }) => {
            assert_eq!(path, dir.path());
            assert!(detail.contains("Missing WAL"), "{detail}");
        }
        other => panic!("expected StoreDamaged, got {other:?}"),
    }
}
