//! Turning `Command`'s struct variants into one struct per command (issue
//! 9) is an API change, not a format change: a command's canonical bincode
//! bytes — hence its idempotency fingerprint, which an idempotency entry
//! stored before the change is compared with — and its JSON form stay what
//! they were.
//!
//! The pinned values were computed from the struct-variant enum (commit
//! e9b7675, before the change); the commands are built here with the new
//! builders, so the test also checks that the builders fill every field
//! the way the old literals did.

use events::*;

struct Pinned {
    command: Command,
    bincode_hex: &'static str,
    fingerprint_hex: &'static str,
    json: &'static str,
}

fn service() -> ServiceSid {
    "IS00000000000000000000000000000001".parse().unwrap()
}

fn conversation() -> ConversationSid {
    "CH00000000000000000000000000000002".parse().unwrap()
}

fn pinned() -> Vec<Pinned> {
    let participant: ParticipantSid = "MB00000000000000000000000000000003".parse().unwrap();
    vec![
        Pinned {
            command: CreateService::new("acme").into(),
            bincode_hex: "000461636d65",
            fingerprint_hex: "8b90613d4aef9d7a02070615bc8dbb91cf1d8c2523027a8cf559e05cf0c6f544",
            json: r#"{"create_service":{"friendly_name":"acme"}}"#,
        },
        Pinned {
            command: CreateConversation::new(service())
                .unique_name("ticket-42")
                .attributes("{}")
                .into(),
            bincode_hex: "03000000000000000000000000000000010001097469636b65742d343201027b7d00000000",
            fingerprint_hex: "c9ecd7d4206292bbf6a10652feeef678c87dde323bc503b667953009b6d2f172",
            json: r#"{"create_conversation":{"service":"IS00000000000000000000000000000001","spec":{"friendly_name":null,"unique_name":"ticket-42","attributes":"{}","state":null,"timers":{"inactive_micros":null,"closed_micros":null},"messaging_service_sid":null}}}"#,
        },
        Pinned {
            command: AddParticipant::new(
                service(),
                conversation(),
                ParticipantSpec::binding("+15551230001", "+15559870000"),
            )
            .into(),
            bincode_hex: "07000000000000000000000000000000010000000000000000000000000000000002010c2b31353535313233303030310c2b3135353539383730303030000000",
            fingerprint_hex: "8a305f970a18d7d793c10d6002a145faae5d6cad79f70b1aa0a4b9dc7f738326",
            json: r#"{"add_participant":{"service":"IS00000000000000000000000000000001","conversation":{"sid":"CH00000000000000000000000000000002"},"participant":{"kind":{"messaging":{"address":"+15551230001","proxy_address":"+15559870000","projected_address":null}},"attributes":null,"role_sid":null}}}"#,
        },
        Pinned {
            command: PostMessage::new(service(), "ticket-42")
                .author("alice")
                .body("hi")
                .into(),
            bincode_hex: "0a0000000000000000000000000000000101097469636b65742d34320105616c696365010268690000",
            fingerprint_hex: "8f03139b3175848769dd97bc583a1d887b95119cefca4bf7608ee723df238020",
            json: r#"{"post_message":{"service":"IS00000000000000000000000000000001","conversation":{"unique_name":"ticket-42"},"author":"alice","body":"hi","media":[],"attributes":null}}"#,
        },
        Pinned {
            command: UpdateReadHorizon::advance(service(), conversation(), participant, 4).into(),
            bincode_hex: "0d00000000000000000000000000000001000000000000000000000000000000000200000000000000000000000000000003010401",
            fingerprint_hex: "f625ee689cbe55c20d9ed8f605f98367f57eb7cae942eb5bd204e1e69c3b1f7c",
            json: r#"{"update_read_horizon":{"service":"IS00000000000000000000000000000001","conversation":{"sid":"CH00000000000000000000000000000002"},"participant":"MB00000000000000000000000000000003","last_read_message_index":4,"mode":"advance"}}"#,
        },
    ]
}

#[test]
fn command_bytes_fingerprints_and_json_are_those_of_the_struct_variant_enum() {
    for p in pinned() {
        let name = p.command.type_name();
        let bytes = bincode::serde::encode_to_vec(&p.command, bincode::config::standard()).unwrap();
        assert_eq!(
            hex::encode(&bytes),
            p.bincode_hex,
            "{name}: canonical bytes"
        );
        let scope = p.command.idempotency_scope();
        let fingerprint =
            idempotency_fingerprint(scope.as_ref(), Some("alice"), &p.command).unwrap();
        assert_eq!(
            hex::encode(&fingerprint),
            p.fingerprint_hex,
            "{name}: fingerprint"
        );
        assert_eq!(
            serde_json::to_string(&p.command).unwrap(),
            p.json,
            "{name}: JSON"
        );
        let back: Command = serde_json::from_str(p.json).unwrap();
        assert_eq!(back, p.command, "{name}: JSON round trip");
    }
}

#[test]
fn a_conversation_ref_from_a_string_is_a_sid_when_it_parses_as_one() {
    assert_eq!(
        ConversationRef::from("CH00000000000000000000000000000002"),
        ConversationRef::Sid(conversation())
    );
    assert_eq!(
        ConversationRef::from("ticket-42"),
        ConversationRef::UniqueName("ticket-42".into())
    );
    // Uppercase hex is not a SID (SIDs are lowercase), so it is a name.
    assert_eq!(
        ConversationRef::from("CH0000000000000000000000000000000A"),
        ConversationRef::UniqueName("CH0000000000000000000000000000000A".into())
    );
}

#[test]
fn fresh_command_ids_differ_and_string_keys_are_stable() {
    assert_ne!(CommandId::fresh(), CommandId::fresh());
    assert_eq!(
        CommandId::from("request-7"),
        CommandId::from_key(b"request-7")
    );
    let envelope = CommandEnvelope::new("request-7", CreateService::new("acme"))
        .acting_as("alice")
        .expect_version(3)
        .into_command();
    assert_eq!(envelope.command_id, CommandId::from_key(b"request-7"));
    assert_eq!(envelope.acting_identity.as_deref(), Some("alice"));
    assert_eq!(envelope.expected_version, Some(3));
    assert_eq!(
        envelope.command,
        Command::CreateService(CreateService::new("acme"))
    );
}
