//! Catching the read models up with the log at open: folded over several
//! row batches by the reader, fold and writer threads, the rows equal a
//! fold of the log done record by record; a damaged record stops the open
//! with a typed error naming its position, without hanging the threads.

mod common;

use std::path::Path;

use engine_core::log::keys::{position_key, CF_LOG};
use engine_core::log::{AppendRequest, EventLog, RawAppend, RawEvents};
use engine_core::{fold_records, state_digest, Engine};
use events::limits::EVENTS_PER_COMMAND_MAX;
use events::*;

/// Records in the store: several catch-up batches' worth, so rows of one
/// key (a conversation's participants, read horizons) are written in
/// different batches.
const RECORDS: u64 = 40_000;

/// Conversations the events are spread over.
const CONVERSATIONS: u64 = 50;

fn event(c: u64, n: u64) -> Event {
    let conversation_sid = ConversationSid::derive(&c.to_be_bytes());
    let participant_sid = ParticipantSid::derive(&c.to_le_bytes());
    match n {
        0 => Event::ConversationCreated {
            conversation_sid,
            friendly_name: None,
            unique_name: Some(format!("c{c}")),
            attributes: "{}".into(),
            state: ConversationState::Active,
            timers: Timers::default(),
            messaging_service_sid: None,
        },
        1 => Event::ParticipantAdded {
            conversation_sid,
            participant_sid,
            kind: ParticipantKind::Chat {
                identity: format!("user-{c}"),
                projected_address: None,
            },
            user_sid: None,
            attributes: "{}".into(),
            role_sid: None,
        },
        n if n % 7 == 0 => Event::ReadHorizonUpdated {
            conversation_sid,
            participant_sid,
            last_read_message_index: Some(n / 2),
            last_read_timestamp: n,
        },
        n if n % 11 == 0 => Event::MessageRemoved {
            conversation_sid,
            message_sid: MessageSid::derive(&[c, n - 1].map(u64::to_be_bytes).concat()),
            index: n - 1,
        },
        n => Event::MessageAdded {
            conversation_sid,
            message_sid: MessageSid::derive(&[c, n].map(u64::to_be_bytes).concat()),
            index: n,
            author: format!("user-{c}"),
            participant_sid: Some(participant_sid),
            body: Some(format!("message {n}")),
            media: Vec::new(),
            attributes: "{}".into(),
        },
    }
}

/// A log of [`RECORDS`] records written by the bare log: no read-model
/// rows at all, so the engine's open folds everything.
fn raw_store(path: &Path) {
    let log = EventLog::<RawEvents>::open_default(path, common::options()).unwrap();
    let service_sid = ServiceSid([7; 16]);
    let append = |id: u64, events: Vec<Event>| {
        log.append_blocking(AppendRequest::new(
            CommandId::from_key(&id.to_be_bytes()),
            RawAppend {
                service_sid,
                events,
            },
        ))
        .unwrap();
    };
    append(
        0,
        vec![Event::ServiceCreated {
            friendly_name: "catch-up".into(),
        }],
    );
    let per_request = EVENTS_PER_COMMAND_MAX as u64;
    let mut next = vec![0u64; CONVERSATIONS as usize];
    let mut written = 1;
    let mut id = 1;
    while written < RECORDS {
        let c = id % CONVERSATIONS;
        let count = per_request.min(RECORDS - written);
        let from = next[c as usize];
        append(id, (from..from + count).map(|n| event(c, n)).collect());
        next[c as usize] += count;
        written += count;
        id += 1;
    }
    assert_eq!(log.head().next_position, RECORDS);
}

#[test]
fn a_catch_up_over_several_batches_writes_the_rows_of_a_record_by_record_fold() {
    let dir = common::temp_dir();
    raw_store(dir.path());
    let mut reported = Vec::new();
    let engine = Engine::open(dir.path(), common::options()).unwrap();
    assert_eq!(engine.read(|rm| rm.applied_position()), Some(RECORDS - 1));
    let folded = fold_records(engine.log().read_range(0..RECORDS), &mut |n| {
        reported.push(n)
    })
    .unwrap();
    assert_eq!(reported.last(), Some(&RECORDS));
    assert_eq!(
        engine.live_digest().unwrap(),
        state_digest(&folded).unwrap()
    );
    assert_eq!(engine.read(|rm| rm.clone()), folded);
    // And the rows load back to the same state.
    drop(engine);
    let engine = common::open(dir.path());
    assert_eq!(engine.read(|rm| rm.clone()), folded);
}

#[test]
fn a_damaged_record_stops_the_catch_up_with_its_position() {
    let dir = common::temp_dir();
    raw_store(dir.path());
    let damaged = RECORDS / 2;
    {
        let options = rocksdb::Options::default();
        let names = rocksdb::DB::list_cf(&options, dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&options, dir.path(), names).unwrap();
        let log = db.cf_handle(CF_LOG).unwrap();
        db.put_cf(log, position_key(damaged), b"not a record")
            .unwrap();
    }
    let Err(err) = Engine::open(dir.path(), common::options()) else {
        panic!("the open succeeded over a damaged record");
    };
    // The catch-up runs in the log's state-machine initialisation, which
    // wraps its error.
    let shown = err.to_string();
    assert!(
        shown.contains(&format!("log fault at position {damaged}")),
        "{shown}"
    );
}
