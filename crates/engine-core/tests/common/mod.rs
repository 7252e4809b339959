//! Helpers shared by the engine tests: a harness that owns an engine in a
//! temporary directory (and can reopen it), and command builders.
#![allow(dead_code)]

use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use engine_core::{CommandError, CommandOutcome, Durability, Engine, LogHead, LogOptions};
use events::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as ProptestConfig, RngSeed, TestCaseError, TestRunner};

/// The options every engine test opens with: buffered writes (no fsync).
pub fn options() -> LogOptions {
    LogOptions::default().durability(Durability::Buffered)
}

/// A temporary directory for a store: on a tmpfs when the machine has one.
///
/// RocksDB syncs its manifest whenever it opens a store or creates or drops
/// a column family, which is most of the time of opening, reopening and
/// rebuilding a small store on a disk. These tests do not depend on what
/// survives a power loss, so a RAM-backed directory tests the same thing,
/// several times faster.
///
/// `COLLOQUY_TEST_TMPDIR`, when set, names the parent directory instead.
pub fn temp_dir() -> tempfile::TempDir {
    if let Some(parent) = std::env::var_os("COLLOQUY_TEST_TMPDIR") {
        return tempfile::tempdir_in(parent).expect("a temporary directory");
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("colloquy-test-")
            .tempdir_in(shm)
        {
            return dir;
        }
    }
    tempfile::tempdir().expect("a temporary directory")
}

/// Opens an engine on `path` with [`options`].
pub fn open(path: &Path) -> Engine {
    Engine::open(path, options()).expect("open the engine")
}

/// An engine in its own temporary directory, with a command-id counter
/// that survives reopening.
pub struct Harness {
    engine: Option<Engine>,
    pub dir: tempfile::TempDir,
    next_id: u64,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A fresh, empty store.
    pub fn new() -> Self {
        let dir = temp_dir();
        let engine = open(dir.path());
        Harness {
            engine: Some(engine),
            dir,
            next_id: 0,
        }
    }

    /// The open engine.
    pub fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("the engine is open")
    }

    /// A command id never used before in this store.
    pub fn fresh_id(&mut self) -> CommandId {
        self.next_id += 1;
        CommandId::from_key(&self.next_id.to_be_bytes())
    }

    /// Executes `command` as the trusted host with a fresh command id.
    pub fn exec(&mut self, command: Command) -> Result<CommandOutcome, CommandError> {
        self.exec_as(None, command)
    }

    /// Executes `command` as `acting` (or the host) with a fresh command id.
    pub fn exec_as(
        &mut self,
        acting: Option<&str>,
        command: Command,
    ) -> Result<CommandOutcome, CommandError> {
        let envelope = CommandEnvelope {
            command_id: self.fresh_id(),
            acting_identity: acting.map(str::to_string),
            expected_version: None,
            command,
        };
        self.engine().execute(envelope)
    }

    /// Executes `command` as the host and panics on a refusal.
    pub fn ok(&mut self, command: Command) -> CommandOutcome {
        let shown = format!("{command:?}");
        self.exec(command)
            .unwrap_or_else(|e| panic!("{shown:.300} was refused: {e}"))
    }

    /// Drops the engine and opens it again on the same directory.
    pub fn reopen(&mut self) {
        drop(self.engine.take());
        self.engine = Some(open(self.dir.path()));
    }

    /// Drops the engine, rebuilds its read models from the log and keeps
    /// the rebuilt engine.
    pub fn rebuild(&mut self) {
        drop(self.engine.take());
        let engine = Engine::rebuild(self.dir.path(), options(), &mut |_, _| {}).expect("rebuild");
        self.engine = Some(engine);
    }

    /// The log head.
    pub fn head(&self) -> LogHead {
        self.engine().log().head()
    }

    /// The digest of the persisted read models.
    pub fn digest(&self) -> ([u8; 32], u64) {
        self.engine().live_digest().expect("live digest")
    }

    /// Creates a service and returns its SID.
    pub fn service(&mut self, name: &str) -> ServiceSid {
        self.ok(Command::CreateService(CreateService {
            friendly_name: name.to_string(),
        }))
        .service_sid()
        .expect("CreateService appends records")
    }

    /// Creates a conversation (optionally with a unique name) and returns its SID.
    pub fn conversation(
        &mut self,
        service: ServiceSid,
        unique_name: Option<&str>,
    ) -> ConversationSid {
        self.ok(create_conversation(service, unique_name))
            .conversation_sid()
            .expect("a conversation was created")
    }

    /// Adds a participant and returns its SID.
    pub fn participant(
        &mut self,
        service: ServiceSid,
        conversation: ConversationSid,
        kind: ParticipantKind,
    ) -> ParticipantSid {
        self.ok(add_participant(service, conversation, kind))
            .participant_sids()[0]
    }

    /// Posts a message as the host and returns its SID and index.
    pub fn post(
        &mut self,
        service: ServiceSid,
        conversation: ConversationSid,
        author: &str,
        body: &str,
    ) -> (MessageSid, u64) {
        self.ok(post(service, conversation, Some(author), body))
            .message()
            .map(|m| (m.message_sid, m.index))
            .expect("a message was posted")
    }

    /// The SID of the default role named `name` (e.g. `channel user`).
    pub fn role(&self, service: ServiceSid, name: &str) -> RoleSid {
        self.engine()
            .read(|rm| {
                rm.get_service(&service)
                    .expect("the service exists")
                    .roles()
                    .find(|r| r.friendly_name == name)
                    .map(|r| r.sid)
            })
            .unwrap_or_else(|| panic!("no role named {name:?}"))
    }
}

