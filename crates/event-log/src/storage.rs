//! How every store is opened: one place builds the RocksDB options, and one
//! check reads the WAL and MANIFEST files before RocksDB does.
//!
//! Every way a store is opened goes through here: [`super::EventLog::open`],
//! [`super::LogReader`] (read-only and secondary) and `replay-tool`, so they
//! all recover a store the same way.
//!
//! **Recovery mode.** [`db_options`] sets
//! `WALRecoveryMode::TolerateCorruptedTailRecords`: an *incomplete* record
//! at the end of the newest WAL (a write cut short by a crash) is dropped,
//! but a complete record that fails its checksum, anywhere, fails the open.
//! RocksDB's default, point-in-time recovery, instead stops replaying at the
//! first bad record and opens with every later, acknowledged record gone.
//! `AbsoluteConsistency` refuses torn tails too, so a store could not be
//! reopened after a crash. WALs are tracked in the MANIFEST
//! (`track_and_verify_wals_in_manifest`), so a synced WAL that is missing or
//! shorter than recorded fails the open, and `paranoid_checks` is on.
//! RocksDB never tracks the WAL it is writing, so the loss of that one (or
//! its truncation inside acknowledged records, which the recovery mode
//! takes for a torn tail) is caught outside RocksDB, by the head marker
//! ([`super::head_marker`]), whose WAL listing [`StorageCheck::wal_files`]
//! provides.
//!
//! **Pre-open check.** [`check_log_files`] walks the record headers of
//! every WAL file and of the current MANIFEST in RocksDB's log format
//! (blocks of [`LOG_BLOCK_BYTES`]; each record a [`LOG_HEADER_BYTES`]-byte
//! header of masked crc32c, little-endian length and type, then the
//! payload) and applies the same rules as the recovery mode, so damage is a
//! typed error naming the file and the byte offset. It exists because a
//! header whose type is one of the "recyclable" types (this store never
//! recycles logs) makes RocksDB 11.8's log reader spin forever
//! (facebook/rocksdb#13333): such a file is never handed to RocksDB.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rocksdb::{BlockBasedOptions, Cache, DBRecoveryMode, Options};

use super::error::{LogFileFault, OpenError};
use super::head_marker::HeadMarkerStatus;
use super::keys::{CF_COMMANDS, CF_STREAMS};

/// Write-ahead log size, in bytes, past which RocksDB flushes the column
/// families holding the oldest WAL file. The log's small column families
/// would otherwise rarely fill a memtable, pinning every WAL file and
/// making each open replay all of them.
pub const WAL_BYTES_MAX: u64 = 128 * 1024 * 1024;

/// Bloom filter density for the point-looked-up column families, in bits
/// per key (about 1% false positives).
pub const BLOOM_FILTER_BITS_PER_KEY: f64 = 10.0;

/// How long one batch write waits, in milliseconds, while RocksDB stops
/// writes (a memtable flush that cannot finish, typically on a full disk)
/// before its callers get [`super::AppendError::StorageStalled`]. Long
/// enough to ride out an ordinary flush on a slow disk (a few seconds at
/// most), short enough that a host sees a full disk as an error instead of
/// a hang.
pub const WRITE_STALL_WAIT_MAX_MS: u64 = 5_000;

/// The first pause after a stalled batch write, in milliseconds; later
/// pauses double with jitter up to the writer's cap (500 ms). Short next to
/// [`WRITE_STALL_WAIT_MAX_MS`], long enough not to spin a core while
/// RocksDB flushes.
pub const WRITE_STALL_RETRY_INTERVAL_MS: u64 = 5;

/// The block size of RocksDB's log format (WAL and MANIFEST files), in
/// bytes. A record never straddles a block; after damage a reader resumes
/// at the next block.
pub const LOG_BLOCK_BYTES: u64 = 32 * 1024;

/// The size of a log record header, in bytes: masked crc32c (4), payload
/// length (2, little-endian), record type (1).
pub const LOG_HEADER_BYTES: u64 = 7;

