//! A read of the read models must never deadlock the log's writer: the
//! writer waits for every read view before it applies a batch.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{open, temp_dir};
use engine_core::{CommandError, Engine};
use events::*;

/// How long a test waits for an answer that must come at once.
const ANSWER_DEADLINE: Duration = Duration::from_secs(20);

fn engine_with_service() -> (tempfile::TempDir, Arc<Engine>, ServiceSid) {
    let dir = temp_dir();
    let engine = open(dir.path());
    let service = engine
        .execute(CreateService::new("views").keyed("service"))
        .unwrap();
    (dir, Arc::new(engine), service)
}

/// On a thread that held `Engine::read()`, `execute` waited forever for a
/// writer that waited for that very read lock.
#[test]
fn execute_while_holding_a_read_view_answers_instead_of_hanging() {
    let (_dir, engine, service) = engine_with_service();
    let (tx, rx) = mpsc::channel();
    let worker = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            let view = engine.read();
            let before = view.applied_position;
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
            drop(view);
        })
    };
    let (before, result, async_result) = rx
        .recv_timeout(ANSWER_DEADLINE)
        .expect("execute under a read view answered instead of hanging");
    worker.join().unwrap();
    assert_eq!(result.unwrap_err(), CommandError::ReadViewHeld);
    assert_eq!(async_result.unwrap_err(), CommandError::ReadViewHeld);
    // Nothing was written, and once the view is gone the same command runs.
    assert_eq!(engine.read().applied_position, before);
    let outcome = engine
        .execute(
            CreateConversation::new(service)
                .keyed("conv")
                .into_command(),
        )
        .unwrap();
    assert!(!outcome.deduplicated, "the refused command left no trace");
}

/// A second read on a thread that already held one queued behind the
/// writer, which waited for the first: the fair lock deadlocked the thread
/// against itself.
#[test]
fn a_nested_read_view_does_not_queue_behind_a_waiting_writer() {
    let (_dir, engine, service) = engine_with_service();
    let (tx, rx) = mpsc::channel();
    let holding = Arc::new(Barrier::new(2));
    let reader = {
        let (engine, holding) = (engine.clone(), holding.clone());
        std::thread::spawn(move || {
            let outer = engine.read();
            holding.wait();
            // Give the writer time to queue for the write lock behind
            // `outer` (it cannot be observed directly).
            std::thread::sleep(Duration::from_millis(300));
            let inner = engine.read();
            tx.send(inner.applied_position).unwrap();
            drop(inner);
            drop(outer);
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
        .expect("the queued command completed once the views were dropped")
        .unwrap();
}

/// Polls a future to completion on this thread, so the read view stays on
/// the thread that polls it.
fn block_on_this_thread<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
        .block_on(future)
}
