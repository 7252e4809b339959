//! The `verify` subcommand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use engine_core::log::hash_hex;
use engine_core::{LogReader, ReadError, VerifyReport};

/// Exit code: the log is sound.
pub const EXIT_OK: u8 = 0;
/// Exit code: verification found a damaged position.
pub const EXIT_VERIFY_FAILED: u8 = 1;
/// Exit code: bad arguments, no readable store, or a storage error.
pub const EXIT_USAGE_OR_IO: u8 = 2;

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The log's RocksDB directory.
    pub path: PathBuf,
    /// Open with RocksDB's read-only mode instead of as a secondary
    /// instance (only safe when no host is writing the store).
    #[arg(long)]
    pub read_only: bool,
    /// Directory for the secondary instance's own files (default: a fresh
    /// temporary directory, removed afterwards).
    #[arg(long, conflicts_with = "read_only")]
    pub secondary_dir: Option<PathBuf>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// A temporary secondary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Scratch(std::env::temp_dir().join(format!(
            "colloquy-replay-secondary-{}-{nanos}",
            std::process::id()
        )))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(args: &VerifyArgs, scratch: &Option<Scratch>) -> Result<LogReader, String> {
    let result = if args.read_only {
        LogReader::open_read_only(&args.path)
    } else {
        let dir: Option<&Path> = args
            .secondary_dir
            .as_deref()
            .or(scratch.as_ref().map(|s| s.0.as_path()));
        let Some(dir) = dir else {
            return Err("no directory for the secondary instance".into());
        };
        LogReader::open_secondary(&args.path, dir)
    };
    result.map_err(|e| format!("cannot open {}: {e}", args.path.display()))
}

fn print_ok(args: &VerifyArgs, report: &VerifyReport) {
    let hash = hash_hex(&report.head.last_hash);
    if args.json {
        let value = serde_json::json!({
            "ok": true,
            "records": report.records,
            "bytes": report.bytes,
            "first_recorded_at": report.first_recorded_at,
            "last_recorded_at": report.last_recorded_at,
            "next_position": report.head.next_position,
            "last_hash": hash,
        });
        println!("{value}");
    } else {
        println!("ok: {} records, {} bytes", report.records, report.bytes);
        println!(
            "head: next position {}, last hash {hash}",
            report.head.next_position
        );
        match (report.first_recorded_at, report.last_recorded_at) {
            (Some(first), Some(last)) => {
                println!("recorded_at: first {first} us, last {last} us (since the Unix epoch)")
            }
            _ => println!("recorded_at: the log is empty"),
        }
    }
}

fn print_failure(args: &VerifyArgs, position: Option<u64>, message: &str) {
    if args.json {
        let value = serde_json::json!({
            "ok": false,
            "position": position,
            "fault": message,
        });
        println!("{value}");
    } else {
        println!("verification FAILED: {message}");
    }
}

/// Runs `verify` and returns the process exit code.
pub fn run(args: &VerifyArgs) -> ExitCode {
    let scratch = (!args.read_only && args.secondary_dir.is_none()).then(Scratch::new);
    let reader = match open(args, &scratch) {
        Ok(reader) => reader,
        Err(message) => {
            eprintln!("replay-tool: {message}");
            return ExitCode::from(EXIT_USAGE_OR_IO);
        }
    };
    let code = match reader.verify() {
        Ok(report) => {
            print_ok(args, &report);
            EXIT_OK
        }
        Err(ReadError::Fault(fault)) => {
            print_failure(args, Some(fault.position), &fault.to_string());
            EXIT_VERIFY_FAILED
        }
        Err(e @ ReadError::Corrupt { .. }) => {
            print_failure(args, None, &e.to_string());
            EXIT_VERIFY_FAILED
        }
        Err(e @ ReadError::Storage(_)) => {
            eprintln!("replay-tool: {e}");
            EXIT_USAGE_OR_IO
        }
    };
    drop(reader);
    drop(scratch);
    ExitCode::from(code)
}
