//! The attack harness: fault-injection trials against a store, each run in
//! child processes and classified by what a user would see.
//!
//! An attack damages a store the way a crash, a bad disk or a full disk
//! would, then hands it to one or more [`Checker`]s: the engine's open (in
//! engine-core's `attacks` test) or the auditor, `replay-tool verify`, in
//! both of its modes (in replay-tool's `attacks` test, which includes this
//! file by path). Each check of each trial gets one [`Outcome`].
//!
//! Everything that opens a store runs in a child process with a deadline: a
//! hung RocksDB thread cannot be stopped, but a process can be killed. The
//! test binary re-executes itself (`current_exe() attack_child --exact`)
//! with [`ROLE_VAR`] naming the role, so no extra binary is needed; each
//! test file declares that `attack_child` entry point and calls
//! [`child_main`].
//!
//! The store a damage attack starts from is written by a child that
//! appends in three phases: two closed cleanly (so the store has table
//! files, two of them holding the `log` column family), the third with
//! `Durability::Sync` and then SIGKILLed, so its newest write-ahead log
//! holds acknowledged, fsynced records. The child prints each
//! acknowledgement (and the WAL's length right after it) the moment it gets
//! it; those records are what must survive.
//!
//! Environment (all optional):
//! - `COLLOQUY_ATTACK_TRIALS`: trials per attack (default
//!   [`TRIALS_DEFAULT`]);
//! - `COLLOQUY_ATTACK`: run only this attack (the others print that they
//!   were skipped); an unknown name fails every attack test;
//! - `COLLOQUY_ATTACK_SEED`: the campaign seed (decimal or `0x` hex);
//!   trial seeds are derived from it and the attack's name;
//! - `COLLOQUY_ATTACK_TRIAL_SEED`: run exactly one trial with this seed
//!   (the seed a failure prints);
//! - `COLLOQUY_ATTACK_MAX_HANGS`: stop an attack after this many hung
//!   trials (default [`HANGS_PER_ATTACK_MAX_DEFAULT`]);
//! - `COLLOQUY_ATTACK_VERBOSE`: print every trial's verdicts, not only
//!   the failing ones;
//! - `COLLOQUY_ATTACK_REPORT`: append each attack's summary to this file as
//!   a Markdown table row.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use engine_core::{Engine, LogOptions};
use events::{
    Command as EngineCommand, CommandEnvelope, CommandId, ConversationSid, CreateConversation,
    CreateService, PostMessage, ServiceSid,
};

/// Trials per attack in the default `cargo test` run: a few dozen each
/// keeps the whole campaign (both test binaries) near three minutes on two
/// cores. `cargo xtask attack --trials N` runs more.
pub const TRIALS_DEFAULT: u64 = 24;
/// How long a child may stay silent before it counts as hung, in
/// milliseconds. Opening and verifying a store of this size takes well
/// under a second; ten seconds leaves room for a machine loaded by parallel
/// builds, and a store that has not answered by then is stuck.
pub const ANSWER_DEADLINE_MS: u64 = 10_000;
/// A child that outlives its parent's interest exits by itself after this
/// many milliseconds, so a crashed test run leaves no process behind.
pub const CHILD_LIFETIME_MS_MAX: u64 = 120_000;
/// Hung trials after which an attack stops early, by default: each hang
/// costs [`ANSWER_DEADLINE_MS`], and one is already a failure.
pub const HANGS_PER_ATTACK_MAX_DEFAULT: u64 = 3;
/// Threads appending concurrently in the SIGKILL attack, so kills land
/// inside group commits of several requests.
pub const SIGKILL_APPENDER_THREADS: usize = 4;
/// A quarter of SIGKILL trials kill at a random moment up to this many
/// milliseconds after the child starts the store's very first open (which
/// takes some 40–150 ms on a 2-core machine), so most land inside it.
pub const SIGKILL_DURING_OPEN_MS_MAX: u64 = 100;
/// The other SIGKILL trials kill up to this many milliseconds after the
/// engine reported it is open, while the appenders run.
pub const SIGKILL_AFTER_READY_MS_MAX: u64 = 300;
/// Message bodies are 1 to this many bytes, so records of every size from
/// a few dozen bytes to several WAL fragments' worth occur.
pub const BODY_BYTES_ATTACK_MAX: usize = 2_000;
/// Messages appended in each of the two cleanly closed phases of a damage
/// attack's store, at least and at most.
pub const FLUSHED_PHASE_APPENDS: (u64, u64) = (10, 60);
/// Messages appended (synced, acknowledged) in the phase that is killed,
/// at least and at most: enough to span several 32 KiB WAL blocks.
pub const WAL_PHASE_APPENDS: (u64, u64) = (20, 200);
/// RocksDB's log-file block size (WAL and MANIFEST), in bytes: records
/// never straddle a block, and fewer than [`LOG_HEADER_BYTES`] left at a
/// block's end are zero padding that no checksum covers.
pub const LOG_BLOCK_BYTES: u64 = 32 * 1024;
/// RocksDB's log-record header (crc32c, length, type), in bytes.
pub const LOG_HEADER_BYTES: u64 = 7;
/// The largest random garbage tail appended to a WAL, in bytes.
pub const GARBAGE_TAIL_BYTES_MAX: u64 = 64;
/// The largest zeroed tail appended to a WAL, in bytes: up to two pages,
/// what a file system may expose after a crash that extended the file.
pub const ZERO_TAIL_BYTES_MAX: u64 = 8_192;
/// Record types written in a torn header are drawn below this bound: the
/// valid ones (1–4), zero, the recyclable ones (5–8) and a few beyond.
pub const TORN_HEADER_TYPES: u64 = 11;
/// The largest payload length a torn header claims, in bytes (half the
/// torn headers claim zero): short, as a header torn before its record.
pub const TORN_HEADER_LENGTH_MAX: u64 = 64;
/// The size of the tmpfs the disk-full attacks mount, in bytes: below the
/// ~70 MiB RocksDB tries to preallocate for a WAL, so the WAL grows write
/// by write and meets the full disk.
pub const DISK_FULL_TMPFS_BYTES: u64 = 24 * 1024 * 1024;
/// Free space left after filling the tmpfs, at most, in bytes: a few dozen
/// appends' worth, so some succeed before the disk is full.
pub const DISK_FULL_SLACK_BYTES_MAX: u64 = 128 * 1024;
/// Appends tried against the full disk before giving up on filling it.
pub const DISK_FULL_APPENDS_MAX: u64 = 4_000;
/// How long, after space is freed, appends are retried before the engine
/// counts as not recovering, in milliseconds. RocksDB's `SstFileManager`
/// looks at the free space every 5 s before it resumes writes after a
/// failed flush, and one append waits up to
/// `engine_core::log::WRITE_STALL_WAIT_MAX_MS` (5 s) before it answers, so
/// a recovering engine can take about 10 s; this allows half again.
pub const DISK_FULL_RECOVERY_MS_MAX: u64 = 15_000;
/// Pause between retries once space is freed, in milliseconds.
pub const DISK_FULL_RETRY_INTERVAL_MS: u64 = 100;
/// WAL bytes appended before the disk fills in the flush variant, at most
/// (at least a quarter of it): the memtable then needs a table file larger
/// than most of the free space left.
pub const DISK_FULL_FLUSH_MEMTABLE_BYTES: u64 = 512 * 1024;
/// Each column family's memtable in the flush attack, in bytes: above the
/// most [`DISK_FULL_FLUSH_MEMTABLE_BYTES`] fills before the disk is full, so
/// only the attack's own flush writes a table file, and far below the
/// tmpfs, so RocksDB finds room to resume once the filler is gone.
pub const DISK_FULL_FLUSH_WRITE_BUFFER_BYTES: u64 = 2 * 1024 * 1024;
/// How long the flush variant waits for the flush to fail before it
/// appends, in milliseconds; a flush still running then is reported.
pub const DISK_FULL_FLUSH_WAIT_MS: u64 = 2_000;
/// How often a waiting parent checks whether a child has exited, in
/// milliseconds: short next to a trial, long enough not to busy-wait.
const CHILD_POLL_INTERVAL_MS: u64 = 5;
/// Error text shown per verdict, at most, in characters: enough for a
/// RocksDB message with a path, short enough to keep a failure list legible.
const SHOWN_CHARS_MAX: usize = 400;
/// The exit code of a Rust process that panicked (and of a libtest run with
/// a failed test).
const RUST_PANIC_EXIT_CODE: i32 = 101;
/// The chunk the disk-full filler writes, in bytes.
const FILLER_CHUNK_BYTES: usize = 1024 * 1024;

