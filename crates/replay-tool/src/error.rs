//! Errors and the exit codes they map to.

use engine_core::ReadError;

/// Exit code: success (and for `verify`, the log is sound).
pub const EXIT_OK: u8 = 0;
/// Exit code: verification failed — the store is damaged (a chain fault at
/// a named position, or a damaged or skipped file, named with the first
/// position affected) or the read models differ from a rebuild.
pub const EXIT_VERIFY_FAILED: u8 = 1;
/// Exit code: bad arguments, no readable store, or a storage/I/O error that
/// is not damage (a missing store, permissions, a store in use).
pub const EXIT_USAGE_OR_IO: u8 = 2;

/// The exit-code table, as printed at the end of every `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success (verify: the log is sound)
  1  damage or verification failure: a damaged record (named by position),
     a damaged, missing or skipped store file (named, with the first log
     position or position range affected), or read models that differ
     from a rebuild; every subcommand that meets damage stops with 1
  2  usage or I/O error: bad arguments, no store at --data, a storage error
     that is not damage, an unknown conversation, or (rebuild) the store
     is in use";

/// Why a subcommand failed.
#[derive(Debug)]
pub enum ToolError {
    /// Reading the log failed: a fault (exit 1) or storage (exit 2).
    Read(ReadError),
    /// A check other than the chain failed (exit 1).
    Mismatch(String),
    /// Bad arguments or nothing to act on (exit 2).
    Usage(String),
    /// Opening the store or writing output failed (exit 2).
    Io(String),
    /// Whoever read the output went away (`| head`): not an error (exit 0).
    OutputClosed,
}

impl ToolError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            ToolError::Read(ReadError::Storage(e))
                if e.kind() == rocksdb::ErrorKind::Corruption =>
            {
                EXIT_VERIFY_FAILED
            }
            ToolError::Read(ReadError::Storage(_) | ReadError::Io { .. }) => EXIT_USAGE_OR_IO,
            ToolError::Read(_) | ToolError::Mismatch(_) => EXIT_VERIFY_FAILED,
            ToolError::Usage(_) | ToolError::Io(_) => EXIT_USAGE_OR_IO,
            ToolError::OutputClosed => EXIT_OK,
        }
    }

    /// The first faulty position: of a chain fault, or the first position
    /// a damaged file affects, when known.
    pub fn position(&self) -> Option<u64> {
        match self {
            ToolError::Read(ReadError::Fault(f)) => Some(f.position),
            ToolError::Read(ReadError::Damaged(d)) => d.first_position,
            _ => None,
        }
    }

    /// The damaged file, when the failure is damage to a named file.
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            ToolError::Read(ReadError::Damaged(d)) => d.file.as_deref(),
            _ => None,
        }
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolError::Read(e) => write!(f, "{e}"),
            ToolError::Mismatch(m) | ToolError::Usage(m) | ToolError::Io(m) => f.write_str(m),
            ToolError::OutputClosed => f.write_str("output closed"),
        }
    }
}

impl From<ReadError> for ToolError {
    fn from(e: ReadError) -> Self {
        ToolError::Read(e)
    }
}

impl From<engine_core::ChainFault> for ToolError {
    fn from(f: engine_core::ChainFault) -> Self {
        ToolError::Read(ReadError::Fault(f))
    }
}

impl From<std::io::Error> for ToolError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return ToolError::OutputClosed;
        }
        ToolError::Io(format!("I/O error: {e}"))
    }
}
