//! PostMessage/s through the real `Engine::execute` path with P concurrent
//! posters, beside raw ceilings for the same bytes measured in the same run
//! (issue 10's Sync, Buffered and writer-CPU targets).
//!
//! - `engine/<durability>/<P>`: P threads, each posting ~100-byte messages
//!   into its own conversation of one service with unique command ids,
//!   each post one `Engine::execute(PostMessage)` that returns once durable.
//!   One element = one command. Measured for `Durability::Sync` and
//!   `Durability::Buffered` at P in [`POSTERS`].
//! - `engine/<durability>/tasks/<P>`: the same posts from P async tasks
//!   (`Engine::execute_async`) on a tokio runtime of [`TASK_WORKERS`]
//!   threads, as a network host would post, at P = [`TASK_POSTERS`]: no
//!   OS thread per poster, so the figure is the engine's, not the
//!   scheduler's cost of 512 parked threads. Its raw baselines are run at
//!   its own mean batch.
//! - `raw_rocksdb/<durability>/<P>`: one thread writes RocksDB `WriteBatch`es
//!   of exactly what the engine writes (same keys per command in the same
//!   column families, same key and value sizes, the log's keys in order as
//!   the engine's positions are, the others at random places as the
//!   engine's land across conversations, and the once-per-batch rows once
//!   per batch), as many commands per batch as the engine's mean batch in
//!   its run (`Engine::log_metrics`: requests / batches), with the same
//!   sync setting. The shape is read once from the engine's own
//!   write-ahead log (`DB::get_updates_since`, one `WriteBatch` per post
//!   when posts go one at a time, each into its own conversation): an
//!   operation whose key is the same in every batch is a per-batch one.
//! - `raw_file/Sync/<P>`: `write` + `fdatasync` of the same WAL bytes per
//!   batch on a plain file: the disk's own ceiling.
//!
//! The summary also gives commands per CPU-second of the process for the
//! engine and the raw RocksDB baseline: on a shared machine the wall-clock
//! ratio favours the many-threaded engine (its threads win a larger share
//! of contended cores than the baseline's one), the CPU ratio does not.
//!
//! CPU per command: the process's CPU time (`/proc/self/stat` utime +
//! stime) and the log writer thread's (`colloquy-log-writer`, found by
//! name in `/proc/self/task/*/comm`) over the timed engine iterations,
//! divided by the commands posted.
//!
//! After criterion's report the bench prints the mean of every timed
//! iteration, the ratios, and a summary table against the targets.
//!
//! Run: `cargo xtask bench engine_write` (the optimised dev profile; see
//! `cargo xtask --help`). `ENGINE_WRITE_POSTERS=1,64` limits the poster
//! counts.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use colloquy::prelude::*;
use criterion::{Criterion, Throughput};
use engine_core::log::storage::db_options;
use rocksdb::{WriteBatch, WriteBatchIteratorCf, WriteOptions, DB};
use support::{body, print_summary, thousands, Ids, Row};

/// Concurrent posters measured (the 1, 64 and 512).
const POSTERS: [u64; 3] = [1, 64, 512];
/// Concurrent async posters measured (the 512 concurrent posters,
/// as tasks rather than threads).
const TASK_POSTERS: u64 = 512;
/// Worker threads of the task posters' runtime: one per core of the
/// machine the figures are recorded on.
const TASK_WORKERS: usize = 2;
/// Posts, one at a time, whose write-ahead-log batches give the
/// per-command write shape the raw baseline replays.
const CALIBRATION_POSTS: u64 = 64;
/// Criterion samples per benchmark (its minimum).
const SAMPLES: usize = 10;
/// Criterion measurement time per benchmark: long enough for hundreds of
/// group-commit batches at 512 posters, short enough for the whole bench
/// to stay within a few minutes.
const MEASUREMENT: Duration = Duration::from_secs(4);
/// Criterion warm-up time per benchmark.
const WARM_UP: Duration = Duration::from_secs(1);
/// How long the log's counters may trail the replies of the requests
/// they count.
const METRICS_WAIT_MAX: Duration = Duration::from_secs(5);
/// The Sync target at 512 posters, in PostMessage/s.
const SYNC_TARGET_POSTS_PER_SECOND: f64 = 100_000.0;
/// The target ratio to the raw RocksDB WriteBatch, Sync and Buffered.
const RAW_ROCKSDB_RATIO_TARGET: f64 = 0.5;
/// The writer thread's CPU target per command, in microseconds.
const WRITER_CPU_TARGET_MICROS: f64 = 10.0;