/// The environment variable that makes a test binary act as a child.
pub const ROLE_VAR: &str = "COLLOQUY_ATTACK_ROLE";
const STORE_VAR: &str = "COLLOQUY_ATTACK_STORE";
const SEED_VAR: &str = "COLLOQUY_ATTACK_CHILD_SEED";
const ACKED_VAR: &str = "COLLOQUY_ATTACK_ACKED";
const FLUSH_VAR: &str = "COLLOQUY_ATTACK_FLUSH";
const SLACK_VAR: &str = "COLLOQUY_ATTACK_SLACK";
/// Every line a child reports starts with this.
const LINE_PREFIX: &str = "@attack ";

/// What one check of one trial saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// It opened (or verified), every acknowledged record is present and
    /// verification passed.
    Intact,
    /// A typed error from open or verify that names the damaged file (any
    /// typed error when the attack damages no file).
    LoudError,
    /// A typed error that does not name the damaged file.
    VagueError,
    /// The engine opened and verified, but acknowledged records are gone.
    SilentLoss,
    /// The auditor called a damaged store, or one missing acknowledged
    /// records, valid.
    ReportedValid,
    /// No answer within [`ANSWER_DEADLINE_MS`].
    Hang,
    /// A panic, or the process died of a signal nobody sent it.
    Panic,
    /// Disk full: after space came back, appends kept failing without
    /// saying that a reopen is needed.
    Stuck,
}

impl Outcome {
    /// Every outcome, in summary order.
    pub const ALL: [Outcome; 8] = [
        Outcome::Intact,
        Outcome::LoudError,
        Outcome::VagueError,
        Outcome::SilentLoss,
        Outcome::ReportedValid,
        Outcome::Hang,
        Outcome::Panic,
        Outcome::Stuck,
    ];

    /// The outcomes that must never occur, whatever the attack.
    pub fn must_be_zero(self) -> bool {
        matches!(
            self,
            Outcome::SilentLoss
                | Outcome::ReportedValid
                | Outcome::Hang
                | Outcome::Panic
                | Outcome::Stuck
        )
    }

    fn name(self) -> &'static str {
        match self {
            Outcome::Intact => "intact",
            Outcome::LoudError => "loud-error",
            Outcome::VagueError => "vague-error",
            Outcome::SilentLoss => "silent-loss",
            Outcome::ReportedValid => "reported-valid",
            Outcome::Hang => "hang",
            Outcome::Panic => "panic",
            Outcome::Stuck => "stuck",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// SIGKILL at a random moment while threads append with
    /// `Durability::Sync` (or during start-up and the first open).
    Sigkill,
    /// Random bytes appended after the newest WAL's real end.
    TailGarbage,
    /// Zeros appended after the newest WAL's real end.
    TailZeros,
    /// A torn record header (7 bytes, random type byte) appended after the
    /// newest WAL's real end.
    TailTornHeader,
    /// The newest WAL truncated inside records that were never
    /// acknowledged (the acknowledged set is cut at a random append).
    TruncateUnacked,
    /// The newest WAL truncated inside acknowledged, fsynced records.
    TruncateAcked,
    /// The newest WAL, holding acknowledged records, deleted.
    DeleteWal,
    /// One bit flipped in the newest WAL.
    FlipWal,
    /// One bit flipped in the current MANIFEST.
    FlipManifest,
    /// One bit flipped in a live table file (half the time one of the
    /// `log` column family's).
    FlipSst,
    /// The disk fills while appending; the WAL write meets ENOSPC.
    DiskFullWal,
    /// The disk fills, then a memtable flush runs while appending.
    DiskFullFlush,
}

impl Attack {
    /// Every attack.
    pub const ALL: [Attack; 12] = [
        Attack::Sigkill,
        Attack::TailGarbage,
        Attack::TailZeros,
        Attack::TailTornHeader,
        Attack::TruncateUnacked,
        Attack::TruncateAcked,
        Attack::DeleteWal,
        Attack::FlipWal,
        Attack::FlipManifest,
        Attack::FlipSst,
        Attack::DiskFullWal,
        Attack::DiskFullFlush,
    ];

    /// The attack's name, as `COLLOQUY_ATTACK` and the summaries spell it.
    pub fn name(self) -> &'static str {
        match self {
            Attack::Sigkill => "sigkill",
            Attack::TailGarbage => "tail-garbage",
            Attack::TailZeros => "tail-zeros",
            Attack::TailTornHeader => "tail-torn-header",
            Attack::TruncateUnacked => "truncate-unacked",
            Attack::TruncateAcked => "truncate-acked",
            Attack::DeleteWal => "delete-wal",
            Attack::FlipWal => "flip-wal",
            Attack::FlipManifest => "flip-manifest",
            Attack::FlipSst => "flip-sst",
            Attack::DiskFullWal => "disk-full-wal",
            Attack::DiskFullFlush => "disk-full-flush",
        }
    }

    /// Whether the engine must open such a store with every acknowledged
    /// record: a crash, or a tail torn past the last acknowledged write.
    fn engine_must_be_intact(self) -> bool {
        matches!(
            self,
            Attack::Sigkill
                | Attack::TailGarbage
                | Attack::TailZeros
                | Attack::TailTornHeader
                | Attack::TruncateUnacked
        )
    }

    fn is_disk_full(self) -> bool {
        matches!(self, Attack::DiskFullWal | Attack::DiskFullFlush)
    }
}

/// Who judges a damaged store.
#[derive(Debug, Clone)]
pub enum Checker {
    /// `Engine::open`, then `verify`, then every acknowledged record is
    /// looked up by position and command id (in a child process).
    Engine,
    /// `replay-tool verify --json` at `binary`, as a secondary instance or
    /// with `--read-only`.
    Verify {
        /// The replay-tool binary.
        binary: PathBuf,
        /// Whether to pass `--read-only`.
        read_only: bool,
    },
}

impl Checker {
    fn name(&self) -> &'static str {
        match self {
            Checker::Engine => "engine open",
            Checker::Verify {
                read_only: false, ..
            } => "replay-tool verify",
            Checker::Verify {
                read_only: true, ..
            } => "replay-tool verify --read-only",
        }
    }
}

/// A small deterministic generator (SplitMix64): every random choice of a
/// trial comes from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high, "empty range {low}..={high}");
        let span = high - low;
        if span == u64::MAX {
            return self.next_u64();
        }
        low + self.next_u64() % (span + 1)
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.next_u64() % denominator < numerator
    }
}

/// One acknowledged command: its records' positions and command id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The first record's position.
    pub first: u64,
    /// How many records it appended.
    pub count: u64,
    /// The command id (hex), which every one of its records carries.
    pub command_id: String,
}

impl Ack {
    fn end(&self) -> u64 {
        self.first + self.count
    }

    fn parse(words: &[&str]) -> Option<Ack> {
        match words {
            [first, count, id, ..] => Some(Ack {
                first: first.parse().ok()?,
                count: count.parse().ok()?,
                command_id: id.to_string(),
            }),
            _ => None,
        }
    }
}

/// A damaged store, ready for the checkers.
#[derive(Debug, Clone)]
struct Scene {
    /// The commands that were acknowledged (and so must be there).
    acked: Vec<Ack>,
    /// The file the attack wrote to, if any (a loud error names it).
    file: Option<String>,
    /// Whether bytes that a checksum or the WAL's recorded length covers
    /// were changed: then an auditor that calls the store valid is wrong.
    damaged: bool,
    /// What was done, for failure messages.
    what: String,
    /// Whether the attack appended a tail that no crash writes (see
    /// [`is_crash_tail`]): the engine may then refuse the store with a typed
    /// error naming the file instead of opening it.
    junk_tail: bool,
}

