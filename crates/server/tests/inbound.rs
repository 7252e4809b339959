//! The inbound channel endpoint over HTTP on loopback: a gateway's inbound
//! message autocreates a conversation per the Address Configuration, a
//! redelivery (same gateway message id) is answered and not applied twice,
//! media URLs become media descriptors, `X-Twilio-Signature` is checked,
//! each service routes its own numbers, and status callbacks record
//! delivery receipts.

mod support;

use engine_core::webhooks::twilio_signature;
use events::command::{ConversationRef, Keyed, PostMessage};
use events::{ConversationSid, MessageSid, ServiceSid};
use serde_json::Value;
use support::{assert_error, basic, TestServer};

/// The number the gateway receives on.
const OURS: &str = "+15550001";
/// The texting customer.
const CUSTOMER: &str = "+15559999";

/// An SMS Address Configuration for [`OURS`] with autocreation, in the
/// default service (or `service`).
fn autocreating_sms(s: &TestServer, service: Option<&str>) {
    let mut form = vec![
        ("Type", "sms"),
        ("Address", OURS),
        ("AutoCreation.Enabled", "true"),
    ];
    if let Some(service) = service {
        form.push(("AutoCreation.ConversationServiceSid", service));
    }
    let r = s.post("/v1/Configuration/Addresses", &form);
    assert_eq!(r.status, 201, "{:?}", r.body);
}

fn sms<'a>(id: &'a str, body: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("From", CUSTOMER),
        ("To", OURS),
        ("Body", body),
        ("MessageSid", id),
        ("NumMedia", "0"),
    ]
}

fn conversations(s: &TestServer, prefix: &str) -> Vec<Value> {
    let r = s.get(&format!("{prefix}/Conversations"));
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["conversations"].as_array().unwrap().clone()
}

/// The messages of `conversation` in the default service, as the engine
/// holds them.
fn messages(s: &TestServer, conversation: &str) -> Vec<projections::MessageRow> {
    let service: ServiceSid = s.service.parse().unwrap();
    let conversation = ConversationRef::Sid(conversation.parse().unwrap());
    s.engine()
        .read(move |q| {
            q.messages(
                &service,
                &conversation,
                projections::Order::Asc,
                &projections::PageRequest::default(),
            )
        })
        .expect("the conversation's messages")
        .items
}

#[test]
fn an_inbound_message_autocreates_once_and_a_redelivery_is_answered_not_applied() {
    let s = TestServer::start();
    autocreating_sms(&s, None);
    let first = s.post("/v1/Channels/Sms/Inbound", &sms("SM0001", "hello"));
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["deduplicated"], false);
    assert_eq!(first.body["index"], 0);
    assert_eq!(first.body["channel_message_sid"], "SM0001");
    let conversation = first.body["conversation_sid"].as_str().unwrap().to_owned();
    assert!(conversation.starts_with("CH"));
    assert!(first.body["message_sid"]
        .as_str()
        .unwrap()
        .starts_with("IM"));

    let again = s.post("/v1/Channels/Sms/Inbound", &sms("SM0001", "hello"));
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["deduplicated"], true);
    assert_eq!(again.body["message_sid"], first.body["message_sid"]);
    assert_eq!(again.body["conversation_sid"], conversation);

    let next = s.post("/v1/Channels/sms/Inbound", &sms("SM0002", "again"));
    assert_eq!(next.status, 200, "{:?}", next.body);
    assert_eq!(
        next.body["conversation_sid"], conversation,
        "the binding routes it"
    );
    assert_eq!(next.body["index"], 1);

    assert_eq!(conversations(&s, "/v1").len(), 1);
    let bodies: Vec<Option<String>> = messages(&s, &conversation)
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, vec![Some("hello".into()), Some("again".into())]);
    // The same gateway id with another body is refused, and writes nothing.
    assert_error(
        &s.post("/v1/Channels/Sms/Inbound", &sms("SM0002", "changed")),
        409,
        20409,
    );
    assert_eq!(messages(&s, &conversation).len(), 2);
}

