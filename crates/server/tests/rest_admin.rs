//! The administrative resources over HTTP on loopback: Users and User
//! Conversations, Roles, the account and service Configuration
//! (Notifications, Webhooks), Address Configurations and
//! conversation-scoped Webhooks. Each resource under its path forms, bad
//! input answered 400 with nothing written, foreign SIDs answered 404, and
//! configured post-event webhooks called, signed with the auth token.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use engine_core::webhooks::twilio_signature;
use events::command::{AddParticipant, Keyed, ParticipantSpec, PostMessage};
use events::{ConversationSid, ServiceSid};
use serde_json::Value;
use support::{assert_error, TestServer};

/// How long a test waits for a post-event webhook to arrive.
const WEBHOOK_WAIT: Duration = Duration::from_secs(20);
/// How often the loopback receiver looks for the webhook's connection:
/// short next to [`WEBHOOK_WAIT`], long enough not to spin.
const ACCEPT_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A conversation made over REST, with the chat participants `identities`
/// added and `messages` posted by the first, through the engine (the
/// Participants and Messages resources are another part's).
fn conversation_with(
    s: &TestServer,
    unique_name: &str,
    identities: &[&str],
    messages: usize,
) -> String {
    let r = s.post("/v1/Conversations", &[("UniqueName", unique_name)]);
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sid = r.body["sid"].as_str().unwrap().to_owned();
    let service: ServiceSid = s.service.parse().unwrap();
    let conversation: ConversationSid = sid.parse().unwrap();
    for (i, who) in identities.iter().enumerate() {
        s.engine()
            .execute(
                AddParticipant::new(service, conversation, ParticipantSpec::chat(*who))
                    .keyed(format!("{unique_name}/join/{i}")),
            )
            .expect("the participant joins");
    }
    for i in 0..messages {
        s.engine()
            .execute(
                PostMessage::new(service, conversation)
                    .author(identities[0])
                    .body(format!("m{i}"))
                    .keyed(format!("{unique_name}/post/{i}")),
            )
            .expect("the message is posted");
    }
    sid
}

fn count(r: &support::Reply, key: &str) -> usize {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body[key].as_array().expect("a list").len()
}

