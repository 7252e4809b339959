//! [`LogReader`]: a read-only or secondary view of a stored log, for tools
//! that must work while a host has the store open.
//!
//! Besides reads and [`LogReader::verify`], it hands tools the walks behind
//! verification ([`LogReader::scan`], [`LogReader::par_scan`], see
//! [`super::scan`]) and the check of the view's table files against the
//! MANIFEST ([`LogReader::check_files`]), so a tool such as replay-tool
//! never opens RocksDB or decodes a record itself.

use std::ops::Range;
use std::path::{Path, PathBuf};

use events::{ConversationSid, ServiceSid};
use rocksdb::{Options, DB};

use super::error::{OpenError, ReadError};
use super::files::{self, ManifestFiles};
use super::head_marker;
use super::keys::LOG_COLUMN_FAMILIES;
use super::read::{self, LogHead, RecordIter, StreamIter, VerifyReport};
use super::scan::{self, Accumulator, ScanOptions, SeqScan};
use super::storage::{self, StorageCheck};
use parking_lot::Mutex;

/// How a [`LogReader`] is attached to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderMode {
    /// RocksDB read-only mode: a fixed view of the store as it was when
    /// opened (files plus write-ahead log). Safe on a closed store; on a
    /// store a host is writing, prefer [`ReaderMode::Secondary`].
    ReadOnly,
    /// A RocksDB secondary instance: follows a live primary, refreshed by
    /// [`LogReader::catch_up`]. Keeps its own info log in the given
    /// directory.
    Secondary(PathBuf),
}

/// A read-only view of a stored log: reading, stream reads and
/// verification, without a writer and without taking the store's lock.
pub struct LogReader {
    db: DB,
    mode: ReaderMode,
    storage_check: StorageCheck,
    /// The MANIFEST's live files as read just before the view was opened
    /// or last caught up (or why they could not be read), for
    /// [`LogReader::verify`]'s file cross-check.
    before: Mutex<Result<ManifestFiles, ReadError>>,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("path", &self.db.path())
            .field("mode", &self.mode)
            .finish()
    }
}

/// Which column families a [`LogReader`] opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderFamilies {
    /// The log's own ([`LOG_COLUMN_FAMILIES`]).
    Log,
    /// Every column family the store has (the log's must be among them),
    /// so a tool can read a host's other column families (its read models)
    /// from the same view through [`LogReader::db`].
    AllPresent,
}

/// The column families to open at `path`, or why the store is not a log.
fn column_families(
    options: &Options,
    path: &Path,
    families: ReaderFamilies,
) -> Result<Vec<String>, OpenError> {
    let existing = DB::list_cf(options, path).map_err(|e| storage::open_error(path, e, None))?;
    for name in LOG_COLUMN_FAMILIES {
        if !existing.iter().any(|e| e == name) {
            return Err(OpenError::MissingColumnFamily(name));
        }
    }
    Ok(match families {
        ReaderFamilies::Log => LOG_COLUMN_FAMILIES.iter().map(|n| n.to_string()).collect(),
        ReaderFamilies::AllPresent => existing,
    })
}