/// RocksDB's crc mask constant (`crc32c::kMaskDelta` in RocksDB): stored
/// checksums are rotated and offset by it, so a checksum of data that holds
/// checksums does not degenerate.
const CRC_MASK_DELTA: u32 = 0xa282_ead8;

// Record types of RocksDB's log format (db/log_format.h).
const TYPE_ZERO: u8 = 0;
const TYPE_FULL: u8 = 1;
const TYPE_FIRST: u8 = 2;
const TYPE_MIDDLE: u8 = 3;
const TYPE_LAST: u8 = 4;
const TYPE_SET_COMPRESSION: u8 = 9;
const TYPE_TIMESTAMP_SIZE: u8 = 10;
const TYPE_RECYCLABLE_TIMESTAMP_SIZE: u8 = 11;
const TYPE_PREDECESSOR_WAL_INFO: u8 = 130;
const TYPE_RECYCLABLE_PREDECESSOR_WAL_INFO: u8 = 131;
/// Unknown record types with this bit set are skipped by RocksDB.
const TYPE_SAFE_TO_IGNORE_BIT: u8 = 0x80;

/// The RocksDB options every open of a store starts from (the engine's,
/// [`super::LogReader`]'s and `replay-tool`'s): the recovery mode, WAL
/// tracking and paranoid checks described in the module docs, and the WAL
/// size cap. The caller adds what is particular to its open (creating the
/// store, `max_open_files` for a secondary).
pub fn db_options() -> Options {
    let mut options = Options::default();
    options.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
    options.set_track_and_verify_wals_in_manifest(true);
    options.set_paranoid_checks(true);
    options.set_max_total_wal_size(WAL_BYTES_MAX);
    options
}

/// The size of the whole-key Bloom filter of a [`CF_COMMANDS`] memtable, as
/// a fraction of the memtable's size (RocksDB caps it at 0.25). The writer
/// looks up every command id, and a fresh one is absent: the filter turns
/// that miss into a few bit probes instead of a walk down the memtable's
/// skiplist. An entry is about 70 bytes of key and value plus skiplist
/// overhead, so 2% of the memtable gives about 10 bits per entry (about 1%
/// false positives), as [`BLOOM_FILTER_BITS_PER_KEY`] does for table files.
pub const MEMTABLE_BLOOM_RATIO: f64 = 0.02;

/// Per-column-family options. The writer looks up every new command id and
/// stream id, and a new command id is almost always absent: a Bloom filter
/// spares those misses a probe of every table file, and for
/// [`CF_COMMANDS`] a whole-key Bloom filter in the memtable
/// ([`MEMTABLE_BLOOM_RATIO`]) spares them the skiplist walk too. (Stream
/// versions are read once per open and then held by the writer, so
/// [`CF_STREAMS`] needs no memtable filter.) Every column family's blocks
/// go to `block_cache`, the one cache the store's column families share
/// ([`super::LogOptions::block_cache_bytes`]).
pub fn column_family_options(name: &str, block_cache: &Cache) -> Options {
    let mut options = Options::default();
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(block_cache);
    if name == CF_COMMANDS || name == CF_STREAMS {
        table.set_bloom_filter(BLOOM_FILTER_BITS_PER_KEY, false);
    }
    options.set_block_based_table_factory(&table);
    if name == CF_COMMANDS {
        options.set_memtable_whole_key_filtering(true);
        options.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO);
    }
    options
}

/// Maps an error of RocksDB's open: a damaged table file becomes
/// [`OpenError::Damaged`] naming the file (and, with `manifest`, the log
/// positions it holds); other damage RocksDB itself found (a WAL the
/// MANIFEST tracks is missing or short, a checksum fails) becomes
/// [`OpenError::StoreDamaged`] naming the store; anything else
/// [`OpenError::Storage`].
pub fn open_error(
    path: &Path,
    error: rocksdb::Error,
    manifest: Option<&super::files::ManifestFiles>,
) -> OpenError {
    // A damaged table file is named with its positions; when RocksDB's
    // message names none ("properties unsorted"), a throwaway secondary
    // instance finds the file it leaves out; damage that is no table file
    // (a missing or short WAL) names the store.
    let detail = error.clone().into_string();
    match super::files::classify_open(error, manifest) {
        OpenError::Damaged(damage) if damage.file.is_none() => {
            match locate_damaged_table(path, &detail) {
                Some(located) => OpenError::Damaged(Box::new(located)),
                None => OpenError::StoreDamaged {
                    path: path.to_path_buf(),
                    detail,
                },
            }
        }
        OpenError::Storage(error) if error.kind() == rocksdb::ErrorKind::Corruption => {
            OpenError::StoreDamaged {
                path: path.to_path_buf(),
                detail,
            }
        }
        other => other,
    }
}

