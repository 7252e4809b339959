//! The head marker: a small file beside the store, outside RocksDB, that
//! records how far the log had been acknowledged, so that losing
//! acknowledged records is an error at open instead of a shorter log.
//!
//! **Why.** RocksDB never tracks the WAL file it is writing in its
//! MANIFEST, and `TolerateCorruptedTailRecords` takes a WAL cut short at any
//! point for a torn tail. So a deleted newest WAL, or one truncated inside
//! acknowledged records, opens as a consistent but shorter store: nothing
//! inside the store shows what is missing. The marker does.
//!
//! **Format.** The file [`HEAD_MARKER_FILE`] holds [`HEAD_MARKER_SLOTS`]
//! slots of [`HEAD_MARKER_SLOT_BYTES`] bytes, written alternately, so a
//! write torn by a crash damages at most one slot and the other still
//! holds the previous head. A slot is:
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..8 | magic `CLQYHEAD` |
//! | 8..10 | format version, u16 little-endian ([`HEAD_MARKER_FORMAT_VERSION`]) |
//! | 10 | the writer's durability: 1 `Sync`, 2 `Buffered` |
//! | 11..16 | zero |
//! | 16..24 | the log's next position, u64 little-endian |
//! | 24..56 | the last record's hash |
//! | 56..64 | checksum: the first 8 bytes of blake3 over bytes 0..56 |
//!
//! A reader takes the valid slot with the highest position.
//!
//! **Writing.** [`super::EventLog::open`] replaces the file (temporary file,
//! fsync, rename, directory fsync) with both slots at the recovered head.
//! Then the writer thread writes one slot with one `pwrite` after each batch
//! write succeeds and before any caller of the batch is answered; a failed
//! `pwrite` fails the batch like a failed write. So a process kill can never
//! leave the marker behind an acknowledged record, and the marker is never
//! ahead of the log: it is written only after the records it names are in
//! the WAL. It is fsynced when created, when the writer stops, and under
//! [`super::Durability::Sync`] at most once per
//! [`HEAD_MARKER_SYNC_INTERVAL_MS`] (never per batch): it is only ever
//! written after the WAL write it describes was fsynced, so after a power
//! loss it can be behind the log, never ahead. Under
//! [`super::Durability::Buffered`] neither is fsynced per batch, and after a
//! power loss either may be ahead: that is reported
//! ([`HeadMarkerStatus::BufferedLoss`]), not refused.
//!
//! **Checking.** [`check_head_marker`] compares the marker with the head of
//! an opened store: see [`HeadMarkerStatus`] for the outcomes and
//! [`super::OpenError::AcknowledgedRecordsMissing`],
//! [`super::OpenError::LogRewritten`] and
//! [`super::OpenError::HeadMarkerDamaged`] for the refusals.
//!
//! **Limits.** The marker protects against the accidental loss or
//! truncation of a file, not against deliberate tampering: someone who
//! deletes the WAL *and* the marker (or rewrites both) is not detected. A
//! missing marker is taken for a store written before the marker existed:
//! it is recreated, with a warning.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use events::Hash;
use rocksdb::DB;

use super::error::{ChainFault, FaultKind, HexHash, OpenError};
use super::options::Durability;
use super::read::{self, LogHead, RecordIter};
use super::storage::StorageCheck;

/// The marker's file name, in the store's directory. RocksDB ignores files
/// it does not know.
pub const HEAD_MARKER_FILE: &str = "COLLOQUY-HEAD";

/// The temporary file a new marker is written to before it is renamed over
/// [`HEAD_MARKER_FILE`].
pub const HEAD_MARKER_TEMP_FILE: &str = "COLLOQUY-HEAD.tmp";

/// Bytes of one slot: room for the fields in the module docs, rounded to a
/// power of two so a slot never straddles a disk sector.
pub const HEAD_MARKER_SLOT_BYTES: usize = 64;

