//! `Target=studio` conversation webhooks and Studio flows
//! (`Engine::start_studio_flow`): the seed scenario through an address
//! configuration's autocreation of type `studio`, the hand-off decided by
//! the webhooks a conversation had when each message was added (not by
//! today's), other flows and unhanded conversations left alone,
//! `ReplayAfter`, and a kill between the flow's effect and its checkpoint.

mod fanout_support;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use engine_core::{
    reactor_command_id, reactor_fn, studio_flow_reactor_name, CommandError, CommittedRecord,
    Engine, EngineOptions, HandlerError, PostedMessage, ReactorContext, ReactorHandle,
    StudioFlowSpec,
};
use events::*;
use fanout_support::*;
use projections::ConversationWebhookConfig;

/// The flow the tests register.
fn flow() -> FlowSid {
    "FW0123456789abcdef0123456789abcdef".parse().unwrap()
}

/// A flow nobody registers.
fn other_flow() -> FlowSid {
    "FWffffffffffffffffffffffffffffffff".parse().unwrap()
}

/// The service's SMS number in the tutorial.
const NUMBER: &str = "+15559870000";

fn deadline() -> Instant {
    Instant::now() + WAIT
}

/// The tutorial's flow: "support" adds the chat participant `agent` (one
/// already there is fine). Records the body of every message it is
/// handed, and each `AddParticipant`'s `deduplicated`.
fn support_flow(
    cx: &mut ReactorContext<'_>,
    record: &CommittedRecord,
    seen: &Mutex<Vec<String>>,
    added: &Mutex<Vec<bool>>,
) -> Result<(), HandlerError> {
    let Event::MessageAdded {
        conversation_sid,
        body,
        ..
    } = &record.event
    else {
        return Err(format!("a flow is handed messages only, got {record:?}").into());
    };
    let body = body.clone().unwrap_or_default();
    seen.lock().unwrap().push(body.clone());
    if body.trim().eq_ignore_ascii_case("support") {
        let agent = ParticipantSpec::chat("agent");
        let add = AddParticipant::new(record.header.service_sid, *conversation_sid, agent);
        match cx.execute(Command::from(add)) {
            Ok(outcome) => added.lock().unwrap().push(outcome.deduplicated),
            Err(CommandError::ParticipantExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A running support flow: its handle, the bodies it was handed, and the
/// `deduplicated` of each agent addition.
struct Flow {
    handle: ReactorHandle,
    seen: Arc<Mutex<Vec<String>>>,
    added: Arc<Mutex<Vec<bool>>>,
}

fn start_flow(engine: &Engine) -> Flow {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let added = Arc::new(Mutex::new(Vec::new()));
    let (s, a) = (seen.clone(), added.clone());
    let handle = engine
        .start_studio_flow(
            StudioFlowSpec::new(flow()),
            reactor_fn(move |cx, record| support_flow(cx, record, &s, &a)),
        )
        .unwrap();
    Flow {
        handle,
        seen,
        added,
    }
}

impl Flow {
    fn settle(&self, engine: &Engine) {
        let head = engine.log().head().next_position;
        assert!(
            self.handle.wait_for(head, deadline()),
            "the flow did not catch up: {:?}",
            self.handle.metrics()
        );
        let m = self.handle.metrics();
        assert_eq!(m.failed_attempts + m.parked, 0, "{m:?}");
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    fn added(&self) -> Vec<bool> {
        self.added.lock().unwrap().clone()
    }
}

fn agents(engine: &Engine, service: ServiceSid, conversation: ConversationSid) -> usize {
    engine.read(|rm| {
        rm.service(&service)
            .and_then(|s| s.conversation_by_sid(&conversation))
            .map_or(0, |c| {
                c.participants()
                    .filter(|p| p.kind.identity() == Some("agent"))
                    .count()
            })
    })
}

/// Texts to [`NUMBER`] autocreate a conversation handed to [`flow`].
fn autocreate_into_flow(f: &Fixture) {
    f.run(
        CreateAddressConfiguration::new(f.service, AddressType::Sms, NUMBER)
            .auto_creation(AutoCreation::studio(flow())),
    );
}

/// `from` texts `body` to [`NUMBER`] as the SMS gateway's text `id`.
fn text(f: &Fixture, id: &str, from: &str, body: &str) -> PostedMessage {
    let inbound = ReceiveInbound::new(f.service, AddressType::Sms, from, NUMBER).body(body);
    f.engine
        .receive_inbound(id, inbound)
        .unwrap()
        .message()
        .unwrap()
}

#[test]
fn an_sms_support_to_a_studio_number_makes_the_flow_add_the_agent() {
    // The seed scenario: the number's autocreation hands each new
    // conversation to the flow; "support" adds the agent, other texts do
    // nothing.
    let f = open(EngineOptions::default());
    autocreate_into_flow(&f);
    let chatty = text(&f, "SM1", "+15550000001", "what are your hours?");
    let asking = text(&f, "SM2", "+15550000002", "support");
    // The flow starts after the texts (from the beginning of the log), so
    // everything from here on is its own writing.
    let before = f.head();
    let flow_run = start_flow(&f.engine);
    flow_run.settle(&f.engine);
    assert_eq!(agents(&f.engine, f.service, chatty.conversation_sid), 0);
    assert_eq!(agents(&f.engine, f.service, asking.conversation_sid), 1);
    assert_eq!(flow_run.added(), vec![false]);
    assert_eq!(flow_run.seen(), ["what are your hours?", "support"]);
    // The flow wrote the agent's addition only, under its derived id.
    let mut sub = f
        .engine
        .subscribe(engine_core::SubscribeFrom::Position(before))
        .unwrap();
    let written: Vec<Arc<CommittedRecord>> =
        std::iter::from_fn(|| sub.try_next().unwrap()).collect();
    assert!(!written.is_empty());
    let name = studio_flow_reactor_name(flow());
    for r in &written {
        assert_eq!(
            r.header.command_id,
            reactor_command_id(&name, asking.position, 0),
            "{r:?}"
        );
    }
    // The autocreated conversation holds its Studio webhook.
    let hooks = f.engine.read(|rm| {
        rm.service(&f.service)
            .unwrap()
            .conversation_by_sid(&asking.conversation_sid)
            .unwrap()
            .webhooks()
            .values()
            .map(|w| w.webhook.clone())
            .collect::<Vec<_>>()
    });
    assert_eq!(
        hooks,
        vec![ConversationWebhookConfig::Studio(StudioWebhook {
            flow_sid: flow(),
            replay_after: None,
        })]
    );
    assert_eq!(hooks[0].target_name(), "studio");
    assert_eq!(hooks[0].studio().map(|s| s.flow_sid), Some(flow()));
    assert!(hooks[0].url().is_none());
}

#[test]
fn only_conversations_handed_to_the_flow_reach_it() {
    let f = open(EngineOptions::default());
    let handed = f.conversation();
    let elsewhere = f.conversation();
    let plain = f.conversation();
    let hook = f.run(CreateConversationStudioWebhook::new(
        f.service,
        handed,
        flow(),
    ));
    f.run(CreateConversationStudioWebhook::new(
        f.service,
        elsewhere,
        other_flow(),
    ));
    for c in [handed, elsewhere, plain] {
        f.join(c, "customer");
        f.post(c, "customer", "support");
    }
    let flow_run = start_flow(&f.engine);
    flow_run.settle(&f.engine);
    assert_eq!(flow_run.seen(), ["support"]);
    assert_eq!(agents(&f.engine, f.service, handed), 1);
    assert_eq!(agents(&f.engine, f.service, elsewhere), 0);
    assert_eq!(agents(&f.engine, f.service, plain), 0);
    // A Studio webhook is deleted like the others.
    f.run(DeleteConversationWebhook::new(f.service, handed, hook));
    f.post(handed, "customer", "still there?");
    flow_run.settle(&f.engine);
    assert_eq!(flow_run.seen(), ["support"]);
}

#[test]
fn the_hand_off_is_decided_by_the_webhooks_when_each_message_was_added() {
    // A flow registered late (and a restart in between) still sees what
    // was handed to it, and nothing from before or after the webhook:
    // today's read models would say "not handed" for all of it.
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "customer");
    f.post(c, "customer", "before the hand-off");
    let hook = f.run(CreateConversationStudioWebhook::new(f.service, c, flow()));
    f.post(c, "customer", "while handed");
    f.run(DeleteConversationWebhook::new(f.service, c, hook));
    f.post(c, "customer", "after the hand-off");
    let f = f.restart(EngineOptions::default());
    let flow_run = start_flow(&f.engine);
    flow_run.settle(&f.engine);
    assert_eq!(flow_run.seen(), ["while handed"]);
    // Handed again: from then on.
    f.run(CreateConversationStudioWebhook::new(f.service, c, flow()));
    f.post(c, "customer", "handed again");
    flow_run.settle(&f.engine);
    assert_eq!(flow_run.seen(), ["while handed", "handed again"]);
}

#[test]
fn replay_after_hands_the_flow_the_later_messages_already_there() {
    let f = open(EngineOptions::default());
    let flow_run = start_flow(&f.engine);
    let c = f.conversation();
    f.join(c, "customer");
    f.post(c, "customer", "hello"); // index 0
    let removed = f.post(c, "customer", "oops"); // index 1, deleted below
    f.post(c, "customer", "support"); // index 2
    f.run(DeleteMessage::new(f.service, c, removed.message_sid));
    let webhook_at = f.head();
    f.run(CreateConversationStudioWebhook::new(f.service, c, flow()).replay_after(0));
    flow_run.settle(&f.engine);
    assert_eq!(
        flow_run.seen(),
        ["support"],
        "index 2 only: 0 is not after 0, 1 was removed"
    );
    assert_eq!(agents(&f.engine, f.service, c), 1);
    // The replayed message's command derives from the webhook's record.
    let mut sub = f
        .engine
        .subscribe(engine_core::SubscribeFrom::Position(webhook_at))
        .unwrap();
    let added_by = std::iter::from_fn(|| sub.try_next().unwrap())
        .find(|r| matches!(&r.event, Event::ParticipantAdded { .. }))
        .map(|r| r.header.command_id);
    let name = studio_flow_reactor_name(flow());
    assert_eq!(added_by, Some(reactor_command_id(&name, webhook_at, 0)));
    // A replay of the reactor re-runs the hand-off: the same command ids,
    // answered as duplicates.
    flow_run.handle.replay_from(0).unwrap();
    flow_run.settle(&f.engine);
    assert_eq!(flow_run.seen(), ["support", "support"]);
    assert_eq!(flow_run.added(), vec![false, true]);
    assert_eq!(agents(&f.engine, f.service, c), 1);

    // Without ReplayAfter, nothing already there is handed.
    let quiet = f.conversation();
    f.join(quiet, "customer");
    f.post(quiet, "customer", "support");
    f.run(CreateConversationStudioWebhook::new(
        f.service,
        quiet,
        flow(),
    ));
    flow_run.settle(&f.engine);
    assert_eq!(agents(&f.engine, f.service, quiet), 0);
}

#[test]
fn a_studio_webhook_is_host_only_and_counts_against_the_limit() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "customer");
    let as_customer = f.engine.execute(
        CreateConversationStudioWebhook::new(f.service, c, flow())
            .keyed("as-customer")
            .acting_as("customer"),
    );
    assert!(
        matches!(as_customer, Err(CommandError::PermissionDenied { .. })),
        "{as_customer:?}"
    );
    for _ in 0..events::limits::CONVERSATION_WEBHOOKS_PER_CONVERSATION_MAX {
        f.run(CreateConversationStudioWebhook::new(f.service, c, flow()));
    }
    let over = f.try_run(CreateConversationStudioWebhook::new(f.service, c, flow()));
    assert!(
        matches!(
            over,
            Err(CommandError::TooLong {
                field: "webhooks",
                ..
            })
        ),
        "{over:?}"
    );
}

/// Names the store the crashing flow runs on, in the re-executed test.
const CRASH_STORE_ENV: &str = "COLLOQUY_STUDIO_CRASH_STORE";

#[test]
fn a_kill_between_the_flows_effect_and_its_checkpoint_adds_the_agent_once() {
    if let Some(path) = std::env::var_os(CRASH_STORE_ENV) {
        // The child: the flow adds the agent, then the process dies before
        // the reactor can checkpoint the text.
        let engine = reopen_at(std::path::Path::new(&path), EngineOptions::default());
        engine
            .start_studio_flow(
                StudioFlowSpec::new(flow()),
                reactor_fn(|cx, record| {
                    let none = Mutex::new(Vec::new());
                    support_flow(cx, record, &none, &Mutex::new(Vec::new()))?;
                    if matches!(&record.event, Event::MessageAdded { body: Some(b), .. } if b == "support")
                    {
                        std::process::abort();
                    }
                    Ok(())
                }),
            )
            .unwrap();
        std::thread::sleep(WAIT);
        panic!("the flow never reached the support text");
    }
    let f = open(EngineOptions::default());
    autocreate_into_flow(&f);
    let asking = text(&f, "SM1", "+15550000002", "support");
    let Fixture {
        dir,
        engine,
        service,
        ..
    } = f;
    drop(engine);
    let status = run_child(
        "a_kill_between_the_flows_effect_and_its_checkpoint_adds_the_agent_once",
        CRASH_STORE_ENV,
        dir.path(),
    );
    assert!(!status.success(), "the child aborts after the effect");
    let engine = reopen_at(dir.path(), EngineOptions::default());
    assert_eq!(
        agents(&engine, service, asking.conversation_sid),
        1,
        "the child's effect survived"
    );
    let flow_run = start_flow(&engine);
    flow_run.settle(&engine);
    assert_eq!(
        flow_run.added(),
        vec![true],
        "re-delivered: the same command id, answered as a duplicate"
    );
    assert_eq!(agents(&engine, service, asking.conversation_sid), 1);
}

#[test]
fn a_studio_webhook_moved_between_flows_hands_over_from_its_update_on() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "customer");
    let hook = f.run(CreateConversationStudioWebhook::new(
        f.service,
        c,
        other_flow(),
    ));
    f.post(c, "customer", "for the other flow");
    f.run(UpdateConversationWebhook::new(f.service, c, hook).flow_sid(flow()));
    f.post(c, "customer", "moved here");
    // Decided from the log: the flow starts after all of it.
    let flow_run = start_flow(&f.engine);
    flow_run.settle(&f.engine);
    assert_eq!(flow_run.seen(), ["moved here"]);
    // Decided live, from the update records the flow receives.
    f.run(UpdateConversationWebhook::new(f.service, c, hook).flow_sid(other_flow()));
    f.post(c, "customer", "moved away");
    f.run(UpdateConversationWebhook::new(f.service, c, hook).flow_sid(flow()));
    f.post(c, "customer", "back again");
    flow_run.settle(&f.engine);
    assert_eq!(flow_run.seen(), ["moved here", "back again"]);
    let hooks = f.engine.read(|rm| {
        rm.service(&f.service)
            .and_then(|s| s.conversation_by_sid(&c))
            .map(|c| c.webhooks().values().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    });
    assert_eq!(hooks.len(), 1);
    assert_eq!(
        hooks[0].webhook.studio().map(|s| s.flow_sid),
        Some(flow()),
        "{hooks:?}"
    );
}
