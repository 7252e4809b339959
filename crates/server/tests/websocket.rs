//! The real-time WebSocket over loopback: two users post, type and read;
//! one drops and resumes with `since` and misses nothing; a user reaches
//! only its own conversations; bad tokens and requests are refused and
//! write nothing; a client that stops reading is closed with its resume
//! cursor and loses nothing; an expiring token and a server shutdown close
//! with the cursor.
//!
//! Participants are added through the engine (`TestServer::state`): the
//! REST Participants resource is another part of issue 12.

mod support;

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use events::command::{AddParticipant, CreateConversation, Keyed, ParticipantSpec, PostMessage};
use events::{ConversationSid, ServiceSid};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::TestServer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The deadline of every wait for a frame.
const WAIT: Duration = Duration::from_secs(20);
/// How long a test listens to be sure nothing more arrives.
const QUIET: Duration = Duration::from_millis(300);

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames read while waiting for something else.
    buffered: VecDeque<Value>,
    /// The cursor of the last event received.
    cursor: Option<u64>,
    /// Every `messageAdded` index received, in order of arrival.
    indices: Vec<u64>,
    /// The close frame, once one came: (code, reason JSON).
    closed: Option<(u16, Value)>,
}

enum Got {
    Frame(Value),
    Closed,
    Silent,
}

impl Client {
    async fn connect(url: &str) -> Client {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connects within the deadline")
            .expect("the upgrade succeeds");
        Client {
            ws,
            buffered: VecDeque::new(),
            cursor: None,
            indices: Vec::new(),
            closed: None,
        }
    }

    /// The HTTP status a refused upgrade answered, and its body.
    async fn refused(url: &str) -> (u16, Value) {
        match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("answers within the deadline")
        {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                let body = r
                    .body()
                    .as_ref()
                    .map(|b| serde_json::from_slice(b).unwrap())
                    .unwrap_or(Value::Null);
                (r.status().as_u16(), body)
            }
            other => panic!("expected an HTTP refusal, got {other:?}"),
        }
    }

    async fn send(&mut self, frame: Value) {
        tokio::time::timeout(WAIT, self.ws.send(Message::Text(frame.to_string().into())))
            .await
            .expect("sends within the deadline")
            .expect("the socket is open");
    }

    /// The next frame from the socket within `wait`, tracking cursors and
    /// message indices.
    async fn read(&mut self, wait: Duration) -> Got {
        if self.closed.is_some() {
            return Got::Closed;
        }
        loop {
            let next = match tokio::time::timeout(wait, self.ws.next()).await {
                Err(_) => return Got::Silent,
                Ok(n) => n,
            };
            match next {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "event" {
                        if let Some(c) = v["cursor"].as_u64() {
                            assert!(
                                self.cursor.is_none_or(|old| c > old),
                                "cursors increase: {v}"
                            );
                            self.cursor = Some(c);
                        }
                        if v["event"] == "messageAdded" {
                            self.indices
                                .push(v["data"]["message_added"]["index"].as_u64().unwrap());
                        }
                    }
                    return Got::Frame(v);
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), serde_json::from_str(&f.reason).unwrap()))
                        .unwrap_or((1005, Value::Null));
                    self.closed = Some((code, reason));
                    return Got::Closed;
                }
                Some(Ok(_)) => continue,
                None | Some(Err(_)) => {
                    self.closed.get_or_insert((1006, Value::Null));
                    return Got::Closed;
                }
            }
        }
    }

    /// The first frame (buffered or new) that `matches`, within [`WAIT`].
    async fn expect(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.buffered.iter().position(&matches) {
            return self.buffered.remove(i).unwrap();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read(left).await {
                Got::Frame(v) if matches(&v) => return v,
                Got::Frame(v) => self.buffered.push_back(v),
                Got::Closed => panic!("closed ({:?}) while waiting for {what}", self.closed),
                Got::Silent => panic!("no {what} within {WAIT:?}; had {:?}", self.buffered),
            }
        }
    }

    async fn event(&mut self, name: &str) -> Value {
        self.expect(name, |v| v["type"] == "event" && v["event"] == name)
            .await
    }

    /// Sends a request and returns its reply (`result` or `error`).
    async fn request(&mut self, mut body: Value, id: &str) -> Value {
        body["id"] = json!(id);
        self.send(body).await;
        self.expect(&format!("the reply to {id}"), |v| {
            (v["type"] == "result" || v["type"] == "error") && v["id"] == id
        })
        .await
    }

    /// Reads until the server closes; returns (code, reason).
    async fn until_closed(&mut self) -> (u16, Value) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read(left).await {
                Got::Frame(v) => self.buffered.push_back(v),
                Got::Closed => return self.closed.clone().unwrap(),
                Got::Silent => panic!("not closed within {WAIT:?}"),
            }
        }
    }

    /// Collects `messageAdded` events until `n` indices in all were seen.
    async fn messages_until(&mut self, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.indices.len() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read(left).await {
                Got::Frame(_) => {}
                Got::Closed => panic!(
                    "closed ({:?}) at {} of {n}",
                    self.closed,
                    self.indices.len()
                ),
                Got::Silent => panic!("{} of {n} messages within {WAIT:?}", self.indices.len()),
            }
        }
    }

    /// Everything that arrives until [`QUIET`] passes with nothing.
    async fn drain(&mut self) -> Vec<Value> {
        let mut out: Vec<Value> = self.buffered.drain(..).collect();
        while let Got::Frame(v) = self.read(QUIET).await {
            out.push(v);
        }
        out
    }
}

