//! Live fan-out: what each identity's sessions receive, membership per
//! event inside a batch, several devices, the async stream, resume from a
//! cursor (also across a restart) and the session errors.

mod fanout_support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine_core::{EngineOptions, SessionError, SessionStart};
use events::*;
use fanout_support::*;

#[test]
fn each_identity_sees_the_sdk_events_for_its_conversations() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "alice");
    let bob = f.join(c, "bob");
    let mut alice = f
        .engine
        .open_session(f.service, "alice", SessionStart::Live)
        .unwrap();
    let mut bob_s = f
        .engine
        .open_session(f.service, "bob", SessionStart::Live)
        .unwrap();
    let mut carol = f
        .engine
        .open_session(f.service, "carol", SessionStart::Live)
        .unwrap();
    let mut stranger = f
        .engine
        .open_session(f.service, "stranger", SessionStart::Live)
        .unwrap();

    let m = f.post(c, "alice", "hi").message_sid;
    f.join(c, "carol");
    f.run(EditMessage::new(f.service, c, m).body("hi!"));
    f.run(UpdateReadHorizon::set(f.service, c, bob, Some(0)));
    f.run(UpdateConversation::new(f.service, c).friendly_name("renamed"));
    let bob_user = f
        .engine
        .read(|rm| rm.user_by_identity(&f.service, "bob").map(|u| u.sid))
        .unwrap();
    f.run(UpdateUser::new(f.service, bob_user).friendly_name("Bob"));
    let muted = NotificationLevel::Muted;
    f.run(UpdateUserConversation::new(f.service, bob_user, c, muted));
    f.run(RemoveParticipant::new(f.service, c, bob));
    f.post(c, "carol", "bob is gone");
    f.run(DeleteMessage::new(f.service, c, m));
    f.run(DeleteConversation::new(f.service, c));

    let a = take(&mut alice, 9, WAIT);
    assert_eq!(
        kinds(&a),
        [
            "messageAdded",
            "participantJoined",
            "messageUpdated",
            "participantUpdated",
            "conversationUpdated",
            "participantLeft",
            "messageAdded",
            "messageRemoved",
            "conversationRemoved"
        ]
    );
    let b = take(&mut bob_s, 8, WAIT);
    assert_eq!(
        kinds(&b),
        [
            "messageAdded",
            "participantJoined",
            "messageUpdated",
            "participantUpdated",
            "conversationUpdated",
            "userUpdated",
            "conversationUpdated",
            "conversationRemoved"
        ]
    );
    let k = take(&mut carol, 8, WAIT);
    assert_eq!(
        kinds(&k),
        [
            "conversationAdded",
            "messageUpdated",
            "participantUpdated",
            "conversationUpdated",
            "participantLeft",
            "messageAdded",
            "messageRemoved",
            "conversationRemoved"
        ]
    );
    // Cursors are log positions, increasing.
    for events in [&a, &b, &k] {
        let cursors: Vec<u64> = events.iter().map(|e| e.cursor().unwrap()).collect();
        assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    }
    assert!(rest(&mut alice, QUIET).is_empty());
    assert!(rest(&mut bob_s, QUIET).is_empty());
    assert!(rest(&mut stranger, QUIET).is_empty());
    let m = f.engine.fanout_metrics();
    assert_eq!(m.sessions, 4);
    assert!(m.deliveries >= 25, "{m:?}");
    assert_eq!(m.lagged, 0);
}

