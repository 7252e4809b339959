//! Checking one stored record: the fast path and the authoritative one.
//!
//! [`check_record`] gives exactly the verdict of engine-core's reader
//! (`Record::decode`, the self-hash, key/header agreement, the `prev_hash`
//! link, the event decode), with the same [`FaultKind`]s, but skips the
//! allocations of the general decoder on the common path: a version-1 record
//! in canonical bincode is parsed in place and its chain hash is computed
//! over the stored header bytes (which, being canonical, are exactly what the
//! writer hashed). Anything unusual — another version, a non-canonical
//! varint, a hash that does not match — falls back to `Record::decode`,
//! whose answer is final. So the fast path only ever accepts what the
//! authoritative path accepts, and every fault is reported as it would be.

use std::borrow::Cow;

use engine_core::log::HexHash;
use engine_core::{ChainFault, FaultKind};
use events::limits::RECORD_BYTES_MAX;
use events::record::{chain_hash, decode, encode};
use events::{
    CodecError, CommandId, ConversationSid, Event, Hash, Record, RecordHeader, ServiceSid,
};

/// The format version the fast path parses in place.
const FAST_FORMAT_VERSION: u16 = 1;
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
        if self.format_version != FAST_FORMAT_VERSION {
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

/// Parses a version-1 record in canonical encoding without copying.
/// `None` means "not the common case": the caller must use the
/// authoritative decoder. The hash is not checked here.
pub fn parse_fast(bytes: &[u8]) -> Option<RecordView<'_>> {
    if bytes.len() < 2 || bytes.len() > RECORD_BYTES_MAX {
        return None;
    }
    if u16::from_le_bytes([bytes[0], bytes[1]]) != FAST_FORMAT_VERSION {
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
    let header_end = c.at;
    let prev_hash = c.array::<HASH_BYTES>()?;
    let hash = c.array::<HASH_BYTES>()?;
    let len = usize::try_from(c.varint()?).ok()?;
    let payload = c.take(len)?;
    if c.at != bytes.len() {
        return None;
    }
    Some(RecordView {
        format_version: FAST_FORMAT_VERSION,
        header: RecordHeader {
            position,
            recorded_at,
            service_sid,
            conversation_sid,
            command_id,
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
    // The record decoded, so its header encodes (it was hashed that way).
    let header_bytes = encode(&record.header).map_err(|e| fault(position, FaultKind::Decode(e)))?;
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
    use events::MessageSid;

    fn sample(position: u64, conversation: bool, body_len: usize) -> Record {
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
        };
        Record::seal(header, &event, [7u8; 32]).unwrap()
    }

    #[test]
    fn the_fast_path_reads_what_the_codec_writes() {
        let positions = [0u64, 1, 250, 251, 65_535, 65_536, 1 << 32, u64::MAX - 1];
        for &p in &positions {
            for conversation in [false, true] {
                for body_len in [0usize, 10, 250, 251, 70_000] {
                    let record = sample(p, conversation, body_len);
                    let bytes = record.encode().unwrap();
                    let view = parse_fast(&bytes).expect("canonical record");
                    assert_eq!(view.to_record(), record);
                    assert_eq!(fast_hash(&view), record.hash);
                    assert_eq!(
                        view.header_bytes.as_ref(),
                        encode(&record.header).unwrap().as_slice()
                    );
                    let checked = decode_checked(p, &bytes).unwrap();
                    assert_eq!(checked.to_record(), record);
                }
            }
        }
    }

    /// Every single-byte change either fails both paths alike or (if the
    /// fast path accepts it) is also accepted by the authoritative decoder.
    #[test]
    fn the_fast_path_never_accepts_what_the_codec_rejects() {
        let record = sample(300, true, 40);
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
