//! Decoding hostile bytes: arbitrary input and mutated valid records, of
//! every format version (1 without an actor, 2 with or without one), must
//! give a `CodecError` (or, for a mutation that leaves a valid encoding, the
//! original value) and never panic.

mod strategies;

use events::command::{Command, CommandEnvelope, CommandId};
use events::limits::RECORD_BYTES_MAX;
use events::model::*;
use events::record::{self, chain_hash, CodecError, Record, RecordHeader};
use events::sid::*;
use events::{Event, FORMAT_VERSIONS_KNOWN, FORMAT_VERSION_CURRENT, GENESIS_HASH};
use proptest::prelude::*;
use strategies::*;

/// Feeds `bytes` to every decoder. Whatever decodes must be a value the
/// codec round-trips; nothing may panic (proptest reports a panic as a
/// failure with the shrunk input).
fn decode_everything(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(record) = Record::decode(bytes) {
        // Hash-checked, so a random input decoding is a bug in the check.
        prop_assert_eq!(
            chain_hash(
                record.format_version,
                &record.header,
                &record.prev_hash,
                &record.payload
            )
            .unwrap(),
            record.hash
        );
        if let Ok(event) = record.event() {
            prop_assert_eq!(event.conversation_sid(), record.header.conversation_sid);
        }
        let again = Record::decode(&record.encode().unwrap()).unwrap();
        prop_assert_eq!(again, record);
    }
    reencodes::<Event>(bytes)?;
    reencodes::<Command>(bytes)?;
    reencodes::<CommandEnvelope>(bytes)?;
    reencodes::<RecordHeader>(bytes)?;
    Ok(())
}

/// If `bytes` decode as a `T`, its canonical encoding decodes to the same `T`.
fn reencodes<T>(bytes: &[u8]) -> Result<(), TestCaseError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = record::decode::<T>(bytes) {
        let canonical = record::encode(&value).unwrap();
        prop_assert_eq!(record::decode::<T>(&canonical).unwrap(), value);
    }
    Ok(())
}

/// One edit to a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR one byte with a non-zero mask.
    Flip(prop::sample::Index, u8),
    /// Overwrite one byte.
    Set(prop::sample::Index, u8),
    /// Keep only a prefix.
    Truncate(prop::sample::Index),
    /// Append bytes.
    Extend(Vec<u8>),
    /// Insert a byte.
    Insert(prop::sample::Index, u8),
    /// Remove a byte.
    Remove(prop::sample::Index),
    /// Overwrite a run with bytes that look like large varints.
    Varint(prop::sample::Index, Vec<u8>),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        2 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => proptest::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Extend),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Remove),
        1 => (
            any::<prop::sample::Index>(),
            proptest::collection::vec(
                prop_oneof![Just(0xfbu8), Just(0xfc), Just(0xfd), Just(0xfe), Just(0xff), any::<u8>()],
                1..10,
            ),
        )
            .prop_map(|(i, run)| Mutation::Varint(i, run)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    match mutation {
        Mutation::Flip(i, mask) if !bytes.is_empty() => {
            let i = i.index(bytes.len());
            bytes[i] ^= mask;
        }
        Mutation::Set(i, b) if !bytes.is_empty() => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        Mutation::Truncate(i) if !bytes.is_empty() => {
            let len = i.index(bytes.len());
            bytes.truncate(len);
        }
        Mutation::Extend(tail) => bytes.extend_from_slice(tail),
        Mutation::Insert(i, b) => {
            let i = i.index(bytes.len() + 1);
            bytes.insert(i, *b);
        }
        Mutation::Remove(i) if !bytes.is_empty() => {
            let i = i.index(bytes.len());
            bytes.remove(i);
        }
        Mutation::Varint(i, run) if !bytes.is_empty() => {
            let start = i.index(bytes.len());
            for (offset, b) in run.iter().enumerate() {
                if let Some(slot) = bytes.get_mut(start + offset) {
                    *slot = *b;
                }
            }
        }
        _ => {}
    }
}

/// The version-1 record the old writer would have built: no actor, the
/// chain hash over version 1's header encoding.
fn v1_record(header: RecordHeader, event: &Event, prev: [u8; 32]) -> Record {
    let header = RecordHeader {
        actor: None,
        ..header
    };
    let payload = record::encode(event).unwrap();
    let hash = chain_hash(1, &header, &prev, &payload).unwrap();
    Record {
        format_version: 1,
        header,
        prev_hash: prev,
        hash,
        payload,
    }
}

