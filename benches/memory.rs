//! Resident memory per membership, per idle live session and per stored
//! message, and the process's RSS after storing 1,000,000 messages (issue
//! 10's memory targets).
//!
//! A counting global allocator wraps the system allocator and keeps the
//! live bytes of every Rust allocation: the read models, the fan-out index,
//! sessions, everything the engine holds on the Rust heap. RocksDB's C++
//! allocations (memtables, block cache) bypass it; they show in the RSS
//! figure, which is measured from `/proc/self/status` (`VmRSS`).
//!
//! - per membership: live bytes after adding [`MEMBERSHIPS`] chat
//!   participants (from a pool of [`IDENTITIES`] identities, spread over
//!   [`CONVERSATIONS`] conversations) minus before, divided by the count;
//! - per idle live session: live bytes after opening one live session for
//!   each of the [`IDENTITIES`] identities minus before, divided by the
//!   count;
//! - per stored message: live bytes after posting [`MESSAGES`] ~100-byte
//!   messages (sessions closed, so no queue holds them) minus before,
//!   divided by the count;
//! - RSS: a fresh engine (`Durability::Buffered`, [`RSS_POSTERS`]
//!   concurrent posters, so batches are large) stores [`RSS_MESSAGES`]
//!   messages; RSS is read after setup and at each quarter. The block
//!   cache's capacity (RocksDB's `rocksdb.block-cache-capacity` of the
//!   `log` column family) and the memtables' size are printed beside it.
//!
//! Each figure settles for [`SETTLE`] before it is read, so the writer and
//! fan-out threads are idle. The RSS part runs first, so the other parts'
//! freed memory cannot pad it.
//!
//! Run: `cargo xtask bench memory`. `MEMORY_RSS_MESSAGES` overrides the
//! message count of the RSS part.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use colloquy::prelude::*;
use support::{print_summary, rss_bytes, thousands, Ids, Row};

/// Counts the bytes of live Rust allocations.
struct Counting;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments;
// the counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Conversations the memberships and messages are spread over.
const CONVERSATIONS: usize = 1_000;
/// Memberships added (50 per conversation).
const MEMBERSHIPS: u64 = 50_000;
/// Distinct chat identities (each a member of 10 conversations; each
/// gets one idle session).
const IDENTITIES: u64 = 5_000;
/// Messages posted for the per-message figure.
const MESSAGES: u64 = 50_000;
/// Threads executing the setup and the posts.
const THREADS: u64 = 16;
/// Messages stored for the RSS figure (the 1 M).
const RSS_MESSAGES: u64 = 1_000_000;
/// Concurrent posters for the RSS figure: many, so batches are large.
const RSS_POSTERS: u64 = 128;
/// Pause before each reading, so the writer and fan-out threads are idle.
const SETTLE: Duration = Duration::from_millis(300);

/// The target per membership, in bytes.
const MEMBERSHIP_TARGET_BYTES: f64 = 128.0;
/// The target per idle live session, in bytes.
const SESSION_TARGET_BYTES: f64 = 1024.0;
/// Bytes per stored message that still count as "not growing with stored
/// messages": an index entry of a few integers; a ~100-byte body held in
/// RAM is far above it.
const MESSAGE_TARGET_BYTES: f64 = 32.0;
/// The RSS bound after 1 M messages, in bytes.
const RSS_TARGET_BYTES: u64 = 200 * 1024 * 1024;
/// RSS growth over the second half of the messages that still counts as
/// flat: memtables fill and flush along the way; growth beyond this
/// follows the history.
const RSS_SECOND_HALF_GROWTH_MAX_BYTES: u64 = 32 * 1024 * 1024;

fn live_bytes() -> i64 {
    std::thread::sleep(SETTLE);
    LIVE_BYTES.load(Ordering::Relaxed)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn open(dir: &std::path::Path) -> Engine {
    Engine::open(dir, LogOptions::default().durability(Durability::Buffered)).expect("open engine")
}

/// What RocksDB is configured to hold: the `log` column family's block
/// cache capacity and all memtables' current size, summed over families.
fn rocksdb_budget(engine: &Engine, dir: &std::path::Path) -> (Option<u64>, u64) {
    let db = engine.log().db();
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir).unwrap_or_default();
    let prop = |name: &str, p: &str| {
        db.cf_handle(name)
            .and_then(|cf| db.property_int_value_cf(&cf, p).ok().flatten())
    };
    let cache = prop(
        engine_core::log::keys::CF_LOG,
        "rocksdb.block-cache-capacity",
    );
    let memtables = names
        .iter()
        .filter_map(|n| prop(n, "rocksdb.size-all-mem-tables"))
        .sum();
    (cache, memtables)
}

