//! Acknowledgement ordering: a caller hears back only after its batch was
//! written (with `sync` under `Durability::Sync`).

mod log_support;

use std::time::Duration;

use engine_core::{AppendOutcome, AppendRequest, Durability, EventLog, LogOptions, RawEvents};
use log_support::*;

#[test]
fn a_synced_append_is_not_acknowledged_before_its_batch_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (options, gate) = gated(LogOptions::default().durability(Durability::Sync));
    let log =
        std::sync::Arc::new(EventLog::<RawEvents>::open_default(dir.path(), options).unwrap());

    let (done_tx, done) = crossbeam_channel::bounded(1);
    let appender = {
        let log = log.clone();
        std::thread::spawn(move || {
            let result = log.append_blocking(AppendRequest::new(
                command_id(0, 0),
                raw(service(1), vec![message(conversation(1), 0)]),
            ));
            done_tx.send(result).unwrap();
        })
    };

    // The writer reached the point right before the write...
    let info = gate.wait_entered();
    assert!(info.sync, "Durability::Sync writes with sync = true");
    assert_eq!(
        (info.requests, info.records, info.first_position),
        (1, 1, 0)
    );
    // ...and while it is held there, the caller has no answer, nothing is
    // readable and the head has not moved.
    assert!(
        done.recv_timeout(Duration::from_millis(300)).is_err(),
        "acknowledged before the batch was written"
    );
    assert_eq!(log.read_range(0..u64::MAX).count(), 0);
    assert_eq!(log.head().next_position, 0);

    gate.release();
    let outcome = done
        .recv_timeout(Duration::from_secs(30))
        .expect("acknowledged after the write")
        .unwrap();
    assert_eq!(
        outcome,
        AppendOutcome::Appended {
            first_position: 0,
            count: 1,
            stream_version: 1
        }
    );
    // Once acknowledged, the record is there.
    assert_eq!(log.read_range(0..u64::MAX).count(), 1);
    assert_eq!(log.head().next_position, 1);
    appender.join().unwrap();
}

#[test]
fn an_async_append_resolves_only_after_the_write() {
    let dir = tempfile::tempdir().unwrap();
    let (options, gate) = gated(LogOptions::default());
    let log = EventLog::<RawEvents>::open_default(dir.path(), options).unwrap();
    let mut append = Box::pin(log.append(AppendRequest::new(
        command_id(1, 0),
        raw(service(1), vec![service_event("x")]),
    )));
    poll_pending(&mut append);
    assert!(gate.wait_entered().sync);
    // Held at the gate: still pending, however often it is polled.
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(20));
        poll_pending(&mut append);
    }
    gate.release();
    let outcome = block_on(append).unwrap();
    assert!(matches!(
        outcome,
        AppendOutcome::Appended {
            first_position: 0,
            count: 1,
            ..
        }
    ));
}

#[test]
fn buffered_writes_do_not_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (options, gate) = gated(LogOptions::default().durability(Durability::Buffered));
    let log = EventLog::<RawEvents>::open_default(dir.path(), options).unwrap();
    gate.release();
    log.append_blocking(AppendRequest::new(
        command_id(2, 0),
        raw(service(1), vec![service_event("x")]),
    ))
    .unwrap();
    assert!(!gate.wait_entered().sync);
    assert_eq!(log.durability(), Durability::Buffered);
}
