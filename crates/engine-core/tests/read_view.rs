//! A read of the read models (`Engine::read`) must never deadlock the log's
//! writer: the writer waits for every read in progress before it applies a
//! batch.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{open, temp_dir};
use engine_core::{CommandError, Engine};
use events::*;

/// How long a test waits for an answer that must come at once.
const ANSWER_DEADLINE: Duration = Duration::from_secs(20);
/// How long the outer read waits for the writer to queue behind it: the
/// queueing cannot be observed, and 300 ms is far beyond the microseconds a
/// spawned thread takes to reach the lock.
const WRITER_QUEUE_WAIT: Duration = Duration::from_millis(300);

fn engine_with_service() -> (tempfile::TempDir, Arc<Engine>, ServiceSid) {
    let dir = temp_dir();
    let engine = open(dir.path());
    let service = engine
        .execute(CreateService::new("views").keyed("service"))
        .unwrap();
    (dir, Arc::new(engine), service)
}

/// Inside a read, `execute` waited forever for a writer that waited for
/// that very read lock.
#[test]
fn execute_inside_a_read_answers_instead_of_hanging() {
    let (_dir, engine, service) = engine_with_service();
    let (tx, rx) = mpsc::channel();
    let worker = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            engine.read(|q| {
                let before = q.applied_position();
                let result = engine.execute(
                    CreateConversation::new(service)
                        .keyed("conv")
                        .into_command(),
                );
                let async_result = block_on_this_thread(
                    engine.execute_async(
                        CreateConversation::new(service)
                            .keyed("conv-async")
                            .into_command(),
                    ),
                );
                tx.send((before, result, async_result)).unwrap();
            })
        })
    };
    let (before, result, async_result) = rx
        .recv_timeout(ANSWER_DEADLINE)
        .expect("execute inside a read answered instead of hanging");
    worker.join().unwrap();
    assert_eq!(result.unwrap_err(), CommandError::ReadViewHeld);
    assert_eq!(async_result.unwrap_err(), CommandError::ReadViewHeld);
    // Nothing was written, and once the read is over the same command runs.
    assert_eq!(engine.read(|q| q.applied_position()), before);
    let outcome = engine
        .execute(
            CreateConversation::new(service)
                .keyed("conv")
                .into_command(),
        )
        .unwrap();
    assert!(!outcome.deduplicated, "the refused command left no trace");
}

/// A second read on a thread already inside one queued behind the writer,
/// which waited for the first: the fair lock deadlocked the thread against
/// itself.
#[test]
fn a_nested_read_does_not_queue_behind_a_waiting_writer() {
    let (_dir, engine, service) = engine_with_service();
    let (tx, rx) = mpsc::channel();
    let holding = Arc::new(Barrier::new(2));
    let reader = {
        let (engine, holding) = (engine.clone(), holding.clone());
        std::thread::spawn(move || {
            engine.read(|_outer| {
                holding.wait();
                // Give the writer time to queue for the write lock behind
                // the outer read (it cannot be observed directly).
                std::thread::sleep(WRITER_QUEUE_WAIT);
                let inner = engine.read(|inner| inner.applied_position());
                tx.send(inner).unwrap();
            })
        })
    };
    holding.wait();
    let writer = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            engine.execute(
                CreateConversation::new(service)
                    .keyed("conv")
                    .into_command(),
            )
        })
    };
    rx.recv_timeout(ANSWER_DEADLINE)
        .expect("the nested read answered while a writer was queued");
    reader.join().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || done_tx.send(writer.join().unwrap()).unwrap());
    done_rx
        .recv_timeout(ANSWER_DEADLINE)
        .expect("the queued command completed once the reads were over")
        .unwrap();
}

/// A read that panics must release the read lock and the thread's count:
/// a leaked count would refuse every later command on the thread, a leaked
/// lock would stall the writer for good.
#[test]
fn a_panicking_read_releases_the_lock_and_the_count() {
    let (_dir, engine, service) = engine_with_service();
    let (tx, rx) = mpsc::channel();
    let worker = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                engine.read(|_| panic!("a host bug inside a read"))
            }));
            let after = engine.execute(CreateConversation::new(service).keyed("conv"));
            tx.send((unwound.is_err(), after)).unwrap();
        })
    };
    let (unwound, after) = rx
        .recv_timeout(ANSWER_DEADLINE)
        .expect("the command after a panicking read answered");
    worker.join().unwrap();
    assert!(unwound, "the panic propagated out of the read");
    after.expect("the thread executes again once the read unwound");
}

/// Polls a future to completion on this thread, inside the read that is
/// in progress on it.
fn block_on_this_thread<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
        .block_on(future)
}
