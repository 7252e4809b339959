//! Idempotency through the engine: a command id is scoped to the service
//! the command addresses (one account scope for `CreateService`), and a
//! key reused for a different command is refused instead of answered with
//! the first command's outcome.

mod common;

use common::*;
use engine_core::log::indexes::{check_indexes, IndexView};
use engine_core::CommandError;
use events::*;

#[test]
fn a_key_used_by_another_service_is_applied_as_its_own_and_never_returns_its_records() {
    let mut h = Harness::new();
    let (a, b) = (
        h.ok(CreateService::new("tenant a")),
        h.ok(CreateService::new("tenant b")),
    );
    let (ca, cb) = (
        h.ok(CreateConversation::new(a)),
        h.ok(CreateConversation::new(b)),
    );
    let key = CommandId::from_key(b"request-42");
    let post_in_a = PostMessage::new(a, ca)
        .author("alice")
        .body("secret of A")
        .keyed(key)
        .into_command();
    let post_in_b = PostMessage::new(b, cb)
        .author("bob")
        .body("B's own")
        .keyed(key)
        .into_command();

    let in_a = h.engine().execute(post_in_a.clone()).unwrap();
    assert!(!in_a.deduplicated);

    let in_b = h.engine().execute(post_in_b.clone()).unwrap();
    assert!(!in_b.deduplicated, "B's command was taken for A's");
    assert_eq!(in_b.service_sid(), Some(b));
    assert!(
        in_b.records
            .iter()
            .all(|(header, _)| header.service_sid == b),
        "B got records of another service: {:?}",
        in_b.records
    );
    assert_ne!(in_b.first_position, in_a.first_position);
    let message = in_b.message().expect("B's message was posted").message_sid;
    let page = h.engine().read(|rm| {
        rm.messages(
            &b,
            &ConversationRef::Sid(cb),
            projections::Order::Asc,
            &projections::PageRequest::default(),
        )
        .unwrap()
        .items
    });
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].sid, message);

    // Each service's retry is answered with its own records.
    let again_a = h.engine().execute(post_in_a).unwrap();
    assert!(again_a.deduplicated);
    assert_eq!(again_a.records, in_a.records);
    let again_b = h.engine().execute(post_in_b).unwrap();
    assert!(again_b.deduplicated);
    assert_eq!(again_b.records, in_b.records);
}

#[test]
fn a_key_reused_for_a_different_command_is_refused_and_writes_nothing() {
    let mut h = Harness::new();
    let s = h.ok(CreateService::new("reuse"));
    let c = h.ok(CreateConversation::new(s));
    h.ok(AddParticipant::new(s, c, ParticipantSpec::chat("alice")));
    let key = h.fresh_id();
    let post = |body: &str| {
        PostMessage::new(s, c)
            .author("alice")
            .body(body)
            .keyed(key)
            .into_command()
    };
    let first = h.engine().execute(post("first")).unwrap();
    let head = h.head();
    let digest = h.digest();

    // Another body, and the same body by another acting identity: both are
    // other commands.
    for envelope in [post("second"), post("first").acting_as("alice")] {
        let err = h.engine().execute(envelope).unwrap_err();
        assert_eq!(
            err,
            CommandError::IdempotencyKeyReused {
                command_id: key,
                scope: Some(s),
                first_position: first.first_position,
            }
        );
        assert_eq!(h.head(), head, "a refused reuse moved the head");
        assert_eq!(
            h.digest(),
            digest,
            "a refused reuse changed the read models"
        );
    }

    // Still refused after a reopen; the original retry still answers.
    h.reopen();
    let err = h.engine().execute(post("second")).unwrap_err();
    assert!(
        matches!(err, CommandError::IdempotencyKeyReused { .. }),
        "{err:?}"
    );
    let retry = h.engine().execute(post("first")).unwrap();
    assert!(retry.deduplicated);
    assert_eq!(retry.records, first.records);
    assert_eq!(h.head(), head);
}

#[test]
fn create_service_keys_live_in_the_account_scope() {
    let mut h = Harness::new();
    let key = h.fresh_id();
    let create = |name: &str| CreateService::new(name).keyed(key).into_command();
    let first = h.engine().execute(create("one")).unwrap();
    let s = first.service_sid().unwrap();
    let retry = h.engine().execute(create("one")).unwrap();
    assert!(retry.deduplicated);
    assert_eq!(retry.records, first.records);
    let err = h.engine().execute(create("two")).unwrap_err();
    assert_eq!(
        err,
        CommandError::IdempotencyKeyReused {
            command_id: key,
            scope: None,
            first_position: first.first_position,
        }
    );
    // The new service's own scope does not hold the account-scope key.
    let c = h
        .engine()
        .execute(CreateConversation::new(s).keyed(key).into_command())
        .unwrap();
    assert!(!c.deduplicated);
    assert!(c.conversation_sid().is_some());
    // The index check tells the two commands apart (the second is cut
    // from the first by its stored entry), and a rebuild keeps both.
    let report = check_indexes(h.engine().log().db(), IndexView::Snapshot).unwrap();
    assert_eq!(report.commands, 2);
    h.rebuild();
    check_indexes(h.engine().log().db(), IndexView::Snapshot).unwrap();
    let again = h.engine().execute(create("one")).unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.records, first.records);
}
