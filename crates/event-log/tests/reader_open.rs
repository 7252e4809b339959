//! A reader's open names a damaged table file it meets while comparing the
//! log's head with the head marker, instead of failing with a bare storage
//! error (which replay-tool could only report as "cannot open", exit 2).

#[path = "../../engine-core/tests/log_support/sst.rs"]
mod sst;

use std::path::Path;

use event_log::{
    AppendRequest, Durability, EventLog, LogOptions, LogReader, OpenError, RawAppend, RawEvents,
};
use events::{CommandId, Event, ServiceSid};

/// Records of the first session: several data blocks' worth.
const FIRST_SESSION_RECORDS: u64 = 30;
/// Characters of each record's service name: a record of a few hundred
/// bytes, so the damaged offset lies inside the record's data block.
const NAME_CHARS: usize = 200;

/// Appends `n` records after what the log holds, then closes it (closing
/// flushes them into a table file of their own).
fn write_session(path: &Path, n: u64) {
    let log = EventLog::<RawEvents>::open_default(
        path,
        LogOptions::default().durability(Durability::Sync),
    )
    .expect("open the log");
    let start = log.head().next_position;
    for i in start..start + n {
        log.append_blocking(AppendRequest::new(
            CommandId::from_key(&i.to_be_bytes()),
            RawAppend {
                service_sid: ServiceSid::derive(b"s"),
                events: vec![Event::ServiceUpdated {
                    friendly_name: format!("{i:0>NAME_CHARS$}"),
                }],
            },
        ))
        .expect("append");
    }
}

#[test]
fn a_damaged_last_log_block_met_by_the_head_marker_check_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_session(dir.path(), FIRST_SESSION_RECORDS);
    // The last table holds the last record alone, in its one data block:
    // the block the head-marker comparison reads first.
    write_session(dir.path(), 1);
    let tables = sst::log_tables(dir.path());
    assert_eq!(
        tables.len(),
        2,
        "one log table file per session: {tables:?}"
    );
    let last = &tables[1];
    assert_eq!(last.first, FIRST_SESSION_RECORDS);
    sst::damage_first_data_block(&last.path);
    let scratch = tempfile::tempdir().unwrap();
    for (mode, opened) in [
        ("read-only", LogReader::open_read_only(dir.path())),
        (
            "secondary",
            LogReader::open_secondary(dir.path(), scratch.path()),
        ),
    ] {
        match opened {
            Err(OpenError::Damaged(damage)) => {
                let file = damage.file.as_ref().expect("the file is named");
                assert!(file.ends_with(last.name()), "{mode}: {damage}");
                assert_eq!(damage.column_family.as_deref(), Some("log"), "{mode}");
                assert_eq!(damage.last_position, Some(last.last), "{mode}: {damage}");
            }
            other => panic!("{mode}: expected damage to a named file, got {other:?}"),
        }
    }
}

/// Regression: a read-only view of the log's own column families reported
/// the table files of the host's other column families (an engine's
/// read-model tables) as damage, `NotInView`, so `verify` failed on every
/// store an engine had written and flushed.
#[test]
fn a_view_of_the_log_alone_does_not_report_other_column_families_as_damage() {
    let dir = tempfile::tempdir().unwrap();
    write_session(dir.path(), FIRST_SESSION_RECORDS);
    // A host's own column family beside the log, with a table file.
    let options = event_log::storage::db_options();
    let mut names = rocksdb::DB::list_cf(&options, dir.path()).expect("list column families");
    names.push("host_rows".to_string());
    let mut create = options.clone();
    create.create_missing_column_families(true);
    {
        let db = rocksdb::DB::open_cf(&create, dir.path(), &names).expect("open raw");
        let cf = db.cf_handle("host_rows").expect("created");
        db.put_cf(cf, b"row", b"value").expect("put");
        db.flush_cf(cf).expect("flush");
    }
    let reader = LogReader::open_read_only(dir.path()).expect("open the log's view");
    let report = reader
        .verify()
        .expect("the other column family is not damage");
    assert_eq!(report.records, FIRST_SESSION_RECORDS);
    reader.check_files().expect("nor in the file check");
}
