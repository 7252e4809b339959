//! Opening a store without disturbing the host that may have it open: a
//! [`LogReader`] of every column family present, plus what an auditor is
//! told about it.
//!
//! By default the store is opened as a RocksDB secondary instance, which
//! works while a host process holds it open for writing; the secondary's
//! own files go to a fresh temporary directory that is removed afterwards
//! (or to `--secondary-dir`). `--read-only` uses RocksDB's read-only mode
//! instead (a fixed view; fine on a stopped store). Every column family
//! present is opened, so the read models can be compared with the log from
//! the same view. Nothing is ever written, and a missing store is an error,
//! never created.
//!
//! The store is opened by [`LogReader::open`], with the engine's recovery
//! semantics ([`engine_core::log::storage`]): the same RocksDB options, and
//! the same check of the WAL and MANIFEST files first. Damage there is exit 1,
//! naming the file and byte offset; a torn tail left by a crash is not an
//! error: the view leaves it out, as the engine's open drops it, and
//! [`Store::storage_check`] says what it held.
//!
//! The store's head marker ([`engine_core::log::head_marker`]) is read
//! before the store is opened and compared with the head of the view: a
//! log that ends before a marker written under `Durability::Sync` lost
//! acknowledged records, which is exit 1 naming the marker and the missing
//! positions. A running host cannot cause it: it updates its marker only
//! after the batch is in the WAL, and the view (a secondary's first catch-up
//! included) is taken after the marker was read. A loss that
//! `Durability::Buffered` allows (a power loss dropped the last buffered
//! writes) and a missing marker (an older store) are not damage: they are
//! printed as a warning on stderr, and the run goes on.
//!
//! Then the view's table files are compared with the MANIFEST
//! ([`LogReader::check_files`]) before anything is read, so that no
//! subcommand prints a shorter history of a damaged store.

use std::path::{Path, PathBuf};

use clap::Args;
use engine_core::log::keys::LOG_COLUMN_FAMILIES;
use engine_core::log::storage::{self, StorageCheck};
use engine_core::log::{ReaderFamilies, ReaderMode};
use engine_core::{HeadMarkerStatus, LogReader, OpenError, ReadError};
use projections::Table;
use rocksdb::DB;

use crate::error::ToolError;

/// Where the store is and how to attach to it.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store's directory (the host's data directory).
    #[arg(long = "data", value_name = "DIR", required_unless_present = "path")]
    pub data: Option<PathBuf>,
    /// The store's directory, given positionally (same as --data).
    #[arg(value_name = "DIR", hide = true, conflicts_with = "data")]
    pub path: Option<PathBuf>,
    /// Open with RocksDB's read-only mode instead of as a secondary
    /// instance (a fixed view; use it on a stopped store).
    #[arg(long)]
    pub read_only: bool,
    /// Directory for the secondary instance's own files (default: a fresh
    /// temporary directory, removed afterwards).
    #[arg(long, value_name = "DIR", conflicts_with = "read_only")]
    pub secondary_dir: Option<PathBuf>,
}

impl StoreArgs {
    /// The store directory.
    pub fn dir(&self) -> &Path {
        match (&self.data, &self.path) {
            (Some(p), _) | (None, Some(p)) => p,
            // clap requires one of them.
            (None, None) => Path::new("."),
        }
    }
}