fn ws_url(s: &TestServer, query: &str) -> String {
    format!("{}/v1/Realtime{query}", s.base.replace("http://", "ws://"))
}

fn token(s: &TestServer, identity: &str) -> String {
    let r = s.post("/v1/Tokens", &[("Identity", identity)]);
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["token"].as_str().unwrap().to_owned()
}

struct Room {
    service: ServiceSid,
    conversation: ConversationSid,
}

/// A conversation with `members` as chat participants.
fn room(s: &TestServer, members: &[&str]) -> Room {
    let service: ServiceSid = s.service.parse().unwrap();
    let engine = &s.state().engine;
    let conversation = engine
        .execute(CreateConversation::new(service).keyed(events::command::CommandId::fresh()))
        .unwrap();
    for m in members {
        engine
            .execute(
                AddParticipant::new(service, conversation, ParticipantSpec::chat(*m))
                    .keyed(events::command::CommandId::fresh()),
            )
            .unwrap();
    }
    Room {
        service,
        conversation,
    }
}

fn host_post(s: &TestServer, room: &Room, body: &str) {
    s.state()
        .engine
        .execute(
            PostMessage::new(room.service, room.conversation)
                .author("system")
                .body(body)
                .keyed(events::command::CommandId::fresh()),
        )
        .unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn two_users_chat_type_read_and_a_dropped_one_resumes_with_since_missing_nothing() {
    let s = TestServer::start();
    let room = room(&s, &["alice", "bob"]);
    let conv = room.conversation.to_string();
    runtime().block_on(async {
        // alice authenticates in the query, bob in his first message.
        let mut alice = Client::connect(&ws_url(&s, &format!("?token={}", token(&s, "alice")))).await;
        let hello = alice.expect("connected", |v| v["type"] == "connected").await;
        assert_eq!(hello["identity"], "alice");
        assert_eq!(hello["chat_service_sid"], s.service);
        let mut bob = Client::connect(&ws_url(&s, "")).await;
        bob.send(json!({"type": "authenticate", "token": token(&s, "bob")}))
            .await;
        assert_eq!(
            bob.expect("connected", |v| v["type"] == "connected").await["identity"],
            "bob"
        );

        // alice posts; both see it, with its cursor.
        let sent = alice
            .request(json!({"type": "send_message", "conversation_sid": conv, "body": "hello"}), "a1")
            .await;
        assert_eq!(sent["type"], "result", "{sent}");
        assert_eq!(sent["result"]["index"], 0);
        let got = bob.event("messageAdded").await;
        assert_eq!(got["conversation_sid"], conv);
        assert_eq!(got["data"]["message_added"]["body"], "hello");
        assert_eq!(got["data"]["message_added"]["author"], "alice");
        assert_eq!(got["cursor"], sent["result"]["cursor"]);
        alice.event("messageAdded").await;

        // bob types: alice sees it; his message ends it.
        let typed = bob
            .request(json!({"type": "typing", "conversation_sid": conv}), "b1")
            .await;
        assert_eq!(typed["type"], "result", "{typed}");
        let t = alice.event("typingStarted").await;
        assert_eq!(t["identity"], "bob");
        assert_eq!(t["cursor"], Value::Null);
        bob.request(json!({"type": "send_message", "conversation_sid": conv, "body": "hi alice"}), "b2")
            .await;
        assert_eq!(alice.event("typingEnded").await["identity"], "bob");
        alice.event("messageAdded").await;

        // bob reads both; alice sees his horizon move.
        let read = bob
            .request(json!({"type": "advance_read_horizon", "conversation_sid": conv, "index": 1}), "b3")
            .await;
        assert_eq!(read["result"]["last_read_message_index"], 1, "{read}");
        let h = alice
            .expect("bob's read horizon", |v| {
                v["event"] == "participantUpdated" && !v["data"]["read_horizon_updated"].is_null()
            })
            .await;
        assert_eq!(h["data"]["read_horizon_updated"]["last_read_message_index"], 1);

        // A fresh token extends the connection; another user's is refused.
        let renewed = alice
            .request(json!({"type": "update_token", "token": token(&s, "alice")}), "t1")
            .await;
        assert!(renewed["result"]["expires"].is_string(), "{renewed}");
        let stolen = alice
            .request(json!({"type": "update_token", "token": token(&s, "bob")}), "t2")
            .await;
        assert_eq!((stolen["status"].clone(), stolen["code"].clone()), (json!(401), json!(20101)), "{stolen}");

        // A retry under the same id is the same message, written once.
        let again = alice
            .request(json!({"type": "send_message", "conversation_sid": conv, "body": "hello"}), "a1")
            .await;
        assert_eq!(again["result"], sent["result"]);
        // The same id for something else is a conflict, not a second write.
        let reused = alice
            .request(json!({"type": "send_message", "conversation_sid": conv, "body": "other"}), "a1")
            .await;
        assert_eq!((reused["status"].clone(), reused["code"].clone()), (json!(409), json!(20409)), "{reused}");

        // bob drops; messages go on, from alice and from the host.
        bob.messages_until(2).await;
        let since = bob.cursor.expect("bob saw events");
        let before: Vec<u64> = bob.indices.clone();
        drop(bob);
        for i in 0..20 {
            if i % 2 == 0 {
                alice
                    .request(json!({"type": "send_message", "conversation_sid": conv, "body": format!("m{i}")}), &format!("a-m{i}"))
                    .await;
            } else {
                host_post(&s, &room, &format!("m{i}"));
            }
        }
        // bob resumes after his cursor: the 20 he missed, then live ones.
        let mut bob = Client::connect(&ws_url(&s, &format!("?token={}&since={since}", token(&s, "bob")))).await;
        let hello = bob.expect("connected", |v| v["type"] == "connected").await;
        assert_eq!(hello["cursor"], since);
        bob.cursor = Some(since);
        bob.messages_until(20).await;
        host_post(&s, &room, "live again");
        bob.messages_until(21).await;
        let mut all = before;
        all.extend(&bob.indices);
        assert_eq!(all, (0..23).collect::<Vec<u64>>(), "every index exactly once, in order");

        // History pages, as bob.
        let mut pages = Vec::new();
        let mut token_: Option<String> = None;
        loop {
            let mut q = json!({"type": "history", "conversation_sid": conv, "page_size": 10});
            if let Some(t) = &token_ {
                q["page_token"] = json!(t);
            }
            let page = bob.request(q, &format!("h{}", pages.len())).await;
            assert_eq!(page["type"], "result", "{page}");
            pages.push(page["result"]["messages"].as_array().unwrap().len());
            match page["result"]["next_page_token"].as_str() {
                Some(t) => token_ = Some(t.to_owned()),
                None => break,
            }
        }
        assert_eq!(pages, [10, 10, 3]);
        let newest = bob
            .request(json!({"type": "history", "conversation_sid": conv, "order": "desc", "page_size": 1}), "h-desc")
            .await;
        assert_eq!(newest["result"]["messages"][0]["body"], "live again");
        assert_eq!(newest["result"]["messages"][0]["index"], 22);
    });
}

#[test]
fn a_user_reaches_only_its_conversations_and_foreign_sids_answer_not_found() {
    let s = TestServer::start();
    let mine = room(&s, &["alice"]);
    let theirs = room(&s, &["carol"]);
    let unknown = "CH00000000000000000000000000000000";
    runtime().block_on(async {
        let mut alice =
            Client::connect(&ws_url(&s, &format!("?token={}", token(&s, "alice")))).await;
        alice
            .expect("connected", |v| v["type"] == "connected")
            .await;
        let head = s.state().engine.log().head().next_position;
        for conv in [theirs.conversation.to_string(), unknown.to_owned()] {
            let requests = [
                json!({"type": "send_message", "conversation_sid": conv, "body": "let me in"}),
                json!({"type": "typing", "conversation_sid": conv}),
                json!({"type": "advance_read_horizon", "conversation_sid": conv, "index": 0}),
                json!({"type": "history", "conversation_sid": conv}),
            ];
            for (i, r) in requests.into_iter().enumerate() {
                let reply = alice.request(r, &format!("{conv}-{i}")).await;
                assert_eq!(reply["type"], "error", "{reply}");
                assert_eq!(reply["status"], 404, "{reply}");
                assert_eq!(reply["code"], 20404, "{reply}");
                assert_eq!(
                    reply["message"],
                    format!("The requested resource conversation {conv} was not found")
                );
            }
        }
        assert_eq!(
            s.state().engine.log().head().next_position,
            head,
            "nothing was written"
        );
        // carol's conversation is busy; alice sees none of it, only hers.
        host_post(&s, &theirs, "secret");
        host_post(&s, &mine, "public");
        let seen = alice.event("messageAdded").await;
        assert_eq!(seen["conversation_sid"], mine.conversation.to_string());
        let rest = alice.drain().await;
        let theirs_sid = theirs.conversation.to_string();
        assert!(
            rest.iter()
                .all(|v| v["conversation_sid"] != theirs_sid.as_str()),
            "{rest:?}"
        );
    });
}

#[test]
fn bad_tokens_and_bad_requests_are_refused_and_write_nothing() {
    let s = TestServer::start();
    let room = room(&s, &["alice"]);
    let conv = room.conversation.to_string();
    let head = s.state().engine.log().head().next_position;
    runtime().block_on(async {
        // A forged token (signature broken), an expired one, garbage.
        let good = token(&s, "alice");
        let forged = format!("{}x", &good[..good.len() - 1]);
        let (status, body) = Client::refused(&ws_url(&s, &format!("?token={forged}"))).await;
        assert_eq!((status, body["code"].clone()), (401, json!(20101)), "{body}");
        let account = s.state().account.read().clone();
        let grant = server::token::ChatGrant {
            identity: "alice".into(),
            service: room.service,
        };
        let old = SystemTime::now() - Duration::from_secs(3 * 3600);
        let expired = server::token::mint(
            &account.account_sid,
            &account.api_keys[0],
            &grant,
            Duration::from_secs(3600),
            old,
        )
        .unwrap();
        let (status, body) = Client::refused(&ws_url(&s, &format!("?token={expired}"))).await;
        assert_eq!((status, body["code"].clone()), (401, json!(20104)), "{body}");
        let (status, _) = Client::refused(&ws_url(&s, "?token=abc")).await;
        assert_eq!(status, 401);
        // Unknown parameters and a bad cursor.
        let (status, body) = Client::refused(&ws_url(&s, &format!("?token={good}&Since=1"))).await;
        assert_eq!((status, body["code"].clone()), (400, json!(20001)), "{body}");
        let (status, _) = Client::refused(&ws_url(&s, &format!("?token={good}&since=soon"))).await;
        assert_eq!(status, 400);
        // A cursor ahead of the log: an error frame, then a close.
        let mut c = Client::connect(&ws_url(&s, &format!("?token={good}&since=999999"))).await;
        let e = c.expect("error", |v| v["type"] == "error").await;
        assert_eq!(e["code"], 20001, "{e}");
        assert_eq!(c.until_closed().await.0, server::ws::CLOSE_SESSION);
        // A first message that is not authenticate, with a bad token.
        let mut c = Client::connect(&ws_url(&s, "")).await;
        c.send(json!({"type": "authenticate", "token": forged})).await;
        assert_eq!(c.expect("error", |v| v["type"] == "error").await["code"], 20101);
        assert_eq!(c.until_closed().await.0, server::ws::CLOSE_POLICY);

        // Authenticated: malformed, unknown and over-limit requests.
        let mut alice = Client::connect(&ws_url(&s, &format!("?token={good}"))).await;
        alice.expect("connected", |v| v["type"] == "connected").await;
        let bad = [
            json!({"type": "send_message", "conversation_sid": conv, "body": "x", "colour": "red"}),
            json!({"type": "fly", "conversation_sid": conv}),
            json!({"type": "send_message", "conversation_sid": conv, "body": "x".repeat(events::limits::BODY_BYTES_MAX + 1)}),
            json!({"type": "send_message", "conversation_sid": conv, "body": "x", "attributes": "{not json"}),
            json!({"type": "advance_read_horizon", "conversation_sid": conv, "index": "last"}),
            json!({"type": "history", "conversation_sid": conv, "page_size": 101}),
            json!({"type": "history", "conversation_sid": conv, "order": "sideways"}),
            json!({"type": "authenticate", "token": good}),
        ];
        for (i, r) in bad.into_iter().enumerate() {
            let reply = alice.request(r, &format!("bad-{i}")).await;
            assert_eq!(reply["type"], "error", "{reply}");
            assert_eq!(reply["status"], 400, "{reply}");
            assert_eq!(reply["code"], 20001, "{reply}");
            assert_eq!(reply["id"], format!("bad-{i}"));
        }
        alice.send(json!("not an object")).await;
        let e = alice.expect("error", |v| v["type"] == "error").await;
        assert_eq!(e["code"], 20001);
        assert_eq!(s.state().engine.log().head().next_position, head, "nothing was written");
        // The socket is still usable.
        let ok = alice
            .request(json!({"type": "send_message", "conversation_sid": conv, "body": "fine"}), "ok")
            .await;
        assert_eq!(ok["type"], "result", "{ok}");
    });
    // A plain GET is no upgrade: a Twilio error body, not a socket.
    let plain = s.get("/v1/Realtime");
    assert!((400..500).contains(&plain.status), "{plain:?}");
    assert_eq!(plain.body["code"], 20001, "{plain:?}");
    // POST /v1/Tokens refuses what it cannot sign.
    support::assert_error(&s.post("/v1/Tokens", &[]), 400, 20001);
    let too_long = (server::token::TOKEN_TTL_SECS_MAX + 1).to_string();
    support::assert_error(
        &s.post("/v1/Tokens", &[("Identity", "a"), ("Ttl", &too_long)]),
        400,
        20001,
    );
    support::assert_error(
        &s.post("/v1/Tokens", &[("Identity", "a"), ("Colour", "red")]),
        400,
        20001,
    );
    let unknown_service = format!("IS{}", "0".repeat(32));
    support::assert_error(
        &s.post(
            "/v1/Tokens",
            &[("Identity", "a"), ("ChatServiceSid", &unknown_service)],
        ),
        404,
        20404,
    );
    let r = s.get_as("/v1/Tokens", &support::basic(&s.account_sid, "wrong"));
    support::assert_error(&r, 401, 20003);
}

#[test]
fn a_client_that_stops_reading_is_closed_with_its_cursor_and_resumes_losing_nothing() {
    let s = TestServer::start();
    let room = room(&s, &["slow"]);
    // Messages of 32 KiB, posted until the socket buffers and the 1 MiB
    // outbound bound are full and the server gives up on the client.
    let body = "x".repeat(events::limits::BODY_BYTES_MAX);
    let rt = runtime();
    let mut slow = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let addr = s.base.trim_start_matches("http://").parse().unwrap();
        let stream = tokio::time::timeout(WAIT, socket.connect(addr))
            .await
            .unwrap()
            .unwrap();
        let url = ws_url(&s, &format!("?token={}", token(&s, "slow")));
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)),
        )
        .await
        .unwrap()
        .unwrap();
        let mut c = Client {
            ws,
            buffered: VecDeque::new(),
            cursor: None,
            indices: Vec::new(),
            closed: None,
        };
        c.expect("connected", |v| v["type"] == "connected").await;
        c
    });
    // Post without reading until the server closes the connection, with
    // a deadline.
    let deadline = std::time::Instant::now() + WAIT * 3;
    let mut posted = 0u64;
    while s.state().realtime.slow_consumer_closes() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow client was never closed"
        );
        host_post(&s, &room, &body);
        posted += 1;
    }
    let (code, reason) = rt.block_on(slow.until_closed());
    assert_eq!(code, server::ws::CLOSE_SLOW_CONSUMER, "{reason}");
    assert_eq!(reason["reason"], "slow_consumer");
    assert_eq!(
        reason["cursor"].as_u64(),
        slow.cursor,
        "the close names the last cursor it sent"
    );
    assert!(slow.indices.len() < posted as usize);
    // Resume from the close cursor: everything else, exactly once.
    let since = reason["cursor"].as_u64().unwrap();
    rt.block_on(async {
        let mut again = Client::connect(&ws_url(
            &s,
            &format!("?token={}&since={since}", token(&s, "slow")),
        ))
        .await;
        again.cursor = Some(since);
        again
            .messages_until(posted as usize - slow.indices.len())
            .await;
        let mut all = slow.indices.clone();
        all.extend(&again.indices);
        assert_eq!(all, (0..posted).collect::<Vec<u64>>());
        assert!(again
            .drain()
            .await
            .iter()
            .all(|v| v["event"] != "messageAdded"));
    });
}