impl Scene {
    fn needed_end(&self) -> u64 {
        self.acked.iter().map(Ack::end).max().unwrap_or(0)
    }
}

/// One check's verdict with its evidence.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The checker's name.
    pub checker: &'static str,
    /// What it saw.
    pub outcome: Outcome,
    /// The evidence (error text, counts).
    pub detail: String,
    /// Whether a loud error is as good as intact here: the engine may refuse
    /// a tail that no crash writes.
    pub may_refuse: bool,
}

/// How a set of checkers is run, for one test binary.
pub struct Campaign {
    /// Who judges each damaged store.
    pub checkers: Vec<Checker>,
    /// Where stores go (a tmpfs when there is one).
    pub temp_dir: fn() -> tempfile::TempDir,
    /// How to run this binary's attacks, for reproduction lines, e.g.
    /// `cargo test -p engine-core --test attacks`.
    pub command: &'static str,
}

/// The test name of the child entry point every attack test file declares.
pub const CHILD_TEST: &str = "attack_child";

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let value = value.trim();
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={value:?} is not a number: {e}")))
}

fn name_hash(name: &str) -> u64 {
    // FNV-1a: stable across runs and platforms.
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn campaign_seed() -> u64 {
    env_u64("COLLOQUY_ATTACK_SEED").unwrap_or_else(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng::new(nanos ^ u64::from(std::process::id())).next_u64()
    })
}

/// Writes a line straight to the process's stderr, past libtest's output
/// capture, so summaries show in a plain `cargo test`.
fn announce(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

impl Campaign {
    /// Runs the trials of `attack` against every checker, prints one
    /// summary line per checker, and panics if an outcome that must be
    /// zero occurred (or, for the engine, a crash or a tail torn past the
    /// acknowledged data did not come out intact), listing each such trial
    /// with the seed that reproduces it.
    pub fn run(&self, attack: Attack) {
        if let Ok(only) = std::env::var("COLLOQUY_ATTACK") {
            let known: Vec<&str> = Attack::ALL.iter().map(|a| a.name()).collect();
            assert!(
                known.contains(&only.as_str()),
                "COLLOQUY_ATTACK={only:?} names no attack; known: {}",
                known.join(", ")
            );
            if only != attack.name() {
                return;
            }
        }
        if attack.is_disk_full() {
            if let Err(reason) = disk_full_possible() {
                announce(&format!("attack {}: skipped: {reason}", attack.name()));
                return;
            }
        }
        let seed = campaign_seed();
        let seeds: Vec<u64> = match env_u64("COLLOQUY_ATTACK_TRIAL_SEED") {
            Some(one) => vec![one],
            None => {
                let trials = env_u64("COLLOQUY_ATTACK_TRIALS").unwrap_or(TRIALS_DEFAULT);
                let mut rng = Rng::new(seed ^ name_hash(attack.name()));
                (0..trials).map(|_| rng.next_u64()).collect()
            }
        };
        let verbose = std::env::var_os("COLLOQUY_ATTACK_VERBOSE").is_some();
        let max_hangs =
            env_u64("COLLOQUY_ATTACK_MAX_HANGS").unwrap_or(HANGS_PER_ATTACK_MAX_DEFAULT);
        let started = Instant::now();
        let mut results: Vec<(u64, Vec<Verdict>)> = Vec::new();
        let mut hangs = 0;
        for &trial_seed in &seeds {
            let verdicts = self.trial(attack, trial_seed);
            if verbose {
                for v in &verdicts {
                    announce(&format!(
                        "  {} trial {trial_seed:#x} [{}]: {}: {}",
                        attack.name(),
                        v.checker,
                        v.outcome,
                        v.detail
                    ));
                }
            }
            if verdicts.iter().any(|v| v.outcome == Outcome::Hang) {
                hangs += 1;
            }
            results.push((trial_seed, verdicts));
            if hangs >= max_hangs && results.len() < seeds.len() {
                announce(&format!(
                    "attack {}: stopping after {hangs} hung trials (COLLOQUY_ATTACK_MAX_HANGS={max_hangs})",
                    attack.name()
                ));
                break;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        self.report(attack, seed, &results, seconds);
    }

    fn report(&self, attack: Attack, seed: u64, results: &[(u64, Vec<Verdict>)], seconds: f64) {
        let mut failures = Vec::new();
        let checkers: Vec<&'static str> = match attack.is_disk_full() {
            true => vec![Checker::Engine.name()],
            false => self.checkers.iter().map(Checker::name).collect(),
        };
        for checker in &checkers {
            let mut counts: BTreeMap<Outcome, u64> = BTreeMap::new();
            for (trial_seed, verdicts) in results {
                for v in verdicts.iter().filter(|v| v.checker == *checker) {
                    *counts.entry(v.outcome).or_default() += 1;
                    let must_be_intact =
                        v.checker == Checker::Engine.name() && attack.engine_must_be_intact();
                    let refused_junk = v.may_refuse && v.outcome == Outcome::LoudError;
                    if v.outcome.must_be_zero()
                        || (must_be_intact && v.outcome != Outcome::Intact && !refused_junk)
                    {
                        failures.push(format!(
                            "  {} / {}: {} — {} (reproduce: COLLOQUY_ATTACK={} \
                             COLLOQUY_ATTACK_TRIAL_SEED={trial_seed:#x} {})",
                            attack.name(),
                            v.checker,
                            v.outcome,
                            v.detail,
                            attack.name(),
                            self.command
                        ));
                    }
                }
            }
            let shown: Vec<String> = Outcome::ALL
                .iter()
                .map(|o| format!("{o} {}", counts.get(o).copied().unwrap_or(0)))
                .collect();
            let line = format!(
                "attack {} [{checker}]: {} trials: {} (seed {seed:#x}, {seconds:.1} s)",
                attack.name(),
                results.len(),
                shown.join(", ")
            );
            announce(&line);
            if let Ok(path) = std::env::var("COLLOQUY_ATTACK_REPORT") {
                let cells: Vec<String> = Outcome::ALL
                    .iter()
                    .map(|o| counts.get(o).copied().unwrap_or(0).to_string())
                    .collect();
                let row = format!(
                    "| {} | {checker} | {} | {} |\n",
                    attack.name(),
                    results.len(),
                    cells.join(" | ")
                );
                let appended = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .and_then(|mut f| f.write_all(row.as_bytes()));
                if let Err(e) = appended {
                    announce(&format!(
                        "cannot append to COLLOQUY_ATTACK_REPORT={path}: {e}"
                    ));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "attack {}: {} checks went wrong (campaign seed {seed:#x}):\n{}",
            attack.name(),
            failures.len(),
            failures.join("\n")
        );
    }

    /// One trial: build the scene, then judge it with every checker.
    fn trial(&self, attack: Attack, seed: u64) -> Vec<Verdict> {
        let dir = (self.temp_dir)();
        let mut rng = Rng::new(seed);
        if attack.is_disk_full() {
            return vec![disk_full_trial(attack, dir.path(), &mut rng)];
        }
        let store = dir.path().join("store");
        let scene = match attack {
            Attack::Sigkill => sigkill(&store, &mut rng),
            _ => prepare(&store, &mut rng).map(|p| damage(attack, &store, &p, &mut rng)),
        };
        let scene = match scene {
            Ok(scene) => scene,
            // The attack's own child hung or panicked: every checker
            // shares that verdict.
            Err((outcome, detail)) => {
                return self
                    .checkers
                    .iter()
                    .map(|c| Verdict {
                        checker: c.name(),
                        outcome,
                        detail: detail.clone(),
                        may_refuse: false,
                    })
                    .collect();
            }
        };
        let acked_file = dir.path().join("acked");
        write_acked(&acked_file, &scene.acked);
        // The auditors only read, so they judge the store side by side;
        // the engine recovers it in place, so it goes last.
        let auditors: Vec<(&Checker, Running)> = self
            .checkers
            .iter()
            .filter_map(|c| match c {
                Checker::Verify { binary, read_only } => {
                    let mut cmd = Command::new(binary);
                    cmd.args(["verify", "--json", "--quiet"]);
                    if *read_only {
                        cmd.arg("--read-only");
                    }
                    cmd.arg("--data").arg(&store);
                    Some((c, Running::spawn(cmd)))
                }
                Checker::Engine => None,
            })
            .collect();
        let mut verdicts: Vec<Verdict> = auditors
            .into_iter()
            .map(|(checker, running)| {
                let finished = running.finish(deadline_from_now());
                let (outcome, detail) = judge_auditor(&finished, &scene);
                Verdict {
                    checker: checker.name(),
                    outcome,
                    detail: format!("{}; {detail}", scene.what),
                    may_refuse: false,
                }
            })
            .collect();
        if self.checkers.iter().any(|c| matches!(c, Checker::Engine)) {
            let (outcome, detail) = check_engine(&store, &acked_file, scene.file.as_deref());
            verdicts.push(Verdict {
                checker: Checker::Engine.name(),
                outcome,
                detail: format!("{}; {detail}", scene.what),
                may_refuse: scene.junk_tail,
            });
        }
        verdicts
    }
}

fn deadline_from_now() -> Instant {
    Instant::now() + Duration::from_millis(ANSWER_DEADLINE_MS)
}

fn write_acked(path: &Path, acked: &[Ack]) {
    let text: String = acked
        .iter()
        .map(|a| format!("{} {} {}\n", a.first, a.count, a.command_id))
        .collect();
    std::fs::write(path, text).expect("write the acknowledged list");
}

fn read_acked(path: &Path) -> Vec<Ack> {
    std::fs::read_to_string(path)
        .expect("read the acknowledged list")
        .lines()
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            Ack::parse(&words).unwrap_or_else(|| panic!("malformed acknowledged line {l:?}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Child processes.

/// A child process whose output is collected line by line as it comes.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: JoinHandle<String>,
}

/// A child that ended, or was killed at its deadline.
#[derive(Debug)]
struct Finished {
    /// `None` if it missed its deadline and was killed.
    status: Option<ExitStatus>,
    /// Its stdout lines.
    stdout: Vec<String>,
    stderr: String,
}

impl Finished {
    /// The reported lines (prefix stripped).
    fn reports(&self) -> impl Iterator<Item = &str> {
        self.stdout.iter().filter_map(|l| report_of(l))
    }

    /// A panic message, or the signal that killed it, if it crashed.
    fn crash(&self) -> Option<String> {
        if let Some(at) = self.stderr.find("panicked at") {
            let end = self.stderr[at..]
                .find("\nnote:")
                .map_or(self.stderr.len(), |e| at + e);
            return Some(one_line(&self.stderr[at..end]));
        }
        let status = self.status?;
        if let Some(signal) = status.signal() {
            return Some(format!("killed by signal {signal}"));
        }
        (status.code() == Some(RUST_PANIC_EXIT_CODE)).then(|| {
            format!(
                "exit {RUST_PANIC_EXIT_CODE} (a panic): {}",
                one_line(&self.stderr)
            )
        })
    }

    fn output(&self) -> String {
        let mut all = self.stdout.join("\n");
        all.push('\n');
        all.push_str(&self.stderr);
        all
    }
}

/// The report in a line of a child's stdout, if it holds one. libtest may
/// have written `test attack_child ... ` before it on the same line.
fn report_of(line: &str) -> Option<&str> {
    line.split_once(LINE_PREFIX).map(|(_, report)| report)
}

/// `text` on one line, whole: what a child reports for the parent to judge.
fn flat(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect()
}

fn one_line(text: &str) -> String {
    let flat = flat(text);
    match flat.char_indices().nth(SHOWN_CHARS_MAX) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Running {
            child,
            lines,
            stdout: Vec::new(),
            stderr,
        }
    }

    /// Spawns this test binary as a child in `role`.
    fn role(role: &str, envs: &[(&str, String)]) -> Running {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut cmd = Command::new(exe);
        cmd.args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(ROLE_VAR, role);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Running::spawn(cmd)
    }

    /// Waits for the next reported line (prefix stripped) until
    /// `deadline`; `None` if the deadline passed or the child closed its
    /// output.
    fn next_report(&mut self, deadline: Instant) -> Option<String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            self.stdout.push(line.clone());
            if let Some(report) = report_of(&line) {
                return Some(report.to_string());
            }
        }
    }

    /// Waits for the child to exit until `deadline`, killing it then.
    fn finish(mut self, deadline: Instant) -> Finished {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(CHILD_POLL_INTERVAL_MS)),
                Err(e) => panic!("waiting for a child failed: {e}"),
            }
        };
        self.collect(status)
    }

    /// SIGKILLs the child now and collects what it printed before.
    fn kill(mut self) -> Finished {
        let _ = self.child.kill();
        let status = self.child.wait().ok();
        self.collect(status)
    }

    fn collect(mut self, status: Option<ExitStatus>) -> Finished {
        // The pipes close when the child is gone; the reader threads end.
        let drain_deadline = deadline_from_now();
        while let Ok(line) = self
            .lines
            .recv_timeout(drain_deadline.saturating_duration_since(Instant::now()))
        {
            self.stdout.push(line);
        }
        let stderr = self.stderr.join().unwrap_or_default();
        Finished {
            status,
            stdout: self.stdout,
            stderr,
        }
    }
}

