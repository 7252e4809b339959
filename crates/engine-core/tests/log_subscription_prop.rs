//! Log subscriptions against the log itself, as a property: however posts
//! and reads interleave, however small the fan-out's cache of recent
//! records (so reads cross the seam between the log and the cache at every
//! place), and from whatever position a subscription starts, it yields
//! exactly the log's records from there, in order, with no gap or
//! duplicate.

mod fanout_support;

use engine_core::{EngineOptions, FanoutOptions, SubscribeFrom, Subscription};
use fanout_support::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Posts this many messages.
    Post(u64),
    /// Reads up to this many records from every subscription.
    Read(usize),
    /// Starts a subscription at this fraction (per mille) of the head.
    Subscribe(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u64..40).prop_map(Op::Post),
        3 => (1usize..60).prop_map(Op::Read),
        1 => (0u64..=1_000).prop_map(Op::Subscribe),
    ]
}

/// Reads up to `n` records from `sub`, checking each against the log.
fn read(f: &Fixture, sub: &mut Subscription, n: usize) {
    for _ in 0..n {
        let at = sub.position();
        let Some(record) = sub.try_next().expect("read") else {
            assert_eq!(at, f.head(), "caught up only at the head");
            return;
        };
        assert_eq!(record.header.position, at, "no gap, no duplicate");
        let stored = f
            .engine
            .log()
            .read_range(at..at + 1)
            .next()
            .expect("the record is in the log")
            .expect("read the log");
        assert_eq!(record.header, stored.header);
        assert_eq!(record.event, stored.event().expect("decode"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_subscription_yields_exactly_the_log_from_its_start(
        cache in 0usize..24,
        ops in prop::collection::vec(op(), 1..30),
    ) {
        let f = open(EngineOptions::default().fanout(FanoutOptions::default().recent_records(cache)));
        let c = f.conversation();
        f.join(c, "ann");
        let mut subs = vec![f.engine.subscribe(SubscribeFrom::Position(0)).unwrap()];
        let mut posted = 0u64;
        for op in ops {
            match op {
                Op::Post(n) => {
                    for _ in 0..n {
                        f.post(c, "ann", &format!("m{posted}"));
                        posted += 1;
                    }
                }
                Op::Read(n) => {
                    for sub in &mut subs {
                        read(&f, sub, n);
                    }
                }
                Op::Subscribe(per_mille) => {
                    let at = f.head() * per_mille / 1_000;
                    subs.push(f.engine.subscribe(SubscribeFrom::Position(at)).unwrap());
                }
            }
        }
        let head = f.head();
        for sub in &mut subs {
            read(&f, sub, usize::MAX);
            prop_assert_eq!(sub.position(), head);
        }
    }
}
