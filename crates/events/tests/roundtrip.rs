//! Round trips of every encoded type through the log codec
//! (`events::record::encode` / `decode`) and of events through sealed,
//! hash-chained records (`Record::seal` → `encode` → `Record::decode` →
//! `event()`) in the current format version and in version 1, plus checks
//! that the strategies cover every variant.

mod strategies;

use std::collections::BTreeSet;

use events::command::*;
use events::command::{Command, CommandEnvelope};
use events::limits::IDENTITY_CHARS_MAX;
use events::model::*;
use events::record::{self, chain_hash, encode_header, CodecError, Record, RecordHeader};
use events::{Event, FORMAT_VERSIONS_KNOWN, FORMAT_VERSION_CURRENT, GENESIS_HASH};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use strategies::*;

/// The chain hash as the format documents it for version 2, computed
/// independently of `record::chain_hash`:
/// `blake3(prev_hash ‖ version LE ‖ bincode(header) ‖ payload)`.
fn documented_hash(
    version: u16,
    header: &RecordHeader,
    prev: &[u8; 32],
    payload: &[u8],
) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(prev);
    hasher.update(&version.to_le_bytes());
    hasher.update(&record::encode(header).expect("header encodes"));
    hasher.update(payload);
    *hasher.finalize().as_bytes()
}

/// Asserts that `value` survives the log codec and that the encoding is
/// canonical (re-encoding the decoded value gives the same bytes).
fn assert_codec_round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = record::encode(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: T = record::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, value);
    prop_assert_eq!(record::encode(&back).unwrap(), bytes);
    Ok(())
}

/// Asserts that `value` survives JSON, the form the golden file and the
/// public API use.
fn assert_json_round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_string(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: T = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, value);
    Ok(())
}

