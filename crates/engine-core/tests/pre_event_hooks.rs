//! Pre-event hooks through the engine: each outcome (accept, reject,
//! modify an allowed field, modify a field that is not allowed), the
//! deadline under each failure policy, a panicking hook, the per-command
//! opt-out, a blocked hook that does not stall other services, retries
//! that stay idempotent, and the async path.
//!
//! Every wait has a deadline: a hook that blocks does so on a channel
//! with [`BLOCK_MAX`], and every `recv` in a test has one too.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::*;
use crossbeam_channel::{bounded, Receiver, Sender};
use engine_core::{
    reactor_fn, CommandError, CommandOutcome, ExecuteOptions, FailurePolicy, HookDecision,
    HookFailure, HookField, HookRefusal, HookScope, Modifications, PreEvent, PreEventFilter,
    PreEventHookConfig, PreEventTarget, ReactorFilter, ReactorSpec, ReactorStart,
};
use events::*;

/// The longest a test waits for anything (a hook blocked on a channel, a
/// thread's answer); far beyond what any step takes, so hitting it is a
/// failure, not a slow machine.
const BLOCK_MAX: Duration = Duration::from_secs(30);

/// A short hook deadline, for the timeout tests.
const SHORT_TIMEOUT: Duration = Duration::from_millis(200);

/// A store with a service, a conversation and alice in it.
fn setup() -> (Harness, ServiceSid, ConversationSid) {
    let mut h = Harness::new();
    let s = h.ok(CreateService::new("hooks"));
    let c = h.ok(CreateConversation::new(s).unique_name("support"));
    h.ok(AddParticipant::new(s, c, ParticipantSpec::chat("alice")));
    (h, s, c)
}

fn post(s: ServiceSid, c: ConversationSid, body: &str) -> Command {
    PostMessage::new(s, c).author("alice").body(body).into()
}

/// The `MessageAdded` of an outcome: (author, body, attributes).
fn added(outcome: &CommandOutcome) -> (String, Option<String>, String) {
    outcome
        .events()
        .find_map(|e| match e {
            Event::MessageAdded {
                author,
                body,
                attributes,
                ..
            } => Some((author.clone(), body.clone(), attributes.clone())),
            _ => None,
        })
        .expect("the outcome holds a MessageAdded")
}

/// The same `MessageAdded`, read back from the log at its position.
fn added_in_log(h: &Harness, outcome: &CommandOutcome) -> (String, Option<String>, String) {
    let position = outcome.message().expect("a posted message").position;
    let record = h
        .engine()
        .log()
        .read_range(position..position + 1)
        .next()
        .expect("the record is in the log")
        .expect("the record reads");
    match record.event().expect("the event decodes") {
        Event::MessageAdded {
            author,
            body,
            attributes,
            ..
        } => (author, body, attributes),
        other => panic!("position {position} holds {other:?}"),
    }
}

/// A copy of what a recording hook saw.
fn seen_log(seen: &Mutex<Vec<PreEvent>>) -> Vec<PreEvent> {
    seen.lock().unwrap().clone()
}

/// The hook refusal `result` holds; panics on anything else.
fn refusal<T: std::fmt::Debug>(result: Result<T, CommandError>) -> HookRefusal {
    match result {
        Err(CommandError::PreEventHook(refusal)) => refusal,
        other => panic!("expected a pre-event hook refusal, got {other:?}"),
    }
}

