//! Typing: reaches the other members' sessions, never the typist's own
//! devices, never the log; ends on the typist's next message, after the
//! timeout, or when the conversation closes; refused in a closed
//! conversation (read-only, as in Twilio), accepted in an inactive one.

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

/// Moves `conversation` to `state`.
fn set_state(f: &Fixture, conversation: ConversationSid, state: ConversationState) {
    f.run(UpdateConversation::new(f.service, conversation).state(state));
}

#[test]
fn regression_typing_was_accepted_in_a_closed_conversation() {
    let f = open(EngineOptions::default().fanout(FanoutOptions::default().typing_timeout(TIMEOUT)));
    let closed = f.conversation();
    let inactive = f.conversation();
    for c in [closed, inactive] {
        f.join(c, "alice");
        f.join(c, "bob");
    }
    set_state(&f, closed, ConversationState::Closed);
    set_state(&f, inactive, ConversationState::Inactive);
    let mut bob = f.live("bob");

    let err = f
        .engine
        .typing(f.service, &ConversationRef::Sid(closed), "alice")
        .unwrap_err();
    assert_eq!(
        err,
        CommandError::ConversationClosed {
            conversation_sid: closed
        }
    );
    // Closed is checked before membership, as for commands.
    let err = f
        .engine
        .typing(f.service, &ConversationRef::Sid(closed), "mallory")
        .unwrap_err();
    assert!(
        matches!(err, CommandError::ConversationClosed { .. }),
        "{err:?}"
    );
    assert!(rest(&mut bob, QUIET).is_empty(), "nothing reached bob");

    // An inactive conversation still takes typing.
    f.engine
        .typing(f.service, &ConversationRef::Sid(inactive), "alice")
        .unwrap();
    let got = take(&mut bob, 1, WAIT);
    assert_eq!(kinds(&got), ["typingStarted"]);
    assert_eq!(got[0].conversation_sid(), Some(inactive));
}

#[test]
fn closing_a_conversation_ends_its_typing_right_before_the_close() {
    // A timeout far past the test's wait: only the close can end typing.
    let f =
        open(EngineOptions::default().fanout(FanoutOptions::default().typing_timeout(WAIT * 6)));
    let c = f.conversation();
    f.join(c, "alice");
    f.join(c, "bob");
    let other = f.conversation();
    f.join(other, "alice");
    f.join(other, "bob");
    let mut bob = f.live("bob");
    for conversation in [c, other] {
        f.engine
            .typing(f.service, &ConversationRef::Sid(conversation), "alice")
            .unwrap();
    }
    assert_eq!(kinds(&take(&mut bob, 2, WAIT)), ["typingStarted"; 2]);

    set_state(&f, c, ConversationState::Closed);
    let got = take(&mut bob, 2, WAIT);
    assert_eq!(kinds(&got), ["typingEnded", "conversationUpdated"]);
    assert_eq!(got[0].conversation_sid(), Some(c));
    assert_eq!(got[0].typing_notice().unwrap().identity, "alice");
    assert!(
        rest(&mut bob, QUIET).is_empty(),
        "alice still types in the other conversation"
    );
}