proptest! {
    #[test]
    fn event_round_trips_through_the_codec(event in arb_event()) {
        assert_codec_round_trip(&event)?;
    }

    #[test]
    fn command_round_trips_through_the_codec(command in arb_command()) {
        assert_codec_round_trip(&command)?;
    }

    #[test]
    fn command_envelope_round_trips_through_the_codec(envelope in arb_command_envelope()) {
        assert_codec_round_trip(&envelope)?;
    }

    #[test]
    fn record_header_round_trips_through_the_codec(header in arb_record_header()) {
        assert_codec_round_trip(&header)?;
    }

    #[test]
    fn events_and_commands_round_trip_through_json(
        event in arb_event(),
        envelope in arb_command_envelope(),
        header in arb_record_header(),
    ) {
        assert_json_round_trip(&event)?;
        assert_json_round_trip(&envelope)?;
        assert_json_round_trip(&header)?;
        // `type_name` is the JSON tag, as its documentation promises.
        prop_assert_eq!(event.type_name(), json_variant_name(&event));
        prop_assert_eq!(event.type_name(), event_variant_name(&event));
        prop_assert_eq!(
            command_variant_name(&envelope.command),
            json_variant_name(&envelope.command)
        );
    }

    #[test]
    fn sealed_record_round_trips(
        (header, event) in arb_sealable(),
        prev_hash in arb_hash(),
    ) {
        let record = Record::seal(header.clone(), &event, prev_hash)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(record.format_version, FORMAT_VERSION_CURRENT);
        prop_assert_eq!(&record.header, &header);
        prop_assert_eq!(record.prev_hash, prev_hash);
        prop_assert_eq!(&record.payload, &record::encode(&event).unwrap());
        let expected_hash = documented_hash(
            FORMAT_VERSION_CURRENT, &header, &prev_hash, &record.payload);
        prop_assert_eq!(record.hash, expected_hash);
        prop_assert_eq!(
            chain_hash(FORMAT_VERSION_CURRENT, &header, &prev_hash, &record.payload).unwrap(),
            expected_hash
        );

        let bytes = record.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&bytes[..2], &FORMAT_VERSION_CURRENT.to_le_bytes()[..]);
        let decoded = Record::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&decoded, &record);
        prop_assert_eq!(decoded.hash, expected_hash);
        prop_assert_eq!(decoded.event().map_err(|e| TestCaseError::fail(e.to_string()))?, event);
        // Canonical: the decoded record writes the same bytes.
        prop_assert_eq!(decoded.encode().unwrap(), bytes);
    }

    #[test]
    fn a_v1_record_decodes_with_no_actor_and_re_encodes_as_written(
        (header, event) in arb_sealable(),
        prev_hash in arb_hash(),
    ) {
        // A version-1 record as the old writer built it: its header is
        // version 2's without the trailing actor, and the chain hash covers
        // those header bytes.
        let header = RecordHeader { actor: None, ..header };
        let payload = record::encode(&event).unwrap();
        let v2_header = record::encode(&header).unwrap();
        prop_assert_eq!(v2_header.last(), Some(&0u8), "a None actor is one 0 tag");
        let v1_header = &v2_header[..v2_header.len() - 1];
        prop_assert_eq!(encode_header(1, &header).unwrap(), v1_header.to_vec());
        let mut hasher = blake3::Hasher::new();
        hasher.update(&prev_hash);
        hasher.update(&1u16.to_le_bytes());
        hasher.update(v1_header);
        hasher.update(&payload);
        let hash = *hasher.finalize().as_bytes();
        prop_assert_eq!(chain_hash(1, &header, &prev_hash, &payload).unwrap(), hash);
        let mut bytes = 1u16.to_le_bytes().to_vec();
        bytes.extend_from_slice(v1_header);
        bytes.extend_from_slice(&prev_hash);
        bytes.extend_from_slice(&hash);
        bytes.extend_from_slice(&record::encode(&payload).unwrap());

        let decoded = Record::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decoded.format_version, 1);
        prop_assert_eq!(&decoded.header, &header);
        prop_assert_eq!(decoded.header.actor.as_deref(), None);
        prop_assert_eq!(decoded.hash, hash);
        prop_assert_eq!(decoded.event().map_err(|e| TestCaseError::fail(e.to_string()))?, event);
        prop_assert_eq!(decoded.encode().unwrap(), bytes);
    }

    #[test]
    fn a_v1_record_cannot_carry_an_actor(
        (header, event) in arb_sealable(),
        actor in "[a-z]{1,16}",
    ) {
        let header = RecordHeader { actor: Some(actor), ..header };
        let unsupported = CodecError::ActorUnsupported { format_version: 1 };
        prop_assert_eq!(encode_header(1, &header), Err(unsupported.clone()));
        let payload = record::encode(&event).unwrap();
        prop_assert_eq!(chain_hash(1, &header, &GENESIS_HASH, &payload), Err(unsupported.clone()));
        let record = Record {
            format_version: 1,
            header,
            prev_hash: GENESIS_HASH,
            hash: GENESIS_HASH,
            payload,
        };
        prop_assert_eq!(record.encode(), Err(unsupported));
    }

    #[test]
    fn the_actor_is_sealed_into_the_hash(
        (header, event) in arb_sealable(),
        other in arb_actor(),
    ) {
        prop_assume!(other != header.actor);
        let record = Record::seal(header.clone(), &event, GENESIS_HASH).unwrap();
        let reattributed = Record::seal(
            RecordHeader { actor: other, ..header },
            &event,
            GENESIS_HASH,
        )
        .unwrap();
        prop_assert_ne!(reattributed.hash, record.hash);
    }

    #[test]
    fn seal_rejects_a_header_for_another_conversation(
        (mut header, event) in arb_sealable(),
        other in proptest::option::of(arb_conversation_sid()),
    ) {
        prop_assume!(other != event.conversation_sid());
        header.conversation_sid = other;
        prop_assert_eq!(
            Record::seal(header, &event, GENESIS_HASH),
            Err(CodecError::ConversationMismatch {
                header: other,
                event: event.conversation_sid(),
            })
        );
    }

    #[test]
    fn event_rejects_a_payload_from_another_conversation(
        (header, event) in arb_sealable(),
        other in proptest::option::of(arb_conversation_sid()),
    ) {
        prop_assume!(other != event.conversation_sid());
        // A well-formed, correctly hashed record whose header lies about the
        // conversation: `decode` accepts it, `event()` must not.
        let mut lying = header.clone();
        lying.conversation_sid = other;
        let payload = record::encode(&event).unwrap();
        let hash = chain_hash(FORMAT_VERSION_CURRENT, &lying, &GENESIS_HASH, &payload).unwrap();
        let record = Record {
            format_version: FORMAT_VERSION_CURRENT,
            header: lying,
            prev_hash: GENESIS_HASH,
            hash,
            payload,
        };
        let decoded = Record::decode(&record.encode().unwrap()).unwrap();
        prop_assert_eq!(
            decoded.event(),
            Err(CodecError::ConversationMismatch {
                header: other,
                event: event.conversation_sid(),
            })
        );
    }

    #[test]
    fn a_chain_of_sealed_records_links_and_decodes(
        items in proptest::collection::vec(arb_sealable(), 1..12),
    ) {
        let mut prev = GENESIS_HASH;
        let mut encoded = Vec::new();
        for (position, (mut header, event)) in items.iter().cloned().enumerate() {
            header.position = position as u64;
            let record = Record::seal(header, &event, prev).unwrap();
            prev = record.hash;
            encoded.push((record.encode().unwrap(), event));
        }
        let mut prev = GENESIS_HASH;
        for (position, (bytes, event)) in encoded.iter().enumerate() {
            let record = Record::decode(bytes).unwrap();
            prop_assert_eq!(record.header.position, position as u64);
            prop_assert_eq!(record.prev_hash, prev);
            prop_assert_eq!(&record.event().unwrap(), event);
            prev = record.hash;
        }
        // Hashes are distinct along the chain (each one covers its predecessor).
        let hashes: BTreeSet<_> = encoded
            .iter()
            .map(|(bytes, _)| Record::decode(bytes).unwrap().hash)
            .collect();
        prop_assert_eq!(hashes.len(), encoded.len());
    }

    #[test]
    fn changing_any_sealed_field_changes_the_hash(
        (header, event) in arb_sealable(),
        prev_hash in arb_hash(),
        other_prev in arb_hash(),
        other_position in arb_u64(),
    ) {
        let record = Record::seal(header.clone(), &event, prev_hash).unwrap();
        if other_prev != prev_hash {
            let relinked = Record::seal(header.clone(), &event, other_prev).unwrap();
            prop_assert_ne!(relinked.hash, record.hash);
        }
        if other_position != header.position {
            let mut moved = header.clone();
            moved.position = other_position;
            prop_assert_ne!(Record::seal(moved, &event, prev_hash).unwrap().hash, record.hash);
        }
    }
}

