//! Engine behaviour through the public API: permissions of an acting
//! identity, idempotent retries, optimistic concurrency, inbound routing,
//! and uniqueness under concurrent writers.

mod common;

use std::sync::Barrier;

use common::Harness;
use engine_core::{CommandError, CommandOutcome, Engine, TypedCommand};
use events::*;

fn denied(identity: &str, permission: Option<Permission>) -> CommandError {
    CommandError::PermissionDenied {
        identity: identity.to_string(),
        permission,
    }
}

fn conversation_ref(c: ConversationSid) -> ConversationRef {
    ConversationRef::Sid(c)
}

fn edit(service: ServiceSid, c: ConversationSid, m: MessageSid, body: &str) -> EditMessage {
    EditMessage::new(service, c, m).body(body)
}

/// Runs `command` as `acting`, expecting `want`, and checks nothing was written.
fn refused(h: &mut Harness, acting: &str, command: impl Into<Command>, want: CommandError) {
    let command = command.into();
    let head = h.head();
    let shown = format!("{command:?}");
    let got = h
        .exec_as(Some(acting), command)
        .expect_err(&format!("{acting} may not {shown}"));
    assert_eq!(got, want, "{acting}: {shown}");
    assert_eq!(h.head(), head, "a refusal wrote something");
}

fn accepted<C: TypedCommand + std::fmt::Debug>(
    h: &mut Harness,
    acting: &str,
    command: C,
) -> C::Output {
    let shown = format!("{command:?}");
    h.exec_as(Some(acting), command)
        .unwrap_or_else(|e| panic!("{acting} may {shown}: {e}"))
}

fn message_body(h: &Harness, s: ServiceSid, c: ConversationSid, m: MessageSid) -> Option<String> {
    h.engine().read(|rm| {
        rm.message(&s, &conversation_ref(c), &m)
            .unwrap()
            .body
            .clone()
    })
}

#[test]
fn a_channel_user_cannot_edit_or_delete_anothers_message_but_a_channel_admin_can() {
    let mut h = Harness::new();
    let s = h.ok(CreateService::new("permissions"));
    for identity in ["alice", "bob", "carol"] {
        h.ok(CreateUser::new(s, identity));
    }
    // Alice creates the conversation and joins it as its creator (channel
    // admin); the host adds Bob, who gets the default role (channel user).
    let c = accepted(&mut h, "alice", CreateConversation::new(s));
    let bob = h.ok(AddParticipant::new(s, c, ParticipantSpec::chat("bob")));
    let roles: Vec<_> = h.engine().read(|rm| {
        rm.get_conversation(&s, &conversation_ref(c))
            .unwrap()
            .participants()
            .map(|p| (p.kind.identity().unwrap().to_string(), p.role_sid))
            .collect()
    });
    let (admin, user) = (h.role(s, "channel admin"), h.role(s, "channel user"));
    assert!(roles.contains(&("alice".into(), Some(admin))), "{roles:?}");
    assert!(roles.contains(&("bob".into(), Some(user))), "{roles:?}");

    let from_alice = accepted(&mut h, "alice", PostMessage::new(s, c).body("from alice"));
    let from_alice = from_alice.message_sid;
    let from_bob = accepted(&mut h, "bob", PostMessage::new(s, c).body("from bob")).message_sid;

    // Bob, a channel user, may not touch Alice's message.
    refused(
        &mut h,
        "bob",
        edit(s, c, from_alice, "edited by bob"),
        denied("bob", Some(Permission::EditAnyMessage)),
    );
    refused(
        &mut h,
        "bob",
        EditMessage::new(s, c, from_alice).attributes("{}"),
        denied("bob", Some(Permission::EditAnyMessageAttributes)),
    );
    refused(
        &mut h,
        "bob",
        DeleteMessage::new(s, c, from_alice),
        denied("bob", Some(Permission::DeleteAnyMessage)),
    );
    assert_eq!(
        message_body(&h, s, c, from_alice).as_deref(),
        Some("from alice")
    );
    // ... but may edit his own.
    accepted(&mut h, "bob", edit(s, c, from_bob, "bob, edited"));
    assert_eq!(
        message_body(&h, s, c, from_bob).as_deref(),
        Some("bob, edited")
    );

    // Other things a channel user may not do.
    refused(
        &mut h,
        "bob",
        PostMessage::new(s, c).author("alice").body("pretending"),
        denied("bob", None),
    );
    refused(
        &mut h,
        "bob",
        UpdateConversation::new(s, c).friendly_name("mine now"),
        denied("bob", Some(Permission::EditConversationName)),
    );
    let alice = h.engine().read(|rm| {
        rm.user_conversations(&s, "alice", &Default::default())
            .unwrap()
            .items[0]
            .participant_sid
    });
    refused(
        &mut h,
        "bob",
        RemoveParticipant::new(s, c, alice),
        denied("bob", Some(Permission::RemoveParticipant)),
    );
    refused(
        &mut h,
        "bob",
        UpdateReadHorizon::set(s, c, alice, Some(0)),
        denied("bob", None),
    );
    // Carol has a user but is not a participant: she has no conversation role.
    refused(
        &mut h,
        "carol",
        PostMessage::new(s, c).body("hello?"),
        denied("carol", Some(Permission::SendMessage)),
    );
    // Dave has no user, hence no service role to create conversations with.
    refused(
        &mut h,
        "dave",
        CreateConversation::new(s),
        denied("dave", Some(Permission::CreateConversation)),
    );
    // Host-only commands.
    refused(
        &mut h,
        "alice",
        CreateUser::new(s, "erin"),
        denied("alice", None),
    );

    // Alice, the channel admin, may edit and delete Bob's message.
    accepted(&mut h, "alice", edit(s, c, from_bob, "moderated"));
    assert_eq!(
        message_body(&h, s, c, from_bob).as_deref(),
        Some("moderated")
    );
    accepted(&mut h, "alice", DeleteMessage::new(s, c, from_bob));

    // Promoted to channel admin by the host, Bob may edit Alice's message.
    h.ok(UpdateParticipant::new(s, c, bob).role_sid(admin));
    accepted(&mut h, "bob", edit(s, c, from_alice, "edited by bob"));
    assert_eq!(
        message_body(&h, s, c, from_alice).as_deref(),
        Some("edited by bob")
    );
    // And a participant may leave on their own.
    accepted(&mut h, "bob", RemoveParticipant::new(s, c, bob));
}

