//! Log appends per second, for both durabilities, at 1, 8 and 64
//! concurrent appenders, against a raw RocksDB baseline measured in the
//! same run.
//!
//! - `log/N`: N threads each call `EventLog::append_blocking` with one
//!   `MessageAdded` event per request (unique command ids, one
//!   conversation per thread). One element = one acknowledged append.
//! - `raw/N`: one thread writes the same encoded record bytes straight into
//!   a RocksDB `log` column family, N records per `WriteBatch`, with the
//!   same sync setting: the ceiling for a group commit that gathers all N
//!   appenders into every batch, without sealing, hashing, indexes,
//!   idempotency or hand-offs. One element = one record.
//!
//! After criterion's own report, the bench prints each log/raw pair's mean
//! throughput over all of its timed iterations (warm-up included) and their
//! ratio.
//!
//! Run: `cargo bench --bench log_append`. Stores live under Cargo's target
//! tmp directory (a real disk, so `Sync` pays real fsyncs).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use engine_core::{AppendRequest, Durability, EventLog, LogOptions, RawAppend, RawEvents};
use events::{
    CommandId, ConversationSid, Event, MessageSid, Record, RecordHeader, ServiceSid, GENESIS_HASH,
};

/// Concurrent appenders measured.
const APPENDERS: [usize; 3] = [1, 8, 64];
/// Criterion samples per benchmark (its minimum).
const SAMPLES: usize = 10;
/// Criterion measurement time per benchmark.
const MEASUREMENT: Duration = Duration::from_secs(3);
/// Criterion warm-up time per benchmark.
const WARM_UP: Duration = Duration::from_secs(1);

