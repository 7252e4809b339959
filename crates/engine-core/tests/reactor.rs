//! Durable reactors (`Engine::start_reactor`): the Studio seed scenario end
//! to end (other texts make the flow append nothing), exactly-once effects
//! across a crash between the effect and the checkpoint, the checkpoint across a restart, retry then park then
//! re-drive, replay, the lag metric, the filter, and the reactor's thread.

mod fanout_support;
mod log_support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine_core::reactor::CF_REACTORS;
use engine_core::{
    reactor_command_id, reactor_fn, CommandError, CommittedRecord, EngineOptions, HandlerError,
    ParkedEvent, ReactorContext, ReactorError, ReactorFilter, ReactorHandle, ReactorSpec,
    ReactorStart,
};
use events::*;
use fanout_support::*;

/// The Studio tutorial's flow: a message "support" adds the chat
/// participant `agent` to its conversation; one already there is fine.
/// The flow issues the same command for the same record every time it is
/// delivered, so a re-delivery is answered as a duplicate. Records each
/// applied (or duplicate) `AddParticipant`'s `deduplicated`.
fn support_flow(
    cx: &mut ReactorContext<'_>,
    record: &CommittedRecord,
    added: &Mutex<Vec<bool>>,
) -> Result<(), HandlerError> {
    let Event::MessageAdded {
        conversation_sid,
        body: Some(body),
        ..
    } = &record.event
    else {
        return Ok(());
    };
    if !body.trim().eq_ignore_ascii_case("support") {
        return Ok(());
    }
    let add = AddParticipant::new(
        record.header.service_sid,
        *conversation_sid,
        ParticipantSpec::chat("agent"),
    );
    match cx.execute(Command::from(add)) {
        Ok(outcome) => added.lock().unwrap().push(outcome.deduplicated),
        Err(CommandError::ParticipantExists { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// How many participants of `conversation` have the chat identity `identity`.
fn members_named(f: &Fixture, conversation: ConversationSid, identity: &str) -> usize {
    members_of(&f.engine, f.service, conversation, identity)
}

/// [`members_named`] on an engine.
fn members_of(
    engine: &engine_core::Engine,
    service: ServiceSid,
    conversation: ConversationSid,
    identity: &str,
) -> usize {
    engine.read(|rm| {
        rm.service(&service)
            .and_then(|s| s.conversation_by_sid(&conversation))
            .map_or(0, |c| {
                c.participants()
                    .filter(|p| p.kind.identity() == Some(identity))
                    .count()
            })
    })
}

fn deadline() -> Instant {
    Instant::now() + WAIT
}

const STUDIO: &str = "studio-support";

fn studio_spec() -> ReactorSpec {
    ReactorSpec::new(STUDIO)
        .filter(ReactorFilter::all().event_types(["message_added"]))
        .start(ReactorStart::Beginning)
}

/// Starts the Studio flow on `engine`; returns its handle and the
/// `deduplicated` of each `AddParticipant` it issued.
fn start_studio(engine: &engine_core::Engine) -> (ReactorHandle, Arc<Mutex<Vec<bool>>>) {
    let added = Arc::new(Mutex::new(Vec::new()));
    let log = added.clone();
    let handle = engine
        .start_reactor(
            studio_spec(),
            reactor_fn(move |cx, record| support_flow(cx, record, &log)),
        )
        .unwrap();
    (handle, added)
}

#[test]
fn the_seed_scenario_adds_the_agent_on_support_and_nothing_on_other_messages() {
    let f = open(EngineOptions::default());
    let (handle, added) = start_studio(&f.engine);
    let quiet = f.conversation();
    f.join(quiet, "customer");
    f.post(quiet, "customer", "hello, what are your hours?");
    let help = f.conversation();
    f.join(help, "customer");
    let asked = f.post(help, "customer", "Support").position;
    f.post(help, "customer", "support");
    assert!(handle.wait_for(f.head(), deadline()));
    // The agent came from the reactor's first command for that message.
    let mut sub = f
        .engine
        .subscribe(engine_core::SubscribeFrom::Position(asked))
        .unwrap();
    let added_by = std::iter::from_fn(|| sub.try_next().unwrap())
        .find(|r| matches!(&r.event, Event::ParticipantAdded { .. }))
        .map(|r| r.header.command_id);
    assert_eq!(added_by, Some(reactor_command_id(STUDIO, asked, 0)));
    assert_eq!(
        members_named(&f, quiet, "agent"),
        0,
        "other messages do nothing"
    );
    assert_eq!(
        members_named(&f, help, "agent"),
        1,
        "support adds the agent once"
    );
    assert_eq!(*added.lock().unwrap(), vec![false]);
    let metrics = handle.metrics();
    assert_eq!(metrics.lag, 0);
    assert_eq!(metrics.parked, 0);
}

/// The service's SMS number in the tutorial.
const NUMBER: &str = "+15559870000";

/// Makes texts to [`NUMBER`] autocreate a conversation with the texter.
fn autocreate_on_number(f: &Fixture) {
    f.run(
        CreateAddressConfiguration::new(f.service, AddressType::Sms, NUMBER).auto_creation(
            AutoCreation {
                enabled: true,
                conversation_service_sid: None,
                ..AutoCreation::default()
            },
        ),
    );
}

/// `from` texts `body` to [`NUMBER`] (`id`: the SMS gateway's id of the
/// text): the position and conversation of the message it posts.
fn text(f: &Fixture, id: &str, from: &str, body: &str) -> (u64, ConversationSid) {
    let inbound = ReceiveInbound::new(f.service, AddressType::Sms, from, NUMBER).body(body);
    let outcome = f.engine.receive_inbound(id, inbound).unwrap();
    let position = outcome
        .find(|(h, e)| matches!(e, Event::MessageAdded { .. }).then_some(h.position))
        .unwrap();
    (position, outcome.message().unwrap().conversation_sid)
}

#[test]
fn an_inbound_sms_support_makes_the_flow_add_the_agent() {
    // The tutorial's shape: an SMS to the service's number autocreates a
    // conversation with the texter; "support" brings the agent in.
    let f = open(EngineOptions::default());
    autocreate_on_number(&f);
    let (handle, added) = start_studio(&f.engine);
    let (_, chatty) = text(&f, "SM1", "+15550000001", "hi there");
    let (_, asking) = text(&f, "SM2", "+15550000002", "support");
    assert!(handle.wait_for(f.head(), deadline()));
    assert_eq!(members_named(&f, chatty, "agent"), 0);
    assert_eq!(members_named(&f, asking, "agent"), 1);
    assert_eq!(*added.lock().unwrap(), vec![false]);
}

#[test]
fn other_texts_make_the_flow_append_nothing() {
    // The tutorial's "other messages do nothing", in the log itself: of
    // four texts, only the exact "support" makes the flow write, and all
    // it writes is the agent's addition to that text's conversation.
    let f = open(EngineOptions::default());
    autocreate_on_number(&f);
    let (_, chatty) = text(&f, "SM1", "+15550000001", "hi there");
    let (_, same) = text(&f, "SM2", "+15550000001", "what are your opening hours?");
    assert_eq!(
        same, chatty,
        "the texter's binding routes to its conversation"
    );
    let (_, near_miss) = text(&f, "SM3", "+15550000003", "supportive words");
    let (support_at, asking) = text(&f, "SM4", "+15550000002", "support");
    let before_flow = f.head();

    let (handle, added) = start_studio(&f.engine);
    assert!(handle.wait_for(before_flow, deadline()));
    let mut sub = f
        .engine
        .subscribe(engine_core::SubscribeFrom::Position(before_flow))
        .unwrap();
    let written: Vec<Arc<CommittedRecord>> =
        std::iter::from_fn(|| sub.try_next().unwrap()).collect();
    assert!(
        written
            .iter()
            .any(|r| matches!(&r.event, Event::ParticipantAdded { .. })),
        "the agent was added: {written:?}"
    );
    for r in &written {
        assert_eq!(
            r.header.command_id,
            reactor_command_id(STUDIO, support_at, 0),
            "only the support text's command wrote: {r:?}"
        );
        // The agent's user (service-level) and its participant there.
        assert!(
            r.header.conversation_sid.is_none_or(|c| c == asking),
            "{r:?}"
        );
    }
    for c in [chatty, near_miss] {
        assert_eq!(members_named(&f, c, "agent"), 0);
    }
    assert_eq!(*added.lock().unwrap(), vec![false]);
    let metrics = handle.metrics();
    assert_eq!(metrics.handled, 4, "the flow saw every text");
    assert_eq!(metrics.failed_attempts + metrics.parked, 0);
}

/// Names the store the crashing reactor runs on, in the re-executed test.
const CRASH_STORE_ENV: &str = "COLLOQUY_REACTOR_CRASH_STORE";

#[test]
fn a_crash_between_the_effect_and_the_checkpoint_applies_the_effect_once() {
    if let Some(path) = std::env::var_os(CRASH_STORE_ENV) {
        // The child: the flow adds the agent, then the process dies before
        // the reactor can checkpoint the record.
        let engine = reopen_at(std::path::Path::new(&path), EngineOptions::default());
        engine
            .start_reactor(
                studio_spec(),
                reactor_fn(|cx, record| {
                    support_flow(cx, record, &Mutex::new(Vec::new()))?;
                    if matches!(&record.event, Event::MessageAdded { body: Some(b), .. } if b == "support")
                    {
                        std::process::abort();
                    }
                    Ok(())
                }),
            )
            .unwrap();
        std::thread::sleep(WAIT);
        panic!("the reactor never reached the support message");
    }
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "customer");
    let support = f.post(c, "customer", "support").position;
    let Fixture {
        dir,
        engine,
        service,
        ..
    } = f;
    drop(engine);
    let status = run_child(
        "a_crash_between_the_effect_and_the_checkpoint_applies_the_effect_once",
        CRASH_STORE_ENV,
        dir.path(),
    );
    assert!(!status.success(), "the child aborts after the effect");
    // The effect is durable, the checkpoint is not past the record.
    {
        let db = log_support::open_rocks(dir.path());
        let key = [b"c".as_slice(), STUDIO.as_bytes()].concat();
        let stored = db
            .get_cf(db.cf_handle(CF_REACTORS).unwrap(), key)
            .unwrap()
            .expect("the reactor checkpointed its start");
        let checkpoint = u64::from_be_bytes(stored.as_slice().try_into().unwrap());
        assert!(
            checkpoint <= support,
            "checkpoint {checkpoint} is past {support}"
        );
    }
    let engine = reopen_at(dir.path(), EngineOptions::default());
    assert_eq!(
        members_of(&engine, service, c, "agent"),
        1,
        "the child's effect survived"
    );
    let (handle, added) = start_studio(&engine);
    assert!(handle.wait_for(engine.log().head().next_position, deadline()));
    assert_eq!(
        *added.lock().unwrap(),
        vec![true],
        "re-delivered: the same command id, answered as a duplicate"
    );
    assert_eq!(
        members_of(&engine, service, c, "agent"),
        1,
        "the agent is added once"
    );
}

/// A reactor that records the position of every record it handles.
fn recorder(seen: &Arc<Mutex<Vec<u64>>>) -> impl engine_core::Reactor {
    let seen = seen.clone();
    reactor_fn(move |_, record| {
        seen.lock().unwrap().push(record.header.position);
        Ok(())
    })
}

#[test]
fn the_checkpoint_survives_a_restart_and_wins_over_the_start_setting() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "ann");
    let spec = ReactorSpec::new("audit")
        .filter(ReactorFilter::all().event_types(["message_added"]))
        .start(ReactorStart::Now);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handle = f
        .engine
        .start_reactor(spec.clone(), recorder(&seen))
        .unwrap();
    let first: Vec<u64> = (0..3)
        .map(|i| f.post(c, "ann", &format!("a{i}")).position)
        .collect();
    assert!(handle.wait_for(f.head(), deadline()));
    assert_eq!(*seen.lock().unwrap(), first);
    let checkpoint = handle.metrics().checkpoint;
    assert_eq!(checkpoint, f.head());

    let f = f.restart(EngineOptions::default());
    // Posted while no reactor runs: handled after the restart.
    let missed = f.post(c, "ann", "while down").position;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handle = f
        .engine
        .start_reactor(spec.start(ReactorStart::Beginning), recorder(&seen))
        .unwrap();
    let later = f.post(c, "ann", "after").position;
    assert!(handle.wait_for(f.head(), deadline()));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![missed, later],
        "resumed at checkpoint {checkpoint}, nothing handled twice"
    );
}

