//! `replay-tool`: how an operator or auditor reads a Colloquy event log.
//!
//! Subcommands (each has `--help`):
//! - `verify`: walk every record — hash chain, contiguous positions,
//!   decoding, format versions, event payloads — on every core; with
//!   `--projections`, also rebuild the read models off to the side and
//!   compare their digest with the live ones;
//! - `dump`: events as JSON lines or a table, filtered by service,
//!   conversation (SID or unique name), participant (SID, identity or
//!   address), event type, position range and time range;
//! - `stats`: counts by event type and service, sizes, rates;
//! - `at`: one conversation as it was at a position or time — attributes,
//!   state, participants and bindings, read horizons, messages with edits
//!   and deletes applied up to then — and who had read a given message;
//! - `rebuild`: drop and refold the read models in place (needs the store
//!   alone);
//! - `export`: one conversation's records with their chain hashes and
//!   bytes, so a third party can recompute them.
//!
//! Every subcommand but `rebuild` opens the store as a RocksDB secondary
//! instance (or read-only with `--read-only`), so it is safe while a host
//! has the store open, and never writes. Long walks show a progress bar on
//! stderr when it is a terminal (`--quiet` turns it off).
//!
//! The tool has no record parser and no RocksDB walk of its own: every
//! subcommand but `rebuild` opens the store through [`store::Store::open`],
//! a wrapper of event-log's `LogReader` (which compares the view's table
//! files with the MANIFEST first, so a damaged store is never read as a
//! shorter one), and reads records through its walks (`LogReader::scan`,
//! `LogReader::par_scan`, `LogReader::verify_with`), which decode them with
//! `events::fast` and check the chain.
//!
//! Exit codes: 0 success, 1 damage or verification failure (a damaged
//! record, named by position; a damaged, missing or skipped store file,
//! named with the first position affected; or read models that differ from
//! a rebuild), 2 usage or I/O error that is not damage.

#![warn(missing_docs)]

pub mod at;
pub mod dump;
pub mod error;
pub mod export;
pub mod filter;
pub mod indexes;
pub mod progress;
pub mod rebuild;
pub mod render;
pub mod stats;
pub mod store;
pub mod timefmt;
pub mod verify;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::{ToolError, EXIT_OK, EXIT_USAGE_OR_IO, EXIT_VERIFY_FAILED};

/// Replays, verifies and audits a Colloquy event log.
///
/// Every subcommand except `rebuild` opens the store (--data DIR) as a
/// RocksDB secondary instance, or read-only with --read-only, so it is safe
/// while a host has the store open, and never writes to it.
#[derive(Debug, Parser)]
#[command(
    name = "replay-tool",
    version,
    about,
    long_about = None,
    after_help = error::EXIT_CODES_HELP,
    after_long_help = error::EXIT_CODES_HELP,
)]
pub struct Cli {
    /// No progress bars (they are only ever drawn when stderr is a
    /// terminal).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Walk every record and report what was checked, or the first fault.
    ///
    /// Checks the hash chain from genesis, that positions are contiguous,
    /// that every record decodes with a matching self-hash in a known
    /// format version, and that every payload decodes as an event; that
    /// the log's index column families (stream index, stream versions,
    /// idempotency entries) agree with the records; and the store's table
    /// files: every file the MANIFEST lists is in the view, the walk reached
    /// every log file, and every block of every file matches its checksum.
    /// With
    /// --projections, also rebuilds the read models off to the side and
    /// compares their digest with the store's live read models.
    #[command(after_help = error::EXIT_CODES_HELP)]
    Verify(verify::VerifyArgs),
    /// Print events as JSON lines (or a table), filtered.
    #[command(after_help = error::EXIT_CODES_HELP)]
    Dump(dump::DumpArgs),
    /// Counts by event type and by service, sizes and rates.
    #[command(after_help = error::EXIT_CODES_HELP)]
    Stats(stats::StatsArgs),
    /// One conversation as it was at a position or time.
    ///
    /// Rebuilds the conversation from the log up to that point: attributes
    /// and state, participants with their bindings and read horizons, and
    /// the messages as they were then (edits and deletes applied up to that
    /// point only). --read-by N lists who had read message N by then.
    #[command(after_help = error::EXIT_CODES_HELP)]
    At(at::AtArgs),
    /// Re-derive the log's index column families from the records, then
    /// drop the read models and refold them from the log, in place.
    ///
    /// Needs the store alone: stop the host first. Fails with exit code 2
    /// and says so when another process has the store open.
    #[command(after_help = error::EXIT_CODES_HELP)]
    Rebuild(rebuild::RebuildArgs),
    /// One conversation's records as JSON lines with their chain hashes.
    ///
    /// Each record line carries position, prev_hash, hash and the hashed
    /// bytes (header_hex, payload_hex), so anyone can recompute
    /// hash = blake3(prev_hash ‖ u16le(format_version) ‖ header ‖ payload).
    /// With --chain, the records in between are included too, so the chain
    /// can be followed to the final hash `verify` prints.
    #[command(after_help = error::EXIT_CODES_HELP)]
    Export(export::ExportArgs),
}

/// Parses `args` (including the program name), runs the subcommand and
/// returns the exit code; errors are printed on stderr.
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let code = if e.use_stderr() {
                EXIT_USAGE_OR_IO
            } else {
                EXIT_OK
            };
            return ExitCode::from(code);
        }
    };
    let quiet = cli.quiet;
    let result = match cli.command {
        Command::Verify(args) => verify::run(&args, quiet),
        Command::Dump(args) => dump::run(&args, quiet),
        Command::Stats(args) => stats::run(&args, quiet),
        Command::At(args) => at::run(&args, quiet),
        Command::Rebuild(args) => rebuild::run(&args, quiet),
        Command::Export(args) => export::run(&args, quiet),
    };
    match result {
        Ok(()) | Err(ToolError::OutputClosed) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("replay-tool: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
