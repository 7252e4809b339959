//! Fan-out deliveries per second at conversation sizes 2, 100, 1,000 and
//! 10,000 (one live session per member), against a raw baseline measured
//! in the same run.
//!
//! - `dispatch/N`: the fan-out worker's own dispatch function delivers a
//!   durable batch of routed `messageAdded` records in one conversation to
//!   the N members' registered session queues (membership snapshot,
//!   per-identity mailbox lock taken once per run of records, lag check,
//!   async-wake check, one shared `ClientEvent` per record cloned into each
//!   queue). One element = one delivery into one session queue.
//! - `dispatch1/N`: the same records dispatched one per batch (the worst
//!   case: a mailbox lock per delivery).
//! - `raw/N`: one `Arc` pushed into N bounded crossbeam channels with
//!   `try_send`, nothing else: the ceiling for the same work.
//! - `engine/N`: end to end through the engine: `execute(PostMessage)`
//!   (append, apply, route, write without fsync) until every one of the N
//!   sessions has received the message. One element = one delivery.
//!   Includes the log append, so it is not part of the ratio; 10,000 is
//!   skipped because a conversation holds at most 1,000 participants.
//!
//! Each timed iteration of `dispatch`, `dispatch1` and `raw` pushes
//! `DELIVERIES_PER_ITERATION / N` events (at least one) into queues that
//! hold them all; the queues are drained outside the timed section.
//! After criterion's report, the bench prints the mean throughput of each
//! over all timed iterations and the dispatch/raw ratios. Then, because a
//! shared 2-core machine's load swings those means, it measures each size
//! again interleaved: `INTERLEAVED_ROUNDS` rounds of one `dispatch`, one
//! `dispatch1` and one `raw` segment back to back, and prints the median
//! segment throughput of each and their ratios (both sides under the same
//! load).
//!
//! Run: `cargo bench --bench fanout`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use engine_core::fanout::bench_support::{DispatchBench, RawBaseline};
use engine_core::{Durability, Engine, EngineOptions, FanoutOptions, LogOptions, SessionStart};
use events::command::*;
use events::{CommandId, Keyed, ParticipantSpec};

/// Conversation sizes (members, each with one session).
const SIZES: [usize; 4] = [2, 100, 1_000, 10_000];
/// Sizes measured end to end (a conversation holds at most
/// `events::limits::PARTICIPANTS_PER_CONVERSATION_MAX` participants).
const ENGINE_SIZES: [usize; 3] = [2, 100, 1_000];
/// Deliveries per timed iteration of `dispatch` and `raw`.
const DELIVERIES_PER_ITERATION: usize = 10_000;
/// Criterion samples per benchmark.
const SAMPLES: usize = 10;
/// Criterion measurement time per benchmark.
const MEASUREMENT: Duration = Duration::from_secs(2);
/// Criterion warm-up time per benchmark.
const WARM_UP: Duration = Duration::from_millis(500);
/// Rounds of the interleaved measurement, per size.
const INTERLEAVED_ROUNDS: usize = 301;
/// Session queue size in the end-to-end engine (one message in flight).
const ENGINE_QUEUE_EVENTS: usize = 8;

/// (kind, size) → (deliveries, time) over every timed iteration.
type Totals = BTreeMap<(&'static str, usize), (u64, Duration)>;
static TOTALS: Mutex<Totals> = Mutex::new(BTreeMap::new());

fn record_total(kind: &'static str, size: usize, n: u64, t: Duration) {
    let mut totals = TOTALS.lock().unwrap();
    let entry = totals.entry((kind, size)).or_insert((0, Duration::ZERO));
    entry.0 += n;
    entry.1 += t;
}

fn events_per_iteration(size: usize) -> usize {
    (DELIVERIES_PER_ITERATION / size).max(1)
}

fn dispatch(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    group
        .sample_size(SAMPLES)
        .measurement_time(MEASUREMENT)
        .warm_up_time(WARM_UP);
    for size in SIZES {
        let events = events_per_iteration(size);
        group.throughput(Throughput::Elements((events * size) as u64));

        let bench = DispatchBench::new(size, events);
        group.bench_with_input(BenchmarkId::new("dispatch", size), &size, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let n = bench.dispatch(events);
                    let elapsed = t.elapsed();
                    total += elapsed;
                    record_total("dispatch", size, n, elapsed);
                    assert_eq!(bench.drain(), events * size);
                }
                total
            })
        });
        group.bench_with_input(BenchmarkId::new("dispatch1", size), &size, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let n = bench.dispatch_each(events);
                    let elapsed = t.elapsed();
                    total += elapsed;
                    record_total("dispatch1", size, n, elapsed);
                    assert_eq!(bench.drain(), events * size);
                }
                total
            })
        });
        assert_eq!(bench.lagged(), 0, "queues hold a whole iteration");
        drop(bench);

        let raw = RawBaseline::new(size, events);
        group.bench_with_input(BenchmarkId::new("raw", size), &size, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let n = raw.push(events);
                    let elapsed = t.elapsed();
                    total += elapsed;
                    record_total("raw", size, n, elapsed);
                    assert_eq!(raw.drain(), events * size);
                }
                total
            })
        });
    }
    group.finish();
}

