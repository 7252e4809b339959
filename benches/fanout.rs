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
//!   Sessions open on an engine whose worker may still be dispatching the
//!   joins; with a lag cap of `ENGINE_QUEUE_EVENTS` the bench checks that
//!   no session lags (none receives backlog routed before it started).
//! - `burst_default/1000` and `burst_unbounded/1000`: end to end, one
//!   poster executes `BURST_MESSAGES` `PostMessage`s (Buffered) into a
//!   conversation of 1,000 members, each with one live session, while one
//!   consumer thread drains every session with `try_recv`; one iteration
//!   ends when every session has received the whole burst. `default` runs
//!   with `FanoutOptions::default()`, `unbounded` with a lag cap of
//!   `usize::MAX` (sessions can never lag): the baseline. One element =
//!   one delivery. The summary prints both rates, their ratio and the
//!   sessions lagged under each (the target is none with default
//!   settings), then `BURST_ROUNDS` more bursts of each, interleaved, and
//!   their medians.
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
//! Run: `cargo bench --bench fanout` (see docs/BENCHMARKS.md for the
//! optimised dev-profile command used on the shared machine).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use engine_core::fanout::bench_support::{DispatchBench, RawBaseline};
use engine_core::{Durability, Engine, EngineOptions, FanoutOptions, LogOptions, SessionStart};
use events::command::*;
use events::{CommandId, ConversationSid, Keyed, ParticipantSpec, ServiceSid};

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
/// Session lag cap in the end-to-end engine (one message in flight).
const ENGINE_QUEUE_EVENTS: usize = 8;
/// Messages in one burst (the figure).
const BURST_MESSAGES: usize = 2_000;
/// Members of the burst's conversation, each with one live session.
const BURST_MEMBERS: usize = 1_000;
/// Criterion samples per burst benchmark (one burst per iteration).
const BURST_SAMPLES: usize = 10;
/// Extra interleaved bursts of each configuration after criterion's run.
const BURST_ROUNDS: usize = 9;

/// Sessions lagged during the timed bursts, per configuration.
static BURST_LAGGED: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

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

/// An engine with one conversation of `BURST_MEMBERS` members, each with
/// one live session.
struct BurstRig {
    _dir: tempfile::TempDir,
    engine: Engine,
    service: ServiceSid,
    conversation: ConversationSid,
    sessions: Vec<engine_core::Session>,
    next_id: u64,
}

impl BurstRig {
    fn new(fanout: FanoutOptions) -> Self {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let engine = Engine::open_with(
            dir.path(),
            LogOptions::default().durability(Durability::Buffered),
            EngineOptions::default().fanout(fanout),
        )
        .unwrap();
        let mut rig = BurstRig {
            _dir: dir,
            engine,
            service: Default::default(),
            conversation: Default::default(),
            sessions: Vec::new(),
            next_id: 0,
        };
        let key = rig.key();
        rig.service = rig
            .engine
            .execute(CreateService::new("burst").keyed(key))
            .unwrap();
        let key = rig.key();
        rig.conversation = rig
            .engine
            .execute(CreateConversation::new(rig.service).keyed(key))
            .unwrap();
        for i in 0..BURST_MEMBERS {
            let member = ParticipantSpec::chat(format!("member-{i}"));
            let join = AddParticipant::new(rig.service, rig.conversation, member);
            let key = rig.key();
            rig.engine.execute(join.keyed(key)).unwrap();
        }
        rig.sessions = (0..BURST_MEMBERS)
            .map(|i| {
                rig.engine
                    .open_session(rig.service, &format!("member-{i}"), SessionStart::Live)
                    .unwrap()
            })
            .collect();
        rig
    }

    fn key(&mut self) -> CommandId {
        self.next_id += 1;
        CommandId::from_key(&self.next_id.to_le_bytes())
    }