/// A flow that fails on the message "bad" while `failing` holds, fails the
/// first two attempts at "flaky", and answers every customer message with
/// a reply by `bot` (its effect).
fn flaky_flow(
    failing: Arc<std::sync::atomic::AtomicBool>,
    flaky_calls: Arc<AtomicU32>,
) -> impl engine_core::Reactor {
    reactor_fn(move |cx, record| {
        let Event::MessageAdded {
            conversation_sid,
            author,
            body: Some(body),
            ..
        } = &record.event
        else {
            return Ok(());
        };
        if author == "bot" {
            return Ok(());
        }
        if body == "bad" && failing.load(Ordering::SeqCst) {
            return Err("downstream unavailable".into());
        }
        if body == "flaky" && flaky_calls.fetch_add(1, Ordering::SeqCst) < 2 {
            return Err(format!("flaky attempt {}", cx.attempt()).into());
        }
        cx.execute(
            PostMessage::new(record.header.service_sid, *conversation_sid)
                .author("bot")
                .body(format!("re: {body}")),
        )?;
        Ok(())
    })
}

/// The bodies of `conversation`'s messages by `bot`.
fn replies(f: &Fixture, conversation: ConversationSid) -> Vec<String> {
    let service = f.service;
    let mut out = Vec::new();
    let mut sub = f
        .engine
        .subscribe(engine_core::SubscribeFrom::Position(0))
        .unwrap();
    while let Some(record) = sub.try_next().unwrap() {
        if let Event::MessageAdded {
            conversation_sid,
            author,
            body: Some(body),
            ..
        } = &record.event
        {
            if record.header.service_sid == service
                && *conversation_sid == conversation
                && author == "bot"
            {
                out.push(body.clone());
            }
        }
    }
    out
}

