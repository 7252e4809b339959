//! A session that never reads cannot slow the others: its bounded queue
//! overflows, it is dropped to resume, the others get everything, and the
//! slow one then resumes completely from its cursor.

mod fanout_support;

use std::time::{Duration, Instant};

use engine_core::{EngineOptions, FanoutOptions, SessionStart};
use fanout_support::*;

const QUEUE_EVENTS: usize = 64;
const MESSAGES: usize = 1_000;
const READERS: usize = 4;

#[test]
fn a_session_that_never_reads_cannot_slow_the_others() {
    let f = open(
        EngineOptions::default()
            .fanout(FanoutOptions::default().session_queue_events(QUEUE_EVENTS)),
    );
    let c = f.conversation();
    for i in 0..READERS {
        f.join(c, &format!("reader-{i}"));
    }
    f.join(c, "sloth");
    let mut sloth = f
        .engine
        .open_session(f.service, "sloth", SessionStart::Live)
        .unwrap();
    let readers: Vec<_> = (0..READERS)
        .map(|i| {
            f.engine
                .open_session(f.service, &format!("reader-{i}"), SessionStart::Live)
                .unwrap()
        })
        .collect();

    let started = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = readers
            .into_iter()
            .map(|mut session| {
                s.spawn(move || {
                    // On a loaded machine a reader may fall behind the
                    // writer too; it then resumes by itself, losing nothing.
                    take(&mut session, MESSAGES, WAIT)
                })
            })
            .collect();
        for i in 0..MESSAGES {
            f.post(c, "reader-0", &format!("m{i}"));
        }
        for h in handles {
            let got = h.join().unwrap();
            assert_eq!(got.len(), MESSAGES, "a fast reader got everything");
            assert!(got.iter().all(|e| e.name() == "messageAdded"));
            let cursors: Vec<u64> = got.iter().map(|e| e.cursor().unwrap()).collect();
            assert!(cursors.windows(2).all(|w| w[0] < w[1]));
        }
    });
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(30),
        "fast readers were held up: {elapsed:?}"
    );
    let metrics = f.engine.fanout_metrics();
    assert!(metrics.lagged >= 1, "the sloth overflowed: {metrics:?}");

    // Now the sloth reads: everything, in order, no duplicates.
    let got = take(&mut sloth, MESSAGES, WAIT);
    assert_eq!(got.len(), MESSAGES);
    let bodies: Vec<String> = got
        .iter()
        .map(|e| match e.event().unwrap() {
            events::Event::MessageAdded { body, .. } => body.clone().unwrap(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let expected: Vec<String> = (0..MESSAGES).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies, expected);
    assert!(sloth.resumes() >= 1);
    assert!(rest(&mut sloth, QUIET).is_empty());
    // And it is live again afterwards.
    f.post(c, "reader-0", "after");
    let next = take(&mut sloth, 1, WAIT);
    assert_eq!(kinds(&next), ["messageAdded"]);
    assert!(f.engine.fanout_metrics().replayed >= (MESSAGES - QUEUE_EVENTS) as u64);
}
