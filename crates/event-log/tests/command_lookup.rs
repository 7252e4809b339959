//! The writer looks up every command id before deciding, and a fresh id is
//! absent: the commands column family's memtable has a whole-key Bloom
//! filter, so that miss is answered by the filter instead of a walk down
//! the memtable's skiplist (RocksDB's perf context counts it).

use event_log::keys::{command_key, CF_COMMANDS};
use event_log::{AppendRequest, EventLog, LogOptions, RawAppend, RawEvents};
use events::{CommandId, Event, ServiceSid};
use rocksdb::perf::{set_perf_stats, PerfContext, PerfMetric, PerfStatsLevel};

#[test]
fn an_absent_command_id_is_answered_by_the_memtable_bloom_filter() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::<RawEvents>::open_default(dir.path(), LogOptions::default()).unwrap();
    let service = ServiceSid::derive(b"lookup");
    // One stored command, so the memtable is not empty.
    log.append_blocking(AppendRequest::new(
        CommandId::from_key(b"stored"),
        RawAppend {
            service_sid: service,
            events: vec![Event::ServiceUpdated {
                friendly_name: "n".into(),
            }],
        },
    ))
    .unwrap();
    let db = log.db();
    let commands = db.cf_handle(CF_COMMANDS).unwrap();
    let absent = command_key(Some(&service), &CommandId::from_key(b"fresh"));
    let present = command_key(Some(&service), &CommandId::from_key(b"stored"));

    set_perf_stats(PerfStatsLevel::EnableCount);
    let mut perf = PerfContext::default();
    perf.reset();
    assert!(db.get_pinned_cf(&commands, absent).unwrap().is_none());
    let filtered = perf.metric(PerfMetric::BloomMemtableMissCount);
    perf.reset();
    assert!(db.get_pinned_cf(&commands, present).unwrap().is_some());
    let passed = perf.metric(PerfMetric::BloomMemtableHitCount);
    set_perf_stats(PerfStatsLevel::Disable);

    assert_eq!(
        filtered, 1,
        "the absent id was filtered out by the memtable's Bloom filter"
    );
    assert_eq!(passed, 1, "the stored id passed the filter");
}