#[test]
fn retrying_a_command_id_returns_the_first_result_and_appends_nothing() {
    let mut h = Harness::new();
    let s = h.ok(CreateService::new("idempotency"));
    let c = h.ok(CreateConversation::new(s));
    let id = h.fresh_id();
    let envelope = PostMessage::new(s, c)
        .author("alice")
        .body("only once")
        .keyed(id)
        .into_command();
    let first = h.engine().execute(envelope.clone()).unwrap();
    assert!(!first.deduplicated);
    assert!(!first.records.is_empty());
    let head = h.head();

    let again = h.engine().execute(envelope.clone()).unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.first_position, first.first_position);
    assert_eq!(again.records, first.records);
    assert_eq!(h.head(), head);

    // Still after reopening.
    h.reopen();
    let after = h.engine().execute(envelope.clone()).unwrap();
    assert!(after.deduplicated);
    assert_eq!(after.records, first.records);
    assert_eq!(h.head(), head);

    // Another command under the same id is refused, and writes nothing.
    let other = h
        .engine()
        .execute(CommandEnvelope {
            command: PostMessage::new(s, c)
                .author("alice")
                .body("something else")
                .into(),
            ..envelope
        })
        .unwrap_err();
    assert!(
        matches!(other, CommandError::IdempotencyKeyReused { command_id, .. } if command_id == id),
        "{other:?}"
    );
    assert_eq!(h.head(), head);
    let messages = h.engine().read(|rm| {
        rm.get_conversation(&s, &conversation_ref(c))
            .unwrap()
            .message_count()
    });
    assert_eq!(messages, 1);

    // A refused command's id is not remembered: used again for a valid
    // command, it appends.
    let id = h.fresh_id();
    let lost = PostMessage::new(s, ConversationSid::derive(b"nowhere")).body("lost");
    let refused = h.engine().execute(lost.keyed(id).into_command());
    assert!(matches!(refused, Err(CommandError::NotFound { .. })));
    let found = PostMessage::new(s, c).body("found");
    let retried = h.engine().execute(found.keyed(id).into_command()).unwrap();
    assert!(!retried.deduplicated);
    assert_eq!(retried.records.len(), 1);
}

/// The number of records in the log that belong to conversation `c`.
fn records_of(engine: &Engine, c: ConversationSid) -> u64 {
    let head = engine.log().head();
    engine
        .log()
        .read_range(0..head.next_position)
        .map(|r| r.unwrap())
        .filter(|r| r.header.conversation_sid == Some(c))
        .count() as u64
}

