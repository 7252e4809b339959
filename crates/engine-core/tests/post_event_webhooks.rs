//! Post-event webhooks (`Engine::start_post_event_webhooks`) against a tiny
//! HTTP server on 127.0.0.1: Twilio's form fields and media descriptors, the
//! idempotency token, the signature (checked by our own computation and,
//! where python3 and PyPI are reachable, by the official `twilio` package's
//! `RequestValidator`), retries until the receiver answers 2xx, parking,
//! filters, GET, the configuration across a restart, and a bad
//! configuration refused with nothing written.
#![cfg(feature = "webhook")]

mod fanout_support;
mod http_support;

use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use engine_core::webhooks::{twilio_signature, IDEMPOTENCY_HEADER, SIGNATURE_HEADER};
use engine_core::{CommandError, EngineOptions, ReactorHandle, ReactorStart, WebhookOptions};
use events::*;
use fanout_support::*;
use http_support::*;
use projections::ConversationWebhookConfig;

const SECRET: &str = "webhook-secret-✓";

/// Retries quickly, so a test of three attempts takes milliseconds.
fn fast_retries() -> WebhookOptions {
    WebhookOptions::default()
        .timeout(Duration::from_secs(5))
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
}

/// Configures the fixture's service to post `filters` to `url`, signed.
fn configure(f: &Fixture, url: &str, method: WebhookMethod, filters: &[&str]) {
    f.run(
        UpdateServiceWebhooks::new(f.service)
            .post_webhook_url(url)
            .method(method)
            .filters(filters.iter().copied())
            .signing_secret(SECRET),
    );
}

/// Waits until the reactor has handled everything committed so far.
fn settle(f: &Fixture, handle: &ReactorHandle) {
    assert!(
        handle.wait_for(f.head(), Instant::now() + WAIT),
        "the webhook reactor did not catch up: {:?}",
        handle.metrics()
    );
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The URL the request was made to, as the receiver sees it: the
/// configured URL's origin and the request target.
fn called_url(url: &str, seen: &Seen) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let authority = rest.split('/').next().unwrap();
    format!("http://{authority}{}", seen.path)
}

#[test]
fn a_message_posts_a_signed_form_with_twilios_fields_and_media() {
    let (url, seen) = serve(vec![(200, "")]);
    let f = open(EngineOptions::default());
    configure(&f, &url, WebhookMethod::Post, &["onMessageAdded"]);
    let handle = f.engine.start_post_event_webhooks(fast_retries()).unwrap();
    let c = f.conversation();
    let media = Media {
        sid: MediaSid::derive(b"photo"),
        content_type: "image/jpeg".into(),
        filename: Some("cat & dog.jpg".into()),
        size: 12_345,
    };
    let posted = f.run(
        PostMessage::new(f.service, c)
            .author("alice")
            .body("hello & welcome, ü")
            .media(media.clone()),
    );
    settle(&f, &handle);

    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 1, "one webhook");
    let request = &seen[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/outbound");
    assert_eq!(
        header(request, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let params = form_decode(&request.body);
    assert_eq!(param(&params, "EventType"), Some("onMessageAdded"));
    assert_eq!(param(&params, "ConversationSid"), Some(&*c.to_string()));
    assert_eq!(
        param(&params, "MessageSid"),
        Some(&*posted.message_sid.to_string())
    );
    assert_eq!(param(&params, "Index"), Some("0"));
    assert_eq!(param(&params, "Author"), Some("alice"));
    assert_eq!(param(&params, "Body"), Some("hello & welcome, ü"));
    assert_eq!(param(&params, "Attributes"), Some("{}"));
    assert_eq!(
        param(&params, "ChatServiceSid"),
        Some(&*f.service.to_string())
    );
    assert_eq!(param(&params, "Source"), Some("API"));
    assert_eq!(param(&params, "RetryCount"), Some("0"));
    let date = param(&params, "DateCreated").unwrap();
    assert!(date.ends_with('Z') && date.len() == 24, "{date}");
    let media_json: serde_json::Value =
        serde_json::from_str(param(&params, "Media").unwrap()).unwrap();
    assert_eq!(
        media_json,
        serde_json::json!([{
            "Sid": media.sid.to_string(),
            "ContentType": "image/jpeg",
            "Filename": "cat & dog.jpg",
            "Size": 12_345,
        }])
    );
    // The token names the record: service and log position.
    let position = f.engine.log().head().next_position.checked_sub(1).unwrap();
    assert_eq!(
        header(request, &IDEMPOTENCY_HEADER.to_ascii_lowercase()),
        Some(&*format!("{}-{position}-onMessageAdded", f.service))
    );
    assert_eq!(
        header(request, &SIGNATURE_HEADER.to_ascii_lowercase()),
        Some(&*twilio_signature(
            SECRET,
            &called_url(&url, request),
            &params
        ))
    );
}

#[test]
fn a_failing_receiver_gets_retries_with_one_token_and_finally_the_request() {
    let (url, seen) = serve(vec![(500, "down"), (503, "busy"), (200, "")]);
    let f = open(EngineOptions::default());
    configure(&f, &url, WebhookMethod::Post, &["onParticipantAdded"]);
    let handle = f.engine.start_post_event_webhooks(fast_retries()).unwrap();
    let c = f.conversation();
    let p = f.join(c, "bob");
    settle(&f, &handle);

    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 3, "two failures, then success");
    let token = IDEMPOTENCY_HEADER.to_ascii_lowercase();
    let signature = SIGNATURE_HEADER.to_ascii_lowercase();
    for (retry, request) in seen.iter().enumerate() {
        assert_eq!(header(request, &token), header(&seen[0], &token));
        let params = form_decode(&request.body);
        assert_eq!(param(&params, "EventType"), Some("onParticipantAdded"));
        assert_eq!(param(&params, "ParticipantSid"), Some(&*p.to_string()));
        assert_eq!(param(&params, "Identity"), Some("bob"));
        assert_eq!(param(&params, "RetryCount"), Some(&*retry.to_string()));
        assert_eq!(
            header(request, &signature),
            Some(&*twilio_signature(
                SECRET,
                &called_url(&url, request),
                &params
            ))
        );
    }
    let metrics = handle.metrics();
    assert_eq!(metrics.failed_attempts, 2);
    assert_eq!(metrics.parked, 0);
}

#[test]
fn a_receiver_that_keeps_failing_gets_the_record_parked_and_redriven() {
    let (url, seen) = serve(vec![(500, "down"), (500, "down"), (204, "")]);
    let f = open(EngineOptions::default());
    configure(&f, &url, WebhookMethod::Post, &["onConversationAdded"]);
    let handle = f
        .engine
        .start_post_event_webhooks(fast_retries().attempts_max(2))
        .unwrap();
    f.conversation();
    let position = f.head() - 1;
    settle(&f, &handle);
    let parked = handle.parked().unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].position, position);
    assert!(parked[0].error.contains("500"), "{}", parked[0].error);

    handle.redrive(position).unwrap();
    settle(&f, &handle);
    assert!(handle.parked().unwrap().is_empty());
    assert_eq!(seen.lock().len(), 3);
}