/// A valid record (as sealed and as encoded) from arbitrary contents: in
/// the current version (with or without an actor) or in version 1.
fn arb_valid_record() -> impl Strategy<Value = (Record, Vec<u8>)> {
    (arb_sealable(), arb_hash(), any::<bool>()).prop_map(|((header, event), prev, v1)| {
        let record = if v1 {
            v1_record(header, &event, prev)
        } else {
            Record::seal(header, &event, prev).unwrap()
        };
        let bytes = record.encode().unwrap();
        (record, bytes)
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_everything(&bytes)?;
    }

    #[test]
    fn arbitrary_bodies_of_every_version_never_panic(
        version in proptest::sample::select(FORMAT_VERSIONS_KNOWN),
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        // Past the version check, straight into the bincode body.
        let mut bytes = version.to_le_bytes().to_vec();
        bytes.extend_from_slice(&body);
        prop_assert!(Record::decode(&bytes).is_err());
        decode_everything(&bytes)?;
    }

    #[test]
    fn mutated_records_are_rejected_or_unchanged(
        (record, bytes) in arb_valid_record(),
        mutations in proptest::collection::vec(arb_mutation(), 1..4),
    ) {
        let mut mutated = bytes.clone();
        for mutation in &mutations {
            apply(&mut mutated, mutation);
        }
        match Record::decode(&mutated) {
            // Only a mutation that left an encoding of the very same record
            // (the same bytes, or a non-canonical varint of the same values)
            // may decode; anything else would have to beat the hash.
            Ok(decoded) => prop_assert_eq!(decoded, record),
            Err(CodecError::ConversationMismatch { .. }) => {
                prop_assert!(false, "Record::decode does not check conversations")
            }
            Err(_) => prop_assert_ne!(&mutated, &bytes),
        }
        decode_everything(&mutated)?;
    }

    #[test]
    fn truncated_and_extended_records_are_rejected(
        (_record, bytes) in arb_valid_record(),
        cut in any::<prop::sample::Index>(),
        tail in proptest::collection::vec(any::<u8>(), 1..32),
    ) {
        let len = cut.index(bytes.len());
        let err = Record::decode(&bytes[..len]).unwrap_err();
        prop_assert!(
            matches!(err, CodecError::TooShort { .. } | CodecError::Malformed(_)),
            "truncated to {len}: {err:?}"
        );
        let mut extended = bytes.clone();
        extended.extend_from_slice(&tail);
        prop_assert_eq!(
            Record::decode(&extended).unwrap_err(),
            CodecError::TrailingBytes(tail.len())
        );
    }

    #[test]
    fn mutated_payloads_behind_a_valid_hash_never_panic(
        (record, _bytes) in arb_valid_record(),
        mutations in proptest::collection::vec(arb_mutation(), 1..4),
    ) {
        // Re-hash after mutating the payload, so the record passes the hash
        // check and the event decoder itself sees the damage.
        let mut payload = record.payload.clone();
        for mutation in &mutations {
            apply(&mut payload, mutation);
        }
        let hash = chain_hash(record.format_version, &record.header, &record.prev_hash, &payload)
            .unwrap();
        let tampered = Record { payload: payload.clone(), hash, ..record.clone() };
        let decoded = Record::decode(&tampered.encode().unwrap()).unwrap();
        prop_assert_eq!(&decoded, &tampered);
        match decoded.event() {
            Ok(event) => {
                prop_assert_eq!(event.conversation_sid(), decoded.header.conversation_sid);
                prop_assert_eq!(record::decode::<Event>(&payload).unwrap(), event);
            }
            Err(CodecError::Malformed(_))
            | Err(CodecError::TrailingBytes(_))
            | Err(CodecError::ConversationMismatch { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
        decode_everything(&payload)?;
    }

    #[test]
    fn mutated_commands_never_panic(
        envelope in arb_command_envelope(),
        mutations in proptest::collection::vec(arb_mutation(), 1..4),
    ) {
        let mut bytes = record::encode(&envelope).unwrap();
        for mutation in &mutations {
            apply(&mut bytes, mutation);
        }
        decode_everything(&bytes)?;
    }
}

// ---------------------------------------------------------------------------
// Deterministic checks
// ---------------------------------------------------------------------------

fn sid<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

/// A few records with different shapes: no conversation, media and unicode,
/// a messaging binding, varint-boundary integers; in the current version
/// with actors of several shapes (none, ASCII, unicode, a 251-byte one whose
/// length takes a wide varint), and each again in version 1.
fn sample_records() -> Vec<Vec<u8>> {
    let service: ServiceSid = sid("IS00000000000000000000000000000001");
    let conversation: ConversationSid = sid("CH0123456789abcdef0123456789abcdef");
    let samples: Vec<(u64, u64, Event)> = vec![
        (0, 1_700_000_000_000_000, Event::ServiceDeleted),
        (
            251,
            u64::MAX,
            Event::MessageAdded {
                conversation_sid: conversation,
                message_sid: sid("IMffffffffffffffffffffffffffffffff"),
                index: 65_536,
                author: "Zoë 👩‍💻".into(),
                participant_sid: Some(sid("MB00000000000000000000000000000000")),
                body: Some("héllo, 世界".into()),
                media: vec![Media {
                    sid: sid("ME0000000000000000000000000000abcd"),
                    content_type: "image/png".into(),
                    filename: None,
                    size: u32::MAX as u64 + 1,
                }],
                attributes: "{\"k\":[1,2]}".into(),
            },
        ),
        (
            u32::MAX as u64,
            250,
            Event::ParticipantAdded {
                conversation_sid: conversation,
                participant_sid: sid("MB11111111111111111111111111111111"),
                kind: ParticipantKind::Messaging(MessagingBinding {
                    address: "+15551230000".into(),
                    proxy_address: "+15559870000".into(),
                    projected_address: Some("".into()),
                }),
                user_sid: None,
                attributes: "{}".into(),
                role_sid: Some(sid("RL22222222222222222222222222222222")),
            },
        ),
        (
            7,
            8,
            Event::RoleCreated {
                role_sid: sid("RL33333333333333333333333333333333"),
                friendly_name: "channel user".into(),
                role_type: RoleType::Conversation,
                permissions: vec![Permission::SendMessage, Permission::EditNotificationLevel],
            },
        ),
    ];
    let actors = [
        None,
        Some("alice@example.com".to_string()),
        Some("Zoë 👩‍💻".to_string()),
        Some("a".repeat(251)),
    ];
    let mut prev = GENESIS_HASH;
    let mut out = Vec::new();
    for ((position, recorded_at, event), actor) in samples.into_iter().zip(actors) {
        let header = RecordHeader {
            position,
            recorded_at,
            service_sid: service,
            conversation_sid: event.conversation_sid(),
            command_id: CommandId([0xa5; 16]),
            actor,
        };
        let record = Record::seal(header.clone(), &event, prev).unwrap();
        prev = record.hash;
        out.push(record.encode().unwrap());
        out.push(v1_record(header, &event, prev).encode().unwrap());
    }
    out
}

#[test]
fn every_single_byte_flip_is_rejected() {
    let mut checked = 0usize;
    let mut hash_mismatches = 0usize;
    for bytes in sample_records() {
        assert!(Record::decode(&bytes).is_ok());
        for position in 0..bytes.len() {
            for mask in 1..=255u8 {
                let mut flipped = bytes.clone();
                flipped[position] ^= mask;
                match Record::decode(&flipped) {
                    Ok(record) => panic!(
                        "flipping byte {position} with {mask:#04x} of a {}-byte record \
                         still decoded: {record:?}",
                        bytes.len()
                    ),
                    Err(CodecError::HashMismatch) => hash_mismatches += 1,
                    Err(
                        CodecError::Malformed(_)
                        | CodecError::TrailingBytes(_)
                        | CodecError::UnknownVersion(_),
                    ) => {}
                    Err(other) => panic!(
                        "flipping byte {position} with {mask:#04x}: unexpected error {other:?}"
                    ),
                }
                checked += 1;
            }
        }
    }
    // The hash, prev_hash and payload bytes can only fail the hash check, so
    // a good share of the flips must have reached it.
    assert!(
        hash_mismatches * 2 > checked,
        "{hash_mismatches} of {checked}"
    );
}

#[test]
fn every_truncation_and_one_byte_extension_is_rejected() {
    for bytes in sample_records() {
        for len in 0..bytes.len() {
            assert!(Record::decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for extra in [0u8, 1, 0xff] {
            let mut extended = bytes.clone();
            extended.push(extra);
            assert_eq!(Record::decode(&extended), Err(CodecError::TrailingBytes(1)));
        }
    }
}

#[test]
fn size_and_version_errors_are_typed() {
    assert_eq!(Record::decode(&[]), Err(CodecError::TooShort { len: 0 }));
    assert_eq!(Record::decode(&[1]), Err(CodecError::TooShort { len: 1 }));
    assert_eq!(
        Record::decode(&[0, 0, 1, 2, 3]),
        Err(CodecError::UnknownVersion(0))
    );
    let unknown = FORMAT_VERSIONS_KNOWN.iter().max().unwrap() + 1;
    assert_eq!(
        Record::decode(&unknown.to_le_bytes()),
        Err(CodecError::UnknownVersion(unknown))
    );
    assert_eq!(
        Record::decode(&[0xff, 0xff]),
        Err(CodecError::UnknownVersion(u16::MAX))
    );
    let huge = vec![1u8; RECORD_BYTES_MAX + 1];
    assert_eq!(
        Record::decode(&huge),
        Err(CodecError::TooLong {
            len: RECORD_BYTES_MAX + 1
        })
    );
    assert_eq!(
        record::decode::<Event>(&huge),
        Err(CodecError::TooLong {
            len: RECORD_BYTES_MAX + 1
        })
    );
}

#[test]
fn corrupt_lengths_do_not_allocate_or_panic() {
    // A header, hashes and then a payload length claiming far more than the
    // input holds, in every varint width bincode knows.
    let header = RecordHeader {
        position: 0,
        recorded_at: 0,
        service_sid: ServiceSid([0; 16]),
        conversation_sid: None,
        command_id: CommandId([0; 16]),
        actor: Some("alice".into()),
    };
    let mut prefix = FORMAT_VERSION_CURRENT.to_le_bytes().to_vec();
    prefix.extend_from_slice(&record::encode(&header).unwrap());
    prefix.extend_from_slice(&[0u8; 64]);
    let lengths: [&[u8]; 5] = [
        &[0xfa],
        &[0xfb, 0xff, 0xff],
        &[0xfc, 0xff, 0xff, 0xff, 0xff],
        &[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[
            0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff,
        ],
    ];
    for length in lengths {
        let mut bytes = prefix.clone();
        bytes.extend_from_slice(length);
        bytes.extend_from_slice(&[0u8; 8]);
        assert!(
            matches!(Record::decode(&bytes), Err(CodecError::Malformed(_))),
            "length {length:x?}"
        );
    }
    // The same for the strings and vectors inside an event: a role whose
    // permission list claims u64::MAX entries, a service whose name claims
    // u32::MAX bytes.
    let role_created = serde_variants::<Event>()
        .iter()
        .position(|v| *v == "role_created")
        .unwrap() as u8;
    let mut role = vec![role_created];
    role.extend_from_slice(&[0u8; 16]);
    role.push(0); // empty friendly_name
    role.push(0); // RoleType::Service
    role.extend_from_slice(&[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    role.push(0);
    assert!(matches!(
        record::decode::<Event>(&role),
        Err(CodecError::Malformed(_))
    ));
    let service_created = serde_variants::<Event>()
        .iter()
        .position(|v| *v == "service_created")
        .unwrap() as u8;
    let name = [service_created, 0xfc, 0xff, 0xff, 0xff, 0xff, b'a'];
    assert!(matches!(
        record::decode::<Event>(&name),
        Err(CodecError::Malformed(_))
    ));
}

#[test]
fn invalid_utf8_and_out_of_range_tags_are_malformed() {
    let service_created = serde_variants::<Event>()
        .iter()
        .position(|v| *v == "service_created")
        .unwrap() as u8;
    // friendly_name = [0xc3, 0x28]: not UTF-8.
    assert!(matches!(
        record::decode::<Event>(&[service_created, 2, 0xc3, 0x28]),
        Err(CodecError::Malformed(_))
    ));
    // A variant index one past the last.
    let past_end = serde_variants::<Event>().len() as u8;
    assert!(matches!(
        record::decode::<Event>(&[past_end]),
        Err(CodecError::Malformed(_))
    ));
    let past_end = serde_variants::<Command>().len() as u8;
    assert!(matches!(
        record::decode::<Command>(&[past_end, 0]),
        Err(CodecError::Malformed(_))
    ));
    // An Option tag of 2 in the header's conversation.
    let mut header = record::encode(&RecordHeader {
        position: 0,
        recorded_at: 0,
        service_sid: ServiceSid([0; 16]),
        conversation_sid: None,
        command_id: CommandId([0; 16]),
        actor: None,
    })
    .unwrap();
    header[18] = 2;
    assert!(matches!(
        record::decode::<RecordHeader>(&header),
        Err(CodecError::Malformed(_))
    ));
    // The actor: an Option tag of 2, invalid UTF-8, and a length claiming
    // far more than the input holds.
    let header = RecordHeader {
        position: 0,
        recorded_at: 0,
        service_sid: ServiceSid([0; 16]),
        conversation_sid: None,
        command_id: CommandId([0; 16]),
        actor: Some("ab".into()),
    };
    let good = record::encode(&header).unwrap();
    let actor_tag = good.len() - 4; // tag, length 2, 'a', 'b'
    assert_eq!(good[actor_tag..], [1, 2, b'a', b'b']);
    for damaged in [
        [&good[..actor_tag], &[2u8][..]].concat(),
        [&good[..actor_tag], &[1u8, 2, 0xc3, 0x28][..]].concat(),
        [
            &good[..actor_tag],
            &[1u8, 0xfc, 0xff, 0xff, 0xff, 0xff, b'a'][..],
        ]
        .concat(),
    ] {
        assert!(
            matches!(
                record::decode::<RecordHeader>(&damaged),
                Err(CodecError::Malformed(_))
            ),
            "{damaged:x?}"
        );
    }
}
