//! A server on a loopback port in a temporary data directory, and a small
//! blocking HTTP client that speaks to it with the account's credentials.
//!
//! Every request has a deadline ([`REQUEST_TIMEOUT`]) and so does the
//! shutdown ([`SHUTDOWN_TIMEOUT`]): a hang fails the test in seconds.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use server::{Server, ServerConfig};

/// The deadline of every HTTP request a test makes.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The deadline for the server to drain and close its engine.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

/// A running server and its credentials.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `AC…`.
    pub account_sid: String,
    /// The auth token.
    pub auth_token: String,
    /// The API key made on first start.
    pub api_key: (String, String),
    /// The default service's SID.
    pub service: String,
    state: Option<server::AppState>,
    data_dir: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<Result<(), server::ServerError>>>,
    agent: ureq::Agent,
    _dir: Option<tempfile::TempDir>,
}

/// A response: status and parsed JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body as JSON.
    pub body: Value,
}

impl TestServer {
    /// A first start in a fresh temporary directory.
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().to_owned();
        let mut s = Self::start_in(&path, true);
        s._dir = Some(dir);
        s
    }

    /// Starts a server on `data_dir`; `first_start` says whether the
    /// directory is fresh (asserted: a restart must not make a new account).
    pub fn start_in(data_dir: &Path, first_start: bool) -> TestServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let config = ServerConfig {
            data_dir: data_dir.to_owned(),
            listen: "127.0.0.1:0".parse().unwrap(),
            ..ServerConfig::default()
        };
        let server = runtime
            .block_on(async { tokio::time::timeout(SHUTDOWN_TIMEOUT, Server::bind(&config)).await })
            .expect("the server binds within the deadline")
            .expect("the server starts");
        let base = server.base_url().to_owned();
        let account = server.state().account.read().clone();
        let state = server.state().clone();
        assert_eq!(
            server.first_start_credentials().is_some(),
            first_start,
            "credentials are made on a first start only"
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = runtime.spawn(server.run(async move {
            let _ = rx.await;
        }));
        let agent_config = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .build();
        TestServer {
            base,
            account_sid: account.account_sid.clone(),
            auth_token: account.auth_token.clone(),
            api_key: (
                account.api_keys[0].sid.clone(),
                account.api_keys[0].secret.clone(),
            ),
            service: account.default_chat_service_sid.to_string(),
            state: Some(state),
            data_dir: data_dir.to_owned(),
            runtime: Some(runtime),
            shutdown: Some(tx),
            served: Some(served),
            agent: ureq::Agent::new_with_config(agent_config),
            _dir: None,
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the server gracefully, within [`SHUTDOWN_TIMEOUT`], and
    /// returns its temporary directory (if it owns one) for a restart.
    pub fn stop(mut self) -> Option<tempfile::TempDir> {
        self.stop_inner();
        self._dir.take()
    }

    /// The server's engine, for a test's setup of what another resource
    /// would make (and for checks no resource answers).
    pub fn engine(&self) -> &engine_core::Engine {
        &self.state().engine
    }

    /// The server's shared state: its engine, for setting up what a test
    /// needs without going through REST. Released before the server stops,
    /// so the server closes its engine itself.
    pub fn state(&self) -> &server::AppState {
        self.state.as_ref().expect("the server is running")
    }

    fn stop_inner(&mut self) {
        self.state = None;
        if let (Some(tx), Some(served), Some(rt)) = (
            self.shutdown.take(),
            self.served.take(),
            self.runtime.take(),
        ) {
            let _ = tx.send(());
            let result = rt
                .block_on(async { tokio::time::timeout(SHUTDOWN_TIMEOUT, served).await })
                .expect("the server drains and closes within the deadline")
                .expect("the server task did not panic");
            result.expect("the server stopped cleanly");
            rt.shutdown_timeout(SHUTDOWN_TIMEOUT);
        }
    }

    fn auth(&self) -> String {
        basic(&self.account_sid, &self.auth_token)
    }

    /// `GET path` (relative to the base, or absolute) with the account's
    /// credentials.
    pub fn get(&self, path: &str) -> Reply {
        self.get_as(path, &self.auth())
    }

    /// `GET` with the given `Authorization` header value.
    pub fn get_as(&self, path: &str, authorization: &str) -> Reply {
        let response = self
            .agent
            .get(&self.url(path))
            .header("Authorization", authorization)
            .call();
        reply(response)
    }

    /// `POST path` with a form body.
    pub fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.post_with(path, form, &[])
    }

    /// `POST path` with a form body and extra headers.
    pub fn post_with(&self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Reply {
        let mut request = self
            .agent
            .post(&self.url(path))
            .header("Authorization", &self.auth());
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        reply(request.send_form(form.iter().copied()))
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Reply {
        let response = self
            .agent
            .delete(&self.url(path))
            .header("Authorization", &self.auth())
            .call();
        reply(response)
    }

    /// `POST path` with a raw body of `content_type` (a media upload).
    pub fn post_bytes(&self, path: &str, content_type: &str, bytes: &[u8]) -> Reply {
        let response = self
            .agent
            .post(&self.url(path))
            .header("Authorization", &self.auth())
            .header("Content-Type", content_type)
            .send(bytes);
        reply(response)
    }

    /// `GET path` answered with raw bytes: status, content type, body.
    pub fn get_bytes(&self, path: &str) -> (u16, String, Vec<u8>) {
        let mut response = self
            .agent
            .get(&self.url(path))
            .header("Authorization", &self.auth())
            .call()
            .expect("the request reached the server");
        let content_type = response
            .headers()
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .expect("the body is readable");
        (response.status().as_u16(), content_type, body)
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.stop_inner();
        }
    }
}

/// An HTTP Basic `Authorization` value.
pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut response = response.expect("the request reached the server");
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .expect("the body is readable text");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply { status, body }
}

/// Asserts a Twilio error body with `status` and `code`.
#[track_caller]
pub fn assert_error(reply: &Reply, status: u16, code: u64) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.body["status"], status, "{:?}", reply.body);
    assert_eq!(reply.body["code"], code, "{:?}", reply.body);
    assert!(reply.body["message"].is_string(), "{:?}", reply.body);
    assert_eq!(
        reply.body["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}"),
        "{:?}",
        reply.body
    );
}