/// Slots in the file: two, written alternately, so a torn write of one
/// leaves the other intact.
pub const HEAD_MARKER_SLOTS: usize = 2;

/// Bytes of the whole marker file.
pub const HEAD_MARKER_BYTES: usize = HEAD_MARKER_SLOT_BYTES * HEAD_MARKER_SLOTS;

/// The slot format written by this version.
pub const HEAD_MARKER_FORMAT_VERSION: u16 = 1;

/// Under [`Durability::Sync`], the writer fsyncs the marker at most once per
/// this many milliseconds (after a batch, once the interval has passed).
/// It bounds what a power loss can take from the marker's protection to
/// about a second of writes, for at most one extra fsync of one small file
/// per second, next to one WAL fsync per batch.
pub const HEAD_MARKER_SYNC_INTERVAL_MS: u64 = 1_000;

const MAGIC: [u8; 8] = *b"CLQYHEAD";
const MAGIC_AT: usize = 0;
const VERSION_AT: usize = 8;
const DURABILITY_AT: usize = 10;
const RESERVED_AT: usize = 11;
const POSITION_AT: usize = 16;
const HASH_AT: usize = 24;
const CHECKSUM_AT: usize = 56;
const CHECKSUM_BYTES: usize = HEAD_MARKER_SLOT_BYTES - CHECKSUM_AT;
const DURABILITY_SYNC: u8 = 1;
const DURABILITY_BUFFERED: u8 = 2;

/// What a head marker says: the acknowledged head, and the durability it
/// was written under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadMarkerState {
    /// The log's next position when the marker was written: every position
    /// below it was acknowledged.
    pub next_position: u64,
    /// The hash of the record at `next_position - 1`.
    pub last_hash: Hash,
    /// The durability of the writer that wrote it.
    pub durability: Durability,
    /// The slot it was read from (0 or 1).
    pub slot: usize,
}

/// How a store's log head compares with its head marker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HeadMarkerStatus {
    /// Not compared yet (only the WAL and MANIFEST check has run).
    #[default]
    NotChecked,
    /// The log ends where the marker says.
    Intact,
    /// A new, empty store: there was no marker and nothing to protect.
    Created,
    /// The store holds records but had no marker: written before markers
    /// existed, or the marker was deleted. A writer recreates it (with a
    /// warning); nothing could be checked this time.
    Missing {
        /// The log's next position.
        log_next_position: u64,
    },
    /// The log is ahead of the marker, and the marker's last record is in
    /// the log with the hash the marker recorded: a kill between a batch
    /// write and its marker update, or a power loss before the marker's
    /// fsync. Normal; a writer rewrites it.
    Behind {
        /// The marker's next position.
        marker_next_position: u64,
        /// The log's next position.
        log_next_position: u64,
    },
    /// The log ends before the marker, and the marker was written under
    /// [`Durability::Buffered`]: a power loss may drop the last buffered
    /// writes, which is what this durability allows. The store opens; the
    /// acknowledged records at `log_next_position..marker_next_position`
    /// are gone.
    BufferedLoss {
        /// The marker's next position.
        marker_next_position: u64,
        /// The log's next position.
        log_next_position: u64,
    },
}

impl fmt::Display for HeadMarkerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadMarkerStatus::NotChecked => f.write_str("head marker not checked"),
            HeadMarkerStatus::Intact => f.write_str("head marker intact: the log ends where it says"),
            HeadMarkerStatus::Created => f.write_str("head marker created for a new store"),
            HeadMarkerStatus::Missing { log_next_position } => write!(
                f,
                "head marker missing on a store of {log_next_position} records (written before \
                 markers existed, or the marker was deleted): nothing could be checked"
            ),
            HeadMarkerStatus::Behind {
                marker_next_position,
                log_next_position,
            } => write!(
                f,
                "head marker behind the log (next position {marker_next_position}, the log's \
                 {log_next_position}): a crash before the marker was updated or synced"
            ),
            HeadMarkerStatus::BufferedLoss {
                marker_next_position,
                log_next_position,
            } => write!(
                f,
                "{} acknowledged records lost (positions {log_next_position}..{marker_next_position}): \
                 the head marker says the log reached position {marker_next_position}, it ends at \
                 {log_next_position}; they were written with Durability::Buffered, which a power \
                 loss may drop",
                marker_next_position - log_next_position
            ),
        }
    }
}