fn end_to_end(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    group
        .sample_size(SAMPLES)
        .measurement_time(MEASUREMENT)
        .warm_up_time(WARM_UP);
    for size in ENGINE_SIZES {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let engine = Engine::open_with(
            dir.path(),
            LogOptions::default().durability(Durability::Buffered),
            EngineOptions::default()
                .fanout(FanoutOptions::default().session_queue_events(ENGINE_QUEUE_EVENTS)),
        )
        .unwrap();
        let mut next_id = 0u64;
        let mut key = || {
            next_id += 1;
            CommandId::from_key(&next_id.to_le_bytes())
        };
        let service = engine
            .execute(CreateService::new("bench").keyed(key()))
            .unwrap();
        let conversation = engine
            .execute(CreateConversation::new(service).keyed(key()))
            .unwrap();
        for i in 0..size {
            let member = ParticipantSpec::chat(format!("member-{i}"));
            let join = AddParticipant::new(service, conversation, member);
            engine.execute(join.keyed(key())).unwrap();
        }
        let mut sessions: Vec<_> = (0..size)
            .map(|i| {
                engine
                    .open_session(service, &format!("member-{i}"), SessionStart::Live)
                    .unwrap()
            })
            .collect();
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::new("engine", size), &size, |b, _| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    let post = PostMessage::new(service, conversation)
                        .author("member-0")
                        .body("hello");
                    engine.execute(post.keyed(key())).unwrap();
                    for s in &mut sessions {
                        s.recv().unwrap();
                    }
                }
                let elapsed = t.elapsed();
                record_total("engine", size, iters * size as u64, elapsed);
                elapsed
            })
        });
        assert_eq!(engine.fanout_metrics().lagged, 0);
    }
    group.finish();
}

fn summary() {
    let totals = TOTALS.lock().unwrap();
    let rate = |kind, size| {
        totals
            .get(&(kind, size))
            .map(|(n, t)| *n as f64 / t.as_secs_f64())
    };
    println!("\nfan-out deliveries/s (mean over all timed iterations):");
    println!(
        "{:>8} {:>12} {:>12} {:>12} {:>8} {:>9} {:>12}",
        "members", "dispatch", "dispatch1", "raw", "ratio", "ratio1", "engine e2e"
    );
    for size in SIZES {
        let (d, d1, r, e) = (
            rate("dispatch", size),
            rate("dispatch1", size),
            rate("raw", size),
            rate("engine", size),
        );
        let fmt = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{:.3e}", x));
        let ratio = |a: Option<f64>| match (a, r) {
            (Some(a), Some(r)) => format!("{:.2}", a / r),
            _ => "-".into(),
        };
        println!(
            "{:>8} {:>12} {:>12} {:>12} {:>8} {:>9} {:>12}",
            size,
            fmt(d),
            fmt(d1),
            fmt(r),
            ratio(d),
            ratio(d1),
            fmt(e)
        );
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn interleaved() {
    println!("\ninterleaved, median deliveries/s over {INTERLEAVED_ROUNDS} rounds:");
    println!(
        "{:>8} {:>12} {:>12} {:>12} {:>8} {:>9}",
        "members", "dispatch", "dispatch1", "raw", "ratio", "ratio1"
    );
    for size in SIZES {
        let events = events_per_iteration(size);
        let bench = DispatchBench::new(size, events);
        let raw = RawBaseline::new(size, events);
        let (mut d, mut d1, mut r) = (Vec::new(), Vec::new(), Vec::new());
        let timed = |f: &dyn Fn() -> u64| {
            let t = Instant::now();
            let n = f();
            n as f64 / t.elapsed().as_secs_f64()
        };
        for _ in 0..INTERLEAVED_ROUNDS {
            d.push(timed(&|| bench.dispatch(events)));
            bench.drain();
            d1.push(timed(&|| bench.dispatch_each(events)));
            bench.drain();
            r.push(timed(&|| raw.push(events)));
            raw.drain();
        }
        let (d, d1, r) = (median(d), median(d1), median(r));
        println!(
            "{:>8} {:>12.3e} {:>12.3e} {:>12.3e} {:>8.2} {:>9.2}",
            size,
            d,
            d1,
            r,
            d / r,
            d1 / r
        );
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    dispatch(&mut criterion);
    end_to_end(&mut criterion);
    criterion.final_summary();
    summary();
    interleaved();
}