/// One operation of a command's write batch: column family id, key length,
/// value length (`None` for a delete).
type Op = (u32, usize, Option<usize>);

/// What the engine writes to RocksDB per PostMessage, split as the engine
/// splits it: what every command writes, and what a batch writes once
/// however many commands it holds.
#[derive(Debug, Clone)]
struct Shape {
    /// Per command, each with whether its key grows by one per command
    /// (the log's positions), which the raw baseline then writes in
    /// order too; other keys land at random places, as the engine's do
    /// across hundreds of conversations.
    per_command: Vec<(Op, bool)>,
    /// Once per batch (the read models' applied position and format).
    per_batch: Vec<Op>,
    /// `WriteBatch` bytes per command, and per batch on top of them.
    command_bytes: usize,
    batch_overhead_bytes: usize,
}

impl Shape {
    /// Bytes of a `WriteBatch` of `commands` commands.
    fn batch_bytes(&self, commands: usize) -> usize {
        self.command_bytes * commands + self.batch_overhead_bytes
    }
}

/// Totals of one measured kind (engine or a raw baseline) over all timed
/// iterations.
#[derive(Debug, Default, Clone)]
struct Totals {
    commands: u64,
    time: Duration,
    cpu_seconds: f64,
    writer_cpu_seconds: f64,
    batches: u64,
    requests: u64,
}

impl Totals {
    fn rate(&self) -> f64 {
        self.commands as f64 / self.time.as_secs_f64()
    }
    fn micros_per_command(&self, seconds: f64) -> f64 {
        seconds * 1e6 / self.commands as f64
    }
    /// Commands per CPU-second of the whole process: a figure that a
    /// shared machine's load skews far less than the wall-clock rate,
    /// which favours the many-threaded engine over a one-thread baseline
    /// when other processes compete for the cores.
    fn per_cpu_second(&self) -> f64 {
        self.commands as f64 / self.cpu_seconds
    }
    fn mean_batch(&self) -> f64 {
        self.requests as f64 / self.batches.max(1) as f64
    }
}

/// (kind, durability, posters) → totals.
type Results = BTreeMap<(&'static str, &'static str, u64), Totals>;
static RESULTS: Mutex<Results> = Mutex::new(BTreeMap::new());

fn add(kind: &'static str, durability: &'static str, posters: u64, t: Totals) {
    let mut results = RESULTS.lock().unwrap();
    let e = results.entry((kind, durability, posters)).or_default();
    e.commands += t.commands;
    e.time += t.time;
    e.cpu_seconds += t.cpu_seconds;
    e.writer_cpu_seconds += t.writer_cpu_seconds;
    e.batches += t.batches;
    e.requests += t.requests;
}

/// The label of a run: its durability, and whether its posters are tasks.
fn run_label(d: Durability, tasks: bool) -> &'static str {
    match (d, tasks) {
        (Durability::Sync, false) => "Sync",
        (Durability::Buffered, false) => "Buffered",
        (Durability::Sync, true) => "Sync/tasks",
        (Durability::Buffered, true) => "Buffered/tasks",
    }
}

fn posters() -> Vec<u64> {
    match std::env::var("ENGINE_WRITE_POSTERS") {
        Ok(list) => list
            .split(',')
            .map(|p| p.trim().parse().expect("ENGINE_WRITE_POSTERS: numbers"))
            .collect(),
        Err(_) => POSTERS.to_vec(),
    }
}

fn tmp_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench temp dir")
}