#[test]
fn a_failing_record_is_retried_then_parked_survives_a_restart_and_is_redriven() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "ann");
    let spec = ReactorSpec::new("replier")
        .filter(ReactorFilter::all().event_types(["message_added"]))
        .attempts_max(3)
        .backoff(Duration::from_millis(1), Duration::from_millis(4));
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flaky = Arc::new(AtomicU32::new(0));
    let handle = f
        .engine
        .start_reactor(spec.clone(), flaky_flow(failing.clone(), flaky.clone()))
        .unwrap();
    let bad = f.post(c, "ann", "bad").position;
    f.post(c, "ann", "flaky");
    f.post(c, "ann", "good");
    assert!(handle.wait_for(f.head(), deadline()));
    assert_eq!(
        handle.parked().unwrap(),
        vec![ParkedEvent {
            position: bad,
            attempts: 3,
            error: "downstream unavailable".into()
        }]
    );
    let m = handle.metrics();
    assert_eq!(m.failed_attempts, 3 + 2, "three at bad, two at flaky");
    assert_eq!(m.parked, 1);
    assert_eq!(
        flaky.load(Ordering::SeqCst),
        3,
        "flaky succeeded at its third attempt"
    );
    assert_eq!(
        replies(&f, c),
        ["re: flaky", "re: good"],
        "the parked record held nothing back"
    );

    // Parked events are persisted.
    let f = f.restart(EngineOptions::default());
    let handle = f
        .engine
        .start_reactor(spec, flaky_flow(failing.clone(), flaky.clone()))
        .unwrap();
    assert_eq!(handle.parked().unwrap().len(), 1);
    // A re-drive that fails again adds its attempts.
    handle.redrive(bad).unwrap();
    assert!(handle.wait_for(f.head(), deadline()));
    assert_eq!(handle.parked().unwrap()[0].attempts, 6);
    // Once the downstream is back, a re-drive handles it, once.
    failing.store(false, Ordering::SeqCst);
    handle.redrive(bad).unwrap();
    assert!(handle.wait_for(f.head(), deadline()));
    assert!(handle.parked().unwrap().is_empty());
    assert_eq!(handle.metrics().redriven, 1);
    let mut got = replies(&f, c);
    got.sort();
    assert_eq!(got, ["re: bad", "re: flaky", "re: good"]);
    assert!(matches!(
        handle.redrive(bad),
        Err(ReactorError::NotParked { position, .. }) if position == bad
    ));
}

