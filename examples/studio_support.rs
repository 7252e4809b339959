//! Twilio's "Using Conversations with Studio" tutorial: a customer texts
//! the service's number, whose address configuration autocreates a
//! conversation and hands it to a Studio flow (autocreation type
//! `studio`, a `Target=studio` conversation webhook); the flow, registered
//! by the host under its flow SID, adds the chat participant `agent` when
//! the text is "support"; other texts do nothing.
//!
//! Run it with `cargo run --example studio_support -- DIR` (default
//! `./data-studio`). Every step is keyed (the inbound texts by their SMS
//! gateway ids), and the flow is a durable reactor that resumes from its
//! checkpoint, so running it twice on the same store adds the agent once
//! and prints the same result. A crash between the flow's command and its
//! checkpoint re-runs the flow for that text, and its command, derived
//! from the flow's reactor name and the text's log position, is answered
//! as a duplicate.

use std::time::{Duration, Instant};

use colloquy::events::Event;
use colloquy::prelude::*;
use colloquy::{CommittedRecord, StudioFlowSpec};

/// The service's SMS number.
const NUMBER: &str = "+15559870000";
/// The Studio flow the number hands its conversations to.
const FLOW: &str = "FW00000000000000000000000000000001";
/// How long the example waits for the flow to handle the texts.
const FLOW_WAIT: Duration = Duration::from_secs(10);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "data-studio".into());
    let engine = Engine::open(&dir, LogOptions::default())?;
    let service = engine.execute(CreateService::new("studio").keyed("studio/service"))?;
    // Texts to the number autocreate a conversation with the texter,
    // handed to the flow.
    let flow_sid: FlowSid = FLOW.parse()?;
    let number = CreateAddressConfiguration::new(service, AddressType::Sms, NUMBER)
        .auto_creation(AutoCreation::studio(flow_sid));
    engine.execute(number.keyed("studio/number"))?;

    // The flow: it is handed each message of its conversations; "support"
    // adds the agent.
    let flow = engine.start_studio_flow(
        StudioFlowSpec::new(flow_sid),
        reactor_fn(|cx, record: &CommittedRecord| {
            let Event::MessageAdded {
                conversation_sid,
                body: Some(body),
                ..
            } = &record.event
            else {
                return Ok(());
            };
            if body.trim().eq_ignore_ascii_case("support") {
                let agent = ParticipantSpec::chat("agent");
                let add = AddParticipant::new(record.header.service_sid, *conversation_sid, agent);
                match cx.execute(add) {
                    Ok(_) | Err(CommandError::ParticipantExists { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        }),
    )?;

    // Two customers text the number.
    let mut conversations = Vec::new();
    for (sms_id, from, body) in [
        ("SM0001", "+15550000001", "what are your opening hours?"),
        ("SM0002", "+15550000002", "support"),
    ] {
        let text = ReceiveInbound::new(service, AddressType::Sms, from, NUMBER).body(body);
        let outcome = engine.receive_inbound(sms_id, text)?;
        let message = outcome.message().ok_or("an inbound text posts a message")?;
        conversations.push((from, body, message.conversation_sid));
    }

    let head = engine.log().head().next_position;
    if !flow.wait_for(head, Instant::now() + FLOW_WAIT) {
        return Err(format!("the flow did not handle the texts within {FLOW_WAIT:?}").into());
    }
    for (from, body, conversation) in conversations {
        let participants: Vec<String> = engine.read(|rm| {
            rm.service(&service)
                .and_then(|s| s.conversation_by_sid(&conversation))
                .map(|c| {
                    c.participants()
                        .map(|p| match p.kind.identity() {
                            Some(identity) => identity.to_string(),
                            None => "SMS texter".to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default()
        });
        println!("{from} texted {body:?}: participants {participants:?}");
    }
    let m = flow.metrics();
    println!(
        "flow {}: checkpoint {} of {}, handled {}, parked {}",
        m.name, m.checkpoint, m.head, m.handled, m.parked
    );
    Ok(())
}