/// The marker file of the store at `store`.
pub fn head_marker_path(store: &Path) -> PathBuf {
    store.join(HEAD_MARKER_FILE)
}

/// Encodes one slot.
fn encode_slot(head: &LogHead, durability: Durability) -> [u8; HEAD_MARKER_SLOT_BYTES] {
    let mut slot = [0u8; HEAD_MARKER_SLOT_BYTES];
    slot[MAGIC_AT..VERSION_AT].copy_from_slice(&MAGIC);
    slot[VERSION_AT..DURABILITY_AT].copy_from_slice(&HEAD_MARKER_FORMAT_VERSION.to_le_bytes());
    slot[DURABILITY_AT] = match durability {
        Durability::Sync => DURABILITY_SYNC,
        Durability::Buffered => DURABILITY_BUFFERED,
    };
    slot[POSITION_AT..HASH_AT].copy_from_slice(&head.next_position.to_le_bytes());
    slot[HASH_AT..CHECKSUM_AT].copy_from_slice(&head.last_hash);
    let checksum = blake3::hash(&slot[..CHECKSUM_AT]);
    slot[CHECKSUM_AT..].copy_from_slice(&checksum.as_bytes()[..CHECKSUM_BYTES]);
    slot
}

/// Decodes one slot, or says why it is invalid.
fn decode_slot(bytes: &[u8], index: usize) -> Result<HeadMarkerState, String> {
    let checksum = blake3::hash(&bytes[..CHECKSUM_AT]);
    if bytes[CHECKSUM_AT..] != checksum.as_bytes()[..CHECKSUM_BYTES] {
        return Err(format!("slot {index} fails its checksum"));
    }
    if bytes[MAGIC_AT..VERSION_AT] != MAGIC {
        return Err(format!(
            "slot {index} does not start with the marker's magic"
        ));
    }
    let version = u16::from_le_bytes([bytes[VERSION_AT], bytes[VERSION_AT + 1]]);
    if version != HEAD_MARKER_FORMAT_VERSION {
        return Err(format!(
            "slot {index} has format version {version}; this build reads {HEAD_MARKER_FORMAT_VERSION}"
        ));
    }
    let durability = match bytes[DURABILITY_AT] {
        DURABILITY_SYNC => Durability::Sync,
        DURABILITY_BUFFERED => Durability::Buffered,
        other => return Err(format!("slot {index} has an unknown durability {other}")),
    };
    if bytes[RESERVED_AT..POSITION_AT].iter().any(|b| *b != 0) {
        return Err(format!("slot {index} has non-zero reserved bytes"));
    }
    let mut position = [0u8; 8];
    position.copy_from_slice(&bytes[POSITION_AT..HASH_AT]);
    let mut last_hash = [0u8; 32];
    last_hash.copy_from_slice(&bytes[HASH_AT..CHECKSUM_AT]);
    Ok(HeadMarkerState {
        next_position: u64::from_le_bytes(position),
        last_hash,
        durability,
        slot: index,
    })
}

