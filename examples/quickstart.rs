//! The main job for now: open a store in `./data` (or the path given),
//! create a service and a conversation, add a chat and an SMS participant,
//! post messages, advance a read horizon, and print the log.
//!
//! Run it with `cargo xtask demo` (or `cargo run --example quickstart -- DIR`).

use colloquy::events::command::*;
use colloquy::events::{
    Command, CommandEnvelope, CommandId, ConversationRef, ConversationSpec, HorizonMode,
    MessagingBinding, ParticipantKind, ParticipantSpec,
};
use colloquy::{Engine, LogOptions, PageRequest};

fn run(
    engine: &Engine,
    command: Command,
) -> Result<colloquy::CommandOutcome, Box<dyn std::error::Error>> {
    // A real host derives the id from its request's idempotency key, so a
    // retried request is applied once.
    let envelope = CommandEnvelope {
        command_id: CommandId::from_key(
            format!("{command:?}-{:?}", engine.log().head()).as_bytes(),
        ),
        acting_identity: None,
        expected_version: None,
        command,
    };
    Ok(engine.execute(envelope)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "data".to_string());
    let engine = Engine::open(&dir, LogOptions::default())?;

    let service = run(
        &engine,
        Command::CreateService(CreateService {
            friendly_name: "quickstart".into(),
        }),
    )?
    .service_sid()
    .expect("CreateService appends records");

    let created = run(
        &engine,
        Command::CreateConversation(CreateConversation {
            service,
            spec: ConversationSpec {
                friendly_name: Some("Support".into()),
                attributes: Some(r#"{"topic":"billing"}"#.into()),
                ..Default::default()
            },
        }),
    )?;
    let conversation = ConversationRef::Sid(created.conversation_sid().expect("created"));

    let alice = run(
        &engine,
        Command::AddParticipant(AddParticipant {
            service,
            conversation: conversation.clone(),
            participant: ParticipantSpec {
                kind: ParticipantKind::Chat {
                    identity: "alice".into(),
                    projected_address: None,
                },
                attributes: None,
                role_sid: None,
            },
        }),
    )?
    .participant_sids()[0];
    run(
        &engine,
        Command::AddParticipant(AddParticipant {
            service,
            conversation: conversation.clone(),
            participant: ParticipantSpec {
                kind: ParticipantKind::Messaging(MessagingBinding {
                    address: "+15551230001".into(),
                    proxy_address: "+15559870000".into(),
                    projected_address: None,
                }),
                attributes: None,
                role_sid: None,
            },
        }),
    )?;

    for (author, body) in [
        ("alice", "Hi, how can I help?"),
        ("+15551230001", "My invoice is wrong"),
    ] {
        run(
            &engine,
            Command::PostMessage(PostMessage {
                service,
                conversation: conversation.clone(),
                author: Some(author.into()),
                body: Some(body.into()),
                media: vec![],
                attributes: None,
            }),
        )?;
    }
    run(
        &engine,
        Command::UpdateReadHorizon(UpdateReadHorizon {
            service,
            conversation,
            participant: alice,
            last_read_message_index: Some(0),
            mode: HorizonMode::Advance,
        }),
    )?;

    {
        let page =
            engine.read(|q| q.user_conversations(&service, "alice", &PageRequest::default()))?;
        for c in &page.items {
            println!(
                "alice in {} ({:?}): last read {:?}, unread {}",
                c.conversation_sid,
                c.friendly_name,
                c.last_read_message_index,
                c.unread_messages_count
            );
        }
    }

    let head = engine.log().head();
    println!("\nlog in {dir}: {} records", head.next_position);
    for record in engine.log().read_range(0..head.next_position) {
        let record = record?;
        let event = record.event()?;
        println!(
            "{:>6}  {}  {}",
            record.header.position,
            event.type_name(),
            serde_json::to_string(&event)?
        );
    }
    let report = engine.log().verify()?;
    println!(
        "\nverified {} records, final hash {}",
        report.records,
        colloquy::hash_hex(&report.head.last_hash)
    );
    Ok(())
}