#[test]
fn only_the_configured_filters_fire() {
    let (url, seen) = serve(vec![(200, ""), (200, ""), (200, "")]);
    let f = open(EngineOptions::default());
    configure(&f, &url, WebhookMethod::Post, &["onMessageUpdated"]);
    let handle = f.engine.start_post_event_webhooks(fast_retries()).unwrap();
    let c = f.conversation();
    f.join(c, "carol");
    let m = f.post(c, "carol", "first").message_sid;
    f.run(EditMessage::new(f.service, c, m).body("second"));
    f.post(c, "carol", "third");
    settle(&f, &handle);

    let seen = seen.lock().clone();
    let types: Vec<String> = seen
        .iter()
        .map(|s| {
            param(&form_decode(&s.body), "EventType")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(types, ["onMessageUpdated"]);
    assert_eq!(param(&form_decode(&seen[0].body), "Body"), Some("second"));
}

#[test]
fn a_state_change_fires_on_conversation_state_updated_with_the_state_before() {
    let (url, seen) = serve(vec![(200, ""), (200, ""), (200, "")]);
    let f = open(EngineOptions::default());
    let c = f.conversation();
    configure(
        &f,
        &url,
        WebhookMethod::Post,
        &["onConversationStateUpdated"],
    );
    let handle = f.engine.start_post_event_webhooks(fast_retries()).unwrap();
    // The first update after start reads the state before from the log,
    // the later ones from the reactor's cache; a rename is no state change.
    f.run(UpdateConversation::new(f.service, c).state(ConversationState::Inactive));
    f.run(UpdateConversation::new(f.service, c).friendly_name("renamed"));
    f.run(UpdateConversation::new(f.service, c).state(ConversationState::Closed));
    settle(&f, &handle);

    let seen = seen.lock().clone();
    let changes: Vec<(String, String, String)> = seen
        .iter()
        .map(|s| {
            let p = form_decode(&s.body);
            assert_eq!(param(&p, "ConversationSid"), Some(&*c.to_string()));
            assert!(header(s, &IDEMPOTENCY_HEADER.to_ascii_lowercase())
                .unwrap()
                .ends_with("-onConversationStateUpdated"));
            (
                param(&p, "EventType").unwrap().to_string(),
                param(&p, "StateFrom").unwrap().to_string(),
                param(&p, "StateTo").unwrap().to_string(),
            )
        })
        .collect();
    let expected = |from: &str, to: &str| {
        (
            "onConversationStateUpdated".to_string(),
            from.to_string(),
            to.to_string(),
        )
    };
    assert_eq!(
        changes,
        [
            expected("active", "inactive"),
            expected("inactive", "closed")
        ]
    );
}

#[test]
fn a_trigger_fires_on_its_keywords_only() {
    let (url, seen) = serve(vec![(200, ""), (200, ""), (200, "")]);
    let f = open(EngineOptions::default());
    // The service's secret signs conversation-scoped webhooks too; the
    // service itself has no post-event URL.
    f.run(UpdateServiceWebhooks::new(f.service).signing_secret(SECRET));
    let c = f.conversation();
    let other = f.conversation();
    let trigger = f.run(
        CreateConversationWebhook::new(f.service, c, WebhookTarget::Trigger, url.clone())
            .triggers(["support", "Hilfe"]),
    );
    let handle = f.engine.start_post_event_webhooks(fast_retries()).unwrap();
    f.post(c, "customer", "hello there");
    f.post(c, "customer", "I need SUPPORT!");
    f.post(other, "customer", "support");
    f.post(c, "customer", "supportive words");
    f.post(c, "customer", "hilfe bitte");
    settle(&f, &handle);

    let requests = seen.lock().clone();
    let bodies: Vec<String> = requests
        .iter()
        .map(|s| {
            let p = form_decode(&s.body);
            assert_eq!(param(&p, "EventType"), Some("onMessageAdded"));
            assert_eq!(param(&p, "ConversationSid"), Some(&*c.to_string()));
            assert!(header(s, &IDEMPOTENCY_HEADER.to_ascii_lowercase())
                .unwrap()
                .ends_with(&format!("-onMessageAdded-{trigger}")));
            assert_eq!(
                header(s, &SIGNATURE_HEADER.to_ascii_lowercase()),
                Some(&*twilio_signature(SECRET, &called_url(&url, s), &p))
            );
            param(&p, "Body").unwrap().to_string()
        })
        .collect();
    assert_eq!(bodies, ["I need SUPPORT!", "hilfe bitte"]);

    // Deleted, it fires no more.
    f.run(DeleteConversationWebhook::new(f.service, c, trigger));
    f.post(c, "customer", "support");
    settle(&f, &handle);
    assert_eq!(seen.lock().len(), 2);
}

#[test]
fn a_conversation_webhook_gets_its_conversations_filtered_events() {
    let (url, seen) = serve(vec![(200, ""), (200, ""), (200, "")]);
    let f = open(EngineOptions::default());
    let c = f.conversation();
    let other = f.conversation();
    let hook = f.run(
        CreateConversationWebhook::new(f.service, c, WebhookTarget::Webhook, url.clone())
            .method(WebhookMethod::Get)
            .filters(["onParticipantAdded"]),
    );
    let stored = f.engine.read(|rm| {
        let conv = rm
            .service(&f.service)
            .unwrap()
            .conversation_by_sid(&c)
            .unwrap();
        conv.webhooks().get(&hook).map(|row| row.webhook.clone())
    });
    assert_eq!(
        stored,
        Some(ConversationWebhookConfig::Url(ConversationWebhook {
            target: WebhookTarget::Webhook,
            url: url.clone(),
            method: WebhookMethod::Get,
            filters: vec![WebhookFilter::OnParticipantAdded],
            triggers: Vec::new(),
        }))
    );
    let handle = f.engine.start_post_event_webhooks(fast_retries()).unwrap();
    f.post(c, "system", "not a participant event");
    f.join(other, "erin");
    let p = f.join(c, "frank");
    settle(&f, &handle);

    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    // Unsigned: the service has no secret.
    assert_eq!(
        header(&seen[0], &SIGNATURE_HEADER.to_ascii_lowercase()),
        None
    );
    let query = form_decode(seen[0].path.split_once('?').unwrap().1);
    assert_eq!(param(&query, "EventType"), Some("onParticipantAdded"));
    assert_eq!(param(&query, "ParticipantSid"), Some(&*p.to_string()));
}

#[test]
fn a_bad_conversation_webhook_is_a_typed_error_and_writes_nothing() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    let head = f.head();
    let url = "https://example.com/w";
    let webhook = || CreateConversationWebhook::new(f.service, c, WebhookTarget::Webhook, url);
    let trigger = || CreateConversationWebhook::new(f.service, c, WebhookTarget::Trigger, url);
    let cases: Vec<(CreateConversationWebhook, &str)> = vec![
        (webhook(), "invalid"),
        (webhook().filters(["onMessageAdd"]), "unknown"),
        (
            webhook().filters(["onMessageAdded"]).triggers(["x"]),
            "invalid",
        ),
        (trigger(), "invalid"),
        (trigger().triggers(["two words"]), "invalid"),
        (
            trigger().triggers(["ok"]).filters(["onMessageAdded"]),
            "invalid",
        ),
        (
            trigger().triggers(["k".repeat(limits::WEBHOOK_TRIGGER_CHARS_MAX + 1)]),
            "too long",
        ),
        (
            trigger()
                .triggers((0..=limits::WEBHOOK_TRIGGERS_PER_WEBHOOK_MAX).map(|i| format!("k{i}"))),
            "too long",
        ),
        (
            CreateConversationWebhook::new(f.service, c, WebhookTarget::Trigger, "mailto:x")
                .triggers(["ok"]),
            "invalid",
        ),
    ];
    assert_refused(&f, cases);
    let missing = WebhookSid::derive(b"none");
    assert!(matches!(
        f.try_run(DeleteConversationWebhook::new(f.service, c, missing)),
        Err(CommandError::NotFound { .. })
    ));
    assert_eq!(f.head(), head, "nothing written");
    // The limit per conversation.
    for _ in 0..limits::CONVERSATION_WEBHOOKS_PER_CONVERSATION_MAX {
        f.run(trigger().triggers(["ok"]));
    }
    let head = f.head();
    assert!(matches!(
        f.try_run(trigger().triggers(["ok"])),
        Err(CommandError::TooLong { .. })
    ));
    assert_eq!(f.head(), head);
}

#[test]
fn get_puts_the_payload_in_the_query_and_signs_the_whole_url() {
    let (url, seen) = serve(vec![(200, "")]);
    let f = open(EngineOptions::default());
    let with_query = format!("{url}?tenant=a%20b");
    configure(
        &f,
        &with_query,
        WebhookMethod::Get,
        &["onConversationAdded"],
    );
    let handle = f.engine.start_post_event_webhooks(fast_retries()).unwrap();
    let c = f.conversation();
    settle(&f, &handle);

    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.method, "GET");
    let (path, query) = request.path.split_once('?').unwrap();
    assert_eq!(path, "/outbound");
    let params = form_decode(query);
    assert_eq!(param(&params, "tenant"), Some("a b"));
    assert_eq!(param(&params, "EventType"), Some("onConversationAdded"));
    assert_eq!(param(&params, "ConversationSid"), Some(&*c.to_string()));
    assert_eq!(param(&params, "State"), Some("active"));
    let none: &[(&str, &str)] = &[];
    assert_eq!(
        header(request, &SIGNATURE_HEADER.to_ascii_lowercase()),
        Some(&*twilio_signature(SECRET, &called_url(&url, request), none))
    );
}