/// A chat participant kind.
pub fn chat(identity: &str) -> ParticipantKind {
    ParticipantKind::Chat {
        identity: identity.to_string(),
        projected_address: None,
    }
}

/// A messaging-binding participant kind.
pub fn binding(address: &str, proxy_address: &str) -> ParticipantKind {
    ParticipantKind::Messaging(MessagingBinding {
        address: address.to_string(),
        proxy_address: proxy_address.to_string(),
        projected_address: None,
    })
}

/// A participant spec with defaults.
pub fn spec(kind: ParticipantKind) -> ParticipantSpec {
    ParticipantSpec {
        kind,
        attributes: None,
        role_sid: None,
    }
}

/// The host's envelope for `command`, its command id derived from `key`.
pub fn envelope(key: &str, command: Command) -> CommandEnvelope {
    CommandEnvelope {
        command_id: CommandId::from_key(key.as_bytes()),
        acting_identity: None,
        expected_version: None,
        command,
    }
}

/// `CreateConversation` with default fields.
pub fn create_conversation(service: ServiceSid, unique_name: Option<&str>) -> Command {
    Command::CreateConversation(CreateConversation {
        service,
        spec: ConversationSpec {
            unique_name: unique_name.map(str::to_string),
            ..Default::default()
        },
    })
}

/// `AddParticipant` with defaults.
pub fn add_participant(
    service: ServiceSid,
    conversation: ConversationSid,
    kind: ParticipantKind,
) -> Command {
    Command::AddParticipant(AddParticipant {
        service,
        conversation: ConversationRef::Sid(conversation),
        participant: spec(kind),
    })
}

/// `PostMessage` with a text body.
pub fn post(
    service: ServiceSid,
    conversation: ConversationSid,
    author: Option<&str>,
    body: &str,
) -> Command {
    Command::PostMessage(PostMessage {
        service,
        conversation: ConversationRef::Sid(conversation),
        author: author.map(str::to_string),
        body: Some(body.to_string()),
        media: Vec::new(),
        attributes: None,
    })
}

/// `n` media descriptors.
pub fn media(n: usize) -> Vec<Media> {
    (0..n)
        .map(|i| Media {
            sid: MediaSid::derive(&(i as u64).to_be_bytes()),
            content_type: "image/png".to_string(),
            filename: None,
            size: 1,
        })
        .collect()
}

/// The event type names of an outcome, in order.
pub fn kinds(outcome: &CommandOutcome) -> Vec<&'static str> {
    outcome.events().map(Event::type_name).collect()
}

/// Runs `test` on `config.cases` values of `strategy`, spread over the
/// machine's cores, then shrinks the first failure the way proptest does
/// (sequentially, up to `config.max_shrink_iters` steps) and panics with
/// the minimal input.
///
/// Every case opens, reopens and rebuilds its own store, which is mostly
/// RocksDB's fixed cost and leaves a core idle; the cases are independent,
/// so running them side by side halves the wall time on two cores. The
/// values are generated up front by one [`TestRunner`] with `config`, so a
/// seed (`PROPTEST_RNG_SEED`, printed on failure) reproduces a run.
pub fn run_cases<S>(
    config: ProptestConfig,
    strategy: S,
    test: impl Fn(&S::Value) -> Result<(), TestCaseError> + Sync,
) where
    S: Strategy,
    S::Value: Send + Sync + Debug,
{
    let mut config = config;
    let seed = match config.rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0);
            h.finish()
        }
    };
    config.rng_seed = RngSeed::Fixed(seed);
    let mut runner = TestRunner::new(config.clone());
    let mut trees: Vec<S::Tree> = (0..config.cases)
        .map(|_| strategy.new_tree(&mut runner).expect("generate a case"))
        .collect();
    let values: Vec<S::Value> = trees.iter().map(|t| t.current()).collect();

    let run_one = |value: &S::Value| -> Result<(), String> {
        match catch_unwind(AssertUnwindSafe(|| test(value))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(panic) => Err(panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the test panicked".to_string())),
        }
    };

    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_failure: Mutex<Option<(usize, String)>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= values.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                if let Err(reason) = run_one(&values[i]) {
                    failed.store(true, Ordering::SeqCst);
                    let mut first = first_failure.lock().unwrap();
                    if first.as_ref().is_none_or(|(j, _)| i < *j) {
                        *first = Some((i, reason));
                    }
                }
            });
        }
    });

    let Some((index, reason)) = first_failure.into_inner().unwrap() else {
        return;
    };
    drop(values);
    let mut tree = trees.swap_remove(index);
    let mut minimal = (tree.current(), reason);
    let mut steps = 0;
    if tree.simplify() {
        while steps < config.max_shrink_iters {
            steps += 1;
            let value = tree.current();
            match run_one(&value) {
                Err(reason) => {
                    minimal = (value, reason);
                    if !tree.simplify() {
                        break;
                    }
                }
                Ok(()) => {
                    if !tree.complicate() {
                        break;
                    }
                }
            }
        }
    }
    panic!(
        "Test failed: {}\nminimal failing input ({steps} shrink steps from case {index} of {}; \
         rerun with PROPTEST_RNG_SEED={seed}): {:#?}",
        minimal.1, config.cases, minimal.0
    );
}
