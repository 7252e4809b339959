//! `replay-tool`: replays, verifies and audits a Colloquy event log.
//!
//! Subcommands:
//! - `verify PATH`: walks the whole hash chain of the store at `PATH` and
//!   reports either a summary or the first damaged position.
//!
//! Exit codes: 0 the log is sound, 1 verification failed (the output names
//! the position), 2 usage or I/O error (bad arguments, no store, storage
//! error).
//!
//! The store is opened as a RocksDB secondary instance by default, so the
//! tool works while a host has the log open; `--read-only` uses RocksDB's
//! read-only mode instead.

#![warn(missing_docs)]

mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Replays, verifies and audits a Colloquy event log.
#[derive(Debug, Parser)]
#[command(name = "replay-tool", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Walk the whole hash chain and report the first damaged position.
    ///
    /// Exits 0 if the log is sound, 1 if verification failed, 2 on a usage
    /// or I/O error.
    Verify(verify::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Verify(args) => verify::run(&args),
    }
}
