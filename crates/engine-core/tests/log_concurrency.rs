//! Many concurrent appenders get dense, unique positions and a valid chain.

mod log_support;

use std::collections::HashSet;
use std::sync::Arc;

use engine_core::{AppendOutcome, AppendRequest, Durability, EventLog, RawEvents};
use log_support::*;

/// Runs `threads` × `per_thread` single-event appends and checks the
/// positions they were given and the chain.
fn hammer(log: Arc<EventLog<RawEvents>>, threads: u64, per_thread: u64) {
    let s = service(1);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut mine = Vec::with_capacity(per_thread as usize);
                for i in 0..per_thread {
                    let outcome = log
                        .append_blocking(AppendRequest::new(
                            command_id(t, i),
                            raw(s, vec![message(conversation(t as u32), i)]),
                        ))
                        .unwrap();
                    let AppendOutcome::Appended {
                        first_position,
                        count: 1,
                        stream_version,
                    } = outcome
                    else {
                        panic!("unexpected outcome {outcome:?}");
                    };
                    // Each thread has its own conversation stream.
                    assert_eq!(stream_version, i + 1);
                    mine.push(first_position);
                }
                mine
            })
        })
        .collect();
    let mut all = HashSet::new();
    for handle in handles {
        let mine = handle.join().unwrap();
        // One thread's appends are ordered.
        assert!(mine.windows(2).all(|w| w[0] < w[1]));
        for p in mine {
            assert!(all.insert(p), "position {p} given twice");
        }
    }
    let total = threads * per_thread;
    assert_eq!(all.len() as u64, total);
    assert_eq!(all.iter().max().copied(), Some(total - 1));
    assert_eq!(log.head().next_position, total);

    let report = log.verify().unwrap();
    assert_eq!(report.records, total);
    assert_eq!(report.head, log.head());
    // Each record sits in the stream of the thread that appended it, in
    // the order that thread appended.
    for t in 0..threads {
        let indexes: Vec<u64> = log
            .read_stream(s, Some(conversation(t as u32)), 0)
            .map(|r| match r.unwrap().event().unwrap() {
                events::Event::MessageAdded { index, .. } => index,
                other => panic!("unexpected event {other:?}"),
            })
            .collect();
        assert_eq!(indexes, (0..per_thread).collect::<Vec<_>>());
    }
}

#[test]
fn eight_threads_by_ten_thousand_buffered_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open_raw(dir.path(), Durability::Buffered));
    hammer(log.clone(), 8, 10_000);
    drop(log);
    // And the chain is intact after a reopen.
    let log = open_raw(dir.path(), Durability::Buffered);
    assert_eq!(log.verify().unwrap().records, 80_000);
}

#[test]
fn four_threads_by_two_hundred_synced_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open_raw(dir.path(), Durability::Sync));
    hammer(log, 4, 200);
}
