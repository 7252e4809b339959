//! Damaged table files are reported as damage, naming the file and the
//! positions it holds, never read as a shorter, intact log.

mod log_support;

use std::path::Path;

use engine_core::log::files::{LiveFiles, ManifestFiles};
use engine_core::log::TAIL_VERIFY_RECORDS;
use engine_core::{
    AppendRequest, DamageKind, Durability, FileDamage, LogReader, OpenError, ReadError,
    VerifyReport,
};
use log_support::sst::{self, LogTable};
use log_support::*;

/// Records written per session in the small stores.
const SESSION_RECORDS: u64 = 30;

/// Appends `n` records after what the log holds, then closes it (closing
/// flushes them into a table file of their own).
fn write_session(path: &Path, n: u64) {
    let log = open_raw(path, Durability::Buffered);
    let start = log.head().next_position;
    for i in start..start + n {
        log.append_blocking(AppendRequest::new(
            command_id(11, i),
            raw(service(1), vec![message(conversation(1), i)]),
        ))
        .unwrap();
    }
}

/// A store whose log is in two table files of `first` and `second`
/// records.
fn two_table_store(first: u64, second: u64) -> (tempfile::TempDir, Vec<LogTable>) {
    let dir = tempfile::tempdir().unwrap();
    write_session(dir.path(), first);
    write_session(dir.path(), second);
    let tables = sst::log_tables(dir.path());
    assert_eq!(
        tables.len(),
        2,
        "one log table file per session: {tables:?}"
    );
    (dir, tables)
}

fn damage_of(result: Result<VerifyReport, ReadError>) -> FileDamage {
    match result {
        Err(ReadError::Damaged(damage)) => *damage,
        other => panic!("expected damage to a named file, got {other:?}"),
    }
}

fn assert_names(damage: &FileDamage, table: &LogTable, first_position: u64) {
    let file = damage.file.as_ref().expect("the file is named");
    assert!(file.ends_with(table.name()), "{damage}");
    assert_eq!(damage.column_family.as_deref(), Some("log"), "{damage}");
    assert_eq!(damage.first_position, Some(first_position), "{damage}");
    assert_eq!(damage.last_position, Some(table.last), "{damage}");
    let text = damage.to_string();
    assert!(text.contains(&table.name()), "{text}");
    assert!(
        text.contains(&format!("positions {first_position}..={}", table.last)),
        "{text}"
    );
}

#[test]
fn a_secondary_reader_reports_a_log_file_it_cannot_open_instead_of_a_shorter_log() {
    type Damage = fn(&Path);
    let cases: [(&str, usize, Damage); 3] = [
        ("index of the first file", 0, sst::damage_index),
        ("index of the second file", 1, sst::damage_index),
        ("footer of the second file", 1, sst::damage_footer),
    ];
    for (what, which, damage) in cases {
        let (dir, tables) = two_table_store(SESSION_RECORDS, SESSION_RECORDS);
        let table = &tables[which];
        damage(&table.path);
        let scratch = tempfile::tempdir().unwrap();
        let reader = LogReader::open_secondary(dir.path(), scratch.path()).unwrap();
        let found = damage_of(reader.verify());
        assert!(
            matches!(found.kind, DamageKind::NotInView { .. }),
            "{what}: {found}"
        );
        assert_names(&found, table, table.first);
    }
}

#[test]
fn a_read_only_reader_refuses_a_damaged_log_file_naming_it() {
    let (dir, tables) = two_table_store(SESSION_RECORDS, SESSION_RECORDS);
    sst::damage_index(&tables[1].path);
    match LogReader::open_read_only(dir.path()) {
        Err(OpenError::Damaged(found)) => assert_names(&found, &tables[1], tables[1].first),
        other => panic!("expected damage to a named file, got {other:?}"),
    }
}

#[test]
fn a_damaged_data_block_is_damage_naming_the_file_and_the_first_position() {
    // The second file holds the whole tail the open verifies, so the log
    // opens, and the damage in the first file is found by `verify`.
    let (dir, tables) = two_table_store(SESSION_RECORDS, TAIL_VERIFY_RECORDS);
    sst::damage_first_data_block(&tables[0].path);
    let log = open_raw(dir.path(), Durability::Buffered);
    let found = damage_of(log.verify());
    assert!(
        matches!(found.kind, DamageKind::Unreadable { .. }),
        "{found}"
    );
    assert_names(&found, &tables[0], 0);
}

#[test]
fn the_manifest_lists_exactly_the_files_rocksdb_reads() {
    let (dir, _) = two_table_store(SESSION_RECORDS, SESSION_RECORDS);
    let check = |when: &str| {
        let db = open_rocks(dir.path());
        let live = LiveFiles::of(&db).unwrap();
        let manifest = ManifestFiles::read(dir.path()).unwrap();
        assert!(!live.files.is_empty(), "{when}");
        assert_eq!(manifest.files, live.files, "{when}");
        db
    };
    check("after two sessions");
    // A compaction deletes files and adds others; each session's reopen
    // writes a fresh MANIFEST.
    let db = check("reopened");
    for name in rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path()).unwrap() {
        let cf = db.cf_handle(&name).unwrap();
        db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    }
    drop(db);
    check("after a full compaction");
}
