//! The store's table files: what the MANIFEST says is live, what an opened
//! view actually reads, and naming the file (and the log positions) behind
//! any damage RocksDB reports.
//!
//! Why this exists: a RocksDB *secondary* instance recovers its view with
//! point-in-time semantics. When a table file listed in the MANIFEST cannot
//! be opened (a damaged footer or index block), the secondary silently
//! falls back to the version from before that file was added, so the log
//! reads as shorter (or empty) and still chains perfectly. Nothing RocksDB
//! returns says so. The cross-check here catches it:
//!
//! 1. [`ManifestFiles::read`] parses the store's MANIFEST (the RocksDB log
//!    format holding `VersionEdit`s) into the set of live table files, with
//!    their column family and key range. Read it *before* a view is opened
//!    or caught up.
//! 2. After the view is opened, [`check_live_files`] reads the MANIFEST
//!    again and compares: a file live in both readings was live when the
//!    view was taken, so it must be in the view's `live_files()`. One that
//!    is not is damaged ([`DamageKind::NotInView`]) or gone
//!    ([`DamageKind::Missing`]). Files added or compacted away by a host
//!    writing meanwhile are in only one reading and are not flagged.
//! 3. After the chain walk, [`LiveFiles::check_walk`] checks that every
//!    `log` table file of the view lies inside the walked positions.
//!
//! And [`classify`] turns a RocksDB `Corruption` status (a block checksum
//! mismatch, a bad footer) into a [`FileDamage`] that names the file and,
//! for the `log` column family, the positions it holds;
//! [`verify_checksums`] reads every block of every live table file whole.
//!
//! The MANIFEST is parsed, not checksum-verified: damage to the MANIFEST
//! itself is for the store's open path to detect; here a record that does
//! not parse is reported as [`DamageKind::Manifest`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rocksdb::{ErrorKind, DB};

use super::error::{OpenError, ReadError};
use super::keys::{parse_position_key, CF_LOG};

/// Size of a block of RocksDB's log format (MANIFEST and WAL files), in
/// bytes: physical records never cross a block boundary.
pub const LOG_FORMAT_BLOCK_BYTES: usize = 32 * 1024;
/// Header of a physical record in RocksDB's log format, in bytes:
/// checksum (4), length (2), type (1).
pub const LOG_FORMAT_HEADER_BYTES: usize = 7;
/// Header of a recyclable physical record, in bytes: the plain header and
/// a 4-byte log number.
pub const LOG_FORMAT_RECYCLABLE_HEADER_BYTES: usize = 11;
/// The trailer RocksDB appends to a user key to make an internal key
/// (sequence number and value type), in bytes.
pub const INTERNAL_KEY_TRAILER_BYTES: usize = 8;
/// Times the MANIFEST is looked up again when the one `CURRENT` names
/// vanished before it could be read: a host rotating its MANIFEST replaces
/// it once per rotation, so a third miss in a row means something else.
pub const MANIFEST_READ_ATTEMPTS_MAX: usize = 3;

/// One table (SST) file of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFile {
    /// The file number (`000012.sst` is 12).
    pub number: u64,
    /// The column family it belongs to.
    pub column_family: String,
    /// Its LSM level.
    pub level: u32,
    /// Its smallest user key.
    pub first_key: Vec<u8>,
    /// Its largest user key.
    pub last_key: Vec<u8>,
}

impl TableFile {
    /// The file's name in the store directory (`000012.sst`).
    pub fn name(&self) -> String {
        table_file_name(self.number)
    }

    /// The log positions the file holds (first and last), if it belongs to
    /// the `log` column family and its bounds are position keys.
    pub fn positions(&self) -> Option<(u64, u64)> {
        if self.column_family != CF_LOG {
            return None;
        }
        Some((
            parse_position_key(&self.first_key)?,
            parse_position_key(&self.last_key)?,
        ))
    }
}

/// The name RocksDB gives table file `number`.
pub fn table_file_name(number: u64) -> String {
    format!("{number:06}.sst")
}