#[test]
fn an_accepting_hook_sees_the_command_and_lets_it_through() {
    let (mut h, s, c) = setup();
    let seen: Arc<Mutex<Vec<PreEvent>>> = Arc::default();
    let (log, log_again) = (seen.clone(), seen.clone());
    h.engine().set_pre_event_hook(
        HookScope::Service(s),
        PreEventHookConfig::new([PreEventFilter::OnMessageAdd], move |e: &PreEvent| {
            log.lock().unwrap().push(e.clone());
            Ok(HookDecision::Accept)
        }),
    );
    let outcome = h
        .engine()
        .execute(CommandEnvelope::new("accepted", post(s, c, "hello")).acting_as("alice"))
        .unwrap();
    assert_eq!(added(&outcome).1.as_deref(), Some("hello"));

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "the hook runs once per pre-event");
    let event = &seen[0];
    assert_eq!(event.filter, PreEventFilter::OnMessageAdd);
    assert_eq!(event.target, PreEventTarget::Command);
    assert_eq!(event.service, s);
    assert_eq!(event.conversation_sid, Some(c));
    assert_eq!(event.acting_identity.as_deref(), Some("alice"));
    assert_eq!(event.command_id, CommandId::from("accepted"));
    assert_eq!(event.field(HookField::Body).as_deref(), Some("hello"));
    assert_eq!(
        event.modifiable_fields(),
        &[HookField::Body, HookField::Author, HookField::Attributes]
    );
    drop(seen);
    // A conversation addressed by its unique name is resolved to its SID.
    h.ok(PostMessage::new(s, "support")
        .author("alice")
        .body("by name"));
    assert_eq!(
        seen_log(&log_again).last().unwrap().conversation_sid,
        Some(c)
    );
    // A command that fires another filter does not call it.
    h.ok(UpdateConversation::new(s, c).friendly_name("renamed"));
    assert_eq!(h.engine().hook_metrics().calls, 2);
}

#[test]
fn a_rejecting_hook_refuses_with_its_reason_and_writes_nothing() {
    let (mut h, s, c) = setup();
    h.engine().set_pre_event_hook(
        HookScope::Engine,
        PreEventHookConfig::new([PreEventFilter::OnMessageAdd], |e: &PreEvent| {
            Ok(match e.field(HookField::Body).as_deref() {
                Some(body) if body.contains("spam") => HookDecision::reject("no spam here"),
                _ => HookDecision::Accept,
            })
        }),
    );
    let head = h.head();
    let (digest, _) = h.digest();
    let refused = refusal(h.exec(post(s, c, "buy spam now")));
    assert_eq!(
        refused,
        HookRefusal::Rejected {
            filter: "onMessageAdd",
            reason: "no spam here".to_string()
        }
    );
    assert_eq!(h.head(), head, "a rejected command moved the log head");
    assert_eq!(
        h.digest().0,
        digest,
        "a rejected command changed the read models"
    );
    // The next command is unaffected.
    h.exec(post(s, c, "fine")).unwrap();
    assert_eq!(h.head().next_position, head.next_position + 1);
    let m = h.engine().hook_metrics();
    assert_eq!((m.calls, m.rejected, m.accepted), (2, 1, 1));
}

