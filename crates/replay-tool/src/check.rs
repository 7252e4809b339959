//! Checking one stored record: the fast path and the authoritative one.
//!
//! [`check_record`] gives exactly the verdict of engine-core's reader
//! (`Record::decode`, the self-hash, key/header agreement, the `prev_hash`
//! link, the event decode), with the same [`FaultKind`]s, but skips the
//! allocations of the general decoder on the common path: a record of a
//! version in `FAST_FORMAT_VERSIONS` (1, or 2 with its actor) in canonical
//! bincode is parsed in place and its chain hash is computed over the stored
//! header bytes (which, being canonical, are exactly what the writer
//! hashed). Anything unusual — another version, a non-canonical varint, an
//! actor that is not UTF-8 or is over the identity limit, a hash that does
//! not match — falls back to `Record::decode`, whose answer is final. So the fast path only ever accepts what the
//! authoritative path accepts, and every fault is reported as it would be.

use std::borrow::Cow;

use engine_core::log::HexHash;
use engine_core::{ChainFault, FaultKind};
use events::limits::{IDENTITY_CHARS_MAX, RECORD_BYTES_MAX};
use events::record::{chain_hash, decode, encode_header};
use events::{
    CodecError, CommandId, ConversationSid, Event, Hash, Record, RecordHeader, ServiceSid,
    FORMAT_VERSIONS_KNOWN,
};

/// The format versions the fast path parses in place: every version the
/// writer has ever written, so a verify walk never falls back record by
/// record. Version 2's header is version 1's plus the actor.
const FAST_FORMAT_VERSIONS: [u16; 2] = [1, 2];
/// Length of a SID or command id in the encoding, in bytes.
const ID_BYTES: usize = 16;
/// Length of a chain hash, in bytes.
const HASH_BYTES: usize = 32;
/// bincode's varint tag for a following little-endian u16 (smaller values
/// are the byte itself).
pub(crate) const VARINT_U16_TAG: u8 = 251;
/// bincode's varint tag for a following little-endian u32.
pub(crate) const VARINT_U32_TAG: u8 = 252;
/// bincode's varint tag for a following little-endian u64.
pub(crate) const VARINT_U64_TAG: u8 = 253;

/// A decoded record, borrowing from the stored bytes where it can.
#[derive(Debug, Clone)]
pub struct RecordView<'a> {
    /// The format version.
    pub format_version: u16,
    /// The header.
    pub header: RecordHeader,
    /// The canonical bincode encoding of the header: the bytes the chain
    /// hash covers.
    pub header_bytes: Cow<'a, [u8]>,
    /// The previous record's hash.
    pub prev_hash: Hash,
    /// This record's hash.
    pub hash: Hash,
    /// The bincode encoding of the event.
    pub payload: Cow<'a, [u8]>,
}

impl RecordView<'_> {
    /// Decodes the payload as an event of the header's conversation, as
    /// `Record::event` does.
    pub fn event(&self) -> Result<Event, CodecError> {
        if !FORMAT_VERSIONS_KNOWN.contains(&self.format_version) {
            return Err(CodecError::UnknownVersion(self.format_version));
        }
        let event: Event = decode(&self.payload)?;
        if event.conversation_sid() != self.header.conversation_sid {
            return Err(CodecError::ConversationMismatch {
                header: self.header.conversation_sid,
                event: event.conversation_sid(),
            });
        }
        Ok(event)
    }

    /// The owned record.
    pub fn to_record(&self) -> Record {
        Record {
            format_version: self.format_version,
            header: self.header.clone(),
            prev_hash: self.prev_hash,
            hash: self.hash,
            payload: self.payload.to_vec(),
        }
    }
}

