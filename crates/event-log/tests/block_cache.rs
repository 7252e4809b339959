//! Every column family of a store shares one block cache, of the budget
//! `LogOptions::block_cache_bytes` sets: a store's cached table-file blocks
//! stay within one figure however many column families it has (RocksDB's
//! default gave each its own 32 MiB cache), and RocksDB is given the budget
//! of all memtables together, `LogOptions::memtable_budget_bytes`.

use event_log::keys::LOG_COLUMN_FAMILIES;
use event_log::{
    AppendRequest, Durability, EventLog, LogOptions, RawAppend, RawEvents,
    BLOCK_CACHE_BYTES_DEFAULT, MEMTABLE_BUDGET_BYTES_DEFAULT,
};
use events::{CommandId, Event, ServiceSid};

/// The budget the test sets: small, and unlike any default.
const BUDGET_BYTES: usize = 3 * 1024 * 1024 + 4096;
/// Records appended before the blocks are read back.
const RECORDS: u64 = 200;

/// A block cache property as every column family of the log reports it.
fn cache_property(log: &EventLog<RawEvents>, property: &str) -> Vec<u64> {
    let db = log.db();
    LOG_COLUMN_FAMILIES
        .iter()
        .map(|name| {
            let cf = db.cf_handle(name).expect("the log's column family");
            db.property_int_value_cf(cf, property)
                .expect("read the property")
                .expect("the property exists")
        })
        .collect()
}

#[test]
fn every_column_family_shares_one_block_cache_of_the_configured_budget() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::<RawEvents>::open_default(
        dir.path(),
        LogOptions::default()
            .durability(Durability::Buffered)
            .block_cache_bytes(BUDGET_BYTES),
    )
    .expect("open the log");
    let capacities = cache_property(&log, "rocksdb.block-cache-capacity");
    assert!(
        capacities.iter().all(|&c| c == BUDGET_BYTES as u64),
        "capacities {capacities:?}, budget {BUDGET_BYTES}"
    );

    for i in 0..RECORDS {
        log.append_blocking(AppendRequest::new(
            CommandId::from_key(&i.to_be_bytes()),
            RawAppend {
                service_sid: ServiceSid::derive(b"s"),
                events: vec![Event::ServiceUpdated {
                    friendly_name: format!("name {i}"),
                }],
            },
        ))
        .expect("append");
    }
    let db = log.db();
    for name in LOG_COLUMN_FAMILIES {
        db.flush_cf(db.cf_handle(name).expect("column family"))
            .expect("flush");
    }
    // Reading the records back loads `log` blocks into the cache; every
    // column family reports the same usage, so they share one cache.
    for record in log.read_range(0..RECORDS) {
        record.expect("read back");
    }
    let usage = cache_property(&log, "rocksdb.block-cache-usage");
    assert!(
        usage[0] > 0,
        "reading table files uses the cache: {usage:?}"
    );
    assert!(
        usage.iter().all(|&u| u == usage[0]),
        "one cache, one usage: {usage:?}"
    );
}

#[test]
fn the_default_budget_is_the_named_constant() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::<RawEvents>::open_default(dir.path(), LogOptions::default())
        .expect("open the log");
    let capacities = cache_property(&log, "rocksdb.block-cache-capacity");
    assert!(
        capacities
            .iter()
            .all(|&c| c == BLOCK_CACHE_BYTES_DEFAULT as u64),
        "capacities {capacities:?}"
    );
}

/// What the store's latest RocksDB OPTIONS file records for `key`.
fn recorded_option(dir: &std::path::Path, key: &str) -> Option<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("list the store")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("OPTIONS-"))
        })
        .collect();
    files.sort();
    let text = std::fs::read_to_string(files.last()?).expect("read OPTIONS");
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix(&format!("{key}="))
            .map(str::to_string)
    })
}

/// The memtable budget reaches RocksDB (its effect on a long run's
/// memory is measured by `benches/memory.rs`: RocksDB flushes the largest
/// memtable once their sum passes it, a soft bound that a few small
/// writes cannot show, since each column family written to holds one
/// arena block of an eighth of its memtable size whatever the budget).
#[test]
fn the_memtable_budget_is_the_named_default_or_the_configured_figure() {
    const MEMTABLE_BUDGET_BYTES: usize = 3 * 1024 * 1024 + 4096;
    for (options, want) in [
        (LogOptions::default(), MEMTABLE_BUDGET_BYTES_DEFAULT),
        (
            LogOptions::default().memtable_budget_bytes(MEMTABLE_BUDGET_BYTES),
            MEMTABLE_BUDGET_BYTES,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::<RawEvents>::open_default(dir.path(), options).expect("open");
        assert_eq!(
            recorded_option(dir.path(), "db_write_buffer_size"),
            Some(want.to_string())
        );
        drop(log);
    }
}