#[test]
fn a_panicking_handler_is_a_failed_attempt() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "ann");
    let spec = ReactorSpec::new("panicky")
        .filter(ReactorFilter::all().event_types(["message_added"]))
        .attempts_max(2)
        .backoff(Duration::from_millis(1), Duration::from_millis(2));
    let handle = f
        .engine
        .start_reactor(
            spec,
            reactor_fn(|_, _| -> Result<(), HandlerError> { panic!("handler bug") }),
        )
        .unwrap();
    let p = f.post(c, "ann", "x").position;
    assert!(handle.wait_for(f.head(), deadline()));
    let parked = handle.parked().unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].position, p);
    assert!(parked[0].error.contains("handler bug"), "{:?}", parked[0]);
    assert!(
        handle.metrics().running,
        "the reactor survives its handler's panic"
    );
}

#[test]
fn a_replay_delivers_again_but_applies_no_command_twice() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "ann");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let spec = ReactorSpec::new("echo").filter(
        ReactorFilter::all()
            .event_types(["message_added"])
            .conversation(c),
    );
    let handle = f
        .engine
        .start_reactor(
            spec,
            reactor_fn(move |cx, record| {
                let Event::MessageAdded { author, body, .. } = &record.event else {
                    return Ok(());
                };
                if author == "bot" {
                    return Ok(());
                }
                let outcome = cx.execute(Command::from(
                    PostMessage::new(record.header.service_sid, c)
                        .author("bot")
                        .body(format!("re: {}", body.as_deref().unwrap_or(""))),
                ))?;
                log.lock()
                    .unwrap()
                    .push((record.header.position, outcome.deduplicated));
                Ok(())
            }),
        )
        .unwrap();
    let posted: Vec<u64> = (0..3)
        .map(|i| f.post(c, "ann", &format!("m{i}")).position)
        .collect();
    assert!(handle.wait_for(f.head(), deadline()));
    handle.replay_from(posted[1]).unwrap();
    assert!(handle.wait_for(f.head(), deadline()));
    let expected: Vec<(u64, bool)> = posted
        .iter()
        .map(|p| (*p, false))
        .chain(posted[1..].iter().map(|p| (*p, true)))
        .collect();
    assert_eq!(*seen.lock().unwrap(), expected);
    assert_eq!(replies(&f, c).len(), 3, "each reply applied once");
    let head = f.head();
    assert!(matches!(
        handle.replay_from(head + 1),
        Err(ReactorError::PositionAhead { position, next_position })
            if position == head + 1 && next_position == head
    ));
}

