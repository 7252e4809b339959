//! Opening a store of 1,000,000 events written through `Engine::execute`
//! (issue 10's open targets): catch-up, the fold of the whole log into the
//! read models when their rows are absent, against a verify walk of the
//! same log in the same run; and reopen with the rows present.
//!
//! - `verify`: `EventLog::verify` (through `Engine::log`) over the store:
//!   every record read, decoded, hashed and chain-linked, the baseline for
//!   reading the log. (`LogReader::verify` is not used: at a858c1a it
//!   reports an engine store's read-model table files as `NotInView`
//!   damage, as the reader's view holds only the log's column families.)
//! - `catch_up`: `Engine::rebuild` on a copy of the store: the supported
//!   way to drop the read models' rows, then an open that folds every
//!   event into them. One element = one event. The figure judged is the
//!   whole call; the fold's own rate between its first and last progress
//!   report is printed beside it.
//! - `reopen`: `Engine::open` of that copy, its rows present (after the
//!   rebuild, the engine closed): the time until the engine is ready.
//!
//! The store is generated once ([`CONVERSATIONS`] conversations, then
//! ~100-byte messages from [`GENERATOR_POSTERS`] posters until the log
//! holds [`EVENTS`] events, `Durability::Buffered`), settled (flushed and
//! compacted, as a host running a while would have), under Cargo's target
//! tmp directory, and reused by later runs (delete it after a change to
//! the stored format). Copies hard-link its table
//! files (RocksDB never changes one) and copy every other file.
//! Catch-up runs first, [`CATCH_UP_ROUNDS`] timed calls, each on a fresh
//! copy (`OPEN_CATCH_UP_ROUNDS` overrides; not criterion's ten samples, as
//! one call may take most of a minute before issue 10); the last copy,
//! its rows now present, is then verified and reopened under criterion
//! with flat sampling (one timed call per sample).
//!
//! Run: `cargo xtask bench open`.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use colloquy::prelude::*;
use criterion::{Criterion, SamplingMode, Throughput};
use support::{print_summary, thousands, Ids, Row};

/// Events in the store (the 1 M).
const EVENTS: u64 = 1_000_000;
/// Conversations the messages are spread over.
const CONVERSATIONS: usize = 1_000;
/// Concurrent posters while the store is generated.
const GENERATOR_POSTERS: u64 = 64;
/// Criterion samples per benchmark (its minimum).
const SAMPLES: usize = 10;
/// Criterion measurement time per benchmark: short, as each sample is one
/// call (flat sampling) and a call may take seconds.
const MEASUREMENT: Duration = Duration::from_secs(1);
/// Criterion warm-up time per benchmark.
const WARM_UP: Duration = Duration::from_millis(100);
/// Timed `Engine::rebuild` calls (each on a fresh copy): at a858c1a one
/// takes most of a minute on a busy 2-core machine, so three keep the
/// bench within a few minutes.
const CATCH_UP_ROUNDS: u64 = 3;
/// The catch-up target, in events/s.
const CATCH_UP_TARGET_EVENTS_PER_SECOND: f64 = 1_000_000.0;
/// The reopen target with rows present.
const REOPEN_TARGET: Duration = Duration::from_secs(1);

/// kind → (events, wall time, calls) over every timed call.
static TOTALS: Mutex<BTreeMap<&'static str, (u64, Duration, u64)>> = Mutex::new(BTreeMap::new());
/// The fold's rate between its first and last progress report, per call.
static FOLD_RATES: Mutex<Vec<f64>> = Mutex::new(Vec::new());

fn record(kind: &'static str, events: u64, t: Duration) {
    let mut totals = TOTALS.lock().unwrap();
    let e = totals.entry(kind).or_insert((0, Duration::ZERO, 0));
    e.0 += events;
    e.1 += t;
    e.2 += 1;
}

/// Generates (or reuses) the store of at least [`EVENTS`] events; returns
/// its directory and its event count.
fn store() -> (PathBuf, u64) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("open-bench-v1-{EVENTS}"));
    let done = dir.join("GENERATED");
    if let Some(events) = std::fs::read_to_string(&done)
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return (dir, events);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let engine = Engine::open(&dir, LogOptions::default().durability(Durability::Buffered))
        .expect("open the store to generate");
    let ids = Ids::new("open-bench");
    let (service, conversations) = support::service_with_conversations(
        &engine,
        &ids,
        CONVERSATIONS,
        GENERATOR_POSTERS as usize,
    );
    // A post may log more than one event: post what is missing until full.
    loop {
        let head = engine.log().head().next_position;
        if head >= EVENTS {
            break;
        }
        let posts = EVENTS - head;
        support::post_messages(
            &engine,
            &ids,
            service,
            &conversations,
            posts,
            GENERATOR_POSTERS,
        );
    }
    let events = engine.log().head().next_position;
    drop(engine);
    support::settle(&dir);
    std::fs::write(&done, events.to_string()).expect("mark the store generated");
    println!(
        "generated {events} events in {:.1} s at {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    (dir, events)
}