/// (durability, kind, appenders) → (elements, time) over every timed call.
type Totals = BTreeMap<(String, &'static str, usize), (u64, Duration)>;
static TOTALS: Mutex<Totals> = Mutex::new(BTreeMap::new());

fn record_total(durability: Durability, kind: &'static str, appenders: usize, n: u64, t: Duration) {
    let mut totals = TOTALS.lock().unwrap();
    let entry = totals
        .entry((format!("{durability:?}"), kind, appenders))
        .or_insert((0, Duration::ZERO));
    entry.0 += n;
    entry.1 += t;
}

fn service() -> ServiceSid {
    ServiceSid::derive(b"bench-service")
}

fn conversation(thread: usize) -> ConversationSid {
    ConversationSid::derive(&(thread as u64).to_be_bytes())
}

/// The appended event: a short chat message, as a typical append.
fn event(thread: usize, n: u64) -> Event {
    Event::MessageAdded {
        conversation_sid: conversation(thread),
        message_sid: MessageSid::derive(&n.to_be_bytes()),
        index: n,
        author: "alice@example.com".into(),
        participant_sid: None,
        body: Some(format!("message number {n:>10}: the quick brown fox jumps")),
        media: Vec::new(),
        attributes: "{}".into(),
    }
}

/// `appenders` threads share `iters` appends; returns the wall time from
/// their common start to the last acknowledgement.
fn run_log(log: &EventLog<RawEvents>, ids: &AtomicU64, appenders: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(appenders + 1);
    std::thread::scope(|scope| {
        for t in 0..appenders {
            let share = iters / appenders as u64 + u64::from((t as u64) < iters % appenders as u64);
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                for _ in 0..share {
                    let n = ids.fetch_add(1, Ordering::Relaxed);
                    log.append_blocking(AppendRequest::new(
                        CommandId::from_key(&n.to_be_bytes()),
                        RawAppend {
                            service_sid: service(),
                            events: vec![event(t, n)],
                        },
                    ))
                    .expect("append");
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // The scope joins every appender before returning.
        start
    })
    .elapsed()
}

/// The raw baseline's store: one `log` column family.
struct Raw {
    db: rocksdb::DB,
    values: Vec<Vec<u8>>,
    next_key: u64,
}

impl Raw {
    fn open(path: &std::path::Path) -> Raw {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(&options, path, ["log"]).expect("open raw store");
        // Real encoded records of the same shape the log appends.
        let mut prev = GENESIS_HASH;
        let values = (0..1_024u64)
            .map(|n| {
                let event = event(0, n);
                let header = RecordHeader {
                    position: n,
                    recorded_at: 1_700_000_000_000_000 + n,
                    service_sid: service(),
                    conversation_sid: event.conversation_sid(),
                    command_id: CommandId::from_key(&n.to_be_bytes()),
                    actor: None,
                };
                let record = Record::seal(header, &event, prev).expect("seal");
                prev = record.hash;
                record.encode().expect("encode")
            })
            .collect();
        Raw {
            db,
            values,
            next_key: 0,
        }
    }

    /// Writes `iters` records, `per_batch` per write.
    fn run(&mut self, durability: Durability, per_batch: usize, iters: u64) -> Duration {
        let cf = self.db.cf_handle("log").expect("log column family");
        let mut write_options = rocksdb::WriteOptions::default();
        write_options.set_sync(durability == Durability::Sync);
        let start = Instant::now();
        let mut left = iters;
        while left > 0 {
            let take = left.min(per_batch as u64);
            let mut batch = rocksdb::WriteBatch::default();
            for _ in 0..take {
                let value = &self.values[(self.next_key % self.values.len() as u64) as usize];
                batch.put_cf(cf, self.next_key.to_be_bytes(), value);
                self.next_key += 1;
            }
            self.db.write_opt(batch, &write_options).expect("raw write");
            left -= take;
        }
        start.elapsed()
    }
}

fn bench_durability(c: &mut Criterion, durability: Durability) {
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(root).expect("bench tmp dir");
    let log_dir = tempfile::tempdir_in(root).expect("log dir");
    let raw_dir = tempfile::tempdir_in(root).expect("raw dir");
    let log = EventLog::<RawEvents>::open_default(
        log_dir.path(),
        LogOptions::default().durability(durability),
    )
    .expect("open log");
    let mut raw = Raw::open(raw_dir.path());
    let ids = AtomicU64::new(0);

    let mut group = c.benchmark_group(format!("log_append/{durability:?}"));
    group.throughput(Throughput::Elements(1));
    group.sample_size(SAMPLES);
    group.measurement_time(MEASUREMENT);
    group.warm_up_time(WARM_UP);
    for appenders in APPENDERS {
        group.bench_with_input(BenchmarkId::new("log", appenders), &appenders, |b, &n| {
            b.iter_custom(|iters| {
                let t = run_log(&log, &ids, n, iters);
                record_total(durability, "log", n, iters, t);
                t
            })
        });
        group.bench_with_input(BenchmarkId::new("raw", appenders), &appenders, |b, &n| {
            b.iter_custom(|iters| {
                let t = raw.run(durability, n, iters);
                record_total(durability, "raw", n, iters, t);
                t
            })
        });
    }
    group.finish();
    // The chain the bench wrote is sound.
    let report = log.verify().expect("the benchmarked log verifies");
    println!(
        "log_append/{durability:?}: verified {} records ({} bytes)",
        report.records, report.bytes
    );
}

fn print_ratios() {
    let totals = TOTALS.lock().unwrap();
    println!();
    println!("mean throughput over all timed iterations (warm-up included):");
    println!(
        "{:<10} {:>9} {:>14} {:>14} {:>9}",
        "durability", "appenders", "log appends/s", "raw records/s", "log/raw"
    );
    for durability in [Durability::Sync, Durability::Buffered] {
        let name = format!("{durability:?}");
        for appenders in APPENDERS {
            let rate = |kind: &'static str| {
                totals
                    .get(&(name.clone(), kind, appenders))
                    .map(|(n, t)| *n as f64 / t.as_secs_f64())
            };
            if let (Some(log), Some(raw)) = (rate("log"), rate("raw")) {
                println!(
                    "{name:<10} {appenders:>9} {log:>14.0} {raw:>14.0} {:>9.3}",
                    log / raw
                );
            }
        }
    }
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(SAMPLES)
        .measurement_time(MEASUREMENT)
        .warm_up_time(WARM_UP)
        .configure_from_args();
    bench_durability(&mut criterion, Durability::Sync);
    bench_durability(&mut criterion, Durability::Buffered);
    criterion.final_summary();
    print_ratios();
}