#[test]
fn bad_inbound_requests_get_400_and_write_nothing() {
    let s = TestServer::start();
    // No binding and no autocreating configuration: no route.
    assert_error(
        &s.post("/v1/Channels/Sms/Inbound", &sms("SM1", "hi")),
        400,
        20001,
    );
    autocreating_sms(&s, None);
    let mut unknown = sms("SM2", "hi");
    unknown.push(("Colour", "red"));
    let mut missing_media = sms("SM3", "hi");
    missing_media.retain(|(k, _)| *k != "NumMedia");
    missing_media.extend([
        ("NumMedia", "2"),
        ("MediaUrl0", "https://gateway.example/m/0"),
        ("MediaContentType0", "image/png"),
    ]);
    let mut too_many = sms("SM4", "hi");
    too_many.retain(|(k, _)| *k != "NumMedia");
    too_many.push(("NumMedia", "11"));
    let mut no_from = sms("SM5", "hi");
    no_from.retain(|(k, _)| *k != "From");
    let mut no_id = sms("SM6", "hi");
    no_id.retain(|(k, _)| *k != "MessageSid");
    for bad in [
        unknown,
        missing_media,
        too_many,
        no_from,
        no_id,
        sms("SM7", ""),
    ] {
        assert_error(&s.post("/v1/Channels/Sms/Inbound", &bad), 400, 20001);
    }
    for channel in ["Chat", "Pigeon"] {
        assert_error(
            &s.post(
                &format!("/v1/Channels/{channel}/Inbound"),
                &sms("SM8", "hi"),
            ),
            400,
            20001,
        );
    }
    assert!(conversations(&s, "/v1").is_empty(), "nothing was written");
    // The endpoint is behind the API's authentication.
    assert_error(
        &s.get_as("/v1/Channels/Sms/Inbound", &basic(&s.account_sid, "wrong")),
        401,
        20003,
    );
}

#[test]
fn media_urls_become_media_descriptors_and_informational_params_are_accepted() {
    let s = TestServer::start();
    autocreating_sms(&s, None);
    let mut form = sms("MM0001", "look");
    form.retain(|(k, _)| *k != "NumMedia");
    form.extend([
        ("NumMedia", "2"),
        ("MediaUrl0", "https://gateway.example/m/0"),
        ("MediaContentType0", "image/png"),
        ("MediaUrl1", "https://gateway.example/m/1"),
        ("MediaContentType1", "video/mp4"),
        ("AccountSid", "AC0123"),
        ("SmsSid", "MM0001"),
        ("SmsMessageSid", "MM0001"),
        ("NumSegments", "1"),
        ("ApiVersion", "2010-04-01"),
        ("FromCountry", "US"),
    ]);
    let r = s.post("/v1/Channels/Sms/Inbound", &form);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let conversation = r.body["conversation_sid"].as_str().unwrap();
    let media = &messages(&s, conversation)[0].media;
    assert_eq!(media.len(), 2);
    assert_eq!(media[0].content_type, "image/png");
    assert_eq!(
        media[0].filename.as_deref(),
        Some("https://gateway.example/m/0")
    );
    assert_eq!(media[0].size, 0, "nothing was downloaded");
    assert_eq!(media[1].content_type, "video/mp4");
    assert_ne!(media[0].sid, media[1].sid);
    // A redelivery derives the same descriptors: it is the same command.
    let again = s.post("/v1/Channels/Sms/Inbound", &form);
    assert_eq!(again.body["deduplicated"], true, "{:?}", again.body);
}

#[test]
fn a_signed_request_must_carry_the_auth_tokens_signature() {
    let s = TestServer::start();
    autocreating_sms(&s, None);
    let url = format!("{}/v1/Channels/Sms/Inbound", s.base);
    let form = sms("SMsig1", "signed");
    let good = twilio_signature(&s.auth_token, &url, &form);
    let r = s.post_with(
        "/v1/Channels/Sms/Inbound",
        &form,
        &[("X-Twilio-Signature", &good)],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);

    let form = sms("SMsig2", "forged");
    let wrong = twilio_signature("not-the-token", &url, &form);
    let r = s.post_with(
        "/v1/Channels/Sms/Inbound",
        &form,
        &[("X-Twilio-Signature", &wrong)],
    );
    assert_error(&r, 401, 20003);
    let conversation = conversations(&s, "/v1")[0]["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        messages(&s, &conversation).len(),
        1,
        "the forged one was not written"
    );
}