#[test]
fn a_modifying_hook_stores_the_modified_fields_and_rebuild_agrees() {
    let (mut h, s, c) = setup();
    h.engine().set_pre_event_hook(
        HookScope::Service(s),
        PreEventHookConfig::new(
            [
                PreEventFilter::OnMessageAdd,
                PreEventFilter::OnConversationAdd,
            ],
            |e: &PreEvent| {
                Ok(HookDecision::Modify(match e.filter {
                    PreEventFilter::OnMessageAdd => Modifications::new()
                        .body(e.field(HookField::Body).unwrap_or_default().to_uppercase())
                        .attributes(r#"{"moderated":true}"#)
                        .author("moderator"),
                    _ => Modifications::new().friendly_name("named by the hook"),
                }))
            },
        ),
    );
    let outcome = h.exec(post(s, c, "quiet please")).unwrap();
    let expected = (
        "moderator".to_string(),
        Some("QUIET PLEASE".to_string()),
        r#"{"moderated":true}"#.to_string(),
    );
    assert_eq!(added(&outcome), expected);
    assert_eq!(added_in_log(&h, &outcome), expected);

    let created: CommandOutcome = h.exec(Command::from(CreateConversation::new(s))).unwrap();
    let friendly = created.events().find_map(|e| match e {
        Event::ConversationCreated { friendly_name, .. } => Some(friendly_name.clone()),
        _ => None,
    });
    assert_eq!(friendly, Some(Some("named by the hook".to_string())));

    // The log holds the modified commands' events: a refold agrees.
    let live = h.digest();
    h.rebuild();
    assert_eq!(h.digest(), live);
}

#[test]
fn a_modification_of_a_field_that_is_not_allowed_is_refused_and_writes_nothing() {
    let (mut h, s, c) = setup();
    let message = h.ok(PostMessage::new(s, c).author("alice").body("v1"));
    h.engine().set_pre_event_hook(
        HookScope::Service(s),
        PreEventHookConfig::new(
            [
                PreEventFilter::OnMessageUpdate,
                PreEventFilter::OnMessageAdd,
            ],
            |e: &PreEvent| {
                Ok(HookDecision::Modify(match e.filter {
                    // An edit keeps its author: not modifiable.
                    PreEventFilter::OnMessageUpdate => Modifications::new().body("ok").author("x"),
                    // A message has no friendly name.
                    _ => Modifications::new().friendly_name("x"),
                }))
            },
        ),
    );
    let head = h.head();
    let refused = refusal(h.exec(EditMessage::new(s, c, message.message_sid).body("v2")));
    assert_eq!(
        refused,
        HookRefusal::FieldNotModifiable {
            filter: "onMessageUpdate",
            command: "EditMessage",
            field: "Author",
            allowed: vec!["Body", "Attributes"],
        }
    );
    let refused = refusal(h.exec(post(s, c, "hi")));
    assert!(
        matches!(
            refused,
            HookRefusal::FieldNotModifiable {
                field: "FriendlyName",
                ..
            }
        ),
        "{refused:?}"
    );
    assert_eq!(h.head(), head, "a refused modification moved the log head");
}

#[test]
fn a_modified_command_is_validated_like_any_other() {
    let (mut h, s, c) = setup();
    h.engine().set_pre_event_hook(
        HookScope::Service(s),
        PreEventHookConfig::new([PreEventFilter::OnMessageAdd], |_: &PreEvent| {
            Ok(HookDecision::Modify(
                Modifications::new().attributes("not json"),
            ))
        }),
    );
    let head = h.head();
    let refused = h.exec(post(s, c, "hi"));
    assert!(
        matches!(refused, Err(CommandError::AttributesNotJson { .. })),
        "{refused:?}"
    );
    assert_eq!(h.head(), head);
}

/// A hook that blocks until released (or [`BLOCK_MAX`]), telling `entered`
/// each time it starts.
fn blocking_hook(
    entered: Sender<()>,
    release: Receiver<()>,
) -> impl Fn(&PreEvent) -> Result<HookDecision, HookFailure> + Send + Sync + 'static {
    move |_: &PreEvent| {
        let _ = entered.send(());
        let _ = release.recv_timeout(BLOCK_MAX);
        Ok(HookDecision::reject("answered too late to count"))
    }
}

#[test]
fn a_hook_past_its_deadline_fails_open_by_default_and_the_command_proceeds() {
    let (mut h, s, c) = setup();
    let (entered_tx, entered) = bounded(8);
    let (release, release_rx) = bounded(8);
    h.engine().set_pre_event_hook(
        HookScope::Service(s),
        PreEventHookConfig::new(
            [PreEventFilter::OnMessageAdd],
            blocking_hook(entered_tx, release_rx),
        )
        .timeout(SHORT_TIMEOUT),
    );
    let outcome = h.exec(post(s, c, "late hook")).unwrap();
    entered.recv_timeout(BLOCK_MAX).expect("the hook ran");
    assert_eq!(added(&outcome).1.as_deref(), Some("late hook"));
    assert_eq!(h.engine().hook_metrics().timed_out, 1);
    release.send(()).unwrap();
}

#[test]
fn a_hook_past_its_deadline_fails_closed_when_configured_and_writes_nothing() {
    let (mut h, s, c) = setup();
    let (entered_tx, entered) = bounded(8);
    let (release, release_rx) = bounded(8);
    h.engine().set_pre_event_hook(
        HookScope::Service(s),
        PreEventHookConfig::new(
            [PreEventFilter::OnMessageAdd],
            blocking_hook(entered_tx, release_rx),
        )
        .timeout(SHORT_TIMEOUT)
        .on_failure(FailurePolicy::Closed),
    );
    let head = h.head();
    let started = std::time::Instant::now();
    let refused = refusal(h.exec(post(s, c, "late hook")));
    let waited = started.elapsed();
    entered.recv_timeout(BLOCK_MAX).expect("the hook ran");
    assert_eq!(
        refused,
        HookRefusal::TimedOut {
            filter: "onMessageAdd",
            timeout_ms: SHORT_TIMEOUT.as_millis() as u64
        }
    );
    assert!(
        waited >= SHORT_TIMEOUT,
        "answered before the deadline: {waited:?}"
    );
    assert!(waited < BLOCK_MAX, "waited for the hook, not its deadline");
    assert_eq!(h.head(), head);
    release.send(()).unwrap();
}