/// The entry point of every child role. Returns at once unless
/// [`ROLE_VAR`] is set (a plain test run passes through it).
pub fn child_main() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(CHILD_LIFETIME_MS_MAX));
        std::process::exit(3);
    });
    let store = PathBuf::from(std::env::var(STORE_VAR).expect("the store's path"));
    let seed = env_u64(SEED_VAR).unwrap_or(0);
    match role.as_str() {
        "append" => child_append(&store, seed),
        "prepare" => child_prepare(&store, seed),
        "engine-check" => {
            let acked = PathBuf::from(std::env::var(ACKED_VAR).expect("the acknowledged list"));
            child_engine_check(&store, &acked)
        }
        "disk-full" => child_disk_full(&store, seed),
        other => panic!("unknown attack role {other:?}"),
    }
}

/// Prints one report line in a single write, so a SIGKILL never leaves
/// half a line.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{LINE_PREFIX}{line}\n").as_bytes());
    let _ = out.flush();
}

/// Drives an engine with fresh command ids derived from a seed.
struct Driver {
    seed: u64,
    next: u64,
    service: Option<ServiceSid>,
    conversation: Option<ConversationSid>,
}

impl Driver {
    fn new(seed: u64) -> Self {
        Driver {
            seed,
            next: 0,
            service: None,
            conversation: None,
        }
    }

    fn id(&mut self) -> CommandId {
        self.next += 1;
        CommandId::from_key(format!("attack/{}/{}", self.seed, self.next).as_bytes())
    }

    fn envelope(&mut self, command: impl Into<EngineCommand>) -> CommandEnvelope {
        CommandEnvelope::new(self.id(), command.into())
    }

    /// Creates the service and conversation the messages go to, reporting
    /// both acknowledgements.
    fn setup(&mut self, engine: &Engine) {
        let envelope = self.envelope(CreateService::new("attack"));
        let outcome = execute_and_report(engine, envelope, "").expect("create the service");
        let service = outcome.service_sid().expect("a service");
        let envelope = self.envelope(CreateConversation::new(service));
        let outcome = execute_and_report(engine, envelope, "").expect("create the conversation");
        self.service = Some(service);
        self.conversation = outcome.conversation_sid();
    }

    fn post(&mut self, rng: &mut Rng) -> CommandEnvelope {
        let len = rng.range(1, BODY_BYTES_ATTACK_MAX as u64) as usize;
        let body: String = format!("{:x}-", rng.next_u64())
            .chars()
            .cycle()
            .take(len)
            .collect();
        let (service, conversation) = (self.service, self.conversation);
        let post = PostMessage::new(service.expect("set up"), conversation.expect("set up"));
        self.envelope(post.author("mallory").body(body))
    }
}

