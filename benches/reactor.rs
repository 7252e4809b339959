//! Reactor throughput and lag (issue 11), each beside a baseline measured
//! in the same run.
//!
//! - `catch_up/reactor_noop`: a no-op reactor (a new name per iteration,
//!   [`ReactorStart::Beginning`]) handles a store of [`RECORDS`] committed
//!   `PostMessage` records: from `Engine::start_reactor` until its
//!   checkpoint reaches the head (`ReactorHandle::wait_for`). One element =
//!   one record. Everything the reactor does per record is in it: the
//!   subscription's read (the fan-out's cache of recent records holds only
//!   the newest, so nearly all come from the log), the filter, the handler
//!   call, the checkpoint writes.
//! - `catch_up/subscription`: the same records through a bare
//!   `Subscription` from position 0 on the calling thread: following the
//!   log without a handler, checkpoints or a thread of its own.
//! - `catch_up/raw_read`: the baseline, `EventLog::read_range` over the
//!   same records with each record's event decoded, on the calling thread:
//!   what reading the log costs.
//! - Lag under load (printed after criterion's report, not a criterion
//!   bench: it is a distribution over time): [`POSTERS`] threads execute
//!   commands through `Engine::execute` (`Durability::Buffered`, as fast
//!   as the engine takes them) for [`LOAD_SECONDS`] while a no-op reactor
//!   follows; every [`SAMPLE_MICROS`] µs a sampler reads
//!   `Engine::reactor_metrics` (lag = committed head − checkpoint). The
//!   baseline, in the same run under the same load: a bare `Subscription`
//!   drained on its own thread, sampled the same way (head − its
//!   position). Reported: the append rate reached (one record is one
//!   event), and p50, p99 and max lag in records and in milliseconds of
//!   appends at that rate. Two loads, each run for both followers:
//!   - `PostMessage`: one event per command, the common shape; its rate
//!     is bound by the per-command cost of `Engine::execute`;
//!   - `CreateConversationWithParticipants` with
//!     [`CONVERSATION_WITH_PARTICIPANTS_MAX`] chat participants: eleven
//!     events per command, the shape that reaches the 100,000
//!     events/s of append load on a machine whose commands/s cannot.
//!
//! Run: `cargo xtask bench reactor` (the optimised dev profile).
//! `REACTOR_RECORDS` overrides [`RECORDS`].

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use colloquy::events::limits::CONVERSATION_WITH_PARTICIPANTS_MAX;
use colloquy::prelude::*;
use colloquy::{CommittedRecord, Reactor};
use criterion::{Criterion, Throughput};
use support::{
    env_u64, post_messages, print_summary, service_with_conversations, thousands, Ids, Row,
};

/// Committed records the catch-up benches handle, by default: far more
/// than the fan-out's cache of recent records, so the reactor reads the
/// log as one that was down for a while does.
const RECORDS: u64 = 100_000;
/// Conversations the records are spread over.
const CONVERSATIONS: usize = 64;
/// Posting threads that make the records and the load.
const POSTERS: u64 = 64;
/// How long the load runs per follower, in seconds.
const LOAD_SECONDS: u64 = 5;
/// How often the lag is sampled, in microseconds.
const SAMPLE_MICROS: u64 = 1_000;
/// How long a catch-up or a follower may take before the bench gives up.
const WAIT: Duration = Duration::from_secs(600);
/// Criterion samples per benchmark (its minimum).
const SAMPLES: usize = 10;

fn noop() -> impl Reactor {
    reactor_fn(|_, _: &CommittedRecord| Ok(()))
}

/// The value at quantile `q` of sorted `samples`.
fn quantile(samples: &[u64], q: f64) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[i]
}

/// Lag percentiles and the append rate of one follower under load.
struct Lag {
    rate: f64,
    p50: u64,
    p99: u64,
    max: u64,
}

/// The append load: which commands the posters execute.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    /// `PostMessage`: one event per command.
    Posts,
    /// `CreateConversationWithParticipants` with the most participants
    /// one command may add: `1 + CONVERSATION_WITH_PARTICIPANTS_MAX`
    /// events per command.
    Conversations,
}