#[test]
fn a_panicking_hook_is_a_failure_under_its_policy_and_the_engine_goes_on() {
    let (mut h, s, c) = setup();
    let panicking = |_: &PreEvent| -> Result<HookDecision, HookFailure> { panic!("hook bug") };
    h.engine().set_pre_event_hook(
        HookScope::Service(s),
        PreEventHookConfig::new([PreEventFilter::OnMessageAdd], panicking)
            .on_failure(FailurePolicy::Closed),
    );
    let head = h.head();
    let refused = refusal(h.exec(post(s, c, "boom")));
    match refused {
        HookRefusal::Failed { filter, message } => {
            assert_eq!(filter, "onMessageAdd");
            assert!(message.contains("hook bug"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.head(), head);

    // Fail-open: the same panic lets the command through.
    h.engine().set_pre_event_hook(
        HookScope::Service(s),
        PreEventHookConfig::new([PreEventFilter::OnMessageAdd], panicking),
    );
    let outcome = h.exec(post(s, c, "boom")).unwrap();
    assert_eq!(added(&outcome).1.as_deref(), Some("boom"));
    let m = h.engine().hook_metrics();
    assert_eq!((m.panicked, m.failed), (2, 2));

    // A hook that returns a failure is treated the same way.
    h.engine().set_pre_event_hook(
        HookScope::Service(s),
        PreEventHookConfig::new([PreEventFilter::OnMessageAdd], |_: &PreEvent| {
            Err(HookFailure::new("backend answered 503"))
        })
        .on_failure(FailurePolicy::Closed),
    );
    assert_eq!(
        refusal(h.exec(post(s, c, "down"))),
        HookRefusal::Failed {
            filter: "onMessageAdd",
            message: "backend answered 503".to_string()
        }
    );
}

#[test]
fn a_command_that_opts_out_runs_no_hook() {
    let (mut h, s, c) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    h.engine().set_pre_event_hook(
        HookScope::Engine,
        PreEventHookConfig::new(PreEventFilter::ALL, move |_: &PreEvent| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(HookDecision::reject("hooks ran"))
        }),
    );
    let outcome = h
        .engine()
        .execute_with(
            CommandEnvelope::new("opted out", post(s, c, "no hooks")),
            ExecuteOptions::default().without_pre_event_hooks(),
        )
        .unwrap();
    assert_eq!(added(&outcome).1.as_deref(), Some("no hooks"));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // Without the option the hook runs (and rejects).
    refusal(h.exec(post(s, c, "hooks")));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Removing it stops it.
    assert!(h.engine().remove_pre_event_hook(HookScope::Engine));
    h.exec(post(s, c, "hooks")).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_reactor_command_can_opt_out_of_pre_event_hooks() {
    // Twilio's REST actions trigger no pre-event webhooks unless asked: a
    // reactor's own effects need the same opt-out.
    let (mut h, s, c) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    h.engine().set_pre_event_hook(
        HookScope::Engine,
        PreEventHookConfig::new([PreEventFilter::OnMessageAdd], move |e: &PreEvent| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(match e.field(HookField::Body).as_deref() {
                Some(body) if body.starts_with("bot:") => HookDecision::reject("no bots"),
                _ => HookDecision::Accept,
            })
        }),
    );
    let results: Arc<Mutex<Vec<Result<(), String>>>> = Arc::new(Mutex::new(Vec::new()));
    let log = results.clone();
    let spec = ReactorSpec::new("replier")
        .filter(ReactorFilter::all().event_types(["message_added"]))
        .start(ReactorStart::Beginning);
    let handle = h
        .engine()
        .start_reactor(
            spec,
            reactor_fn(move |cx, record| {
                let Event::MessageAdded {
                    conversation_sid,
                    author,
                    ..
                } = &record.event
                else {
                    return Ok(());
                };
                if author != "alice" {
                    return Ok(());
                }
                let reply = |body: &str| {
                    PostMessage::new(record.header.service_sid, *conversation_sid)
                        .author("bot")
                        .body(body)
                };
                let mut log = log.lock().unwrap();
                log.push(
                    cx.execute(reply("bot: hooked"))
                        .map(drop)
                        .map_err(|e| e.to_string()),
                );
                log.push(
                    cx.execute_with(
                        reply("bot: opted out"),
                        ExecuteOptions::default().without_pre_event_hooks(),
                    )
                    .map(drop)
                    .map_err(|e| e.to_string()),
                );
                Ok(())
            }),
        )
        .unwrap();
    h.ok(post(s, c, "hello"));
    let head = h.head().next_position;
    assert!(handle.wait_for(head, std::time::Instant::now() + BLOCK_MAX));
    let results = results.lock().unwrap().clone();
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(
        results[0].as_ref().is_err_and(|e| e.contains("no bots")),
        "{results:?}"
    );
    assert_eq!(results[1], Ok(()));
    // The hook ran for alice's message and the hooked reply only.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let bodies: Vec<String> = h.engine().read(|rm| {
        let svc = rm.service(&s).unwrap();
        let conv = svc.conversation_by_sid(&c).unwrap();
        (0..conv.next_message_index())
            .filter_map(|i| rm.message_at(conv, i).unwrap())
            .filter_map(|m| m.body)
            .collect()
    });
    assert_eq!(bodies, ["hello", "bot: opted out"]);
}