/// Executes and, once acknowledged, reports `ACK first count id` plus
/// `extra`; an error is reported as `ERR message` and returned.
fn execute_and_report(
    engine: &Engine,
    envelope: CommandEnvelope,
    extra: &str,
) -> Result<engine_core::CommandOutcome, String> {
    let id = envelope.command_id;
    match engine.execute(envelope) {
        Ok(outcome) => {
            if !outcome.records.is_empty() {
                say(&format!(
                    "ACK {} {} {id}{extra}",
                    outcome.first_position,
                    outcome.records.len()
                ));
            }
            Ok(outcome)
        }
        Err(e) => {
            let text = one_line(&e.to_string());
            say(&format!("ERR {text}"));
            Err(text)
        }
    }
}

fn open_engine(store: &Path) -> Engine {
    Engine::open(store, LogOptions::default()).unwrap_or_else(|e| panic!("open the engine: {e}"))
}

/// The newest write-ahead log in `store` and its length.
fn newest_wal(store: &Path) -> Option<(String, u64)> {
    let mut best: Option<(u64, String, u64)> = None;
    for entry in std::fs::read_dir(store).ok()? {
        let entry = entry.ok()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(number) = name
            .strip_suffix(".log")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let len = entry.metadata().ok()?.len();
        if best.as_ref().is_none_or(|(n, _, _)| number > *n) {
            best = Some((number, name, len));
        }
    }
    best.map(|(_, name, len)| (name, len))
}

/// Role `append`: open (creating) the store with `Durability::Sync`, then
/// append from several threads until killed, reporting each
/// acknowledgement.
fn child_append(store: &Path, seed: u64) {
    say("OPENING");
    let engine = open_engine(store);
    say("READY");
    let mut setup = Driver::new(seed);
    setup.setup(&engine);
    std::thread::scope(|scope| {
        for thread in 0..SIGKILL_APPENDER_THREADS {
            let engine = &engine;
            let mut driver = Driver {
                seed: seed ^ name_hash(&format!("thread {thread}")),
                next: 0,
                service: setup.service,
                conversation: setup.conversation,
            };
            let mut rng = Rng::new(driver.seed);
            scope.spawn(move || loop {
                let envelope = driver.post(&mut rng);
                if execute_and_report(engine, envelope, "").is_err() {
                    break;
                }
            });
        }
    });
}

/// Role `prepare`: two phases closed cleanly (table files), then a synced
/// phase that reports each acknowledgement with the newest WAL's length
/// after it, lists the live table files, reports `DONE` and waits to be
/// killed.
fn child_prepare(store: &Path, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut driver = Driver::new(seed);
    for phase in 0..2 {
        let engine = open_engine(store);
        if phase == 0 {
            driver.setup(&engine);
        }
        for _ in 0..rng.range(FLUSHED_PHASE_APPENDS.0, FLUSHED_PHASE_APPENDS.1) {
            let envelope = driver.post(&mut rng);
            execute_and_report(&engine, envelope, "").expect("append");
        }
    }
    let engine = open_engine(store);
    let (wal, len) = newest_wal(store).expect("an open store has a WAL");
    say(&format!("WAL-OPEN {wal} {len}"));
    for _ in 0..rng.range(WAL_PHASE_APPENDS.0, WAL_PHASE_APPENDS.1) {
        let envelope = driver.post(&mut rng);
        let id = envelope.command_id;
        let outcome = engine.execute(envelope).expect("append");
        let (wal, len) = newest_wal(store).expect("a WAL");
        say(&format!(
            "ACK {} {} {id} {wal} {len}",
            outcome.first_position,
            outcome.records.len()
        ));
    }
    for file in engine.log().db().live_files().expect("list the live files") {
        say(&format!(
            "SST {} {}",
            file.name.trim_start_matches('/'),
            file.column_family_name
        ));
    }
    say("DONE");
    // Never closed: the parent SIGKILLs this process.
    std::thread::sleep(Duration::from_millis(CHILD_LIFETIME_MS_MAX));
}

/// Role `engine-check`: open the store, verify the chain, and look up
/// every acknowledged record; report `OPEN-ERR`, `VERIFY-ERR` or
/// `CHECKED next=N missing=M first_missing=P`.
fn child_engine_check(store: &Path, acked: &Path) {
    let acked = read_acked(acked);
    let engine = match Engine::open(store, LogOptions::default()) {
        Ok(engine) => engine,
        Err(e) => return say(&format!("OPEN-ERR {}", flat(&e.to_string()))),
    };
    if let Err(e) = engine.log().verify() {
        return say(&format!("VERIFY-ERR {}", flat(&e.to_string())));
    }
    let mut missing = 0;
    let mut first_missing = None;
    for ack in &acked {
        let found = engine
            .log()
            .read_range(ack.first..ack.end())
            .filter_map(Result::ok)
            .filter(|r| r.header.command_id.to_string() == ack.command_id)
            .count() as u64;
        if found < ack.count {
            missing += ack.count - found;
            first_missing.get_or_insert(ack.first);
        }
    }
    say(&format!(
        "CHECKED next={} missing={missing} first_missing={}",
        engine.log().head().next_position,
        first_missing.map_or("-".to_string(), |p| p.to_string())
    ));
}

// ---------------------------------------------------------------------------
// Building scenes.

type TrialError = (Outcome, String);

/// A crashed child's verdict for everyone, or `None` if it ran normally.
fn child_failure(finished: &Finished, what: &str) -> Option<TrialError> {
    if let Some(crash) = finished.crash() {
        return Some((Outcome::Panic, format!("{what} crashed: {crash}")));
    }
    if finished.status.is_none() {
        return Some((Outcome::Hang, format!("{what} did not answer")));
    }
    None
}

/// SIGKILL while appending; the scene is the acknowledged commands.
fn sigkill(store: &Path, rng: &mut Rng) -> Result<Scene, TrialError> {
    let mut child = Running::role(
        "append",
        &[
            (STORE_VAR, store.display().to_string()),
            (SEED_VAR, rng.next_u64().to_string()),
        ],
    );
    let (awaited, wait_max) = match rng.chance(1, 4) {
        true => ("OPENING", SIGKILL_DURING_OPEN_MS_MAX),
        false => ("READY", SIGKILL_AFTER_READY_MS_MAX),
    };
    while let Some(line) = child.next_report(deadline_from_now()) {
        if line == awaited {
            break;
        }
    }
    if !child.stdout.iter().any(|l| report_of(l) == Some(awaited)) {
        let finished = child.kill();
        return Err(child_failure(&finished, "the appender")
            .unwrap_or((Outcome::Hang, format!("the appender never said {awaited}"))));
    }
    let wait = rng.range(0, wait_max);
    std::thread::sleep(Duration::from_millis(wait));
    let what = match awaited {
        "OPENING" => format!("SIGKILL {wait} ms into the store's first open"),
        _ => format!("SIGKILL {wait} ms after the open"),
    };
    let finished = child.kill();
    if let Some(crash) = finished
        .crash()
        .filter(|c| !c.starts_with("killed by signal"))
    {
        return Err((Outcome::Panic, format!("the appender crashed: {crash}")));
    }
    let acked: Vec<Ack> = finished
        .reports()
        .filter_map(|l| l.strip_prefix("ACK "))
        .filter_map(|l| Ack::parse(&l.split_whitespace().collect::<Vec<_>>()))
        .collect();
    Ok(Scene {
        what: format!("{what}, {} commands acknowledged", acked.len()),
        acked,
        file: None,
        damaged: false,
        junk_tail: false,
    })
}

/// What the prepare child wrote.
#[derive(Debug)]
struct Prepared {
    /// Commands acknowledged in the cleanly closed phases.
    flushed: Vec<Ack>,
    /// The synced phase's commands, each with the WAL and its length right
    /// after the acknowledgement.
    synced: Vec<(Ack, String, u64)>,
    /// The WAL's length when the synced phase opened.
    wal_open_len: u64,
    /// Live table files and their column families.
    tables: Vec<(String, String)>,
}

impl Prepared {
    fn all_acked(&self) -> Vec<Ack> {
        self.flushed
            .iter()
            .cloned()
            .chain(self.synced.iter().map(|(a, _, _)| a.clone()))
            .collect()
    }