#[test]
fn users_round_trip_by_sid_and_identity_under_both_path_forms() {
    let s = TestServer::start();
    let r = s.post(
        "/v1/Users",
        &[
            ("Identity", "alice"),
            ("FriendlyName", "Alice"),
            ("Attributes", "{\"tier\":1}"),
        ],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sid = r.body["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("US") && sid.len() == 34, "{sid}");
    assert_eq!(r.body["identity"], "alice");
    assert_eq!(r.body["chat_service_sid"], s.service);
    assert_eq!(r.body["account_sid"], s.account_sid);
    assert!(r.body["role_sid"].as_str().unwrap().starts_with("RL"));
    assert!(r.body["is_online"].is_null());
    assert_eq!(r.body["url"], format!("{}/v1/Users/{sid}", s.base));
    assert_eq!(
        r.body["links"]["user_conversations"],
        format!("{}/v1/Users/{sid}/Conversations", s.base)
    );

    let scoped = format!("/v1/Services/{}/Users/{sid}", s.service);
    let r = s.get(&scoped);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["url"], format!("{}{scoped}", s.base));
    assert_eq!(s.get("/v1/Users/alice").body["sid"], sid, "by identity");

    let r = s.post(
        "/v1/Users/alice",
        &[("FriendlyName", "Alice B."), ("Attributes", "{}")],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["friendly_name"], "Alice B.");
    assert_eq!(r.body["attributes"], "{}");

    assert_error(&s.post("/v1/Users", &[("Identity", "alice")]), 409, 50201);
    assert_eq!(s.post("/v1/Users", &[("Identity", "bob")]).status, 201);
    let page = s.get("/v1/Users?PageSize=1");
    assert_eq!(count(&page, "users"), 1);
    let next = page.body["meta"]["next_page_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(count(&s.get(&next), "users"), 1);

    assert_eq!(s.delete(&format!("/v1/Users/{sid}")).status, 204);
    assert_error(&s.get(&format!("/v1/Users/{sid}")), 404, 20404);
    assert_error(&s.get("/v1/Users/alice"), 404, 20404);
}

#[test]
fn bad_user_requests_get_400_and_write_nothing_and_foreign_users_404() {
    let s = TestServer::start();
    assert_error(&s.post("/v1/Users", &[("FriendlyName", "x")]), 400, 20001);
    assert_error(
        &s.post("/v1/Users", &[("Identity", "a"), ("Nickname", "x")]),
        400,
        20001,
    );
    assert_error(
        &s.post("/v1/Users", &[("Identity", "a"), ("Attributes", "{no")]),
        400,
        20001,
    );
    assert_error(
        &s.post("/v1/Users", &[("Identity", "a"), ("RoleSid", "RLnope")]),
        400,
        20001,
    );
    assert_eq!(
        count(&s.get("/v1/Users"), "users"),
        0,
        "nothing was written"
    );

    // A user of another service is not visible from this one.
    let other = s.post("/v1/Services", &[("FriendlyName", "other")]);
    let other = other.body["sid"].as_str().unwrap().to_owned();
    let r = s.post(
        &format!("/v1/Services/{other}/Users"),
        &[("Identity", "carol")],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let carol = r.body["sid"].as_str().unwrap();
    assert_error(&s.get(&format!("/v1/Users/{carol}")), 404, 20404);
    assert_error(&s.get("/v1/Users/carol"), 404, 20404);
    assert_error(&s.delete(&format!("/v1/Users/{carol}")), 404, 20404);
}

#[test]
fn user_conversations_show_unread_counts_and_update_and_leave() {
    let s = TestServer::start();
    let sid = conversation_with(&s, "room", &["alice", "bob"], 3);
    let r = s.get("/v1/Users/bob/Conversations");
    assert_eq!(count(&r, "conversations"), 1);
    let uc = &r.body["conversations"][0];
    assert_eq!(uc["conversation_sid"], sid);
    assert!(
        uc["unread_messages_count"].is_null(),
        "no horizon yet: {uc}"
    );
    assert!(uc["last_read_message_index"].is_null());
    assert_eq!(uc["notification_level"], "default");
    assert_eq!(uc["conversation_state"], "active");
    assert_eq!(uc["unique_name"], "room");
    assert!(uc["created_by"].is_null());
    let bob = s.get("/v1/Users/bob").body["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(uc["user_sid"], bob);
    let participant = uc["participant_sid"].as_str().unwrap().to_owned();
    assert!(participant.starts_with("MB"));
    assert_eq!(
        uc["links"]["participant"],
        format!(
            "{}/v1/Conversations/{sid}/Participants/{participant}",
            s.base
        )
    );
    assert_eq!(
        uc["url"],
        format!("{}/v1/Users/{bob}/Conversations/{sid}", s.base)
    );

    let path = format!("/v1/Services/{}/Users/{bob}/Conversations/room", s.service);
    let r = s.post(
        &path,
        &[
            ("LastReadMessageIndex", "0"),
            ("NotificationLevel", "muted"),
            ("LastReadTimestamp", "2024-05-01T10:00:00Z"),
        ],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["last_read_message_index"], 0);
    assert_eq!(r.body["unread_messages_count"], 2);
    assert_eq!(r.body["notification_level"], "muted");
    let r = s.get(&format!("/v1/Users/bob/Conversations/{sid}"));
    assert_eq!(r.body["unread_messages_count"], 2, "{:?}", r.body);

    // Bad input writes nothing.
    assert_error(&s.post(&path, &[("NotificationLevel", "loud")]), 400, 20001);
    assert_error(
        &s.post(
            &path,
            &[("LastReadMessageIndex", "2"), ("LastReadTimestamp", "noon")],
        ),
        400,
        20001,
    );
    assert_error(&s.post(&path, &[("Colour", "red")]), 400, 20001);
    let r = s.get(&path);
    assert_eq!(r.body["last_read_message_index"], 0, "{:?}", r.body);
    assert_eq!(r.body["notification_level"], "muted");

    // A user reaches only the conversations it is in.
    assert_eq!(s.post("/v1/Users", &[("Identity", "mallory")]).status, 201);
    assert_error(
        &s.get(&format!("/v1/Users/mallory/Conversations/{sid}")),
        404,
        20404,
    );
    assert_error(
        &s.post(
            &format!("/v1/Users/mallory/Conversations/{sid}"),
            &[("NotificationLevel", "muted")],
        ),
        404,
        20404,
    );
    assert_eq!(
        count(&s.get("/v1/Users/mallory/Conversations"), "conversations"),
        0
    );

    // Leaving: the participant is removed.
    assert_eq!(
        s.delete(&format!("/v1/Users/bob/Conversations/{sid}"))
            .status,
        204
    );
    assert_error(
        &s.get(&format!("/v1/Users/bob/Conversations/{sid}")),
        404,
        20404,
    );
    assert_eq!(
        count(&s.get("/v1/Users/bob/Conversations"), "conversations"),
        0
    );
    assert_eq!(
        count(&s.get("/v1/Users/alice/Conversations"), "conversations"),
        1
    );
}

#[test]
fn roles_are_created_listed_updated_and_deleted_and_bad_ones_refused() {
    let s = TestServer::start();
    let defaults = count(&s.get("/v1/Roles"), "roles");
    assert!(defaults >= 3, "the service's default roles are listed");
    let r = s.post(
        "/v1/Roles",
        &[
            ("FriendlyName", "moderator"),
            ("Type", "conversation"),
            ("Permission", "sendMessage"),
            ("Permission", "deleteAnyMessage"),
        ],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sid = r.body["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("RL"));
    assert_eq!(r.body["type"], "conversation");
    assert_eq!(
        r.body["permissions"],
        serde_json::json!(["sendMessage", "deleteAnyMessage"])
    );
    let scoped = format!("/v1/Services/{}/Roles/{sid}", s.service);
    let r = s.get(&scoped);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["url"], format!("{}{scoped}", s.base));

    let r = s.post(
        &format!("/v1/Roles/{sid}"),
        &[("Permission", "leaveConversation")],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["permissions"],
        serde_json::json!(["leaveConversation"])
    );

    for bad in [
        vec![
            ("FriendlyName", "x"),
            ("Type", "conversation"),
            ("Permission", "fly"),
        ],
        vec![
            ("FriendlyName", "x"),
            ("Type", "planet"),
            ("Permission", "sendMessage"),
        ],
        vec![("FriendlyName", "x"), ("Type", "service")],
        vec![("Type", "service"), ("Permission", "createConversation")],
        vec![
            ("FriendlyName", "x"),
            ("Type", "service"),
            ("Permission", "createConversation"),
            ("Colour", "red"),
        ],
    ] {
        assert_error(&s.post("/v1/Roles", &bad), 400, 20001);
    }
    assert_error(&s.post(&format!("/v1/Roles/{sid}"), &[]), 400, 20001);
    assert_eq!(
        count(&s.get("/v1/Roles"), "roles"),
        defaults + 1,
        "nothing written"
    );
    assert_eq!(
        s.get(&scoped).body["permissions"],
        serde_json::json!(["leaveConversation"])
    );

    // A default role is in use.
    let default_role = s
        .get(&format!("/v1/Services/{}/Configuration", s.service))
        .body["default_conversation_role_sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_error(&s.delete(&format!("/v1/Roles/{default_role}")), 409, 20409);
    assert_eq!(s.delete(&format!("/v1/Roles/{sid}")).status, 204);
    assert_error(&s.get(&format!("/v1/Roles/{sid}")), 404, 20404);
    assert_error(
        &s.get("/v1/Roles/RL00000000000000000000000000000000"),
        404,
        20404,
    );
    assert_error(&s.get("/v1/Roles/not-a-sid"), 400, 20001);
}

#[test]
fn service_configuration_sets_default_roles_and_refuses_what_is_not_built() {
    let s = TestServer::start();
    let path = format!("/v1/Services/{}/Configuration", s.service);
    let before = s.get(&path);
    assert_eq!(before.status, 200, "{:?}", before.body);
    assert_eq!(before.body["chat_service_sid"], s.service);
    assert_eq!(before.body["reachability_enabled"], false);
    assert_eq!(
        before.body["links"]["notifications"],
        format!("{}{path}/Notifications", s.base)
    );
    let role = s.post(
        "/v1/Roles",
        &[
            ("FriendlyName", "guest"),
            ("Type", "conversation"),
            ("Permission", "sendMessage"),
        ],
    );
    let role = role.body["sid"].as_str().unwrap().to_owned();
    let r = s.post(
        &path,
        &[
            ("DefaultConversationRoleSid", &role),
            ("ReachabilityEnabled", "false"),
        ],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["default_conversation_role_sid"], role);
    for unchanged in [
        "default_conversation_creator_role_sid",
        "default_chat_service_role_sid",
    ] {
        assert_eq!(r.body[unchanged], before.body[unchanged], "{unchanged}");
    }
    // A service role cannot be a conversation default; nothing changes.
    let service_role = before.body["default_chat_service_role_sid"]
        .as_str()
        .unwrap();
    assert_error(
        &s.post(&path, &[("DefaultConversationRoleSid", service_role)]),
        400,
        20001,
    );
    assert_error(
        &s.post(&path, &[("ReachabilityEnabled", "true")]),
        400,
        20001,
    );
    assert_error(&s.post(&path, &[("Colour", "red")]), 400, 20001);
    assert_eq!(s.get(&path).body["default_conversation_role_sid"], role);
    assert_error(
        &s.get("/v1/Services/IS00000000000000000000000000000000/Configuration"),
        404,
        20404,
    );

    let notifications = format!("{path}/Notifications");
    let r = s.get(&notifications);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["new_message"]["enabled"], false);
    assert_eq!(r.body["log_enabled"], false);
    let r = s.post(
        &notifications,
        &[("NewMessage.Enabled", "false"), ("LogEnabled", "false")],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_error(
        &s.post(&notifications, &[("NewMessage.Enabled", "true")]),
        400,
        20001,
    );
    assert_error(
        &s.post(&notifications, &[("AddedToConversation.Template", "hi")]),
        400,
        20001,
    );
}

#[test]
fn account_configuration_changes_the_default_service_and_survives_a_restart() {
    let s = TestServer::start();
    let r = s.get("/v1/Configuration");
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["default_chat_service_sid"], s.service);
    assert!(r.body["default_inactive_timer"].is_null());
    assert_eq!(
        r.body["links"]["webhooks"],
        format!("{}/v1/Configuration/Webhooks", s.base)
    );
    let second = s.post("/v1/Services", &[("FriendlyName", "second")]);
    let second = second.body["sid"].as_str().unwrap().to_owned();

    for bad in [
        (
            "DefaultChatServiceSid",
            "IS00000000000000000000000000000000",
        ),
        ("DefaultChatServiceSid", "nope"),
        ("DefaultMessagingServiceSid", "MGshort"),
        ("DefaultInactiveTimer", "PT30S"),
        ("DefaultClosedTimer", "ten minutes"),
        ("DefaultColour", "red"),
    ] {
        assert_error(&s.post("/v1/Configuration", &[bad]), 400, 20001);
    }
    assert_eq!(
        s.get("/v1/Configuration").body,
        r.body,
        "nothing was written"
    );

    let mg = "MG0123456789abcdef0123456789abcdef";
    let r = s.post(
        "/v1/Configuration",
        &[
            ("DefaultChatServiceSid", &second),
            ("DefaultMessagingServiceSid", mg),
            ("DefaultInactiveTimer", "PT5M"),
            ("DefaultClosedTimer", "PT1H"),
        ],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["default_chat_service_sid"], second);
    assert_eq!(r.body["default_messaging_service_sid"], mg);
    assert_eq!(r.body["default_inactive_timer"], "PT5M");
    assert_eq!(r.body["default_closed_timer"], "PT1H");
    // The paths without /Services now address the new default.
    let c = s.post("/v1/Conversations", &[]);
    assert_eq!(c.body["chat_service_sid"], second, "{:?}", c.body);
    // The new default cannot be deleted.
    assert_error(&s.delete(&format!("/v1/Services/{second}")), 400, 20001);

    let dir = s.stop().expect("the test server owns its directory");
    let again = TestServer::start_in(dir.path(), false);
    let r = again.get("/v1/Configuration");
    assert_eq!(r.body["default_chat_service_sid"], second);
    assert_eq!(r.body["default_closed_timer"], "PT1H");
    assert_eq!(again.service, second);
}

#[test]
fn webhook_configuration_is_the_services_and_the_account_level_one_is_the_defaults() {
    let s = TestServer::start();
    let path = format!("/v1/Services/{}/Configuration/Webhooks", s.service);
    let r = s.get(&path);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body["post_webhook_url"].is_null());
    assert!(r.body["pre_webhook_url"].is_null());
    assert_eq!(r.body["method"], "POST");
    let r = s.post(
        &path,
        &[
            ("PostWebhookUrl", "http://127.0.0.1:9/hook"),
            ("Method", "GET"),
            ("Filters", "onMessageAdded"),
            ("Filters", "onConversationAdded"),
        ],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["post_webhook_url"], "http://127.0.0.1:9/hook");
    assert_eq!(r.body["method"], "GET");
    assert_eq!(
        r.body["filters"],
        serde_json::json!(["onMessageAdded", "onConversationAdded"])
    );
    // Absent fields are kept.
    let r = s.post(&path, &[("Method", "POST")]);
    assert_eq!(r.body["post_webhook_url"], "http://127.0.0.1:9/hook");
    assert_eq!(r.body["filters"].as_array().unwrap().len(), 2);

    let account = s.get("/v1/Configuration/Webhooks");
    assert_eq!(account.status, 200, "{:?}", account.body);
    assert_eq!(account.body["post_webhook_url"], "http://127.0.0.1:9/hook");
    assert_eq!(account.body["target"], "webhook");
    let r = s.post(
        "/v1/Configuration/Webhooks",
        &[("Target", "webhook"), ("Filters", "onUserAdded")],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        s.get(&path).body["filters"],
        serde_json::json!(["onUserAdded"])
    );

    let before = s.get(&path).body;
    for bad in [
        ("Filters", "onMessageAdd"),
        ("Method", "PUT"),
        ("PostWebhookUrl", "ftp://example.com"),
        ("PreWebhookUrl", "http://127.0.0.1:9/pre"),
        ("Colour", "red"),
    ] {
        assert_error(&s.post(&path, &[bad]), 400, 20001);
    }
    assert_error(
        &s.post("/v1/Configuration/Webhooks", &[("Target", "flex")]),
        400,
        20001,
    );
    assert_eq!(s.get(&path).body, before, "nothing was written");
    // Off again.
    let r = s.post(&path, &[("PostWebhookUrl", "")]);
    assert!(r.body["post_webhook_url"].is_null(), "{:?}", r.body);
}

/// One HTTP request a loopback receiver got: its path (with query),
/// headers and body.
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// Accepts one request on `listener` within [`WEBHOOK_WAIT`] and answers
/// 200.
/// Posts `body` as alice in conversation `sid` (through the engine: the
/// message, not the post, is what the test is about) and returns the one
/// webhook call `listener` receives, with its form parameters.
fn post_and_receive(
    s: &TestServer,
    sid: &str,
    body: &str,
    listener: &TcpListener,
) -> (Received, Vec<(String, String)>) {
    let service: ServiceSid = s.service.parse().unwrap();
    let conversation: ConversationSid = sid.parse().unwrap();
    s.engine()
        .execute(
            PostMessage::new(service, conversation)
                .author("alice")
                .body(body)
                .keyed(format!("post/{sid}/{body}")),
        )
        .expect("the message is posted");
    let got = receive_one(listener);
    let params = form_urlencoded::parse(got.body.as_bytes())
        .into_owned()
        .collect();
    (got, params)
}

fn receive_one(listener: &TcpListener) -> Received {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + WEBHOOK_WAIT;
    let (stream, _) = loop {
        match listener.accept() {
            Ok(pair) => break pair,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "no webhook within {WEBHOOK_WAIT:?}"
                );
                std::thread::sleep(ACCEPT_POLL_INTERVAL);
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(WEBHOOK_WAIT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let path = line.split_whitespace().nth(1).unwrap().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let mut stream = stream;
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .unwrap();
    Received {
        path,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

#[test]
fn a_configured_post_event_webhook_is_called_signed_with_the_auth_token() {
    let s = TestServer::start();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let r = s.post(
        "/v1/Configuration/Webhooks",
        &[("PostWebhookUrl", &url), ("Filters", "onConversationAdded")],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let c = s.post("/v1/Conversations", &[("FriendlyName", "hooked")]);
    assert_eq!(c.status, 201);
    let got = receive_one(&listener);
    assert_eq!(got.path, "/hook");
    let params: Vec<(String, String)> = form_urlencoded::parse(got.body.as_bytes())
        .into_owned()
        .collect();
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(param("EventType").as_deref(), Some("onConversationAdded"));
    assert_eq!(
        param("ConversationSid"),
        c.body["sid"].as_str().map(String::from)
    );
    assert_signed_with_the_auth_token(&s, &got, &url, &params);
}

/// `got` carries Twilio's signature of (`url`, `params`) with the account's
/// auth token, and the token signs from the server's memory: no record of
/// the log holds it (a log is read by auditors and replay tools, which
/// must not learn the account's credential).
#[track_caller]
fn assert_signed_with_the_auth_token(
    s: &TestServer,
    got: &Received,
    url: &str,
    params: &[(String, String)],
) {
    let signature = got
        .headers
        .iter()
        .find(|(k, _)| k == "x-twilio-signature")
        .map(|(_, v)| v.clone())
        .expect("the call is signed");
    assert_eq!(signature, twilio_signature(&s.auth_token, url, params));
    let log = s.engine().log();
    let head = log.head().next_position;
    assert!(head > 0);
    for record in log.read_range(0..head) {
        let event = record.expect("a record").event().expect("an event");
        let json = serde_json::to_string(&event).expect("events serialise");
        assert!(
            !json.contains(&s.auth_token),
            "the auth token was written to the log: {json}"
        );
    }
}

#[test]
fn a_conversation_webhook_is_called_signed_with_the_auth_token() {
    let s = TestServer::start();
    let sid = conversation_with(&s, "watched", &["alice"], 0);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/conversation-hook",
        listener.local_addr().unwrap()
    );
    let r = s.post(
        &format!("/v1/Conversations/{sid}/Webhooks"),
        &[
            ("Target", "webhook"),
            ("Configuration.Url", &url),
            ("Configuration.Filters", "onMessageAdded"),
        ],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let (got, params) = post_and_receive(&s, &sid, "hello hook", &listener);
    assert_eq!(got.path, "/conversation-hook");
    assert!(
        params.contains(&("Body".to_owned(), "hello hook".to_owned())),
        "{params:?}"
    );
    assert_signed_with_the_auth_token(&s, &got, &url, &params);
}

#[test]
fn conversation_webhooks_are_created_listed_fetched_and_deleted() {
    let s = TestServer::start();
    let sid = conversation_with(&s, "hooks", &["alice"], 0);
    let base = format!("/v1/Conversations/{sid}/Webhooks");
    let r = s.post(
        &base,
        &[
            ("Target", "webhook"),
            ("Configuration.Url", "http://127.0.0.1:9/a"),
            ("Configuration.Method", "get"),
            ("Configuration.Filters", "onMessageAdded"),
            ("Configuration.Filters", "onParticipantAdded"),
        ],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let hook = r.body["sid"].as_str().unwrap().to_owned();
    assert!(hook.starts_with("WH"));
    assert_eq!(r.body["target"], "webhook");
    assert_eq!(r.body["conversation_sid"], sid);
    assert_eq!(r.body["configuration"]["method"], "get");
    assert_eq!(
        r.body["configuration"]["filters"],
        serde_json::json!(["onMessageAdded", "onParticipantAdded"])
    );
    let r = s.post(
        &base,
        &[
            ("Target", "trigger"),
            ("Configuration.Url", "http://127.0.0.1:9/b"),
            ("Configuration.Triggers", "help"),
        ],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        r.body["configuration"]["triggers"],
        serde_json::json!(["help"])
    );
    let trigger = r.body["sid"].as_str().unwrap().to_owned();

    // Paged by SID; by unique name and under the service prefix too.
    let first = s.get(&format!("{base}?PageSize=1"));
    assert_eq!(count(&first, "webhooks"), 1);
    let next = first.body["meta"]["next_page_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = s.get(&next);
    assert_eq!(count(&second, "webhooks"), 1);
    assert!(second.body["meta"]["next_page_url"].is_null());
    assert_ne!(
        first.body["webhooks"][0]["sid"],
        second.body["webhooks"][0]["sid"]
    );
    let scoped = format!(
        "/v1/Services/{}/Conversations/hooks/Webhooks/{hook}",
        s.service
    );
    let r = s.get(&scoped);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["url"],
        format!(
            "{}/v1/Services/{}/Conversations/{sid}/Webhooks/{hook}",
            s.base, s.service
        )
    );
    assert_error(&s.get(&format!("{base}?PageToken=garbage")), 400, 20001);

    // Updated in place: the parts given change, the others stay.
    let one = format!("{base}/{hook}");
    let r = s.post(
        &one,
        &[
            ("Configuration.Url", "http://127.0.0.1:9/a2"),
            ("Configuration.Method", "POST"),
        ],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["sid"], hook);
    assert_eq!(r.body["target"], "webhook");
    assert_eq!(r.body["configuration"]["url"], "http://127.0.0.1:9/a2");
    assert_eq!(r.body["configuration"]["method"], "post");
    assert_eq!(
        r.body["configuration"]["filters"],
        serde_json::json!(["onMessageAdded", "onParticipantAdded"])
    );
    assert!(
        r.body["date_updated"].as_str() >= r.body["date_created"].as_str(),
        "{:?}",
        r.body
    );
    let r = s.post(&one, &[("Configuration.Filters", "onMessageRemoved")]);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["configuration"]["filters"],
        serde_json::json!(["onMessageRemoved"])
    );
    assert_eq!(r.body["configuration"]["url"], "http://127.0.0.1:9/a2");
    let r = s.post(
        &format!(
            "/v1/Services/{}/Conversations/hooks/Webhooks/{trigger}",
            s.service
        ),
        &[
            ("Configuration.Triggers", "urgent"),
            ("Configuration.Triggers", "sos"),
        ],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["target"], "trigger");
    assert_eq!(
        r.body["configuration"]["triggers"],
        serde_json::json!(["urgent", "sos"])
    );
    assert_eq!(r.body["configuration"]["url"], "http://127.0.0.1:9/b");
    assert_eq!(
        s.get(&one).body["configuration"]["url"],
        "http://127.0.0.1:9/a2"
    );

    // Bad updates are refused and write nothing.
    let before = s.get(&one).body;
    let head = s.engine().log().head().next_position;
    let trigger_path = format!("{base}/{trigger}");
    for (path, bad) in [
        (
            &one,
            vec![(
                "Configuration.FlowSid",
                "FW0123456789abcdef0123456789abcdef",
            )],
        ),
        (&one, vec![("Configuration.Filters", "onMessageSend")]),
        (&one, vec![("Configuration.Url", "not a url")]),
        (&one, vec![("Configuration.Method", "PUT")]),
        (&one, vec![("Configuration.Triggers", "help")]),
        (&one, vec![("Configuration.ReplayAfter", "3")]),
        (&one, vec![("Target", "trigger")]),
        (
            &trigger_path,
            vec![("Configuration.Filters", "onMessageAdded")],
        ),
        (&trigger_path, vec![("Configuration.Triggers", "two words")]),
    ] {
        assert_error(&s.post(path, &bad), 400, 20001);
    }
    assert_eq!(
        s.engine().log().head().next_position,
        head,
        "nothing was written"
    );
    assert_eq!(s.get(&one).body, before);
    let other_conversation = conversation_with(&s, "elsewhere", &["carol"], 0);
    for path in [
        format!("/v1/Conversations/{other_conversation}/Webhooks/{hook}"),
        format!("{base}/WH00000000000000000000000000000000"),
        format!("/v1/Conversations/CH00000000000000000000000000000000/Webhooks/{hook}"),
    ] {
        assert_error(
            &s.post(&path, &[("Configuration.Url", "http://127.0.0.1:9/z")]),
            404,
            20404,
        );
    }
    assert_eq!(s.get(&one).body, before);
    for bad in [
        vec![("Target", "studio"), ("Configuration.FlowSid", "FW1")],
        vec![
            ("Target", "studio"),
            ("Configuration.Url", "http://127.0.0.1:9/c"),
        ],
        vec![
            ("Target", "webhook"),
            ("Configuration.Url", "http://127.0.0.1:9/c"),
        ],
        vec![
            ("Target", "webhook"),
            ("Configuration.Url", "http://127.0.0.1:9/c"),
            ("Configuration.Filters", "onMessageSend"),
        ],
        vec![
            ("Target", "webhook"),
            ("Configuration.Url", "http://127.0.0.1:9/c"),
            ("Configuration.Filters", "onMessageAdded"),
            ("Configuration.ReplayAfter", "3"),
        ],
        vec![("Target", "trigger"), ("Configuration.Triggers", "help")],
        vec![("Target", "bell")],
    ] {
        assert_error(&s.post(&base, &bad), 400, 20001);
    }
    assert_eq!(count(&s.get(&base), "webhooks"), 2, "nothing was written");

    // Another conversation's webhook, a missing one, a missing conversation.
    let other = conversation_with(&s, "other", &["bob"], 0);
    assert_error(
        &s.get(&format!("/v1/Conversations/{other}/Webhooks/{hook}")),
        404,
        20404,
    );
    assert_error(
        &s.get(&format!("{base}/WH00000000000000000000000000000000")),
        404,
        20404,
    );
    assert_error(
        &s.get("/v1/Conversations/CH00000000000000000000000000000000/Webhooks"),
        404,
        20404,
    );

    assert_eq!(s.delete(&format!("{base}/{hook}")).status, 204);
    assert_error(&s.get(&format!("{base}/{hook}")), 404, 20404);
    assert_eq!(count(&s.get(&base), "webhooks"), 1);
}

#[test]
fn address_configurations_live_in_a_service_and_are_listed_across_services() {
    let s = TestServer::start();
    let r = s.post(
        "/v1/Configuration/Addresses",
        &[
            ("Type", "sms"),
            ("Address", "+15550001"),
            ("FriendlyName", "main line"),
            ("AutoCreation.Enabled", "true"),
        ],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sid = r.body["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("IG"));
    assert_eq!(r.body["type"], "sms");
    assert_eq!(r.body["auto_creation"]["enabled"], true);
    assert_eq!(
        r.body["auto_creation"]["conversation_service_sid"],
        s.service
    );
    assert_eq!(r.body["auto_creation"]["type"], "default");
    assert!(r.body["address_country"].is_null());
    assert_eq!(
        r.body["url"],
        format!("{}/v1/Configuration/Addresses/{sid}", s.base)
    );

    let second = s.post("/v1/Services", &[("FriendlyName", "second")]);
    let second = second.body["sid"].as_str().unwrap().to_owned();
    let r = s.post(
        "/v1/Configuration/Addresses",
        &[
            ("Type", "whatsapp"),
            ("Address", "whatsapp:+15550002"),
            ("AutoCreation.Enabled", "true"),
            ("AutoCreation.ConversationServiceSid", &second),
            ("AutoCreation.WebhookUrl", "http://127.0.0.1:9/auto"),
        ],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let wa = r.body["sid"].as_str().unwrap().to_owned();
    assert_eq!(r.body["auto_creation"]["conversation_service_sid"], second);
    assert_eq!(
        r.body["auto_creation"]["webhook_url"],
        "http://127.0.0.1:9/auto"
    );

    let all = s.get("/v1/Configuration/Addresses?PageSize=1");
    assert_eq!(count(&all, "address_configurations"), 1);
    let next = all.body["meta"]["next_page_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(count(&s.get(&next), "address_configurations"), 1);
    let sms = s.get("/v1/Configuration/Addresses?Type=sms");
    assert_eq!(count(&sms, "address_configurations"), 1);
    assert_eq!(sms.body["address_configurations"][0]["sid"], sid);
    assert_eq!(
        s.get(&format!("/v1/Configuration/Addresses/{wa}")).status,
        200
    );

    let r = s.post(
        &format!("/v1/Configuration/Addresses/{sid}"),
        &[
            ("FriendlyName", "renamed"),
            ("AutoCreation.Enabled", "false"),
        ],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["friendly_name"], "renamed");
    assert_eq!(r.body["auto_creation"]["enabled"], false);

    let before = s.get("/v1/Configuration/Addresses").body;
    for bad in [
        vec![
            ("Type", "sms"),
            ("Address", "+15550003"),
            ("AutoCreation.Type", "webhook"),
        ],
        vec![
            ("Type", "sms"),
            ("Address", "+15550003"),
            ("AddressCountry", "US"),
        ],
        vec![("Type", "pager"), ("Address", "+15550003")],
        vec![("Address", "+15550003")],
        vec![
            ("Type", "sms"),
            ("Address", "+15550003"),
            ("AutoCreation.Enabled", "maybe"),
        ],
        vec![
            ("Type", "sms"),
            ("Address", "+15550003"),
            (
                "AutoCreation.ConversationServiceSid",
                "IS00000000000000000000000000000000",
            ),
        ],
    ] {
        assert_error(&s.post("/v1/Configuration/Addresses", &bad), 400, 20001);
    }
    assert_error(
        &s.post(
            &format!("/v1/Configuration/Addresses/{sid}"),
            &[("AutoCreation.ConversationServiceSid", &second)],
        ),
        400,
        20001,
    );
    assert_error(
        &s.post(
            "/v1/Configuration/Addresses",
            &[("Type", "sms"), ("Address", "+15550001")],
        ),
        409,
        20409,
    );
    assert_eq!(
        s.get("/v1/Configuration/Addresses").body,
        before,
        "nothing written"
    );

    assert_error(
        &s.get("/v1/Configuration/Addresses/IG00000000000000000000000000000000"),
        404,
        20404,
    );
    assert_eq!(
        s.delete(&format!("/v1/Configuration/Addresses/{wa}"))
            .status,
        204
    );
    assert_error(
        &s.get(&format!("/v1/Configuration/Addresses/{wa}")),
        404,
        20404,
    );
    let left: Vec<Value> = s.get("/v1/Configuration/Addresses").body["address_configurations"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(left.len(), 1);
}

#[test]
fn autocreation_of_type_webhook_and_studio_is_taken_and_answered() {
    let s = TestServer::start();
    let r = s.post(
        "/v1/Configuration/Addresses",
        &[
            ("Type", "sms"),
            ("Address", "+15550011"),
            ("AutoCreation.Enabled", "true"),
            ("AutoCreation.Type", "webhook"),
            ("AutoCreation.WebhookUrl", "http://127.0.0.1:9/auto"),
            ("AutoCreation.WebhookMethod", "GET"),
            ("AutoCreation.WebhookFilters", "onParticipantAdded"),
            ("AutoCreation.WebhookFilters", "onMessageAdded"),
        ],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let a = &r.body["auto_creation"];
    assert_eq!(a["type"], "webhook");
    assert_eq!(a["webhook_method"], "get");
    assert_eq!(
        a["webhook_filters"],
        serde_json::json!(["onMessageAdded", "onParticipantAdded"]),
        "stored without repeats in Twilio's order"
    );
    let sid = r.body["sid"].as_str().unwrap().to_owned();
    let flow = "FW0123456789abcdef0123456789abcdef";
    let r = s.post(
        &format!("/v1/Configuration/Addresses/{sid}"),
        &[
            ("AutoCreation.Type", "studio"),
            ("AutoCreation.StudioFlowSid", flow),
            ("AutoCreation.StudioRetryCount", "2"),
            ("AutoCreation.WebhookUrl", ""),
        ],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["auto_creation"]["type"], "studio");
    assert_eq!(r.body["auto_creation"]["studio_flow_sid"], flow);
    assert_eq!(r.body["auto_creation"]["studio_retry_count"], 2);
    // A studio type without a flow, a bad flow SID, an unknown filter:
    // refused, nothing written.
    let before = s.get(&format!("/v1/Configuration/Addresses/{sid}")).body;
    for bad in [
        vec![
            ("Type", "sms"),
            ("Address", "+15550012"),
            ("AutoCreation.Type", "studio"),
        ],
        vec![
            ("Type", "sms"),
            ("Address", "+15550012"),
            ("AutoCreation.StudioFlowSid", "FW1"),
        ],
        vec![
            ("Type", "sms"),
            ("Address", "+15550012"),
            ("AutoCreation.WebhookFilters", "onMessageSend"),
        ],
    ] {
        assert_error(&s.post("/v1/Configuration/Addresses", &bad), 400, 20001);
    }
    assert_eq!(
        s.get(&format!("/v1/Configuration/Addresses/{sid}")).body,
        before
    );
    assert_eq!(
        count(
            &s.get("/v1/Configuration/Addresses"),
            "address_configurations"
        ),
        1
    );
}

#[test]
fn a_studio_conversation_webhook_names_its_flow_and_takes_only_its_parameters() {
    let s = TestServer::start();
    let conversation = conversation_with(&s, "studio", &["alice"], 2);
    let base = format!("/v1/Conversations/{conversation}/Webhooks");
    let flow = "FW0123456789abcdef0123456789abcdef";
    let r = s.post(
        &base,
        &[
            ("Target", "studio"),
            ("Configuration.FlowSid", flow),
            ("Configuration.ReplayAfter", "0"),
        ],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["target"], "studio");
    assert_eq!(r.body["configuration"]["flow_sid"], flow);
    assert_eq!(r.body["configuration"]["replay_after"], 0);
    assert!(r.body["configuration"]["url"].is_null(), "{:?}", r.body);
    let hook = r.body["sid"].as_str().unwrap().to_owned();
    assert_eq!(
        s.get(&format!("{base}/{hook}")).body["configuration"]["flow_sid"],
        flow
    );
    for bad in [
        vec![("Target", "studio")],
        vec![
            ("Target", "studio"),
            ("Configuration.FlowSid", flow),
            ("Configuration.Url", "http://127.0.0.1:9/c"),
        ],
    ] {
        assert_error(&s.post(&base, &bad), 400, 20001);
    }
    assert_eq!(count(&s.get(&base), "webhooks"), 1, "nothing else written");

    // Updated in place: another flow, the same replay point; no URL
    // parameters, and a bad flow SID, refused without writing.
    let other_flow = "FWfedcba9876543210fedcba9876543210";
    let r = s.post(
        &format!("{base}/{hook}"),
        &[("Configuration.FlowSid", other_flow)],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["target"], "studio");
    assert_eq!(r.body["configuration"]["flow_sid"], other_flow);
    assert_eq!(r.body["configuration"]["replay_after"], 0);
    let head = s.engine().log().head().next_position;
    for bad in [
        vec![("Configuration.Url", "http://127.0.0.1:9/c")],
        vec![("Configuration.Filters", "onMessageAdded")],
        vec![("Configuration.FlowSid", "FW1")],
        vec![("Configuration.ReplayAfter", "1")],
    ] {
        assert_error(&s.post(&format!("{base}/{hook}"), &bad), 400, 20001);
    }
    assert_eq!(
        s.engine().log().head().next_position,
        head,
        "nothing was written"
    );
    assert_eq!(
        s.get(&format!("{base}/{hook}")).body["configuration"]["flow_sid"],
        other_flow
    );
}

#[test]
fn an_updated_conversation_webhook_is_called_at_its_new_url_for_its_new_filters() {
    let s = TestServer::start();
    let sid = conversation_with(&s, "moved", &["alice"], 0);
    let r = s.post(
        &format!("/v1/Conversations/{sid}/Webhooks"),
        &[
            ("Target", "webhook"),
            ("Configuration.Url", "http://127.0.0.1:9/old"),
            ("Configuration.Filters", "onConversationRemoved"),
        ],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let hook = r.body["sid"].as_str().unwrap().to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/new-hook", listener.local_addr().unwrap());
    let r = s.post(
        &format!("/v1/Conversations/{sid}/Webhooks/{hook}"),
        &[
            ("Configuration.Url", &url),
            ("Configuration.Filters", "onMessageAdded"),
        ],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (got, params) = post_and_receive(&s, &sid, "after the update", &listener);
    assert_eq!(got.path, "/new-hook");
    assert!(
        params.contains(&("EventType".to_owned(), "onMessageAdded".to_owned())),
        "{params:?}"
    );
}
