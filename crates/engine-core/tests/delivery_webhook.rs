//! The webhook adapter against a tiny HTTP server on 127.0.0.1: the JSON
//! body and headers, a 5xx retried, a 2xx's channel id on the receipt, a
//! 4xx as a permanent failure.
#![cfg(feature = "webhook")]

mod fanout_support;
mod http_support;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine_core::{
    ChannelAdapter, DeliveryId, DeliveryOptions, EngineOptions, OutboundMessage, WebhookAdapter,
};
use events::*;
use fanout_support::*;
use http_support::*;

#[test]
fn the_webhook_adapter_posts_json_and_retries_server_errors() {
    let (url, seen) = serve(vec![
        (503, r#"{"error":"busy"}"#),
        (200, r#"{"sid":"SM0123","status":"queued"}"#),
    ]);
    let f = open(
        EngineOptions::default().delivery(
            DeliveryOptions::default()
                .backoff_initial(Duration::from_millis(10))
                .backoff_max(Duration::from_millis(10)),
        ),
    );
    let adapter = WebhookAdapter::new(url).header("Authorization", "Bearer test-token");
    f.engine
        .register_channel_adapter(AddressType::Whatsapp, Arc::new(adapter));
    let c = f.conversation();
    let p = f.join_binding(c, "whatsapp:+15551230001", "whatsapp:+15559870000");
    let m = f.post(c, "system", "hello over http").message_sid;

    let deadline = Instant::now() + WAIT;
    loop {
        let done = f.engine.read(|rm| {
            let conv = rm
                .service(&f.service)
                .unwrap()
                .conversation_by_sid(&c)
                .unwrap();
            let Some(r) = conv.receipt(&m, &p) else {
                return false;
            };
            assert_eq!(r.status, DeliveryStatus::Sent);
            assert_eq!(r.channel_message_sid.as_deref(), Some("SM0123"));
            let attempts = conv.delivery_attempts(&m, &p).unwrap();
            assert_eq!(attempts.failed_attempts, 1);
            assert!(attempts.last_error.contains("503"));
            true
        });
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "no receipt");
        std::thread::sleep(Duration::from_millis(10));
    }
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 2);
    let last = &seen[1];
    assert_eq!(last.path, "/outbound");
    assert_eq!(header(last, "content-type"), Some("application/json"));
    assert_eq!(header(last, "authorization"), Some("Bearer test-token"));
    assert_eq!(
        header(last, "idempotency-key"),
        Some(format!("{m}/{p}").as_str())
    );
    let body: serde_json::Value = serde_json::from_str(&last.body).unwrap();
    assert_eq!(body["to"], "whatsapp:+15551230001");
    assert_eq!(body["from"], "whatsapp:+15559870000");
    assert_eq!(body["body"], "hello over http");
    assert_eq!(body["channel"], "whatsapp");
    assert_eq!(body["attempt"], 2);
    assert_eq!(body["delivery_id"]["message_sid"], m.to_string());
    assert_eq!(body["delivery_id"]["participant_sid"], p.to_string());
    assert_eq!(body["conversation_sid"], c.to_string());
}

#[test]
fn client_errors_are_permanent_and_unreachable_servers_transient() {
    let (url, _) = serve(vec![(400, r#"{"error":"bad number"}"#)]);
    let message = OutboundMessage {
        delivery_id: DeliveryId {
            message_sid: MessageSid([1; 16]),
            participant_sid: ParticipantSid([2; 16]),
        },
        service_sid: ServiceSid([3; 16]),
        conversation_sid: ConversationSid([4; 16]),
        message_index: 0,
        channel: AddressType::Sms,
        from: "+1".into(),
        to: "+2".into(),
        projected_address: None,
        author: "system".into(),
        body: Some("x".into()),
        media: vec![],
        attributes: "{}".into(),
        attempt: 1,
    };
    let err = WebhookAdapter::new(url).send(&message).unwrap_err();
    assert!(err.permanent, "{err:?}");
    assert_eq!(err.error_code, Some(400));
    assert!(err.message.contains("bad number"));

    // Nothing listens on this port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err =
        WebhookAdapter::with_timeout(format!("http://127.0.0.1:{port}/x"), Duration::from_secs(2))
            .send(&message)
            .unwrap_err();
    assert!(!err.permanent, "{err:?}");
}