    fn last_wal(&self) -> (&str, u64) {
        let (_, wal, len) = self.synced.last().expect("the synced phase appended");
        (wal, *len)
    }
}

fn prepare(store: &Path, rng: &mut Rng) -> Result<Prepared, TrialError> {
    let mut child = Running::role(
        "prepare",
        &[
            (STORE_VAR, store.display().to_string()),
            (SEED_VAR, rng.next_u64().to_string()),
        ],
    );
    let mut prepared = Prepared {
        flushed: Vec::new(),
        synced: Vec::new(),
        wal_open_len: 0,
        tables: Vec::new(),
    };
    let mut in_wal_phase = false;
    loop {
        let Some(line) = child.next_report(deadline_from_now()) else {
            let finished = child.kill();
            return Err(
                child_failure(&finished, "the store writer").unwrap_or_else(|| {
                    panic!(
                        "the store writer stopped before DONE:\n{}",
                        finished.output()
                    )
                }),
            );
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["DONE"] => break,
            ["WAL-OPEN", _, len] => {
                in_wal_phase = true;
                prepared.wal_open_len = len.parse().expect("a length");
            }
            ["ACK", rest @ ..] if in_wal_phase => {
                let ack = Ack::parse(rest).expect("an ACK line");
                let (wal, len) = (rest[3].to_string(), rest[4].parse().expect("a length"));
                prepared.synced.push((ack, wal, len));
            }
            ["ACK", rest @ ..] => prepared
                .flushed
                .push(Ack::parse(rest).expect("an ACK line")),
            ["SST", name, cf] => prepared.tables.push((name.to_string(), cf.to_string())),
            _ => panic!("unexpected line from the store writer: {line}"),
        }
    }
    let finished = child.kill();
    if let Some(crash) = finished
        .crash()
        .filter(|c| !c.starts_with("killed by signal"))
    {
        return Err((Outcome::Panic, format!("the store writer crashed: {crash}")));
    }
    Ok(prepared)
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {} to append: {e}", path.display()));
    file.write_all(bytes).expect("append to the file");
    file.sync_all().expect("sync the file");
}

fn set_len(path: &Path, len: u64) {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {} to truncate: {e}", path.display()));
    file.set_len(len).expect("truncate");
    file.sync_all().expect("sync the file");
}

/// Flips bit `bit` of the byte at `offset`.
fn flip_bit(path: &Path, offset: u64, bit: u32) {
    let mut bytes = std::fs::read(path).expect("read the file");
    bytes[offset as usize] ^= 1 << bit;
    std::fs::write(path, bytes).expect("write the file back");
}

/// Whether the byte at `offset` of a RocksDB log-format file (WAL or
/// MANIFEST) lies inside a record (header or payload), where a checksum
/// covers it, rather than in a block's unused trailer.
pub fn log_byte_is_covered(bytes: &[u8], offset: u64) -> bool {
    let block_start = offset - offset % LOG_BLOCK_BYTES;
    let block_end = (block_start + LOG_BLOCK_BYTES).min(bytes.len() as u64);
    let mut at = block_start;
    while at + LOG_HEADER_BYTES <= block_end {
        let len_at = (at + 4) as usize;
        let len = u64::from(u16::from_le_bytes([bytes[len_at], bytes[len_at + 1]]));
        let end = at + LOG_HEADER_BYTES + len;
        if offset < end {
            return true;
        }
        at = end;
    }
    false
}

/// Whether flipping bit `bit` of the byte at `offset` of a log-format file
/// changes a record header's length (bytes 4–5 of the header, which its
/// checksum does not cover) so that the record runs past the end of the
/// file: the file then reads as one whose last record a crash tore.
pub fn flip_reads_as_torn_tail(bytes: &[u8], offset: u64, bit: u32) -> bool {
    let block_start = offset - offset % LOG_BLOCK_BYTES;
    let block_end = (block_start + LOG_BLOCK_BYTES).min(bytes.len() as u64);
    let mut at = block_start;
    while at + LOG_HEADER_BYTES <= block_end {
        let len_at = at + 4;
        let len = |b: &[u8]| {
            u64::from(u16::from_le_bytes([
                b[len_at as usize],
                b[len_at as usize + 1],
            ]))
        };
        let end = at + LOG_HEADER_BYTES + len(bytes);
        if offset < end {
            if offset != len_at && offset != len_at + 1 {
                return false;
            }
            let mut flipped = bytes.to_vec();
            flipped[offset as usize] ^= 1 << bit;
            return at + LOG_HEADER_BYTES + len(&flipped) > bytes.len() as u64;
        }
        at = end;
    }
    false
}

/// Whether `appended`, written at byte `wal_len` of a WAL, could be what a
/// crash leaves after the last record: zeros (space a file system
/// allocated), or the torn beginning of a record of a type RocksDB writes
/// here (1–4: full, first, middle, last) that runs past the end of the
/// file. Anything else is junk no crash writes: a complete record (whose
/// checksum cannot match) or a type RocksDB never writes to this store (the
/// recyclable types 5–8 among them, on which its reader spins, the issue's
/// `00 00 00 00 00 00 06`). The engine may refuse such a tail with a typed
/// error naming the file rather than guess that it holds nothing.
pub fn is_crash_tail(wal_len: u64, appended: &[u8]) -> bool {
    if appended.iter().all(|b| *b == 0) {
        return true;
    }
    let left_in_block = LOG_BLOCK_BYTES - wal_len % LOG_BLOCK_BYTES;
    // Fewer than a header's bytes left in a block are its trailer, which
    // readers skip.
    let trailer = if left_in_block < LOG_HEADER_BYTES {
        left_in_block as usize
    } else {
        0
    };
    let rest = &appended[trailer.min(appended.len())..];
    let header = LOG_HEADER_BYTES as usize;
    if rest.len() < header {
        return true;
    }
    let len = u16::from_le_bytes([rest[4], rest[5]]) as usize;
    let kind = rest[6];
    (1..=4).contains(&kind) && header + len > rest.len()
}

