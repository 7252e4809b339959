//! The on-disk layout: column family names and key/value encodings.
//!
//! | column family | key | value |
//! | --- | --- | --- |
//! | [`CF_LOG`] | position (big-endian u64) | [`events::Record::encode`] bytes |
//! | [`CF_STREAM`] | service (16) ‖ conversation (16, zeros when none) ‖ position (BE u64) | empty |
//! | [`CF_COMMANDS`] | scope (16: the service, zeros for the account scope) ‖ command id (16) | first position (BE u64) ‖ record count (BE u32) ‖ fingerprint (32) |
//! | [`CF_STREAMS`] | service (16) ‖ conversation (16, zeros when none) | record count (BE u64) |
//!
//! Big-endian integers make RocksDB's bytewise key order the numeric order,
//! so a forward scan of [`CF_LOG`] walks the log in position order and a
//! scan of one [`CF_STREAM`] prefix walks one stream in position order.
//!
//! The service-level stream (no conversation) uses sixteen zero bytes in
//! place of the conversation. A conversation whose SID is all zeros would
//! share that stream; SIDs are derived with blake3, so that never happens in
//! practice.
//!
//! A command id is unique within its idempotency scope
//! ([`events::Command::idempotency_scope`]): the service the command
//! addresses, or the account scope (sixteen zero bytes, as for the
//! conversation above) for commands that address none. The fingerprint
//! ([`events::idempotency_fingerprint`]) tells a retry of the same command
//! from another command reusing the key; [`FINGERPRINT_UNKNOWN`] marks an
//! entry re-derived from the log, whose fingerprint could not be recovered.

use events::{CommandId, ConversationSid, Fingerprint, ServiceSid};

/// The column family holding the records, keyed by position.
pub const CF_LOG: &str = "log";
/// The column family indexing records by (service, conversation, position).
pub const CF_STREAM: &str = "stream";
/// The column family remembering every applied command id.
pub const CF_COMMANDS: &str = "commands";
/// The column family holding each stream's version (its record count).
pub const CF_STREAMS: &str = "streams";
/// Every column family the log itself owns.
pub const LOG_COLUMN_FAMILIES: &[&str] = &[CF_LOG, CF_STREAM, CF_COMMANDS, CF_STREAMS];

/// Length of a [`CF_LOG`] key, in bytes.
pub const POSITION_KEY_BYTES: usize = 8;
/// Length of a stream identity (service ‖ conversation), in bytes.
pub const STREAM_ID_BYTES: usize = 32;
/// Length of a [`CF_STREAM`] key, in bytes.
pub const STREAM_INDEX_KEY_BYTES: usize = STREAM_ID_BYTES + POSITION_KEY_BYTES;
/// Length of an idempotency scope in a [`CF_COMMANDS`] key, in bytes.
pub const SCOPE_BYTES: usize = 16;
/// Length of a [`CF_COMMANDS`] key (scope ‖ command id), in bytes.
pub const COMMAND_KEY_BYTES: usize = SCOPE_BYTES + 16;
/// Length of a command fingerprint in a [`CF_COMMANDS`] value, in bytes.
pub const FINGERPRINT_BYTES: usize = 32;
/// Length of a [`CF_COMMANDS`] value (first position ‖ count ‖
/// fingerprint), in bytes.
pub const COMMAND_VALUE_BYTES: usize = 8 + 4 + FINGERPRINT_BYTES;
/// The fingerprint of an entry re-derived from the log: the command's bytes
/// are not in the log, so its fingerprint cannot be recomputed. A replay of
/// its key in its scope is then answered as a duplicate, whatever the
/// command (the behaviour before fingerprints existed). All zeros: a blake3
/// output is never all zeros in practice.
pub const FINGERPRINT_UNKNOWN: Fingerprint = [0u8; FINGERPRINT_BYTES];
/// Length of a [`CF_STREAMS`] value, in bytes.
pub const STREAM_VERSION_VALUE_BYTES: usize = 8;

/// The [`CF_LOG`] key of a position.
pub fn position_key(position: u64) -> [u8; POSITION_KEY_BYTES] {
    position.to_be_bytes()
}

