//! Idempotency through the engine: a command id is scoped to the service
//! the command addresses (one account scope for `CreateService`), and a
//! key reused for a different command is refused instead of answered with
//! the first command's outcome.

mod common;

use common::*;
use engine_core::log::indexes::{check_indexes, IndexView};
use engine_core::CommandError;
use events::*;

fn envelope(command_id: CommandId, acting: Option<&str>, command: Command) -> CommandEnvelope {
    CommandEnvelope {
        command_id,
        acting_identity: acting.map(str::to_string),
        expected_version: None,
        command,
    }
}

#[test]
fn a_key_used_by_another_service_is_applied_as_its_own_and_never_returns_its_records() {
    let mut h = Harness::new();
    let (a, b) = (h.service("tenant a"), h.service("tenant b"));
    let (ca, cb) = (h.conversation(a, None), h.conversation(b, None));
    let key = CommandId::from_key(b"request-42");

    let in_a = h
        .engine()
        .execute(envelope(
            key,
            None,
            post(a, ca, Some("alice"), "secret of A"),
        ))
        .unwrap();
    assert!(!in_a.deduplicated);

    let in_b = h
        .engine()
        .execute(envelope(key, None, post(b, cb, Some("bob"), "B's own")))
        .unwrap();
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
    let (message, _) = in_b
        .message()
        .map(|m| (m.message_sid, m.index))
        .expect("B's message was posted");
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
    let again_a = h
        .engine()
        .execute(envelope(
            key,
            None,
            post(a, ca, Some("alice"), "secret of A"),
        ))
        .unwrap();
    assert!(again_a.deduplicated);
    assert_eq!(again_a.records, in_a.records);
    let again_b = h
        .engine()
        .execute(envelope(key, None, post(b, cb, Some("bob"), "B's own")))
        .unwrap();
    assert!(again_b.deduplicated);
    assert_eq!(again_b.records, in_b.records);
}

#[test]
fn a_key_reused_for_a_different_command_is_refused_and_writes_nothing() {
    let mut h = Harness::new();
    let s = h.service("reuse");
    let c = h.conversation(s, None);
    h.participant(s, c, chat("alice"));
    let key = h.fresh_id();
    let first = h
        .engine()
        .execute(envelope(key, None, post(s, c, Some("alice"), "first")))
        .unwrap();
    let head = h.head();
    let digest = h.digest();

    // Another body, and the same body by another acting identity: both are
    // other commands.
    for (acting, body) in [(None, "second"), (Some("alice"), "first")] {
        let err = h
            .engine()
            .execute(envelope(key, acting, post(s, c, Some("alice"), body)))
            .unwrap_err();
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
    let err = h
        .engine()
        .execute(envelope(key, None, post(s, c, Some("alice"), "second")))
        .unwrap_err();
    assert!(
        matches!(err, CommandError::IdempotencyKeyReused { .. }),
        "{err:?}"
    );
    let retry = h
        .engine()
        .execute(envelope(key, None, post(s, c, Some("alice"), "first")))
        .unwrap();
    assert!(retry.deduplicated);
    assert_eq!(retry.records, first.records);
    assert_eq!(h.head(), head);
}

#[test]
fn create_service_keys_live_in_the_account_scope() {
    let mut h = Harness::new();
    let key = h.fresh_id();
    let create = |name: &str| {
        Command::CreateService(CreateService {
            friendly_name: name.to_string(),
        })
    };
    let first = h
        .engine()
        .execute(envelope(key, None, create("one")))
        .unwrap();
    let s = first.service_sid().unwrap();
    let retry = h
        .engine()
        .execute(envelope(key, None, create("one")))
        .unwrap();
    assert!(retry.deduplicated);
    assert_eq!(retry.records, first.records);
    let err = h
        .engine()
        .execute(envelope(key, None, create("two")))
        .unwrap_err();
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
        .execute(envelope(key, None, create_conversation(s, None)))
        .unwrap();
    assert!(!c.deduplicated);
    assert!(c.conversation_sid().is_some());
    // The index check tells the two commands apart (the second is cut
    // from the first by its stored entry), and a rebuild keeps both.
    let report = check_indexes(h.engine().log().db(), IndexView::Snapshot).unwrap();
    assert_eq!(report.commands, 2);
    h.rebuild();
    check_indexes(h.engine().log().db(), IndexView::Snapshot).unwrap();
    let again = h
        .engine()
        .execute(envelope(key, None, create("one")))
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.records, first.records);
}
