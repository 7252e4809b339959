//! Post → last of 1,000 recipients, paced at 100 posts/s (100,000
//! deliveries/s), `Durability::Buffered`, against Redis pub/sub of the same
//! shape in the same run (issue 10's latency target).
//!
//! - engine: one conversation of [`MEMBERS`] chat participants, each with
//!   one live session consumed as a host would, as an async
//!   `SessionStream` polled by its own task on a tokio runtime of
//!   [`RUNTIME_THREADS`] workers (each delivery really wakes a task). One
//!   thread posts ~100-byte messages through `Engine::execute`, paced at
//!   [`POSTS_PER_SECOND`]. Per post, the time from just before `execute`
//!   to the moment the last of the sessions received its `messageAdded`.
//! - redis: a `redis-server` the bench starts on a free loopback port
//!   (no persistence), [`MEMBERS`] subscriber connections on the same
//!   runtime, each a task reading its socket and counting messages by
//!   their fixed frame length (cheaper than any client library's
//!   parsing), and one publisher connection of the `redis` crate on a
//!   plain thread sending the same bodies at the same pace. Per
//!   message, the time from just before `PUBLISH` to the moment the last
//!   subscriber received it. Skipped, saying why, where `redis-server` is
//!   not installed or does not start.
//!
//! Both record into an HDR histogram (nanoseconds, 3 significant digits)
//! after [`WARMUP_POSTS`] unrecorded posts, and the bench prints p50, p99,
//! p99.9 and max of each and a summary against the targets (p99 ≤ 1 ms on
//! a quiet machine, and below Redis's p99).
//!
//! Run: `cargo xtask bench latency`. `LATENCY_POSTS` overrides the number
//! of recorded posts (default [`RECORDED_POSTS`]).

mod support;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use colloquy::prelude::*;
use engine_core::ClientEventKind;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use support::redis_pubsub::{start_redis, subscriber, RedisServer, REDIS_CHANNEL};
use support::{body, print_summary, Ids, Row};

/// Chat members of the conversation, each with one live session (and
/// Redis subscribers).
const MEMBERS: usize = 1_000;
/// Posts per second: with [`MEMBERS`] recipients, 100,000 deliveries/s.
const POSTS_PER_SECOND: u64 = 100;
/// Posts before recording starts (connections, caches and the runtime
/// warm up).
const WARMUP_POSTS: u64 = 100;
/// Recorded posts by default: 30 s at [`POSTS_PER_SECOND`], enough for a
/// p99.9 from 3 samples above it.
const RECORDED_POSTS: u64 = 3_000;
/// Tokio worker threads consuming the sessions: the machine's 2 cores.
const RUNTIME_THREADS: usize = 2;
/// The histogram's highest trackable value, in nanoseconds (60 s).
const HISTOGRAM_MAX_NANOS: u64 = 60_000_000_000;
/// The p99 target, in milliseconds.
const P99_TARGET_MILLIS: f64 = 1.0;

/// Per post: when it was sent, how many recipients have it, and when the
/// last one got it (nanoseconds since `base`).
struct Tracker {
    base: Instant,
    sent_at: Vec<AtomicU64>,
    received: Vec<AtomicU32>,
    last_at: Vec<AtomicU64>,
    completed: AtomicU64,
}

