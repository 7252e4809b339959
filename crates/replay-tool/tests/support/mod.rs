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
use engine_core::{Durability, Engine, LogOptions, TypedCommand};
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
    /// Runs `command` as the trusted host; returns its typed result.
    fn run<C: TypedCommand>(&mut self, command: C) -> C::Output {
        self.run_as(None, command)
    }

    /// Runs `command` as `acting` (`None`: the trusted host); returns its
    /// typed result.
    fn run_as<C: TypedCommand>(&mut self, acting: Option<&str>, command: C) -> C::Output {
        self.next += 1;
        let mut envelope = command.keyed(CommandId::from_key(&self.next.to_be_bytes()));
        envelope.acting_identity = acting.map(str::to_string);
        self.engine.execute(envelope).expect("command accepted")
    }
}

/// The identity alice acts as when she posts and edits.
pub const ALICE: &str = "alice";

/// Writes the scenario into a fresh store and closes it.
pub fn build() -> Fixture {
    let dir = temp_dir();
    let engine = Engine::open(dir.path(), options()).expect("open engine");
    let mut d = Driver {
        engine: &engine,
        next: 0,
    };
    let service = d.run(CreateService::new("acme"));
    let other_service = d.run(CreateService::new("other"));
    let support = CreateConversation::new(service)
        .friendly_name("Support")
        .unique_name("ticket-42")
        .attributes(r#"{"topic":"billing"}"#);
    let conversation = d.run(support);
    let elsewhere = CreateConversation::new(other_service).unique_name("elsewhere");
    let other_conversation = d.run(elsewhere);
    d.run(
        PostMessage::new(other_service, other_conversation)
            .author("carol")
            .body("unrelated"),
    );
    let alice = d.run(AddParticipant::new(
        service,
        conversation,
        ParticipantSpec::chat("alice"),
    ));
    let sms = ParticipantSpec::binding("+15551230001", "+15559870000");
    let sms = d.run(AddParticipant::new(service, conversation, sms));
    let mut messages = Vec::new();
    for (author, body) in [
        (ALICE, "hello"),
        ("+15551230001", "my invoice is wrong"),
        (ALICE, "let me check"),
    ] {
        // Alice posts as herself; the SMS message comes through the host.
        let acting = (author == ALICE).then_some(ALICE);
        let post = PostMessage::new(service, conversation)
            .author(author)
            .body(body);
        messages.push(d.run_as(acting, post).message_sid);
    }
    d.run(UpdateReadHorizon::set(
        service,
        conversation,
        alice,
        Some(1),
    ));
    let before_changes = engine.log().head().next_position - 1;
    std::thread::sleep(PHASE_GAP);

    let edit = EditMessage::new(service, conversation, messages[0]).body("hello (edited)");
    d.run_as(Some(ALICE), edit);
    d.run(DeleteMessage::new(service, conversation, messages[1]));
    let bob = d.run(AddParticipant::new(
        service,
        conversation,
        ParticipantSpec::chat("bob"),
    ));
    for p in [alice, bob] {
        d.run(UpdateReadHorizon::set(service, conversation, p, Some(2)));
    }
    d.run(UpdateConversation::new(service, "ticket-42").attributes(r#"{"topic":"refund"}"#));
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
