//! The library's verify (`LogReader::verify`, the walk `EventLog::verify`
//! runs too) on a store of 1,000,000 events, against a raw RocksDB
//! iteration over the same `log` column family, in the same run.
//!
//! - `raw_iter`: one thread walks the `log` column family with a raw
//!   iterator (the same read options as verify's walk) and touches every
//!   key and value: the floor for reading the records, with no decoding or
//!   hashing.
//! - `raw_iter_parallel`: the same, split in one contiguous range per core:
//!   the ceiling for a parallel walk.
//! - `library_verify`: `LogReader::verify` — every check it makes (the
//!   view's table files against the MANIFEST, 8-byte keys, contiguous
//!   positions, decode, self-hash, key/header agreement, `prev_hash` links,
//!   event decode), on one worker per core.
//!
//! One element = one record. The store is generated once (with the raw
//! `EventLog<RawEvents>`, `Durability::Buffered`, one 64-event request per
//! conversation from several threads: created, a chat and an SMS
//! participant, then messages of ~80-byte bodies and read horizons; records
//! average 262 bytes), flushed and compacted, under Cargo's target tmp
//! directory, and reused by later runs. After criterion's report the bench
//! prints each walk's mean records/s over all timed iterations and its
//! ratio to `raw_iter`, then the medians of rounds that alternate the walks.
//!
//! Run: `cargo bench --bench verify`. With `VERIFY_BENCH_UNSETTLED=1` the
//! store is left as the writer closed it (memtables unflushed, every
//! write-ahead log file kept), in its own directory, to measure what
//! replaying the write-ahead log at open costs.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use engine_core::log::keys::CF_LOG;
use engine_core::log::scan::{default_workers, walk_read_options};
use engine_core::{
    AppendRequest, Durability, EventLog, LogOptions, LogReader, RawAppend, RawEvents,
};
use events::limits::EVENTS_PER_COMMAND_MAX;
use events::{
    CommandId, ConversationSid, Event, MessageSid, MessagingBinding, ParticipantKind,
    ParticipantSid, ServiceSid,
};
use support::{load_average, process_cpu_seconds as cpu_seconds, settle};

/// Events in the benchmarked store.
const EVENTS: u64 = 1_000_000;
/// Threads appending while the store is generated.
const GENERATOR_THREADS: u64 = 8;
/// Criterion samples per benchmark (its minimum).
const SAMPLES: usize = 10;
/// Criterion measurement time per benchmark.
const MEASUREMENT: Duration = Duration::from_secs(8);
/// Criterion warm-up time per benchmark.
const WARM_UP: Duration = Duration::from_secs(1);

/// Rounds of the paired comparison after criterion's report.
const PAIRED_ROUNDS: usize = 15;

/// kind → (records, wall time, CPU seconds) over every timed iteration.
static TOTALS: Mutex<BTreeMap<&'static str, (u64, Duration, f64)>> = Mutex::new(BTreeMap::new());

fn record_total(kind: &'static str, records: u64, t: Duration, cpu: f64) {
    let mut totals = TOTALS.lock().unwrap();
    let e = totals.entry(kind).or_insert((0, Duration::ZERO, 0.0));
    e.0 += records;
    e.1 += t;
    e.2 += cpu;
}

/// Times `iters` runs of `f` (wall and CPU) and records them under `kind`.
fn timed(kind: &'static str, iters: u64, mut f: impl FnMut()) -> Duration {
    let cpu = cpu_seconds();
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    let t = start.elapsed();
    record_total(kind, iters * EVENTS, t, cpu_seconds() - cpu);
    t
}

