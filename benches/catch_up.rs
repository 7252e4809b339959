//! Opening an engine store of 1,000,000 events, against the library's
//! verify walk of the same log, in the same run.
//!
//! - `library_verify`: the library's verify walk of the log
//!   (`log::scan::par_scan`, every check of the chain, on one worker per
//!   core; what `LogReader::verify` runs after its MANIFEST check): the
//!   issue's baseline.
//! - `open_catch_up`: `Engine::open` with the read-model rows dropped
//!   first, so the open folds the whole log into fresh read models and
//!   writes their rows (what an open after `Engine::rebuild`, or of a store
//!   whose rows are in another format, does).
//! - `open_with_rows`: `Engine::open` with every row present: loading the
//!   read models, nothing to fold.
//!
//! One element = one record. The store is made once through
//! `Engine::execute` (`Durability::Buffered`, several posting threads):
//! one service, conversations of two chat participants, then messages of
//! ~80-byte bodies with a read-horizon move every tenth; it is kept under
//! Cargo's target tmp directory and reused by later runs.
//!
//! Run (workspace crates optimised, RocksDB as built):
//! `cargo bench --profile dev --bench catch_up` with the `--config` flags
//! of docs/BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use engine_core::log::scan;
use engine_core::log::ScanOptions;
use engine_core::{Durability, Engine, LogOptions};
use events::*;

/// Events in the benchmarked store, at least (posting threads stop once
/// the log holds this many; a horizon move that changes nothing appends
/// none).
const EVENTS: u64 = 1_000_000;
/// Conversations the messages are spread over.
const CONVERSATIONS: u64 = 2_000;
/// Threads executing commands while the store is made.
const GENERATOR_THREADS: u64 = 16;
/// Criterion samples per benchmark (its minimum).
const SAMPLES: usize = 10;
/// Criterion measurement time per benchmark.
const MEASUREMENT: Duration = Duration::from_secs(20);
/// Criterion warm-up time per benchmark.
const WARM_UP: Duration = Duration::from_secs(1);

fn options() -> LogOptions {
    LogOptions::default().durability(Durability::Buffered)
}

/// Linux's USER_HZ: the unit of the CPU times in `/proc/self/stat`.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system) this process used so far, every thread
/// included, from `/proc/self/stat` (0 where unavailable): on a machine
/// shared with other work, records per CPU-second hold where wall-clock
/// rates do not.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime is field 14.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    ticks as f64 / CLOCK_TICKS_PER_SECOND
}

/// Runs `f` and returns its wall time, adding its CPU seconds and one
/// run to `cpu` (the total CPU seconds and runs of one benchmark).
fn timed(cpu: &mut (f64, u64), f: impl FnOnce()) -> Duration {
    let before = cpu_seconds();
    let start = Instant::now();
    f();
    let wall = start.elapsed();
    cpu.0 += cpu_seconds() - before;
    cpu.1 += 1;
    wall
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Makes (or reuses) the store of [`EVENTS`] events.
fn store() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("catch-up-bench-v1-{EVENTS}"));
    let done = dir.join("GENERATED");
    if done.exists() {
        flush(&dir);
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench store dir");
    let started = Instant::now();
    let engine = Engine::open(&dir, options()).expect("open the bench store");
    let service: ServiceSid = engine
        .execute(CommandEnvelope::new("service", CreateService::new("bench")))
        .expect("create the service");
    let conversations: Vec<(ConversationSid, ParticipantSid)> = (0..CONVERSATIONS)
        .map(|c| {
            let conv = engine
                .execute(CommandEnvelope::new(
                    format!("conversation {c}"),
                    CreateConversation::new(service),
                ))
                .expect("create a conversation");
            let joined = [format!("agent-{}", c % 50), format!("customer-{c}")].map(|who| {
                engine
                    .execute(CommandEnvelope::new(
                        format!("join {c} {who}"),
                        AddParticipant::new(service, conv, ParticipantSpec::chat(who)),
                    ))
                    .expect("add a participant")
            });
            (conv, joined[1])
        })
        .collect();
    let next = AtomicU64::new(engine.log().head().next_position);
    std::thread::scope(|scope| {
        for _ in 0..GENERATOR_THREADS {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if engine.log().head().next_position >= EVENTS {
                    break;
                }
                let c = n % CONVERSATIONS;
                let (conv, customer) = conversations[c as usize];
                let who = format!("customer-{c}");
                if n % 10 == 9 {
                    engine
                        .execute(CommandEnvelope::new(
                            format!("read {n}"),
                            UpdateReadHorizon::advance(service, conv, customer, n / CONVERSATIONS),
                        ))
                        .expect("advance a read horizon");
                } else {
                    engine
                        .execute(CommandEnvelope::new(
                            format!("post {n}"),
                            PostMessage::new(service, conv).author(who).body(format!(
                                "message {n}: the quick brown fox jumps over the lazy dog, twice"
                            )),
                        ))
                        .expect("post a message");
                }
            });
        }
    });
    assert!(engine.log().head().next_position >= EVENTS);
    drop(engine);
    flush(&dir);
    std::fs::write(&done, b"").expect("mark the store generated");
    println!(
        "generated {EVENTS} events in {:.1} s at {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    dir
}