/// An open, read-only view of a store.
pub struct Store {
    reader: LogReader,
    path: PathBuf,
    read_only: bool,
    // Dropped after `reader`: the secondary's scratch directory.
    _scratch: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the store `args` names, read-only or as a secondary, with
    /// every column family it has ([`LogReader::open`]), then checks its
    /// table files against the MANIFEST ([`LogReader::check_files`]).
    ///
    /// Errors: [`ToolError::Read`] with [`ReadError::Damaged`] (exit 1)
    /// naming a damaged, missing or skipped table file and, for the log,
    /// the first position affected (found while RocksDB opened the store,
    /// while the head was compared with its marker, or by the file check);
    /// [`ToolError::Mismatch`] (exit 1) if the store is otherwise damaged: a
    /// WAL or MANIFEST file damaged where intact records belong (naming the
    /// file and byte offset), a log that ends before its head marker
    /// (acknowledged records lost; it names the marker and the missing
    /// positions), a record at the marker's position with another hash, or
    /// a marker whose slots are both invalid. [`ToolError::Io`] (exit 2):
    /// no store at the path, not a Colloquy log or one whose creation was
    /// interrupted (a log column family is missing; the message says which
    /// and what to do), RocksDB cannot open it, or the scratch directory
    /// cannot be made; [`ToolError::Read`] with [`ReadError::Io`] (exit 2)
    /// if the MANIFEST cannot be read.
    pub fn open(args: &StoreArgs) -> Result<Store, ToolError> {
        let path = args.dir().to_path_buf();
        let cannot = |e: &dyn std::fmt::Display| {
            ToolError::Io(format!("cannot open the store at {}: {e}", path.display()))
        };
        if !path.join("CURRENT").is_file() {
            return Err(cannot(&"no RocksDB store there (no CURRENT file)"));
        }
        let (mode, scratch) = if args.read_only {
            (ReaderMode::ReadOnly, None)
        } else {
            match &args.secondary_dir {
                Some(dir) => (ReaderMode::Secondary(dir.clone()), None),
                None => {
                    let t = tempfile::Builder::new()
                        .prefix("replay-tool-secondary-")
                        .tempdir()
                        .map_err(|e| cannot(&e))?;
                    (ReaderMode::Secondary(t.path().to_path_buf()), Some(t))
                }
            }
        };
        let reader =
            LogReader::open(&path, mode, ReaderFamilies::AllPresent).map_err(|e| match e {
                OpenError::Damaged(damage) => ToolError::Read(ReadError::Damaged(damage)),
                OpenError::LogFileDamaged { .. }
                | OpenError::StoreDamaged { .. }
                | OpenError::AcknowledgedRecordsMissing { .. }
                | OpenError::LogRewritten { .. }
                | OpenError::HeadMarkerDamaged { .. } => {
                    ToolError::Mismatch(format!("damaged store: {e}"))
                }
                OpenError::MissingColumnFamily(_) => {
                    match DB::list_cf(&storage::db_options(), &path) {
                        Ok(names) => {
                            let missing: Vec<&str> = LOG_COLUMN_FAMILIES
                                .iter()
                                .copied()
                                .filter(|name| !names.iter().any(|n| n == name))
                                .collect();
                            cannot(&missing_families(&names, &missing))
                        }
                        Err(_) => cannot(&e),
                    }
                }
                other => cannot(&other),
            })?;
        let status = &reader.storage_check().head_marker;
        if let HeadMarkerStatus::BufferedLoss { .. } | HeadMarkerStatus::Missing { .. } = status {
            // Not damage (the engine opens such a store), but an auditor
            // must hear of it.
            eprintln!("replay-tool: warning: {}: {status}", path.display());
        }
        reader.check_files()?;
        Ok(Store {
            reader,
            path,
            read_only: args.read_only,
            _scratch: scratch,
        })
    }

    /// The log reader over the store's view: walks, reads, verification.
    pub fn reader(&self) -> &LogReader {
        &self.reader
    }

    /// What the check of the WAL and MANIFEST files found before opening:
    /// files and bytes read, and any torn tail a crash left (what it holds,
    /// where; it is not part of this view, as the engine's open drops it),
    /// and how the head compared with the head marker (a missing marker, or
    /// buffered writes a power loss dropped, are reported there). Its
    /// `Display` is one line for a report.
    pub fn storage_check(&self) -> &StorageCheck {
        self.reader.storage_check()
    }

    /// The RocksDB handle (never written through), for the read models.
    pub fn db(&self) -> &DB {
        self.reader.db()
    }

    /// Whether it was opened read-only (rather than as a secondary).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the store has every read-model column family (an engine
    /// store; a bare log has none).
    pub fn has_read_models(&self) -> bool {
        Table::NAMES
            .iter()
            .all(|n| self.db().cf_handle(n).is_some())
    }
}

/// Why a store lacks some of the log's column families, and what to do.
/// A store with none but Colloquy's own (or only RocksDB's `default`) is
/// most likely one whose very first open was killed before it had created
/// them all; the engine's next open completes it.
fn missing_families(present: &[String], missing: &[&str]) -> String {
    let ours = |name: &str| {
        name == "default"
            || LOG_COLUMN_FAMILIES.contains(&name)
            || Table::NAMES.contains(&name)
            || name == engine_core::reactor::CF_REACTORS
    };
    if present.iter().all(|n| ours(n)) {
        format!(
            "column families {missing:?} are missing: the store's creation was interrupted \
             (its first open was killed before it had created them all). Opening it once with \
             the engine (Engine::open or EventLog::open) completes it; it holds no records yet"
        )
    } else {
        format!("column families {missing:?} are missing: not a Colloquy log")
    }
}

/// Bytes of the store's files on disk (not recursive into unusual
/// subdirectories; RocksDB keeps a flat directory).
pub fn disk_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
