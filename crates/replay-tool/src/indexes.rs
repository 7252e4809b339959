//! The log's index column families (stream index, stream versions,
//! idempotency entries) checked against the log for `verify`; `rebuild`
//! re-derives them through `Engine::rebuild`. The work is engine-core's
//! [`engine_core::log::indexes`]; this maps its errors to the tool's.

use engine_core::log::indexes::{check_indexes, IndexError, IndexReport, IndexView};

use crate::error::ToolError;
use crate::store::Store;

/// Checks the stream, streams and commands column families against the
/// log: from one snapshot on a read-only store, from the secondary's own
/// view otherwise (it does not change during a run, and has no snapshots).
///
/// Errors: [`ToolError::Mismatch`] (exit 1) naming the column family, the
/// key and the position of the first entry that disagrees with the log;
/// [`ToolError::Read`] for a damaged record (exit 1) or a storage error
/// (exit 2); [`ToolError::Io`] (exit 2) when a log column family is
/// missing.
pub fn check(store: &Store) -> Result<IndexReport, ToolError> {
    let view = if store.is_read_only() {
        IndexView::Snapshot
    } else {
        IndexView::Fixed
    };
    check_indexes(store.db(), view).map_err(tool_error)
}

/// The tool's error for an index check or re-derivation error.
pub fn tool_error(e: IndexError) -> ToolError {
    match e {
        IndexError::Fault(fault) => ToolError::Mismatch(fault.to_string()),
        IndexError::Log(read) => ToolError::Read(read),
        other @ IndexError::MissingColumnFamily(_) => ToolError::Io(other.to_string()),
    }
}