#[test]
fn the_lag_is_the_head_minus_the_checkpoint() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    f.join(c, "ann");
    let (entered_tx, entered) = crossbeam_channel::bounded(1);
    let (release, release_rx) = crossbeam_channel::bounded::<()>(1);
    let gate = Arc::new(AtomicU32::new(1));
    let spec = ReactorSpec::new("slow").filter(ReactorFilter::all().event_types(["message_added"]));
    let handle = f
        .engine
        .start_reactor(
            spec,
            reactor_fn(move |_, _| {
                if gate.fetch_sub(1, Ordering::SeqCst) == 1 {
                    entered_tx.send(()).unwrap();
                    release_rx.recv_timeout(WAIT)?;
                }
                Ok(())
            }),
        )
        .unwrap();
    let first = f.post(c, "ann", "first").position;
    entered
        .recv_timeout(WAIT)
        .expect("the handler got the first record");
    for i in 0..10 {
        f.post(c, "ann", &format!("m{i}"));
    }
    let m = handle.metrics();
    assert_eq!(m.head, f.head());
    assert_eq!(m.checkpoint, first, "the first record is not handled yet");
    assert_eq!(m.lag, f.head() - first);
    assert_eq!(f.engine.reactor_metrics(), vec![m]);
    release.send(()).unwrap();
    assert!(handle.wait_for(f.head(), deadline()));
    assert_eq!(handle.metrics().lag, 0);
}