/// The number of a table file named like `000012.sst` (any directory part
/// is ignored); `None` for anything else.
pub fn table_file_number(name: &str) -> Option<u64> {
    let base = name.rsplit('/').next()?;
    let digits = base.strip_suffix(".sst")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What is wrong with a store file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DamageKind {
    /// RocksDB found damage while reading it (a block checksum mismatch, a
    /// bad footer); its own message follows.
    Unreadable {
        /// RocksDB's message.
        detail: String,
    },
    /// The MANIFEST lists it as live but the opened view does not read it:
    /// RocksDB could not open it and fell back to an earlier state of the
    /// store (files of its column family added with or after it are then
    /// left out too).
    NotInView {
        /// The names of the other live files the view also lacks (when
        /// RocksDB does not say which file it cannot open, the damaged one
        /// is this file or one of these).
        others: Vec<String>,
        /// Why RocksDB cannot open it, when a read-only probe of the store
        /// says so.
        reason: Option<String>,
    },
    /// The MANIFEST lists it as live but it is not on disk.
    Missing,
    /// The view lists it, but the chain walk ended before its positions.
    NotWalked {
        /// The position after the last record walked.
        walked_to: u64,
    },
    /// The MANIFEST cannot be parsed.
    Manifest {
        /// The byte offset of the record that does not parse.
        offset: u64,
        /// What is wrong with it.
        detail: String,
    },
}

impl fmt::Display for DamageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DamageKind::Unreadable { detail } => write!(f, "RocksDB cannot read it: {detail}"),
            DamageKind::NotInView { others, reason } => {
                f.write_str(
                    "the MANIFEST lists it as live but RocksDB could not open it \
                     and fell back to an earlier, shorter state of the store",
                )?;
                if !others.is_empty() {
                    write!(f, " (the view also lacks {})", others.join(", "))?;
                }
                if let Some(reason) = reason {
                    write!(f, "; RocksDB: {reason}")?;
                }
                Ok(())
            }
            DamageKind::Missing => f.write_str("the MANIFEST lists it as live but it is not on disk"),
            DamageKind::NotWalked { walked_to } => write!(
                f,
                "it holds records the chain walk never reached (the walk ended at position {walked_to})"
            ),
            DamageKind::Manifest { offset, detail } => {
                write!(f, "the record at byte offset {offset} does not parse: {detail}")
            }
        }
    }
}

/// Damage to one of the store's files, naming the file and, where known,
/// the column family and the first (and last) log position affected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FileDamage {
    /// The damaged file, if RocksDB's report named one.
    pub file: Option<PathBuf>,
    /// Its column family, if known.
    pub column_family: Option<String>,
    /// The first log position affected, if known.
    pub first_position: Option<u64>,
    /// The last log position the file holds, if known.
    pub last_position: Option<u64>,
    /// What is wrong.
    pub kind: DamageKind,
}

impl fmt::Display for FileDamage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("store damage in ")?;
        match &self.file {
            Some(file) => write!(f, "{}", file.display())?,
            None => f.write_str("an unnamed file")?,
        }
        let mut parts = Vec::new();
        if let Some(cf) = &self.column_family {
            parts.push(format!("column family {cf}"));
        }
        match (self.first_position, self.last_position) {
            (Some(a), Some(b)) => parts.push(format!("positions {a}..={b}")),
            (Some(a), None) => parts.push(format!("from position {a}")),
            _ => {}
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        write!(
            f,
            ": {}; restore the store from a backup or a replica",
            self.kind
        )
    }
}

/// [`ReadError::Damaged`] with `damage`.
fn damaged(damage: FileDamage) -> ReadError {
    ReadError::Damaged(Box::new(damage))
}

/// The live table files the store's MANIFEST describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFiles {
    /// The MANIFEST file read.
    pub manifest: PathBuf,
    /// The live table files, by number.
    pub files: BTreeMap<u64, TableFile>,
}