impl Load {
    fn name(self) -> &'static str {
        match self {
            Load::Posts => "PostMessage",
            Load::Conversations => "ConversationWithParticipants",
        }
    }

    /// Executes the `n`th command of `poster`.
    fn execute(
        self,
        engine: &Engine,
        ids: &Ids,
        service: ServiceSid,
        conversations: &[ConversationSid],
        poster: u64,
        n: u64,
    ) {
        match self {
            Load::Posts => {
                let conversation =
                    conversations[(n as usize + poster as usize) % conversations.len()];
                let post = PostMessage::new(service, conversation).body(support::body(poster, n));
                engine.execute(post.keyed(ids.next())).expect("post");
            }
            Load::Conversations => {
                let mut create =
                    CreateConversationWithParticipants::new(service, ConversationSpec::default());
                for p in 0..CONVERSATION_WITH_PARTICIPANTS_MAX {
                    create = create.participant(ParticipantSpec::chat(format!("u{poster}-{p}")));
                }
                engine.execute(create.keyed(ids.next())).expect("create");
            }
        }
    }
}

/// Runs `load` for [`LOAD_SECONDS`] while `lag()` is sampled.
fn under_load(
    engine: &Engine,
    ids: &Ids,
    service: ServiceSid,
    conversations: &[ConversationSid],
    load: Load,
    lag: &(dyn Fn() -> u64 + Sync),
) -> Lag {
    let stop = AtomicBool::new(false);
    let start_head = engine.log().head().next_position;
    let started = Instant::now();
    let mut samples = std::thread::scope(|s| {
        for poster in 0..POSTERS {
            let stop = &stop;
            s.spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    load.execute(engine, ids, service, conversations, poster, n);
                    n += 1;
                }
            });
        }
        let mut samples = Vec::new();
        while started.elapsed() < Duration::from_secs(LOAD_SECONDS) {
            samples.push(lag());
            std::thread::sleep(Duration::from_micros(SAMPLE_MICROS));
        }
        stop.store(true, Ordering::Relaxed);
        samples
    });
    let rate =
        (engine.log().head().next_position - start_head) as f64 / started.elapsed().as_secs_f64();
    samples.sort_unstable();
    Lag {
        rate,
        p50: quantile(&samples, 0.5),
        p99: quantile(&samples, 0.99),
        max: *samples.last().unwrap_or(&0),
    }
}

fn main() {
    let records = env_u64("REACTOR_RECORDS", RECORDS);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = Engine::open(
        dir.path(),
        LogOptions::default().durability(Durability::Buffered),
    )
    .expect("open the engine");
    let ids = Ids::new("reactor-bench");
    let (service, conversations) = service_with_conversations(&engine, &ids, CONVERSATIONS, 4);
    post_messages(&engine, &ids, service, &conversations, records, POSTERS);
    let head = engine.log().head().next_position;

    let mut criterion = Criterion::default()
        .sample_size(SAMPLES)
        .configure_from_args();
    let mut group = criterion.benchmark_group("catch_up");
    group.throughput(Throughput::Elements(head));
    let runs = AtomicU64::new(0);
    let (reactor_time, subscription_time, raw_time) =
        (Timed::default(), Timed::default(), Timed::default());
    group.bench_function("reactor_noop", |b| {
        b.iter_custom(|iters| {
            reactor_time.run(iters, || {
                let name = format!("noop-{}", runs.fetch_add(1, Ordering::Relaxed));
                let spec = ReactorSpec::new(name.clone()).start(ReactorStart::Beginning);
                let started = Instant::now();
                let handle = engine.start_reactor(spec, noop()).expect("start");
                assert!(handle.wait_for(head, Instant::now() + WAIT), "caught up");
                let took = started.elapsed();
                engine.stop_reactor(&name);
                took
            })
        })
    });
    group.bench_function("subscription", |b| {
        b.iter_custom(|iters| {
            subscription_time.run(iters, || {
                let started = Instant::now();
                let mut sub = engine
                    .subscribe(SubscribeFrom::Position(0))
                    .expect("subscribe");
                let mut n = 0u64;
                while sub.try_next().expect("read").is_some() {
                    n += 1;
                }
                assert_eq!(n, head);
                started.elapsed()
            })
        })
    });
    group.bench_function("raw_read", |b| {
        b.iter_custom(|iters| {
            raw_time.run(iters, || {
                let started = Instant::now();
                let mut n = 0u64;
                for record in engine.log().read_range(0..head) {
                    let record = record.expect("read");
                    std::hint::black_box(record.event().expect("decode"));
                    n += 1;
                }
                assert_eq!(n, head);
                started.elapsed()
            })
        })
    });
    group.finish();
    criterion.final_summary();
    let raw_rate = raw_time.rate(head);
    let catch_up = |figure: &str, timed: &Timed| {
        let rate = timed.rate(head);
        Row {
            figure: figure.into(),
            value: format!("{}/s", thousands(rate)),
            baseline: format!("{}/s (raw read + decode)", thousands(raw_rate)),
            ratio: format!("{:.2}", rate / raw_rate),
            target: "reported".into(),
            met: None,
        }
    };
    let mut rows = vec![
        catch_up(
            &format!("no-op reactor catch-up over {head} records, records/s"),
            &reactor_time,
        ),
        catch_up(
            &format!("bare subscription over {head} records, records/s"),
            &subscription_time,
        ),
    ];

    for load in [Load::Posts, Load::Conversations] {
        let (reactor, bare) = lag_under(&engine, &ids, service, &conversations, load);
        let ms = |lag: u64, rate: f64| format!("{lag} ({:.2} ms)", lag as f64 / rate * 1e3);
        let name = load.name();
        rows.push(Row {
            figure: format!("{name} load, {POSTERS} posters, Buffered: events/s appended"),
            value: format!("{}/s (reactor run)", thousands(reactor.rate)),
            baseline: format!("{}/s (subscription run)", thousands(bare.rate)),
            ratio: format!("{:.2}", reactor.rate / bare.rate),
            target: "100,000/s of load".into(),
            met: Some(reactor.rate >= 100_000.0),
        });
        for (q, r, b) in [
            ("p50", reactor.p50, bare.p50),
            ("p99", reactor.p99, bare.p99),
            ("max", reactor.max, bare.max),
        ] {
            rows.push(Row {
                figure: format!("{name} load: no-op reactor lag {q}, events"),
                value: ms(r, reactor.rate),
                baseline: ms(b, bare.rate),
                ratio: "-".into(),
                target: "reported".into(),
                met: None,
            });
        }
    }
    print_summary("Reactor throughput and lag", &rows);
}