#[test]
fn the_configuration_survives_a_restart_and_is_used_after_it() {
    let (url, seen) = serve(vec![(200, "")]);
    let f = open(EngineOptions::default());
    configure(
        &f,
        &url,
        WebhookMethod::Post,
        &["onUserAdded", "onMessageAdded"],
    );
    let expected = ServiceWebhooks {
        post_webhook_url: Some(url.clone()),
        method: WebhookMethod::Post,
        // Stored in declaration order.
        filters: vec![WebhookFilter::OnMessageAdded, WebhookFilter::OnUserAdded],
        signing_secret: Some(SECRET.into()),
    };
    let read = |f: &Fixture| {
        f.engine
            .read(|rm| rm.service(&f.service).unwrap().webhooks().clone())
    };
    assert_eq!(read(&f), expected);
    let f = f.restart(EngineOptions::default());
    assert_eq!(read(&f), expected);
    // A fold of the log gives the live read models, rows included.
    let folded =
        engine_core::fold_records(f.engine.log().read_range(0..f.head()), &mut |_| {}).unwrap();
    assert_eq!(
        f.engine.live_digest().unwrap(),
        engine_core::state_digest(&folded).unwrap()
    );
    assert!(f.engine.read(|rm| *rm == folded));

    let handle = f.engine.start_post_event_webhooks(fast_retries()).unwrap();
    f.run(CreateUser::new(f.service, "dave"));
    settle(&f, &handle);
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 1);
    let params = form_decode(&seen[0].body);
    assert_eq!(param(&params, "EventType"), Some("onUserAdded"));
    assert_eq!(param(&params, "Identity"), Some("dave"));
}