#[test]
fn each_service_routes_its_own_numbers() {
    let s = TestServer::start();
    let second = s.post("/v1/Services", &[("FriendlyName", "second")]);
    let second = second.body["sid"].as_str().unwrap().to_owned();
    autocreating_sms(&s, Some(&second));
    // The default service has no configuration for the number.
    assert_error(
        &s.post("/v1/Channels/Sms/Inbound", &sms("SMs1", "hi")),
        400,
        20001,
    );
    let prefix = format!("/v1/Services/{second}");
    let r = s.post(
        &format!("{prefix}/Channels/Sms/Inbound"),
        &sms("SMs1", "hi"),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["chat_service_sid"], second);
    assert_eq!(conversations(&s, &prefix).len(), 1);
    assert!(conversations(&s, "/v1").is_empty());
}

#[test]
fn status_callbacks_record_delivery_receipts_forward_only() {
    let s = TestServer::start();
    autocreating_sms(&s, None);
    let r = s.post("/v1/Channels/Sms/Inbound", &sms("SMin", "hi"));
    let conversation = r.body["conversation_sid"].as_str().unwrap().to_owned();
    let service: ServiceSid = s.service.parse().unwrap();
    let conversation_sid: ConversationSid = conversation.parse().unwrap();
    let customer = s
        .engine()
        .read(move |q| {
            q.participant_by_binding(&service, OURS, CUSTOMER)
                .map(|p| p.map(|(_, p)| p))
        })
        .unwrap()
        .expect("the customer's participant");
    // An agent's reply: the message a gateway reports on.
    let reply: MessageSid = s
        .engine()
        .execute(
            PostMessage::new(service, conversation_sid)
                .author("agent")
                .body("how can we help?")
                .keyed("reply"),
        )
        .unwrap()
        .message_sid;
    let path = format!("/v1/Channels/Sms/Status/{conversation}/{reply}/{customer}");

    let r = s.post(
        &path,
        &[("MessageStatus", "queued"), ("MessageSid", "SMout")],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body.is_null(), "queued records nothing: {:?}", r.body);
    let r = s.post(
        &path,
        &[
            ("MessageStatus", "sent"),
            ("SmsStatus", "sent"),
            ("MessageSid", "SMout"),
        ],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "sent");
    assert_eq!(r.body["channel_message_sid"], "SMout");
    assert_eq!(r.body["participant_sid"], customer.to_string());
    assert!(r.body["sid"].as_str().unwrap().starts_with("DY"));
    let receipt = r.body["sid"].clone();
    let r = s.post(
        &path,
        &[
            ("MessageStatus", "delivered"),
            ("MessageSid", "SMout"),
            ("AccountSid", "AC0123"),
            ("From", OURS),
            ("To", CUSTOMER),
        ],
    );
    assert_eq!(r.body["status"], "delivered", "{:?}", r.body);
    assert_eq!(r.body["sid"], receipt, "one receipt per delivery");
    // A late `sent` is behind `delivered`: nothing changes.
    let r = s.post(&path, &[("MessageStatus", "sent"), ("MessageSid", "SMout")]);
    assert_eq!(r.body["status"], "delivered", "{:?}", r.body);

    for bad in [
        vec![("MessageStatus", "teleported")],
        vec![("MessageSid", "SMout")],
        vec![("MessageStatus", "failed"), ("ErrorCode", "x")],
        vec![("MessageStatus", "failed"), ("SmsStatus", "sent")],
        vec![("MessageStatus", "failed"), ("Colour", "red")],
    ] {
        assert_error(&s.post(&path, &bad), 400, 20001);
    }
    let r = s.post(&path, &[("MessageStatus", "queued")]);
    assert_eq!(r.body["status"], "delivered", "nothing was written");
    assert_error(
        &s.post(
            &format!(
                "/v1/Channels/Sms/Status/{conversation}/IM00000000000000000000000000000000/{customer}"
            ),
            &[("MessageStatus", "sent")],
        ),
        404,
        20404,
    );
    assert_error(
        &s.post(
            &format!("/v1/Channels/Sms/Status/{conversation}/not-a-sid/{customer}"),
            &[("MessageStatus", "sent")],
        ),
        400,
        20001,
    );
}
