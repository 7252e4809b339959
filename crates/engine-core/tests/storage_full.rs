//! A full disk during a memtable flush: appends fail within a bounded time
//! with a typed, retryable error instead of blocking forever, and the log
//! takes appends again once there is space, without a reopen.
//!
//! Runs on a size-limited tmpfs, which needs root (`mount`); otherwise the
//! test prints why it was skipped.

mod log_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine_core::log::WRITE_STALL_WAIT_MAX_MS;
use engine_core::{AppendError, AppendRequest, Durability, EventLog, LogOptions, RawEvents};
use log_support::*;

/// The tmpfs size, in bytes: room for a few flushes of [`MEMTABLE_BYTES`].
const TMPFS_BYTES: u64 = 16 * 1024 * 1024;
/// The memtable size, in bytes: small, so flushes happen within a few
/// hundred appends.
const MEMTABLE_BYTES: usize = 64 * 1024;
/// Amounts of space left free after filling the disk, in bytes, tried in
/// turn: about a memtable's worth, so that the WAL (preallocated a tenth
/// more than a memtable) still has room when the flush that follows runs
/// out.
const FREE_LEFT_BYTES: [u64; 6] = [
    128 * 1024,
    120 * 1024,
    136 * 1024,
    112 * 1024,
    144 * 1024,
    104 * 1024,
];
/// Appends tried on the full disk before giving up on seeing it refuse.
const FULL_APPENDS_MAX: u64 = 20_000;
/// How long one append may take, in milliseconds, before it counts as
/// blocked: the stall bound plus room for a slow machine.
const APPEND_ANSWER_MAX_MS: u64 = WRITE_STALL_WAIT_MAX_MS + 10_000;
/// How long the log may take to accept appends again once space is back:
/// RocksDB retries a failed flush every few seconds.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes`; the reason if it cannot (not root, no
    /// `mount`).
    fn mount(bytes: u64) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes}"))
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed (needs root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes a file of zeros until the file system is full, then frees
/// `leave` bytes of it. Returns the file.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    let mut written = 0u64;
    while f.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    let _ = f.flush();
    f.set_len(written.saturating_sub(leave)).unwrap();
    f.sync_all().unwrap();
    filler
}

/// One append, answered within [`APPEND_ANSWER_MAX_MS`] or the test fails.
fn append(
    log: &Arc<EventLog<RawEvents>>,
    i: u64,
) -> Result<engine_core::AppendOutcome, AppendError<engine_core::log::Never>> {
    let log = log.clone();
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(log.append_blocking(AppendRequest::new(
            command_id(31, i),
            raw(service(1), vec![message(conversation(1), i)]),
        )));
    });
    rx.recv_timeout(Duration::from_millis(APPEND_ANSWER_MAX_MS))
        .unwrap_or_else(|_| panic!("append {i} blocked past {APPEND_ANSWER_MAX_MS} ms"))
}

/// What one attempt of [`fill_until_refused`] left.
struct Refused {
    // Fields drop in order: the log closes before the tmpfs is unmounted.
    log: Arc<EventLog<RawEvents>>,
    store: PathBuf,
    /// Appends acknowledged before the refusal.
    acknowledged: u64,
    error: AppendError<engine_core::log::Never>,
    fs: Tmpfs,
}

/// One attempt: a fresh tmpfs and log, the disk filled but for
/// `free_left` bytes, then appends until one is refused. Every append must
/// be answered in bounded time. The reason if no tmpfs can be mounted.
fn fill_until_refused(free_left: u64) -> Result<Refused, String> {
    let fs = Tmpfs::mount(TMPFS_BYTES)?;
    let store = fs.path().join("store");
    let log = Arc::new(
        EventLog::<RawEvents>::open_default(
            &store,
            LogOptions::default()
                .durability(Durability::Sync)
                .memtable_bytes(MEMTABLE_BYTES),
        )
        .expect("open on the tmpfs"),
    );
    fill(fs.path(), free_left);
    for i in 0..FULL_APPENDS_MAX {
        let started = Instant::now();
        if let Err(e) = append(&log, i) {
            eprintln!(
                "{free_left} bytes free: refused after {i} appends, in {:?}: {e}",
                started.elapsed()
            );
            return Ok(Refused {
                fs,
                store,
                log,
                acknowledged: i,
                error: e,
            });
        }
    }
    panic!("{FULL_APPENDS_MAX} appends fit on a full {TMPFS_BYTES}-byte disk");
}

#[test]
fn a_full_disk_during_a_flush_fails_appends_in_bounded_time_and_then_recovers() {
    // Whether the disk runs out during a flush (a table file) or during a
    // WAL append depends on how the space left falls between them; try
    // amounts around a memtable's worth until a flush is what fails.
    let mut flush_failure = None;
    for free_left in FREE_LEFT_BYTES {
        match fill_until_refused(free_left) {
            Err(reason) => {
                eprintln!("skipped: {reason}");
                return;
            }
            Ok(Refused {
                error: AppendError::WriteFailed { message },
                ..
            }) if message.contains("No space left on device") && message.contains(".log") => {
                // A WAL append ran out of space: today's typed error, kept
                // (part of the batch may be on disk, so the log is
                // poisoned). Try another amount.
                continue;
            }
            Ok(refused) => {
                assert!(
                    matches!(
                        refused.error,
                        AppendError::StorageStalled { .. } | AppendError::StorageFull { .. }
                    ),
                    "a full disk during a flush is a retryable storage error, not {:?}",
                    refused.error
                );
                flush_failure = Some(refused);
                break;
            }
        }
    }
    let Refused {
        fs,
        store,
        log,
        acknowledged,
        ..
    } = flush_failure.expect("one of the amounts of free space makes a flush fail");
    assert!(
        !log.is_poisoned(),
        "nothing was written, so the log is not poisoned"
    );

    // Space comes back: appends succeed again without a reopen.
    std::fs::remove_file(fs.path().join("filler")).unwrap();
    let started = Instant::now();
    let mut next = FULL_APPENDS_MAX;
    loop {
        match append(&log, next) {
            Ok(_) => break,
            Err(AppendError::StorageStalled { .. } | AppendError::StorageFull { .. })
                if started.elapsed() < RECOVERY_DEADLINE =>
            {
                next += 1
            }
            Err(e) => panic!(
                "after space returned, the store at {}: {e}",
                store.display()
            ),
        }
    }
    eprintln!(
        "accepting appends again {:?} after space returned",
        started.elapsed()
    );
    // Every acknowledged record is there, and none of the refused ones.
    assert_eq!(log.verify().unwrap().records, acknowledged + 1);
}
