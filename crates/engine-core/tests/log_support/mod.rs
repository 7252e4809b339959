//! Helpers shared by the log tests.
#![allow(dead_code)]

pub mod sst;

use std::path::Path;

use engine_core::log::keys::{position_key, CF_LOG};
use engine_core::{Durability, EventLog, LogOptions, RawAppend, RawEvents};
use events::{CommandId, ConversationSid, Event, ServiceSid};

/// A fixed service.
pub fn service(n: u32) -> ServiceSid {
    ServiceSid::derive(&n.to_be_bytes())
}

/// A fixed conversation.
pub fn conversation(n: u32) -> ConversationSid {
    ConversationSid::derive(&n.to_be_bytes())
}

/// A unique command id.
pub fn command_id(thread: u64, n: u64) -> CommandId {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&thread.to_be_bytes());
    key[8..].copy_from_slice(&n.to_be_bytes());
    CommandId::from_key(&key)
}

/// A message event in `conversation`.
pub fn message(conversation: ConversationSid, index: u64) -> Event {
    Event::MessageAdded {
        conversation_sid: conversation,
        message_sid: events::MessageSid::derive(&index.to_be_bytes()),
        index,
        author: "alice".into(),
        participant_sid: None,
        body: Some(format!("hello number {index}")),
        media: Vec::new(),
        attributes: "{}".into(),
    }
}

/// A service-level event (no conversation).
pub fn service_event(name: &str) -> Event {
    Event::ServiceUpdated {
        friendly_name: name.into(),
    }
}

/// A raw append of `events` in `service`.
pub fn raw(service: ServiceSid, events: Vec<Event>) -> RawAppend {
    RawAppend {
        service_sid: service,
        events,
    }
}

/// Opens a bare log.
pub fn open_raw(path: &Path, durability: Durability) -> EventLog<RawEvents> {
    EventLog::open_default(path, LogOptions::default().durability(durability))
        .expect("open the log")
}

/// Opens the store directly with every column family, for raw surgery.
pub fn open_rocks(path: &Path) -> rocksdb::DB {
    let options = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&options, path).expect("list column families");
    rocksdb::DB::open_cf(&options, path, names).expect("open rocksdb")
}

/// Flips one byte of the record stored at `position` (the log must be
/// closed).
pub fn flip_record_byte(path: &Path, position: u64, offset: usize) {
    let db = open_rocks(path);
    let cf = db.cf_handle(CF_LOG).unwrap();
    let mut value = db
        .get_cf(cf, position_key(position))
        .unwrap()
        .expect("the record exists");
    let at = offset % value.len();
    value[at] ^= 0x5a;
    db.put_cf(cf, position_key(position), value).unwrap();
}

/// Deletes the record stored at `position` (the log must be closed).
pub fn delete_record(path: &Path, position: u64) {
    let db = open_rocks(path);
    let cf = db.cf_handle(CF_LOG).unwrap();
    db.delete_cf(cf, position_key(position)).unwrap();
}

/// How long a gated write waits for the test before failing.
pub const GATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A pre-write gate: every batch write waits on the test.
pub struct Gate {
    /// Receives each batch's info as it reaches the gate.
    pub entered: crossbeam_channel::Receiver<engine_core::log::WriteInfo>,
    release: crossbeam_channel::Sender<Result<(), String>>,
}

impl Gate {
    /// Lets one waiting (or future) batch write proceed.
    pub fn release(&self) {
        self.release.send(Ok(())).unwrap();
    }

    /// Makes one waiting (or future) batch write fail with `message`.
    pub fn fail(&self, message: &str) {
        self.release.send(Err(message.to_string())).unwrap();
    }

    /// Waits until a batch reaches the gate.
    pub fn wait_entered(&self) -> engine_core::log::WriteInfo {
        self.entered
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a batch reaches the gate")
    }
}

/// Log options whose writes wait on the returned [`Gate`].
pub fn gated(options: LogOptions) -> (LogOptions, Gate) {
    let (entered_tx, entered) = crossbeam_channel::unbounded();
    let (release, release_rx) = crossbeam_channel::unbounded::<Result<(), String>>();
    let hook: engine_core::log::BeforeWriteHook = std::sync::Arc::new(move |info| {
        entered_tx.send(*info).unwrap();
        // Bounded, so a failing test (which drops the log, joining the
        // writer, before it drops the gate) ends instead of hanging.
        release_rx
            .recv_timeout(GATE_TIMEOUT)
            .unwrap_or_else(|_| Err("gate not released".into()))
    });
    (options.before_write_hook(hook), Gate { entered, release })
}

/// Polls a future once with a no-op waker, asserting it is still pending;
/// for `EventLog::append` this proves the request is queued.
pub fn poll_pending<F: std::future::Future>(future: &mut std::pin::Pin<Box<F>>)
where
    F::Output: std::fmt::Debug,
{
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Pending => {}
        std::task::Poll::Ready(out) => panic!("resolved early: {out:?}"),
    }
}

/// Drives a future to completion on a small runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(future)
}