fn io_error(path: &Path, e: impl fmt::Display) -> ReadError {
    ReadError::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

impl ManifestFiles {
    /// Reads the MANIFEST that the store at `dir`'s `CURRENT` file names
    /// and returns the table files it lists as live.
    ///
    /// Errors: [`ReadError::Io`] if `CURRENT` or the MANIFEST cannot be
    /// read (after [`MANIFEST_READ_ATTEMPTS_MAX`] looks, as a host may be
    /// replacing it); [`ReadError::Damaged`] with [`DamageKind::Manifest`]
    /// naming the MANIFEST and the byte offset of a record that does not
    /// parse.
    pub fn read(dir: &Path) -> Result<ManifestFiles, ReadError> {
        let current = dir.join("CURRENT");
        let mut last_error = None;
        for _ in 0..MANIFEST_READ_ATTEMPTS_MAX {
            let name = std::fs::read_to_string(&current).map_err(|e| io_error(&current, e))?;
            let manifest = dir.join(name.trim_end());
            match std::fs::read(&manifest) {
                Ok(bytes) => return parse_manifest(&manifest, &bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    last_error = Some(io_error(&manifest, e));
                }
                Err(e) => return Err(io_error(&manifest, e)),
            }
        }
        Err(last_error.unwrap_or_else(|| io_error(&current, "no MANIFEST could be read")))
    }

    /// The live file with this number.
    pub fn get(&self, number: u64) -> Option<&TableFile> {
        self.files.get(&number)
    }
}

/// A cursor over a byte slice with RocksDB's varint and length-prefixed
/// encodings.
struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn varint64(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for (i, b) in self.bytes.iter().enumerate().take(10) {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.bytes = &self.bytes[i + 1..];
                return Some(value);
            }
        }
        None
    }

    fn varint32(&mut self) -> Option<u32> {
        self.varint64().and_then(|v| u32::try_from(v).ok())
    }

    fn slice(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint32()?).ok()?;
        if len > self.bytes.len() {
            return None;
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Some(head)
    }

    fn user_key(&mut self) -> Option<Vec<u8>> {
        let internal = self.slice()?;
        let len = internal.len().checked_sub(INTERNAL_KEY_TRAILER_BYTES)?;
        Some(internal[..len].to_vec())
    }
}

// `VersionEdit` tags (rocksdb/db/version_edit.h).
const TAG_COMPARATOR: u32 = 1;
const TAG_LOG_NUMBER: u32 = 2;
const TAG_NEXT_FILE_NUMBER: u32 = 3;
const TAG_LAST_SEQUENCE: u32 = 4;
const TAG_COMPACT_CURSOR: u32 = 5;
const TAG_DELETED_FILE: u32 = 6;
const TAG_NEW_FILE: u32 = 7;
const TAG_PREV_LOG_NUMBER: u32 = 9;
const TAG_MIN_LOG_NUMBER_TO_KEEP: u32 = 10;
const TAG_NEW_FILE2: u32 = 100;
const TAG_NEW_FILE3: u32 = 102;
const TAG_NEW_FILE4: u32 = 103;
const TAG_COLUMN_FAMILY: u32 = 200;
const TAG_COLUMN_FAMILY_ADD: u32 = 201;
const TAG_COLUMN_FAMILY_DROP: u32 = 202;
const TAG_MAX_COLUMN_FAMILY: u32 = 203;
const TAG_IN_ATOMIC_GROUP: u32 = 300;
/// Tags with this bit set are followed by a length-prefixed body and may
/// be skipped by readers that do not know them.
const TAG_SAFE_IGNORE_MASK: u32 = 1 << 13;
/// The safe-to-ignore tags whose body is *not* length-prefixed: the old
/// blob-file forms (a Colloquy store has no blob files) and the old
/// `kWalAddition` and `kWalDeletion` (RocksDB now writes the `2` forms).
const TAG_BLOB_FILE_ADDITION_V1: u32 = TAG_SAFE_IGNORE_MASK + 2;
const TAG_BLOB_FILE_GARBAGE_V1: u32 = TAG_SAFE_IGNORE_MASK + 3;
const TAG_WAL_ADDITION_V1: u32 = TAG_SAFE_IGNORE_MASK + 4;
const TAG_WAL_DELETION_V1: u32 = TAG_SAFE_IGNORE_MASK + 5;
/// The end of a `kNewFile4` entry's custom fields.
const NEW_FILE4_TERMINATE: u32 = 1;

/// The parts of one `VersionEdit` that decide which files are live.
#[derive(Default)]
struct Edit {
    column_family: u32,
    added: Vec<(u32, u64, Vec<u8>, Vec<u8>)>,
    deleted: Vec<u64>,
    column_family_add: Option<String>,
    column_family_drop: bool,
}

