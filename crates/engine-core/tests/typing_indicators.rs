//! Typing: reaches the other members' sessions, never the typist's own
//! devices, never the log; ends on the typist's next message or after the
//! timeout.

mod fanout_support;

use std::time::{Duration, Instant};

use engine_core::{CommandError, EngineOptions, FanoutOptions, SessionStart};
use events::*;
use fanout_support::*;

const TIMEOUT: Duration = Duration::from_millis(300);

#[test]
fn typing_reaches_the_others_never_the_typist_never_the_log() {
    let f = open(EngineOptions::default().fanout(FanoutOptions::default().typing_timeout(TIMEOUT)));
    let c = f.conversation();
    let alice_p = f.join(c, "alice");
    f.join(c, "bob");
    f.join(c, "carol");
    let other = f.conversation();
    f.join(other, "dave");
    let open = |who: &str| {
        f.engine
            .open_session(f.service, who, SessionStart::Live)
            .unwrap()
    };
    let (mut alice_phone, mut alice_laptop) = (open("alice"), open("alice"));
    let (mut bob, mut carol, mut dave) = (open("bob"), open("carol"), open("dave"));
    let head = f.head();

    let started = Instant::now();
    f.engine
        .typing(f.service, &ConversationRef::Sid(c), "alice")
        .unwrap();
    // Repeats while typing refresh the timeout without new events.
    f.engine
        .typing(f.service, &ConversationRef::Sid(c), "alice")
        .unwrap();
    for s in [&mut bob, &mut carol] {
        let got = take(s, 2, WAIT);
        assert_eq!(kinds(&got), ["typingStarted", "typingEnded"]);
        let notice = got[0].typing_notice().unwrap();
        assert_eq!(notice.identity, "alice");
        assert_eq!(notice.participant_sid, alice_p);
        assert_eq!(notice.conversation_sid, c);
        assert_eq!(got[0].cursor(), None, "typing is not in the log");
        assert_eq!(got[0].conversation_sid(), Some(c));
    }
    assert!(
        started.elapsed() >= TIMEOUT,
        "typingEnded came after the timeout"
    );
    assert!(rest(&mut alice_phone, QUIET).is_empty());
    assert!(rest(&mut alice_laptop, QUIET).is_empty());
    assert!(rest(&mut dave, QUIET).is_empty());
    assert_eq!(f.head(), head, "nothing was logged");

    // A message from the typist ends typing right away, before the message.
    f.engine
        .typing(f.service, &ConversationRef::Sid(c), "alice")
        .unwrap();
    assert_eq!(kinds(&take(&mut bob, 1, WAIT)), ["typingStarted"]);
    f.post(c, "alice", "done typing");
    let got = take(&mut bob, 2, WAIT);
    assert_eq!(kinds(&got), ["typingEnded", "messageAdded"]);
    assert!(
        rest(&mut bob, TIMEOUT * 2).is_empty(),
        "no second typingEnded"
    );
    assert_eq!(kinds(&take(&mut alice_phone, 1, WAIT)), ["messageAdded"]);
    assert!(f.engine.fanout_metrics().typing_notices >= 4);
}

#[test]
fn only_participants_can_type() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "alice");
    let err = f
        .engine
        .typing(f.service, &ConversationRef::Sid(c), "mallory")
        .unwrap_err();
    assert!(
        matches!(&err, CommandError::NotFound { kind: "participant", id } if id == "mallory"),
        "{err:?}"
    );
    let err = f
        .engine
        .typing(
            f.service,
            &ConversationRef::UniqueName("nope".into()),
            "alice",
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            CommandError::NotFound {
                kind: "conversation",
                ..
            }
        ),
        "{err:?}"
    );
    let err = f
        .engine
        .typing(ServiceSid([9; 16]), &ConversationRef::Sid(c), "alice")
        .unwrap_err();
    assert!(
        matches!(
            err,
            CommandError::NotFound {
                kind: "service",
                ..
            }
        ),
        "{err:?}"
    );
}
