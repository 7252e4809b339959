//! Opening a store without disturbing the host that may have it open.
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
//! The store is opened with the engine's recovery semantics
//! ([`engine_core::log::storage`]): the same RocksDB options, and the same
//! check of the WAL and MANIFEST files first. Damage there is exit 1,
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

use std::path::{Path, PathBuf};

use clap::Args;
use engine_core::log::head_marker;
use engine_core::log::keys::LOG_COLUMN_FAMILIES;
use engine_core::log::storage::{self, StorageCheck};
use engine_core::{HeadMarkerStatus, OpenError};
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
    db: DB,
    path: PathBuf,
    read_only: bool,
    storage_check: StorageCheck,
    // Dropped after `db`: the secondary's scratch directory.
    _scratch: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the store `args` names, read-only or as a secondary, after
    /// checking its WAL and MANIFEST files
    /// ([`storage::check_log_files`]).
    ///
    /// Errors: [`ToolError::Mismatch`] (exit 1) if the store is damaged: a
    /// WAL or MANIFEST file damaged where intact records belong (naming the
    /// file and byte offset), damage RocksDB finds while opening, a log that
    /// ends before its head marker (acknowledged records lost; it names the
    /// marker and the missing positions), a record at the marker's position
    /// with another hash, or a marker whose slots are both invalid.
    /// [`ToolError::Io`] (exit 2): no store at the path, not a Colloquy
    /// log or one whose creation was interrupted (a log column family is
    /// missing; the message says which and what to do), RocksDB cannot open
    /// it, or the scratch directory cannot be made.
    pub fn open(args: &StoreArgs) -> Result<Store, ToolError> {
        let path = args.dir().to_path_buf();
        let cannot = |e: &dyn std::fmt::Display| {
            ToolError::Io(format!("cannot open the store at {}: {e}", path.display()))
        };
        let refuse = |e: OpenError| match e {
            OpenError::LogFileDamaged { .. }
            | OpenError::StoreDamaged { .. }
            | OpenError::AcknowledgedRecordsMissing { .. }
            | OpenError::LogRewritten { .. }
            | OpenError::HeadMarkerDamaged { .. } => {
                ToolError::Mismatch(format!("damaged store: {e}"))
            }
            other => cannot(&other),
        };
        if !path.join("CURRENT").is_file() {
            return Err(cannot(&"no RocksDB store there (no CURRENT file)"));
        }
        // Before the store is opened: a live host can only have put the
        // log ahead of it since.
        let marker = head_marker::read_head_marker(&path).map_err(refuse)?;
        // Before anything of RocksDB reads the MANIFEST (listing the
        // column families does).
        let mut storage_check = storage::check_log_files(&path).map_err(refuse)?;
        let mut options = storage::db_options();
        let names = DB::list_cf(&options, &path)
            .map_err(|e| refuse(storage::open_error(&path, e, None)))?;
        let missing: Vec<&str> = LOG_COLUMN_FAMILIES
            .iter()
            .copied()
            .filter(|name| !names.iter().any(|n| n == name))
            .collect();
        if !missing.is_empty() {
            return Err(cannot(&missing_families(&names, &missing)));
        }
        let (db, scratch) = if args.read_only {
            let db = DB::open_cf_for_read_only(&options, &path, &names, false)
                .map_err(|e| refuse(storage::open_error(&path, e, None)))?;
            (db, None)
        } else {
            let (dir, scratch) = match &args.secondary_dir {
                Some(dir) => {
                    std::fs::create_dir_all(dir).map_err(|e| cannot(&e))?;
                    (dir.clone(), None)
                }
                None => {
                    let t = tempfile::Builder::new()
                        .prefix("replay-tool-secondary-")
                        .tempdir()
                        .map_err(|e| cannot(&e))?;
                    (t.path().to_path_buf(), Some(t))
                }
            };
            // Required for secondary instances: keep every table file open.
            options.set_max_open_files(-1);
            let db = DB::open_cf_as_secondary(&options, &path, &dir, &names)
                .map_err(|e| refuse(storage::open_error(&path, e, None)))?;
            db.try_catch_up_with_primary()
                .map_err(|e| refuse(storage::open_error(&path, e, None)))?;
            (db, scratch)
        };
        storage_check.head_marker =
            head_marker::check_head_marker_for_reader(&path, marker.as_ref(), &db, &storage_check)
                .map_err(refuse)?;
        if let HeadMarkerStatus::BufferedLoss { .. } | HeadMarkerStatus::Missing { .. } =
            storage_check.head_marker
        {
            // Not damage (the engine opens such a store), but an auditor
            // must hear of it.
            eprintln!(
                "replay-tool: warning: {}: {}",
                path.display(),
                storage_check.head_marker
            );
        }
        Ok(Store {
            db,
            path,
            read_only: args.read_only,
            storage_check,
            _scratch: scratch,
        })
    }

    /// What the check of the WAL and MANIFEST files found before opening:
    /// files and bytes read, and any torn tail a crash left (what it holds,
    /// where; it is not part of this view, as the engine's open drops it),
    /// and how the head compared with the head marker (a missing marker, or
    /// buffered writes a power loss dropped, are reported there). Its
    /// `Display` is one line for a report.
    pub fn storage_check(&self) -> &StorageCheck {
        &self.storage_check
    }

    /// The RocksDB handle (never written through).
    pub fn db(&self) -> &DB {
        &self.db
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
        Table::NAMES.iter().all(|n| self.db.cf_handle(n).is_some())
    }
}

/// Why a store lacks some of the log's column families, and what to do.
/// A store with none but Colloquy's own (or only RocksDB's `default`) is
/// most likely one whose very first open was killed before it had created
/// them all; the engine's next open completes it.
fn missing_families(present: &[String], missing: &[&str]) -> String {
    let ours = |name: &str| {
        name == "default" || LOG_COLUMN_FAMILIES.contains(&name) || Table::NAMES.contains(&name)
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