fn decode_edit(record: &[u8]) -> Result<Edit, String> {
    let mut input = Input { bytes: record };
    let mut edit = Edit::default();
    let malformed = |what: &str| format!("malformed {what} field");
    while !input.is_empty() {
        let tag = input.varint32().ok_or_else(|| malformed("tag"))?;
        match tag {
            TAG_COMPARATOR => {
                input.slice().ok_or_else(|| malformed("comparator"))?;
            }
            TAG_LOG_NUMBER
            | TAG_NEXT_FILE_NUMBER
            | TAG_LAST_SEQUENCE
            | TAG_PREV_LOG_NUMBER
            | TAG_MIN_LOG_NUMBER_TO_KEEP => {
                input.varint64().ok_or_else(|| malformed("number"))?;
            }
            TAG_MAX_COLUMN_FAMILY | TAG_IN_ATOMIC_GROUP => {
                input.varint32().ok_or_else(|| malformed("count"))?;
            }
            TAG_COMPACT_CURSOR => {
                input
                    .varint32()
                    .ok_or_else(|| malformed("compact cursor"))?;
                input
                    .user_key()
                    .ok_or_else(|| malformed("compact cursor"))?;
            }
            TAG_DELETED_FILE => {
                input.varint32().ok_or_else(|| malformed("deleted file"))?;
                let number = input.varint64().ok_or_else(|| malformed("deleted file"))?;
                edit.deleted.push(number);
            }
            TAG_NEW_FILE | TAG_NEW_FILE2 | TAG_NEW_FILE3 | TAG_NEW_FILE4 => {
                let what = || malformed("new file");
                let level = input.varint32().ok_or_else(what)?;
                let number = input.varint64().ok_or_else(what)?;
                if tag == TAG_NEW_FILE3 {
                    input.varint32().ok_or_else(what)?; // path id
                }
                input.varint64().ok_or_else(what)?; // file size
                let first = input.user_key().ok_or_else(what)?;
                let last = input.user_key().ok_or_else(what)?;
                if tag != TAG_NEW_FILE {
                    input.varint64().ok_or_else(what)?; // smallest seqno
                    input.varint64().ok_or_else(what)?; // largest seqno
                }
                if tag == TAG_NEW_FILE4 {
                    loop {
                        let custom = input.varint32().ok_or_else(what)?;
                        if custom == NEW_FILE4_TERMINATE {
                            break;
                        }
                        input.slice().ok_or_else(what)?;
                    }
                }
                edit.added.push((level, number, first, last));
            }
            TAG_COLUMN_FAMILY => {
                edit.column_family = input.varint32().ok_or_else(|| malformed("column family"))?;
            }
            TAG_COLUMN_FAMILY_ADD => {
                let name = input
                    .slice()
                    .ok_or_else(|| malformed("column family name"))?;
                edit.column_family_add = Some(String::from_utf8_lossy(name).into_owned());
            }
            TAG_COLUMN_FAMILY_DROP => edit.column_family_drop = true,
            TAG_BLOB_FILE_ADDITION_V1
            | TAG_BLOB_FILE_GARBAGE_V1
            | TAG_WAL_ADDITION_V1
            | TAG_WAL_DELETION_V1 => {
                return Err(format!("unsupported tag {tag} (an old blob or WAL form)"));
            }
            t if t & TAG_SAFE_IGNORE_MASK != 0 => {
                input.slice().ok_or_else(|| malformed("ignorable"))?;
            }
            t => return Err(format!("unknown tag {t}")),
        }
    }
    Ok(edit)
}

/// A logical record of a log-format file: the byte offset of its first
/// fragment and its bytes.
type LogRecord = (u64, Vec<u8>);