#[test]
fn membership_is_evaluated_per_event_inside_one_batch() {
    // Hold the first batch at the write so the next two commands queue
    // and are committed together: [MessageAdded, ParticipantRemoved(bob)].
    let hold = Arc::new(AtomicBool::new(false));
    let batches = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (h, b) = (hold.clone(), batches.clone());
    let options = log_options().before_write_hook(Arc::new(move |info| {
        b.lock().push(info.requests);
        while h.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }));
    let dir = tempfile::tempdir().unwrap();
    let engine =
        engine_core::Engine::open_with(dir.path(), options, EngineOptions::default()).unwrap();
    let key = |n: u32| CommandId::from_key(&n.to_le_bytes());
    let service = engine
        .execute(CreateService::new("s").keyed(key(0)))
        .unwrap();
    let c = engine
        .execute(CreateConversation::new(service).keyed(key(1)))
        .unwrap();
    let add = |n, identity: &str| {
        let chat = ParticipantSpec::chat(identity);
        engine
            .execute(AddParticipant::new(service, c, chat).keyed(key(n)))
            .unwrap()
    };
    add(2, "alice");
    let bob = add(3, "bob");
    let mut bob_s = engine
        .open_session(service, "bob", SessionStart::Live)
        .unwrap();
    let mut alice_s = engine
        .open_session(service, "alice", SessionStart::Live)
        .unwrap();

    hold.store(true, Ordering::SeqCst);
    std::thread::scope(|s| {
        // Batch 1: held in the write hook.
        let before = batches.lock().len();
        s.spawn(|| {
            let rename = UpdateConversation::new(service, c).friendly_name("x");
            engine.execute(rename.keyed(key(4))).unwrap()
        });
        while batches.lock().len() == before {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Batch 2: both queued, in this order, while the writer waits. A
        // first poll of an append future queues its request.
        let last_words = PostMessage::new(service, c)
            .author("alice")
            .body("last words");
        let mut post = Box::pin(engine.execute_async(last_words.keyed(key(5))));
        let remove_bob = RemoveParticipant::new(service, c, bob);
        let mut remove = Box::pin(engine.execute_async(remove_bob.keyed(key(6))));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(post.as_mut().poll(&mut cx).is_pending());
        assert!(remove.as_mut().poll(&mut cx).is_pending());
        hold.store(false, Ordering::SeqCst);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(post).unwrap();
        rt.block_on(remove).unwrap();
    });
    assert_eq!(
        batches.lock().last().copied(),
        Some(2),
        "the post and the removal were committed in one batch"
    );
    let got = take(&mut bob_s, 3, WAIT);
    assert_eq!(
        kinds(&got),
        ["conversationUpdated", "messageAdded", "conversationRemoved"]
    );
    let got = take(&mut alice_s, 3, WAIT);
    assert_eq!(
        kinds(&got),
        ["conversationUpdated", "messageAdded", "participantLeft"]
    );
}

#[test]
fn every_device_of_an_identity_gets_every_event() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "alice");
    let mut phone = f
        .engine
        .open_session(f.service, "alice", SessionStart::Live)
        .unwrap();
    let mut laptop = f
        .engine
        .open_session(f.service, "alice", SessionStart::Live)
        .unwrap();
    for i in 0..20 {
        f.post(c, "alice", &format!("m{i}"));
    }
    let a = take(&mut phone, 20, WAIT);
    let b = take(&mut laptop, 20, WAIT);
    assert_eq!(names(&a), names(&b));
    assert_eq!(a.len(), 20);
    // The two devices share the one record per event.
    let (ra, rb) = (a[0].record().unwrap(), b[0].record().unwrap());
    assert!(std::ptr::eq(ra, rb));
}

#[test]
fn a_session_is_also_an_async_stream() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "alice");
    let session = f
        .engine
        .open_session(f.service, "alice", SessionStart::Beginning)
        .unwrap();
    let mut stream = session.into_stream();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let next = |stream: &mut engine_core::SessionStream| {
        rt.block_on(async {
            tokio::time::timeout(
                WAIT,
                std::future::poll_fn(|cx| {
                    futures_core::Stream::poll_next(Pin::new(&mut *stream), cx)
                }),
            )
            .await
            .expect("an event within the timeout")
        })
    };
    // Replayed first: alice joined.
    let first = next(&mut stream).unwrap().unwrap();
    assert_eq!(first.name(), "conversationAdded");
    // Then live, woken by the dispatcher from another thread.
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            f.post(c, "alice", "async");
        });
        let e = next(&mut stream).unwrap().unwrap();
        assert_eq!(e.name(), "messageAdded");
    });
    let cursor = stream.cursor();
    assert_eq!(cursor, Some(f.head() - 1));
}

#[test]
fn a_stream_drained_through_session_mut_then_polled_skips_and_repeats_nothing() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "alice");
    for i in 0..5 {
        f.post(c, "alice", &format!("m{i}"));
    }
    let session = f
        .engine
        .open_session(f.service, "alice", SessionStart::Beginning)
        .unwrap();
    let mut stream = session.into_stream();
    // The replay, drained as a host drains it on a blocking thread.
    let mut replayed = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    while !stream.session().is_live() {
        assert!(std::time::Instant::now() < deadline, "the replay ends");
        if let Some(e) = stream.session_mut().try_recv().unwrap() {
            replayed.push(e);
        }
    }
    let mut expected = vec!["conversationAdded"];
    expected.extend(["messageAdded"; 5]);
    assert_eq!(kinds(&replayed), expected);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    f.post(c, "alice", "live");
    let live = rt.block_on(async {
        tokio::time::timeout(
            WAIT,
            std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut stream), cx)),
        )
        .await
        .expect("an event within the timeout")
    });
    let live = live.unwrap().unwrap();
    assert_eq!(live.name(), "messageAdded");
    assert_eq!(
        live.cursor(),
        Some(replayed.last().unwrap().cursor().unwrap() + 1)
    );
    assert_eq!(stream.cursor(), Some(f.head() - 1));
}

