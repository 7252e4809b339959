//! The audit trail says who acted: every record a command appends carries
//! the envelope's `acting_identity` as its header's `actor` (`None` for the
//! trusted host), sealed into the chain hash and read back from disk.

mod common;

use common::Harness;
use events::*;

/// Every record in the log, read back from disk.
fn records(h: &Harness) -> Vec<Record> {
    h.engine()
        .log()
        .read_range(0..u64::MAX)
        .collect::<Result<_, _>>()
        .expect("the log reads back")
}

#[test]
fn a_command_acting_as_alice_writes_records_whose_actor_is_alice() {
    let mut h = Harness::new();
    let service = h.ok(CreateService::new("acme"));
    let conversation = h.ok(CreateConversation::new(service));
    h.ok(AddParticipant::new(
        service,
        conversation,
        ParticipantSpec::chat("alice"),
    ));
    let alice_from = h.head().next_position;
    h.exec_as(
        Some("alice"),
        PostMessage::new(service, conversation).body("hi"),
    )
    .expect("alice may post");
    let alice_to = h.head().next_position;
    assert!(alice_to > alice_from, "alice's command appended records");
    h.ok(PostMessage::new(service, conversation)
        .author("system")
        .body("from the host"));
    let end = h.head().next_position;

    // After a reopen, so the actors come from the stored records.
    h.reopen();
    let records = records(&h);
    assert_eq!(records.len() as u64, end);
    for record in &records {
        let position = record.header.position;
        let want = (alice_from..alice_to)
            .contains(&position)
            .then_some("alice");
        assert_eq!(record.header.actor.as_deref(), want, "position {position}");
        assert_eq!(record.format_version, FORMAT_VERSION_CURRENT);
        // The actor is part of what the chain hash covers.
        let other = RecordHeader {
            actor: Some("mallory".into()),
            ..record.header.clone()
        };
        let forged = record::chain_hash(
            record.format_version,
            &other,
            &record.prev_hash,
            &record.payload,
        )
        .unwrap();
        assert_ne!(forged, record.hash, "position {position}");
    }
}