/// One operation of a write batch as read back: column family id, key,
/// value length (`None` for a delete).
type SeenOp = (u32, Vec<u8>, Option<usize>);

/// Collects a write batch's operations, with their keys.
#[derive(Default)]
struct Collect(Vec<SeenOp>);

impl WriteBatchIteratorCf for Collect {
    fn put_cf(&mut self, cf: u32, key: &[u8], value: &[u8]) {
        self.0.push((cf, key.to_vec(), Some(value.len())));
    }
    fn delete_cf(&mut self, cf: u32, key: &[u8]) {
        self.0.push((cf, key.to_vec(), None));
    }
    fn merge_cf(&mut self, cf: u32, key: &[u8], value: &[u8]) {
        self.0.push((cf, key.to_vec(), Some(value.len())));
    }
}

/// `WriteBatch` bytes of one operation: a tag, the column family id, the
/// key and value with their length prefixes (RocksDB's record layout).
fn op_bytes(&(_, key, value): &Op) -> usize {
    1 + 1 + 1 + key + value.map_or(0, |v| 1 + v)
}

/// Reads the per-command write shape from the engine's write-ahead log:
/// posts [`CALIBRATION_POSTS`] messages one at a time, each into a
/// conversation of its own (as the measured posters do), and takes the
/// most common batch shape, value sizes averaged over its batches. An
/// operation whose key is the same in every such batch is written once
/// per batch; the rest once per command.
fn calibrate() -> Shape {
    let dir = tmp_dir();
    let engine = Engine::open(
        dir.path(),
        LogOptions::default().durability(Durability::Buffered),
    )
    .expect("open calibration engine");
    let ids = Ids::new("calibrate");
    let (service, conversations) =
        support::service_with_conversations(&engine, &ids, CALIBRATION_POSTS as usize + 1, 1);
    let post = |n: u64| {
        let p = PostMessage::new(service, conversations[n as usize]).body(body(0, n));
        engine.execute(p.keyed(ids.next())).expect("post");
    };
    post(0);
    let db = engine.log().db().clone();
    let before = db.latest_sequence_number();
    for n in 1..=CALIBRATION_POSTS {
        post(n);
    }
    let mut batches: Vec<Vec<SeenOp>> = Vec::new();
    for item in db
        .get_updates_since(before)
        .expect("read the engine's write-ahead log")
    {
        let (first_sequence, batch) = item.expect("write-ahead-log batch");
        if first_sequence <= before {
            continue;
        }
        let mut ops = Collect::default();
        batch.iterate_cf(&mut ops);
        batches.push(ops.0);
    }
    // Each post is one batch; the iterator may stop short of the last.
    assert!(
        batches.len() as u64 >= CALIBRATION_POSTS / 2,
        "{} write batches for {CALIBRATION_POSTS} posts",
        batches.len()
    );
    let layout = |ops: &[SeenOp]| {
        ops.iter()
            .map(|(cf, k, v)| (*cf, k.len(), v.is_some()))
            .collect::<Vec<_>>()
    };
    let mut counts: BTreeMap<Vec<(u32, usize, bool)>, Vec<usize>> = BTreeMap::new();
    for (i, ops) in batches.iter().enumerate() {
        counts.entry(layout(ops)).or_default().push(i);
    }
    let (_, modal) = counts
        .into_iter()
        .max_by_key(|(_, v)| v.len())
        .expect("at least one batch");
    let first = &batches[modal[0]];
    let mut per_command = Vec::new();
    let mut per_batch = Vec::new();
    for (slot, (cf, key, value)) in first.iter().enumerate() {
        let keys: Vec<&Vec<u8>> = modal.iter().map(|&i| &batches[i][slot].1).collect();
        let mean = value.map(|_| {
            modal
                .iter()
                .map(|&i| batches[i][slot].2.unwrap_or(0))
                .sum::<usize>()
                / modal.len()
        });
        let op = (*cf, key.len(), mean);
        if keys.iter().all(|k| *k == key) {
            per_batch.push(op);
        } else {
            let sequential = keys.windows(2).all(|w| w[0] < w[1]);
            per_command.push((op, sequential));
        }
    }
    let command_bytes = per_command.iter().map(|(op, _)| op_bytes(op)).sum();
    let batch_overhead_bytes = per_batch.iter().map(op_bytes).sum::<usize>() + 12;
    let shape = Shape {
        per_command,
        per_batch,
        command_bytes,
        batch_overhead_bytes,
    };
    let m = engine.log_metrics();
    println!(
        "write shape ({} of {} calibration batches): per command {} keys, ~{} bytes of \
         WriteBatch, column family ids {:?} (in key order: {:?}); per batch {} keys, ~{} bytes, \
         column family ids {:?}; log payload {:.0} bytes/record",
        modal.len(),
        batches.len(),
        shape.per_command.len(),
        shape.command_bytes,
        shape
            .per_command
            .iter()
            .map(|(o, _)| o.0)
            .collect::<Vec<_>>(),
        shape
            .per_command
            .iter()
            .map(|(_, s)| *s)
            .collect::<Vec<_>>(),
        shape.per_batch.len(),
        shape.batch_overhead_bytes,
        shape.per_batch.iter().map(|o| o.0).collect::<Vec<_>>(),
        m.bytes as f64 / m.records.max(1) as f64,
    );
    shape
}

