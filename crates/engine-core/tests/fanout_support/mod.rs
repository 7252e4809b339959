//! Shared helpers for the fan-out, delivery, inbound and typing tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use engine_core::{
    ClientEvent, CommandError, CommandOutcome, Durability, Engine, EngineOptions, LogOptions,
    Session,
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
    f.service = f
        .run(Command::CreateService(CreateService {
            friendly_name: "test".into(),
        }))
        .service_sid()
        .unwrap();
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

    pub fn try_run(&self, command: Command) -> Result<CommandOutcome, CommandError> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.engine.execute(CommandEnvelope {
            command_id: CommandId::from_key(format!("test-{n}").as_bytes()),
            acting_identity: None,
            expected_version: None,
            command,
        })
    }

    pub fn run(&self, command: Command) -> CommandOutcome {
        self.try_run(command).unwrap()
    }

    pub fn conversation(&self) -> ConversationSid {
        self.run(Command::CreateConversation(CreateConversation {
            service: self.service,
            spec: ConversationSpec::default(),
        }))
        .conversation_sid()
        .unwrap()
    }

    pub fn join(&self, conversation: ConversationSid, identity: &str) -> ParticipantSid {
        self.run(Command::AddParticipant(AddParticipant {
            service: self.service,
            conversation: ConversationRef::Sid(conversation),
            participant: ParticipantSpec {
                kind: ParticipantKind::Chat {
                    identity: identity.into(),
                    projected_address: None,
                },
                attributes: None,
                role_sid: None,
            },
        }))
        .participant_sids()[0]
    }

    pub fn join_binding(
        &self,
        conversation: ConversationSid,
        address: &str,
        proxy: &str,
    ) -> ParticipantSid {
        self.run(Command::AddParticipant(AddParticipant {
            service: self.service,
            conversation: ConversationRef::Sid(conversation),
            participant: ParticipantSpec {
                kind: ParticipantKind::Messaging(MessagingBinding {
                    address: address.into(),
                    proxy_address: proxy.into(),
                    projected_address: None,
                }),
                attributes: None,
                role_sid: None,
            },
        }))
        .participant_sids()[0]
    }

    pub fn leave(&self, conversation: ConversationSid, participant: ParticipantSid) -> u64 {
        self.run(Command::RemoveParticipant(RemoveParticipant {
            service: self.service,
            conversation: ConversationRef::Sid(conversation),
            participant,
        }))
        .first_position
    }

    pub fn post_command(&self, conversation: ConversationSid, author: &str, body: &str) -> Command {
        Command::PostMessage(PostMessage {
            service: self.service,
            conversation: ConversationRef::Sid(conversation),
            author: Some(author.into()),
            body: Some(body.into()),
            media: vec![],
            attributes: None,
        })
    }

    /// Posts; returns the message and its position.
    pub fn post(
        &self,
        conversation: ConversationSid,
        author: &str,
        body: &str,
    ) -> (MessageSid, u64) {
        let out = self.run(self.post_command(conversation, author, body));
        (
            out.message().map(|m| (m.message_sid, m.index)).unwrap().0,
            out.first_position,
        )
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