/// The `n`th event of conversation `c`: a realistic mix, mostly messages.
fn event(c: u64, n: u64) -> Event {
    let conversation_sid = ConversationSid::derive(&c.to_be_bytes());
    let participant = |k: u64| ParticipantSid::derive(&[c.to_be_bytes(), k.to_be_bytes()].concat());
    match n {
        0 => Event::ConversationCreated {
            conversation_sid,
            friendly_name: Some(format!("Support ticket {c}")),
            unique_name: Some(format!("ticket-{c}")),
            attributes: r#"{"priority":"normal"}"#.into(),
            state: events::ConversationState::Active,
            timers: events::Timers::default(),
            messaging_service_sid: None,
        },
        1 => Event::ParticipantAdded {
            conversation_sid,
            participant_sid: participant(1),
            kind: ParticipantKind::Chat {
                identity: format!("agent-{}", c % 50),
                projected_address: None,
            },
            user_sid: None,
            attributes: "{}".into(),
            role_sid: None,
        },
        2 => Event::ParticipantAdded {
            conversation_sid,
            participant_sid: participant(2),
            kind: ParticipantKind::Messaging(MessagingBinding {
                address: format!("+1555{c:07}"),
                proxy_address: "+15559870000".into(),
                projected_address: None,
            }),
            user_sid: None,
            attributes: "{}".into(),
            role_sid: None,
        },
        n if n % 10 == 9 => Event::ReadHorizonUpdated {
            conversation_sid,
            participant_sid: participant(1),
            last_read_message_index: Some(n - 3),
            last_read_timestamp: 1_700_000_000_000_000 + n,
        },
        n => Event::MessageAdded {
            conversation_sid,
            message_sid: MessageSid::derive(&[c.to_be_bytes(), n.to_be_bytes()].concat()),
            index: n - 3,
            author: if n % 2 == 0 {
                format!("agent-{}", c % 50)
            } else {
                format!("+1555{c:07}")
            },
            participant_sid: Some(participant(1 + n % 2)),
            body: Some(format!(
                "message {n} of conversation {c}: the quick brown fox jumps over the lazy dog"
            )),
            media: Vec::new(),
            attributes: "{}".into(),
        },
    }
}

/// Generates (or reuses) the store of [`EVENTS`] events.
fn store() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let unsettled = std::env::var_os("VERIFY_BENCH_UNSETTLED").is_some();
    let dir = root.join(format!(
        "verify-bench-v2-{EVENTS}{}",
        if unsettled { "-unsettled" } else { "" }
    ));
    let done = dir.join("GENERATED");
    if done.exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench store dir");
    let started = Instant::now();
    let log = EventLog::<RawEvents>::open_default(
        &dir,
        LogOptions::default().durability(Durability::Buffered),
    )
    .expect("open bench log");
    // One service, then one request per conversation: created, two
    // participants, then messages and read horizons.
    let per_request = EVENTS_PER_COMMAND_MAX as u64;
    let service_sid = ServiceSid::derive(b"bench-service");
    log.append_blocking(AppendRequest::new(
        CommandId::from_key(b"bench-service"),
        RawAppend {
            service_sid,
            events: vec![Event::ServiceCreated {
                friendly_name: "bench".into(),
            }],
        },
    ))
    .expect("append");
    let conversations = (EVENTS - 1).div_ceil(per_request);
    let next = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..GENERATOR_THREADS {
            scope.spawn(|| loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= conversations {
                    break;
                }
                let count = per_request.min(EVENTS - 1 - c * per_request);
                let events = (0..count).map(|n| event(c, n)).collect();
                log.append_blocking(AppendRequest::new(
                    CommandId::from_key(&c.to_be_bytes()),
                    RawAppend {
                        service_sid,
                        events,
                    },
                ))
                .expect("append");
            });
        }
    });
    assert_eq!(log.head().next_position, EVENTS);
    drop(log);
    if !unsettled {
        settle(&dir);
    }
    std::fs::write(&done, b"").expect("mark the store generated");
    println!(
        "generated {EVENTS} events in {:.1} s at {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    dir
}

fn open_read_only(dir: &Path) -> rocksdb::DB {
    let options = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&options, dir).expect("list column families");
    rocksdb::DB::open_cf_for_read_only(&options, dir, names, false).expect("open read-only")
}