    /// One burst: posts `BURST_MESSAGES` while a consumer thread drains
    /// every session; returns the deliveries, the time from the first post
    /// to the last delivery, and the sessions that lagged meanwhile.
    fn burst(&mut self) -> (u64, Duration, u64) {
        let lagged_before = self.engine.fanout_metrics().lagged;
        let expected = (BURST_MESSAGES * BURST_MEMBERS) as u64;
        let keys: Vec<CommandId> = (0..BURST_MESSAGES).map(|_| self.key()).collect();
        let (engine, service, conversation) = (&self.engine, self.service, self.conversation);
        let sessions = &mut self.sessions;
        let started = Instant::now();
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut received = 0u64;
                while received < expected {
                    for session in sessions.iter_mut() {
                        while session.try_recv().unwrap().is_some() {
                            received += 1;
                        }
                    }
                }
                assert_eq!(received, expected, "every delivery exactly once");
            });
            for key in keys {
                let post = PostMessage::new(service, conversation)
                    .author("member-0")
                    .body("hello");
                engine.execute(post.keyed(key)).unwrap();
            }
        });
        let elapsed = started.elapsed();
        let lagged = self.engine.fanout_metrics().lagged - lagged_before;
        (expected, elapsed, lagged)
    }
}

const BURST_KINDS: [(&str, usize); 2] = [("burst_default", 0), ("burst_unbounded", 1)];

fn burst_options(slot: usize) -> FanoutOptions {
    match slot {
        0 => FanoutOptions::default(),
        _ => FanoutOptions::default().session_queue_events(usize::MAX),
    }
}

fn burst(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    group
        .sample_size(BURST_SAMPLES)
        .measurement_time(MEASUREMENT)
        .warm_up_time(WARM_UP);
    group.throughput(Throughput::Elements(
        (BURST_MESSAGES * BURST_MEMBERS) as u64,
    ));
    for (kind, slot) in BURST_KINDS {
        let mut rig = BurstRig::new(burst_options(slot));
        group.bench_with_input(BenchmarkId::new(kind, BURST_MEMBERS), &slot, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (n, elapsed, lagged) = rig.burst();
                    total += elapsed;
                    record_total(kind, BURST_MEMBERS, n, elapsed);
                    BURST_LAGGED[slot].fetch_add(lagged, Ordering::Relaxed);
                }
                total
            })
        });
    }
    group.finish();
}

fn burst_summary() {
    let totals = TOTALS.lock().unwrap();
    let rate = |kind| {
        totals
            .get(&(kind, BURST_MEMBERS))
            .map_or(0.0, |(n, t)| *n as f64 / t.as_secs_f64())
    };
    let (d, u) = (rate("burst_default"), rate("burst_unbounded"));
    let lagged = BURST_LAGGED.each_ref().map(|l| l.load(Ordering::Relaxed));
    print_burst(
        &format!(
            "burst of {BURST_MESSAGES} messages to {BURST_MEMBERS} live members, \
             deliveries/s (mean over all timed bursts):"
        ),
        d,
        u,
        lagged,
    );
}

/// Prints one burst table: both rates, their ratio, sessions lagged.
fn print_burst(title: &str, default: f64, unbounded: f64, lagged: [u64; 2]) {
    println!("\n{title}");
    println!(
        "{:>12} {:>12} {:>8} {:>15} {:>17}",
        "default", "unbounded", "ratio", "lagged default", "lagged unbounded"
    );
    println!(
        "{:>12.3e} {:>12.3e} {:>8.2} {:>15} {:>17}",
        default,
        unbounded,
        default / unbounded,
        lagged[0],
        lagged[1]
    );
}

fn burst_interleaved() {
    let mut rigs = [
        BurstRig::new(burst_options(0)),
        BurstRig::new(burst_options(1)),
    ];
    let mut rates = [Vec::new(), Vec::new()];
    let mut lagged = [0u64; 2];
    for _ in 0..BURST_ROUNDS {
        for (slot, rig) in rigs.iter_mut().enumerate() {
            let (n, elapsed, l) = rig.burst();
            rates[slot].push(n as f64 / elapsed.as_secs_f64());
            lagged[slot] += l;
        }
    }
    let [d, u] = rates.map(median);
    print_burst(
        &format!("burst, interleaved, median deliveries/s over {BURST_ROUNDS} rounds:"),
        d,
        u,
        lagged,
    );
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
    burst(&mut criterion);
    criterion.final_summary();
    summary();
    burst_summary();
    interleaved();
    burst_interleaved();
}