/// Lag under `load`: first a no-op reactor follows, then a bare
/// subscription drained on its own thread (the baseline).
fn lag_under(
    engine: &Engine,
    ids: &Ids,
    service: ServiceSid,
    conversations: &[ConversationSid],
    load: Load,
) -> (Lag, Lag) {
    let name = format!("lag-noop-{}", load.name());
    let handle = engine
        .start_reactor(ReactorSpec::new(name.clone()), noop())
        .expect("start");
    let reactor = under_load(engine, ids, service, conversations, load, &|| {
        engine
            .reactor_metrics()
            .iter()
            .filter(|m| m.name == name)
            .map(|m| m.lag)
            .sum()
    });
    assert!(handle.wait_for(engine.log().head().next_position, Instant::now() + WAIT));
    engine.stop_reactor(&name);

    let position = Arc::new(AtomicU64::new(engine.log().head().next_position));
    let done = Arc::new(AtomicBool::new(false));
    let mut sub = engine.subscribe(SubscribeFrom::Now).expect("subscribe");
    let follower = {
        let (position, done) = (position.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(record) = sub
                    .next(Instant::now() + Duration::from_millis(10))
                    .expect("read")
                {
                    position.store(record.header.position + 1, Ordering::Relaxed);
                }
            }
        })
    };
    let bare = under_load(engine, ids, service, conversations, load, &|| {
        engine
            .log()
            .head()
            .next_position
            .saturating_sub(position.load(Ordering::Relaxed))
    });
    done.store(true, Ordering::Relaxed);
    follower.join().expect("the follower");
    (reactor, bare)
}

/// Every timed iteration of one benchmark, criterion's warm-up included.
#[derive(Default)]
struct Timed {
    nanos: AtomicU64,
    iterations: AtomicU64,
}

impl Timed {
    /// Runs `once` `iters` times, adding up the durations it returns.
    fn run(&self, iters: u64, mut once: impl FnMut() -> Duration) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            total += once();
        }
        self.nanos.fetch_add(
            u64::try_from(total.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.iterations.fetch_add(iters, Ordering::Relaxed);
        total
    }

    /// `records` per mean iteration, per second.
    fn rate(&self, records: u64) -> f64 {
        let mean = self.nanos.load(Ordering::Relaxed) as f64
            / self.iterations.load(Ordering::Relaxed).max(1) as f64;
        records as f64 / (mean / 1e9)
    }
}
