//! Log subscriptions (`Engine::subscribe`): every committed record in log
//! order from any start, woken on commit (blocking and async), reading the
//! log when far behind, and damage as a typed error naming its position.

mod fanout_support;
mod log_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine_core::{
    CommittedRecord, EngineOptions, FanoutOptions, SubscribeFrom, Subscription, SubscriptionError,
};
use fanout_support::*;

/// Every record of `sub` until it is caught up (each wait bounded by
/// [`WAIT`]).
fn drain(sub: &mut Subscription) -> Vec<Arc<CommittedRecord>> {
    let mut out = Vec::new();
    while let Some(record) = sub.try_next().expect("read the log") {
        out.push(record);
    }
    out
}

/// The positions of `records`.
fn positions(records: &[Arc<CommittedRecord>]) -> Vec<u64> {
    records.iter().map(|r| r.header.position).collect()
}

/// The log's own records, `range`, as (header, event) pairs.
fn log_records(
    f: &Fixture,
    range: std::ops::Range<u64>,
) -> Vec<(events::RecordHeader, events::Event)> {
    f.engine
        .log()
        .read_range(range)
        .map(|r| {
            let r = r.expect("read the log");
            let event = r.event().expect("decode");
            (r.header, event)
        })
        .collect()
}

#[test]
fn a_subscription_from_the_beginning_sees_every_committed_record_in_order() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "ann");
    let mut sub = f.engine.subscribe(SubscribeFrom::Position(0)).unwrap();
    for i in 0..20 {
        f.post(c, "ann", &format!("m{i}"));
    }
    let got = drain(&mut sub);
    let head = f.head();
    assert_eq!(positions(&got), (0..head).collect::<Vec<_>>());
    let expected = log_records(&f, 0..head);
    let got: Vec<_> = got
        .iter()
        .map(|r| (r.header.clone(), r.event.clone()))
        .collect();
    assert_eq!(got, expected, "the same headers and events as the log");
    assert_eq!(sub.position(), head);
    assert_eq!(sub.head(), head);
}

#[test]
fn a_subscription_starts_at_a_position_or_now_and_refuses_one_past_the_head() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "ann");
    for i in 0..5 {
        f.post(c, "ann", &format!("m{i}"));
    }
    let head = f.head();
    let mut middle = f.engine.subscribe(SubscribeFrom::Position(3)).unwrap();
    let mut now = f.engine.subscribe(SubscribeFrom::Now).unwrap();
    let mut at_head = f.engine.subscribe(SubscribeFrom::Position(head)).unwrap();
    assert_eq!(now.position(), head);
    let posted = f.post(c, "ann", "after");
    assert_eq!(
        positions(&drain(&mut middle)),
        (3..=posted.position).collect::<Vec<_>>()
    );
    assert_eq!(positions(&drain(&mut now)), vec![posted.position]);
    assert_eq!(positions(&drain(&mut at_head)), vec![posted.position]);

    let err = f
        .engine
        .subscribe(SubscribeFrom::Position(head + 5))
        .unwrap_err();
    assert!(
        matches!(
            err,
            SubscriptionError::PositionAhead { position, next_position }
                if position == head + 5 && next_position == head + 1
        ),
        "{err:?}"
    );
}

#[test]
fn a_blocked_subscriber_is_woken_by_a_commit_long_before_its_deadline() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "ann");
    let mut sub = f.engine.subscribe(SubscribeFrom::Now).unwrap();
    // Nothing committed: the wait ends at its deadline with nothing.
    let started = Instant::now();
    assert!(sub
        .next(started + Duration::from_millis(50))
        .unwrap()
        .is_none());
    assert!(started.elapsed() >= Duration::from_millis(50));

    let deadline = Instant::now() + WAIT * 6;
    let (tx, rx) = crossbeam_channel::bounded(1);
    let reader = std::thread::spawn(move || {
        let record = sub.next(deadline);
        tx.send(Instant::now()).unwrap();
        record.map(|r| r.map(|r| r.header.position))
    });
    // The reader is (most likely) parked by now; either way it must see
    // the record, and long before its own deadline.
    std::thread::sleep(QUIET);
    let posted = f.post(c, "ann", "wake up");
    let woken = rx.recv_timeout(WAIT).expect("the subscriber is woken");
    assert!(
        woken < deadline - WAIT,
        "woken by the commit, not its deadline"
    );
    assert_eq!(reader.join().unwrap().unwrap(), Some(posted.position));
}

#[test]
fn an_async_subscriber_is_woken_by_a_commit() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "ann");
    let mut sub = f.engine.subscribe(SubscribeFrom::Now).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let task = runtime.spawn(async move {
        let first = sub.next_async().await.map(|r| r.header.position);
        let second = futures_next(&mut sub).await;
        (first, second)
    });
    std::thread::sleep(QUIET);
    let a = f.post(c, "ann", "one");
    let b = f.post(c, "ann", "two");
    let (first, second) = runtime
        .block_on(async { tokio::time::timeout(WAIT, task).await })
        .expect("the task is woken before the deadline")
        .unwrap();
    assert_eq!(first.unwrap(), a.position);
    assert_eq!(second, Some(b.position));
}