/// A little cursor over the stored bytes that only accepts canonical
/// encodings.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// A bincode varint u64 in its shortest form.
    fn varint(&mut self) -> Option<u64> {
        let tag = self.take(1)?[0];
        match tag {
            0..=250 => Some(u64::from(tag)),
            VARINT_U16_TAG => {
                let v = u64::from(u16::from_le_bytes(self.array()?));
                (v >= u64::from(VARINT_U16_TAG)).then_some(v)
            }
            VARINT_U32_TAG => {
                let v = u64::from(u32::from_le_bytes(self.array()?));
                (v > u64::from(u16::MAX)).then_some(v)
            }
            VARINT_U64_TAG => {
                let v = u64::from_le_bytes(self.array()?);
                (v > u64::from(u32::MAX)).then_some(v)
            }
            _ => None,
        }
    }
}

/// Parses a record of a version in `FAST_FORMAT_VERSIONS` in canonical
/// encoding without copying (only a version-2 actor is copied out).
/// `None` means "not the common case": the caller must use the
/// authoritative decoder. The hash is not checked here.
pub fn parse_fast(bytes: &[u8]) -> Option<RecordView<'_>> {
    if bytes.len() < 2 || bytes.len() > RECORD_BYTES_MAX {
        return None;
    }
    let format_version = u16::from_le_bytes([bytes[0], bytes[1]]);
    if !FAST_FORMAT_VERSIONS.contains(&format_version) {
        return None;
    }
    let mut c = Cursor { bytes, at: 2 };
    let position = c.varint()?;
    let recorded_at = c.varint()?;
    let service_sid = ServiceSid(c.array::<ID_BYTES>()?);
    let conversation_sid = match c.take(1)?[0] {
        0 => None,
        1 => Some(ConversationSid(c.array::<ID_BYTES>()?)),
        _ => return None,
    };
    let command_id = CommandId(c.array::<ID_BYTES>()?);
    let actor = if format_version >= 2 {
        match c.take(1)?[0] {
            0 => None,
            1 => {
                let len = usize::try_from(c.varint()?).ok()?;
                let actor = std::str::from_utf8(c.take(len)?).ok()?;
                // Over the limit is an error only the decoder may name.
                if actor.len() > IDENTITY_CHARS_MAX && actor.chars().count() > IDENTITY_CHARS_MAX {
                    return None;
                }
                Some(actor.to_owned())
            }
            _ => return None,
        }
    } else {
        None
    };
    let header_end = c.at;
    let prev_hash = c.array::<HASH_BYTES>()?;
    let hash = c.array::<HASH_BYTES>()?;
    let len = usize::try_from(c.varint()?).ok()?;
    let payload = c.take(len)?;
    if c.at != bytes.len() {
        return None;
    }
    Some(RecordView {
        format_version,
        header: RecordHeader {
            position,
            recorded_at,
            service_sid,
            conversation_sid,
            command_id,
            actor,
        },
        header_bytes: Cow::Borrowed(&bytes[2..header_end]),
        prev_hash,
        hash,
        payload: Cow::Borrowed(payload),
    })
}

/// The chain hash of a parsed record, over its stored header bytes.
pub fn fast_hash(view: &RecordView<'_>) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&view.prev_hash);
    hasher.update(&view.format_version.to_le_bytes());
    hasher.update(&view.header_bytes);
    hasher.update(&view.payload);
    *hasher.finalize().as_bytes()
}

fn fault(position: u64, kind: FaultKind) -> ChainFault {
    ChainFault { position, kind }
}

/// The authoritative decode of the value stored under `position`, exactly
/// as engine-core's reader does it: decode and self-hash, then key/header
/// agreement.
pub fn decode_slow(position: u64, value: &[u8]) -> Result<RecordView<'static>, ChainFault> {
    let record = Record::decode(value).map_err(|e| {
        let kind = match e {
            CodecError::HashMismatch => FaultKind::HashMismatch,
            other => FaultKind::Decode(other),
        };
        fault(position, kind)
    })?;
    if record.header.position != position {
        return Err(fault(
            position,
            FaultKind::KeyHeaderMismatch {
                header_position: record.header.position,
            },
        ));
    }
    // The record decoded, so its header encodes in its version (it was
    // hashed that way).
    let header_bytes = encode_header(record.format_version, &record.header)
        .map_err(|e| fault(position, FaultKind::Decode(e)))?;
    debug_assert_eq!(
        chain_hash(
            record.format_version,
            &record.header,
            &record.prev_hash,
            &record.payload
        )
        .ok(),
        Some(record.hash)
    );
    Ok(RecordView {
        format_version: record.format_version,
        header: record.header,
        header_bytes: Cow::Owned(header_bytes),
        prev_hash: record.prev_hash,
        hash: record.hash,
        payload: Cow::Owned(record.payload),
    })
}