#[test]
fn a_bad_configuration_is_a_typed_error_and_writes_nothing() {
    let f = open(EngineOptions::default());
    let head = f.head();
    let base = || UpdateServiceWebhooks::new(f.service).post_webhook_url("https://example.com/h");
    let cases: Vec<(UpdateServiceWebhooks, &str)> = vec![
        (
            base().filters(["onMessageAdded", "onMessageAdd"]),
            "unknown",
        ),
        (base().filters(["onmessageadded"]), "unknown"),
        (
            UpdateServiceWebhooks::new(f.service).post_webhook_url("ftp://example.com/h"),
            "invalid",
        ),
        (
            UpdateServiceWebhooks::new(f.service).post_webhook_url("https:///path"),
            "invalid",
        ),
        (
            UpdateServiceWebhooks::new(f.service).post_webhook_url("http://a b/"),
            "invalid",
        ),
        (
            UpdateServiceWebhooks::new(f.service).post_webhook_url(format!(
                "https://example.com/{}",
                "a".repeat(limits::WEBHOOK_URL_CHARS_MAX)
            )),
            "too long",
        ),
        (
            base().signing_secret("s".repeat(limits::WEBHOOK_SIGNING_SECRET_BYTES_MAX + 1)),
            "too long",
        ),
        (base().signing_secret(""), "invalid"),
    ];
    assert_refused(&f, cases);
    assert_eq!(f.head(), head, "nothing written");
    let webhooks = f
        .engine
        .read(|rm| rm.service(&f.service).unwrap().webhooks().clone());
    assert_eq!(webhooks, ServiceWebhooks::default());
}

/// How long creating the virtualenv, installing the package or running
/// the validator may take, in seconds.
const PYTHON_STEP_SECS_MAX: u64 = 300;

/// Runs `program` with `args`, output discarded; whether it exited with
/// success, or `Err` if it could not run or outlived
/// [`PYTHON_STEP_SECS_MAX`].
fn run_bounded(program: &Path, args: &[&str]) -> Result<bool, String> {
    let mut child = Process::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{} could not run: {e}", program.display()))?;
    let deadline = Instant::now() + Duration::from_secs(PYTHON_STEP_SECS_MAX);
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status.success());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{} timed out", program.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs each command, which must be refused with the error `kind` names
/// (`unknown`: an unknown filter, `invalid`, `too long`).
fn assert_refused<C: engine_core::TypedCommand + Clone + std::fmt::Debug>(
    f: &Fixture,
    cases: Vec<(C, &str)>,
) {
    for (command, kind) in cases {
        let Err(err) = f.try_run(command.clone()) else {
            panic!("{command:?} was accepted");
        };
        let matches = match kind {
            "unknown" => matches!(err, CommandError::UnknownWebhookFilter { .. }),
            "invalid" => matches!(err, CommandError::Invalid { .. }),
            "too long" => matches!(err, CommandError::TooLong { .. }),
            _ => unreachable!("no error kind {kind:?}"),
        };
        assert!(matches, "{command:?}: {err:?}");
    }
}