/// Splits a file in RocksDB's log format into its logical records. A
/// record cut short at the end of the file (a torn tail) ends the file, as
/// it does for RocksDB. Errors: the byte offset of a malformed record and
/// what is wrong with it.
fn log_records(bytes: &[u8]) -> Result<Vec<LogRecord>, (u64, String)> {
    let mut records = Vec::new();
    let mut partial: Option<(u64, Vec<u8>)> = None;
    let mut block_start = 0usize;
    while block_start < bytes.len() {
        let block_end = (block_start + LOG_FORMAT_BLOCK_BYTES).min(bytes.len());
        let mut at = block_start;
        while at + LOG_FORMAT_HEADER_BYTES <= block_end {
            let len = usize::from(u16::from_le_bytes([bytes[at + 4], bytes[at + 5]]));
            let kind = bytes[at + 6];
            if kind == 0 && len == 0 {
                // Zero padding or preallocated space: nothing more here.
                break;
            }
            let header = match kind {
                5..=8 | 11 | 131 => LOG_FORMAT_RECYCLABLE_HEADER_BYTES,
                _ => LOG_FORMAT_HEADER_BYTES,
            };
            let data_start = at + header;
            let data_end = data_start + len;
            if data_end > block_end {
                if data_end > bytes.len() && block_end == bytes.len() {
                    // Torn tail: the file ends inside this record.
                    return Ok(records);
                }
                return Err((at as u64, "a record runs past its block".into()));
            }
            let data = &bytes[data_start..data_end];
            let offset = at as u64;
            match kind {
                1 | 5 => records.push((offset, data.to_vec())),
                2 | 6 => partial = Some((offset, data.to_vec())),
                3 | 7 => match partial.as_mut() {
                    Some((_, buf)) => buf.extend_from_slice(data),
                    None => return Err((offset, "a middle fragment with no first".into())),
                },
                4 | 8 => match partial.take() {
                    Some((first, mut buf)) => {
                        buf.extend_from_slice(data);
                        records.push((first, buf));
                    }
                    None => return Err((offset, "a last fragment with no first".into())),
                },
                // Compression, timestamp-size and predecessor-WAL metadata.
                9..=11 | 130 | 131 => {}
                other => return Err((offset, format!("unknown record type {other}"))),
            }
            at = data_end;
        }
        block_start += LOG_FORMAT_BLOCK_BYTES;
    }
    Ok(records)
}

fn parse_manifest(path: &Path, bytes: &[u8]) -> Result<ManifestFiles, ReadError> {
    let damage = |offset: u64, detail: String| {
        damaged(FileDamage {
            file: Some(path.to_path_buf()),
            column_family: None,
            first_position: None,
            last_position: None,
            kind: DamageKind::Manifest { offset, detail },
        })
    };
    let records = log_records(bytes).map_err(|(offset, detail)| damage(offset, detail))?;
    let mut names: BTreeMap<u32, String> = BTreeMap::from([(0, "default".to_string())]);
    // File number -> (column family id, level, first key, last key).
    let mut live: BTreeMap<u64, (u32, u32, Vec<u8>, Vec<u8>)> = BTreeMap::new();
    for (offset, record) in records {
        let edit = decode_edit(&record).map_err(|detail| damage(offset, detail))?;
        let cf = edit.column_family;
        if let Some(name) = edit.column_family_add {
            names.insert(cf, name);
        }
        if edit.column_family_drop {
            names.remove(&cf);
            live.retain(|_, (c, ..)| *c != cf);
            continue;
        }
        for number in edit.deleted {
            live.remove(&number);
        }
        for (level, number, first, last) in edit.added {
            live.insert(number, (cf, level, first, last));
        }
    }
    let files = live
        .into_iter()
        .map(|(number, (cf, level, first_key, last_key))| {
            let column_family = names.get(&cf).cloned().unwrap_or_else(|| format!("#{cf}"));
            let file = TableFile {
                number,
                column_family,
                level,
                first_key,
                last_key,
            };
            (number, file)
        })
        .collect();
    Ok(ManifestFiles {
        manifest: path.to_path_buf(),
        files,
    })
}

/// The table files an opened view reads (RocksDB's `live_files()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFiles {
    /// The store directory.
    pub dir: PathBuf,
    /// The files, by number.
    pub files: BTreeMap<u64, TableFile>,
}

impl LiveFiles {
    /// The view's live table files.
    ///
    /// Errors: [`ReadError::Storage`] if RocksDB cannot list them.
    pub fn of(db: &DB) -> Result<LiveFiles, ReadError> {
        let mut files = BTreeMap::new();
        for f in db.live_files()? {
            let Some(number) = table_file_number(&f.name) else {
                continue;
            };
            let level = u32::try_from(f.level).unwrap_or(0);
            files.insert(
                number,
                TableFile {
                    number,
                    column_family: f.column_family_name,
                    level,
                    first_key: f.start_key.unwrap_or_default(),
                    last_key: f.end_key.unwrap_or_default(),
                },
            );
        }
        Ok(LiveFiles {
            dir: db.path().to_path_buf(),
            files,
        })
    }