#[test]
fn a_stale_expected_version_is_a_typed_conflict_and_writes_nothing() {
    let mut h = Harness::new();
    let s = h.ok(CreateService::new("versions"));
    let c = h.ok(CreateConversation::new(s));
    // A new identity appends a user (service stream) and a participant
    // (the conversation's stream): only the latter counts.
    h.ok(AddParticipant::new(s, c, ParticipantSpec::chat("alice")));
    let seen = records_of(h.engine(), c);
    assert_eq!(h.engine().log().stream_version(s, Some(c)).unwrap(), seen);

    let with_version = |h: &mut Harness, expected: u64, body: &str| {
        let post = PostMessage::new(s, c).author("alice").body(body);
        let id = h.fresh_id();
        h.engine().execute(post.keyed(id).expect_version(expected))
    };
    with_version(&mut h, seen, "first").unwrap();
    let now = records_of(h.engine(), c);
    assert_eq!(now, seen + 1);

    let head = h.head();
    let err = with_version(&mut h, seen, "stale").unwrap_err();
    assert_eq!(
        err,
        CommandError::VersionConflict {
            expected: seen,
            actual: now
        }
    );
    assert_eq!(h.head(), head);
    let err = with_version(&mut h, now + 5, "from the future").unwrap_err();
    assert_eq!(
        err,
        CommandError::VersionConflict {
            expected: now + 5,
            actual: now
        }
    );
    assert_eq!(h.head(), head);

    // The version survives reopening, and the current one is accepted.
    h.reopen();
    with_version(&mut h, now, "fresh").unwrap();
    assert_eq!(records_of(h.engine(), c), now + 1);

    // Another conversation's writes do not move this one's version.
    let other = h.ok(CreateConversation::new(s));
    h.ok(PostMessage::new(s, other).author("bob").body("elsewhere"));
    with_version(&mut h, now + 1, "still current").unwrap();
}

fn inbound(service: ServiceSid, from: &str, to: &str, body: Option<&str>) -> Command {
    let inbound = ReceiveInbound::new(service, AddressType::Sms, from, to);
    match body {
        Some(body) => inbound.body(body).into(),
        None => inbound.into(),
    }
}

fn configure(h: &mut Harness, s: ServiceSid, address: &str, channel: AddressType, enabled: bool) {
    h.ok(
        CreateAddressConfiguration::new(s, channel, address).auto_creation(AutoCreation {
            enabled,
            conversation_service_sid: None,
            ..AutoCreation::default()
        }),
    );
}

fn conversation_count(h: &Harness, s: ServiceSid) -> usize {
    h.engine()
        .read(|rm| rm.get_service(&s).unwrap().conversations().count())
}

#[test]
fn inbound_messages_route_by_binding_autocreate_where_allowed_and_otherwise_write_nothing() {
    let mut h = Harness::new();
    let s = h.ok(CreateService::new("inbound"));
    let proxy = "+15559000000";
    configure(&mut h, s, proxy, AddressType::Sms, true);
    let c = h.ok(CreateConversation::new(s));
    let known = ParticipantSpec::binding("+15550000001", proxy);
    let known = h.ok(AddParticipant::new(s, c, known));

    // A matched binding: appended as that participant, in its conversation.
    let before = conversation_count(&h, s);
    let out = h
        .ok(inbound(s, "+15550000001", proxy, Some("hi from sms")))
        .records;
    assert_eq!(out.len(), 1);
    match &out[0].1 {
        Event::MessageAdded {
            conversation_sid,
            participant_sid,
            author,
            body,
            ..
        } => {
            assert_eq!(*conversation_sid, c);
            assert_eq!(*participant_sid, Some(known));
            assert_eq!(author, "+15550000001");
            assert_eq!(body.as_deref(), Some("hi from sms"));
        }
        other => panic!("expected a message, got {other:?}"),
    }
    assert_eq!(conversation_count(&h, s), before);

    // An unknown sender: the address configuration autocreates a
    // conversation with the sender as participant, and the message.
    let created = h.ok(inbound(s, "+15550000002", proxy, Some("new here")));
    assert_eq!(
        common::kinds(&created),
        ["conversation_created", "participant_added", "message_added"]
    );
    let new_conversation = created.conversation_sid().unwrap();
    let new_participant = created.participant_sids()[0];
    let posted = created.message().unwrap();
    let message = posted.message_sid;
    assert_eq!(posted.index, 0);
    assert_eq!(conversation_count(&h, s), before + 1);
    {
        h.engine().read(|rm| {
            assert_eq!(
                rm.participant_by_binding(&s, proxy, "+15550000002")
                    .unwrap(),
                Some((new_conversation, new_participant))
            );
            let row = rm
                .message(&s, &conversation_ref(new_conversation), &message)
                .unwrap();
            assert_eq!(row.participant_sid, Some(new_participant));
        });
    }
    // The sender's next message goes to that conversation.
    let next = h.ok(inbound(s, "+15550000002", proxy, Some("again")));
    assert_eq!(common::kinds(&next), ["message_added"]);
    assert_eq!(next.records[0].0.conversation_sid, Some(new_conversation));
    assert_eq!(conversation_count(&h, s), before + 1);

    // No route: nothing written.
    let no_route = |from: &str, to: &str| CommandError::NoRoute {
        from: from.to_string(),
        to: to.to_string(),
    };
    let head = h.head();
    // No address configuration for the number.
    let err = h
        .exec(inbound(s, "+15550000003", "+15558888888", Some("?")))
        .unwrap_err();
    assert_eq!(err, no_route("+15550000003", "+15558888888"));
    // A configuration with autocreation off.
    configure(&mut h, s, "+15557777777", AddressType::Sms, false);
    let head_after_config = h.head();
    assert_ne!(head_after_config, head);
    let err = h
        .exec(inbound(s, "+15550000003", "+15557777777", Some("?")))
        .unwrap_err();
    assert_eq!(err, no_route("+15550000003", "+15557777777"));
    // A configuration for another channel.
    configure(&mut h, s, "+15556666666", AddressType::Whatsapp, true);
    let head = h.head();
    let err = h
        .exec(inbound(s, "+15550000003", "+15556666666", Some("?")))
        .unwrap_err();
    assert_eq!(err, no_route("+15550000003", "+15556666666"));
    assert_eq!(h.head(), head);
    // Autocreation is atomic: an empty message creates nothing either.
    let err = h.exec(inbound(s, "+15550000003", proxy, None)).unwrap_err();
    assert!(
        matches!(err, CommandError::Invalid { field: "body", .. }),
        "{err:?}"
    );
    assert_eq!(h.head(), head);
    // Only the host routes inbound messages.
    let err = h
        .exec_as(
            Some("alice"),
            inbound(s, "+15550000001", proxy, Some("spoofed")),
        )
        .unwrap_err();
    assert_eq!(err, denied("alice", None));
    assert_eq!(h.head(), head);

    // A closed conversation no longer receives its binding's messages: the
    // configuration starts a new conversation instead.
    h.ok(UpdateConversation::new(s, c).state(ConversationState::Closed));
    let reopened = h.ok(inbound(s, "+15550000001", proxy, Some("still there?")));
    assert_eq!(
        common::kinds(&reopened),
        ["conversation_created", "participant_added", "message_added"]
    );
    assert_ne!(reopened.conversation_sid(), Some(c));
    assert_eq!(
        h.engine().read(|rm| rm
            .get_conversation(&s, &conversation_ref(c))
            .unwrap()
            .message_count()),
        1,
        "nothing more arrived in the closed conversation"
    );
}