#[test]
fn a_blocked_hook_for_one_service_does_not_stall_commands_of_another() {
    let mut h = Harness::new();
    let a = h.ok(CreateService::new("a"));
    let b = h.ok(CreateService::new("b"));
    let ca = h.ok(CreateConversation::new(a));
    let cb = h.ok(CreateConversation::new(b));
    let (entered_tx, entered) = bounded(8);
    let (release, release_rx) = bounded::<()>(8);
    h.engine().set_pre_event_hook(
        HookScope::Service(a),
        PreEventHookConfig::new([PreEventFilter::OnMessageAdd], move |_: &PreEvent| {
            let _ = entered_tx.send(());
            release_rx
                .recv_timeout(BLOCK_MAX)
                .map_err(|_| HookFailure::new("never released"))?;
            Ok(HookDecision::Accept)
        })
        .timeout(BLOCK_MAX * 2)
        .on_failure(FailurePolicy::Closed),
    );
    std::thread::scope(|scope| {
        let (done_a_tx, done_a) = bounded(1);
        let engine = h.engine();
        scope.spawn(move || {
            let r = engine.execute(CommandEnvelope::new(
                "a/1",
                PostMessage::new(a, ca)
                    .author("x")
                    .body("waits for its hook"),
            ));
            done_a_tx.send(r).unwrap();
        });
        entered.recv_timeout(BLOCK_MAX).expect("A's hook started");

        // B's command goes through the writer while A's hook is blocked.
        let posted_b = engine
            .execute(CommandEnvelope::new(
                "b/1",
                PostMessage::new(b, cb).author("y").body("not stalled"),
            ))
            .unwrap();
        assert_eq!(posted_b.conversation_sid, cb);
        assert!(
            done_a.try_recv().is_err(),
            "A's command finished although its hook is still blocked"
        );

        release.send(()).unwrap();
        let posted_a = done_a
            .recv_timeout(BLOCK_MAX)
            .expect("A's command finished once its hook answered")
            .unwrap();
        assert!(
            posted_a.position > posted_b.position,
            "A was appended before its hook answered"
        );
    });
}

