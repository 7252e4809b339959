//! Non-chat delivery through the in-memory adapter: exactly once per
//! (message, participant) even when the adapter fails the first tries,
//! failed attempts recorded, receipts and the delivery summary, the final
//! `failed` receipt, recovery after a restart (retry times on the log's
//! clock), and no concurrent sends of one pair.

mod fanout_support;

use std::sync::Arc;
use std::time::Duration;

use engine_core::{DeliveryOptions, Engine, EngineOptions, InMemoryAdapter, TestClock};
use events::*;
use fanout_support::*;

const SMS: &str = "+15551230001";
const PROXY: &str = "+15559870000";

fn fast(attempts: u32) -> EngineOptions {
    EngineOptions::default().delivery(
        DeliveryOptions::default()
            .attempts_max(attempts)
            .backoff_initial(Duration::from_millis(5))
            .backoff_max(Duration::from_millis(40)),
    )
}

#[test]
fn an_sms_participant_gets_each_message_exactly_once_despite_failures() {
    let f = open(fast(5));
    let adapter = Arc::new(InMemoryAdapter::new());
    adapter.fail_next(3);
    f.engine
        .register_channel_adapter(AddressType::Sms, adapter.clone());
    let c = f.conversation();
    f.join(c, "alice");
    let sms = f.join_binding(c, SMS, PROXY);
    let mut messages = Vec::new();
    for i in 0..4 {
        messages.push(f.post(c, "alice", &format!("m{i}")).message_sid);
    }
    // A message the SMS participant wrote itself is not sent back to it.
    let inbound = f
        .engine
        .receive_inbound(
            "SM-reply-1",
            ReceiveInbound::new(f.service, AddressType::Sms, SMS, PROXY).body("reply"),
        )
        .unwrap();
    let (own, _) = inbound.message().map(|m| (m.message_sid, m.index)).unwrap();

    assert!(adapter.wait_for_sent(4, WAIT));
    eventually("every receipt", || {
        f.engine.read(|rm| {
            messages.iter().all(|m| {
                rm.delivery_summary(&f.service, &ConversationRef::Sid(c), m)
                    .unwrap()
                    .sent
                    == 1
            })
        })
    });
    std::thread::sleep(QUIET);
    let sent = adapter.sent();
    assert_eq!(sent.len(), 4, "each message once: {sent:?}");
    let mut ids: Vec<MessageSid> = sent.iter().map(|s| s.delivery_id.message_sid).collect();
    ids.sort();
    let mut want = messages.clone();
    want.sort();
    assert_eq!(ids, want);
    assert!(!ids.contains(&own));
    for s in &sent {
        assert_eq!(s.delivery_id.participant_sid, sms);
        assert_eq!((s.from.as_str(), s.to.as_str()), (PROXY, SMS));
        assert_eq!(s.channel, AddressType::Sms);
    }
    assert_eq!(adapter.calls().len(), 7, "3 failures then 4 successes");
    assert_eq!(adapter.overlapping_calls(), 0);

    let (failed_attempts, receipts) = f.engine.read(|rm| {
        let conv = rm
            .get_conversation(&f.service, &ConversationRef::Sid(c))
            .unwrap();
        let failed_attempts: u32 = messages
            .iter()
            .filter_map(|m| conv.delivery_attempts(m, &sms))
            .map(|a| a.failed_attempts)
            .sum();
        let receipts = rm
            .receipts(
                &f.service,
                &ConversationRef::Sid(c),
                &messages[0],
                &projections::PageRequest::default(),
            )
            .unwrap()
            .items;
        (failed_attempts, receipts)
    });
    assert_eq!(failed_attempts, 3, "every failed attempt is in the log");
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].status, DeliveryStatus::Sent);
    assert!(receipts[0]
        .channel_message_sid
        .as_deref()
        .is_some_and(|s| s.starts_with("MEM")));

    // The channel reports delivery: the summary follows.
    f.engine
        .report_delivery_status(RecordDeliveryReceipt::new(
            f.service,
            c,
            messages[0],
            sms,
            DeliveryStatus::Delivered,
        ))
        .unwrap();
    let summary = f
        .engine
        .read(|rm| rm.delivery_summary(&f.service, &ConversationRef::Sid(c), &messages[0]))
        .unwrap();
    assert_eq!((summary.total, summary.delivered, summary.sent), (1, 1, 0));
    let m = f.engine.delivery_metrics();
    assert_eq!((m.sent, m.failed_attempts, m.pending), (4, 3, 0), "{m:?}");
    // Unknown pairs are typed errors.
    let err = f
        .engine
        .report_delivery_status(RecordDeliveryReceipt::new(
            f.service,
            c,
            MessageSid([7; 16]),
            sms,
            DeliveryStatus::Read,
        ))
        .unwrap_err();
    assert!(
        matches!(err, engine_core::CommandError::NotFound { .. }),
        "{err:?}"
    );
}

