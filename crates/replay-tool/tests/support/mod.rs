//! A store for the CLI tests, written by driving the Engine with commands:
//! two services, conversations with unique names, chat and SMS
//! participants, messages, an edit, a delete and read horizons. Alice posts
//! and edits her own messages acting as herself (`acting_identity`
//! "alice", so those records' actor is "alice"); everything else is done
//! by the trusted host.
#![allow(dead_code)]

#[path = "../../../engine-core/tests/log_support/sst.rs"]
pub mod sst;

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command as Tool;
use engine_core::{CommandOutcome, Durability, Engine, LogOptions};
use events::*;
use serde_json::Value;

/// Pause between phases so their records carry different `recorded_at`.
const PHASE_GAP: Duration = Duration::from_millis(3);

/// What the scenario created, and where.
#[derive(Debug)]
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub service: ServiceSid,
    pub other_service: ServiceSid,
    pub conversation: ConversationSid,
    pub other_conversation: ConversationSid,
    pub alice: ParticipantSid,
    pub sms: ParticipantSid,
    pub bob: ParticipantSid,
    pub messages: Vec<MessageSid>,
    /// The last position before the edit, the delete and bob joining.
    pub before_changes: u64,
    /// The records in the store.
    pub records: u64,
}

/// A temporary directory, on a tmpfs when there is one.
pub fn temp_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("replay-tool-test-")
            .tempdir_in(shm)
        {
            return dir;
        }
    }
    tempfile::tempdir().expect("a temporary directory")
}

pub fn options() -> LogOptions {
    LogOptions::default().durability(Durability::Buffered)
}

struct Driver<'a> {
    engine: &'a Engine,
    next: u64,
}

impl Driver<'_> {
    /// Runs `command` as the trusted host.
    fn run(&mut self, command: events::Command) -> CommandOutcome {
        self.run_as(None, command)
    }

    /// Runs `command` as `acting` (`None`: the trusted host).
    fn run_as(&mut self, acting: Option<&str>, command: events::Command) -> CommandOutcome {
        self.next += 1;
        self.engine
            .execute(CommandEnvelope {
                command_id: CommandId::from_key(&self.next.to_be_bytes()),
                acting_identity: acting.map(str::to_string),
                expected_version: None,
                command,
            })
            .expect("command accepted")
    }
}

/// The identity alice acts as when she posts and edits.
pub const ALICE: &str = "alice";

fn chat(identity: &str) -> ParticipantSpec {
    ParticipantSpec {
        kind: ParticipantKind::Chat {
            identity: identity.into(),
            projected_address: None,
        },
        attributes: None,
        role_sid: None,
    }
}

/// A PostMessage command.
pub fn post(
    service: ServiceSid,
    conversation: &ConversationRef,
    author: &str,
    body: &str,
) -> events::Command {
    events::Command::PostMessage(PostMessage {
        service,
        conversation: conversation.clone(),
        author: Some(author.into()),
        body: Some(body.into()),
        media: vec![],
        attributes: None,
    })
}