#[test]
fn a_retried_command_id_stays_idempotent_whatever_the_hook_answers() {
    let (mut h, s, c) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    // Modifies differently each call: a retry must not apply it again.
    h.engine().set_pre_event_hook(
        HookScope::Service(s),
        PreEventHookConfig::new([PreEventFilter::OnMessageAdd], move |_: &PreEvent| {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(HookDecision::Modify(
                Modifications::new().body(format!("call {n}")),
            ))
        }),
    );
    let envelope = CommandEnvelope::new("retried", post(s, c, "original"));
    let first = h.engine().execute(envelope.clone()).unwrap();
    assert_eq!(added(&first).1.as_deref(), Some("call 1"));
    let head = h.head();

    let retry = h.engine().execute(envelope.clone()).unwrap();
    assert!(retry.deduplicated);
    assert_eq!(retry.records, first.records);
    assert_eq!(h.head(), head);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a retry ran the hook again"
    );
    assert_eq!(h.engine().hook_metrics().retries_skipped, 1);

    // The same id with another command is still a reused key.
    let other = h.engine().execute(CommandEnvelope::new(
        "retried",
        post(s, c, "something else"),
    ));
    assert!(
        matches!(other, Err(CommandError::IdempotencyKeyReused { .. })),
        "{other:?}"
    );

    // After a reopen (hooks registered again, as a host does) too.
    h.reopen();
    h.engine().set_pre_event_hook(
        HookScope::Service(s),
        PreEventHookConfig::new([PreEventFilter::OnMessageAdd], |_: &PreEvent| {
            Ok(HookDecision::reject("a retry must not reach the hook"))
        }),
    );
    let retry = h.engine().execute(envelope).unwrap();
    assert!(retry.deduplicated);
    assert_eq!(retry.records, first.records);
}

