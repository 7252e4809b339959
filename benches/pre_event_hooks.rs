//! What a pre-event hook costs a command, against the same posts without
//! one, measured in the same run.
//!
//! Each benchmark posts ~100-byte messages through `Engine::execute`
//! (`Durability::Buffered`, so the figure is the engine's, not the disk's)
//! from P threads, spread over one conversation per thread of one
//! service. One element = one PostMessage.
//!
//! - `no_hook/<P>`: the baseline, no hook registered; measured first and
//!   again last (`no_hook_again/<P>`), so drift on a shared machine shows
//!   as two baselines that differ.
//! - `other_service_hook/<P>`: a hook registered for another service: what
//!   a command with no hook to run pays for the registry's existence.
//! - `accept_hook/<P>`: an `onMessageAdd` hook on the posts' own service
//!   that accepts at once: the round trip to a hook thread and back, the
//!   idempotency lookup before it, and the conversation's resolution.
//!
//! After criterion's report the bench prints each mean as posts/s, its
//! ratio to `no_hook` at the same P, and the added time per post.
//!
//! Run: `cargo xtask bench pre_event_hooks`.

mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use colloquy::prelude::*;
use criterion::{Criterion, Throughput};
use engine_core::hooks::{HookDecision, HookScope, PreEvent, PreEventFilter, PreEventHookConfig};
use support::{post_messages, print_summary, service_with_conversations, thousands, Ids, Row};

/// Concurrent posters measured: one (the latency a hook adds to a lone
/// caller) and 64 (hooks of many callers running at once).
const POSTERS: [u64; 2] = [1, 64];
/// Criterion samples per benchmark (its minimum).
const SAMPLES: usize = 10;
/// Criterion measurement time per benchmark.
const MEASUREMENT: Duration = Duration::from_secs(3);
/// Criterion warm-up time per benchmark.
const WARM_UP: Duration = Duration::from_secs(1);

/// Which hook the engine has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Setup {
    None,
    OtherService,
    Accepting,
    /// No hook, measured again after the others.
    NoneAgain,
}

impl Setup {
    /// In the order measured.
    const ALL: [Setup; 4] = [
        Setup::None,
        Setup::OtherService,
        Setup::Accepting,
        Setup::NoneAgain,
    ];

    fn name(self) -> &'static str {
        match self {
            Setup::None => "no_hook",
            Setup::OtherService => "other_service_hook",
            Setup::Accepting => "accept_hook",
            Setup::NoneAgain => "no_hook_again",
        }
    }
}

fn accept(_: &PreEvent) -> Result<HookDecision, engine_core::HookFailure> {
    Ok(HookDecision::Accept)
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(SAMPLES)
        .measurement_time(MEASUREMENT)
        .warm_up_time(WARM_UP)
        .configure_from_args();
    // (setup, posters) → (posts, time) over every timed iteration.
    let totals: Mutex<BTreeMap<(Setup, u64), (u64, Duration)>> = Mutex::default();
    let mut group = criterion.benchmark_group("pre_event_hooks");
    group.throughput(Throughput::Elements(1));
    for posters in POSTERS {
        for setup in Setup::ALL {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let engine = Engine::open(
                dir.path(),
                LogOptions::default().durability(Durability::Buffered),
            )
            .expect("open the engine");
            let ids = Ids::new(setup.name());
            let (service, conversations) =
                service_with_conversations(&engine, &ids, posters as usize, posters as usize);
            let hooked = match setup {
                Setup::None | Setup::NoneAgain => None,
                Setup::OtherService => Some(
                    engine
                        .execute(CreateService::new("other").keyed(ids.next()))
                        .expect("create the other service"),
                ),
                Setup::Accepting => Some(service),
            };
            if let Some(hooked) = hooked {
                engine.set_pre_event_hook(
                    HookScope::Service(hooked),
                    PreEventHookConfig::new([PreEventFilter::OnMessageAdd], accept),
                );
            }
            group.bench_function(format!("{}/{posters}", setup.name()), |b| {
                b.iter_custom(|iters| {
                    let started = Instant::now();
                    post_messages(&engine, &ids, service, &conversations, iters, posters);
                    let took = started.elapsed();
                    let mut totals = totals.lock().unwrap();
                    let entry = totals.entry((setup, posters)).or_default();
                    entry.0 += iters;
                    entry.1 += took;
                    took
                })
            });
            let calls = engine.hook_metrics().calls;
            match setup {
                Setup::Accepting => assert!(calls > 0, "the hook never ran"),
                Setup::None | Setup::OtherService | Setup::NoneAgain => assert_eq!(calls, 0),
            }
        }
    }
    group.finish();

    let totals = totals.into_inner().unwrap();
    let per_second = |setup, posters| {
        let (posts, time): (u64, Duration) = totals[&(setup, posters)];
        posts as f64 / time.as_secs_f64()
    };
    let mut rows = Vec::new();
    for posters in POSTERS {
        // The mean of the two baselines, each shown.
        let (first, again) = (
            per_second(Setup::None, posters),
            per_second(Setup::NoneAgain, posters),
        );
        let baseline = (first + again) / 2.0;
        for setup in [Setup::OtherService, Setup::Accepting] {
            let value = per_second(setup, posters);
            let added_micros = (1.0 / value - 1.0 / baseline) * 1e6 * posters as f64;
            rows.push(Row {
                figure: format!(
                    "Buffered PostMessage/s, {posters} poster(s), {}",
                    setup.name()
                ),
                value: format!(
                    "{} ({added_micros:+.1} µs per post, per poster)",
                    thousands(value)
                ),
                baseline: format!(
                    "{} (no_hook {} before, {} after)",
                    thousands(baseline),
                    thousands(first),
                    thousands(again)
                ),
                ratio: format!("{:.2}", value / baseline),
                target: "-".to_string(),
                met: None,
            });
        }
    }
    print_summary("pre-event hooks", &rows);
}