/// A virtualenv with the official `twilio` package, made once per target
/// directory; `Err` with the reason when python3 or PyPI is unavailable.
fn twilio_python() -> Result<PathBuf, String> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("twilio-venv");
    let python = venv.join("bin/python");
    let ready = venv.join("installed");
    if ready.exists() {
        return Ok(python);
    }
    let step = |program: &Path, args: &[&str]| match run_bounded(program, args)? {
        true => Ok(()),
        false => Err(format!("{} {args:?} failed", program.display())),
    };
    step(
        Path::new("python3"),
        &["-m", "venv", venv.to_str().unwrap()],
    )?;
    step(
        &venv.join("bin/pip"),
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "twilio",
        ],
    )?;
    std::fs::write(&ready, b"").map_err(|e| e.to_string())?;
    Ok(python)
}

#[test]
fn twilios_own_request_validator_accepts_the_signatures() {
    let python = match twilio_python() {
        Ok(python) => python,
        Err(reason) => {
            println!("skipped: no official twilio package ({reason})");
            return;
        }
    };
    let (post_url, post_seen) = serve(vec![(200, "")]);
    let (get_url, get_seen) = serve(vec![(200, "")]);
    let f = open(EngineOptions::default());
    configure(&f, &post_url, WebhookMethod::Post, &["onMessageAdded"]);
    let handle = f.engine.start_post_event_webhooks(fast_retries()).unwrap();
    let c = f.conversation();
    f.post(c, "zoë", "Ünïcode + symbols & = ?");
    settle(&f, &handle);
    configure(
        &f,
        &format!("{get_url}?x=1"),
        WebhookMethod::Get,
        &["onMessageAdded"],
    );
    f.post(c, "zoë", "over GET");
    settle(&f, &handle);

    let script = r#"
import sys
from urllib.parse import parse_qsl
from twilio.request_validator import RequestValidator
secret, url, body, signature = sys.argv[1:5]
params = dict(parse_qsl(body, keep_blank_values=True))
sys.exit(0 if RequestValidator(secret).validate(url, params, signature) else 1)
"#;
    let post = post_seen.lock()[0].clone();
    let get = get_seen.lock()[0].clone();
    for (url, request, body) in [(&post_url, &post, post.body.as_str()), (&get_url, &get, "")] {
        let signature = header(request, &SIGNATURE_HEADER.to_ascii_lowercase()).unwrap();
        let called = called_url(url, request);
        let accepted = run_bounded(&python, &["-c", script, SECRET, &called, body, signature]);
        assert_eq!(accepted, Ok(true), "RequestValidator refused {request:?}");
        // And another secret is refused, so the check can fail.
        let accepted = run_bounded(&python, &["-c", script, "wrong", &called, body, signature]);
        assert_eq!(accepted, Ok(false));
    }
}

/// The requests' (EventType, token suffix after the event type).
fn events_and_suffixes(seen: &[Seen]) -> Vec<(String, String)> {
    seen.iter()
        .map(|s| {
            let p = form_decode(&s.body);
            let event = param(&p, "EventType").unwrap().to_string();
            let token = header(s, &IDEMPOTENCY_HEADER.to_ascii_lowercase()).unwrap();
            let suffix = token.split_once(event.as_str()).unwrap().1.to_string();
            (event, suffix)
        })
        .collect()
}

/// The service's SMS number for autocreation.
const NUMBER: &str = "+15559870000";

#[test]
fn autocreation_of_type_webhook_gives_each_new_conversation_the_configured_webhook() {
    let (url, seen) = serve(vec![(200, ""), (200, ""), (200, "")]);
    let f = open(EngineOptions::default());
    let auto = AutoCreation {
        webhook_method: WebhookMethod::Post,
        ..AutoCreation::webhook(
            url.clone(),
            [
                WebhookFilter::OnMessageAdded,
                WebhookFilter::OnParticipantAdded,
                // Repeats are dropped.
                WebhookFilter::OnMessageAdded,
            ],
        )
    };
    f.run(CreateAddressConfiguration::new(f.service, AddressType::Sms, NUMBER).auto_creation(auto));
    let handle = f.engine.start_post_event_webhooks(fast_retries()).unwrap();
    let text = |id: &str, body: &str| {
        let inbound =
            ReceiveInbound::new(f.service, AddressType::Sms, "+15550000001", NUMBER).body(body);
        f.engine.receive_inbound(id, inbound).unwrap()
    };
    let first = text("SM1", "hello");
    let c = first.message().unwrap().conversation_sid;
    // The webhook is part of the autocreating command, before the
    // participant and the message, so it sees both.
    let types: Vec<&str> = first.events().map(|e| e.type_name()).collect();
    assert_eq!(
        types,
        [
            "conversation_created",
            "conversation_webhook_created",
            "participant_added",
            "message_added"
        ]
    );
    let hook = f.engine.read(|rm| {
        let conv = rm.service(&f.service)?.conversation_by_sid(&c)?;
        conv.webhooks()
            .iter()
            .map(|(sid, row)| (*sid, row.webhook.clone()))
            .next()
    });
    let (hook_sid, config) = hook.expect("the conversation has its webhook");
    assert_eq!(
        config,
        ConversationWebhookConfig::Url(ConversationWebhook {
            target: WebhookTarget::Webhook,
            url: url.clone(),
            method: WebhookMethod::Post,
            filters: vec![
                WebhookFilter::OnMessageAdded,
                WebhookFilter::OnParticipantAdded
            ],
            triggers: Vec::new(),
        })
    );
    assert_eq!(config.target_name(), "webhook");
    assert!(config.studio().is_none());
    assert_eq!(config.url().map(|w| w.url.as_str()), Some(url.as_str()));
    text("SM2", "again");
    settle(&f, &handle);
    let suffix = format!("-{hook_sid}");
    assert_eq!(
        events_and_suffixes(&seen.lock()),
        [
            ("onParticipantAdded".to_string(), suffix.clone()),
            ("onMessageAdded".to_string(), suffix.clone()),
            ("onMessageAdded".to_string(), suffix),
        ]
    );
    for s in seen.lock().iter() {
        let p = form_decode(&s.body);
        assert_eq!(param(&p, "ConversationSid"), Some(&*c.to_string()));
    }
}

