//! The reactors' column family, [`CF_REACTORS`]: each reactor's checkpoint
//! and its parked events, beside the log in the same RocksDB store.
//!
//! | key | value |
//! | --- | --- |
//! | `c` ‖ name | checkpoint: the next position to handle (BE u64) |
//! | `p` ‖ name length (u8) ‖ name ‖ position (BE u64) | parked event: attempts made (BE u32) ‖ last error (UTF-8) |
//!
//! The checkpoint key ends with the name, so names never collide; the
//! parked keys carry the name's length, so one reactor's prefix is never a
//! prefix of another's, and a forward scan of one prefix lists its parked
//! events in position order. A reactor's thread is the only writer of its
//! keys; the engine's open creates the column family, the log never reads
//! it, and `Engine::rebuild` leaves it alone (checkpoints are positions in
//! the log, which a rebuild does not change).

use rocksdb::{ColumnFamily, Direction, IteratorMode, WriteBatch, DB};

use super::{ParkedEvent, ReactorError};

/// The column family holding every reactor's checkpoint and parked events.
pub const CF_REACTORS: &str = "reactors";

const CHECKPOINT_TAG: u8 = b'c';
const PARKED_TAG: u8 = b'p';
/// Bytes of a checkpoint value (a BE u64).
const CHECKPOINT_VALUE_BYTES: usize = 8;
/// Bytes of a parked value's attempt count (a BE u32), before the error.
const PARKED_ATTEMPTS_BYTES: usize = 4;
/// Bytes of a position at the end of a parked key.
const POSITION_BYTES: usize = 8;

fn cf(db: &DB) -> &ColumnFamily {
    db.cf_handle(CF_REACTORS)
        .expect("the engine's open creates the reactors column family")
}

fn checkpoint_key(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.len());
    key.push(CHECKPOINT_TAG);
    key.extend_from_slice(name.as_bytes());
    key
}

/// `p` ‖ name length ‖ name. Names are at most
/// [`super::REACTOR_NAME_BYTES_MAX`] bytes, checked before any key is made.
fn parked_prefix(name: &str) -> Vec<u8> {
    let len = u8::try_from(name.len()).expect("reactor names are checked to fit a byte");
    let mut key = Vec::with_capacity(2 + name.len() + POSITION_BYTES);
    key.push(PARKED_TAG);
    key.push(len);
    key.extend_from_slice(name.as_bytes());
    key
}

fn parked_key(name: &str, position: u64) -> Vec<u8> {
    let mut key = parked_prefix(name);
    key.extend_from_slice(&position.to_be_bytes());
    key
}

fn corrupt(name: &str, detail: String) -> ReactorError {
    ReactorError::Corrupt {
        name: name.to_string(),
        detail,
    }
}

/// The reactor's persisted checkpoint, if it has one.
///
/// Errors: [`ReactorError::Storage`]; [`ReactorError::Corrupt`] for a
/// value that is not 8 bytes.
pub(crate) fn checkpoint(db: &DB, name: &str) -> Result<Option<u64>, ReactorError> {
    let Some(value) = db.get_pinned_cf(cf(db), checkpoint_key(name))? else {
        return Ok(None);
    };
    let bytes: [u8; CHECKPOINT_VALUE_BYTES] = value.as_ref().try_into().map_err(|_| {
        corrupt(
            name,
            format!(
                "its checkpoint is {} bytes, not {CHECKPOINT_VALUE_BYTES}",
                value.len()
            ),
        )
    })?;
    Ok(Some(u64::from_be_bytes(bytes)))
}

/// Stages the reactor's checkpoint.
pub(crate) fn put_checkpoint(db: &DB, batch: &mut WriteBatch, name: &str, next_position: u64) {
    batch.put_cf(cf(db), checkpoint_key(name), next_position.to_be_bytes());
}

/// Stages a parked event (replacing one at the same position).
pub(crate) fn put_parked(db: &DB, batch: &mut WriteBatch, name: &str, parked: &ParkedEvent) {
    let mut value = Vec::with_capacity(PARKED_ATTEMPTS_BYTES + parked.error.len());
    value.extend_from_slice(&parked.attempts.to_be_bytes());
    value.extend_from_slice(parked.error.as_bytes());
    batch.put_cf(cf(db), parked_key(name, parked.position), value);
}

/// Stages the removal of the parked event at `position`.
pub(crate) fn delete_parked(db: &DB, batch: &mut WriteBatch, name: &str, position: u64) {
    batch.delete_cf(cf(db), parked_key(name, position));
}

fn decode_parked(name: &str, position: u64, value: &[u8]) -> Result<ParkedEvent, ReactorError> {
    if value.len() < PARKED_ATTEMPTS_BYTES {
        return Err(corrupt(
            name,
            format!(
                "its parked event at position {position} is {} bytes, shorter than its \
                 attempt count",
                value.len()
            ),
        ));
    }
    let (attempts, error) = value.split_at(PARKED_ATTEMPTS_BYTES);
    let attempts = u32::from_be_bytes(attempts.try_into().expect("split at 4 bytes"));
    let error = String::from_utf8(error.to_vec()).map_err(|e| {
        corrupt(
            name,
            format!("its parked event at position {position} has an error that is not UTF-8: {e}"),
        )
    })?;
    Ok(ParkedEvent {
        position,
        attempts,
        error,
    })
}

/// The reactor's parked event at `position`, if there is one.
///
/// Errors: [`ReactorError::Storage`]; [`ReactorError::Corrupt`] for a
/// malformed value.
pub(crate) fn parked_at(
    db: &DB,
    name: &str,
    position: u64,
) -> Result<Option<ParkedEvent>, ReactorError> {
    db.get_pinned_cf(cf(db), parked_key(name, position))?
        .map(|value| decode_parked(name, position, &value))
        .transpose()
}

/// The reactor's parked events at `from` and after, in position order.
///
/// Errors: [`ReactorError::Storage`]; [`ReactorError::Corrupt`] for a
/// malformed key or value.
pub(crate) fn parked_from(
    db: &DB,
    name: &str,
    from: u64,
) -> Result<Vec<ParkedEvent>, ReactorError> {
    let prefix = parked_prefix(name);
    let start = parked_key(name, from);
    let mut out = Vec::new();
    for item in db.iterator_cf(cf(db), IteratorMode::From(&start, Direction::Forward)) {
        let (key, value) = item?;
        let Some(position) = key.strip_prefix(prefix.as_slice()) else {
            break;
        };
        let position: [u8; POSITION_BYTES] = position.try_into().map_err(|_| {
            corrupt(
                name,
                format!(
                    "a parked key is {} bytes after its prefix, not 8",
                    position.len()
                ),
            )
        })?;
        let position = u64::from_be_bytes(position);
        out.push(decode_parked(name, position, &value)?);
    }
    Ok(out)
}