fn damage(attack: Attack, store: &Path, prepared: &Prepared, rng: &mut Rng) -> Scene {
    let (wal, wal_len) = prepared.last_wal();
    let wal_path = store.join(wal);
    let on_disk = std::fs::metadata(&wal_path)
        .unwrap_or_else(|e| panic!("the WAL {wal} is gone: {e}"))
        .len();
    assert_eq!(
        on_disk, wal_len,
        "the WAL grew after the last acknowledgement"
    );
    let acked = prepared.all_acked();
    let scene = |acked: Vec<Ack>, file: &str, damaged: bool, what: String| Scene {
        acked,
        file: Some(file.to_string()),
        damaged,
        what,
        junk_tail: false,
    };
    match attack {
        Attack::TailGarbage => {
            let len = rng.range(1, GARBAGE_TAIL_BYTES_MAX);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            append_bytes(&wal_path, &bytes);
            let what = format!("{len} random bytes appended to {wal} at {wal_len}");
            Scene {
                junk_tail: !is_crash_tail(wal_len, &bytes),
                ..scene(acked, wal, false, what)
            }
        }
        Attack::TailZeros => {
            let len = rng.range(1, ZERO_TAIL_BYTES_MAX);
            append_bytes(&wal_path, &vec![0; len as usize]);
            let what = format!("{len} zero bytes appended to {wal} at {wal_len}");
            scene(acked, wal, false, what)
        }
        Attack::TailTornHeader => {
            let crc = if rng.chance(1, 2) {
                0
            } else {
                rng.next_u64() as u32
            };
            let len = if rng.chance(1, 2) {
                0
            } else {
                rng.range(1, TORN_HEADER_LENGTH_MAX) as u16
            };
            let kind = rng.range(0, TORN_HEADER_TYPES - 1) as u8;
            let mut header = crc.to_le_bytes().to_vec();
            header.extend_from_slice(&len.to_le_bytes());
            header.push(kind);
            append_bytes(&wal_path, &header);
            let what =
                format!("torn header {header:02x?} (type {kind}) appended to {wal} at {wal_len}");
            Scene {
                junk_tail: !is_crash_tail(wal_len, &header),
                ..scene(acked, wal, false, what)
            }
        }
        Attack::TruncateUnacked => {
            // A crash that cuts the last batch's WAL write short never
            // answers its caller, and never writes its head-marker slot
            // (the writer updates the marker only after the write). The
            // synced phase appends one command per batch, so undoing the
            // last batch leaves the others acknowledged.
            let synced = &prepared.synced;
            let keep = synced.len() - 2;
            let kept_len = synced[keep].2;
            let marker_head = engine_core::log::head_marker::tear_newest_slot(store)
                .expect("tear the newest head-marker slot");
            assert_eq!(
                marker_head,
                synced[keep].0.end(),
                "the marker's other slot is the head before the last batch"
            );
            let cut = rng.range(kept_len + 1, wal_len - 1);
            set_len(&wal_path, cut);
            let acked: Vec<Ack> = prepared
                .flushed
                .iter()
                .cloned()
                .chain(synced[..=keep].iter().map(|(a, _, _)| a.clone()))
                .collect();
            let what = format!(
                "{wal} truncated to {cut} of {wal_len} bytes; acknowledged up to byte {kept_len} \
                 ({} of {} synced commands)",
                keep + 1,
                synced.len()
            );
            scene(acked, wal, false, what)
        }
        Attack::TruncateAcked => {
            let cut = rng.range(prepared.wal_open_len, wal_len - 1);
            set_len(&wal_path, cut);
            let what = format!("{wal} truncated to {cut} of {wal_len} acknowledged bytes");
            scene(acked, wal, true, what)
        }
        Attack::DeleteWal => {
            std::fs::remove_file(&wal_path).expect("delete the WAL");
            let what = format!("{wal} ({wal_len} acknowledged bytes) deleted");
            // A deleted file cannot be named from what is left: a loud
            // error is any typed one (it names the missing positions).
            Scene {
                file: None,
                ..scene(acked, wal, true, what)
            }
        }
        Attack::FlipWal | Attack::FlipManifest => {
            let file = if attack == Attack::FlipWal {
                wal.to_string()
            } else {
                std::fs::read_to_string(store.join("CURRENT"))
                    .expect("read CURRENT")
                    .trim()
                    .to_string()
            };
            let path = store.join(&file);
            let bytes = std::fs::read(&path).expect("read the file");
            let offset = rng.range(0, bytes.len() as u64 - 1);
            let bit = rng.range(0, 7) as u32;
            // A flipped length that makes a record run past the end of the
            // file reads exactly as a record a crash tore: no checksum
            // covers the length, so only the acknowledged records can tell.
            let in_record = log_byte_is_covered(&bytes, offset);
            let torn = in_record && flip_reads_as_torn_tail(&bytes, offset, bit);
            let covered = in_record && !torn;
            flip_bit(&path, offset, bit);
            let what = format!(
                "bit {bit} of byte {offset} of {file} ({} bytes) flipped{}",
                bytes.len(),
                match (in_record, torn) {
                    (false, _) => " (block padding)",
                    (true, true) => " (a length now past the end: reads as a torn tail)",
                    (true, false) => "",
                }
            );
            scene(acked, &file, covered, what)
        }
        Attack::FlipSst => {
            let log_tables: Vec<&(String, String)> = prepared
                .tables
                .iter()
                .filter(|(_, cf)| cf == engine_core::log::keys::CF_LOG)
                .collect();
            let all: Vec<&(String, String)> = prepared.tables.iter().collect();
            let pool = if !log_tables.is_empty() && rng.chance(1, 2) {
                log_tables
            } else {
                all
            };
            let (file, cf) = pool[rng.range(0, pool.len() as u64 - 1) as usize];
            let path = store.join(file);
            let len = std::fs::metadata(&path).expect("the table file").len();
            let offset = rng.range(0, len - 1);
            let bit = rng.range(0, 7) as u32;
            flip_bit(&path, offset, bit);
            let what = format!(
                "bit {bit} of byte {offset} of {file} ({len} bytes, column family {cf}) flipped"
            );
            scene(acked, file, true, what)
        }
        Attack::Sigkill | Attack::DiskFullWal | Attack::DiskFullFlush => {
            unreachable!("{} builds no damaged store", attack.name())
        }
    }
}

// ---------------------------------------------------------------------------
// Judging.

fn names_file(text: &str, file: Option<&str>) -> bool {
    file.is_none_or(|f| text.contains(f))
}

fn judge_auditor(finished: &Finished, scene: &Scene) -> (Outcome, String) {
    if let Some(crash) = finished.crash() {
        return (Outcome::Panic, crash);
    }
    let Some(status) = finished.status else {
        return (Outcome::Hang, "no answer".to_string());
    };
    let output = finished.output();
    match status.code() {
        Some(0) => {
            let report: Option<serde_json::Value> = finished
                .stdout
                .iter()
                .find_map(|l| serde_json::from_str(l).ok());
            // The harness relies on this field of `verify --json`.
            let next = report
                .as_ref()
                .and_then(|r| r["next_position"].as_u64())
                .unwrap_or_else(|| {
                    panic!("replay-tool verify --json exited 0 without a next_position: {output}")
                });
            let needed = scene.needed_end();
            let said = format!("exit 0, next position {next}, acknowledged up to {needed}");
            if next < needed {
                (Outcome::ReportedValid, format!("{said}: records missing"))
            } else if scene.damaged {
                (Outcome::ReportedValid, format!("{said}: damage not seen"))
            } else {
                (Outcome::Intact, said)
            }
        }
        // A Rust panic exits 101 and is caught by `crash` above; any other
        // code is the tool reporting an error (1 and 2 today).
        Some(code) => {
            let text = one_line(&output);
            if names_file(&output, scene.file.as_deref()) {
                (Outcome::LoudError, format!("exit {code}: {text}"))
            } else {
                (Outcome::VagueError, format!("exit {code}: {text}"))
            }
        }
        None => (
            Outcome::Panic,
            format!("no exit code: {}", one_line(&output)),
        ),
    }
}

/// Runs the `engine-check` role on `store` and judges what it reported.
fn check_engine(store: &Path, acked: &Path, file: Option<&str>) -> (Outcome, String) {
    let child = Running::role(
        "engine-check",
        &[
            (STORE_VAR, store.display().to_string()),
            (ACKED_VAR, acked.display().to_string()),
        ],
    );
    let finished = child.finish(deadline_from_now());
    if let Some(crash) = finished.crash() {
        return (Outcome::Panic, crash);
    }
    if finished.status.is_none() {
        return (Outcome::Hang, "the open did not answer".to_string());
    }
    let Some(report) = finished.reports().last().map(str::to_string) else {
        return (
            Outcome::Panic,
            format!("no report: {}", one_line(&finished.output())),
        );
    };
    if let Some(error) = report
        .strip_prefix("OPEN-ERR ")
        .or_else(|| report.strip_prefix("VERIFY-ERR "))
    {
        return match names_file(error, file) {
            true => (Outcome::LoudError, report),
            false => (Outcome::VagueError, report),
        };
    }
    let missing = report
        .split_whitespace()
        .find_map(|w| w.strip_prefix("missing="))
        .and_then(|m| m.parse::<u64>().ok());
    match missing {
        Some(0) => (Outcome::Intact, report),
        Some(_) => (Outcome::SilentLoss, report),
        None => (Outcome::Panic, format!("unreadable report {report:?}")),
    }
}

// ---------------------------------------------------------------------------
// Disk full.

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Whether size-limited tmpfs mounts can be made here, or why not.
fn disk_full_possible() -> Result<(), String> {
    match effective_uid() {
        Some(0) => {}
        Some(uid) => {
            return Err(format!(
                "not running as root (uid {uid}): a size-limited tmpfs needs mount"
            ))
        }
        None => return Err("cannot tell the user id (no /proc/self/status)".into()),
    }
    let dir = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
    Mount::new(dir.path(), DISK_FULL_TMPFS_BYTES).map(drop)
}

