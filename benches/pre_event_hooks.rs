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
//! After criterion's report the bench prints, over every timed iteration,
//! posts/s and the process's CPU time per post (`/proc/self/stat`: on a
//! shared machine the CPU figure moves less with other processes' load
//! than the wall-clock one), each with its ratio to `no_hook` at the same
//! P.
//!
//! Run: `cargo xtask bench pre_event_hooks`.

mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use colloquy::prelude::*;
use criterion::{Criterion, Throughput};
use engine_core::hooks::{HookDecision, HookScope, PreEvent, PreEventFilter, PreEventHookConfig};
use support::{
    post_messages, print_summary, process_cpu_seconds, service_with_conversations, thousands, Ids,
    Row,
};

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

/// What one setup measured over its timed iterations.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    posts: u64,
    wall: Duration,
    cpu_seconds: f64,
}

impl Totals {
    fn per_second(&self) -> f64 {
        self.posts as f64 / self.wall.as_secs_f64()
    }

    fn cpu_micros_per_post(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.posts as f64
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
    // (setup, posters) → totals over every timed iteration.
    let totals: Mutex<BTreeMap<(Setup, u64), Totals>> = Mutex::default();
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
                    let (started, cpu) = (Instant::now(), process_cpu_seconds());
                    post_messages(&engine, &ids, service, &conversations, iters, posters);
                    let took = started.elapsed();
                    let cpu = process_cpu_seconds() - cpu;
                    let mut totals = totals.lock().unwrap();
                    let entry = totals.entry((setup, posters)).or_default();
                    entry.posts += iters;
                    entry.wall += took;
                    entry.cpu_seconds += cpu;
                    took
                })
            });
            let ran = totals.lock().unwrap().contains_key(&(setup, posters));
            let calls = engine.hook_metrics().calls;
            match setup {
                Setup::Accepting => assert!(!ran || calls > 0, "the hook never ran"),
                Setup::None | Setup::OtherService | Setup::NoneAgain => assert_eq!(calls, 0),
            }
        }
    }
    group.finish();

    let totals = totals.into_inner().unwrap();
    let mut rows = Vec::new();
    for posters in POSTERS {
        // A filter on the command line may have left some out.
        let (Some(&first), Some(&again)) = (
            totals.get(&(Setup::None, posters)),
            totals.get(&(Setup::NoneAgain, posters)),
        ) else {
            continue;
        };
        // The mean of the two baselines, each shown.
        let mean = |f: fn(&Totals) -> f64| (f(&first) + f(&again)) / 2.0;
        let (rate, cpu) = (mean(Totals::per_second), mean(Totals::cpu_micros_per_post));
        for setup in [Setup::OtherService, Setup::Accepting] {
            let Some(&measured) = totals.get(&(setup, posters)) else {
                continue;
            };
            rows.push(Row {
                figure: format!(
                    "Buffered PostMessage/s, {posters} poster(s), {}",
                    setup.name()
                ),
                value: thousands(measured.per_second()),
                baseline: format!(
                    "{} (no_hook {} before, {} after)",
                    thousands(rate),
                    thousands(first.per_second()),
                    thousands(again.per_second())
                ),
                ratio: format!("{:.2}", measured.per_second() / rate),
                target: "-".to_string(),
                met: None,
            });
            rows.push(Row {
                figure: format!("CPU µs per post, {posters} poster(s), {}", setup.name()),
                value: format!("{:.1}", measured.cpu_micros_per_post()),
                baseline: format!(
                    "{cpu:.1} (no_hook {:.1} before, {:.1} after)",
                    first.cpu_micros_per_post(),
                    again.cpu_micros_per_post()
                ),
                ratio: format!("{:.2}", measured.cpu_micros_per_post() / cpu),
                target: "-".to_string(),
                met: None,
            });
        }
    }
    print_summary("pre-event hooks", &rows);
}