    /// Checks that every `log` table file of the view lies inside the
    /// positions a chain walk covered (`0..next_position`): a file the walk
    /// never reached means records were skipped.
    ///
    /// Errors: [`ReadError::Damaged`] with [`DamageKind::NotWalked`] naming
    /// the file with the lowest such position.
    pub fn check_walk(&self, next_position: u64) -> Result<(), ReadError> {
        let skipped = self
            .files
            .values()
            .filter_map(|f| f.positions().map(|p| (p, f)))
            .filter(|((_, last), _)| *last >= next_position)
            .min_by_key(|((first, _), _)| *first);
        match skipped {
            None => Ok(()),
            Some(((first, last), f)) => Err(damaged(FileDamage {
                file: Some(self.dir.join(f.name())),
                column_family: Some(f.column_family.clone()),
                first_position: Some(first.max(next_position)),
                last_position: Some(last),
                kind: DamageKind::NotWalked {
                    walked_to: next_position,
                },
            })),
        }
    }
}

/// Compares a view with the MANIFEST: every table file of a column family
/// the view opened, listed as live both in `before` (read before the view
/// was opened or last caught up) and in the MANIFEST now, must be in the
/// view. Files of column families the view did not open (a host's own,
/// beside the log's) are not its to hold, so they are not compared.
/// Returns the view's files.
///
/// Errors: [`ReadError::Damaged`] naming the first such file not in the
/// view (by log position, then by file number), as
/// [`DamageKind::Missing`] if it is gone from disk or
/// [`DamageKind::NotInView`] if RocksDB could not open it; as
/// [`ManifestFiles::read`] for the second reading; [`ReadError::Storage`]
/// if RocksDB cannot list the view's files.
pub fn check_live_files(db: &DB, before: &ManifestFiles) -> Result<LiveFiles, ReadError> {
    let live = LiveFiles::of(db)?;
    let dir = db.path();
    let after = ManifestFiles::read(dir)?;
    let mut absent: Vec<&TableFile> = before
        .files
        .values()
        .filter(|f| {
            db.cf_handle(&f.column_family).is_some()
                && after.files.contains_key(&f.number)
                && !live.files.contains_key(&f.number)
        })
        .collect();
    absent.sort_by_key(|f| (f.positions().map_or(u64::MAX, |p| p.0), f.number));
    if absent.is_empty() {
        return Ok(live);
    }
    // A file gone from disk explains itself; otherwise a read-only probe
    // (which, unlike a secondary, refuses a store with a table file it
    // cannot open) names the damaged one among those the view lacks.
    let missing = absent.iter().find(|f| !dir.join(f.name()).exists());
    let probed = match missing {
        Some(_) => None,
        None => probe_read_only(dir).and_then(|message| {
            let (_, number) = named_table_file(&message)?;
            let file = absent.iter().find(|f| f.number == number)?;
            Some((*file, message))
        }),
    };
    let others = |chosen: &TableFile| {
        absent
            .iter()
            .filter(|f| f.number != chosen.number)
            .map(|f| f.name())
            .collect::<Vec<_>>()
    };
    let (first, kind) = match (missing, probed) {
        (Some(file), _) => (*file, DamageKind::Missing),
        (None, Some((file, reason))) => (
            file,
            DamageKind::NotInView {
                others: others(file),
                reason: Some(reason),
            },
        ),
        (None, None) => (
            absent[0],
            DamageKind::NotInView {
                others: others(absent[0]),
                reason: None,
            },
        ),
    };
    let path = dir.join(first.name());
    let positions = first.positions();
    Err(damaged(FileDamage {
        file: Some(path),
        column_family: Some(first.column_family.clone()),
        first_position: positions.map(|p| p.0),
        last_position: positions.map(|p| p.1),
        kind,
    }))
}

