//! The versioned, hash-chained record envelope and its codec.
//!
//! On disk a record is `format_version: u16 (little endian)` followed by the
//! bincode encoding of that version's body: the version's header encoding,
//! `prev_hash`, `hash` and the payload (the bincode encoding of one
//! [`Event`]). The chain hash is
//! `blake3(prev_hash ‖ format_version ‖ header ‖ payload)`, where `header`
//! is the version's header encoding ([`encode_header`]).
//!
//! | version | header fields | written |
//! |---------|---------------|---------|
//! | 1 | position, recorded_at, service_sid, conversation_sid, command_id | until the actor was added |
//! | 2 | version 1's fields, then `actor: Option<String>` | today ([`FORMAT_VERSION_CURRENT`]) |
//!
//! A version-1 record decodes with `actor: None`: it was written before the
//! acting identity was recorded, so it does not say who acted. The payload
//! encoding of [`Event`] is the same in both versions.
//!
//! Decoding never panics: every malformed input is a [`CodecError`]. Lengths
//! inside the encoding are bounded by [`RECORD_BYTES_MAX`], so a corrupt
//! length prefix cannot make the decoder allocate more than that, and an
//! actor is bounded by [`IDENTITY_CHARS_MAX`] on both seal and decode.
//!
//! Compatibility rule: a decoder reads every record ever written, in every
//! format version, to the values it was written with. `tests/golden.rs`
//! enforces it: every golden set (one per format version, plus sets for
//! variants appended later) must decode, chain and match its `.jsonl`, and
//! the golden sets together must hold every [`Event`] variant. So:
//! - appending a variant at the end of [`Event`] changes no existing bytes
//!   (bincode encodes the variant index) and needs no new format version,
//!   only a new golden set that holds it;
//! - any other change to an encoded type (the header, [`Event`] or anything
//!   it holds: a reordered or removed variant, a field added, removed,
//!   reordered or retyped) changes what existing bytes mean, so it needs a
//!   new format version with its own decode path for the earlier versions.
//!
//! Compatibility runs one way: an older build reads no record whose version
//! it does not know ([`CodecError::UnknownVersion`]), nor an event variant
//! appended after it was built ([`CodecError::Malformed`]).

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::command::CommandId;
use crate::event::Event;
use crate::limits::{IDENTITY_CHARS_MAX, RECORD_BYTES_MAX};
use crate::model::TimestampMicros;
use crate::sid::{ConversationSid, ServiceSid};

/// The format version new records are written in (version 2: the header
/// carries the actor).
pub const FORMAT_VERSION_CURRENT: u16 = 2;
/// Every format version this decoder reads.
pub const FORMAT_VERSIONS_KNOWN: &[u16] = &[1, 2];

/// The most bytes an actor's UTF-8 takes: [`IDENTITY_CHARS_MAX`] characters
/// of at most 4 bytes each (UTF-8's longest encoding of one character).
const ACTOR_BYTES_MAX: usize = IDENTITY_CHARS_MAX * 4;

/// An upper bound on what a record adds to its payload when encoded, in
/// bytes: version (2), version 1's header fields (at most
/// 8 + 10 + 10 + 16 + 17 + 16 with varints and option tags), the actor's
/// option tag (1), length prefix (at most 3 for [`ACTOR_BYTES_MAX`]) and
/// bytes, two hashes (64) and the payload's length prefix (at most 9).
const RECORD_OVERHEAD_BYTES_MAX: usize = 2 + 77 + 1 + 3 + ACTOR_BYTES_MAX + 64 + 9;

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
    /// The header's actor is longer than an identity may be.
    #[error(
        "record actor is {chars} characters, over the {IDENTITY_CHARS_MAX}-character identity \
         limit; validate the acting identity before sealing a record for it"
    )]
    ActorTooLong {
        /// The actor's length, in characters.
        chars: usize,
    },
    /// A header with an actor, in a format version that has no actor field.
    #[error(
        "format version {format_version} records have no actor field; write records with an \
         actor in version {FORMAT_VERSION_CURRENT}"
    )]
    ActorUnsupported {
        /// The format version asked for.
        format_version: u16,
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

/// The part of a record that says where, when, why and for whom it was
/// written. Its bincode encoding is version 2's header; version 1's lacks
/// the `actor` (see [`encode_header`]).
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
    /// The chat identity that acted (the command envelope's
    /// `acting_identity`), or `None` for the trusted host. At most
    /// [`IDENTITY_CHARS_MAX`] characters. Always `None` in a version-1
    /// record, which did not record who acted.
    pub actor: Option<String>,
}

