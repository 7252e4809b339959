//! The writer stamps records with the clock of `LogOptions::clock`, and
//! never earlier than their predecessor, even when that clock goes back.

use std::sync::Arc;
use std::time::Duration;

use event_log::{AppendRequest, EventLog, LogOptions, RawAppend, RawEvents, TestClock};
use events::{CommandId, Event, ServiceSid};

fn append(log: &EventLog<RawEvents>, service: ServiceSid, key: &str) -> u64 {
    let outcome = log
        .append_blocking(AppendRequest::new(
            CommandId::from_key(key.as_bytes()),
            RawAppend {
                service_sid: service,
                events: vec![Event::ServiceUpdated {
                    friendly_name: key.into(),
                }],
            },
        ))
        .unwrap();
    match outcome {
        event_log::AppendOutcome::Appended { first_position, .. } => first_position,
        other => panic!("expected an append, got {other:?}"),
    }
}

fn recorded_at(log: &EventLog<RawEvents>, position: u64) -> u64 {
    let record = log
        .read_range(position..position + 1)
        .next()
        .expect("the record is there")
        .unwrap();
    record.header.recorded_at
}

#[test]
fn records_carry_the_test_clocks_time_and_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock::new(1_000_000));
    let log =
        EventLog::<RawEvents>::open_default(dir.path(), LogOptions::default().clock(clock.clone()))
            .unwrap();
    let service = ServiceSid::derive(b"clock");

    let first = append(&log, service, "first");
    assert_eq!(recorded_at(&log, first), 1_000_000);

    clock.advance(Duration::from_secs(3_600));
    let later = append(&log, service, "an hour later");
    assert_eq!(recorded_at(&log, later), 1_000_000 + 3_600_000_000);

    clock.set(5);
    let back = append(&log, service, "clock set back");
    assert_eq!(
        recorded_at(&log, back),
        1_000_000 + 3_600_000_000,
        "a record is never stamped earlier than its predecessor"
    );
}
