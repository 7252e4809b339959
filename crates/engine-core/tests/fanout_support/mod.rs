//! Shared helpers for the fan-out, delivery, inbound and typing tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use engine_core::{
    ClientEvent, CommandError, Durability, Engine, EngineOptions, LogOptions, PostedMessage,
    Session, SessionStart, TypedCommand,
};
use events::*;

/// An engine in a temporary directory with one service.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub engine: Engine,
    pub service: ServiceSid,
    next_id: AtomicU64,
}

pub fn log_options() -> LogOptions {
    LogOptions::default().durability(Durability::Buffered)
}

pub fn open(options: EngineOptions) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), log_options(), options).unwrap();
    let mut f = Fixture {
        dir,
        engine,
        service: ServiceSid::default(),
        next_id: AtomicU64::new(0),
    };
    f.service = f.run(CreateService::new("test"));
    f
}

impl Fixture {
    /// Closes the engine and opens it again on the same directory.
    pub fn restart(self, options: EngineOptions) -> Fixture {
        let Fixture {
            dir,
            engine,
            service,
            next_id,
        } = self;
        drop(engine);
        let engine = reopen_at(dir.path(), options);
        Fixture {
            dir,
            engine,
            service,
            next_id,
        }
    }

    /// Executes `command` as the trusted host under a fresh idempotency key;
    /// returns the command's typed result.
    pub fn try_run<C: TypedCommand>(&self, command: C) -> Result<C::Output, CommandError> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.engine.execute(command.keyed(format!("test-{n}")))
    }

    /// [`Fixture::try_run`], panicking on a rejection.
    pub fn run<C: TypedCommand>(&self, command: C) -> C::Output {
        self.try_run(command).unwrap()
    }

    /// A new conversation in the fixture's service.
    pub fn conversation(&self) -> ConversationSid {
        self.run(CreateConversation::new(self.service))
    }

    /// Adds the chat user `identity` to `conversation`.
    pub fn join(&self, conversation: ConversationSid, identity: &str) -> ParticipantSid {
        let chat = ParticipantSpec::chat(identity);
        self.run(AddParticipant::new(self.service, conversation, chat))
    }

    /// Adds the messaging binding `address` (through `proxy`).
    pub fn join_binding(
        &self,
        conversation: ConversationSid,
        address: &str,
        proxy: &str,
    ) -> ParticipantSid {
        let binding = ParticipantSpec::binding(address, proxy);
        self.run(AddParticipant::new(self.service, conversation, binding))
    }

    /// `author` posts `body` in `conversation`.
    pub fn post(&self, conversation: ConversationSid, author: &str, body: &str) -> PostedMessage {
        self.run(
            PostMessage::new(self.service, conversation)
                .author(author)
                .body(body),
        )
    }

    /// A live session of `identity` in the fixture's service.
    pub fn live(&self, identity: &str) -> Session {
        self.engine
            .open_session(self.service, identity, SessionStart::Live)
            .unwrap()
    }

    pub fn head(&self) -> u64 {
        self.engine.log().head().next_position
    }
}

pub fn reopen_at(path: &Path, options: EngineOptions) -> Engine {
    Engine::open_with(path, log_options(), options).unwrap()
}

/// Receives until `n` events came or `timeout` passed.
pub fn take(session: &mut Session, n: usize, timeout: Duration) -> Vec<ClientEvent> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match session.recv_timeout(left).unwrap() {
            Some(e) => out.push(e),
            None => break,
        }
    }
    out
}

/// Whatever arrives within `quiet`.
pub fn rest(session: &mut Session, quiet: Duration) -> Vec<ClientEvent> {
    let mut out = Vec::new();
    while let Some(e) = session.recv_timeout(quiet).unwrap() {
        out.push(e);
    }
    out
}

/// `(cursor, name)` of each event.
pub fn names(events: &[ClientEvent]) -> Vec<(Option<u64>, &'static str)> {
    events.iter().map(|e| (e.cursor(), e.name())).collect()
}

pub fn kinds(events: &[ClientEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.name()).collect()
}

pub const WAIT: Duration = Duration::from_secs(10);
pub const QUIET: Duration = Duration::from_millis(150);

/// Waits until `check` holds, polling, or panics after [`WAIT`].
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs this test binary's test `test` alone in a child process with
/// `env` set to `store` (the child sees it and plays its part, typically
/// dying on purpose), and waits for it, at most three times [`WAIT`]
/// (past it the child is killed and this panics). Returns how it ended.
pub fn run_child(test: &str, env: &str, store: &Path) -> std::process::ExitStatus {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, store)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > WAIT * 3 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child running {test} did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