/// Version 1's header: [`RecordHeader`] without the actor.
#[derive(Serialize, Deserialize)]
struct HeaderV1 {
    position: u64,
    recorded_at: TimestampMicros,
    service_sid: ServiceSid,
    conversation_sid: Option<ConversationSid>,
    command_id: CommandId,
}

impl HeaderV1 {
    /// The version-1 form of `header`; errors if it has an actor.
    fn from_header(header: &RecordHeader) -> Result<Self, CodecError> {
        if header.actor.is_some() {
            return Err(CodecError::ActorUnsupported { format_version: 1 });
        }
        Ok(HeaderV1 {
            position: header.position,
            recorded_at: header.recorded_at,
            service_sid: header.service_sid,
            conversation_sid: header.conversation_sid,
            command_id: header.command_id,
        })
    }

    fn into_header(self) -> RecordHeader {
        RecordHeader {
            position: self.position,
            recorded_at: self.recorded_at,
            service_sid: self.service_sid,
            conversation_sid: self.conversation_sid,
            command_id: self.command_id,
            actor: None,
        }
    }
}

/// A version's body, exactly as encoded after the version prefix: version
/// 1 with [`HeaderV1`], version 2 with [`RecordHeader`]. `P` is the payload
/// (`Vec<u8>` to decode, a borrow to encode without a copy).
#[derive(Serialize, Deserialize)]
struct Body<H, P> {
    header: H,
    prev_hash: Hash,
    hash: Hash,
    payload: P,
}

/// Errors with [`CodecError::ActorTooLong`] if `header`'s actor is longer
/// than an identity may be.
fn check_actor(header: &RecordHeader) -> Result<(), CodecError> {
    if let Some(actor) = &header.actor {
        // Cheap first: a string of at most that many bytes has at most that
        // many characters.
        if actor.len() > IDENTITY_CHARS_MAX {
            let chars = actor.chars().count();
            if chars > IDENTITY_CHARS_MAX {
                return Err(CodecError::ActorTooLong { chars });
            }
        }
    }
    Ok(())
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
    /// `blake3(prev_hash ‖ format_version ‖ header ‖ payload)`, over the
    /// version's header encoding ([`encode_header`]).
    pub hash: Hash,
    /// The bincode encoding of the [`Event`].
    pub payload: Vec<u8>,
}

impl Record {
    /// Builds a record in the current format, chaining it to `prev_hash`.
    ///
    /// Errors if the whole record does not encode within
    /// [`RECORD_BYTES_MAX`], if the header's conversation is not the
    /// event's ([`CodecError::ConversationMismatch`]) or if its actor is
    /// over [`IDENTITY_CHARS_MAX`] characters ([`CodecError::ActorTooLong`]).
    pub fn seal(header: RecordHeader, event: &Event, prev_hash: Hash) -> Result<Self, CodecError> {
        if header.conversation_sid != event.conversation_sid() {
            return Err(CodecError::ConversationMismatch {
                header: header.conversation_sid,
                event: event.conversation_sid(),
            });
        }
        check_actor(&header)?;
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

    /// The storage bytes: version prefix plus body, in the record's own
    /// format version (so a decoded version-1 record writes its original
    /// bytes).
    ///
    /// Errors if the record would exceed [`RECORD_BYTES_MAX`], is in a
    /// format version this build does not know
    /// ([`CodecError::UnknownVersion`]), or has an actor in version 1
    /// ([`CodecError::ActorUnsupported`]) or one that is too long
    /// ([`CodecError::ActorTooLong`]).
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        check_actor(&self.header)?;
        let body = match self.format_version {
            1 => encode(&Body {
                header: HeaderV1::from_header(&self.header)?,
                prev_hash: self.prev_hash,
                hash: self.hash,
                payload: &self.payload,
            })?,
            2 => encode(&Body {
                header: &self.header,
                prev_hash: self.prev_hash,
                hash: self.hash,
                payload: &self.payload,
            })?,
            other => return Err(CodecError::UnknownVersion(other)),
        };
        let mut out = Vec::with_capacity(body.len() + 2);
        out.extend_from_slice(&self.format_version.to_le_bytes());
        out.extend_from_slice(&body);
        if out.len() > RECORD_BYTES_MAX {
            return Err(CodecError::TooLong { len: out.len() });
        }
        Ok(out)
    }