#[test]
fn the_filter_passes_only_matching_records_and_bad_specs_are_refused() {
    let f = open(EngineOptions::default());
    let one = f.conversation();
    let two = f.conversation();
    f.join(one, "ann");
    f.join(two, "ann");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let threads = Arc::new(Mutex::new(Vec::new()));
    let (log, names) = (seen.clone(), threads.clone());
    let spec = ReactorSpec::new("one-messages")
        .start(ReactorStart::Beginning)
        .filter(
            ReactorFilter::all()
                .event_types(["message_added"])
                .service(f.service)
                .conversation(one),
        );
    let handle = f
        .engine
        .start_reactor(
            spec.clone(),
            reactor_fn(move |_, record| {
                log.lock().unwrap().push(record.header.position);
                names
                    .lock()
                    .unwrap()
                    .push(std::thread::current().name().map(str::to_string));
                Ok(())
            }),
        )
        .unwrap();
    let a = f.post(one, "ann", "a").position;
    f.post(two, "ann", "b");
    let c = f.post(one, "ann", "c").position;
    assert!(handle.wait_for(f.head(), deadline()));
    assert_eq!(*seen.lock().unwrap(), vec![a, c]);
    let m = handle.metrics();
    assert_eq!(m.handled, 2);
    assert_eq!(m.skipped, f.head() - 2);
    assert!(threads
        .lock()
        .unwrap()
        .iter()
        .all(|n| n.as_deref() == Some("colloquy-reactor-one-messages")));

    let refused = |spec: ReactorSpec| {
        f.engine
            .start_reactor(spec, reactor_fn(|_, _| Ok(())))
            .unwrap_err()
    };
    assert!(matches!(refused(spec), ReactorError::AlreadyRunning { .. }));
    assert!(matches!(
        refused(ReactorSpec::new("x").filter(ReactorFilter::all().event_types(["message_addded"]))),
        ReactorError::UnknownEventType { event_type } if event_type == "message_addded"
    ));
    assert!(matches!(
        refused(ReactorSpec::new("")),
        ReactorError::InvalidName { .. }
    ));
    assert!(matches!(
        refused(ReactorSpec::new(
            "n".repeat(engine_core::reactor::REACTOR_NAME_BYTES_MAX + 1)
        )),
        ReactorError::InvalidName { .. }
    ));
    // Stopped, it can be started again, from its checkpoint.
    assert!(f.engine.stop_reactor("one-messages"));
    assert!(f.engine.reactor("one-messages").is_none());
    assert!(matches!(
        handle.replay_from(0),
        Err(ReactorError::NotRunning { .. })
    ));
}

/// Names the store the randomly killed host runs on, in the re-executed
/// test.
const KILL_STORE_ENV: &str = "COLLOQUY_REACTOR_KILL_STORE";
/// Hosts killed at a random moment, each on its own store.
const KILL_TRIALS: u64 = 3;
/// The earliest moment a host is killed, in milliseconds after it started:
/// by then it has opened its store and its flow is answering.
const KILL_AFTER_MS_MIN: u64 = 200;
/// The latest moment a host is killed, in milliseconds after it started.
const KILL_AFTER_MS_MAX: u64 = 1_500;
/// Tickets a killed host opens, more than it can open before its kill.
const KILL_TICKETS: u64 = 10_000;

/// A flow with an effect the domain does not deduplicate: every customer
/// message gets a reply naming its position. A reply posted twice would
/// show.
fn ticket_flow() -> impl engine_core::Reactor {
    reactor_fn(|cx, record| {
        let Event::MessageAdded {
            conversation_sid,
            author,
            ..
        } = &record.event
        else {
            return Ok(());
        };
        if author == "customer" {
            cx.execute(
                PostMessage::new(record.header.service_sid, *conversation_sid)
                    .author("bot")
                    .body(format!("ticket {}", record.header.position)),
            )?;
        }
        Ok(())
    })
}

fn ticket_spec() -> ReactorSpec {
    ReactorSpec::new("tickets")
        .filter(ReactorFilter::all().event_types(["message_added"]))
        .start(ReactorStart::Beginning)
}

