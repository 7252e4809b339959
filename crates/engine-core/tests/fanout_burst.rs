//! Bursts and slow devices with the shared per-identity backlog: a burst
//! far larger than the old 512-event session queue reaches every session
//! with default settings without any of them lagging, and a device that
//! stops reading lags alone, never holding back its identity's other
//! device, and resumes read the shared cache of recent records instead of
//! the log.

mod fanout_support;

use engine_core::{EngineOptions, FanoutOptions};
use fanout_support::*;

/// The burst: 2,000 messages posted before any session reads.
const BURST_MESSAGES: usize = 2_000;
/// Members, each with one live session (enough to share the backlog
/// logic across mailboxes while keeping a debug build quick).
const MEMBERS: usize = 8;
/// A small lag cap for the slow-device test.
const SMALL_CAP_EVENTS: usize = 16;
/// Messages posted in the slow-device test: several caps' worth.
const SLOW_DEVICE_MESSAGES: usize = 10 * SMALL_CAP_EVENTS;

#[test]
fn a_burst_larger_than_the_queue_makes_no_session_lag() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    for i in 0..MEMBERS {
        f.join(c, &format!("member-{i}"));
    }
    let mut sessions: Vec<_> = (0..MEMBERS)
        .map(|i| f.live(&format!("member-{i}")))
        .collect();
    for i in 0..BURST_MESSAGES {
        f.post(c, "member-0", &format!("m{i}"));
    }
    for session in &mut sessions {
        let got = take(session, BURST_MESSAGES, WAIT);
        assert_eq!(got.len(), BURST_MESSAGES);
        assert!(got.iter().all(|e| e.name() == "messageAdded"));
        assert!(got.windows(2).all(|w| w[0].cursor() < w[1].cursor()));
        assert_eq!(session.resumes(), 0);
    }
    let metrics = f.engine.fanout_metrics();
    assert_eq!(metrics.lagged, 0, "{metrics:?}");
    assert_eq!(metrics.replayed, 0, "{metrics:?}");
    assert_eq!(metrics.deliveries, (BURST_MESSAGES * MEMBERS) as u64);
}

#[test]
fn a_slow_device_does_not_hold_back_its_identitys_other_device() {
    let f = open(
        EngineOptions::default()
            .fanout(FanoutOptions::default().session_queue_events(SMALL_CAP_EVENTS)),
    );
    let c = f.conversation();
    f.join(c, "alice");
    f.join(c, "bob");
    let mut phone = f.live("alice");
    let mut laptop = f.live("alice");
    let mut got = Vec::new();
    for i in 0..SLOW_DEVICE_MESSAGES {
        f.post(c, "bob", &format!("m{i}"));
        // The phone keeps up; the laptop does not read at all.
        got.extend(take(&mut phone, 1, WAIT));
    }
    assert_eq!(got.len(), SLOW_DEVICE_MESSAGES);
    assert_eq!(phone.resumes(), 0);
    assert!(f.engine.fanout_metrics().lagged >= 1);

    // The laptop then gets everything, in order, from its cursor.
    let late = take(&mut laptop, SLOW_DEVICE_MESSAGES, WAIT);
    assert_eq!(
        late.iter().map(|e| e.cursor()).collect::<Vec<_>>(),
        got.iter().map(|e| e.cursor()).collect::<Vec<_>>()
    );
    assert!(laptop.resumes() >= 1);
    assert!(rest(&mut laptop, QUIET).is_empty());
    // Both are live again.
    f.post(c, "bob", "after");
    assert_eq!(kinds(&take(&mut phone, 1, WAIT)), ["messageAdded"]);
    assert_eq!(kinds(&take(&mut laptop, 1, WAIT)), ["messageAdded"]);
}

/// Sessions that do not read in `lagging_sessions_resume_from_the_shared_cache`.
const SLOTHS: usize = 4;

/// Opens `SLOTHS` sessions that do not read while a burst several caps
/// long goes by, then reads them; returns the metrics.
fn slow_sessions_resume(recent_records: usize) -> engine_core::FanoutMetrics {
    let f = open(
        EngineOptions::default().fanout(
            FanoutOptions::default()
                .session_queue_events(SMALL_CAP_EVENTS)
                .recent_records(recent_records),
        ),
    );
    let c = f.conversation();
    f.join(c, "poster");
    let mut sloths: Vec<_> = (0..SLOTHS)
        .map(|i| {
            f.join(c, &format!("sloth-{i}"));
            f.live(&format!("sloth-{i}"))
        })
        .collect();
    for i in 0..SLOW_DEVICE_MESSAGES {
        f.post(c, "poster", &format!("m{i}"));
    }
    for sloth in &mut sloths {
        let got = take(sloth, SLOW_DEVICE_MESSAGES, WAIT);
        assert_eq!(got.len(), SLOW_DEVICE_MESSAGES);
        assert!(got.windows(2).all(|w| w[0].cursor() < w[1].cursor()));
        assert!(sloth.resumes() >= 1);
    }
    f.engine.fanout_metrics()
}

#[test]
fn lagging_sessions_resume_from_the_shared_cache_without_reading_the_log() {
    let cached = slow_sessions_resume(engine_core::fanout::RECENT_RECORDS_DEFAULT);
    assert!(cached.lagged >= SLOTHS as u64, "{cached:?}");
    assert_eq!(cached.replay_records_read, 0, "{cached:?}");
    assert!(
        cached.replay_records_cached >= SLOW_DEVICE_MESSAGES as u64,
        "{cached:?}"
    );
    // Without the cache each of them reads the log alone.
    let uncached = slow_sessions_resume(0);
    assert!(
        uncached.replay_records_read >= (SLOTHS * SLOW_DEVICE_MESSAGES) as u64,
        "{uncached:?}"
    );
    assert_eq!(uncached.replay_records_cached, 0, "{uncached:?}");
}