/// Reads the head marker of the store at `store`: the valid slot with the
/// highest position. `None` if there is no marker file.
///
/// Errors: [`OpenError::HeadMarkerDamaged`] naming the file if it is not
/// [`HEAD_MARKER_BYTES`] long or neither slot is valid;
/// [`OpenError::LogFileUnreadable`] if it cannot be read.
pub fn read_head_marker(store: &Path) -> Result<Option<HeadMarkerState>, OpenError> {
    let file = head_marker_path(store);
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(OpenError::LogFileUnreadable { file, source }),
    };
    if bytes.len() != HEAD_MARKER_BYTES {
        return Err(OpenError::HeadMarkerDamaged {
            file,
            detail: format!("it is {} bytes, not {HEAD_MARKER_BYTES}", bytes.len()),
        });
    }
    let mut best: Option<HeadMarkerState> = None;
    let mut reasons = Vec::new();
    for (index, slot) in bytes.chunks_exact(HEAD_MARKER_SLOT_BYTES).enumerate() {
        match decode_slot(slot, index) {
            Ok(state) => {
                if best.is_none_or(|b| state.next_position > b.next_position) {
                    best = Some(state);
                }
            }
            Err(reason) => reasons.push(reason),
        }
    }
    match best {
        Some(state) => Ok(Some(state)),
        None => Err(OpenError::HeadMarkerDamaged {
            file,
            detail: reasons.join("; "),
        }),
    }
}

/// Test seam: tears the newest slot of the head marker of the (closed)
/// store at `store` half-way, as a crash during the last batch leaves it
/// (the writer updates the marker only after the batch is written), so the
/// other slot, the head before that batch, is the valid one. Returns that
/// head's next position.
///
/// Errors: as [`read_head_marker`], plus [`OpenError::HeadMarkerDamaged`]
/// if there is no marker or its other slot is not valid, and
/// [`OpenError::HeadMarkerUnwritable`] if it cannot be written.
#[doc(hidden)]
pub fn tear_newest_slot(store: &Path) -> Result<u64, OpenError> {
    let file = head_marker_path(store);
    let damaged = |detail: &str| OpenError::HeadMarkerDamaged {
        file: file.clone(),
        detail: detail.to_string(),
    };
    let newest = read_head_marker(store)?.ok_or_else(|| damaged("there is no head marker"))?;
    let mut bytes = std::fs::read(&file).map_err(|source| OpenError::LogFileUnreadable {
        file: file.clone(),
        source,
    })?;
    let end = (newest.slot + 1) * HEAD_MARKER_SLOT_BYTES;
    bytes[end - HEAD_MARKER_SLOT_BYTES / 2..end].fill(0);
    std::fs::write(&file, bytes).map_err(|source| OpenError::HeadMarkerUnwritable {
        file: file.clone(),
        source,
    })?;
    let previous = read_head_marker(store)?.ok_or_else(|| damaged("there is no head marker"))?;
    if previous.next_position >= newest.next_position {
        return Err(damaged("its other slot is not behind the newest one"));
    }
    Ok(previous.next_position)
}