/// RSS while storing [`RSS_MESSAGES`]: (after setup, at each quarter).
fn rss_part(rows: &mut Vec<Row>) {
    let total = support::env_u64("MEMORY_RSS_MESSAGES", RSS_MESSAGES);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let engine = open(dir.path());
    let ids = Ids::new("rss");
    let (service, conversations) =
        support::service_with_conversations(&engine, &ids, CONVERSATIONS, THREADS as usize);
    std::thread::sleep(SETTLE);
    let start_rss = rss_bytes();
    println!(
        "RSS after opening and {CONVERSATIONS} conversations: {}",
        mib(start_rss)
    );
    let started = Instant::now();
    let mut at = Vec::new();
    for quarter in 1..=4u64 {
        support::post_messages(
            &engine,
            &ids,
            service,
            &conversations,
            total / 4,
            RSS_POSTERS,
        );
        std::thread::sleep(SETTLE);
        let rss = rss_bytes();
        let (cache, memtables) = rocksdb_budget(&engine, dir.path());
        println!(
            "RSS after {:>9} messages: {:>10}  (memtables {}, block cache capacity {}; {:.0} posts/s)",
            thousands((quarter * (total / 4)) as f64),
            mib(rss),
            mib(memtables),
            cache.map_or("unknown".into(), mib),
            (quarter * (total / 4)) as f64 / started.elapsed().as_secs_f64()
        );
        at.push(rss);
    }
    let (cache, _) = rocksdb_budget(&engine, dir.path());
    let m = engine.log_metrics();
    println!(
        "mean batch {:.1} commands; block cache capacity (log column family): {}",
        m.requests as f64 / m.batches.max(1) as f64,
        cache.map_or("unknown".into(), |c| format!("{c} bytes")),
    );
    drop(engine);
    let (half, full) = (at[1], at[3]);
    let growth = full.saturating_sub(half);
    rows.push(Row {
        figure: format!(
            "RSS after {} messages (Buffered, {RSS_POSTERS} posters)",
            thousands(total as f64)
        ),
        value: mib(full),
        baseline: format!("after setup {}", mib(start_rss)),
        ratio: "-".into(),
        target: format!("< {}", mib(RSS_TARGET_BYTES)),
        met: Some(full < RSS_TARGET_BYTES),
    });
    rows.push(Row {
        figure: "RSS growth over the second half of the messages".into(),
        value: mib(growth),
        baseline: format!("at half {}", mib(half)),
        ratio: format!("{:.2}", full as f64 / half.max(1) as f64),
        target: format!("≤ {} (flat)", mib(RSS_SECOND_HALF_GROWTH_MAX_BYTES)),
        met: Some(growth <= RSS_SECOND_HALF_GROWTH_MAX_BYTES),
    });
}

fn per_unit_row(figure: &str, before: i64, after: i64, units: u64, target: f64) -> Row {
    let per = (after - before) as f64 / units as f64;
    println!(
        "{figure}: {per:.1} B each ({} B over {units})",
        after - before
    );
    Row {
        figure: figure.into(),
        value: format!("{per:.1} B"),
        baseline: "-".into(),
        ratio: "-".into(),
        target: format!("≤ {target} B"),
        met: Some(per <= target),
    }
}

/// Counted bytes per membership, idle session and stored message.
fn counted_part(rows: &mut Vec<Row>) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let engine = open(dir.path());
    let ids = Ids::new("counted");
    let (service, conversations) =
        support::service_with_conversations(&engine, &ids, CONVERSATIONS, THREADS as usize);
    let per_conversation = MEMBERSHIPS / CONVERSATIONS as u64;
    let stride = IDENTITIES / per_conversation;
    let identity = |c: u64, j: u64| format!("user-{}", (c + j * stride) % IDENTITIES);

    let before = live_bytes();
    let next = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= MEMBERSHIPS {
                    break;
                }
                let (c, j) = (n / per_conversation, n % per_conversation);
                let member = ParticipantSpec::chat(identity(c, j));
                let join = AddParticipant::new(service, conversations[c as usize], member);
                engine.execute(join.keyed(ids.next())).expect("add member");
            });
        }
    });
    let after = live_bytes();
    rows.push(per_unit_row(
        "resident bytes per membership (counted)",
        before,
        after,
        MEMBERSHIPS,
        MEMBERSHIP_TARGET_BYTES,
    ));

    let before = live_bytes();
    let sessions: Vec<_> = (0..IDENTITIES)
        .map(|i| {
            engine
                .open_session(service, &format!("user-{i}"), SessionStart::Live)
                .expect("open session")
        })
        .collect();
    let after = live_bytes();
    rows.push(per_unit_row(
        "resident bytes per idle live session (counted)",
        before,
        after,
        IDENTITIES,
        SESSION_TARGET_BYTES,
    ));
    drop(sessions);

    let before = live_bytes();
    support::post_messages(&engine, &ids, service, &conversations, MESSAGES, THREADS);
    let after = live_bytes();
    rows.push(per_unit_row(
        "resident bytes per stored message (counted)",
        before,
        after,
        MESSAGES,
        MESSAGE_TARGET_BYTES,
    ));
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let load_before = support::load_average();
    let mut rows = Vec::new();
    rss_part(&mut rows);
    counted_part(&mut rows);
    print_summary(
        &format!("memory: summary (load average at start {load_before})"),
        &rows,
    );
}