#[test]
fn after_the_last_attempt_the_delivery_fails_with_a_receipt() {
    let f = open(fast(3));
    let adapter = Arc::new(InMemoryAdapter::new());
    adapter.fail_next(100);
    f.engine
        .register_channel_adapter(AddressType::Sms, adapter.clone());
    let c = f.conversation();
    let sms = f.join_binding(c, SMS, PROXY);
    let m = f.post(c, "system", "doomed").message_sid;
    eventually("the failed receipt", || {
        f.engine
            .read(|rm| rm.delivery_summary(&f.service, &ConversationRef::Sid(c), &m))
            .unwrap()
            .failed
            == 1
    });
    std::thread::sleep(QUIET);
    let calls = adapter.calls();
    assert_eq!(
        calls.iter().map(|(_, a)| *a).collect::<Vec<_>>(),
        [1, 2, 3],
        "attempts are numbered and capped"
    );
    f.engine.read(|rm| {
        let conv = rm
            .get_conversation(&f.service, &ConversationRef::Sid(c))
            .unwrap();
        assert_eq!(conv.delivery_attempts(&m, &sms).unwrap().failed_attempts, 3);
        assert_eq!(
            conv.receipt(&m, &sms).unwrap().status,
            DeliveryStatus::Failed
        );
    });
    assert_eq!(f.engine.delivery_metrics().failed, 1);
}

#[test]
fn pending_deliveries_are_recovered_after_a_restart() {
    // No adapter at first: the deliveries wait in the log.
    let mut f = open(fast(5));
    let c = f.conversation();
    let early = f
        .post(c, "system", "before the sms participant joined")
        .message_sid;
    let sms = f.join_binding(c, SMS, PROXY);
    let m1 = f.post(c, "system", "one").message_sid;
    let m2 = f.post(c, "system", "two").message_sid;
    // m2 fails once before the restart, with a long backoff.
    f = f.restart(
        EngineOptions::default()
            .delivery(DeliveryOptions::default().backoff_initial(Duration::from_secs(3600))),
    );
    let first = Arc::new(InMemoryAdapter::new());
    first.fail_next(2);
    f.engine
        .register_channel_adapter(AddressType::Sms, first.clone());
    eventually("two failed attempts", || first.calls().len() == 2);
    assert_eq!(f.engine.delivery_metrics().recovered, 2);
    assert!(first.sent().is_empty());

    f = f.restart(fast(5));
    let adapter = Arc::new(InMemoryAdapter::new());
    f.engine
        .register_channel_adapter(AddressType::Sms, adapter.clone());
    assert!(adapter.wait_for_sent(2, WAIT));
    std::thread::sleep(QUIET);
    let sent = adapter.sent();
    let mut got: Vec<MessageSid> = sent.iter().map(|s| s.delivery_id.message_sid).collect();
    got.sort();
    let mut want = vec![m1, m2];
    want.sort();
    assert_eq!(got, want, "the early message is not for this participant");
    assert!(!got.contains(&early));
    // Attempt numbers continue from the recorded failures.
    assert!(sent.iter().all(|s| s.attempt == 2), "{sent:?}");
    eventually("receipts", || {
        f.engine.read(|rm| {
            let conv = rm
                .get_conversation(&f.service, &ConversationRef::Sid(c))
                .unwrap();
            conv.receipt(&m1, &sms).is_some() && conv.receipt(&m2, &sms).is_some()
        })
    });
    // And nothing is pending after another restart.
    let f = f.restart(fast(5));
    assert_eq!(f.engine.delivery_metrics().recovered, 0);
}

#[test]
fn a_pair_is_never_sent_twice_at_once() {
    let f = open(
        EngineOptions::default().delivery(
            DeliveryOptions::default()
                .sender_threads(4)
                .backoff_initial(Duration::from_millis(1))
                .backoff_max(Duration::from_millis(2)),
        ),
    );
    let adapter = Arc::new(InMemoryAdapter::new());
    adapter.set_delay(Duration::from_millis(5));
    adapter.fail_next(10);
    f.engine
        .register_channel_adapter(AddressType::Sms, adapter.clone());
    let c = f.conversation();
    for i in 0..3 {
        f.join_binding(c, &format!("+1555000000{i}"), PROXY);
    }
    for i in 0..10 {
        f.post(c, "system", &format!("m{i}"));
    }
    assert!(adapter.wait_for_sent(30, WAIT));
    std::thread::sleep(QUIET);
    assert_eq!(adapter.sent().len(), 30);
    assert_eq!(adapter.overlapping_calls(), 0);
    let mut ids: Vec<_> = adapter.sent().iter().map(|s| s.delivery_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30, "each pair once");
}

#[test]
fn a_participant_that_leaves_gets_nothing_more() {
    let f = open(fast(5));
    let c = f.conversation();
    let sms = f.join_binding(c, SMS, PROXY);
    f.post(c, "system", "queued while no adapter");
    f.run(RemoveParticipant::new(f.service, c, sms));
    let adapter = Arc::new(InMemoryAdapter::new());
    f.engine
        .register_channel_adapter(AddressType::Sms, adapter.clone());
    f.post(c, "system", "after leaving");
    std::thread::sleep(QUIET * 2);
    assert!(adapter.calls().is_empty());
    assert_eq!(f.engine.delivery_metrics().pending, 0);
}