/// Compares the head of the opened store `db` at `store` with `marker`
/// (read by [`read_head_marker`] before the store was opened, so that a
/// live writer's later batches can only put the log ahead of it).
///
/// The positions are compared first (from the last key), then the hash of
/// the record at the marker's last position (decoded, self-hash checked).
///
/// Outcomes: [`HeadMarkerStatus::Created`] (no marker, empty log),
/// [`HeadMarkerStatus::Missing`] (no marker, records),
/// [`HeadMarkerStatus::Intact`], [`HeadMarkerStatus::Behind`] (the log is
/// ahead and holds the marker's last record with its hash),
/// [`HeadMarkerStatus::BufferedLoss`] (the log ends before a marker written
/// under [`Durability::Buffered`]).
///
/// Errors: [`OpenError::AcknowledgedRecordsMissing`] if the log ends before
/// a marker written under [`Durability::Sync`] (it lists `storage`'s WAL
/// files); [`OpenError::LogRewritten`] if the record at the marker's last
/// position has another hash; [`OpenError::Fault`] if that record is
/// damaged (or missing), [`OpenError::Corrupt`] if the last key is
/// malformed, [`OpenError::Storage`] if RocksDB cannot read.
pub fn check_head_marker(
    store: &Path,
    marker: Option<&HeadMarkerState>,
    db: &DB,
    storage: &StorageCheck,
) -> Result<HeadMarkerStatus, OpenError> {
    let log_next_position = read::stored_next_position(db)?;
    let Some(marker) = marker else {
        return Ok(if log_next_position == 0 {
            HeadMarkerStatus::Created
        } else {
            HeadMarkerStatus::Missing { log_next_position }
        });
    };
    let marker_next_position = marker.next_position;
    if log_next_position < marker_next_position {
        return match marker.durability {
            Durability::Sync => Err(OpenError::AcknowledgedRecordsMissing {
                marker: head_marker_path(store),
                store: store.to_path_buf(),
                marker_next_position,
                log_next_position,
                wal_files: storage.wal_files.clone(),
            }),
            Durability::Buffered => Ok(HeadMarkerStatus::BufferedLoss {
                marker_next_position,
                log_next_position,
            }),
        };
    }
    if marker_next_position > 0 {
        let position = marker_next_position - 1;
        let record = RecordIter::new(db, position..marker_next_position)
            .next()
            .transpose()?;
        let log_hash = match record {
            Some(record) => record.hash,
            None => {
                return Err(OpenError::Fault(ChainFault {
                    position,
                    kind: FaultKind::Gap {
                        next_found: log_next_position,
                    },
                }))
            }
        };
        if log_hash != marker.last_hash {
            return Err(OpenError::LogRewritten {
                marker: head_marker_path(store),
                store: store.to_path_buf(),
                position,
                marker_hash: HexHash(marker.last_hash),
                log_hash: HexHash(log_hash),
            });
        }
    }
    Ok(if log_next_position == marker_next_position {
        HeadMarkerStatus::Intact
    } else {
        HeadMarkerStatus::Behind {
            marker_next_position,
            log_next_position,
        }
    })
}

/// [`check_head_marker`] for a reader, which verifies the records itself
/// afterwards: a damaged record where the comparison looks
/// ([`OpenError::Fault`], [`OpenError::Corrupt`]) leaves the status
/// [`HeadMarkerStatus::NotChecked`] instead of failing the open, so the
/// reader's verification names the damaged position. A log shorter than
/// the marker is still refused first.
///
/// Errors: as [`check_head_marker`], but for those two.
pub fn check_head_marker_for_reader(
    store: &Path,
    marker: Option<&HeadMarkerState>,
    db: &DB,
    storage: &StorageCheck,
) -> Result<HeadMarkerStatus, OpenError> {
    match check_head_marker(store, marker, db, storage) {
        Err(OpenError::Fault(_) | OpenError::Corrupt { .. }) => Ok(HeadMarkerStatus::NotChecked),
        other => other,
    }
}

/// Logs what a check found that an operator should know.
pub(crate) fn warn_about(store: &Path, status: &HeadMarkerStatus) {
    match status {
        HeadMarkerStatus::Missing { .. } | HeadMarkerStatus::BufferedLoss { .. } => {
            tracing::warn!(store = %store.display(), %status, "head marker");
        }
        HeadMarkerStatus::Behind { .. } => {
            tracing::info!(store = %store.display(), %status, "head marker");
        }
        HeadMarkerStatus::NotChecked | HeadMarkerStatus::Intact | HeadMarkerStatus::Created => {}
    }
}

/// Writes `bytes` at `offset` of `file` in one positioned write.
#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(bytes, offset)
}

/// Writes `bytes` at `offset` of `file` in one positioned write.
#[cfg(windows)]
fn write_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    let mut done = 0;
    while done < bytes.len() {
        done += file.seek_write(&bytes[done..], offset + done as u64)?;
    }
    Ok(())
}

/// The writer's handle on the marker file.
pub(crate) struct HeadMarker {
    file: File,
    path: PathBuf,
    durability: Durability,
    /// The slot the next update goes to.
    next_slot: usize,
    /// When the marker was last fsynced.
    synced_at: Instant,
    /// Whether it was written since.
    dirty: bool,
}

