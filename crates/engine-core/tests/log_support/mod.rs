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