#[test]
fn a_bad_autocreation_is_a_typed_error_and_writes_nothing() {
    let f = open(EngineOptions::default());
    let head = f.head();
    let url = "https://example.com/auto";
    let flow: FlowSid = "FW0123456789abcdef0123456789abcdef".parse().unwrap();
    let filters = [WebhookFilter::OnMessageAdded];
    let webhook = || AutoCreation::webhook(url, filters);
    let studio = || AutoCreation::studio(flow);
    let bad: Vec<AutoCreation> = vec![
        AutoCreation {
            webhook_url: None,
            ..webhook()
        },
        AutoCreation {
            webhook_url: Some("mailto:x".into()),
            ..webhook()
        },
        AutoCreation {
            webhook_filters: Vec::new(),
            ..webhook()
        },
        AutoCreation {
            studio_flow_sid: Some(flow),
            ..webhook()
        },
        AutoCreation {
            studio_flow_sid: None,
            ..studio()
        },
        AutoCreation {
            studio_retry_count: Some(limits::AUTO_CREATION_STUDIO_RETRIES_PER_CALL_MAX + 1),
            ..studio()
        },
        AutoCreation {
            webhook_filters: filters.to_vec(),
            ..studio()
        },
        AutoCreation {
            studio_retry_count: Some(0),
            ..AutoCreation::enabled()
        },
        AutoCreation {
            conversation_service_sid: Some(ServiceSid::derive(b"elsewhere")),
            ..AutoCreation::enabled()
        },
    ];
    let config = f.run(CreateAddressConfiguration::new(
        f.service,
        AddressType::Sms,
        NUMBER,
    ));
    let head_after_create = f.head();
    assert_eq!(head_after_create, head + 1);
    for a in bad {
        let create = CreateAddressConfiguration::new(f.service, AddressType::Sms, "+15550009999")
            .auto_creation(a.clone());
        let update = UpdateAddressConfiguration::new(f.service, config).auto_creation(a);
        assert_refused(&f, vec![(create, "invalid")]);
        assert_refused(&f, vec![(update, "invalid")]);
    }
    assert_eq!(f.head(), head_after_create, "nothing written");
    // The good ones, each type; a URL with another type than webhook is
    // stored, not called.
    for a in [
        AutoCreation::enabled(),
        AutoCreation {
            webhook_url: Some(url.into()),
            ..AutoCreation::enabled()
        },
        webhook(),
        AutoCreation {
            studio_retry_count: Some(limits::AUTO_CREATION_STUDIO_RETRIES_PER_CALL_MAX),
            ..studio()
        },
    ] {
        f.run(UpdateAddressConfiguration::new(f.service, config).auto_creation(a.clone()));
        let stored = f.engine.read(|rm| {
            rm.service(&f.service)
                .unwrap()
                .address_configuration(&config)
                .unwrap()
                .auto_creation
                .clone()
        });
        assert_eq!(stored, a);
    }
}

#[test]
fn on_message_updated_carries_the_author_and_post_time_even_once_deleted() {
    let (url, seen) = serve(vec![(200, ""); 4]);
    let f = open(EngineOptions::default());
    configure(
        &f,
        &url,
        WebhookMethod::Post,
        &["onMessageAdded", "onMessageUpdated"],
    );
    let c = f.conversation();
    let kept = f.post(c, "alice", "first");
    let gone = f.post(c, "bob", "second");
    let edit = |m: MessageSid, body: &str| {
        f.run(EditMessage::new(f.service, c, m).body(body));
    };
    edit(kept.message_sid, "first, edited");
    edit(gone.message_sid, "second, edited");
    // Deleted before the webhook reactor sees its edit: the author and
    // post time come from the log.
    f.run(DeleteMessage::new(f.service, c, gone.message_sid));
    let handle = f
        .engine
        .start_post_event_webhooks(fast_retries().start(ReactorStart::Beginning))
        .unwrap();
    settle(&f, &handle);

    let seen: Vec<Vec<(String, String)>> =
        seen.lock().iter().map(|s| form_decode(&s.body)).collect();
    assert_eq!(seen.len(), 4);
    let (added, updated) = seen.split_at(2);
    for ((add, update), author) in added.iter().zip(updated).zip(["alice", "bob"]) {
        assert_eq!(param(add, "EventType"), Some("onMessageAdded"));
        assert_eq!(param(update, "EventType"), Some("onMessageUpdated"));
        assert_eq!(param(update, "MessageSid"), param(add, "MessageSid"));
        assert_eq!(param(update, "Author"), Some(author));
        // The post's own date, as its onMessageAdded gave it.
        assert_eq!(param(update, "DateCreated"), param(add, "DateCreated"));
        assert!(param(update, "DateUpdated") >= param(update, "DateCreated"));
    }
    assert_eq!(
        param(&updated[1], "MessageSid"),
        Some(&*gone.message_sid.to_string())
    );
}

