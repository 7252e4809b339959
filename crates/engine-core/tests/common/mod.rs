//! Helpers shared by the engine tests: a harness that owns an engine in a
//! temporary directory (and can reopen it), media descriptors, and a
//! parallel property-test runner. Commands are built with the public
//! builders (`PostMessage::new(..).body(..)`, `ParticipantSpec::chat(..)`).
#![allow(dead_code)]

use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use engine_core::{
    CommandError, CommandOutcome, Durability, Engine, LogHead, LogOptions, TypedCommand,
};
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

    /// Executes `command` as the trusted host with a fresh command id and
    /// returns its typed result (a SID, a [`PostedMessage`](engine_core::PostedMessage), `()`, or the
    /// whole [`CommandOutcome`] for a [`Command`]).
    pub fn exec<C: TypedCommand>(&mut self, command: C) -> Result<C::Output, CommandError> {
        self.exec_as(None, command)
    }

    /// Executes `command` as `acting` (or the host) with a fresh command id.
    pub fn exec_as<C: TypedCommand>(
        &mut self,
        acting: Option<&str>,
        command: C,
    ) -> Result<C::Output, CommandError> {
        let envelope = CommandEnvelope::new(self.fresh_id(), command);
        let envelope = match acting {
            Some(identity) => envelope.acting_as(identity),
            None => envelope,
        };
        self.engine().execute(envelope)
    }

    /// Executes `command` as the host and panics on a refusal.
    pub fn ok<C: TypedCommand + Debug>(&mut self, command: C) -> C::Output {
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
