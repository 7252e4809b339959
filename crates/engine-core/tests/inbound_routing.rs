//! Inbound routing through `Engine::receive_inbound`: a matched binding,
//! autocreation, typed refusals, and the race of two first messages from
//! a new binding.

mod fanout_support;

use std::sync::Barrier;

use engine_core::{CommandError, EngineOptions, SessionStart};
use events::*;
use fanout_support::*;

const PROXY: &str = "+15559870000";

fn address_configuration(f: &Fixture, address: &str, enabled: bool) {
    let auto_creation = AutoCreation {
        enabled,
        conversation_service_sid: None,
        ..AutoCreation::default()
    };
    f.run(
        CreateAddressConfiguration::new(f.service, AddressType::Sms, address)
            .auto_creation(auto_creation),
    );
}

#[test]
fn a_matched_binding_appends_the_message_as_that_participant() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "agent");
    let p = f.join_binding(c, "+15551230001", PROXY);
    let mut agent = f
        .engine
        .open_session(f.service, "agent", SessionStart::Live)
        .unwrap();
    let out = f
        .engine
        .receive_inbound(
            "SM-bound-1",
            ReceiveInbound::new(f.service, AddressType::Sms, "+15551230001", PROXY).body("hello"),
        )
        .unwrap();
    let (m, index) = out.message().map(|m| (m.message_sid, m.index)).unwrap();
    assert_eq!(index, 0);
    assert!(out.conversation_sid().is_none(), "no new conversation");
    let row = f.engine.read(|rm| {
        rm.message(&f.service, &ConversationRef::Sid(c), &m)
            .unwrap()
            .clone()
    });
    assert_eq!(row.participant_sid, Some(p));
    assert_eq!(row.author, "+15551230001");
    assert_eq!(row.body.as_deref(), Some("hello"));
    let got = take(&mut agent, 1, WAIT);
    assert_eq!(kinds(&got), ["messageAdded"]);
}

#[test]
fn an_unmatched_binding_autocreates_or_is_refused() {
    let f = open(EngineOptions::default());
    // No address configuration: a typed refusal, nothing written.
    let head = f.head();
    let err = f
        .engine
        .receive_inbound(
            "SM-noroute-1",
            ReceiveInbound::new(f.service, AddressType::Sms, "+15550000001", PROXY).body("hi"),
        )
        .unwrap_err();
    assert_eq!(
        err,
        CommandError::NoRoute {
            from: "+15550000001".into(),
            to: PROXY.into()
        }
    );
    assert_eq!(f.head(), head);

    // A configuration with autocreation off refuses too.
    address_configuration(&f, "+15559870001", false);
    let err = f
        .engine
        .receive_inbound(
            "SM-noroute-2",
            ReceiveInbound::new(f.service, AddressType::Sms, "+15550000001", "+15559870001")
                .body("hi"),
        )
        .unwrap_err();
    assert!(matches!(err, CommandError::NoRoute { .. }), "{err:?}");

    // With autocreation on: conversation, participant and message at once.
    address_configuration(&f, PROXY, true);
    let out = f
        .engine
        .receive_inbound(
            "SM-auto-1",
            ReceiveInbound::new(f.service, AddressType::Sms, "+15550000001", PROXY).body("hi"),
        )
        .unwrap();
    let c = out.conversation_sid().expect("a conversation was created");
    let p = out.participant_sids()[0];
    let (m, _) = out.message().map(|m| (m.message_sid, m.index)).unwrap();
    f.engine.read(|rm| {
        let conv = rm
            .get_conversation(&f.service, &ConversationRef::Sid(c))
            .unwrap();
        let binding = conv.participant(&p).unwrap().kind.binding().unwrap();
        assert_eq!(
            (binding.address.as_str(), binding.proxy_address.as_str()),
            ("+15550000001", PROXY)
        );
        assert_eq!(
            rm.message_in(conv, &m).unwrap().unwrap().participant_sid,
            Some(p)
        );
    });
    // The next message from the same sender goes to the same conversation.
    let again = f
        .engine
        .receive_inbound(
            "SM-auto-2",
            ReceiveInbound::new(f.service, AddressType::Sms, "+15550000001", PROXY).body("again"),
        )
        .unwrap();
    assert!(again.conversation_sid().is_none());
    assert_eq!(again.records[0].1.conversation_sid(), Some(c));

    // Wrong channel for the configuration: refused.
    let err = f
        .engine
        .receive_inbound(
            "SM-wrong-channel-1",
            ReceiveInbound::new(
                f.service,
                AddressType::Whatsapp,
                "whatsapp:+15550000009",
                PROXY,
            )
            .body("hi"),
        )
        .unwrap_err();
    assert!(matches!(err, CommandError::NoRoute { .. }), "{err:?}");
    // Unknown service.
    let err = f
        .engine
        .receive_inbound(
            "SM-unknown-service-1",
            ReceiveInbound::new(ServiceSid([9; 16]), AddressType::Sms, "+15550000001", PROXY)
                .body("hi"),
        )
        .unwrap_err();
    assert!(matches!(err, CommandError::NotFound { .. }), "{err:?}");
}

