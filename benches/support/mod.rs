//! Helpers the issue-10 benches share (`engine_write`, `latency`, `memory`,
//! `open`, `pre_event_hooks`, and `verify`'s CPU and load readings): reading CPU time, RSS and
//! the load average from `/proc`, sizes overridable from the environment,
//! setting up a service with conversations through `Engine::execute`,
//! posting from many threads, settling a closed store, and the summary
//! table every bench prints last; [`redis_pubsub`] is the Redis baseline
//! (`latency`, `server_ws`).
//!
//! Each bench uses a subset, hence the `dead_code` allowance.

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use colloquy::prelude::*;

pub mod redis_pubsub;

/// Linux's USER_HZ: the unit of the CPU times in `/proc/*/stat`.
pub const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// The log writer thread's name as `/proc/self/task/*/comm` shows it:
/// "colloquy-log-writer" cut to the kernel's 15 bytes.
pub const WRITER_THREAD_COMM: &str = "colloquy-log-wr";

/// Bytes of each posted body: the "~100-byte bodies".
pub const BODY_BYTES: usize = 100;

/// How long a bench waits for the engine to deliver what it expects before
/// it gives up with a panic naming what was missing.
pub const DELIVERY_WAIT_MAX: Duration = Duration::from_secs(60);

/// `name` from the environment as a whole number, else `default`. Lets a
/// quick run shrink a bench (`ENGINE_WRITE_POSTERS=1,64`).
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a whole number")),
        Err(_) => default,
    }
}

/// The 1-, 5- and 15-minute load averages, as `/proc/loadavg` gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// utime + stime (fields 14 and 15) of a `/proc/.../stat` line, in seconds.
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name is parenthesised and may hold spaces: split after it.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / CLOCK_TICKS_PER_SECOND)
}

/// CPU seconds (user + system) this process has used so far, all threads
/// (0 where `/proc` is unavailable).
pub fn process_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| stat_cpu_seconds(&s))
        .unwrap_or(0.0)
}

/// CPU seconds used so far by the threads of this process whose name
/// (`comm`) is `comm`, summed; `None` if no such thread runs.
pub fn thread_cpu_seconds(comm: &str) -> Option<f64> {
    let mut total = None;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if name.trim_end() != comm {
            continue;
        }
        if let Some(cpu) = std::fs::read_to_string(path.join("stat"))
            .ok()
            .and_then(|s| stat_cpu_seconds(&s))
        {
            *total.get_or_insert(0.0) += cpu;
        }
    }
    total
}

/// This process's resident set size in bytes (`VmRSS` of
/// `/proc/self/status`; 0 where unavailable).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A ~[`BODY_BYTES`]-byte message body, distinct per (poster, n).
pub fn body(poster: u64, n: u64) -> String {
    let mut b =
        format!("poster {poster} message {n}: the quick brown fox jumps over the lazy dog ");
    while b.len() < BODY_BYTES {
        b.push('.');
    }
    b.truncate(BODY_BYTES);
    b
}

/// Unique command ids for one bench process: `prefix` plus a counter.
pub struct Ids {
    prefix: String,
    next: AtomicU64,
}

impl Ids {
    pub fn new(prefix: &str) -> Self {
        Ids {
            prefix: prefix.to_string(),
            next: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> CommandId {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        CommandId::from_key(format!("{}/{n}", self.prefix).as_bytes())
    }
}

/// Creates a service and `conversations` conversations in it, from
/// `threads` threads (so a `Durability::Sync` engine forms batches).
pub fn service_with_conversations(
    engine: &Engine,
    ids: &Ids,
    conversations: usize,
    threads: usize,
) -> (ServiceSid, Vec<ConversationSid>) {
    let service = engine
        .execute(CreateService::new("bench").keyed(ids.next()))
        .expect("create the bench service");
    let next = AtomicU64::new(0);
    let mut made: Vec<(u64, ConversationSid)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let c = next.fetch_add(1, Ordering::Relaxed);
                        if c >= conversations as u64 {
                            break mine;
                        }
                        let sid = engine
                            .execute(CreateConversation::new(service).keyed(ids.next()))
                            .expect("create a bench conversation");
                        mine.push((c, sid));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("creator thread"))
            .collect()
    });
    made.sort_by_key(|(c, _)| *c);
    (service, made.into_iter().map(|(_, sid)| sid).collect())
}

/// Posts `total` messages of [`BODY_BYTES`] bodies, spread round-robin over
/// `conversations`, from `posters` threads, each through
/// `Engine::execute`. Panics on any refusal.
pub fn post_messages(
    engine: &Engine,
    ids: &Ids,
    service: ServiceSid,
    conversations: &[ConversationSid],
    total: u64,
    posters: u64,
) {
    let next = AtomicU64::new(0);
    std::thread::scope(|s| {
        for poster in 0..posters.max(1) {
            let next = &next;
            s.spawn(move || loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let conversation = conversations[(n % conversations.len() as u64) as usize];
                let post = PostMessage::new(service, conversation).body(body(poster, n));
                engine.execute(post.keyed(ids.next())).expect("post");
            });
        }
    });
}

/// Flushes every memtable and compacts every column family of the closed
/// store at `dir`, as a host that has been running a while would have: a
/// later open then reads settled table files, not a write-ahead log.
pub fn settle(dir: &Path) {
    let options = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&options, dir).expect("list column families");
    let db = rocksdb::DB::open_cf(&options, dir, &names).expect("open to settle");
    for name in &names {
        let cf = db.cf_handle(name).expect("listed column family");
        db.flush_cf(cf).expect("flush");
        db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    }
}

/// One row of a bench's closing summary.
pub struct Row {
    /// What is measured, e.g. "Sync PostMessage/s, 512 posters".
    pub figure: String,
    /// The measured value, formatted with its unit.
    pub value: String,
    /// The baseline measured in the same run ("-" if none).
    pub baseline: String,
    /// value / baseline ("-" if none).
    pub ratio: String,
    /// The target, in words.
    pub target: String,
    /// Whether the target is met (`None`: context only, no target).
    pub met: Option<bool>,
}

/// Prints the rows as a Markdown table under `title`, with the load average.
pub fn print_summary(title: &str, rows: &[Row]) {
    println!();
    println!("## {title} (load average now {})", load_average());
    println!();
    println!("| figure | value | baseline (same run) | ratio | target | met |");
    println!("|---|---:|---:|---:|---|---|");
    for r in rows {
        let met = match r.met {
            Some(true) => "**met**",
            Some(false) => "**not met**",
            None => "-",
        };
        println!(
            "| {} | {} | {} | {} | {} | {met} |",
            r.figure, r.value, r.baseline, r.ratio, r.target
        );
    }
}

/// `x` with thousands separators and no decimals, e.g. `41,234`.
pub fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