/// A SplitMix64 step: spreads keys like the engine's hashed ones.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The raw RocksDB baseline: a store with one column family per column
/// family id of the shape, opened with the engine's database options and
/// memtable budget.
struct RawRocks {
    _dir: tempfile::TempDir,
    db: DB,
    shape: Shape,
    next_key: u64,
    value: Vec<u8>,
}

impl RawRocks {
    fn open(shape: &Shape) -> RawRocks {
        let dir = tmp_dir();
        let mut options = db_options();
        // The engine's memtable budget too (`LogOptions`' default).
        options.set_db_write_buffer_size(engine_core::log::MEMTABLE_BUDGET_BYTES_DEFAULT);
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let all = || {
            let per_command = shape.per_command.iter().map(|(op, _)| op);
            per_command.chain(&shape.per_batch)
        };
        let mut names: Vec<String> = all().map(|o| format!("cf{}", o.0)).collect();
        names.sort();
        names.dedup();
        let db = DB::open_cf(&options, dir.path(), &names).expect("open raw RocksDB");
        let longest = all().filter_map(|o| o.2).max().unwrap_or(0);
        RawRocks {
            _dir: dir,
            db,
            shape: shape.clone(),
            next_key: 0,
            value: (0..longest).map(|i| (i % 251) as u8).collect(),
        }
    }

    /// Writes `commands` commands' worth of the shape in one batch, plus
    /// the shape's once-per-batch operations.
    fn write(&mut self, commands: usize, sync: bool) {
        let db = &self.db;
        let handle = |cf: u32| db.cf_handle(&format!("cf{cf}")).expect("column family");
        let per_command: Vec<_> = (self.shape.per_command.iter())
            .map(|&(op, sequential)| (op, sequential, handle(op.0)))
            .collect();
        let per_batch: Vec<_> = (self.shape.per_batch.iter())
            .map(|&op| (op, handle(op.0)))
            .collect();
        let mut batch = WriteBatch::default();
        let mut key = [0u8; 64];
        for _ in 0..commands {
            self.next_key += 1;
            for &((_, len, value), sequential, cf) in &per_command {
                let len = len.min(64);
                let last = len.div_ceil(8).saturating_sub(1);
                for (i, chunk) in key[..len].chunks_mut(8).enumerate() {
                    // A growing key (the log's positions) is written in
                    // order: its last 8 bytes count commands.
                    let word = match (sequential, i == last) {
                        (true, true) => self.next_key,
                        (true, false) => 0,
                        (false, _) => mix(self.next_key * 8 + i as u64),
                    };
                    let bytes = word.to_be_bytes();
                    chunk.copy_from_slice(&bytes[8 - chunk.len()..]);
                }
                match value {
                    Some(v) => batch.put_cf(cf, &key[..len], &self.value[..v]),
                    None => batch.delete_cf(cf, &key[..len]),
                }
            }
        }
        for &((_, len, value), cf) in &per_batch {
            let fixed = [0xA5u8; 64];
            let fixed = &fixed[..len.min(64)];
            match value {
                Some(v) => batch.put_cf(cf, fixed, &self.value[..v]),
                None => batch.delete_cf(cf, fixed),
            }
        }
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        db.write_opt(batch, &options).expect("raw write");
    }
}

