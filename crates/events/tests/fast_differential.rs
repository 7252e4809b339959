//! The fast record path (`events::fast`) against the authoritative decoder
//! (`Record::decode` + `Record::event`), on mutated valid records: what the
//! `fast_vs_decoder` fuzz target checks on arbitrary bytes, run by
//! `cargo test`. Valid records are sealed from arbitrary headers and events
//! in both format versions, then damaged by byte flips, truncation,
//! insertion, and (behind a correct hash, which random damage almost never
//! passes) in the payload alone.

mod strategies;

use events::fast::{check_agreement, check_payload_agreement, decode_record, parse};
use events::record::{chain_hash, Record, RecordHeader};
use events::FORMAT_VERSIONS_KNOWN;
use proptest::prelude::*;
use strategies::*;

/// Cases per property: each runs the decoder on a few hundred bytes.
const CASES: u32 = 512;
/// The most mutations applied to one record.
const MUTATIONS_MAX: usize = 4;

/// One change to stored bytes.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR the byte at (index modulo length) with the value (never 0).
    Flip(usize, u8),
    /// Cut the bytes to (index modulo length + 1).
    Truncate(usize),
    /// Insert the byte at (index modulo length + 1).
    Insert(usize, u8),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match *mutation {
        Mutation::Flip(i, x) => {
            let n = bytes.len();
            bytes[i % n] ^= x;
        }
        Mutation::Truncate(i) => bytes.truncate(i % bytes.len() + 1),
        Mutation::Insert(i, b) => {
            let at = i % (bytes.len() + 1);
            bytes.insert(at, b);
        }
    }
}

/// A sealed record in `format_version` (version 1 has no actor).
fn sealed(format_version: u16, header: RecordHeader, event: &events::Event) -> Record {
    let record = Record::seal(header, event, [7u8; 32]).expect("sealable");
    if format_version == record.format_version {
        return record;
    }
    let header = RecordHeader {
        actor: None,
        ..record.header
    };
    let hash = chain_hash(format_version, &header, &record.prev_hash, &record.payload)
        .expect("a version this build writes");
    Record {
        format_version,
        header,
        hash,
        ..record
    }
}

fn arb_version() -> impl Strategy<Value = u16> {
    proptest::sample::select(FORMAT_VERSIONS_KNOWN.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Undamaged records take the fast path, with the decoder's fields.
    #[test]
    fn sound_records_take_the_fast_path(
        (header, event) in arb_sealable(),
        version in arb_version(),
    ) {
        let record = sealed(version, header, &event);
        let bytes = record.encode().unwrap();
        let view = parse(&bytes).expect("a canonical record parses in place");
        prop_assert_eq!(view.computed_hash(), record.hash);
        prop_assert_eq!(decode_record(&bytes).unwrap().to_record(), record);
        prop_assert_eq!(view.check_event(), Ok(()));
        check_agreement(&bytes).map_err(|d| TestCaseError::fail(d.to_string()))?;
    }

    /// Damaged stored bytes: the paths agree.
    #[test]
    fn damaged_records_get_the_decoders_verdict(
        (header, event) in arb_sealable(),
        version in arb_version(),
        mutations in proptest::collection::vec(arb_mutation(), 1..=MUTATIONS_MAX),
    ) {
        let mut bytes = sealed(version, header, &event).encode().unwrap();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check_agreement(&bytes).map_err(|d| TestCaseError::fail(d.to_string()))?;
    }

    /// Damaged payloads behind a correct hash: the grammar never accepts
    /// what the event decoder rejects, and the record paths agree.
    #[test]
    fn damaged_payloads_get_the_decoders_verdict(
        (header, event) in arb_sealable(),
        version in arb_version(),
        mutations in proptest::collection::vec(arb_mutation(), 1..=MUTATIONS_MAX),
    ) {
        let record = sealed(version, header, &event);
        let mut payload = record.payload.clone();
        for m in &mutations {
            apply(&mut payload, m);
        }
        check_payload_agreement(version, record.header.conversation_sid, &payload)
            .map_err(|d| TestCaseError::fail(d.to_string()))?;
        let hash = chain_hash(version, &record.header, &record.prev_hash, &payload).unwrap();
        let damaged = Record { payload, hash, ..record };
        if let Ok(bytes) = damaged.encode() {
            check_agreement(&bytes).map_err(|d| TestCaseError::fail(d.to_string()))?;
        }
    }
}

/// Every single-byte substitution in the payload of one event of every
/// variant (`events::fast::sample_events`): random damage rarely lands on
/// an enum tag with exactly the first value past its variants, this does.
#[test]
fn every_single_byte_substitution_of_every_variant_gets_the_decoders_verdict() {
    for event in events::fast::sample_events() {
        let payload = events::record::encode(&event).unwrap();
        for at in 0..payload.len() {
            for value in 0..=u8::MAX {
                let mut damaged = payload.clone();
                damaged[at] = value;
                for &version in FORMAT_VERSIONS_KNOWN {
                    if let Err(d) =
                        check_payload_agreement(version, event.conversation_sid(), &damaged)
                    {
                        panic!("byte {at} = {value:#x} of {event:?}: {d}");
                    }
                }
            }
        }
    }
}