    /// Decodes storage bytes of any known format version and checks the
    /// record's own hash. A version-1 record gets `actor: None`.
    ///
    /// Never panics. Errors: too short or long, unknown version, malformed
    /// body, trailing bytes, an actor over [`IDENTITY_CHARS_MAX`] characters
    /// ([`CodecError::ActorTooLong`]), or a hash that does not match the
    /// contents. It does not check `prev_hash` against a predecessor: that
    /// is the log's chain check.
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
                let body: Body<HeaderV1, Vec<u8>> = decode(&bytes[2..])?;
                Record {
                    format_version: 1,
                    header: body.header.into_header(),
                    prev_hash: body.prev_hash,
                    hash: body.hash,
                    payload: body.payload,
                }
            }
            2 => {
                let body: Body<RecordHeader, Vec<u8>> = decode(&bytes[2..])?;
                check_actor(&body.header)?;
                Record {
                    format_version: 2,
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
        decode_event(
            self.format_version,
            self.header.conversation_sid,
            &self.payload,
        )
    }
}

/// Decodes `payload`, stored in a record of `format_version` whose header
/// names `conversation`, as an [`Event`] of that conversation: what
/// [`Record::event`] (and [`crate::fast::RecordView::event`]) return.
///
/// Errors: [`CodecError::UnknownVersion`], a malformed payload, or
/// [`CodecError::ConversationMismatch`].
pub fn decode_event(
    format_version: u16,
    conversation: Option<ConversationSid>,
    payload: &[u8],
) -> Result<Event, CodecError> {
    // Both versions encode the payload alike.
    let event: Event = match format_version {
        1 | 2 => decode(payload)?,
        other => return Err(CodecError::UnknownVersion(other)),
    };
    if event.conversation_sid() != conversation {
        return Err(CodecError::ConversationMismatch {
            header: conversation,
            event: event.conversation_sid(),
        });
    }
    Ok(event)
}

/// The header bytes a record of `format_version` stores and hashes: version
/// 1's encoding (without the actor) or version 2's (`bincode(header)`).
///
/// Errors: [`CodecError::UnknownVersion`] for a version this build does not
/// know, [`CodecError::ActorUnsupported`] for an actor in version 1.
pub fn encode_header(format_version: u16, header: &RecordHeader) -> Result<Vec<u8>, CodecError> {
    match format_version {
        1 => encode(&HeaderV1::from_header(header)?),
        2 => encode(header),
        other => Err(CodecError::UnknownVersion(other)),
    }
}

/// `blake3(prev_hash ‖ format_version ‖ header ‖ payload)`, with the header
/// in `format_version`'s encoding ([`encode_header`], whose errors it
/// returns).
pub fn chain_hash(
    format_version: u16,
    header: &RecordHeader,
    prev_hash: &Hash,
    payload: &[u8],
) -> Result<Hash, CodecError> {
    let header_bytes = encode_header(format_version, header)?;
    Ok(chain_hash_of_bytes(
        format_version,
        &header_bytes,
        prev_hash,
        payload,
    ))
}

/// `blake3(prev_hash ‖ format_version ‖ header_bytes ‖ payload)`: the chain
/// hash over a header already in its version's encoding (as stored, for
/// the in-place parser in [`crate::fast`]). Infallible: it hashes bytes.
pub fn chain_hash_of_bytes(
    format_version: u16,
    header_bytes: &[u8],
    prev_hash: &Hash,
    payload: &[u8],
) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(prev_hash);
    hasher.update(&format_version.to_le_bytes());
    hasher.update(header_bytes);
    hasher.update(payload);
    *hasher.finalize().as_bytes()
}