#[test]
fn two_first_messages_from_a_new_binding_make_one_conversation() {
    let f = open(EngineOptions::default());
    address_configuration(&f, PROXY, true);
    const ROUNDS: usize = 20;
    const SENDERS: usize = 4;
    for round in 0..ROUNDS {
        let from = format!("+1555100{round:04}");
        let barrier = Barrier::new(SENDERS);
        let outcomes: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..SENDERS)
                .map(|i| {
                    let (f, from, barrier) = (&f, &from, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        f.engine
                            .receive_inbound(
                                &format!("SM-race-{round}-{i}"),
                                ReceiveInbound::new(f.service, AddressType::Sms, from, PROXY)
                                    .body(format!("first-{i}")),
                            )
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let created = outcomes
            .iter()
            .filter(|o| o.conversation_sid().is_some())
            .count();
        assert_eq!(created, 1, "round {round}: one conversation");
        f.engine.read(|rm| {
            let svc = rm.service(&f.service).unwrap();
            let participants: Vec<_> = svc.address_participants(&from).collect();
            assert_eq!(participants.len(), 1, "round {round}: one participant");
            let (c, _) = participants[0];
            assert_eq!(
                svc.conversation_by_sid(&c).unwrap().message_count(),
                SENDERS
            );
        });
    }
}

#[test]
fn an_inbound_retry_with_the_same_channel_message_id_posts_once() {
    let f = open(EngineOptions::default());
    address_configuration(&f, PROXY, true);
    let receive = |body: &str| {
        f.engine.receive_inbound(
            "SM0123456789abcdef",
            ReceiveInbound::new(f.service, AddressType::Sms, "+15550000042", PROXY).body(body),
        )
    };
    assert_eq!(
        f.engine
            .inbound_message(f.service, AddressType::Sms, "SM0123456789abcdef")
            .unwrap(),
        None,
        "nothing received yet"
    );
    let first = receive("only once").unwrap();
    assert!(!first.deduplicated);
    let conversation = first.conversation_sid().expect("autocreated");
    let (message, index) = first.message().map(|m| (m.message_sid, m.index)).unwrap();
    let head = f.engine.log().head();

    // The gateway retries: the same message, with the same id.
    let retry = receive("only once").unwrap();
    assert!(retry.deduplicated);
    assert_eq!(retry.records, first.records);
    assert_eq!(f.engine.log().head(), head, "the retry appended");
    let live = f.engine.read(|rm| {
        rm.service(&f.service)
            .unwrap()
            .conversation_by_sid(&conversation)
            .unwrap()
            .message_count()
    });
    assert_eq!(live, 1);

    // Another message under the same channel id is refused, not dropped.
    let err = receive("something else").unwrap_err();
    assert!(
        matches!(err, CommandError::IdempotencyKeyReused { .. }),
        "{err:?}"
    );
    assert_eq!(f.engine.log().head(), head);

    // The host finds the message by the channel's id.
    let found = f
        .engine
        .inbound_message(f.service, AddressType::Sms, "SM0123456789abcdef")
        .unwrap()
        .expect("the message is found by its channel id");
    assert_eq!(found.conversation_sid, conversation);
    assert_eq!(found.message_sid, message);
    assert_eq!(found.index, index);
    // Another channel's id space is separate.
    assert_eq!(
        f.engine
            .inbound_message(f.service, AddressType::Whatsapp, "SM0123456789abcdef")
            .unwrap(),
        None
    );
    // A malformed channel id is a typed error.
    let err = f
        .engine
        .inbound_message(f.service, AddressType::Sms, "")
        .unwrap_err();
    assert!(matches!(err, CommandError::Invalid { .. }), "{err:?}");
}
