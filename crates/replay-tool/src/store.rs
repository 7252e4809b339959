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

use std::path::{Path, PathBuf};

use clap::Args;
use engine_core::log::keys::LOG_COLUMN_FAMILIES;
use projections::Table;
use rocksdb::{Options, DB};

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
    // Dropped after `db`: the secondary's scratch directory.
    _scratch: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the store `args` names, read-only or as a secondary.
    ///
    /// Errors ([`ToolError::Io`], exit 2): no store at the path, not a
    /// Colloquy log (a log column family is missing), RocksDB cannot open
    /// it, or the scratch directory cannot be made.
    pub fn open(args: &StoreArgs) -> Result<Store, ToolError> {
        let path = args.dir().to_path_buf();
        let cannot = |e: &dyn std::fmt::Display| {
            ToolError::Io(format!("cannot open the store at {}: {e}", path.display()))
        };
        if !path.join("CURRENT").is_file() {
            return Err(cannot(&"no RocksDB store there (no CURRENT file)"));
        }
        let mut options = Options::default();
        let names = DB::list_cf(&options, &path).map_err(|e| cannot(&e))?;
        for name in LOG_COLUMN_FAMILIES {
            if !names.iter().any(|n| n == name) {
                return Err(cannot(&format!(
                    "column family {name:?} is missing: not a Colloquy log"
                )));
            }
        }
        let (db, scratch) = if args.read_only {
            let db = DB::open_cf_for_read_only(&options, &path, &names, false)
                .map_err(|e| cannot(&e))?;
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
            let db =
                DB::open_cf_as_secondary(&options, &path, &dir, &names).map_err(|e| cannot(&e))?;
            db.try_catch_up_with_primary().map_err(|e| cannot(&e))?;
            (db, scratch)
        };
        Ok(Store {
            db,
            path,
            read_only: args.read_only,
            _scratch: scratch,
        })
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