/// The environment variable that makes a re-executed test binary play the
/// crashing writer: it names the store to write.
pub const CRASH_CHILD_STORE_ENV: &str = "COLLOQUY_CRASH_CHILD_STORE";
/// The environment variable telling the crashing writer how many records
/// to append.
pub const CRASH_CHILD_RECORDS_ENV: &str = "COLLOQUY_CRASH_CHILD_RECORDS";
/// The environment variable telling the crashing writer its durability
/// (`sync` or `buffered`).
pub const CRASH_CHILD_DURABILITY_ENV: &str = "COLLOQUY_CRASH_CHILD_DURABILITY";
/// How long the crashing writer may take before the test gives up on it.
pub const CRASH_CHILD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// A store whose writer crashed after `records` acknowledged, fsynced
/// single-record appends, so every record is still in the WAL (a clean
/// close would have flushed them to table files).
///
/// `test_name` is the calling test's own name: this re-runs the test
/// binary with `--exact test_name`, and in that child process (recognised
/// by [`CRASH_CHILD_STORE_ENV`]) the same call writes the records and
/// aborts the process instead of returning. The child runs under
/// [`CRASH_CHILD_DEADLINE`]. Returns the store's directory.
pub fn crashed_store(test_name: &str, records: u64) -> tempfile::TempDir {
    crashed_store_with(test_name, records, Durability::Sync)
}

/// [`crashed_store`], with the writer's appends made under `durability`.
pub fn crashed_store_with(
    test_name: &str,
    records: u64,
    durability: Durability,
) -> tempfile::TempDir {
    let durability_name = match durability {
        Durability::Sync => "sync",
        Durability::Buffered => "buffered",
    };
    if let Some(path) = std::env::var_os(CRASH_CHILD_STORE_ENV) {
        let records: u64 = std::env::var(CRASH_CHILD_RECORDS_ENV)
            .expect("the record count")
            .parse()
            .expect("a record count");
        let durability = match std::env::var(CRASH_CHILD_DURABILITY_ENV).as_deref() {
            Ok("buffered") => Durability::Buffered,
            _ => Durability::Sync,
        };
        let log = open_raw(Path::new(&path), durability);
        for i in 0..records {
            log.append_blocking(engine_core::AppendRequest::new(
                command_id(77, i),
                raw(service(1), vec![message(conversation(1), i)]),
            ))
            .expect("append");
        }
        // A crash: no flush, no close.
        std::process::abort();
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut child = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CRASH_CHILD_STORE_ENV, dir.path())
        .env(CRASH_CHILD_RECORDS_ENV, records.to_string())
        .env(CRASH_CHILD_DURABILITY_ENV, durability_name)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the crashing writer");
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for the crashing writer") {
            assert!(!status.success(), "the crashing writer must abort");
            break;
        }
        if started.elapsed() > CRASH_CHILD_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the crashing writer did not finish within {CRASH_CHILD_DEADLINE:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    dir
}

/// The store's WAL files, oldest first.
pub fn wal_files(path: &Path) -> Vec<std::path::PathBuf> {
    let mut wals: Vec<_> = std::fs::read_dir(path)
        .expect("list the store")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    wals.sort();
    wals
}

/// The newest WAL file of the store.
pub fn newest_wal(path: &Path) -> std::path::PathBuf {
    wal_files(path).pop().expect("the store has a WAL file")
}

/// The current MANIFEST file of the store.
pub fn current_manifest(path: &Path) -> std::path::PathBuf {
    let name = std::fs::read_to_string(path.join("CURRENT")).expect("read CURRENT");
    path.join(name.trim_end())
}

/// Copies every file of a (flat) store directory into a fresh one.
pub fn copy_store(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for entry in std::fs::read_dir(from).expect("list the store").flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
        }
    }
    dir
}

/// Appends `bytes` to `file`.
pub fn append_to(file: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .expect("open for appending");
    f.write_all(bytes).expect("append");
}

/// Flips bit `bit` (0..8) of the byte at `offset` of `file`.
pub fn flip_bit(file: &Path, offset: u64, bit: u8) {
    let mut bytes = std::fs::read(file).expect("read");
    bytes[offset as usize] ^= 1 << bit;
    std::fs::write(file, bytes).expect("write");
}

/// How long an open may take in a test before it counts as a hang.
pub const OPEN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `f` on its own thread and returns its result, or panics naming
/// `what` if it does not return within [`OPEN_DEADLINE`] (a hang; the
/// thread is left behind).
pub fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(OPEN_DEADLINE)
        .unwrap_or_else(|_| panic!("{what} hung: no answer within {OPEN_DEADLINE:?}"))
}

/// Makes the head marker of the store at `path` hold the head before the
/// last batch, as when a crash cuts the last batch's WAL write short: its
/// caller was never answered, and the marker was not yet updated. Tears the
/// marker's newest slot half-way, so the other slot (the previous batch's
/// head) is the valid one. Returns that head's next position.
pub fn unacknowledge_last_batch(path: &Path) -> u64 {
    engine_core::log::head_marker::tear_newest_slot(path).expect("tear the newest marker slot")
}