/// The damaged table file of the store at `path` that RocksDB refused
/// without naming it, found by a throwaway secondary instance
/// ([`super::files::locate_unopenable`]) whose own files go to a fresh
/// directory under the system's temporary directory, removed afterwards.
/// `None` if it cannot tell.
fn locate_damaged_table(path: &Path, reason: &str) -> Option<super::files::FileDamage> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let scratch =
        std::env::temp_dir().join(format!("colloquy-probe-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&scratch).ok()?;
    let located = super::files::locate_unopenable(path, &scratch, reason);
    let _ = std::fs::remove_dir_all(&scratch);
    located
}

/// Which log file a torn tail is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFileKind {
    /// A write-ahead log file (`NNNNNN.log`).
    Wal,
    /// The current MANIFEST.
    Manifest,
}

impl fmt::Display for LogFileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFileKind::Wal => "WAL",
            LogFileKind::Manifest => "MANIFEST",
        })
    }
}

/// What a torn tail holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TornKind {
    /// The file ends inside a record header.
    Header {
        /// Header bytes present.
        present: u64,
    },
    /// The file ends inside a record's payload.
    Record {
        /// The payload length the header declares, in bytes.
        declared: u64,
        /// Payload bytes present.
        present: u64,
    },
    /// The file ends after the first fragments of a record that spans
    /// blocks, before its last fragment.
    Fragments {
        /// Intact fragments present.
        fragments: u32,
    },
}

impl fmt::Display for TornKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TornKind::Header { present } => write!(
                f,
                "an incomplete record header ({present} of {LOG_HEADER_BYTES} bytes)"
            ),
            TornKind::Record { declared, present } => write!(
                f,
                "an incomplete record ({present} of its {declared} payload bytes)"
            ),
            TornKind::Fragments { fragments } => write!(
                f,
                "the first {fragments} fragment(s) of a record whose last fragment was never written"
            ),
        }
    }
}

/// The end of a log file left by a write that a crash cut short: an
/// incomplete record after the last intact one. Recovery drops it, as
/// RocksDB does; it was never acknowledged as durable (a synced write
/// returns only once the whole record is on disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The file.
    pub file: PathBuf,
    /// Whether it is a WAL or the MANIFEST.
    pub kind: LogFileKind,
    /// Byte offset where the intact records end and the torn write begins.
    pub offset: u64,
    /// Bytes from `offset` to the end of the file.
    pub bytes: u64,
    /// What those bytes hold.
    pub torn: TornKind,
}

impl fmt::Display for TornTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} has a torn tail: {} bytes from byte offset {} hold {}; recovery drops them \
             (a write cut short by a crash, never acknowledged as durable)",
            self.kind,
            self.file.display(),
            self.bytes,
            self.offset,
            self.torn
        )
    }
}

/// What [`check_log_files`] found: how much it read, and the torn tails
/// that recovery drops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageCheck {
    /// WAL and MANIFEST files read.
    pub files_checked: usize,
    /// Bytes read from them.
    pub bytes_checked: u64,
    /// Torn tails: at most one in the newest WAL and one in the current
    /// MANIFEST.
    pub torn_tails: Vec<TornTail>,
    /// The WAL files found, oldest first, before RocksDB recovered the
    /// store (recovery may replace them).
    pub wal_files: Vec<PathBuf>,
    /// How the log's head compared with the head marker, once the store
    /// was opened ([`super::head_marker::check_head_marker`]);
    /// [`HeadMarkerStatus::NotChecked`] from [`check_log_files`] alone.
    pub head_marker: HeadMarkerStatus,
}