/// The raw file baseline: `write` + `fdatasync` of the batch's bytes.
struct RawFile {
    _dir: tempfile::TempDir,
    file: std::fs::File,
    bytes: Vec<u8>,
}

impl RawFile {
    fn open(batch_bytes: usize) -> RawFile {
        let dir = tmp_dir();
        let file = std::fs::File::create(dir.path().join("raw.log")).expect("raw file");
        RawFile {
            _dir: dir,
            file,
            bytes: vec![0x5a; batch_bytes],
        }
    }
    fn write(&mut self) {
        self.file.write_all(&self.bytes).expect("raw write");
        self.file.sync_data().expect("fdatasync");
    }
}

/// Runs `f` over ceil(`iters` / `per_batch`) batches and returns the
/// elapsed time scaled to `iters` commands, recording the totals.
fn raw_iterations(
    kind: &'static str,
    d: &'static str,
    p: u64,
    iters: u64,
    per_batch: u64,
    mut f: impl FnMut(),
) -> Duration {
    let batches = iters.div_ceil(per_batch);
    let cpu = support::process_cpu_seconds();
    let start = Instant::now();
    for _ in 0..batches {
        f();
    }
    let t = start.elapsed();
    let commands = batches * per_batch;
    add(
        kind,
        d,
        p,
        Totals {
            commands,
            time: t,
            cpu_seconds: support::process_cpu_seconds() - cpu,
            batches,
            requests: commands,
            ..Totals::default()
        },
    );
    t.mul_f64(iters as f64 / commands as f64)
}

