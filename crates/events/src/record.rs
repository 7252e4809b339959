//! The versioned, hash-chained record envelope and its codec.
//!
//! On disk a record is `format_version: u16 (little endian)` followed by the
//! bincode encoding of that version's body. Version 1's body is
//! [`RecordHeader`], `prev_hash`, `hash` and the payload (the bincode
//! encoding of one [`Event`]). The chain hash is
//! `blake3(prev_hash ‖ format_version ‖ bincode(header) ‖ payload)`.
//!
//! Decoding never panics: every malformed input is a [`CodecError`]. Lengths
//! inside the encoding are bounded by [`RECORD_BYTES_MAX`], so a corrupt
//! length prefix cannot make the decoder allocate more than that.
//!
//! Compatibility rule: a decoder reads every format version ever written.
//! A change to any encoded type (the header, [`Event`] or anything it holds)
//! needs a new format version with its own decode path; the golden-file test
//! in `tests/golden.rs` fails if version-1 bytes stop decoding.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::command::CommandId;
use crate::event::Event;
use crate::limits::RECORD_BYTES_MAX;
use crate::model::TimestampMicros;
use crate::sid::{ConversationSid, ServiceSid};

/// The format version new records are written in.
pub const FORMAT_VERSION_CURRENT: u16 = 1;
/// Every format version this decoder reads.
pub const FORMAT_VERSIONS_KNOWN: &[u16] = &[1];

/// An upper bound on what a record adds to its payload when encoded, in
/// bytes: version (2), header (at most 8 + 10 + 10 + 16 + 17 + 16 with
/// varints and option tags), two hashes (64) and the payload's length
/// prefix (at most 9).
const RECORD_OVERHEAD_BYTES_MAX: usize = 2 + 77 + 64 + 9;

/// A blake3 chain hash.
pub type Hash = [u8; 32];
/// The `prev_hash` of the record at position 0.
pub const GENESIS_HASH: Hash = [0u8; 32];

/// Why bytes could not be decoded (or a value encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Fewer than the two bytes of the format version.
    #[error("record is {len} bytes, too short for a format version")]
    TooShort {
        /// The length seen, in bytes.
        len: usize,
    },
    /// Larger than [`RECORD_BYTES_MAX`].
    #[error("record is {len} bytes, over the {RECORD_BYTES_MAX}-byte limit")]
    TooLong {
        /// The length seen, in bytes.
        len: usize,
    },
    /// A format version this decoder does not know.
    #[error("unknown record format version {0}")]
    UnknownVersion(u16),
    /// The bincode body is malformed.
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// Bytes left over after the body.
    #[error("{0} trailing bytes after the record body")]
    TrailingBytes(usize),
    /// The stored hash does not match the record's contents.
    #[error("hash does not match the record's contents")]
    HashMismatch,
    /// The header's conversation differs from the event's.
    #[error("header conversation {header:?} differs from the event's {event:?}")]
    ConversationMismatch {
        /// What the header says.
        header: Option<ConversationSid>,
        /// What the event says.
        event: Option<ConversationSid>,
    },
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<RECORD_BYTES_MAX>()
}

/// Encodes any serde value with the log's bincode configuration.
///
/// Errors only if the value does not fit in [`RECORD_BYTES_MAX`] bytes.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let bytes = bincode::serde::encode_to_vec(value, config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if bytes.len() > RECORD_BYTES_MAX {
        return Err(CodecError::TooLong { len: bytes.len() });
    }
    Ok(bytes)
}

/// Decodes a whole byte slice as one serde value; leftover bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > RECORD_BYTES_MAX {
        return Err(CodecError::TooLong { len: bytes.len() });
    }
    let (value, read) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - read));
    }
    Ok(value)
}

/// The part of a record that says where, when and why it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordHeader {
    /// Global log position: dense, starting at 0.
    pub position: u64,
    /// When the record was appended, microseconds since the Unix epoch.
    pub recorded_at: TimestampMicros,
    /// The service the event belongs to.
    pub service_sid: ServiceSid,
    /// The conversation, for conversation events.
    pub conversation_sid: Option<ConversationSid>,
    /// The command that produced it (several records may share one).
    pub command_id: CommandId,
}

/// Version 1's body, exactly as encoded after the version prefix.
#[derive(Serialize, Deserialize)]
struct BodyV1 {
    header: RecordHeader,
    prev_hash: Hash,
    hash: Hash,
    payload: Vec<u8>,
}

