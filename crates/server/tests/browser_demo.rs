//! The browser demo in a real headless browser: two Chromium instances,
//! driven through chromedriver (WebDriver over HTTP on loopback, spoken
//! with the same `ureq` client the other tests use), open `/demo` as
//! alice and bob in one conversation. alice types (bob sees the typing
//! indicator), sends (bob sees the message), bob's page marks it read
//! (alice sees the read mark), bob answers (alice sees it).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`cargo xtask setup`
//! installs them when run as root); without them it prints "skipped: …"
//! and passes. Participants are added through the engine
//! (`TestServer::state`): the REST Participants resource is another part
//! of issue 12 (the page tries it, and carries on when it answers 404 or
//! 409).

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use events::command::{AddParticipant, CommandId, Keyed, ParticipantSpec};
use events::{ConversationSid, ServiceSid};
use serde_json::{json, Value};
use support::TestServer;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The deadline of each wait on the browsers (page loads, WebSocket
/// round trips, chromedriver's start).
const WAIT: Duration = Duration::from_secs(60);
/// The deadline of one WebDriver request (a session start launches a
/// browser: slow on a busy machine).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);
/// WebDriver's element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver, killed and reaped when dropped.
struct Driver {
    child: Child,
    url: String,
    agent: ureq::Agent,
}

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .timeout_global(Some(REQUEST_TIMEOUT))
                .http_status_as_error(false)
                .build(),
        );
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            agent,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = driver
                .agent
                .get(&format!("{}/status", driver.url))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver ready within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.url);
        let response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(json!({})).to_string()),
        };
        let mut response = response.expect("chromedriver answers");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("an answer");
        let v: Value = serde_json::from_str(&text).expect("a JSON answer");
        assert!(status < 400, "WebDriver {method} {path}: {status} {v}");
        v["value"].clone()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One headless browser (a WebDriver session) with its own profile.
struct Browser<'a> {
    driver: &'a Driver,
    session: String,
}

impl<'a> Browser<'a> {
    fn open(driver: &'a Driver, profile: &Path) -> Browser<'a> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         format!("--user-data-dir={}", profile.display())],
            },
        }}});
        let v = driver.call("POST", "/session", Some(caps));
        Browser {
            driver,
            session: v["sessionId"].as_str().unwrap().to_owned(),
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn go(&self, url: &str) {
        self.driver
            .call("POST", &self.path("/url"), Some(json!({ "url": url })));
    }

    fn js(&self, script: &str) -> Value {
        self.driver.call(
            "POST",
            &self.path("/execute/sync"),
            Some(json!({ "script": script, "args": [] })),
        )
    }

    fn element(&self, css: &str) -> String {
        let v = self.driver.call(
            "POST",
            &self.path("/element"),
            Some(json!({ "using": "css selector", "value": css })),
        );
        v[ELEMENT].as_str().unwrap().to_owned()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.driver.call(
            "POST",
            &self.path(&format!("/element/{e}/value")),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let e = self.element(css);
        self.driver
            .call("POST", &self.path(&format!("/element/{e}/click")), None);
    }

    fn text(&self, css: &str) -> String {
        self.js(&format!(
            "const e = document.querySelector({css:?}); return e ? e.innerText : '';"
        ))
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Waits until the text of `css` satisfies `check`, within [`WAIT`].
    fn wait_for(&self, what: &str, css: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let t = self.text(css);
            if check(&t) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {css} is {t:?} after {WAIT:?}; page log: {:?}",
                self.text("#log")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        let _ = self
            .driver
            .agent
            .delete(&format!("{}{}", self.driver.url, self.path("")))
            .call();
    }
}

#[test]
fn two_browser_pages_chat_live_with_typing_and_read_state() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        println!("skipped: {CHROMIUM} or {CHROMEDRIVER} is missing (cargo xtask setup installs them as root)");
        return;
    }
    let s = TestServer::start();
    let made = s.post(
        "/v1/Conversations",
        &[("UniqueName", "demo"), ("FriendlyName", "Demo")],
    );
    assert_eq!(made.status, 201, "{:?}", made.body);
    let service: ServiceSid = s.service.parse().unwrap();
    let conversation: ConversationSid = made.body["sid"].as_str().unwrap().parse().unwrap();
    for who in ["alice", "bob"] {
        s.state()
            .engine
            .execute(
                AddParticipant::new(service, conversation, ParticipantSpec::chat(who))
                    .keyed(CommandId::fresh()),
            )
            .unwrap();
    }
    let page = s.get("/demo");
    assert_eq!(page.status, 200);

    let profiles = tempfile::tempdir().unwrap();
    let driver = Driver::start();
    let open = |who: &str| {
        let b = Browser::open(&driver, &profiles.path().join(who));
        b.go(&format!(
            "{}/demo#key={}&secret={}&identity={who}&conversation=demo&join=1",
            s.base, s.api_key.0, s.api_key.1
        ));
        b
    };
    let alice = open("alice");
    let bob = open("bob");
    for b in [&alice, &bob] {
        b.wait_for("connected", "#status", |t| t == "live");
    }

    // alice types: bob sees it; she sends: bob sees the message.
    alice.type_into("#input", "hello bob");
    bob.wait_for("alice typing", "#typing", |t| t.contains("alice is typing"));
    alice.click("#send");
    bob.wait_for("alice's message", "#messages", |t| {
        t.contains("alice: hello bob")
    });
    // bob's page read it: alice's message shows the read mark.
    alice.wait_for("the read mark", "#messages li.mine .meta", |t| {
        t.contains("✓ read")
    });
    // bob answers.
    bob.type_into("#input", "hi alice");
    bob.click("#send");
    let seen = alice.wait_for("bob's answer", "#messages", |t| t.contains("bob: hi alice"));
    assert!(
        seen.find("alice: hello bob") < seen.find("bob: hi alice"),
        "{seen}"
    );
    for b in [&alice, &bob] {
        let log = b.text("#log");
        assert!(!log.contains("error:"), "the page logged an error: {log}");
    }
}