/// Parses a [`CF_LOG`] key; `None` if it is not 8 bytes.
pub fn parse_position_key(key: &[u8]) -> Option<u64> {
    let bytes: [u8; POSITION_KEY_BYTES] = key.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// The identity of a stream: service ‖ conversation (zeros when none).
pub fn stream_id(
    service: &ServiceSid,
    conversation: Option<&ConversationSid>,
) -> [u8; STREAM_ID_BYTES] {
    let mut out = [0u8; STREAM_ID_BYTES];
    out[..16].copy_from_slice(service.as_bytes());
    if let Some(conversation) = conversation {
        out[16..].copy_from_slice(conversation.as_bytes());
    }
    out
}

/// The [`CF_STREAM`] key of a record.
pub fn stream_index_key(
    stream: &[u8; STREAM_ID_BYTES],
    position: u64,
) -> [u8; STREAM_INDEX_KEY_BYTES] {
    let mut out = [0u8; STREAM_INDEX_KEY_BYTES];
    out[..STREAM_ID_BYTES].copy_from_slice(stream);
    out[STREAM_ID_BYTES..].copy_from_slice(&position.to_be_bytes());
    out
}

/// Parses a [`CF_STREAM`] key into its stream identity and position; `None`
/// if it is not [`STREAM_INDEX_KEY_BYTES`] long.
pub fn parse_stream_index_key(key: &[u8]) -> Option<([u8; STREAM_ID_BYTES], u64)> {
    if key.len() != STREAM_INDEX_KEY_BYTES {
        return None;
    }
    let mut stream = [0u8; STREAM_ID_BYTES];
    stream.copy_from_slice(&key[..STREAM_ID_BYTES]);
    let position = parse_position_key(&key[STREAM_ID_BYTES..])?;
    Some((stream, position))
}

/// The [`CF_COMMANDS`] key of `command_id` in idempotency scope `scope`
/// (`None`: the account scope).
pub fn command_key(scope: Option<&ServiceSid>, command_id: &CommandId) -> [u8; COMMAND_KEY_BYTES] {
    let mut out = [0u8; COMMAND_KEY_BYTES];
    if let Some(service) = scope {
        out[..SCOPE_BYTES].copy_from_slice(service.as_bytes());
    }
    out[SCOPE_BYTES..].copy_from_slice(&command_id.0);
    out
}

/// Parses a [`CF_COMMANDS`] key into its scope (`None`: the account scope)
/// and command id; `None` if it is not [`COMMAND_KEY_BYTES`] long.
pub fn parse_command_key(key: &[u8]) -> Option<(Option<ServiceSid>, CommandId)> {
    if key.len() != COMMAND_KEY_BYTES {
        return None;
    }
    let scope: [u8; SCOPE_BYTES] = key[..SCOPE_BYTES].try_into().ok()?;
    let id: [u8; 16] = key[SCOPE_BYTES..].try_into().ok()?;
    let scope = (scope != [0u8; SCOPE_BYTES]).then_some(ServiceSid(scope));
    Some((scope, CommandId(id)))
}

/// Where a command's records are and what command wrote them: a
/// [`CF_COMMANDS`] value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandEntry {
    /// The first record's position.
    pub first_position: u64,
    /// How many records the command appended (at least one).
    pub count: u32,
    /// The command's fingerprint, or [`FINGERPRINT_UNKNOWN`].
    pub fingerprint: Fingerprint,
}

/// The [`CF_COMMANDS`] value: first position ‖ record count ‖ fingerprint.
pub fn command_value(entry: &CommandEntry) -> [u8; COMMAND_VALUE_BYTES] {
    let mut out = [0u8; COMMAND_VALUE_BYTES];
    out[..8].copy_from_slice(&entry.first_position.to_be_bytes());
    out[8..12].copy_from_slice(&entry.count.to_be_bytes());
    out[12..].copy_from_slice(&entry.fingerprint);
    out
}

/// Parses a [`CF_COMMANDS`] value; `None` if it is not
/// [`COMMAND_VALUE_BYTES`] long.
pub fn parse_command_value(value: &[u8]) -> Option<CommandEntry> {
    if value.len() != COMMAND_VALUE_BYTES {
        return None;
    }
    Some(CommandEntry {
        first_position: u64::from_be_bytes(value[..8].try_into().ok()?),
        count: u32::from_be_bytes(value[8..12].try_into().ok()?),
        fingerprint: value[12..].try_into().ok()?,
    })
}

/// The [`CF_STREAMS`] value of a stream version.
pub fn stream_version_value(version: u64) -> [u8; STREAM_VERSION_VALUE_BYTES] {
    version.to_be_bytes()
}

/// Parses a [`CF_STREAMS`] value; `None` if it is not 8 bytes.
pub fn parse_stream_version_value(value: &[u8]) -> Option<u64> {
    let bytes: [u8; STREAM_VERSION_VALUE_BYTES] = value.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_keys_sort_numerically() {
        let mut keys: Vec<_> = [0u64, 255, 256, 1 << 40, 7]
            .iter()
            .map(|p| position_key(*p))
            .collect();
        keys.sort();
        let back: Vec<_> = keys
            .iter()
            .map(|k| parse_position_key(k).unwrap())
            .collect();
        assert_eq!(back, vec![0, 7, 255, 256, 1 << 40]);
        assert_eq!(parse_position_key(&[1, 2, 3]), None);
    }

    #[test]
    fn stream_keys_round_trip() {
        let service = ServiceSid::derive(b"s");
        let conversation = ConversationSid::derive(b"c");
        let id = stream_id(&service, Some(&conversation));
        let key = stream_index_key(&id, 42);
        assert_eq!(parse_stream_index_key(&key), Some((id, 42)));
        assert_eq!(&stream_id(&service, None)[16..], &[0u8; 16]);
        assert_eq!(parse_stream_index_key(&key[1..]), None);
    }

    #[test]
    fn command_keys_round_trip_in_both_scopes() {
        let service = ServiceSid::derive(b"s");
        let id = CommandId::from_key(b"k");
        let scoped = command_key(Some(&service), &id);
        let account = command_key(None, &id);
        assert_ne!(scoped, account, "the scope is part of the key");
        assert_eq!(parse_command_key(&scoped), Some((Some(service), id)));
        assert_eq!(parse_command_key(&account), Some((None, id)));
        assert_eq!(parse_command_key(&scoped[1..]), None);
    }

    #[test]
    fn values_round_trip() {
        let entry = CommandEntry {
            first_position: 9,
            count: 3,
            fingerprint: [7; FINGERPRINT_BYTES],
        };
        assert_eq!(
            parse_command_value(&command_value(&entry)),
            Some(entry),
            "command value"
        );
        assert_eq!(parse_command_value(&[0; COMMAND_VALUE_BYTES - 1]), None);
        assert_eq!(
            parse_stream_version_value(&stream_version_value(5)),
            Some(5)
        );
        assert_eq!(parse_stream_version_value(&[0; 9]), None);
    }
}