/// Decodes the value stored under `position` and checks its self-hash and
/// that its header names `position`: the fast path when it applies, the
/// authoritative decoder otherwise.
pub fn decode_checked(position: u64, value: &[u8]) -> Result<RecordView<'_>, ChainFault> {
    if let Some(view) = parse_fast(value) {
        if view.header.position == position && fast_hash(&view) == view.hash {
            return Ok(view);
        }
    }
    decode_slow(position, value)
}

/// Checks that a record links to `expected` (its predecessor's hash).
pub fn check_link(view: &RecordView<'_>, expected: &Hash) -> Result<(), ChainFault> {
    if &view.prev_hash != expected {
        return Err(fault(
            view.header.position,
            FaultKind::BrokenLink {
                expected: HexHash(*expected),
                found: HexHash(view.prev_hash),
            },
        ));
    }
    Ok(())
}

/// Decodes the record's event; a failure is the fault engine-core's
/// `verify` reports ([`FaultKind::Event`]).
pub fn check_event(view: &RecordView<'_>) -> Result<Event, ChainFault> {
    view.event()
        .map_err(|e| fault(view.header.position, FaultKind::Event(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::record::encode;
    use events::MessageSid;

    /// Actors of every shape: the host, ASCII, unicode, and the longest
    /// (the identity limit in 4-byte characters, whose length takes a
    /// 3-byte varint).
    fn actors() -> [Option<String>; 4] {
        [
            None,
            Some("alice".into()),
            Some("Zoë 👩‍💻".into()),
            Some("🐇".repeat(IDENTITY_CHARS_MAX)),
        ]
    }

    /// A record in the current version, with `actor`.
    fn sample_with(
        position: u64,
        conversation: bool,
        body_len: usize,
        actor: Option<String>,
    ) -> Record {
        let conversation_sid = ConversationSid::derive(b"c");
        let event = if conversation {
            Event::MessageAdded {
                conversation_sid,
                message_sid: MessageSid::derive(&position.to_be_bytes()),
                index: position,
                author: "alice".into(),
                participant_sid: None,
                body: Some("x".repeat(body_len)),
                media: Vec::new(),
                attributes: "{}".into(),
            }
        } else {
            Event::ServiceUpdated {
                friendly_name: "y".repeat(body_len),
            }
        };
        let header = RecordHeader {
            position,
            recorded_at: 1_700_000_000_000_000u64.wrapping_add(position),
            service_sid: ServiceSid::derive(b"s"),
            conversation_sid: conversation.then_some(conversation_sid),
            command_id: CommandId::from_key(&position.to_be_bytes()),
            actor,
        };
        Record::seal(header, &event, [7u8; 32]).unwrap()
    }

    fn sample(position: u64, conversation: bool, body_len: usize) -> Record {
        sample_with(position, conversation, body_len, Some("alice".into()))
    }

    /// `record` as the version-1 writer stored it (no actor).
    fn as_v1(record: &Record) -> Record {
        let header = RecordHeader {
            actor: None,
            ..record.header.clone()
        };
        let hash = chain_hash(1, &header, &record.prev_hash, &record.payload).unwrap();
        Record {
            format_version: 1,
            header,
            hash,
            ..record.clone()
        }
    }

    #[test]
    fn the_fast_path_reads_what_the_codec_writes() {
        let positions = [0u64, 1, 250, 251, 65_535, 65_536, 1 << 32, u64::MAX - 1];
        for &p in &positions {
            for conversation in [false, true] {
                for body_len in [0usize, 10, 250, 251, 70_000] {
                    for actor in actors() {
                        let current = sample_with(p, conversation, body_len, actor);
                        for record in [as_v1(&current), current] {
                            let bytes = record.encode().unwrap();
                            let view = parse_fast(&bytes).expect("canonical record");
                            assert_eq!(view.to_record(), record);
                            assert_eq!(fast_hash(&view), record.hash);
                            assert_eq!(
                                view.header_bytes.as_ref(),
                                encode_header(record.format_version, &record.header)
                                    .unwrap()
                                    .as_slice()
                            );
                            let checked = decode_checked(p, &bytes).unwrap();
                            assert_eq!(checked.to_record(), record);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_v2_record_with_an_actor_takes_the_fast_path() {
        for actor in actors() {
            let record = sample_with(3, true, 12, actor.clone());
            assert_eq!(record.format_version, 2);
            let bytes = record.encode().unwrap();
            let view = parse_fast(&bytes).expect("version 2 is parsed in place");
            assert_eq!(view.header.actor, actor);
            assert!(matches!(view.header_bytes, Cow::Borrowed(_)));
            assert!(matches!(view.payload, Cow::Borrowed(_)));
            assert_eq!(fast_hash(&view), record.hash);
        }
    }

    #[test]
    fn an_actor_over_the_limit_falls_back_to_the_decoders_error() {
        let mut record = sample_with(4, false, 3, None);
        record.header.actor = Some("a".repeat(IDENTITY_CHARS_MAX + 1));
        record.hash = chain_hash(2, &record.header, &record.prev_hash, &record.payload).unwrap();
        // `Record::encode` refuses it, so build the bytes by hand.
        let mut bytes = 2u16.to_le_bytes().to_vec();
        bytes.extend_from_slice(&encode(&record.header).unwrap());
        bytes.extend_from_slice(&record.prev_hash);
        bytes.extend_from_slice(&record.hash);
        bytes.extend_from_slice(&encode(&record.payload).unwrap());
        assert!(parse_fast(&bytes).is_none());
        let err = decode_checked(4, &bytes).unwrap_err();
        assert_eq!(
            err.kind,
            FaultKind::Decode(CodecError::ActorTooLong {
                chars: IDENTITY_CHARS_MAX + 1
            })
        );
        assert_eq!(decode_slow(4, &bytes).unwrap_err(), err);
    }

    /// Every single-byte change either fails both paths alike or (if the
    /// fast path accepts it) is also accepted by the authoritative decoder.
    #[test]
    fn the_fast_path_never_accepts_what_the_codec_rejects() {
        for actor in actors() {
            let current = sample_with(300, true, 40, actor);
            for record in [as_v1(&current), current] {
                let bytes = record.encode().unwrap();
                for i in 0..bytes.len() {
                    for flip in [0x01u8, 0x80, 0xff] {
                        let mut damaged = bytes.clone();
                        damaged[i] ^= flip;
                        let fast = decode_checked(300, &damaged).map(|v| v.to_record());
                        let slow = decode_slow(300, &damaged).map(|v| v.to_record());
                        assert_eq!(fast, slow, "byte {i} ^ {flip:#x}");
                    }
                }
                for cut in 0..bytes.len() {
                    let fast = decode_checked(300, &bytes[..cut]).map(|v| v.to_record());
                    let slow = decode_slow(300, &bytes[..cut]).map(|v| v.to_record());
                    assert_eq!(fast, slow, "truncated to {cut}");
                }
            }
        }
    }

    #[test]
    fn faults_name_the_position_and_kind() {
        let record = sample(5, true, 8);
        let bytes = record.encode().unwrap();
        let err = decode_checked(6, &bytes).unwrap_err();
        assert_eq!(err.position, 6);
        assert_eq!(
            err.kind,
            FaultKind::KeyHeaderMismatch { header_position: 5 }
        );
        let view = decode_checked(5, &bytes).unwrap();
        let err = check_link(&view, &[0u8; 32]).unwrap_err();
        assert!(matches!(err.kind, FaultKind::BrokenLink { .. }));
        assert!(check_link(&view, &[7u8; 32]).is_ok());
        assert!(check_event(&view).is_ok());
    }
}