impl Tracker {
    fn new(posts: u64) -> Arc<Tracker> {
        let n = posts as usize;
        Arc::new(Tracker {
            base: Instant::now(),
            sent_at: (0..n).map(|_| AtomicU64::new(0)).collect(),
            received: (0..n).map(|_| AtomicU32::new(0)).collect(),
            last_at: (0..n).map(|_| AtomicU64::new(0)).collect(),
            completed: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// A recipient got post `k` (its `k`th message).
    fn received(&self, k: usize) {
        let Some(count) = self.received.get(k) else {
            panic!("recipient got message {k}, more than were posted");
        };
        if count.fetch_add(1, Ordering::AcqRel) + 1 == MEMBERS as u32 {
            self.last_at[k].store(self.now(), Ordering::Release);
            self.completed.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Sends `posts` with `send(k)`, paced at [`POSTS_PER_SECOND`], each
    /// stamped just before it is sent; then waits (at most
    /// [`support::DELIVERY_WAIT_MAX`]) for every recipient to have all.
    fn paced(&self, posts: u64, mut send: impl FnMut(u64)) {
        let interval = Duration::from_nanos(1_000_000_000 / POSTS_PER_SECOND);
        let start = Instant::now();
        for k in 0..posts {
            let due = start + interval * k as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            self.sent_at[k as usize].store(self.now(), Ordering::Release);
            send(k);
        }
        let deadline = Instant::now() + support::DELIVERY_WAIT_MAX;
        while self.completed.load(Ordering::Acquire) < posts {
            assert!(
                Instant::now() < deadline,
                "only {} of {posts} posts reached all {MEMBERS} recipients",
                self.completed.load(Ordering::Acquire)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The recorded posts' latencies.
    fn histogram(&self, posts: u64) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, HISTOGRAM_MAX_NANOS, 3).expect("histogram");
        for k in WARMUP_POSTS as usize..posts as usize {
            let sent = self.sent_at[k].load(Ordering::Acquire);
            let last = self.last_at[k].load(Ordering::Acquire);
            h.saturating_record(last.saturating_sub(sent).max(1));
        }
        h
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_THREADS)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The engine: one conversation, [`MEMBERS`] live sessions as tasks.
fn engine(posts: u64) -> Histogram<u64> {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let engine = Engine::open(
        dir.path(),
        LogOptions::default().durability(Durability::Buffered),
    )
    .expect("open engine");
    let ids = Ids::new("latency");
    let (service, conversations) = support::service_with_conversations(&engine, &ids, 1, 1);
    let conversation = conversations[0];
    for i in 0..MEMBERS {
        let member = ParticipantSpec::chat(format!("member-{i}"));
        let join = AddParticipant::new(service, conversation, member);
        engine.execute(join.keyed(ids.next())).expect("add member");
    }
    let tracker = Tracker::new(posts);
    let rt = runtime();
    for i in 0..MEMBERS {
        let session = engine
            .open_session(service, &format!("member-{i}"), SessionStart::Live)
            .expect("open session");
        let mut stream = session.into_stream();
        let tracker = tracker.clone();
        rt.spawn(async move {
            let mut k = 0;
            while let Some(event) = stream.next().await {
                let event = event.expect("session event");
                if event.kind() == ClientEventKind::MessageAdded {
                    tracker.received(k);
                    k += 1;
                }
            }
        });
    }
    tracker.paced(posts, |k| {
        let post = PostMessage::new(service, conversation)
            .author("member-0")
            .body(body(0, k));
        engine.execute(post.keyed(ids.next())).expect("post");
    });
    let lagged = engine.fanout_metrics().lagged;
    println!("engine: every post reached all {MEMBERS} sessions; sessions that lagged: {lagged}");
    // Closing the engine ends the streams, and so the tasks.
    drop(engine);
    rt.shutdown_timeout(support::DELIVERY_WAIT_MAX);
    tracker.histogram(posts)
}

/// Redis pub/sub: [`MEMBERS`] subscriber connections as tasks, each
/// reading its socket directly (the cheapest consumer there is), and one
/// publisher connection of the `redis` crate.
fn redis(server: &RedisServer, posts: u64) -> Result<Histogram<u64>, String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port))
        .map_err(|e| e.to_string())?;
    let tracker = Tracker::new(posts);
    let subscribed = Arc::new(AtomicU64::new(0));
    let rt = runtime();
    for _ in 0..MEMBERS {
        let (tracker, subscribed, port) = (tracker.clone(), subscribed.clone(), server.port);
        rt.spawn(async move {
            let received = |k| tracker.received(k);
            if let Err(e) = subscriber(port, subscribed, posts, support::BODY_BYTES, received).await
            {
                panic!("Redis subscriber: {e}");
            }
        });
    }
    let deadline = Instant::now() + support::DELIVERY_WAIT_MAX;
    while subscribed.load(Ordering::Acquire) < MEMBERS as u64 {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {MEMBERS} subscribers subscribed",
                subscribed.load(Ordering::Acquire)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut publisher = client.get_connection().map_err(|e| e.to_string())?;
    tracker.paced(posts, |k| {
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg(REDIS_CHANNEL)
            .arg(body(0, k))
            .query(&mut publisher)
            .expect("PUBLISH");
        assert_eq!(receivers, MEMBERS as i64, "every subscriber is subscribed");
    });
    rt.shutdown_timeout(support::DELIVERY_WAIT_MAX);
    Ok(tracker.histogram(posts))
}

fn millis(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

fn print_histogram(name: &str, h: &Histogram<u64>) {
    println!(
        "{name:<8} posts {:>6}  p50 {:>8.3} ms  p99 {:>8.3} ms  p99.9 {:>8.3} ms  max {:>8.3} ms",
        h.len(),
        millis(h.value_at_quantile(0.5)),
        millis(h.value_at_quantile(0.99)),
        millis(h.value_at_quantile(0.999)),
        millis(h.max())
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let posts = WARMUP_POSTS + support::env_u64("LATENCY_POSTS", RECORDED_POSTS);
    let load_before = support::load_average();
    println!(
        "post → last of {MEMBERS} recipients at {POSTS_PER_SECOND} posts/s ({} deliveries/s), \
         {} recorded posts after {WARMUP_POSTS} warm-up; load average {load_before}",
        support::thousands((POSTS_PER_SECOND as usize * MEMBERS) as f64),
        posts - WARMUP_POSTS
    );
    let engine = engine(posts);
    print_histogram("engine", &engine);
    let redis = match start_redis().and_then(|server| redis(&server, posts)) {
        Ok(h) => {
            print_histogram("redis", &h);
            Some(h)
        }
        Err(why) => {
            println!("redis: baseline skipped: {why}");
            None
        }
    };

    let mut rows = Vec::new();
    let redis_at = |q: f64| redis.as_ref().map(|h| h.value_at_quantile(q));
    for (label, q) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0)] {
        let e = engine.value_at_quantile(q);
        let r = redis_at(q);
        let met =
            (label == "p99").then(|| millis(e) <= P99_TARGET_MILLIS && r.is_none_or(|r| e < r));
        rows.push(Row {
            figure: format!("{label} post → last of {MEMBERS}, Buffered, 100k deliveries/s"),
            value: format!("{:.3} ms", millis(e)),
            baseline: r.map_or("redis skipped".into(), |r| {
                format!("Redis {:.3} ms", millis(r))
            }),
            ratio: r.map_or("-".into(), |r| format!("{:.2}", e as f64 / r as f64)),
            target: if label == "p99" {
                format!("≤ {P99_TARGET_MILLIS} ms (quiet machine) and < Redis")
            } else {
                "context".into()
            },
            met,
        });
    }
    print_summary(
        &format!("latency: summary (load average at start {load_before})"),
        &rows,
    );
}