#[test]
fn a_recovered_retry_waits_its_backoff_on_the_logs_clock() {
    // Regression: recovery measured a failed attempt's backoff against the
    // wall clock, while the log's clock had stamped the failure; with a
    // clock in the past every recovered retry went out at once (and with
    // one in the future it would wait the difference).
    const HOUR: Duration = Duration::from_secs(3600);
    let clock = Arc::new(TestClock::new(1_700_000_000_000_000));
    let dir = tempfile::tempdir().unwrap();
    let open_at = |backoff: Duration| {
        Engine::open_with(
            dir.path(),
            log_options().clock(clock.clone()),
            EngineOptions::default().delivery(DeliveryOptions::default().backoff_initial(backoff)),
        )
        .unwrap()
    };
    let engine = open_at(HOUR);
    let service = engine
        .execute(CreateService::new("clock").keyed("service"))
        .unwrap();
    let c = engine
        .execute(CreateConversation::new(service).keyed("conversation"))
        .unwrap();
    let sms = engine
        .execute(AddParticipant::new(service, c, ParticipantSpec::binding(SMS, PROXY)).keyed("sms"))
        .unwrap();
    let failing = Arc::new(InMemoryAdapter::new());
    failing.fail_next(1);
    engine.register_channel_adapter(AddressType::Sms, failing.clone());
    let m = engine
        .execute(
            PostMessage::new(service, c)
                .author("system")
                .body("later")
                .keyed("post"),
        )
        .unwrap()
        .message_sid;
    // Recorded in the log, not only attempted.
    eventually("the recorded failure", || {
        engine.read(|rm| {
            rm.get_conversation(&service, &ConversationRef::Sid(c))
                .unwrap()
                .delivery_attempts(&m, &sms)
                .is_some_and(|a| a.failed_attempts == 1)
        })
    });
    drop(engine);

    // Reopened at the same clock time: the retry is an hour away.
    let engine = open_at(HOUR);
    assert_eq!(engine.delivery_metrics().recovered, 1);
    let adapter = Arc::new(InMemoryAdapter::new());
    engine.register_channel_adapter(AddressType::Sms, adapter.clone());
    assert!(
        !adapter.wait_for_sent(1, QUIET),
        "retried before its backoff: {:?}",
        adapter.calls()
    );
    drop(engine);

    // Two hours later on the clock: due, sent on open.
    clock.advance(2 * HOUR);
    let engine = open_at(HOUR);
    let adapter = Arc::new(InMemoryAdapter::new());
    engine.register_channel_adapter(AddressType::Sms, adapter.clone());
    assert!(adapter.wait_for_sent(1, WAIT), "{:?}", adapter.calls());
    assert_eq!(adapter.sent()[0].attempt, 2);
}

#[test]
fn a_retry_waits_its_backoff_on_the_logs_clock() {
    // Regression: the scheduler timed retries on the wall clock, so on a
    // clock moved by hand (TestClock) a retry neither waited for the clock
    // nor came when the clock passed its time.
    const BACKOFF: Duration = Duration::from_secs(10);
    /// Real time the retry may take once the clock has passed its time:
    /// far below the backoff (at least half of it is drawn), so only a
    /// wait on the clock can meet it.
    const PROMPT: Duration = Duration::from_secs(3);
    let clock = Arc::new(TestClock::new(1_700_000_000_000_000));
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(
        dir.path(),
        log_options().clock(clock.clone()),
        EngineOptions::default().delivery(
            DeliveryOptions::default()
                .backoff_initial(BACKOFF)
                .backoff_max(BACKOFF),
        ),
    )
    .unwrap();
    let adapter = Arc::new(InMemoryAdapter::new());
    adapter.fail_next(1);
    engine.register_channel_adapter(AddressType::Sms, adapter.clone());
    let service = engine
        .execute(CreateService::new("clock").keyed("service"))
        .unwrap();
    let c = engine
        .execute(CreateConversation::new(service).keyed("conversation"))
        .unwrap();
    engine
        .execute(AddParticipant::new(service, c, ParticipantSpec::binding(SMS, PROXY)).keyed("sms"))
        .unwrap();
    engine
        .execute(
            PostMessage::new(service, c)
                .author("system")
                .body("retried")
                .keyed("post"),
        )
        .unwrap();
    eventually("the failed attempt", || adapter.calls().len() == 1);
    // Wall time alone does not bring the retry.
    std::thread::sleep(QUIET);
    assert_eq!(adapter.calls().len(), 1);
    // The clock past the backoff does, at once. (Moved again until then:
    // a move before the failure was recorded is not enough.)
    let started = std::time::Instant::now();
    while adapter.sent().is_empty() {
        assert!(
            started.elapsed() < PROMPT,
            "no retry {PROMPT:?} after the clock passed the backoff: {:?}",
            adapter.calls()
        );
        clock.advance(BACKOFF * 2);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(adapter.sent()[0].attempt, 2);
}