/// Flushes every memtable, so the read-only `LogReader` sees the whole
/// store in its table files.
fn flush(dir: &Path) {
    let options = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&options, dir).expect("list column families");
    let db = rocksdb::DB::open_cf(&options, dir, &names).expect("open to flush");
    for name in &names {
        db.flush_cf(db.cf_handle(name).expect("listed column family"))
            .expect("flush");
    }
}

fn open_read_only(dir: &Path) -> rocksdb::DB {
    let options = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&options, dir).expect("list column families");
    rocksdb::DB::open_cf_for_read_only(&options, dir, names, false).expect("open read-only")
}

/// Drops and recreates every read-model column family (as
/// `Engine::rebuild` does), so the next open folds the whole log.
fn drop_rows(dir: &Path) {
    let options = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&options, dir).expect("list column families");
    let mut db = rocksdb::DB::open_cf(&options, dir, &names).expect("open to drop rows");
    for name in projections::Table::NAMES {
        db.drop_cf(name).expect("drop a read-model column family");
        db.create_cf(name, &options)
            .expect("create a read-model column family");
    }
}

fn open_and_check(dir: &Path, records: u64) {
    let engine = Engine::open(dir, options()).expect("open");
    assert_eq!(
        engine.read(|rm| rm.applied_position()),
        Some(records - 1),
        "the read models cover the whole log"
    );
}

fn main() {
    let dir = store();
    let db = open_read_only(&dir);
    let records = scan::stored_end(&db).expect("the log's end");
    let load_before = load_average();
    let mut criterion = Criterion::default()
        .sample_size(SAMPLES)
        .measurement_time(MEASUREMENT)
        .warm_up_time(WARM_UP)
        .configure_from_args();
    let mut group = criterion.benchmark_group("open_1m");
    group.throughput(Throughput::Elements(records));
    group.sample_size(SAMPLES);
    let (mut verify_cpu, mut catch_up_cpu, mut rows_cpu) = ((0.0, 0), (0.0, 0), (0.0, 0));
    group.bench_function("library_verify", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    timed(&mut verify_cpu, || {
                        let (report, _) = scan::par_scan(
                            &db,
                            0..records,
                            &ScanOptions::default(),
                            || scan::NoAccumulator,
                            &mut |_| {},
                        )
                        .expect("sound");
                        assert_eq!(report.records, records);
                    })
                })
                .sum()
        })
    });
    drop(db);
    group.bench_function("open_catch_up", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                drop_rows(&dir);
                spent += timed(&mut catch_up_cpu, || open_and_check(&dir, records));
            }
            spent
        })
    });
    group.bench_function("open_with_rows", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| timed(&mut rows_cpu, || open_and_check(&dir, records)))
                .sum()
        })
    });
    group.finish();
    criterion.final_summary();
    for (name, (cpu, runs)) in [
        ("library_verify", verify_cpu),
        ("open_catch_up", catch_up_cpu),
        ("open_with_rows", rows_cpu),
    ] {
        if runs > 0 && cpu > 0.0 {
            println!(
                "{name:<16} {:>12.0} records per CPU-second ({runs} runs)",
                records as f64 * runs as f64 / cpu
            );
        }
    }
    println!(
        "{records} records; load average before {load_before}, after {}",
        load_average()
    );
}