/// The next item of the subscription as a stream.
async fn futures_next(sub: &mut Subscription) -> Option<u64> {
    use futures_core::Stream;
    let item = std::future::poll_fn(|cx| std::pin::Pin::new(&mut *sub).poll_next(cx)).await;
    item.map(|r| r.expect("read the log").header.position)
}

#[test]
fn a_subscriber_far_behind_reads_the_log_past_the_cache_without_a_gap() {
    // A cache of 16 recent records: most of the backlog comes from the log.
    let f = open(EngineOptions::default().fanout(FanoutOptions::default().recent_records(16)));
    let c = f.conversation();
    f.join(c, "ann");
    let mut sub = f.engine.subscribe(SubscribeFrom::Position(0)).unwrap();
    for i in 0..(engine_core::subscription::SUBSCRIPTION_READ_CHUNK_RECORDS + 100) {
        f.post(c, "ann", &format!("m{i}"));
    }
    let head = f.head();
    let first = sub.try_next().unwrap().unwrap();
    assert_eq!(first.header.position, 0);
    let mut got = vec![first];
    got.extend(drain(&mut sub));
    assert_eq!(positions(&got), (0..head).collect::<Vec<_>>());
}

#[test]
fn a_damaged_record_is_an_error_naming_its_position_and_is_not_skipped() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "ann");
    let damaged = f.post(c, "ann", "to be damaged").position;
    // Enough records after it that the open's tail check does not reach it.
    for i in 0..engine_core::log::TAIL_VERIFY_RECORDS {
        f.post(c, "ann", &format!("m{i}"));
    }
    let dir = f.dir;
    drop(f.engine);
    log_support::flip_record_byte(dir.path(), damaged, 40);
    let engine = reopen_at(dir.path(), EngineOptions::default());
    let mut sub = engine
        .subscribe(SubscribeFrom::Position(damaged - 1))
        .unwrap();
    assert_eq!(
        sub.try_next().unwrap().unwrap().header.position,
        damaged - 1
    );
    for _ in 0..2 {
        match sub.try_next() {
            Err(SubscriptionError::Read { position, .. }) => assert_eq!(position, damaged),
            other => panic!("expected a read error at {damaged}, got {other:?}"),
        }
        assert_eq!(sub.position(), damaged, "nothing is skipped");
    }
}

#[test]
fn a_subscription_ends_with_closed_once_the_engine_is_dropped() {
    let f = open(EngineOptions::default());
    let mut sub = f.engine.subscribe(SubscribeFrom::Now).unwrap();
    let deadline = Instant::now() + WAIT * 6;
    let reader = std::thread::spawn(move || {
        let got = sub.next(deadline);
        (got.map(|r| r.is_some()), Instant::now())
    });
    std::thread::sleep(QUIET);
    drop(f);
    let (got, at) = reader.join().unwrap();
    assert!(matches!(got, Err(SubscriptionError::Closed)), "{got:?}");
    assert!(at < deadline - WAIT, "woken by the close, not its deadline");
}

#[test]
fn seek_moves_a_subscription_back_or_forward_but_not_past_the_head() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "ann");
    let posted: Vec<u64> = (0..4)
        .map(|i| f.post(c, "ann", &format!("m{i}")).position)
        .collect();
    let mut sub = f.engine.subscribe(SubscribeFrom::Now).unwrap();
    sub.seek(posted[1]).unwrap();
    assert_eq!(positions(&drain(&mut sub)), posted[1..].to_vec());
    sub.seek(posted[3]).unwrap();
    assert_eq!(sub.try_next().unwrap().unwrap().header.position, posted[3]);
    let head = f.head();
    assert!(matches!(
        sub.seek(head + 1),
        Err(SubscriptionError::PositionAhead { position, next_position })
            if position == head + 1 && next_position == head
    ));
    assert_eq!(
        sub.position(),
        head,
        "a refused seek leaves it where it was"
    );
}

#[test]
fn the_stream_ends_once_the_engine_is_dropped() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "ann");
    let mut sub = f.engine.subscribe(SubscribeFrom::Now).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    f.post(c, "ann", "unread when the engine goes");
    drop(f);
    let (first, end) = runtime.block_on(async {
        tokio::time::timeout(WAIT, async {
            let first = futures_next(&mut sub).await;
            (first, futures_next(&mut sub).await)
        })
        .await
        .expect("the stream ends before the deadline")
    });
    // Nothing was buffered: with the store closed the stream ends (a new
    // engine resumes from `position()`), and stays ended.
    assert_eq!(first, None);
    assert_eq!(sub.position(), sub.head() - 1);
    assert_eq!(end, None);
}