/// One thread, a raw iterator over `range`, every key and value touched.
fn raw_iter(db: &rocksdb::DB, range: std::ops::Range<u64>) -> u64 {
    let cf = db.cf_handle(CF_LOG).expect("log column family");
    let mut it = db.raw_iterator_cf_opt(cf, walk_read_options());
    it.seek(range.start.to_be_bytes());
    let end = range.end.to_be_bytes();
    let (mut records, mut bytes) = (0u64, 0u64);
    while it.valid() {
        let (k, v) = (it.key().unwrap_or_default(), it.value().unwrap_or_default());
        if k >= end.as_slice() {
            break;
        }
        bytes += (k.len() + v.len()) as u64 + u64::from(v.first().copied().unwrap_or(0));
        records += 1;
        it.next();
    }
    it.status().expect("raw iteration");
    std::hint::black_box(bytes);
    records
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Alternates the walks round by round, so a machine that other work
/// shares slows them alike, and prints the median rates and ratios.
fn paired(db: &rocksdb::DB, reader: &LogReader) {
    let rate = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        EVENTS as f64 / start.elapsed().as_secs_f64()
    };
    let (mut raw, mut verify, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..PAIRED_ROUNDS {
        let r = rate(&mut || assert_eq!(raw_iter(db, 0..EVENTS), EVENTS));
        let v = rate(&mut || {
            let report = reader.verify().expect("sound");
            assert_eq!(report.records, EVENTS);
        });
        raw.push(r);
        verify.push(v);
        ratio.push(v / r);
    }
    println!();
    println!(
        "paired rounds ({PAIRED_ROUNDS}, alternating; medians; load average now {}):",
        load_average()
    );
    println!("{:<20} {:>14} {:>9}", "walk", "records/s", "vs raw");
    println!("{:<20} {:>14.0} {:>9.3}", "raw_iter", median(raw), 1.0);
    println!(
        "{:<20} {:>14.0} {:>9.3}",
        "library_verify",
        median(verify),
        median(ratio)
    );
}

fn main() {
    let dir = store();
    let db = open_read_only(&dir);
    let threads = default_workers();
    let reader = LogReader::open_read_only(&dir).expect("open LogReader");

    let load_before = load_average();
    let mut criterion = Criterion::default()
        .sample_size(SAMPLES)
        .measurement_time(MEASUREMENT)
        .warm_up_time(WARM_UP)
        .configure_from_args();
    let mut group = criterion.benchmark_group("verify_1m");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(SAMPLES);

    group.bench_function("raw_iter", |b| {
        b.iter_custom(|iters| {
            timed("raw_iter", iters, || {
                assert_eq!(raw_iter(&db, 0..EVENTS), EVENTS)
            })
        })
    });
    group.bench_function("raw_iter_parallel", |b| {
        b.iter_custom(|iters| {
            timed("raw_iter_parallel", iters, || {
                let share = EVENTS.div_ceil(threads as u64);
                let total: u64 = std::thread::scope(|s| {
                    let handles: Vec<_> = (0..threads as u64)
                        .map(|t| {
                            let db = &db;
                            s.spawn(move || raw_iter(db, t * share..((t + 1) * share).min(EVENTS)))
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().expect("raw walker"))
                        .sum()
                });
                assert_eq!(total, EVENTS);
            })
        })
    });
    group.bench_function("library_verify", |b| {
        b.iter_custom(|iters| {
            timed("library_verify", iters, || {
                let report = reader.verify().expect("sound");
                assert_eq!(report.records, EVENTS);
            })
        })
    });
    group.finish();
    criterion.final_summary();

    let totals = TOTALS.lock().unwrap();
    let rate = |k: &str| totals.get(k).map(|(n, t, _)| *n as f64 / t.as_secs_f64());
    println!();
    println!(
        "mean over all timed iterations ({EVENTS} events, {threads} worker threads; \
         load average before {load_before}, after {}):",
        load_average()
    );
    println!(
        "{:<20} {:>14} {:>9} {:>18}",
        "walk", "records/s", "vs raw", "records/CPU-second"
    );
    let raw = rate("raw_iter");
    for k in ["raw_iter", "raw_iter_parallel", "library_verify"] {
        if let (Some(r), Some(raw), Some((n, _, cpu))) = (rate(k), raw, totals.get(k)) {
            let per_cpu = if *cpu > 0.0 { *n as f64 / cpu } else { 0.0 };
            println!("{k:<20} {r:>14.0} {:>9.3} {per_cpu:>18.0}", r / raw);
        }
    }
    let measured = totals.contains_key("library_verify");
    drop(totals);
    // Only after a full run (not `--list` or a filtered one).
    if measured {
        paired(&db, &reader);
    }
}
