//! Fuzzes the record codec with arbitrary bytes.
//!
//! 1. The input as a stored record: `Record::decode` must return an error or
//!    a record; a decoded record must re-encode and decode to itself, and an
//!    event it holds must round-trip through the codec and re-seal to the
//!    same record.
//! 2. The input as a record's payload, behind a correct hash, in every
//!    format version (version 1 without an actor, version 2 with or
//!    without): random bytes almost never get past the blake3 check in (1),
//!    so this is what drives the event decoder itself. `event()` must
//!    return an error or an event that round-trips.
//! 3. The input through the plain decoders for every encoded type.
//!
//! Nothing may panic; libFuzzer reports a panic as a crash.

#![no_main]

use events::command::{Command, CommandEnvelope, CommandId};
use events::record::{self, chain_hash, Record, RecordHeader};
use events::sid::{ConversationSid, ServiceSid};
use events::{Event, FORMAT_VERSIONS_KNOWN, FORMAT_VERSION_CURRENT, GENESIS_HASH};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    as_stored_record(data);
    as_payload(data);
    let _ = record::decode::<Event>(data);
    let _ = record::decode::<Command>(data);
    let _ = record::decode::<CommandEnvelope>(data);
    let _ = record::decode::<RecordHeader>(data);
});

fn as_stored_record(data: &[u8]) {
    let Ok(record) = Record::decode(data) else {
        return;
    };
    let bytes = record.encode().expect("a decoded record re-encodes");
    let again = Record::decode(&bytes).expect("a re-encoded record decodes");
    assert_eq!(again, record, "record round trip");
    if let Ok(event) = record.event() {
        check_event(&record, &event);
    }
}

fn as_payload(data: &[u8]) {
    // Both header shapes (the event decoder checks the conversation), in
    // every format version, with an actor where the version has one.
    let first = data.first().copied().unwrap_or(0);
    let format_version = FORMAT_VERSIONS_KNOWN[usize::from(first >> 1) % FORMAT_VERSIONS_KNOWN.len()];
    let header = RecordHeader {
        position: u64::from(first),
        recorded_at: 1_700_000_000_000_000,
        service_sid: ServiceSid([0x11; 16]),
        conversation_sid: (first & 1 == 1).then_some(ConversationSid([0x22; 16])),
        command_id: CommandId([0x33; 16]),
        actor: (format_version >= 2 && first & 4 == 4).then(|| "alice".to_string()),
    };
    let payload = data.to_vec();
    let Ok(hash) = chain_hash(format_version, &header, &GENESIS_HASH, &payload) else {
        return;
    };
    let record = Record {
        format_version,
        header,
        prev_hash: GENESIS_HASH,
        hash,
        payload,
    };
    // Too long for the record limit is the only allowed encode error.
    let Ok(bytes) = record.encode() else {
        return;
    };
    let decoded = Record::decode(&bytes).expect("a correctly hashed record decodes");
    assert_eq!(decoded, record, "record round trip");
    if let Ok(event) = decoded.event() {
        check_event(&decoded, &event);
    }
}

/// A decoded event round-trips through the codec and, if its payload was
/// canonical and its record is in the current version (the one `seal`
/// writes), re-seals to the very same record.
fn check_event(record: &Record, event: &Event) {
    assert_eq!(event.conversation_sid(), record.header.conversation_sid);
    let payload = record::encode(event).expect("a decoded event re-encodes");
    let again: Event = record::decode(&payload).expect("a re-encoded event decodes");
    assert_eq!(&again, event, "event round trip");
    let resealed = Record::seal(record.header.clone(), event, record.prev_hash)
        .expect("a decoded event seals");
    assert_eq!(resealed.event().expect("a sealed event decodes"), *event);
    if payload == record.payload && record.format_version == FORMAT_VERSION_CURRENT {
        assert_eq!(&resealed, record, "canonical payload re-seals identically");
    }
}