impl fmt::Display for StorageCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} WAL/MANIFEST file(s), {} bytes: ",
            self.files_checked, self.bytes_checked
        )?;
        if self.torn_tails.is_empty() {
            f.write_str("every record intact, no torn tail")?;
        }
        for (i, torn) in self.torn_tails.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{torn}")?;
        }
        if self.head_marker != HeadMarkerStatus::NotChecked {
            write!(f, "; {}", self.head_marker)?;
        }
        Ok(())
    }
}

/// Reads the record headers (and checksums) of every WAL file and of the
/// current MANIFEST of the store at `path`, before RocksDB reads them.
///
/// Allowed: intact records, zero-filled space after them (RocksDB skips
/// it), and a torn tail (an incomplete record at the very end) in the
/// newest WAL or the current MANIFEST, which is reported in the result.
/// A store with no `CURRENT` file (not created yet) checks nothing.
///
/// Errors: [`OpenError::LogFileDamaged`] naming the file, the byte offset
/// and the fault, for anything else: a checksum mismatch, a recyclable or
/// unknown record type, a length that overruns its block, fragments out of
/// order, or a torn tail in a WAL that is not the newest;
/// [`OpenError::LogFileUnreadable`] if a file cannot be read.
pub fn check_log_files(path: &Path) -> Result<StorageCheck, OpenError> {
    let mut report = StorageCheck::default();
    let current = path.join("CURRENT");
    if !current.is_file() {
        return Ok(report);
    }
    let unreadable = |file: &Path| {
        let file = file.to_path_buf();
        move |source| OpenError::LogFileUnreadable { file, source }
    };
    let mut wals: Vec<(u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(path).map_err(unreadable(path))? {
        let entry = entry.map_err(unreadable(path))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(number) = name
            .strip_suffix(".log")
            .and_then(|n| n.parse::<u64>().ok())
        {
            wals.push((number, entry.path()));
        }
    }
    wals.sort();
    report.wal_files = wals.iter().map(|(_, p)| p.clone()).collect();
    let manifest_name = std::fs::read_to_string(&current).map_err(unreadable(&current))?;
    let manifest = path.join(manifest_name.trim_end());
    let newest = wals.last().map(|(n, _)| *n);
    let files = wals
        .iter()
        .map(|(n, p)| (p.clone(), LogFileKind::Wal, Some(*n) == newest))
        .chain(std::iter::once((manifest, LogFileKind::Manifest, true)));
    for (file, kind, may_be_torn) in files {
        let (bytes, torn) = match check_file(&file) {
            Ok(found) => found,
            // A file deleted since the listing became obsolete meanwhile
            // (a live host flushed a WAL or rolled the MANIFEST): nothing
            // left to check. (A MANIFEST that CURRENT names but that is
            // missing fails RocksDB's own open.)
            Err(CheckError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(CheckError::Io(source)) => {
                return Err(OpenError::LogFileUnreadable { file, source })
            }
            Err(CheckError::Fault { offset, fault }) => {
                return Err(OpenError::LogFileDamaged {
                    file,
                    offset,
                    fault,
                })
            }
        };
        report.files_checked += 1;
        report.bytes_checked += bytes;
        if let Some((offset, torn)) = torn {
            if !may_be_torn {
                return Err(OpenError::LogFileDamaged {
                    file,
                    offset,
                    fault: LogFileFault::TornBeforeNewest,
                });
            }
            report.torn_tails.push(TornTail {
                file,
                kind,
                offset,
                bytes: bytes - offset,
                torn,
            });
        }
    }
    Ok(report)
}

/// Why one file failed the check.
enum CheckError {
    Io(std::io::Error),
    Fault { offset: u64, fault: LogFileFault },
}

impl From<std::io::Error> for CheckError {
    fn from(e: std::io::Error) -> Self {
        CheckError::Io(e)
    }
}

fn fault(offset: u64, fault: LogFileFault) -> CheckError {
    CheckError::Fault { offset, fault }
}

/// RocksDB's `crc32c::Unmask`.
fn unmask(masked: u32) -> u32 {
    let rotated = masked.wrapping_sub(CRC_MASK_DELTA);
    rotated.rotate_right(17)
}

fn is_recyclable(kind: u8) -> bool {
    matches!(kind, 5..=8)
        || kind == TYPE_RECYCLABLE_TIMESTAMP_SIZE
        || kind == TYPE_RECYCLABLE_PREDECESSOR_WAL_INFO
}

/// Walks one file block by block, as RocksDB's log reader does under
/// `TolerateCorruptedTailRecords`. Returns the bytes read and the torn
/// tail, if the file ends in one (its offset and what it holds).
fn check_file(file: &Path) -> Result<(u64, Option<(u64, TornKind)>), CheckError> {
    let mut handle = File::open(file)?;
    // A live host may append while this runs: check what was there.
    let len = handle.metadata()?.len();
    let mut block = vec![0u8; LOG_BLOCK_BYTES as usize];
    // The offset of the first fragment of an unfinished record, and how
    // many fragments it has so far.
    let mut fragments: Option<(u64, u32)> = None;
    let mut block_start = 0u64;
    while block_start < len {
        let block_len = (len - block_start).min(LOG_BLOCK_BYTES);
        let data = &mut block[..block_len as usize];
        handle.read_exact(data)?;
        let last = block_start + block_len == len;
        let short = block_len < LOG_BLOCK_BYTES;
        let mut at = 0u64;
        while at < block_len {
            let offset = block_start + at;
            let left = block_len - at;
            if left < LOG_HEADER_BYTES {
                if short {
                    let start = fragments.map_or(offset, |(o, _)| o);
                    return Ok((len, Some((start, TornKind::Header { present: left }))));
                }
                // A full block's trailer: too small for a header, skipped.
                break;
            }
            let h = &data[at as usize..];
            let declared = u64::from(u16::from_le_bytes([h[4], h[5]]));
            let kind = h[6];
            if is_recyclable(kind) {
                return Err(fault(offset, LogFileFault::RecyclableType(kind)));
            }
            if LOG_HEADER_BYTES + declared > left {
                if short && last {
                    let start = fragments.map_or(offset, |(o, _)| o);
                    let torn = TornKind::Record {
                        declared,
                        present: left - LOG_HEADER_BYTES,
                    };
                    return Ok((len, Some((start, torn))));
                }
                return Err(fault(
                    offset,
                    LogFileFault::LengthPastBlock {
                        declared,
                        available: left - LOG_HEADER_BYTES,
                    },
                ));
            }
            if kind == TYPE_ZERO && declared == 0 {
                // Preallocated or zero-filled space: RocksDB skips the rest
                // of the block, but not in the middle of a record.
                if fragments.is_some() {
                    return Err(fault(offset, LogFileFault::ZeroInsideRecord));
                }
                break;
            }
            let stored = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            let payload_end = (LOG_HEADER_BYTES + declared) as usize;
            if unmask(stored) != crc32c::crc32c(&h[6..payload_end]) {
                return Err(fault(offset, LogFileFault::ChecksumMismatch));
            }
            match (kind, fragments) {
                (TYPE_FULL, None) => {}
                (TYPE_FIRST, None) => fragments = Some((offset, 1)),
                (TYPE_MIDDLE, Some((start, n))) => fragments = Some((start, n + 1)),
                (TYPE_LAST, Some(_)) => fragments = None,
                (TYPE_FULL | TYPE_FIRST | TYPE_MIDDLE | TYPE_LAST, _) => {
                    return Err(fault(offset, LogFileFault::FragmentOutOfOrder(kind)))
                }
                (TYPE_SET_COMPRESSION | TYPE_TIMESTAMP_SIZE | TYPE_PREDECESSOR_WAL_INFO, _) => {}
                (k, _) if k & TYPE_SAFE_TO_IGNORE_BIT != 0 => {}
                (k, _) => return Err(fault(offset, LogFileFault::UnknownType(k))),
            }
            at += LOG_HEADER_BYTES + declared;
        }
        block_start += block_len;
    }
    match fragments {
        Some((start, fragments)) => Ok((len, Some((start, TornKind::Fragments { fragments })))),
        None => Ok((len, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RocksDB's `crc32c::Mask`.
    fn mask(crc: u32) -> u32 {
        crc.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
    }

    /// One physical record as RocksDB's log writer lays it out.
    fn record(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut typed = vec![kind];
        typed.extend_from_slice(payload);
        let mut out = mask(crc32c::crc32c(&typed)).to_le_bytes().to_vec();
        out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        out.extend_from_slice(&typed);
        out
    }

    /// Checks `bytes` as a log file.
    fn check(bytes: &[u8]) -> Result<Option<(u64, TornKind)>, (u64, LogFileFault)> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("000001.log");
        std::fs::write(&file, bytes).unwrap();
        match check_file(&file) {
            Ok((len, torn)) => {
                assert_eq!(len, bytes.len() as u64);
                Ok(torn)
            }
            Err(CheckError::Fault { offset, fault }) => Err((offset, fault)),
            Err(CheckError::Io(e)) => panic!("{e}"),
        }
    }

    #[test]
    fn intact_records_and_a_block_trailer_pass() {
        let full = record(TYPE_FULL, b"hello");
        // Fill the first block up to 3 bytes short of its end: the writer
        // pads the trailer with zeros, and the next record starts the next
        // block.
        let filler_len = LOG_BLOCK_BYTES as usize - full.len() - 3 - LOG_HEADER_BYTES as usize;
        let mut bytes = full.clone();
        bytes.extend(record(TYPE_FULL, &vec![7u8; filler_len]));
        bytes.extend([0u8; 3]);
        assert_eq!(bytes.len() as u64, LOG_BLOCK_BYTES);
        bytes.extend(&full);
        assert_eq!(check(&bytes), Ok(None));
    }

    #[test]
    fn a_record_split_across_blocks_passes_and_its_unfinished_form_is_torn() {
        let first_len = LOG_BLOCK_BYTES as usize - LOG_HEADER_BYTES as usize;
        let mut bytes = record(TYPE_FIRST, &vec![1u8; first_len]);
        let last = record(TYPE_LAST, b"end");
        let unfinished = bytes.clone();
        bytes.extend(&last);
        assert_eq!(check(&bytes), Ok(None));
        assert_eq!(
            check(&unfinished),
            Ok(Some((0, TornKind::Fragments { fragments: 1 })))
        );
    }

    #[test]
    fn fragments_out_of_order_and_unknown_types_are_faults() {
        let full = record(TYPE_FULL, b"a");
        let mut middle_first = full.clone();
        middle_first.extend(record(TYPE_MIDDLE, b"b"));
        assert_eq!(
            check(&middle_first),
            Err((
                full.len() as u64,
                LogFileFault::FragmentOutOfOrder(TYPE_MIDDLE)
            ))
        );
        let mut unknown = full.clone();
        unknown.extend(record(50, b"c"));
        assert_eq!(
            check(&unknown),
            Err((full.len() as u64, LogFileFault::UnknownType(50)))
        );
        // Unknown types marked safe to ignore are skipped, as RocksDB does.
        let mut ignorable = full.clone();
        ignorable.extend(record(TYPE_SAFE_TO_IGNORE_BIT | 50, b"d"));
        assert_eq!(check(&ignorable), Ok(None));
    }

    #[test]
    fn zeros_inside_a_split_record_are_a_fault_and_after_records_are_not() {
        let mut zeros_after = record(TYPE_FULL, b"a");
        zeros_after.extend([0u8; 100]);
        assert_eq!(check(&zeros_after), Ok(None));
        let first = record(TYPE_FIRST, b"a");
        let mut zeros_inside = first.clone();
        zeros_inside.extend([0u8; 100]);
        assert_eq!(
            check(&zeros_inside),
            Err((first.len() as u64, LogFileFault::ZeroInsideRecord))
        );
    }

    #[test]
    fn unmask_inverts_rocksdbs_mask() {
        for crc in [0u32, 1, 0xdead_beef, u32::MAX, 0x8000_0000] {
            assert_eq!(unmask(mask(crc)), crc);
        }
    }
}