impl LogReader {
    /// Opens the store at `path` in RocksDB read-only mode, with the
    /// engine's recovery semantics: the WAL and MANIFEST files are checked
    /// first ([`super::storage::check_log_files`]; a torn tail is reported
    /// by [`LogReader::storage_check`] and left out of the view, as the
    /// engine's open drops it) and the options are
    /// [`super::storage::db_options`]. The records themselves are not
    /// verified at open; call [`LogReader::verify`].
    ///
    /// The head marker is read before the store is opened and compared with
    /// the view's head ([`super::head_marker::check_head_marker_for_reader`];
    /// the outcome is in [`StorageCheck::head_marker`]). Nothing is
    /// written: a missing or outdated marker is reported, not repaired, and
    /// a damaged record where the comparison looks is left to
    /// [`LogReader::verify`].
    ///
    /// Errors: [`OpenError::Storage`] if there is no RocksDB store at
    /// `path` or it cannot be read; [`OpenError::MissingColumnFamily`] if it
    /// is not a Colloquy log; [`OpenError::Damaged`] if RocksDB refuses it
    /// because a table file is damaged, or reports one damaged while the
    /// head is compared with the marker (naming the file and, for the log,
    /// the positions it holds); [`OpenError::LogFileDamaged`],
    /// [`OpenError::LogFileUnreadable`], [`OpenError::StoreDamaged`],
    /// [`OpenError::AcknowledgedRecordsMissing`],
    /// [`OpenError::LogRewritten`] and [`OpenError::HeadMarkerDamaged`] as
    /// for [`super::EventLog::open`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open(path, ReaderMode::ReadOnly, ReaderFamilies::Log)
    }

    /// Opens the store at `path` as a RocksDB secondary instance, keeping
    /// the secondary's own files in `secondary_path` (created if missing).
    /// Works while a host has the store open for writing; the view is as of
    /// the open (and of each [`LogReader::catch_up`]).
    ///
    /// The same checks and options as [`LogReader::open_read_only`]. The
    /// head marker is read before the store is opened and compared after
    /// the first catch-up: a live writer updates its marker only once a
    /// batch is in the WAL, so a running host never makes the view look
    /// short. Later [`LogReader::catch_up`]s are not compared again.
    ///
    /// Errors: as [`LogReader::open_read_only`], plus [`OpenError::Io`] if
    /// `secondary_path` cannot be created.
    pub fn open_secondary(
        path: impl AsRef<Path>,
        secondary_path: impl AsRef<Path>,
    ) -> Result<Self, OpenError> {
        let mode = ReaderMode::Secondary(secondary_path.as_ref().to_path_buf());
        Self::open(path, mode, ReaderFamilies::Log)
    }

    /// Opens the store at `path` attached as `mode`
    /// ([`LogReader::open_read_only`], [`LogReader::open_secondary`]), with
    /// the column families `families` names.
    ///
    /// Errors: as [`LogReader::open_secondary`].
    pub fn open(
        path: impl AsRef<Path>,
        mode: ReaderMode,
        families: ReaderFamilies,
    ) -> Result<Self, OpenError> {
        let path = path.as_ref();
        let mut options = storage::db_options();
        if let ReaderMode::Secondary(secondary_path) = &mode {
            std::fs::create_dir_all(secondary_path).map_err(OpenError::Io)?;
            // Required for secondary instances: keep every table file open.
            options.set_max_open_files(-1);
        }
        // Before the store is opened (and caught up with): a live writer
        // updates the marker only after its batch is in the WAL, so the
        // view is never behind what was read here.
        let marker = head_marker::read_head_marker(path)?;
        // Before anything of RocksDB reads the MANIFEST (listing the
        // column families does).
        let mut storage_check = storage::check_log_files(path)?;
        let names = column_families(&options, path, families)?;
        let before = ManifestFiles::read(path);
        let refused = |e| storage::open_error(path, e, before.as_ref().ok());
        let db = match &mode {
            ReaderMode::ReadOnly => {
                DB::open_cf_for_read_only(&options, path, &names, false).map_err(refused)?
            }
            ReaderMode::Secondary(secondary_path) => {
                let db = DB::open_cf_as_secondary(&options, path, secondary_path, &names)
                    .map_err(refused)?;
                db.try_catch_up_with_primary().map_err(refused)?;
                db
            }
        };
        storage_check.head_marker =
            head_marker::check_head_marker_for_reader(path, marker.as_ref(), &db, &storage_check)?;
        Ok(LogReader {
            db,
            mode,
            storage_check,
            before: Mutex::new(before),
        })
    }

    /// What the pre-open check of the WAL and MANIFEST files found, in
    /// particular a torn tail that a crash left (not part of this view).
    pub fn storage_check(&self) -> &StorageCheck {
        &self.storage_check
    }

    /// How this reader is attached.
    pub fn mode(&self) -> &ReaderMode {
        &self.mode
    }

    /// A secondary reader catches up with what the primary has written
    /// since (reading the MANIFEST's file list first, for
    /// [`LogReader::verify`]'s cross-check); a read-only reader's view is
    /// fixed, so this does nothing.
    ///
    /// Errors: [`ReadError::Storage`] if RocksDB cannot catch up.
    pub fn catch_up(&self) -> Result<(), ReadError> {
        if let ReaderMode::Secondary(_) = self.mode {
            *self.before.lock() = ManifestFiles::read(self.db.path());
            self.db.try_catch_up_with_primary()?;
        }
        Ok(())
    }

    /// The head as stored: the last record's position + 1 and its hash
    /// (the last record is decoded and its self-hash checked).
    ///
    /// Errors: [`ReadError::Fault`] if the last record is damaged,
    /// [`ReadError::Corrupt`] if the last key is malformed,
    /// [`ReadError::Storage`].
    pub fn head(&self) -> Result<LogHead, ReadError> {
        read::read_head(&self.db).map(|(head, _)| head)
    }

    /// As [`super::EventLog::read_range`].
    pub fn read_range(&self, range: Range<u64>) -> RecordIter<'_> {
        RecordIter::new(&self.db, range)
    }

    /// As [`super::EventLog::read_stream`].
    pub fn read_stream(
        &self,
        service: ServiceSid,
        conversation: Option<ConversationSid>,
        from_position: u64,
    ) -> StreamIter<'_> {
        StreamIter::new(&self.db, service, conversation, from_position)
    }

    /// As [`super::EventLog::stream_version`].
    pub fn stream_version(
        &self,
        service: ServiceSid,
        conversation: Option<ConversationSid>,
    ) -> Result<u64, ReadError> {
        read::stream_version(&self.db, &service, conversation.as_ref())
    }

    /// As [`super::EventLog::verify`], on the view as of the open (or the
    /// last [`LogReader::catch_up`]): the file cross-check compares it with
    /// the MANIFEST as read just before then and as it is now, so a table
    /// file RocksDB could not open (and silently left out of the view) is
    /// reported instead of a shorter log.
    ///
    /// Errors: as [`super::EventLog::verify`]; [`ReadError::Io`] also when
    /// the MANIFEST could not be read at the open.
    pub fn verify(&self) -> Result<VerifyReport, ReadError> {
        self.verify_with(&ScanOptions::default(), &mut |_| {})
    }

    /// [`LogReader::verify`] split as `options` says, calling
    /// `progress(records walked)` as segments finish.
    ///
    /// Errors: as [`LogReader::verify`].
    pub fn verify_with(
        &self,
        options: &ScanOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<VerifyReport, ReadError> {
        let before = self.before.lock().clone()?;
        read::verify_all(&self.db, &before, options, progress)
    }

    /// Checks the view's table files without walking the records, as a
    /// tool does before it reads anything: every table file the MANIFEST
    /// lists as live (before the open or last catch-up, and now) is in the
    /// view, and every `log` table file lies below the last stored
    /// position. So a damaged store is never read as a shorter one.
    ///
    /// Errors: [`ReadError::Damaged`] naming the file and the first
    /// position affected ([`files::check_live_files`],
    /// [`files::LiveFiles::check_walk`]); [`ReadError::Io`] if the MANIFEST
    /// cannot be read; [`ReadError::Storage`].
    pub fn check_files(&self) -> Result<(), ReadError> {
        let before = self.before.lock().clone()?;
        let live = files::check_live_files(&self.db, &before)?;
        live.check_walk(self.stored_end()?)
    }

    /// The position after the last stored position key (0 for an empty
    /// log), without decoding anything ([`scan::stored_end`]).
    ///
    /// Errors: as [`scan::stored_end`].
    pub fn stored_end(&self) -> Result<u64, ReadError> {
        scan::stored_end(&self.db)
    }

    /// An in-order walk over `range` handing out records borrowed from the
    /// iterator, with every check of the chain ([`SeqScan`]); it reads with
    /// [`scan::walk_read_options`] (readahead, no block-cache fill).
    pub fn scan(&self, range: Range<u64>) -> SeqScan<'_> {
        SeqScan::new(&self.db, range, scan::walk_read_options())
    }

    /// A parallel walk over `range` feeding per-segment accumulators
    /// ([`scan::par_scan`]).
    ///
    /// Errors: as [`scan::par_scan`].
    pub fn par_scan<A, F>(
        &self,
        range: Range<u64>,
        options: &ScanOptions,
        new_acc: F,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(VerifyReport, A), ReadError>
    where
        A: Accumulator,
        F: Fn() -> A + Sync,
    {
        scan::par_scan(&self.db, range, options, new_acc, progress)
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// The underlying RocksDB handle (read-only).
    pub fn db(&self) -> &DB {
        &self.db
    }
}