/// Draws `samples` values from `strategy` with a fixed seed.
fn sample<T: std::fmt::Debug>(strategy: impl Strategy<Value = T>, samples: usize) -> Vec<T> {
    let mut runner = TestRunner::deterministic();
    (0..samples)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

fn sorted(names: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    let set: BTreeSet<String> = names.into_iter().map(Into::into).collect();
    set.into_iter().collect()
}

/// Fails with the names a strategy never produced (or produced unexpectedly).
fn assert_covers(seen: Vec<String>, expected: &[&str], what: &str) {
    let expected = sorted(expected.iter().copied());
    let missing: Vec<_> = expected.iter().filter(|n| !seen.contains(n)).collect();
    let extra: Vec<_> = seen.iter().filter(|n| !expected.contains(n)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: variants without a strategy arm: {missing:?}; unknown names: {extra:?}"
    );
}

#[test]
fn event_strategy_covers_every_variant() {
    let seen = sorted(sample(arb_event(), 3_000).iter().map(event_variant_name));
    assert_covers(seen, serde_variants::<Event>(), "arb_event");
}

#[test]
fn command_strategy_covers_every_variant() {
    let seen = sorted(
        sample(arb_command(), 3_000)
            .iter()
            .map(command_variant_name),
    );
    assert_covers(seen, serde_variants::<Command>(), "arb_command");
}

#[test]
fn envelope_strategy_covers_every_command_variant() {
    let seen = sorted(
        sample(arb_command_envelope(), 3_000)
            .iter()
            .map(|envelope| command_variant_name(&envelope.command)),
    );
    assert_covers(seen, serde_variants::<Command>(), "arb_command_envelope");
}

#[test]
fn variant_name_helpers_agree_with_serde() {
    // The hand-written names are the serde names, variant for variant.
    for event in sample(arb_event(), 500) {
        assert_eq!(event_variant_name(&event), json_variant_name(&event));
    }
    for command in sample(arb_command(), 500) {
        assert_eq!(command_variant_name(&command), json_variant_name(&command));
    }
}

#[test]
fn model_enum_lists_are_complete() {
    fn names<T: serde::Serialize>(all: &[T]) -> Vec<String> {
        all.iter().map(json_variant_name).collect()
    }
    fn serde_names<T: serde::de::DeserializeOwned>() -> Vec<String> {
        serde_variants::<T>()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
    // Same names in declaration order, so the lists hold each variant once.
    assert_eq!(
        names(&ALL_CONVERSATION_STATES),
        serde_names::<ConversationState>()
    );
    assert_eq!(
        names(&ALL_NOTIFICATION_LEVELS),
        serde_names::<NotificationLevel>()
    );
    assert_eq!(names(&ALL_ROLE_TYPES), serde_names::<RoleType>());
    assert_eq!(names(&ALL_PERMISSIONS), serde_names::<Permission>());
    assert_eq!(names(&ALL_ADDRESS_TYPES), serde_names::<AddressType>());
    assert_eq!(
        names(&ALL_DELIVERY_STATUSES),
        serde_names::<DeliveryStatus>()
    );
    assert_eq!(names(&ALL_HORIZON_MODES), serde_names::<HorizonMode>());
}

#[test]
fn two_variant_strategies_cover_both_variants() {
    let kinds = sorted(
        sample(arb_participant_kind(), 200)
            .iter()
            .map(json_variant_name),
    );
    assert_covers(
        kinds,
        serde_variants::<ParticipantKind>(),
        "arb_participant_kind",
    );
    let refs = sorted(
        sample(arb_conversation_ref(), 200)
            .iter()
            .map(json_variant_name),
    );
    assert_covers(
        refs,
        serde_variants::<events::ConversationRef>(),
        "arb_conversation_ref",
    );
}

#[test]
fn introspection_sees_variants_in_declaration_order() {
    // Guards the probe itself: bincode writes the variant index, so the
    // order serde reports is the on-disk order.
    let variants = serde_variants::<Event>();
    assert_eq!(variants.first(), Some(&"service_created"));
    let payload = record::encode(&Event::ServiceDeleted).unwrap();
    assert_eq!(
        payload,
        vec![variants
            .iter()
            .position(|v| *v == "service_deleted")
            .unwrap() as u8]
    );
    let envelope = CommandEnvelope::new(events::CommandId([0; 16]), CreateService::new(""));
    let envelope_json = serde_json::to_value(envelope.into_command()).unwrap();
    assert!(envelope_json["command"]["create_service"].is_object());
}

#[test]
fn the_current_version_is_the_newest_known_one() {
    assert_eq!(FORMAT_VERSIONS_KNOWN, &[1, 2]);
    assert_eq!(FORMAT_VERSIONS_KNOWN.last(), Some(&FORMAT_VERSION_CURRENT));
}

#[test]
fn an_actor_over_the_identity_limit_is_refused_on_seal_and_decode() {
    let event = Event::ServiceDeleted;
    let header = |actor: String| RecordHeader {
        position: 0,
        recorded_at: 0,
        service_sid: events::ServiceSid([1; 16]),
        conversation_sid: None,
        command_id: events::CommandId([2; 16]),
        actor: Some(actor),
    };
    // At the limit, in the widest characters: seals, encodes, decodes.
    let widest = "🐇".repeat(IDENTITY_CHARS_MAX);
    let record = Record::seal(header(widest.clone()), &event, GENESIS_HASH).unwrap();
    let decoded = Record::decode(&record.encode().unwrap()).unwrap();
    assert_eq!(decoded.header.actor, Some(widest));

    // One character over: refused by seal, by encode, and by decode of a
    // record that was hashed correctly around it.
    let long = "a".repeat(IDENTITY_CHARS_MAX + 1);
    let too_long = CodecError::ActorTooLong {
        chars: IDENTITY_CHARS_MAX + 1,
    };
    assert_eq!(
        Record::seal(header(long.clone()), &event, GENESIS_HASH),
        Err(too_long.clone())
    );
    let payload = record::encode(&event).unwrap();
    let forged = Record {
        format_version: FORMAT_VERSION_CURRENT,
        header: header(long.clone()),
        prev_hash: GENESIS_HASH,
        hash: chain_hash(
            FORMAT_VERSION_CURRENT,
            &header(long.clone()),
            &GENESIS_HASH,
            &payload,
        )
        .unwrap(),
        payload,
    };
    assert_eq!(forged.encode(), Err(too_long.clone()));
    let mut bytes = FORMAT_VERSION_CURRENT.to_le_bytes().to_vec();
    bytes.extend_from_slice(&record::encode(&header(long)).unwrap());
    bytes.extend_from_slice(&forged.prev_hash);
    bytes.extend_from_slice(&forged.hash);
    bytes.extend_from_slice(&record::encode(&forged.payload).unwrap());
    assert_eq!(Record::decode(&bytes), Err(too_long));
}