#[test]
fn resume_replays_exactly_what_was_missed_then_goes_live() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    let d = f.conversation();
    f.join(c, "alice");
    let bob_c = f.join(c, "bob");
    let mut alice = f
        .engine
        .open_session(f.service, "alice", SessionStart::Live)
        .unwrap();
    f.post(c, "bob", "one");
    let got = take(&mut alice, 1, WAIT);
    assert_eq!(kinds(&got), ["messageAdded"]);
    let cursor = alice.cursor().unwrap();
    assert_eq!(cursor, got[0].cursor().unwrap());
    drop(alice);

    // While alice is away: she leaves c, joins d, bob leaves c, messages.
    f.post(c, "bob", "two");
    let alice_c = f.engine.read(|rm| {
        rm.get_conversation(&f.service, &ConversationRef::Sid(c))
            .unwrap()
            .participant_by_identity("alice")
            .unwrap()
            .sid
    });
    f.run(RemoveParticipant::new(f.service, c, alice_c));
    f.post(c, "bob", "unseen");
    f.join(d, "alice");
    f.join(d, "bob");
    f.run(RemoveParticipant::new(f.service, c, bob_c));
    f.post(d, "bob", "three");

    let mut alice = f
        .engine
        .open_session(f.service, "alice", SessionStart::After(cursor))
        .unwrap();
    f.post(d, "bob", "live");
    let got = take(&mut alice, 6, WAIT);
    assert_eq!(
        kinds(&got),
        [
            "messageAdded",
            "conversationRemoved",
            "conversationAdded",
            "participantJoined",
            "messageAdded",
            "messageAdded"
        ]
    );
    assert!(rest(&mut alice, QUIET).is_empty());
    assert_eq!(alice.cursor(), Some(f.head() - 1));
    assert!(f.engine.fanout_metrics().resumes >= 1);
}

#[test]
fn resume_works_across_a_restart_and_for_removed_conversations() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    let alice_c = f.join(c, "alice");
    f.join(c, "bob");
    let gone = f.conversation();
    f.join(gone, "alice");
    let mut alice = f
        .engine
        .open_session(f.service, "alice", SessionStart::Live)
        .unwrap();
    f.post(c, "bob", "before");
    take(&mut alice, 1, WAIT);
    let cursor = alice.cursor().unwrap();
    drop(alice);
    // Missed: a message in `gone`, then `gone` deleted; alice leaves c
    // (a participant that joined before the cursor).
    f.post(gone, "system", "bye");
    f.run(DeleteConversation::new(f.service, gone));
    f.run(RemoveParticipant::new(f.service, c, alice_c));
    f.post(c, "bob", "after");

    let f = f.restart(EngineOptions::default());
    let mut alice = f
        .engine
        .open_session(f.service, "alice", SessionStart::After(cursor))
        .unwrap();
    let got = take(&mut alice, 3, WAIT);
    assert_eq!(
        kinds(&got),
        ["messageAdded", "conversationRemoved", "conversationRemoved"]
    );
    assert_eq!(got[0].conversation_sid(), Some(gone));
    assert_eq!(got[1].conversation_sid(), Some(gone));
    assert_eq!(got[2].conversation_sid(), Some(c));
    assert!(rest(&mut alice, QUIET).is_empty());

    // From the beginning: the whole history of bob.
    let mut bob = f
        .engine
        .open_session(f.service, "bob", SessionStart::Beginning)
        .unwrap();
    let all = take(&mut bob, 4, WAIT);
    assert_eq!(
        kinds(&all),
        [
            "conversationAdded",
            "messageAdded",
            "participantLeft",
            "messageAdded"
        ]
    );
}

#[test]
fn sessions_report_their_errors_and_end_with_the_engine() {
    let f = open(EngineOptions::default());
    let missing = ServiceSid([9; 16]);
    assert!(matches!(
        f.engine
            .open_session(missing, "alice", SessionStart::Live)
            .unwrap_err(),
        SessionError::ServiceNotFound(s) if s == missing
    ));
    let head = f.head();
    assert!(matches!(
        f.engine
            .open_session(f.service, "alice", SessionStart::After(head))
            .unwrap_err(),
        SessionError::CursorAhead { cursor, next_position } if cursor == head && next_position == head
    ));
    let mut s = f
        .engine
        .open_session(f.service, "alice", SessionStart::Live)
        .unwrap();
    assert!(s.try_recv().unwrap().is_none());
    drop(f);
    assert!(matches!(s.recv(), Err(SessionError::Closed)));
    assert!(matches!(s.try_recv(), Err(SessionError::Closed)));
}