/// Finds a table file RocksDB cannot open when its own report does not
/// name one: opens the store at `dir` as a throwaway secondary instance
/// (its own files go to `scratch`, which must be an empty directory the
/// caller removes), which leaves such a file out of its view, and compares
/// the view with the MANIFEST as [`check_live_files`] does. `reason` is
/// RocksDB's unnamed report, kept in the damage found. `None` if the
/// secondary cannot be opened or its view lacks nothing.
pub fn locate_unopenable(dir: &Path, scratch: &Path, reason: &str) -> Option<FileDamage> {
    let before = ManifestFiles::read(dir).ok()?;
    let mut options = rocksdb::Options::default();
    // Required for secondary instances: keep every table file open.
    options.set_max_open_files(-1);
    let names = DB::list_cf(&options, dir).ok()?;
    let db = DB::open_cf_as_secondary(&options, dir, scratch, names).ok()?;
    match check_live_files(&db, &before) {
        Err(ReadError::Damaged(mut damage)) => {
            if let DamageKind::NotInView {
                reason: r @ None, ..
            } = &mut damage.kind
            {
                *r = Some(reason.to_string());
            }
            Some(*damage)
        }
        _ => None,
    }
}

/// Opens the store at `dir` read-only (a second, throwaway instance that
/// never writes) and returns RocksDB's message if that fails: unlike a
/// secondary, a read-only open loads every table file and refuses the
/// store when one cannot be opened, naming it.
fn probe_read_only(dir: &Path) -> Option<String> {
    let options = rocksdb::Options::default();
    let names = DB::list_cf(&options, dir).ok()?;
    match DB::open_cf_for_read_only(&options, dir, names, false) {
        Ok(_) => None,
        Err(e) => Some(e.into_string()),
    }
}

/// The file a RocksDB message names, if it names a table file: the first
/// word ending in `.sst` (trailing punctuation removed).
fn named_table_file(message: &str) -> Option<(PathBuf, u64)> {
    message.split_whitespace().find_map(|word| {
        let word = word.trim_end_matches([',', ';', ':', ')']);
        table_file_number(word).map(|n| (PathBuf::from(word), n))
    })
}

/// Turns a RocksDB message reporting corruption into the damage it names:
/// the table file, its column family and, for the `log` column family, the
/// positions from `position` (where a walk had got to, if known) to the
/// file's last one. `files` looks a file number up (the view's files or
/// the MANIFEST's). `None` if the message is not a corruption report.
pub fn damage_from_message(
    message: &str,
    files: &dyn Fn(u64) -> Option<TableFile>,
    position: Option<u64>,
) -> Option<FileDamage> {
    let is_corruption = message.starts_with("Corruption")
        || message.contains(": Corruption:")
        || message.contains(" Corruption: ");
    if !is_corruption {
        return None;
    }
    let named = named_table_file(message);
    let file = named.as_ref().and_then(|(_, n)| files(*n));
    let positions = file.as_ref().and_then(TableFile::positions);
    let first_position = match (positions, position) {
        (Some((first, last)), Some(p)) if p >= first && p <= last => Some(p),
        (Some((first, _)), _) => Some(first),
        (None, p) => p,
    };
    Some(FileDamage {
        file: named.map(|(path, _)| path),
        column_family: file.as_ref().map(|f| f.column_family.clone()),
        first_position,
        last_position: positions.map(|p| p.1),
        kind: DamageKind::Unreadable {
            detail: message.to_string(),
        },
    })
}

/// Classifies a RocksDB error met while reading through `db`: corruption
/// becomes [`ReadError::Damaged`] naming the file (looked up among the
/// view's live files) and the first affected position (`position`, where
/// the read had got to, if known); anything else stays
/// [`ReadError::Storage`].
pub fn classify(db: &DB, error: rocksdb::Error, position: Option<u64>) -> ReadError {
    if error.kind() != ErrorKind::Corruption {
        return ReadError::Storage(error);
    }
    let live = LiveFiles::of(db).ok();
    let lookup = |n: u64| live.as_ref().and_then(|l| l.files.get(&n).cloned());
    match damage_from_message(error.as_ref(), &lookup, position) {
        Some(damage) => damaged(damage),
        None => ReadError::Storage(error),
    }
}

