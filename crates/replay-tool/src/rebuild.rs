//! `rebuild`: drop the store's read models and refold them from the log,
//! in place. Unlike every other subcommand it writes, so it needs the store
//! alone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use engine_core::{Engine, EngineError, LogOptions};

use crate::error::ToolError;
use crate::progress::Progress;
use crate::render::{hash_str, hex};

/// Arguments of `rebuild`.
#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The store's directory. The host must be stopped: rebuild needs
    /// exclusive access.
    #[arg(long = "data", value_name = "DIR", required_unless_present = "path")]
    data: Option<PathBuf>,
    /// The store's directory, given positionally (same as --data).
    #[arg(value_name = "DIR", hide = true, conflicts_with = "data")]
    path: Option<PathBuf>,
}

impl RebuildArgs {
    fn dir(&self) -> &Path {
        match (&self.data, &self.path) {
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => Path::new("."),
        }
    }
}

/// Runs `rebuild`.
pub fn run(args: &RebuildArgs, quiet: bool) -> Result<(), ToolError> {
    let path = args.dir();
    if !path.join("CURRENT").is_file() {
        return Err(ToolError::Io(format!(
            "cannot rebuild {}: no RocksDB store there (no CURRENT file)",
            path.display()
        )));
    }
    let progress = Progress::new(quiet, "rebuild", 0);
    let started = Instant::now();
    let result = Engine::rebuild(path, LogOptions::default(), &mut |done, total| {
        progress.set_total(total);
        progress.set(done);
    });
    progress.finish();
    let engine = match result {
        Ok(engine) => engine,
        Err(EngineError::InUse { path, detail }) => {
            return Err(ToolError::Usage(format!(
                "cannot rebuild: the store at {path} is in use by another process. \
                 rebuild needs exclusive access: stop the host (or any other tool with \
                 the store open for writing) and run it again. ({detail})"
            )))
        }
        Err(EngineError::Read(e)) => return Err(ToolError::Read(e)),
        Err(EngineError::Indexes(e)) => return Err(crate::indexes::tool_error(e)),
        Err(EngineError::Open(engine_core::OpenError::Fault(f))) => return Err(f.into()),
        Err(e) => {
            return Err(ToolError::Io(format!(
                "cannot rebuild {}: {e}",
                path.display()
            )))
        }
    };
    let head = engine.log().head();
    let (digest, rows) = engine
        .live_digest()
        .map_err(|e| ToolError::Io(e.to_string()))?;
    drop(engine);
    let elapsed = started.elapsed().as_secs_f64();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "rebuilt the read models of {} from {} records in {elapsed:.2} s",
        path.display(),
        head.next_position
    )?;
    writeln!(
        out,
        "head: next position {}, last hash {}",
        head.next_position,
        hash_str(&head.last_hash)
    )?;
    writeln!(out, "read models: digest {}, {rows} rows", hex(&digest))?;
    Ok(())
}