impl HeadMarker {
    /// Replaces the marker of the store at `store` with one whose slots
    /// both hold `head`, atomically and durably: written to
    /// [`HEAD_MARKER_TEMP_FILE`], fsynced, renamed over
    /// [`HEAD_MARKER_FILE`], and the directory fsynced.
    ///
    /// Errors: [`OpenError::HeadMarkerUnwritable`] naming the file.
    pub(crate) fn create(
        store: &Path,
        head: &LogHead,
        durability: Durability,
    ) -> Result<HeadMarker, OpenError> {
        let path = head_marker_path(store);
        let temp = store.join(HEAD_MARKER_TEMP_FILE);
        let unwritable = |file: &Path| {
            let file = file.to_path_buf();
            move |source| OpenError::HeadMarkerUnwritable { file, source }
        };
        let slot = encode_slot(head, durability);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(unwritable(&temp))?;
        for _ in 0..HEAD_MARKER_SLOTS {
            file.write_all(&slot).map_err(unwritable(&temp))?;
        }
        file.sync_all().map_err(unwritable(&temp))?;
        std::fs::rename(&temp, &path).map_err(unwritable(&path))?;
        sync_dir(store).map_err(unwritable(store))?;
        Ok(HeadMarker {
            file,
            path,
            durability,
            next_slot: 0,
            synced_at: Instant::now(),
            dirty: false,
        })
    }

    /// Records `head` in the next slot with one positioned write (no
    /// fsync). Call it after the batch write that reached `head` succeeded
    /// and before anyone is told.
    pub(crate) fn record(&mut self, head: &LogHead) -> std::io::Result<()> {
        let slot = encode_slot(head, self.durability);
        let offset = (self.next_slot * HEAD_MARKER_SLOT_BYTES) as u64;
        write_at(&self.file, &slot, offset)?;
        self.next_slot = (self.next_slot + 1) % HEAD_MARKER_SLOTS;
        self.dirty = true;
        Ok(())
    }

    /// Under [`Durability::Sync`], fsyncs the marker if it was written and
    /// [`HEAD_MARKER_SYNC_INTERVAL_MS`] have passed since the last fsync.
    /// A failure is logged: the marker on disk can then only be behind the
    /// log, which is safe.
    pub(crate) fn sync_if_due(&mut self) {
        let interval = Duration::from_millis(HEAD_MARKER_SYNC_INTERVAL_MS);
        if self.durability == Durability::Sync && self.synced_at.elapsed() >= interval {
            self.sync();
        }
    }

    /// Fsyncs the marker if it was written since the last fsync (logs a
    /// failure, as [`HeadMarker::sync_if_due`]).
    pub(crate) fn sync(&mut self) {
        if !self.dirty {
            return;
        }
        match self.file.sync_data() {
            Ok(()) => {
                self.dirty = false;
                self.synced_at = Instant::now();
            }
            Err(e) => tracing::warn!(
                file = %self.path.display(),
                error = %e,
                "fsyncing the head marker failed; after a power loss it may be behind the log"
            ),
        }
    }

    /// The marker file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Fsyncs a directory, so a rename in it is durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened for fsync on this platform; the rename is
/// as durable as the file system makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_round_trips_and_any_changed_byte_invalidates_it() {
        let head = LogHead {
            next_position: 0x0102_0304_0506_0708,
            last_hash: [9u8; 32],
        };
        let slot = encode_slot(&head, Durability::Buffered);
        let state = decode_slot(&slot, 1).unwrap();
        assert_eq!(
            (
                state.next_position,
                state.last_hash,
                state.durability,
                state.slot
            ),
            (head.next_position, head.last_hash, Durability::Buffered, 1)
        );
        for at in 0..HEAD_MARKER_SLOT_BYTES {
            let mut damaged = slot;
            damaged[at] ^= 0x10;
            assert!(decode_slot(&damaged, 0).is_err(), "byte {at}");
        }
    }
}