/// The log's counters once they count `requests` answered requests: a
/// writer may reply before it updates them, so they may trail the last
/// reply by a moment (at most [`METRICS_WAIT_MAX`]).
fn metrics_after(engine: &Engine, requests: u64) -> engine_core::LogMetrics {
    let deadline = Instant::now() + METRICS_WAIT_MAX;
    loop {
        let m = engine.log_metrics();
        if m.requests >= requests {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "the log counts {} requests, {requests} were answered",
            m.requests
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Poster `poster`'s next message into its own conversation.
fn next_post(
    service: ServiceSid,
    conversation: ConversationSid,
    poster: u64,
    sent: &[AtomicU64],
) -> PostMessage {
    let n = sent[poster as usize].fetch_add(1, Ordering::Relaxed);
    PostMessage::new(service, conversation).body(body(poster, n))
}

fn bench_one(c: &mut Criterion, shape: &Shape, durability: Durability, p: u64, tasks: bool) {
    let d = run_label(durability, tasks);
    let mut group = c.benchmark_group("engine_write");
    group
        .sample_size(SAMPLES)
        .measurement_time(MEASUREMENT)
        .warm_up_time(WARM_UP)
        .throughput(Throughput::Elements(1));

    let dir = tmp_dir();
    let engine = Arc::new(
        Engine::open(dir.path(), LogOptions::default().durability(durability))
            .expect("open bench engine"),
    );
    let ids = Arc::new(Ids::new(&format!("{d}/{p}")));
    let (service, conversations) =
        support::service_with_conversations(&engine, &ids, p as usize, p.min(64) as usize);
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..p).map(|_| AtomicU64::new(0)).collect());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(TASK_WORKERS)
        .build()
        .expect("tokio runtime");
    group.bench_function(format!("engine/{d}/{p}"), |b| {
        b.iter_custom(|iters| {
            let per_poster = iters.div_ceil(p);
            let before = engine.log_metrics();
            let writer = support::thread_cpu_seconds(support::WRITER_THREAD_COMM);
            let cpu = support::process_cpu_seconds();
            let start = Instant::now();
            if tasks {
                runtime.block_on(async {
                    let mut posters = tokio::task::JoinSet::new();
                    for poster in 0..p {
                        let (engine, ids, sent) = (engine.clone(), ids.clone(), sent.clone());
                        let conversation = conversations[poster as usize];
                        posters.spawn(async move {
                            for _ in 0..per_poster {
                                let post = next_post(service, conversation, poster, &sent);
                                let command = post.keyed(ids.next());
                                engine.execute_async(command).await.expect("post");
                            }
                        });
                    }
                    while let Some(done) = posters.join_next().await {
                        done.expect("poster task");
                    }
                });
            } else {
                std::thread::scope(|s| {
                    for poster in 0..p {
                        let (engine, ids, sent) = (&engine, &ids, &sent);
                        let conversation = conversations[poster as usize];
                        s.spawn(move || {
                            for _ in 0..per_poster {
                                let post = next_post(service, conversation, poster, sent);
                                let command = post.keyed(ids.next());
                                engine.execute(command).expect("post");
                            }
                        });
                    }
                });
            }
            let t = start.elapsed();
            let commands = per_poster * p;
            let after = metrics_after(&engine, before.requests + commands);
            let writer_after = support::thread_cpu_seconds(support::WRITER_THREAD_COMM);
            add(
                "engine",
                d,
                p,
                Totals {
                    commands,
                    time: t,
                    cpu_seconds: support::process_cpu_seconds() - cpu,
                    writer_cpu_seconds: match (writer, writer_after) {
                        (Some(a), Some(b)) => b - a,
                        _ => f64::NAN,
                    },
                    batches: after.batches - before.batches,
                    requests: after.requests - before.requests,
                },
            );
            t.mul_f64(iters as f64 / commands as f64)
        })
    });
    drop(engine);

    let mean_batch = RESULTS
        .lock()
        .unwrap()
        .get(&("engine", d, p))
        .map_or(1.0, Totals::mean_batch);
    let per_batch = (mean_batch.round() as u64).max(1);
    let sync = durability == Durability::Sync;
    let mut raw = RawRocks::open(shape);
    group.bench_function(format!("raw_rocksdb/{d}/{p}"), |b| {
        b.iter_custom(|iters| {
            raw_iterations("raw_rocksdb", d, p, iters, per_batch, || {
                raw.write(per_batch as usize, sync)
            })
        })
    });
    drop(raw);
    if sync {
        let mut file = RawFile::open(shape.batch_bytes(per_batch as usize));
        group.bench_function(format!("raw_file/{d}/{p}"), |b| {
            b.iter_custom(|iters| {
                raw_iterations("raw_file", d, p, iters, per_batch, || file.write())
            })
        });
    }
    group.finish();
}

fn report(load_before: &str) {
    let results = RESULTS.lock().unwrap();
    println!();
    println!(
        "mean over all timed iterations (load average before {load_before}, after {}):",
        support::load_average()
    );
    println!(
        "{:<10} {:>7} {:>12} {:>9} {:>14} {:>7} {:>12} {:>7} {:>12} {:>14}",
        "durability",
        "posters",
        "engine/s",
        "batch",
        "raw rocks/s",
        "ratio",
        "raw file/s",
        "ratio",
        "CPU µs/cmd",
        "writer µs/cmd"
    );
    let mut rows = Vec::new();
    let runs = [
        ("Sync", posters()),
        ("Sync/tasks", vec![TASK_POSTERS]),
        ("Buffered", posters()),
        ("Buffered/tasks", vec![TASK_POSTERS]),
    ];
    for (d, poster_counts) in runs {
        for p in poster_counts {
            let Some(e) = results.get(&("engine", d, p)) else {
                continue;
            };
            let rocks = results.get(&("raw_rocksdb", d, p)).map(Totals::rate);
            let file = results.get(&("raw_file", d, p)).map(Totals::rate);
            let ratio = |x: Option<f64>| x.map_or("-".into(), |x| format!("{:.3}", e.rate() / x));
            let fmt = |x: Option<f64>| x.map_or("-".into(), thousands);
            let cpu = e.micros_per_command(e.cpu_seconds);
            let writer = e.micros_per_command(e.writer_cpu_seconds);
            println!(
                "{d:<10} {p:>7} {:>12} {:>9.1} {:>14} {:>7} {:>12} {:>7} {cpu:>12.1} {writer:>14.1}",
                thousands(e.rate()),
                e.mean_batch(),
                fmt(rocks),
                ratio(rocks),
                fmt(file),
                ratio(file),
            );
            let rocks_ratio = rocks.map(|r| e.rate() / r);
            let target = if d.starts_with("Sync") && p == 512 {
                format!(
                    "≥ {} /s and ≥ {RAW_ROCKSDB_RATIO_TARGET}× raw RocksDB",
                    thousands(SYNC_TARGET_POSTS_PER_SECOND)
                )
            } else if d.starts_with("Buffered") {
                format!("≥ {RAW_ROCKSDB_RATIO_TARGET}× raw RocksDB")
            } else {
                "context".into()
            };
            let met = match (d, p) {
                ("Sync" | "Sync/tasks", 512) => Some(
                    e.rate() >= SYNC_TARGET_POSTS_PER_SECOND
                        && rocks_ratio.is_some_and(|r| r >= RAW_ROCKSDB_RATIO_TARGET),
                ),
                ("Buffered" | "Buffered/tasks", _) => {
                    Some(rocks_ratio.is_some_and(|r| r >= RAW_ROCKSDB_RATIO_TARGET))
                }
                _ => None,
            };
            rows.push(Row {
                figure: format!(
                    "{d} PostMessage/s, {p} posters (mean batch {:.0})",
                    e.mean_batch()
                ),
                value: thousands(e.rate()),
                baseline: format!("raw RocksDB WriteBatch {}", fmt(rocks)),
                ratio: ratio(rocks),
                target,
                met,
            });
            if let Some(r) = results.get(&("raw_rocksdb", d, p)) {
                rows.push(Row {
                    figure: format!("{d}, {p} posters: commands per CPU-second of the process"),
                    value: thousands(e.per_cpu_second()),
                    baseline: format!("raw RocksDB WriteBatch {}", thousands(r.per_cpu_second())),
                    ratio: format!("{:.3}", e.per_cpu_second() / r.per_cpu_second()),
                    target: "context (load-robust)".into(),
                    met: None,
                });
            }
            if let Some(f) = file {
                rows.push(Row {
                    figure: format!("{d} PostMessage/s, {p} posters, vs the disk"),
                    value: thousands(e.rate()),
                    baseline: format!("raw write+fdatasync {}", thousands(f)),
                    ratio: ratio(file),
                    target: "context".into(),
                    met: None,
                });
            }
            rows.push(Row {
                figure: format!("{d}, {p} posters: CPU per command (writer thread / process)"),
                value: format!("{writer:.1} µs / {cpu:.1} µs"),
                baseline: "-".into(),
                ratio: "-".into(),
                target: format!("writer ≤ {WRITER_CPU_TARGET_MICROS} µs"),
                met: Some(writer <= WRITER_CPU_TARGET_MICROS),
            });
        }
    }
    print_summary("engine_write: summary", &rows);
}

fn main() {
    let load_before = support::load_average();
    let mut criterion = Criterion::default().configure_from_args();
    let shape = calibrate();
    for durability in [Durability::Sync, Durability::Buffered] {
        for p in posters() {
            bench_one(&mut criterion, &shape, durability, p, false);
        }
        if posters().contains(&TASK_POSTERS) {
            bench_one(&mut criterion, &shape, durability, TASK_POSTERS, true);
        }
    }
    criterion.final_summary();
    if !RESULTS.lock().unwrap().is_empty() {
        report(&load_before);
    }
}