/// Writes the scenario into a fresh store and closes it.
pub fn build() -> Fixture {
    let dir = temp_dir();
    let engine = Engine::open(dir.path(), options()).expect("open engine");
    let mut d = Driver {
        engine: &engine,
        next: 0,
    };
    use events::Command as C;
    let service = d
        .run(C::CreateService(events::CreateService {
            friendly_name: "acme".into(),
        }))
        .service_sid()
        .unwrap();
    let other_service = d
        .run(C::CreateService(events::CreateService {
            friendly_name: "other".into(),
        }))
        .service_sid()
        .unwrap();
    let conversation = d
        .run(C::CreateConversation(events::CreateConversation {
            service,
            spec: ConversationSpec {
                friendly_name: Some("Support".into()),
                unique_name: Some("ticket-42".into()),
                attributes: Some(r#"{"topic":"billing"}"#.into()),
                ..Default::default()
            },
        }))
        .conversation_sid()
        .unwrap();
    let other_conversation = d
        .run(C::CreateConversation(events::CreateConversation {
            service: other_service,
            spec: ConversationSpec {
                unique_name: Some("elsewhere".into()),
                ..Default::default()
            },
        }))
        .conversation_sid()
        .unwrap();
    let conv = ConversationRef::Sid(conversation);
    d.run(post(
        other_service,
        &ConversationRef::Sid(other_conversation),
        "carol",
        "unrelated",
    ));
    let alice = d
        .run(C::AddParticipant(events::AddParticipant {
            service,
            conversation: conv.clone(),
            participant: chat("alice"),
        }))
        .participant_sids()[0];
    let sms = d
        .run(C::AddParticipant(events::AddParticipant {
            service,
            conversation: conv.clone(),
            participant: ParticipantSpec {
                kind: ParticipantKind::Messaging(MessagingBinding {
                    address: "+15551230001".into(),
                    proxy_address: "+15559870000".into(),
                    projected_address: None,
                }),
                attributes: None,
                role_sid: None,
            },
        }))
        .participant_sids()[0];
    let mut messages = Vec::new();
    for (author, body) in [
        (ALICE, "hello"),
        ("+15551230001", "my invoice is wrong"),
        (ALICE, "let me check"),
    ] {
        // Alice posts as herself; the SMS message comes through the host.
        let acting = (author == ALICE).then_some(ALICE);
        messages.push(
            d.run_as(acting, post(service, &conv, author, body))
                .message()
                .map(|m| (m.message_sid, m.index))
                .unwrap()
                .0,
        );
    }
    d.run(C::UpdateReadHorizon(events::UpdateReadHorizon {
        service,
        conversation: conv.clone(),
        participant: alice,
        last_read_message_index: Some(1),
        mode: HorizonMode::Set,
    }));
    let before_changes = engine.log().head().next_position - 1;
    std::thread::sleep(PHASE_GAP);

    d.run_as(
        Some(ALICE),
        C::EditMessage(events::EditMessage {
            service,
            conversation: conv.clone(),
            message: messages[0],
            body: Some("hello (edited)".into()),
            attributes: None,
        }),
    );
    d.run(C::DeleteMessage(events::DeleteMessage {
        service,
        conversation: conv.clone(),
        message: messages[1],
    }));
    let bob = d
        .run(C::AddParticipant(events::AddParticipant {
            service,
            conversation: conv.clone(),
            participant: chat("bob"),
        }))
        .participant_sids()[0];
    for p in [alice, bob] {
        d.run(C::UpdateReadHorizon(events::UpdateReadHorizon {
            service,
            conversation: conv.clone(),
            participant: p,
            last_read_message_index: Some(2),
            mode: HorizonMode::Set,
        }));
    }
    d.run(C::UpdateConversation(events::UpdateConversation {
        service,
        conversation: ConversationRef::UniqueName("ticket-42".into()),
        friendly_name: None,
        unique_name: None,
        attributes: Some(r#"{"topic":"refund"}"#.into()),
        state: None,
        timers: None,
    }));
    let records = engine.log().head().next_position;
    drop(engine);
    Fixture {
        dir,
        service,
        other_service,
        conversation,
        other_conversation,
        alice,
        sms,
        bob,
        messages,
        before_changes,
        records,
    }
}

impl Fixture {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `replay-tool ARGS --data DIR`.
    pub fn tool(&self, args: &[&str]) -> Tool {
        let mut cmd = Tool::cargo_bin("replay-tool").expect("the replay-tool binary");
        cmd.args(args).arg("--data").arg(self.path());
        cmd
    }
}

/// Runs and returns (exit code, stdout, stderr).
pub fn run(mut cmd: Tool) -> (i32, String, String) {
    let out = cmd.output().expect("run replay-tool");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Parses JSON lines, failing on any line that is not JSON.
pub fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Opens the store with RocksDB directly (read-write; the host is stopped).
pub fn with_db(path: &Path, f: impl FnOnce(&rocksdb::DB)) {
    let options = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&options, path).unwrap();
    let db = rocksdb::DB::open_cf(&options, path, names).unwrap();
    f(&db);
}
