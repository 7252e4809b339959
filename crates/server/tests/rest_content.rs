//! The conversation content resources over HTTP on loopback:
//! Participants, Messages (media, edit, delete, Order, paging), Receipts,
//! ConversationWithParticipants and ParticipantConversations, under both
//! path forms; bad input is a 400 that writes nothing; foreign SIDs are
//! 404.

mod support;

use serde_json::Value;
use support::{assert_error, Reply, TestServer};

/// Creates a conversation under `/v1` and returns its SID.
fn conversation(s: &TestServer, form: &[(&str, &str)]) -> String {
    let r = s.post("/v1/Conversations", form);
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["sid"].as_str().unwrap().to_owned()
}

fn created(r: Reply) -> Value {
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

fn ok(r: Reply) -> Value {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

/// Every item of a list, following `next_page_url` to the end.
fn walk(s: &TestServer, first: &str, key: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut url = Some(first.to_owned());
    while let Some(u) = url {
        let body = ok(s.get(&u));
        pages += 1;
        assert!(pages <= 100, "paging does not end");
        items.extend(body[key].as_array().unwrap().iter().cloned());
        url = body["meta"]["next_page_url"].as_str().map(str::to_owned);
    }
    (items, pages)
}

fn count(s: &TestServer, list: &str, key: &str) -> usize {
    ok(s.get(list))[key].as_array().unwrap().len()
}

#[test]
fn chat_and_binding_participants_round_trip_under_both_path_forms() {
    let s = TestServer::start();
    let ch = conversation(&s, &[("UniqueName", "room")]);
    let list = format!("/v1/Conversations/{ch}/Participants");
    let alice = created(s.post(&list, &[("Identity", "alice"), ("Attributes", "{\"a\":1}")]));
    assert!(alice["sid"].as_str().unwrap().starts_with("MB"));
    assert_eq!(alice["identity"], "alice");
    assert_eq!(alice["messaging_binding"], Value::Null);
    assert_eq!(alice["attributes"], "{\"a\":1}");
    assert_eq!(alice["conversation_sid"], ch);
    assert!(alice.get("chat_service_sid").is_none(), "{alice:?}");
    let a_sid = alice["sid"].as_str().unwrap().to_owned();
    assert_eq!(alice["url"], format!("{}{list}/{a_sid}", s.base));
    assert_eq!(
        alice["links"]["conversation"],
        format!("{}/v1/Conversations/{ch}", s.base)
    );
    assert!(alice["role_sid"].as_str().unwrap().starts_with("RL"));

    // By unique name, under the service-scoped form.
    let scoped = format!("/v1/Services/{}/Conversations/room/Participants", s.service);
    let sms = created(s.post(
        &scoped,
        &[
            ("MessagingBinding.Address", "+15550001111"),
            ("MessagingBinding.ProxyAddress", "+15559990000"),
        ],
    ));
    assert_eq!(sms["identity"], Value::Null);
    assert_eq!(sms["chat_service_sid"], s.service);
    assert_eq!(sms["messaging_binding"]["type"], "sms");
    assert_eq!(sms["messaging_binding"]["address"], "+15550001111");
    assert_eq!(sms["messaging_binding"]["proxy_address"], "+15559990000");
    assert_eq!(
        sms["url"],
        format!(
            "{}/v1/Services/{}/Conversations/{ch}/Participants/{}",
            s.base,
            s.service,
            sms["sid"].as_str().unwrap()
        )
    );

    let (all, _) = walk(&s, &list, "participants");
    assert_eq!(all.len(), 2);
    let fetched = ok(s.get(&format!("{scoped}/{a_sid}")));
    assert_eq!(fetched["identity"], "alice");
    assert_eq!(fetched["chat_service_sid"], s.service);

    // The read horizon: clamped to the last message, with its timestamp.
    for body in ["one", "two", "three"] {
        created(s.post(
            &format!("/v1/Conversations/{ch}/Messages"),
            &[("Body", body)],
        ));
    }
    let updated = ok(s.post(
        &format!("{list}/{a_sid}"),
        &[
            ("LastReadMessageIndex", "1"),
            ("LastReadTimestamp", "2024-05-01T10:00:00Z"),
            ("Attributes", "{\"b\":2}"),
        ],
    ));
    assert_eq!(updated["last_read_message_index"], 1);
    assert_eq!(updated["last_read_timestamp"], "2024-05-01T10:00:00Z");
    assert_eq!(updated["attributes"], "{\"b\":2}");
    let clamped = ok(s.post(
        &format!("{list}/{a_sid}"),
        &[("LastReadMessageIndex", "99")],
    ));
    assert_eq!(clamped["last_read_message_index"], 2);

    assert_eq!(s.delete(&format!("{list}/{a_sid}")).status, 204);
    assert_error(&s.get(&format!("{list}/{a_sid}")), 404, 20404);
    assert_eq!(count(&s, &list, "participants"), 1);
}

#[test]
fn messages_post_edit_delete_and_page_in_both_orders() {
    let s = TestServer::start();
    let ch = conversation(&s, &[]);
    created(s.post(
        &format!("/v1/Conversations/{ch}/Participants"),
        &[("Identity", "alice")],
    ));
    let list = format!("/v1/Conversations/{ch}/Messages");
    let mut sids = Vec::new();
    for i in 0..5 {
        let m = created(s.post(
            &list,
            &[
                ("Author", "alice"),
                ("Body", &format!("m{i}")),
                ("Attributes", "{}"),
            ],
        ));
        assert_eq!(m["index"], i);
        assert_eq!(m["author"], "alice");
        assert!(m["participant_sid"].as_str().unwrap().starts_with("MB"));
        assert_eq!(m["media"], Value::Null);
        assert_eq!(m["delivery"], Value::Null, "no non-chat recipients");
        assert_eq!(m["content_sid"], Value::Null);
        let sid = m["sid"].as_str().unwrap().to_owned();
        assert!(sid.starts_with("IM"));
        assert_eq!(m["url"], format!("{}{list}/{sid}", s.base));
        assert_eq!(
            m["links"]["delivery_receipts"],
            format!("{}{list}/{sid}/Receipts", s.base)
        );
        sids.push(sid);
    }
    let (asc, pages) = walk(&s, &format!("{list}?PageSize=2"), "messages");
    assert_eq!(pages, 3);
    let bodies = |v: &[Value]| {
        v.iter()
            .map(|m| m["body"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(bodies(&asc), ["m0", "m1", "m2", "m3", "m4"]);
    let (desc, _) = walk(&s, &format!("{list}?Order=desc&PageSize=2"), "messages");
    assert_eq!(bodies(&desc), ["m4", "m3", "m2", "m1", "m0"]);
    let first = ok(s.get(&format!("{list}?Order=desc&PageSize=2")));
    assert!(
        first["meta"]["next_page_url"]
            .as_str()
            .unwrap()
            .contains("Order=desc"),
        "{first:?}"
    );

    assert_eq!(asc[1]["date_updated"], Value::Null, "not edited yet");
    let edited = ok(s.post(&format!("{list}/{}", sids[1]), &[("Body", "edited")]));
    assert_eq!(edited["body"], "edited");
    assert_eq!(edited["index"], 1);
    assert!(edited["date_updated"].is_string(), "{edited:?}");
    let scoped = format!(
        "/v1/Services/{}/Conversations/{ch}/Messages/{}",
        s.service, sids[1]
    );
    let fetched = ok(s.get(&scoped));
    assert_eq!(fetched["body"], "edited");
    assert_eq!(fetched["chat_service_sid"], s.service);

    assert_error(
        &s.delete(&format!("{list}/{}?Force=1", sids[2])),
        400,
        20001,
    );
    assert_eq!(s.delete(&format!("{list}/{}", sids[2])).status, 204);
    assert_error(&s.get(&format!("{list}/{}", sids[2])), 404, 20404);
    let (left, _) = walk(&s, &list, "messages");
    let indices: Vec<u64> = left.iter().map(|m| m["index"].as_u64().unwrap()).collect();
    assert_eq!(
        indices,
        [0, 1, 3, 4],
        "a deleted index is skipped, never reused"
    );
    let next = created(s.post(&list, &[("Body", "after")]));
    assert_eq!(next["index"], 5);
    assert_eq!(next["author"], "system");
    assert_eq!(next["participant_sid"], Value::Null);

    assert_error(&s.get(&format!("{list}?Order=sideways")), 400, 20001);
}

#[test]
fn messages_attach_uploaded_media_of_their_service_only() {
    let s = TestServer::start();
    let ch = conversation(&s, &[]);
    let list = format!("/v1/Conversations/{ch}/Messages");
    let upload = |bytes: &[u8], name: &str, service: &str| {
        created(s.post_bytes(
            &format!("/v1/Services/{service}/Media?Filename={name}"),
            "image/png",
            bytes,
        ))["sid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let a = upload(b"first image", "a.png", &s.service);
    let b = upload(b"second image", "b.png", &s.service);
    let m = created(s.post(
        &list,
        &[
            ("MediaSid", a.as_str()),
            ("MediaSid", b.as_str()),
            ("Body", "look"),
        ],
    ));
    let media = m["media"].as_array().unwrap();
    assert_eq!(media.len(), 2);
    assert_eq!(media[0]["sid"], a);
    assert_eq!(media[0]["size"], 11);
    assert_eq!(media[0]["content_type"], "image/png");
    assert_eq!(media[0]["filename"], "a.png");
    assert_eq!(media[0]["category"], "media");
    assert_eq!(media[1]["sid"], b);
    // Media only, no body.
    let only = created(s.post(&list, &[("MediaSid", a.as_str())]));
    assert_eq!(only["body"], Value::Null);

    // Another service's media, an unknown one, a malformed one, eleven:
    // 400, and no message is written.
    let other = created(s.post("/v1/Services", &[("FriendlyName", "other")]));
    let foreign = upload(b"foreign", "f.png", other["sid"].as_str().unwrap());
    let unknown = "ME00000000000000000000000000000000";
    let eleven: Vec<(&str, &str)> = (0..11).map(|_| ("MediaSid", a.as_str())).collect();
    for form in [
        vec![("MediaSid", foreign.as_str())],
        vec![("MediaSid", unknown)],
        vec![("MediaSid", "not-a-sid")],
        eleven,
    ] {
        assert_error(&s.post(&list, &form), 400, 20001);
    }
    assert_eq!(count(&s, &list, "messages"), 2);
}

#[test]
fn receipts_list_and_fetch_and_summarise_as_delivery() {
    use events::command::{CommandId, ConversationRef, Keyed, RecordDeliveryReceipt};
    let s = TestServer::start();
    let ch = conversation(&s, &[]);
    let sms = created(s.post(
        &format!("/v1/Conversations/{ch}/Participants"),
        &[
            ("MessagingBinding.Address", "+15550001111"),
            ("MessagingBinding.ProxyAddress", "+15559990000"),
        ],
    ));
    let list = format!("/v1/Conversations/{ch}/Messages");
    let m = created(s.post(&list, &[("Body", "hi")]));
    let msg = m["sid"].as_str().unwrap().to_owned();
    let summary = &m["delivery"];
    assert_eq!(
        summary["total"], 0,
        "a non-chat recipient, no receipt yet: {m:?}"
    );
    assert_eq!(summary["delivered"], "none");

    let service = s.service.parse().unwrap();
    let conv: events::ConversationSid = ch.parse().unwrap();
    s.engine()
        .execute(
            RecordDeliveryReceipt::new(
                service,
                ConversationRef::Sid(conv),
                msg.parse().unwrap(),
                sms["sid"].as_str().unwrap().parse().unwrap(),
                events::DeliveryStatus::Delivered,
            )
            .channel_message_sid("SM0123456789abcdef0123456789abcdef")
            .keyed(CommandId::fresh()),
        )
        .unwrap();
    let receipts = format!("{list}/{msg}/Receipts");
    let page = ok(s.get(&receipts));
    let all = page["delivery_receipts"].as_array().unwrap();
    assert_eq!(all.len(), 1);
    let r = &all[0];
    let r_sid = r["sid"].as_str().unwrap();
    assert!(r_sid.starts_with("DY"));
    assert_eq!(r["status"], "delivered");
    assert_eq!(r["date_updated"], Value::Null, "one report, never updated");
    assert_eq!(r["message_sid"], msg);
    assert_eq!(r["participant_sid"], sms["sid"]);
    assert_eq!(
        r["channel_message_sid"],
        "SM0123456789abcdef0123456789abcdef"
    );
    assert_eq!(r["url"], format!("{}{receipts}/{r_sid}", s.base));
    let scoped = format!(
        "/v1/Services/{}/Conversations/{ch}/Messages/{msg}/Receipts/{r_sid}",
        s.service
    );
    assert_eq!(ok(s.get(&scoped))["status"], "delivered");
    let d = &ok(s.get(&format!("{list}/{msg}")))["delivery"];
    assert_eq!(
        (d["total"].as_u64(), d["delivered"].as_str()),
        (Some(1), Some("all"))
    );
    assert_eq!(d["failed"], "none");

    assert_error(
        &s.get(&format!("{receipts}/DY00000000000000000000000000000000")),
        404,
        20404,
    );
    assert_error(&s.get(&format!("{receipts}/bad")), 400, 20001);
}

#[test]
fn conversation_with_participants_is_all_or_nothing() {
    let s = TestServer::start();
    let c = created(s.post(
        &format!("/v1/Services/{}/ConversationWithParticipants", s.service),
        &[
            ("FriendlyName", "Team"),
            ("UniqueName", "team"),
            ("Participant", "{\"identity\": \"alice\", \"attributes\": \"{}\"}"),
            (
                "Participant",
                "{\"messaging_binding\": {\"address\": \"+15550002222\", \"proxy_address\": \"+15559990000\"}}",
            ),
        ],
    ));
    assert_eq!(c["friendly_name"], "Team");
    assert!(c["sid"].as_str().unwrap().starts_with("CH"));
    let (ps, _) = walk(&s, "/v1/Conversations/team/Participants", "participants");
    assert_eq!(ps.len(), 2);
    assert!(ps.iter().any(|p| p["identity"] == "alice"));
    assert!(ps
        .iter()
        .any(|p| p["messaging_binding"]["address"] == "+15550002222"));

    // A malformed participant, an unknown key, a binding without a proxy,
    // eleven participants, an email binding, a taken unique name: nothing
    // is created.
    let alice = "{\"identity\": \"alice\"}";
    let eleven: Vec<(&str, &str)> = (0..11).map(|_| ("Participant", alice)).collect();
    for (form, status, code) in [
        (vec![("Participant", "{not json")], 400, 20001),
        (
            vec![("Participant", "{\"identity\": \"a\", \"nick\": 1}")],
            400,
            20001,
        ),
        (
            vec![(
                "Participant",
                "{\"messaging_binding\": {\"address\": \"+1555\"}}",
            )],
            400,
            20001,
        ),
        (eleven, 400, 20001),
        (
            vec![("Bindings.Email.Address", "a@example.com")],
            400,
            20001,
        ),
        (
            vec![("UniqueName", "team"), ("Participant", alice)],
            409,
            50353,
        ),
    ] {
        assert_error(
            &s.post("/v1/ConversationWithParticipants", &form),
            status,
            code,
        );
    }
    assert_eq!(count(&s, "/v1/Conversations", "conversations"), 1);
}

#[test]
fn participant_conversations_by_identity_and_by_address() {
    let s = TestServer::start();
    let one = conversation(&s, &[("FriendlyName", "one")]);
    let two = conversation(&s, &[("FriendlyName", "two")]);
    for ch in [&one, &two] {
        created(s.post(
            &format!("/v1/Conversations/{ch}/Participants"),
            &[("Identity", "alice")],
        ));
    }
    created(s.post(
        &format!("/v1/Conversations/{two}/Participants"),
        &[
            ("MessagingBinding.Address", "+15550003333"),
            ("MessagingBinding.ProxyAddress", "+15559990000"),
        ],
    ));
    let (by_identity, pages) = walk(
        &s,
        "/v1/ParticipantConversations?Identity=alice&PageSize=1",
        "conversations",
    );
    assert_eq!(pages, 2);
    let mut names: Vec<&str> = by_identity
        .iter()
        .map(|c| c["conversation_friendly_name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["one", "two"]);
    let e = &by_identity[0];
    assert_eq!(e["participant_identity"], "alice");
    assert!(e["participant_user_sid"]
        .as_str()
        .unwrap()
        .starts_with("US"));
    assert_eq!(e["conversation_state"], "active");
    assert_eq!(e["chat_service_sid"], s.service);
    assert_eq!(
        e["links"]["conversation"],
        format!(
            "{}/v1/Conversations/{}",
            s.base,
            e["conversation_sid"].as_str().unwrap()
        )
    );

    let scoped = format!(
        "/v1/Services/{}/ParticipantConversations?Address=%2B15550003333",
        s.service
    );
    let by_address = ok(s.get(&scoped));
    let list = by_address["conversations"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["conversation_sid"], two);
    assert_eq!(
        list[0]["participant_messaging_binding"]["address"],
        "+15550003333"
    );
    assert_eq!(list[0]["participant_identity"], Value::Null);

    assert_error(&s.get("/v1/ParticipantConversations"), 400, 20001);
    assert_error(
        &s.get("/v1/ParticipantConversations?Identity=a&Address=b"),
        400,
        20001,
    );
    assert!(
        ok(s.get("/v1/ParticipantConversations?Identity=nobody"))["conversations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn bad_participant_and_message_input_is_a_400_that_writes_nothing() {
    let s = TestServer::start();
    let ch = conversation(&s, &[]);
    let participants = format!("/v1/Conversations/{ch}/Participants");
    let messages = format!("/v1/Conversations/{ch}/Messages");
    let alice = created(s.post(&participants, &[("Identity", "alice")]));
    let a_url = format!("{participants}/{}", alice["sid"].as_str().unwrap());
    let m = created(s.post(&messages, &[("Body", "keep")]));
    let m_url = format!("{messages}/{}", m["sid"].as_str().unwrap());
    for (path, form) in [
        (&participants, vec![("Identity", "bob"), ("Nickname", "b")]),
        (
            &participants,
            vec![("Identity", "bob"), ("DateCreated", "2020-01-01T00:00:00Z")],
        ),
        (
            &participants,
            vec![("Identity", "bob"), ("RoleSid", "RLnope")],
        ),
        (
            &participants,
            vec![("Identity", "bob"), ("Attributes", "{not json")],
        ),
        (
            &participants,
            vec![("MessagingBinding.Address", "+15550004444")],
        ),
        (&participants, vec![]),
        (
            &participants,
            vec![("Identity", "bob"), ("MessagingBinding.Address", "+1")],
        ),
        (
            &messages,
            vec![
                ("Body", "x"),
                ("ContentSid", "HX00000000000000000000000000000000"),
            ],
        ),
        (&messages, vec![("Body", "x"), ("Subject", "hi")]),
        (&messages, vec![("Body", "x"), ("Bodie", "y")]),
        (&messages, vec![]),
        (&messages, vec![("Body", "x"), ("Attributes", "[")]),
    ] {
        let r = s.post(path, &form);
        assert_error(&r, 400, 20001);
    }
    for (path, form) in [
        (&a_url, vec![("LastReadMessageIndex", "-1")]),
        (&a_url, vec![("LastReadMessageIndex", "one")]),
        (&a_url, vec![("LastReadTimestamp", "yesterday")]),
        (&a_url, vec![("Identity", "carol")]),
        (&m_url, vec![("Author", "mallory")]),
        (&m_url, vec![("Body", "x"), ("Extra", "1")]),
    ] {
        let r = s.post(path, &form);
        assert_error(&r, 400, 20001);
    }
    assert_eq!(count(&s, &participants, "participants"), 1);
    let a = ok(s.get(&a_url));
    assert_eq!(a["last_read_message_index"], Value::Null);
    assert_eq!(a["identity"], "alice");
    let (all, _) = walk(&s, &messages, "messages");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["body"], "keep");
    assert_eq!(all[0]["author"], "system");
}

#[test]
fn foreign_sids_answer_404() {
    let s = TestServer::start();
    let mine = conversation(&s, &[]);
    let theirs = conversation(&s, &[]);
    let p = created(s.post(
        &format!("/v1/Conversations/{theirs}/Participants"),
        &[("Identity", "bob")],
    ));
    let m = created(s.post(
        &format!("/v1/Conversations/{theirs}/Messages"),
        &[("Body", "x")],
    ));
    let (p, m) = (p["sid"].as_str().unwrap(), m["sid"].as_str().unwrap());
    // Another conversation's participant and message, through mine.
    for path in [
        format!("/v1/Conversations/{mine}/Participants/{p}"),
        format!("/v1/Conversations/{mine}/Messages/{m}"),
        format!("/v1/Conversations/{mine}/Messages/{m}/Receipts"),
    ] {
        assert_error(&s.get(&path), 404, 20404);
    }
    assert_error(
        &s.post(
            &format!("/v1/Conversations/{mine}/Participants/{p}"),
            &[("Attributes", "{}")],
        ),
        404,
        20404,
    );
    assert_error(
        &s.delete(&format!("/v1/Conversations/{mine}/Messages/{m}")),
        404,
        20404,
    );
    // Another service's conversation.
    let other = created(s.post("/v1/Services", &[("FriendlyName", "other")]));
    let other = other["sid"].as_str().unwrap();
    for path in [
        format!("/v1/Services/{other}/Conversations/{theirs}/Participants"),
        format!("/v1/Services/{other}/Conversations/{theirs}/Messages/{m}"),
    ] {
        assert_error(&s.get(&path), 404, 20404);
    }
    assert_error(
        &s.post(
            &format!("/v1/Services/{other}/Conversations/{theirs}/Messages"),
            &[("Body", "x")],
        ),
        404,
        20404,
    );
    // Unknown conversations too.
    assert_error(&s.get("/v1/Conversations/nosuch/Messages"), 404, 20404);
    assert_error(
        &s.post(
            "/v1/Conversations/nosuch/Participants",
            &[("Identity", "a")],
        ),
        404,
        20404,
    );
    // Nothing moved: their message and participant are still there.
    assert_eq!(
        count(
            &s,
            &format!("/v1/Conversations/{theirs}/Messages"),
            "messages"
        ),
        1
    );
}

#[test]
fn an_idempotency_token_makes_a_retried_post_one_message() {
    let s = TestServer::start();
    let ch = conversation(&s, &[]);
    let list = format!("/v1/Conversations/{ch}/Messages");
    let token = [("I-Twilio-Idempotency-Token", "retry-1")];
    let first = created(s.post_with(&list, &[("Body", "once")], &token));
    let retry = created(s.post_with(&list, &[("Body", "once")], &token));
    assert_eq!(first["sid"], retry["sid"]);
    assert_eq!(count(&s, &list, "messages"), 1);
    let participants = format!("/v1/Conversations/{ch}/Participants");
    let token = [("I-Twilio-Idempotency-Token", "retry-2")];
    let a = created(s.post_with(&participants, &[("Identity", "alice")], &token));
    let b = created(s.post_with(&participants, &[("Identity", "alice")], &token));
    assert_eq!(a["sid"], b["sid"]);
    assert_eq!(count(&s, &participants, "participants"), 1);
}
