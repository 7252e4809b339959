//! The REST core over HTTP on loopback: authentication, Twilio error
//! bodies, unknown parameters, paging, services and conversations under
//! both path forms, idempotency tokens, and a restart.

mod support;

use support::{assert_error, basic, TestServer};

#[test]
fn requests_without_valid_credentials_get_401_and_api_keys_authenticate() {
    let s = TestServer::start();
    let r = s.get_as("/v1/Conversations", &basic(&s.account_sid, "wrong"));
    assert_error(&r, 401, 20003);
    let r = s.get_as("/v1/Conversations", "Bearer x");
    assert_error(&r, 401, 20003);
    let r = s.get_as("/v1/Conversations", &basic(&s.api_key.0, &s.api_key.1));
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[test]
fn conversations_round_trip_under_both_path_forms() {
    let s = TestServer::start();
    let r = s.post(
        "/v1/Conversations",
        &[
            ("FriendlyName", "Support"),
            ("UniqueName", "ticket-1"),
            ("Attributes", "{\"a\":1}"),
            ("Timers.Inactive", "PT5M"),
        ],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sid = r.body["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("CH") && sid.len() == 34);
    assert_eq!(r.body["chat_service_sid"], s.service);
    assert_eq!(r.body["account_sid"], s.account_sid);
    assert_eq!(r.body["state"], "active");
    assert!(
        r.body["timers"]["date_inactive"].is_string(),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["url"], format!("{}/v1/Conversations/{sid}", s.base));

    let scoped = format!("/v1/Services/{}/Conversations/{sid}", s.service);
    let r = s.get(&scoped);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["friendly_name"], "Support");
    assert_eq!(r.body["url"], format!("{}{scoped}", s.base));
    // By unique name too.
    assert_eq!(s.get("/v1/Conversations/ticket-1").body["sid"], sid);

    let r = s.post(&format!("/v1/Conversations/{sid}"), &[("State", "closed")]);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["state"], "closed");

    let r = s.delete(&format!("/v1/Conversations/{sid}"));
    assert_eq!(r.status, 204);
    assert_error(&s.get(&format!("/v1/Conversations/{sid}")), 404, 20404);
}

#[test]
fn bad_requests_get_400_with_a_twilio_body_and_write_nothing() {
    let s = TestServer::start();
    assert_error(
        &s.post("/v1/Conversations", &[("FriendlyNam", "x")]),
        400,
        20001,
    );
    assert_error(
        &s.post("/v1/Conversations", &[("State", "asleep")]),
        400,
        20001,
    );
    assert_error(
        &s.post("/v1/Conversations", &[("Attributes", "{not json")]),
        400,
        20001,
    );
    assert_error(
        &s.post("/v1/Conversations", &[("Timers.Closed", "10 minutes")]),
        400,
        20001,
    );
    assert_error(&s.get("/v1/Services/ISnot-a-sid/Conversations"), 400, 20001);
    assert_error(&s.get("/v1/Conversations?PageSize=101"), 400, 20001);
    assert_error(&s.get("/v1/NoSuchResource"), 404, 20404);
    let r = s.get("/v1/Conversations");
    assert_eq!(
        r.body["conversations"].as_array().unwrap().len(),
        0,
        "{:?}",
        r.body
    );
}

#[test]
fn a_foreign_service_sid_answers_404() {
    let s = TestServer::start();
    let r = s.get("/v1/Services/IS00000000000000000000000000000000/Conversations");
    assert_error(&r, 404, 20404);
}

#[test]
fn pages_follow_next_page_url_to_the_end_without_repeats() {
    let s = TestServer::start();
    for i in 0..7 {
        let r = s.post("/v1/Conversations", &[("FriendlyName", &format!("c{i}"))]);
        assert_eq!(r.status, 201);
    }
    let mut seen = Vec::new();
    let mut url = "/v1/Conversations?PageSize=3".to_owned();
    let mut pages = 0;
    loop {
        let r = s.get(&url);
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["meta"]["key"], "conversations");
        assert_eq!(r.body["meta"]["page_size"], 3);
        assert_eq!(r.body["meta"]["page"], pages);
        for c in r.body["conversations"].as_array().unwrap() {
            seen.push(c["friendly_name"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match r.body["meta"]["next_page_url"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&s.base), "{next}");
                url = next.to_owned();
            }
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    let expected: Vec<String> = (0..7).map(|i| format!("c{i}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 3);
}

#[test]
fn an_idempotency_token_makes_a_retry_answer_the_first_conversation() {
    let s = TestServer::start();
    let token = [("I-Twilio-Idempotency-Token", "retry-me")];
    let a = s.post_with("/v1/Conversations", &[("FriendlyName", "once")], &token);
    let b = s.post_with("/v1/Conversations", &[("FriendlyName", "once")], &token);
    assert_eq!(a.status, 201);
    assert_eq!(b.status, 201);
    assert_eq!(a.body["sid"], b.body["sid"]);
    let list = s.get("/v1/Conversations");
    assert_eq!(list.body["conversations"].as_array().unwrap().len(), 1);
    let c = s.post_with("/v1/Conversations", &[("FriendlyName", "other")], &token);
    assert_error(&c, 409, 20409);
}

#[test]
fn services_are_created_listed_fetched_and_deleted_but_not_the_default() {
    let s = TestServer::start();
    let r = s.post("/v1/Services", &[("FriendlyName", "second")]);
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sid = r.body["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("IS"));
    assert_eq!(
        r.body["links"]["conversations"],
        format!("{}/v1/Services/{sid}/Conversations", s.base)
    );
    let list = s.get("/v1/Services");
    assert_eq!(list.body["services"].as_array().unwrap().len(), 2);
    let c = s.post(&format!("/v1/Services/{sid}/Conversations"), &[]);
    assert_eq!(c.status, 201);
    assert_eq!(c.body["chat_service_sid"], sid);
    // Not visible from the default service.
    let csid = c.body["sid"].as_str().unwrap();
    assert_error(&s.get(&format!("/v1/Conversations/{csid}")), 404, 20404);
    assert_eq!(s.delete(&format!("/v1/Services/{sid}")).status, 204);
    assert_error(&s.get(&format!("/v1/Services/{sid}")), 404, 20404);
    assert_error(
        &s.delete(&format!("/v1/Services/{}", s.service)),
        400,
        20001,
    );
}

#[test]
fn a_restart_keeps_the_account_and_what_was_written() {
    let s = TestServer::start();
    let r = s.post("/v1/Conversations", &[("UniqueName", "kept")]);
    assert_eq!(r.status, 201);
    let (sid, token, service) = (
        s.account_sid.clone(),
        s.auth_token.clone(),
        s.service.clone(),
    );
    let dir = s.stop().expect("the test server owns its directory");
    let again = TestServer::start_in(dir.path(), false);
    assert_eq!(again.account_sid, sid);
    assert_eq!(again.auth_token, token);
    assert_eq!(again.service, service);
    assert_eq!(again.get("/v1/Conversations/kept").status, 200);
}

#[test]
fn the_account_default_timers_apply_to_conversations_created_without_timers() {
    let s = TestServer::start();
    let r = s.post(
        "/v1/Configuration",
        &[
            ("DefaultInactiveTimer", "PT2M"),
            ("DefaultClosedTimer", "PT20M"),
        ],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let plain = s.post("/v1/Conversations", &[]);
    assert_eq!(plain.status, 201, "{:?}", plain.body);
    let created = plain.body["date_created"].as_str().unwrap().to_owned();
    let inactive = plain.body["timers"]["date_inactive"].as_str().unwrap();
    let closed = plain.body["timers"]["date_closed"].as_str().unwrap();
    assert!(
        inactive > created.as_str() && closed > inactive,
        "{:?}",
        plain.body
    );
    // A timer the request sets wins; the other still takes the default.
    let own = s.post("/v1/Conversations", &[("Timers.Closed", "PT1H")]);
    assert_eq!(own.status, 201, "{:?}", own.body);
    assert!(
        own.body["timers"]["date_inactive"].is_string(),
        "{:?}",
        own.body
    );
    assert!(
        own.body["timers"]["date_closed"].as_str().unwrap() > closed,
        "{:?}",
        own.body
    );
}

#[test]
fn a_method_a_resource_does_not_take_gets_405_with_a_twilio_body() {
    let s = TestServer::start();
    // DELETE on a list, and POST on a Service (Twilio has no service update).
    assert_error(&s.delete("/v1/Conversations"), 405, 20004);
    let service = s.service.clone();
    assert_error(&s.post(&format!("/v1/Services/{service}"), &[]), 405, 20004);
}