#[test]
fn two_racing_attempts_of_one_command_apply_once_although_the_hook_answers_each_differently() {
    let (h, s, c) = setup();
    // How many attempts are inside the hook; each waits (at most
    // BLOCK_MAX) until both are, so both are past the idempotency lookup
    // before either is appended.
    let inside = Arc::new((Mutex::new(0usize), Condvar::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    let (arrivals, counted) = (inside.clone(), calls.clone());
    h.engine().set_pre_event_hook(
        HookScope::Service(s),
        PreEventHookConfig::new([PreEventFilter::OnMessageAdd], move |_: &PreEvent| {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            let (count, changed) = &*arrivals;
            let mut count = count.lock().unwrap();
            *count += 1;
            changed.notify_all();
            let (count, waited) = changed
                .wait_timeout_while(count, BLOCK_MAX, |count| *count < 2)
                .unwrap();
            if waited.timed_out() {
                return Err(HookFailure::new(format!(
                    "only {} attempt(s) arrived",
                    *count
                )));
            }
            Ok(HookDecision::Modify(
                Modifications::new().body(format!("attempt {n}")),
            ))
        })
        .timeout(BLOCK_MAX * 2)
        .on_failure(FailurePolicy::Closed),
    );
    let envelope = CommandEnvelope::new("raced", post(s, c, "original"));
    let head = h.head();
    let outcomes: Vec<CommandOutcome> = std::thread::scope(|scope| {
        let attempts: Vec<_> = (0..2)
            .map(|_| {
                let (engine, envelope) = (h.engine(), envelope.clone());
                scope.spawn(move || engine.execute(envelope))
            })
            .collect();
        attempts
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect()
    });
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(h.head().next_position, head.next_position + 1);
    assert_eq!(
        outcomes.iter().filter(|o| o.deduplicated).count(),
        1,
        "one attempt applies, the other is its duplicate"
    );
    assert_eq!(outcomes[0].records, outcomes[1].records);
}

#[test]
fn a_service_hook_runs_before_the_engine_hook_and_other_services_see_neither() {
    let (mut h, s, c) = setup();
    let other = h.ok(CreateService::new("other"));
    let oc = h.ok(CreateConversation::new(other));
    h.engine().set_pre_event_hook(
        HookScope::Service(s),
        PreEventHookConfig::new([PreEventFilter::OnMessageAdd], |e: &PreEvent| {
            let body = e.field(HookField::Body).unwrap_or_default();
            Ok(HookDecision::Modify(
                Modifications::new().body(format!("{body} +service")),
            ))
        }),
    );
    h.engine().set_pre_event_hook(
        HookScope::Engine,
        PreEventHookConfig::new([PreEventFilter::OnMessageAdd], |e: &PreEvent| {
            let body = e.field(HookField::Body).unwrap_or_default();
            Ok(HookDecision::Modify(
                Modifications::new().body(format!("{body} +engine")),
            ))
        }),
    );
    let outcome = h.exec(post(s, c, "m")).unwrap();
    assert_eq!(added(&outcome).1.as_deref(), Some("m +service +engine"));
    let outcome = h
        .exec(Command::from(
            PostMessage::new(other, oc).author("z").body("m"),
        ))
        .unwrap();
    assert_eq!(added(&outcome).1.as_deref(), Some("m +engine"));
}

#[test]
fn each_participant_of_a_conversation_created_with_participants_is_its_own_pre_event() {
    let (mut h, s, _) = setup();
    h.engine().set_pre_event_hook(
        HookScope::Service(s),
        PreEventHookConfig::new(
            [
                PreEventFilter::OnParticipantAdd,
                PreEventFilter::OnConversationAdd,
            ],
            |e: &PreEvent| {
                Ok(match e.target {
                    PreEventTarget::Participant(1) => {
                        HookDecision::Modify(Modifications::new().attributes(r#"{"vip":true}"#))
                    }
                    PreEventTarget::Participant(_) | PreEventTarget::Command => {
                        HookDecision::Accept
                    }
                })
            },
        ),
    );
    let created: CommandOutcome = h
        .exec(Command::from(
            CreateConversationWithParticipants::new(s, ConversationSpec::default())
                .participant(ParticipantSpec::chat("p0"))
                .participant(ParticipantSpec::chat("p1")),
        ))
        .unwrap();
    let attributes: Vec<(String, String)> = created
        .events()
        .filter_map(|e| match e {
            Event::ParticipantAdded {
                kind: ParticipantKind::Chat { identity, .. },
                attributes,
                ..
            } => Some((identity.clone(), attributes.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        attributes,
        vec![
            ("p0".to_string(), "{}".to_string()),
            ("p1".to_string(), r#"{"vip":true}"#.to_string())
        ]
    );
    assert_eq!(h.engine().hook_metrics().calls, 3);
}

#[test]
fn execute_async_honours_hooks_without_blocking_its_executor() {
    let mut h = Harness::new();
    let a = h.ok(CreateService::new("a"));
    let b = h.ok(CreateService::new("b"));
    let ca = h.ok(CreateConversation::new(a));
    let cb = h.ok(CreateConversation::new(b));
    let (entered_tx, entered) = bounded(8);
    let (release, release_rx) = bounded::<()>(8);
    h.engine().set_pre_event_hook(
        HookScope::Service(a),
        PreEventHookConfig::new([PreEventFilter::OnMessageAdd], move |e: &PreEvent| {
            if e.field(HookField::Body).as_deref() == Some("reject me") {
                return Ok(HookDecision::reject("async rejection"));
            }
            let _ = entered_tx.send(());
            release_rx
                .recv_timeout(BLOCK_MAX)
                .map_err(|_| HookFailure::new("never released"))?;
            Ok(HookDecision::Modify(
                Modifications::new().body("modified async"),
            ))
        })
        .timeout(BLOCK_MAX * 2)
        .on_failure(FailurePolicy::Closed),
    );
    // One thread runs every task: a hook run on it would stop B's task.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = h.engine();
    runtime.block_on(async {
        let head = engine.log().head();
        let refused = engine
            .execute_async(CommandEnvelope::new(
                "a/rejected",
                PostMessage::new(a, ca).author("x").body("reject me"),
            ))
            .await;
        assert_eq!(
            refusal(refused),
            HookRefusal::Rejected {
                filter: "onMessageAdd",
                reason: "async rejection".to_string()
            }
        );
        assert_eq!(engine.log().head(), head);

        let post_a = engine.execute_async(CommandEnvelope::new(
            "a/1",
            Command::from(PostMessage::new(a, ca).author("x").body("original")),
        ));
        let post_b = async {
            // Runs on the same thread while A's hook is blocked.
            tokio::task::spawn_blocking({
                let entered = entered.clone();
                move || entered.recv_timeout(BLOCK_MAX)
            })
            .await
            .unwrap()
            .expect("A's hook started");
            let posted = engine
                .execute_async(CommandEnvelope::new(
                    "b/1",
                    PostMessage::new(b, cb).author("y").body("not blocked"),
                ))
                .await
                .unwrap();
            release.send(()).unwrap();
            posted
        };
        let (posted_a, posted_b) =
            tokio::time::timeout(BLOCK_MAX, async { tokio::join!(post_a, post_b) })
                .await
                .expect("both commands finished");
        let posted_a = posted_a.unwrap();
        assert_eq!(added(&posted_a).1.as_deref(), Some("modified async"));
        assert!(posted_a.first_position > posted_b.position);
    });
}

#[test]
fn an_inbound_message_fires_on_message_add_and_only_its_body_may_change() {
    let mut h = Harness::new();
    let s = h.ok(CreateService::new("inbound"));
    let proxy = "+15559870000";
    h.ok(
        CreateAddressConfiguration::new(s, AddressType::Sms, proxy).auto_creation(AutoCreation {
            enabled: true,
            conversation_service_sid: None,
            ..AutoCreation::default()
        }),
    );
    h.engine().set_pre_event_hook(
        HookScope::Service(s),
        PreEventHookConfig::new([PreEventFilter::OnMessageAdd], |e: &PreEvent| {
            let body = e.field(HookField::Body).unwrap_or_default();
            Ok(HookDecision::Modify(if body.contains("author") {
                Modifications::new().author("someone else")
            } else {
                Modifications::new().body(body.replace("4111", "****"))
            }))
        }),
    );
    let inbound =
        |body: &str| ReceiveInbound::new(s, AddressType::Sms, "+15551230001", proxy).body(body);
    let outcome = h
        .engine()
        .receive_inbound("SM-1", inbound("my card is 4111"))
        .unwrap();
    let (author, body, _) = added(&outcome);
    assert_eq!(author, "+15551230001");
    assert_eq!(body.as_deref(), Some("my card is ****"));
    assert_eq!(
        added_in_log(&h, &outcome).1.as_deref(),
        Some("my card is ****")
    );

    let head = h.head();
    let refused = refusal(
        h.engine()
            .receive_inbound("SM-2", inbound("change my author")),
    );
    assert_eq!(
        refused,
        HookRefusal::FieldNotModifiable {
            filter: "onMessageAdd",
            command: "ReceiveInbound",
            field: "Author",
            allowed: vec!["Body"],
        }
    );
    assert_eq!(h.head(), head);
    // The gateway's retry of the first message is its first outcome.
    let retry = h
        .engine()
        .receive_inbound("SM-1", inbound("my card is 4111"))
        .unwrap();
    assert!(retry.deduplicated);
    assert_eq!(retry.records, outcome.records);
}

#[test]
fn the_engines_own_timer_moves_run_no_hook() {
    use engine_core::{Engine, TestClock};
    use events::limits::TIMER_INACTIVE_MICROS_MIN;

    const START_MICROS: u64 = 1_700_000_000_000_000;
    let dir = temp_dir();
    let clock = Arc::new(TestClock::new(START_MICROS));
    let engine = Engine::open(dir.path(), options().clock(clock.clone())).expect("open");
    let s = engine
        .execute(CreateService::new("timers").keyed("service"))
        .unwrap();
    let timers = Timers {
        inactive_micros: Some(TIMER_INACTIVE_MICROS_MIN),
        closed_micros: None,
    };
    let c = engine
        .execute(
            CreateConversation::with_spec(s, ConversationSpec::default().timers(timers))
                .keyed("conversation"),
        )
        .unwrap();
    engine.set_pre_event_hook(
        HookScope::Engine,
        PreEventHookConfig::new(PreEventFilter::ALL, |_: &PreEvent| {
            Ok(HookDecision::reject("no change gets past this hook"))
        }),
    );
    // A caller's change is vetted…
    refusal(
        engine.execute(
            UpdateConversation::new(s, c)
                .friendly_name("x")
                .keyed("rename"),
        ),
    );

    // …the timer's move is not.
    let due = START_MICROS + TIMER_INACTIVE_MICROS_MIN;
    clock.set(due);
    let deadline = std::time::Instant::now() + BLOCK_MAX;
    while engine.timer_metrics().checked_until_micros < due {
        assert!(
            std::time::Instant::now() < deadline,
            "the timer thread did not run"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let state = engine.read(|rm| {
        rm.get_conversation(&s, &ConversationRef::Sid(c))
            .expect("the conversation exists")
            .row()
            .state
    });
    assert_eq!(state, ConversationState::Inactive);
    assert_eq!(
        engine.hook_metrics().calls,
        1,
        "only the caller's rename ran the hook"
    );
}