/// A size-limited tmpfs, unmounted on drop.
struct Mount {
    path: PathBuf,
}

impl Mount {
    fn new(path: &Path, bytes: u64) -> Result<Mount, String> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                output.status,
                one_line(&String::from_utf8_lossy(&output.stderr))
            ));
        }
        Ok(Mount {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Role `disk-full`: open on the small tmpfs, fill it, append until an
/// append fails (with a flush running in the background for
/// [`Attack::DiskFullFlush`]), free the space, retry, close. Every step
/// reports a line, so the parent sees where a hang is. After space returns,
/// an error whose text contains "reopen" (any case) counts as the typed
/// "reopen required"; any other error, retried for
/// [`DISK_FULL_RECOVERY_MS_MAX`], makes the trial [`Outcome::Stuck`].
fn child_disk_full(store: &Path, seed: u64) {
    let mut rng = Rng::new(seed);
    let filler_path = store.with_file_name("filler");
    let slack = env_u64(SLACK_VAR).unwrap_or(0);
    let flush = std::env::var(FLUSH_VAR).is_ok_and(|v| v == "1");
    // RocksDB resumes writes after a failed flush only once the disk has
    // room for its largest memtable (64 MiB by default, more than the
    // whole tmpfs), so the flush attack runs with smaller ones.
    let engine = if flush {
        let options =
            LogOptions::default().memtable_bytes(DISK_FULL_FLUSH_WRITE_BUFFER_BYTES as usize);
        Engine::open(store, options).unwrap_or_else(|e| panic!("open the engine: {e}"))
    } else {
        open_engine(store)
    };
    let mut driver = Driver::new(seed);
    driver.setup(&engine);
    if flush {
        // A memtable far larger than the space that will be left, so the
        // flush cannot write its table file while WAL appends still fit.
        let prefill = rng.range(
            DISK_FULL_FLUSH_MEMTABLE_BYTES / 4,
            DISK_FULL_FLUSH_MEMTABLE_BYTES,
        );
        while newest_wal(store).is_some_and(|(_, len)| len < prefill) {
            let envelope = driver.post(&mut rng);
            execute_and_report(&engine, envelope, "").expect("append before the disk fills");
        }
    }
    say("READY");

    let mut filler = File::create(&filler_path).expect("create the filler");
    let chunk = vec![0u8; FILLER_CHUNK_BYTES];
    while filler.write_all(&chunk).is_ok() {}
    let _ = filler.sync_all();
    let filled = filler.metadata().map_or(0, |m| m.len());
    let _ = filler.set_len(filled.saturating_sub(slack));
    drop(filler);
    say(&format!("FULL {filled}"));

    if flush {
        let db = engine.log().db().clone();
        let (done, flushed) = mpsc::channel();
        std::thread::spawn(move || {
            let names =
                rocksdb::DB::list_cf(&rocksdb::Options::default(), db.path()).unwrap_or_default();
            let families: Vec<_> = names.iter().filter_map(|n| db.cf_handle(n)).collect();
            let result = db.flush_cfs_opt(&families, &rocksdb::FlushOptions::default());
            let _ = done.send(one_line(&format!("{result:?}")));
        });
        // Half the trials append while the flush runs, half after it
        // ended (or gave up waiting for it).
        if rng.chance(1, 2) {
            say("FLUSH-RACING");
        } else {
            match flushed.recv_timeout(Duration::from_millis(DISK_FULL_FLUSH_WAIT_MS)) {
                Ok(result) => say(&format!("FLUSHED {result}")),
                Err(_) => say("FLUSH-PENDING"),
            }
        }
    }

    let mut failed = false;
    for _ in 0..DISK_FULL_APPENDS_MAX {
        let envelope = driver.post(&mut rng);
        if execute_and_report(&engine, envelope, "").is_err() {
            failed = true;
            break;
        }
    }
    say(&format!("APPENDS-DONE failed={failed}"));

    std::fs::remove_file(&filler_path).expect("remove the filler");
    say("FREED");
    let recovery_started = Instant::now();
    let verdict = loop {
        let envelope = driver.post(&mut rng);
        match execute_and_report(&engine, envelope, "") {
            Ok(_) => break "recovered".to_string(),
            Err(e) if e.to_lowercase().contains("reopen") => break format!("reopen-required {e}"),
            Err(e) => {
                if recovery_started.elapsed() >= Duration::from_millis(DISK_FULL_RECOVERY_MS_MAX) {
                    break format!("stuck {e}");
                }
                std::thread::sleep(Duration::from_millis(DISK_FULL_RETRY_INTERVAL_MS));
            }
        }
    };
    say(&format!("RECOVERY {verdict}"));
    drop(engine);
    say("CLOSED");
}

/// One disk-full trial against the engine.
fn disk_full_trial(attack: Attack, dir: &Path, rng: &mut Rng) -> Verdict {
    let checker = Checker::Engine.name();
    let verdict = |outcome, detail| Verdict {
        checker,
        outcome,
        detail,
        may_refuse: false,
    };
    let mount_point = dir.join("mnt");
    std::fs::create_dir(&mount_point).expect("create the mount point");
    let mount = match Mount::new(&mount_point, DISK_FULL_TMPFS_BYTES) {
        Ok(m) => m,
        Err(e) => panic!("the disk-full mount worked before, now: {e}"),
    };
    let store = mount_point.join("store");
    let slack = rng.range(0, DISK_FULL_SLACK_BYTES_MAX);
    let flush = attack == Attack::DiskFullFlush;
    let mut child = Running::role(
        "disk-full",
        &[
            (STORE_VAR, store.display().to_string()),
            (SEED_VAR, rng.next_u64().to_string()),
            (SLACK_VAR, slack.to_string()),
            (FLUSH_VAR, if flush { "1" } else { "0" }.to_string()),
        ],
    );
    let mut acked = Vec::new();
    let mut errors = Vec::new();
    let mut recovery = None;
    let mut flush_note = None;
    let mut last = String::from("(nothing)");
    // The step the child is in, for a hang's message.
    let mut step = "opening the engine";
    let hung = loop {
        let Some(line) = child.next_report(deadline_from_now()) else {
            break true;
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["ACK", rest @ ..] => acked.extend(Ack::parse(rest)),
            ["ERR", ..] => errors.push(line.clone()),
            ["READY"] => step = "filling the disk",
            ["FULL", ..] => step = "an append with the disk full",
            ["FLUSH-RACING"] | ["FLUSHED", ..] | ["FLUSH-PENDING"] => {
                flush_note = Some(line.clone())
            }
            ["APPENDS-DONE", ..] => step = "removing the filler",
            ["FREED"] => step = "an append after space returned",
            ["RECOVERY", ..] => {
                step = "closing the engine";
                recovery = Some(line.clone());
            }
            ["CLOSED"] => break false,
            _ => {}
        }
        last = line;
    };
    let what = format!(
        "{slack} bytes left free{}",
        flush_note.map_or(String::new(), |n| format!(", {n}"))
    );
    let finished = if hung {
        child.kill()
    } else {
        child.finish(deadline_from_now())
    };
    if let Some(crash) = finished
        .crash()
        .filter(|c| !(hung && c.starts_with("killed by")))
    {
        return verdict(Outcome::Panic, format!("{what}: {crash}"));
    }
    if hung {
        return verdict(
            Outcome::Hang,
            format!("{what}: {step} did not answer; last line: {last}"),
        );
    }
    let acked_file = dir.join("acked");
    write_acked(&acked_file, &acked);
    let (checked, detail) = check_engine(&store, &acked_file, None);
    drop(mount);
    let recovery = recovery.unwrap_or_default();
    let detail = format!(
        "{what}; {} acknowledged, first error: {}; {recovery}; reopen: {detail}",
        acked.len(),
        errors.first().map_or("none", String::as_str)
    );
    if checked != Outcome::Intact {
        return verdict(checked, detail);
    }
    if recovery.starts_with("RECOVERY stuck") {
        return verdict(Outcome::Stuck, detail);
    }
    match errors.is_empty() {
        true => verdict(Outcome::Intact, detail),
        false => verdict(Outcome::LoudError, detail),
    }
}