/// Classifies a RocksDB error from opening a store: corruption becomes
/// [`OpenError::Damaged`] naming the table file (looked up in `manifest`,
/// read before the open, for its column family and positions); anything
/// else stays [`OpenError::Storage`].
pub fn classify_open(error: rocksdb::Error, manifest: Option<&ManifestFiles>) -> OpenError {
    let lookup = |n: u64| manifest.and_then(|m| m.get(n).cloned());
    match damage_from_message(error.as_ref(), &lookup, None) {
        Some(damage) => OpenError::Damaged(Box::new(damage)),
        None => OpenError::Storage(error),
    }
}

/// Reads every block of every live table file of the view whole — data,
/// index, filter and meta blocks, in every column family — and checks its
/// checksum (RocksDB's `DB::VerifyChecksum`, which the Rust binding does
/// not wrap). Iterating cannot replace it: RocksDB never reads a file's
/// filter block while iterating, and silently ignores a filter block that
/// fails its checksum, so a flipped bit there would go unnoticed.
///
/// Errors: [`ReadError::Damaged`] naming the damaged file (and, for the
/// log, the positions it holds); [`ReadError::Io`] naming the store for
/// any other failure RocksDB reports.
pub fn verify_checksums(db: &DB) -> Result<(), ReadError> {
    use rocksdb::AsRawPtr;
    let mut error: *mut std::ffi::c_char = std::ptr::null_mut();
    // SAFETY: `db` is a live handle for the whole call; the C API either
    // leaves `error` null or sets it to a NUL-terminated string allocated
    // with malloc, which is copied and then freed with `rocksdb_free`
    // exactly once below.
    unsafe { librocksdb_sys::rocksdb_verify_checksum(db.as_raw_ptr(), &mut error) };
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: as above: a valid C string, freed once and not used after.
    let message = unsafe {
        let text = std::ffi::CStr::from_ptr(error)
            .to_string_lossy()
            .into_owned();
        librocksdb_sys::rocksdb_free(error.cast());
        text
    };
    let live = LiveFiles::of(db).ok();
    let lookup = |n: u64| live.as_ref().and_then(|l| l.files.get(&n).cloned());
    Err(match damage_from_message(&message, &lookup, None) {
        Some(damage) => damaged(damage),
        None => io_error(db.path(), message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_file_names_round_trip() {
        assert_eq!(table_file_name(12), "000012.sst");
        assert_eq!(table_file_number("/data/000012.sst"), Some(12));
        assert_eq!(table_file_number("/000012.sst"), Some(12));
        assert_eq!(table_file_number("MANIFEST-000005"), None);
        assert_eq!(table_file_number(".sst"), None);
        assert_eq!(table_file_number("12a.sst"), None);
    }

    #[test]
    fn a_checksum_mismatch_names_the_file_and_the_positions() {
        let file = TableFile {
            number: 12,
            column_family: CF_LOG.into(),
            level: 0,
            first_key: 100u64.to_be_bytes().to_vec(),
            last_key: 199u64.to_be_bytes().to_vec(),
        };
        let message = "Corruption: block checksum mismatch: stored = 1, computed = 2, \
                       type = 4  in /data/000012.sst offset 4096 size 3900, block_type = data";
        let lookup = |n: u64| (n == 12).then(|| file.clone());
        let damage = damage_from_message(message, &lookup, Some(150)).unwrap();
        assert_eq!(damage.file, Some(PathBuf::from("/data/000012.sst")));
        assert_eq!(damage.column_family.as_deref(), Some(CF_LOG));
        assert_eq!(damage.first_position, Some(150));
        assert_eq!(damage.last_position, Some(199));
        let text = damage.to_string();
        assert!(
            text.contains("000012.sst") && text.contains("positions 150..=199"),
            "{text}"
        );
        // A position outside the file is not the file's first affected one.
        let damage = damage_from_message(message, &lookup, Some(7)).unwrap();
        assert_eq!(damage.first_position, Some(100));
        assert!(damage_from_message("IO error: no space", &lookup, None).is_none());
    }

    #[test]
    fn a_torn_manifest_tail_ends_the_records() {
        // One full record, then a header promising more than the file has.
        let mut bytes = vec![0, 0, 0, 0, 2, 0, 1, 2, 5];
        bytes.extend_from_slice(&[0, 0, 0, 0, 50, 0, 1, 9]);
        let records = log_records(&bytes).unwrap();
        assert_eq!(records, vec![(0, vec![2, 5])]);
    }
}