#[test]
fn a_host_killed_at_a_random_moment_applies_each_reactor_effect_once() {
    if let Some(path) = std::env::var_os(KILL_STORE_ENV) {
        // The child: customers write while the flow answers, until the
        // parent kills the process.
        let engine = reopen_at(std::path::Path::new(&path), EngineOptions::default());
        let service = engine
            .execute(CreateService::new("tickets").keyed("kill/service"))
            .unwrap();
        engine.start_reactor(ticket_spec(), ticket_flow()).unwrap();
        for n in 0..KILL_TICKETS {
            let c = engine
                .execute(CreateConversation::new(service).keyed(format!("kill/c{n}")))
                .unwrap();
            let post = PostMessage::new(service, c).author("customer").body("help");
            engine.execute(post.keyed(format!("kill/m{n}"))).unwrap();
        }
        std::thread::sleep(WAIT);
        panic!("the host was not killed");
    }
    use std::hash::{BuildHasher, Hasher};
    let seed = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    for trial in 0..KILL_TRIALS {
        let kill_after_ms = KILL_AFTER_MS_MIN
            + seed.rotate_left(trial as u32 * 21) % (KILL_AFTER_MS_MAX - KILL_AFTER_MS_MIN);
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_host_killed_at_a_random_moment_applies_each_reactor_effect_once",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(KILL_STORE_ENV, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        child.kill().unwrap();
        child.wait().unwrap();

        let engine = reopen_at(dir.path(), EngineOptions::default());
        let handle = engine.start_reactor(ticket_spec(), ticket_flow()).unwrap();
        assert!(handle.wait_for(engine.log().head().next_position, deadline()));
        let mut asked = std::collections::BTreeSet::new();
        let mut answered = Vec::new();
        let mut sub = engine
            .subscribe(engine_core::SubscribeFrom::Position(0))
            .unwrap();
        while let Some(record) = sub.try_next().unwrap() {
            if let Event::MessageAdded { author, body, .. } = &record.event {
                match author.as_str() {
                    "customer" => {
                        asked.insert(record.header.position);
                    }
                    _ => answered.push(body.clone().unwrap_or_default()),
                }
            }
        }
        let expected: Vec<String> = asked.iter().map(|p| format!("ticket {p}")).collect();
        answered.sort_by_key(|b| b[7..].parse::<u64>().unwrap_or(u64::MAX));
        assert_eq!(
            answered, expected,
            "trial {trial} (seed {seed}, killed after {kill_after_ms} ms): every customer \
             message answered exactly once"
        );
    }
}

#[test]
fn a_retry_waits_its_backoff_on_the_logs_clock() {
    // Regression: the backoff between attempts was wall time, so on a
    // clock moved by hand (TestClock) a retry neither waited for the
    // clock nor came when the clock passed its time.
    const BACKOFF: Duration = Duration::from_secs(10);
    /// Real time the retry may take once the clock has passed its time:
    /// far below the backoff (at least half of it is drawn), so only a
    /// wait on the clock can meet it.
    const PROMPT: Duration = Duration::from_secs(3);
    let clock = Arc::new(engine_core::TestClock::new(1_700_000_000_000_000));
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_core::Engine::open_with(
        dir.path(),
        fanout_support::log_options().clock(clock.clone()),
        EngineOptions::default(),
    )
    .unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    let seen = attempts.clone();
    let spec = ReactorSpec::new("clocked")
        .filter(ReactorFilter::all().event_types(["service_created"]))
        .start(ReactorStart::Beginning)
        .backoff(BACKOFF, BACKOFF);
    let handle = engine
        .start_reactor(
            spec,
            reactor_fn(move |_, _| {
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Err("the first attempt fails".into());
                }
                Ok(())
            }),
        )
        .unwrap();
    engine
        .execute(CreateService::new("clocked").keyed("service"))
        .unwrap();
    eventually("the first attempt", || {
        handle.metrics().failed_attempts == 1
    });
    // Wall time alone does not bring the retry.
    std::thread::sleep(QUIET);
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    // The clock past the backoff does, at once. (Moved again until then:
    // a move just before the reactor took its start time is not enough.)
    let started = Instant::now();
    while attempts.load(Ordering::SeqCst) < 2 {
        assert!(
            started.elapsed() < PROMPT,
            "no retry {PROMPT:?} after the clock passed the backoff"
        );
        clock.advance(BACKOFF * 2);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(handle.wait_for(engine.log().head().next_position, deadline()));
    assert_eq!(handle.metrics().handled, 1);
}