/// A copy of `from` at `to`: table files hard-linked, the rest copied.
fn copy_store(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).expect("copy dir");
    for entry in std::fs::read_dir(from).expect("read store dir").flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.extension().is_some_and(|e| e == "sst") {
            std::fs::hard_link(&path, &target).expect("link table file");
        } else if path.is_file() {
            std::fs::copy(&path, &target).expect("copy store file");
        }
    }
}

/// Rebuilds the read models of the copy at `dir`; returns the call's time.
fn rebuild(dir: &Path) -> Duration {
    let (mut first, mut last) = (None, None);
    let start = Instant::now();
    let engine = Engine::rebuild(dir, LogOptions::default(), &mut |done, _| {
        let now = Instant::now();
        first.get_or_insert((now, done));
        last = Some((now, done));
    })
    .expect("rebuild");
    let t = start.elapsed();
    if let (Some((t0, d0)), Some((t1, d1))) = (first, last) {
        if d1 > d0 {
            FOLD_RATES
                .lock()
                .unwrap()
                .push((d1 - d0) as f64 / (t1 - t0).as_secs_f64());
        }
    }
    drop(engine);
    t
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let load_before = support::load_average();
    let (dir, events) = store();
    // Each round rebuilds a fresh copy; the last one, its rows present,
    // is then verified and reopened.
    let ready = Path::new(env!("CARGO_TARGET_TMPDIR")).join("open-bench-ready");
    // Catch-up takes seconds to a minute per call: a few rounds, not
    // criterion's ten samples.
    let rounds = support::env_u64("OPEN_CATCH_UP_ROUNDS", CATCH_UP_ROUNDS);
    for round in 1..=rounds.max(1) {
        copy_store(&dir, &ready);
        let t = rebuild(&ready);
        record("catch_up", events, t);
        println!(
            "catch-up round {round}/{rounds}: {:.2} s, {} events/s",
            t.as_secs_f64(),
            thousands(events as f64 / t.as_secs_f64())
        );
    }

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("open_1m");
    group
        .sample_size(SAMPLES)
        .measurement_time(MEASUREMENT)
        .warm_up_time(WARM_UP)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(events));
    let engine = Engine::open(&ready, LogOptions::default()).expect("open the ready copy");
    group.bench_function("verify", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let report = engine.log().verify().expect("sound store");
                let t = start.elapsed();
                assert_eq!(report.records, events);
                record("verify", events, t);
                total += t;
            }
            total
        })
    });
    drop(engine);
    group.throughput(Throughput::Elements(1));
    group.bench_function("reopen", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let engine = Engine::open(&ready, LogOptions::default()).expect("reopen");
                let t = start.elapsed();
                drop(engine);
                record("reopen", 1, t);
                total += t;
            }
            total
        })
    });
    group.finish();
    criterion.final_summary();
    let _ = std::fs::remove_dir_all(&ready);

    let totals = TOTALS.lock().unwrap();
    let rate = |k: &str| totals.get(k).map(|(n, t, _)| *n as f64 / t.as_secs_f64());
    let mut rows = Vec::new();
    if let (Some(catch_up), Some(verify)) = (rate("catch_up"), rate("verify")) {
        rows.push(Row {
            figure: format!(
                "catch-up: Engine::rebuild of {} events, whole call",
                thousands(events as f64)
            ),
            value: format!("{} events/s", thousands(catch_up)),
            baseline: format!("verify walk {} events/s", thousands(verify)),
            ratio: format!("{:.3}", catch_up / verify),
            target: format!(
                "≥ {} events/s",
                thousands(CATCH_UP_TARGET_EVENTS_PER_SECOND)
            ),
            met: Some(catch_up >= CATCH_UP_TARGET_EVENTS_PER_SECOND),
        });
        if let Some(fold) = median(FOLD_RATES.lock().unwrap().clone()) {
            rows.push(Row {
                figure: "catch-up: the fold alone (between progress reports, median)".into(),
                value: format!("{} events/s", thousands(fold)),
                baseline: format!("verify walk {} events/s", thousands(verify)),
                ratio: format!("{:.3}", fold / verify),
                target: "context".into(),
                met: None,
            });
        }
    }
    if let Some((_, t, calls)) = totals.get("reopen") {
        let mean = *t / (*calls).max(1) as u32;
        rows.push(Row {
            figure: "reopen with rows present (mean)".into(),
            value: format!("{:.3} s", mean.as_secs_f64()),
            baseline: "-".into(),
            ratio: "-".into(),
            target: format!("≤ {} s", REOPEN_TARGET.as_secs_f64()),
            met: Some(mean <= REOPEN_TARGET),
        });
    }
    if !rows.is_empty() {
        print_summary(
            &format!("open: summary (load average at start {load_before})"),
            &rows,
        );
    }
}