/// Runs `make(i)` from `threads` threads at once; returns the results in
/// thread order.
fn race(
    h: &mut Harness,
    threads: usize,
    make: impl Fn(usize) -> Command + Sync,
) -> Vec<Result<CommandOutcome, CommandError>> {
    let ids: Vec<CommandId> = (0..threads).map(|_| h.fresh_id()).collect();
    let engine = h.engine();
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let (start, make) = (&start, &make);
                scope.spawn(move || {
                    let command = make(i);
                    start.wait();
                    engine.execute(command.keyed(*id))
                })
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

#[test]
fn concurrent_writers_cannot_both_claim_a_unique_name_identity_or_binding() {
    const THREADS: usize = 8;
    let mut h = Harness::new();
    let s = h.ok(CreateService::new("races"));

    for round in 0..5 {
        let name = format!("the-one-{round}");
        let results = race(&mut h, THREADS, |_| {
            CreateConversation::new(s).unique_name(&name).into()
        });
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for r in &results {
            if let Err(e) = r {
                assert_eq!(
                    *e,
                    CommandError::UniqueNameConflict {
                        unique_name: name.clone()
                    }
                );
            }
        }
        let (held, named) = h.engine().read(|rm| {
            let held = rm
                .get_conversation(&s, &ConversationRef::UniqueName(name.clone()))
                .unwrap()
                .row()
                .sid;
            let named = rm
                .get_service(&s)
                .unwrap()
                .conversations()
                .filter(|c| c.row().unique_name.as_deref() == Some(name.as_str()))
                .count();
            (held, named)
        });
        assert_eq!(Some(held), winners[0].conversation_sid());
        assert_eq!(named, 1);
    }

    let results = race(&mut h, THREADS, |_| CreateUser::new(s, "zoe").into());
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(
            *r,
            CommandError::UserExists {
                identity: "zoe".into()
            }
        );
    }

    // One binding, many conversations: one of them gets it.
    let conversations: Vec<_> = (0..THREADS)
        .map(|_| h.ok(CreateConversation::new(s)))
        .collect();
    let results = race(&mut h, THREADS, |i| {
        let binding = ParticipantSpec::binding("+15550000009", "+15559000009");
        AddParticipant::new(s, conversations[i], binding).into()
    });
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let holder = winners[0].records[0].0.conversation_sid.unwrap();
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(r, CommandError::BindingConflict { conversation_sid, .. } if *conversation_sid == holder),
            "{r:?}"
        );
    }
    assert_eq!(
        h.engine().read(|rm| rm
            .participant_by_binding(&s, "+15559000009", "+15550000009")
            .unwrap()
            .map(|(c, _)| c)),
        Some(holder)
    );
}