#[test]
fn on_user_updated_carries_the_identity_even_once_deleted() {
    let (url, seen) = serve(vec![(200, ""), (200, "")]);
    let f = open(EngineOptions::default());
    configure(&f, &url, WebhookMethod::Post, &["onUserUpdated"]);
    let kept = f.run(CreateUser::new(f.service, "alice"));
    let gone = f.run(CreateUser::new(f.service, "bob"));
    for u in [kept, gone] {
        f.run(UpdateUser::new(f.service, u).friendly_name("Renamed"));
    }
    f.run(DeleteUser::new(f.service, gone));
    let handle = f
        .engine
        .start_post_event_webhooks(fast_retries().start(ReactorStart::Beginning))
        .unwrap();
    settle(&f, &handle);

    let identities: Vec<(String, String)> = seen
        .lock()
        .iter()
        .map(|s| {
            let p = form_decode(&s.body);
            assert_eq!(param(&p, "EventType"), Some("onUserUpdated"));
            (
                param(&p, "UserSid").unwrap().to_string(),
                param(&p, "Identity").unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        identities,
        [
            (kept.to_string(), "alice".to_string()),
            (gone.to_string(), "bob".to_string())
        ]
    );
}

#[test]
fn a_deleted_conversations_own_webhook_gets_on_conversation_removed() {
    let (url, seen) = serve(vec![(200, "")]);
    let f = open(EngineOptions::default());
    let c = f.conversation();
    let hook = f.run(
        CreateConversationWebhook::new(f.service, c, WebhookTarget::Webhook, url.clone())
            .filters(["onConversationRemoved"]),
    );
    let handle = f.engine.start_post_event_webhooks(fast_retries()).unwrap();
    f.run(DeleteConversation::new(f.service, c));
    settle(&f, &handle);

    let seen = seen.lock().clone();
    assert_eq!(
        events_and_suffixes(&seen),
        [("onConversationRemoved".to_string(), format!("-{hook}"))]
    );
    let p = form_decode(&seen[0].body);
    assert_eq!(param(&p, "ConversationSid"), Some(&*c.to_string()));
}

#[test]
fn the_state_change_webhook_says_why_the_state_changed() {
    let (url, seen) = serve(vec![(200, ""), (200, ""), (200, "")]);
    let f = open(EngineOptions::default());
    configure(
        &f,
        &url,
        WebhookMethod::Post,
        &["onConversationStateUpdated"],
    );
    let handle = f.engine.start_post_event_webhooks(fast_retries()).unwrap();
    let c = f.conversation();
    f.join(c, "alice");
    // The host makes it inactive; a new message reactivates it.
    f.run(UpdateConversation::new(f.service, c).state(ConversationState::Inactive));
    f.post(c, "alice", "back again");
    // The conversation timer closes it: its command id, as the timer
    // thread derives it from the last activity.
    let activity = f.engine.read(|rm| {
        rm.service(&f.service)
            .unwrap()
            .conversation_by_sid(&c)
            .unwrap()
            .last_activity()
    });
    let close = UpdateConversation::new(f.service, c).state(ConversationState::Closed);
    f.engine
        .execute(CommandEnvelope::new(
            engine_core::timer_command_id(f.service, c, activity, engine_core::TimerKind::Closed),
            close,
        ))
        .unwrap();
    settle(&f, &handle);

    let reasons: Vec<(String, String, String)> = seen
        .lock()
        .iter()
        .map(|s| {
            let p = form_decode(&s.body);
            (
                param(&p, "StateFrom").unwrap().to_string(),
                param(&p, "StateTo").unwrap().to_string(),
                param(&p, "Reason").unwrap().to_string(),
            )
        })
        .collect();
    let row = |from: &str, to: &str, reason: &str| (from.into(), to.into(), reason.into());
    assert_eq!(
        reasons,
        [
            row("active", "inactive", "API"),
            row("inactive", "active", "EVENT"),
            row("active", "closed", "TIMER"),
        ]
    );
}

#[test]
fn the_state_before_stays_right_across_updates_delivered_without_the_state_filter() {
    // Regression: the cache of states learned only from updates whose
    // state webhook was wanted, so an update delivered while the filter
    // was off left it stale, and the next change named the wrong
    // StateFrom.
    let (url, seen) = serve(vec![(200, ""), (200, ""), (200, "")]);
    let f = open(EngineOptions::default());
    let c = f.conversation();
    let handle = f.engine.start_post_event_webhooks(fast_retries()).unwrap();
    let state = |to: ConversationState| {
        f.run(UpdateConversation::new(f.service, c).state(to));
        settle(&f, &handle);
    };
    configure(
        &f,
        &url,
        WebhookMethod::Post,
        &["onConversationStateUpdated"],
    );
    state(ConversationState::Inactive);
    configure(&f, &url, WebhookMethod::Post, &["onConversationUpdated"]);
    state(ConversationState::Active);
    configure(
        &f,
        &url,
        WebhookMethod::Post,
        &["onConversationStateUpdated"],
    );
    state(ConversationState::Closed);

    let changes: Vec<(String, Option<String>)> = seen
        .lock()
        .iter()
        .map(|s| {
            let p = form_decode(&s.body);
            (
                param(&p, "EventType").unwrap().to_string(),
                param(&p, "StateFrom").map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                "onConversationStateUpdated".to_string(),
                Some("active".to_string())
            ),
            ("onConversationUpdated".to_string(), None),
            (
                "onConversationStateUpdated".to_string(),
                Some("active".to_string())
            ),
        ]
    );
}

#[test]
fn an_updated_conversation_webhook_is_called_as_updated_and_on_its_conversations_removal() {
    let (url, seen) = serve(vec![(200, ""), (200, "")]);
    let f = open(EngineOptions::default());
    let c = f.conversation();
    // As created it would call nobody for these records.
    let hook = f.run(
        CreateConversationWebhook::new(
            f.service,
            c,
            WebhookTarget::Webhook,
            "http://127.0.0.1:9/never",
        )
        .filters(["onMessageRemoved"]),
    );
    f.run(
        UpdateConversationWebhook::new(f.service, c, hook)
            .url(url.clone())
            .filters(["onMessageAdded", "onConversationRemoved"]),
    );
    let stored = f.engine.read(|rm| {
        let conv = rm
            .service(&f.service)
            .unwrap()
            .conversation_by_sid(&c)
            .unwrap();
        conv.webhooks().get(&hook).cloned()
    });
    let row = stored.expect("the webhook is still there");
    assert_eq!(
        row.webhook,
        ConversationWebhookConfig::Url(ConversationWebhook {
            target: WebhookTarget::Webhook,
            url: url.clone(),
            method: WebhookMethod::Post,
            filters: vec![
                WebhookFilter::OnMessageAdded,
                WebhookFilter::OnConversationRemoved
            ],
            triggers: Vec::new(),
        })
    );
    assert!(row.date_updated >= row.date_created, "{row:?}");
    let handle = f.engine.start_post_event_webhooks(fast_retries()).unwrap();
    f.post(c, "system", "after the update");
    // The configuration is read when a record is delivered: let the
    // message's webhook go out before the conversation (and with it the
    // webhook's row) is removed.
    settle(&f, &handle);
    // onConversationRemoved goes to the webhooks as of the removal, read
    // from the log: the update applies there too.
    f.run(DeleteConversation::new(f.service, c));
    settle(&f, &handle);

    let seen = seen.lock().clone();
    assert_eq!(
        events_and_suffixes(&seen),
        [
            ("onMessageAdded".to_string(), format!("-{hook}")),
            ("onConversationRemoved".to_string(), format!("-{hook}")),
        ]
    );
    assert_eq!(handle.metrics().parked, 0);
}

#[test]
fn a_bad_conversation_webhook_update_is_a_typed_error_and_writes_nothing() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    let url = "https://example.com/w";
    let webhook = f.run(
        CreateConversationWebhook::new(f.service, c, WebhookTarget::Webhook, url)
            .filters(["onMessageAdded"]),
    );
    let trigger = f.run(
        CreateConversationWebhook::new(f.service, c, WebhookTarget::Trigger, url).triggers(["ok"]),
    );
    let studio = f.run(CreateConversationStudioWebhook::new(
        f.service,
        c,
        FlowSid::derive(b"flow"),
    ));
    let head = f.head();
    let update = |hook| UpdateConversationWebhook::new(f.service, c, hook);
    let cases: Vec<(UpdateConversationWebhook, &str)> = vec![
        (update(webhook).url("mailto:x"), "invalid"),
        (update(webhook).filters(["onMessageAdd"]), "unknown"),
        (update(webhook).triggers(["x"]), "invalid"),
        (update(webhook).flow_sid(FlowSid::derive(b"f")), "invalid"),
        (update(trigger).filters(["onMessageAdded"]), "invalid"),
        (update(trigger).triggers(["two words"]), "invalid"),
        (
            update(trigger).triggers(["k".repeat(limits::WEBHOOK_TRIGGER_CHARS_MAX + 1)]),
            "too long",
        ),
        (
            update(trigger)
                .triggers((0..=limits::WEBHOOK_TRIGGERS_PER_WEBHOOK_MAX).map(|i| format!("k{i}"))),
            "too long",
        ),
        (update(trigger).flow_sid(FlowSid::derive(b"f")), "invalid"),
        (update(studio).url(url), "invalid"),
        (update(studio).method(WebhookMethod::Get), "invalid"),
        (update(studio).filters(["onMessageAdded"]), "invalid"),
        (update(studio).triggers(["ok"]), "invalid"),
    ];
    assert_refused(&f, cases);
    let other = f.conversation();
    for command in [
        update(WebhookSid::derive(b"none")),
        UpdateConversationWebhook::new(f.service, other, webhook),
        UpdateConversationWebhook::new(f.service, ConversationSid::derive(b"none"), webhook),
    ] {
        assert!(
            matches!(
                f.try_run(command.clone()),
                Err(CommandError::NotFound { .. })
            ),
            "{command:?}"
        );
    }
    assert_eq!(
        f.head(),
        head + 1,
        "only the other conversation was written"
    );
    f.join(c, "alice");
    let head_after_other = f.head();
    let as_alice = f.engine.execute(
        update(webhook)
            .url(url)
            .keyed("as-alice")
            .acting_as("alice"),
    );
    assert!(
        matches!(as_alice, Err(CommandError::PermissionDenied { .. })),
        "{as_alice:?}"
    );
    assert_eq!(f.head(), head_after_other, "nothing written");
}