/// One sealed log record: header, payload and its link in the hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The format version it was written in.
    pub format_version: u16,
    /// Where, when and why.
    pub header: RecordHeader,
    /// The previous record's hash ([`GENESIS_HASH`] at position 0).
    pub prev_hash: Hash,
    /// `blake3(prev_hash ‖ format_version ‖ bincode(header) ‖ payload)`.
    pub hash: Hash,
    /// The bincode encoding of the [`Event`].
    pub payload: Vec<u8>,
}

impl Record {
    /// Builds a record in the current format, chaining it to `prev_hash`.
    ///
    /// Errors if the whole record does not encode within
    /// [`RECORD_BYTES_MAX`] or if the header's conversation is not the
    /// event's.
    pub fn seal(header: RecordHeader, event: &Event, prev_hash: Hash) -> Result<Self, CodecError> {
        if header.conversation_sid != event.conversation_sid() {
            return Err(CodecError::ConversationMismatch {
                header: header.conversation_sid,
                event: event.conversation_sid(),
            });
        }
        let payload = encode(event)?;
        let hash = chain_hash(FORMAT_VERSION_CURRENT, &header, &prev_hash, &payload)?;
        let record = Record {
            format_version: FORMAT_VERSION_CURRENT,
            header,
            prev_hash,
            hash,
            payload,
        };
        // Fail here, not one step later in `encode`: a sealed record is
        // always writable. Only a payload near the limit needs the full
        // encode to know; the common case stays one encode per record.
        if record.payload.len() + RECORD_OVERHEAD_BYTES_MAX > RECORD_BYTES_MAX {
            record.encode()?;
        }
        Ok(record)
    }

    /// The storage bytes: version prefix plus body.
    ///
    /// Errors if the record would exceed [`RECORD_BYTES_MAX`] or is in a
    /// format version this build cannot write (only version 1 exists).
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        if self.format_version != 1 {
            return Err(CodecError::UnknownVersion(self.format_version));
        }
        let body = BodyV1 {
            header: self.header.clone(),
            prev_hash: self.prev_hash,
            hash: self.hash,
            payload: self.payload.clone(),
        };
        let mut out = Vec::with_capacity(self.payload.len() + 128);
        out.extend_from_slice(&self.format_version.to_le_bytes());
        out.extend_from_slice(&encode(&body)?);
        if out.len() > RECORD_BYTES_MAX {
            return Err(CodecError::TooLong { len: out.len() });
        }
        Ok(out)
    }

    /// Decodes storage bytes and checks the record's own hash.
    ///
    /// Never panics. Errors: too short or long, unknown version, malformed
    /// body, trailing bytes, or a hash that does not match the contents. It
    /// does not check `prev_hash` against a predecessor: that is the log's
    /// chain check.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() < 2 {
            return Err(CodecError::TooShort { len: bytes.len() });
        }
        if bytes.len() > RECORD_BYTES_MAX {
            return Err(CodecError::TooLong { len: bytes.len() });
        }
        let version = u16::from_le_bytes([bytes[0], bytes[1]]);
        let record = match version {
            1 => {
                let body: BodyV1 = decode(&bytes[2..])?;
                Record {
                    format_version: 1,
                    header: body.header,
                    prev_hash: body.prev_hash,
                    hash: body.hash,
                    payload: body.payload,
                }
            }
            other => return Err(CodecError::UnknownVersion(other)),
        };
        let expected = chain_hash(
            record.format_version,
            &record.header,
            &record.prev_hash,
            &record.payload,
        )?;
        if expected != record.hash {
            return Err(CodecError::HashMismatch);
        }
        Ok(record)
    }

    /// Decodes the payload as an [`Event`] and checks that it belongs to the
    /// header's conversation.
    pub fn event(&self) -> Result<Event, CodecError> {
        let event: Event = match self.format_version {
            1 => decode(&self.payload)?,
            other => return Err(CodecError::UnknownVersion(other)),
        };
        if event.conversation_sid() != self.header.conversation_sid {
            return Err(CodecError::ConversationMismatch {
                header: self.header.conversation_sid,
                event: event.conversation_sid(),
            });
        }
        Ok(event)
    }
}

/// `blake3(prev_hash ‖ format_version ‖ bincode(header) ‖ payload)`.
pub fn chain_hash(
    format_version: u16,
    header: &RecordHeader,
    prev_hash: &Hash,
    payload: &[u8],
) -> Result<Hash, CodecError> {
    let header_bytes = encode(header)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(prev_hash);
    hasher.update(&format_version.to_le_bytes());
    hasher.update(&header_bytes);
    hasher.update(payload);
    Ok(*hasher.finalize().as_bytes())
}
