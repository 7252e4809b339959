//! The main job for now: open a store in `./data` (or the path given),
//! create a service and a conversation, add a chat and an SMS participant,
//! open a session, post messages, advance a read horizon, read the unread
//! counts, and print and verify the log.
//!
//! Run it with `cargo xtask demo` (or `cargo run --example quickstart -- DIR`).
//!
//! Every command carries an idempotency key. A host derives it from its
//! own request (an HTTP `I-Twilio-Idempotency-Token`, a job id), so that a
//! retried request is applied once; here each step names its own key, so
//! running the example twice on the same store applies everything once
//! and prints the same result.

use std::time::Duration;

use colloquy::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "data".into());
    let engine = Engine::open(&dir, LogOptions::default())?;

    // Create a service, then a conversation in it.
    let service = engine.execute(CreateService::new("quickstart").keyed("quickstart/service"))?;
    let support = CreateConversation::new(service).unique_name("support");
    let conversation = engine.execute(support.keyed("quickstart/conversation"))?;

    // Add a chat participant and an SMS participant.
    let alice = AddParticipant::new(service, conversation, ParticipantSpec::chat("alice"));
    let alice = engine.execute(alice.keyed("quickstart/alice"))?;
    let sms = ParticipantSpec::binding("+15551230001", "+15559870000");
    engine.execute(AddParticipant::new(service, conversation, sms).keyed("quickstart/sms"))?;

    // Open a session for alice: it receives every event of her conversations.
    let mut session = engine.open_session(service, "alice", SessionStart::Live)?;

    // Post two messages, one from each participant.
    let hello = PostMessage::new(service, conversation)
        .author("alice")
        .body("How can I help?");
    engine.execute(hello.keyed("quickstart/message-1"))?;
    let reply = PostMessage::new(service, "support")
        .author("+15551230001")
        .body("Invoice wrong");
    engine.execute(reply.keyed("quickstart/message-2"))?;
    while let Some(event) = session.recv_timeout(Duration::from_millis(200))? {
        println!("alice's session: {} at {:?}", event.name(), event.cursor());
    }

    // Alice read the first message: one unread left.
    let read = UpdateReadHorizon::advance(service, conversation, alice, 0);
    engine.execute(read.keyed("quickstart/read-0"))?;
    let page = engine.read(|q| q.user_conversations(&service, "alice", &PageRequest::default()))?;
    for c in &page.items {
        // No count until alice has read something (Twilio's null).
        let unread = c
            .unread_messages_count
            .map_or_else(|| "none yet".to_string(), |n| n.to_string());
        println!(
            "alice in {} ({:?}): last read {:?}, unread {unread}",
            c.conversation_sid, c.unique_name, c.last_read_message_index
        );
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