#[test]
fn a_server_shutdown_closes_sockets_with_going_away_and_the_cursor() {
    let s = TestServer::start();
    let room = room(&s, &["alice"]);
    let rt = runtime();
    let mut alice = rt.block_on(async {
        let mut c = Client::connect(&ws_url(&s, &format!("?token={}", token(&s, "alice")))).await;
        c.expect("connected", |v| v["type"] == "connected").await;
        c
    });
    host_post(&s, &room, "before the end");
    rt.block_on(alice.messages_until(1));
    let _dir = s.stop();
    let (code, reason) = rt.block_on(alice.until_closed());
    assert_eq!(code, u16::from(CloseCode::Away), "{reason}");
    assert_eq!(reason["reason"], "going_away");
    assert_eq!(reason["cursor"].as_u64(), alice.cursor);
}

#[test]
fn a_connection_is_closed_when_its_token_expires_with_its_cursor() {
    let s = TestServer::start();
    let room = room(&s, &["alice"]);
    let account = s.state().account.read().clone();
    let grant = server::token::ChatGrant {
        identity: "alice".into(),
        service: room.service,
    };
    // Expired 2 s short of the clock-skew allowance: accepted now, closed
    // about 2 s later.
    let ttl = Duration::from_secs(3600);
    let skew = Duration::from_secs(server::token::CLOCK_SKEW_SECS - 2);
    let token = server::token::mint(
        &account.account_sid,
        &account.api_keys[0],
        &grant,
        ttl,
        SystemTime::now() - ttl - skew,
    )
    .unwrap();
    runtime().block_on(async {
        let mut alice = Client::connect(&ws_url(&s, &format!("?token={token}"))).await;
        alice
            .expect("connected", |v| v["type"] == "connected")
            .await;
        host_post(&s, &room, "before it expires");
        alice.messages_until(1).await;
        let (code, reason) = alice.until_closed().await;
        assert_eq!(code, server::ws::CLOSE_TOKEN_EXPIRED, "{reason}");
        assert_eq!(reason["reason"], "token_expired");
        assert_eq!(reason["cursor"].as_u64(), alice.cursor);
    });
}
