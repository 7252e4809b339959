//! `verify`: walk every record and say what was checked, or name the first
//! damaged position; with `--projections`, also rebuild the read models
//! off to the side and compare them with the live ones.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use clap::Args;
use engine_core::log::files;
use engine_core::log::scan::{default_workers, ScanOptions};
use engine_core::{fold_records, read_models_digest, state_digest};
use engine_core::{LogReader, VerifyReport};
use projections::{RowMap, Table};
use serde_json::json;

use crate::error::ToolError;
use crate::error::EXIT_VERIFY_FAILED;
use crate::progress::Progress;
use crate::render::{hash_str, hex};
use crate::store::{Store, StoreArgs};
use crate::timefmt::{format_micros, format_span};

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Also rebuild the read models off to the side (nothing is written)
    /// and compare their digest with the store's live read models.
    #[arg(long)]
    projections: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    /// Worker threads for the chain walk (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

/// The outcome of the projection comparison.
struct ProjectionCheck {
    rebuilt: ([u8; 32], u64),
    live: ([u8; 32], u64),
    /// Tables whose rows differ, with the first differing key (hex).
    differences: Vec<(Table, String)>,
}

impl ProjectionCheck {
    fn matches(&self) -> bool {
        self.rebuilt == self.live
    }
}

/// Runs the library's verification ([`LogReader::verify_with`]) on
/// `threads` workers, showing progress; `Ok` only if every record is sound
/// and the walk covered every `log` table file.
pub fn walk(
    log: &LogReader,
    threads: usize,
    progress: &Progress,
) -> Result<VerifyReport, ToolError> {
    let options = ScanOptions::default().workers(threads);
    Ok(log.verify_with(&options, &mut |n| progress.set(n))?)
}

fn first_difference(rebuilt: &RowMap, db: &rocksdb::DB) -> Result<Vec<(Table, String)>, ToolError> {
    let mut out = Vec::new();
    for table in Table::ALL {
        let Some(cf) = db.cf_handle(table.name()) else {
            out.push((table, "(column family missing)".to_string()));
            continue;
        };
        let mut want = rebuilt
            .range((table, Vec::new())..)
            .take_while(|((t, _), _)| *t == table);
        let mut it = db.raw_iterator_cf(cf);
        it.seek_to_first();
        loop {
            let live = it
                .valid()
                .then(|| (it.key().unwrap_or_default(), it.value().unwrap_or_default()));
            let expected = want.next();
            match (expected, live) {
                (None, None) => break,
                (Some(((_, k), v)), Some((lk, lv))) if k.as_slice() == lk && v.as_slice() == lv => {
                    it.next();
                }
                (Some(((_, k), _)), Some((lk, _))) => {
                    let key = if k.as_slice() <= lk { k.as_slice() } else { lk };
                    out.push((table, hex(key)));
                    break;
                }
                (Some(((_, k), _)), None) => {
                    out.push((table, format!("{} (missing from the live rows)", hex(k))));
                    break;
                }
                (None, Some((lk, _))) => {
                    out.push((table, format!("{} (not in the rebuild)", hex(lk))));
                    break;
                }
            }
        }
        it.status()
            .map_err(|e| ToolError::Read(files::classify(db, e, None)))?;
    }
    Ok(out)
}

/// The digest of the store's read-model rows, as engine-core's
/// `read_models_digest` computes it. A secondary instance cannot take a
/// snapshot, but its view only changes when it catches up (never during a
/// run), so reading without one is as consistent; read-only stores use
/// engine-core's function itself.
fn live_digest(store: &Store) -> Result<([u8; 32], u64), ToolError> {
    let db = store.db();
    if store.is_read_only() {
        return read_models_digest(db).map_err(|e| ToolError::Io(e.to_string()));
    }
    let mut d = projections::Digester::new();
    for table in Table::ALL {
        let cf = db
            .cf_handle(table.name())
            .ok_or_else(|| ToolError::Usage(format!("no {} column family", table.name())))?;
        let mut it = db.raw_iterator_cf(cf);
        it.seek_to_first();
        while it.valid() {
            if let (Some(k), Some(v)) = (it.key(), it.value()) {
                d.row(table, k, v);
            }
            it.next();
        }
        it.status()
            .map_err(|e| ToolError::Read(files::classify(db, e, None)))?;
    }
    Ok(d.finish())
}

fn check_projections(
    store: &Store,
    summary: &VerifyReport,
    quiet: bool,
) -> Result<ProjectionCheck, ToolError> {
    if !store.has_read_models() {
        return Err(ToolError::Usage(format!(
            "the store at {} has no read models (a bare log): nothing to compare",
            store.path().display()
        )));
    }
    let db = store.db();
    let progress = Progress::new(quiet, "fold", summary.head.next_position);
    let mut scan = store.reader().scan(0..summary.head.next_position);
    let records = std::iter::from_fn(|| {
        scan.next_record()
            .map(|item| item.map(|s| s.view.to_record()))
    });
    let rm = fold_records(records, &mut |n| progress.set(n)).map_err(|e| match e {
        engine_core::EngineError::Read(r) => ToolError::Read(r),
        other => ToolError::Io(other.to_string()),
    })?;
    progress.finish();
    let rebuilt = state_digest(&rm).map_err(|e| ToolError::Io(e.to_string()))?;
    let live = live_digest(store)?;
    let mut check = ProjectionCheck {
        rebuilt,
        live,
        differences: Vec::new(),
    };
    if !check.matches() {
        let mut rows = RowMap::new();
        rm.write_rows(&mut rows);
        rm.copy_cold_rows(&mut rows)
            .map_err(|e| ToolError::Io(e.to_string()))?;
        check.differences = first_difference(&rows, db)?;
    }
    Ok(check)
}

fn versions_text(versions: &BTreeMap<u16, u64>) -> String {
    if versions.is_empty() {
        return "none".into();
    }
    versions
        .iter()
        .map(|(v, n)| format!("v{v} × {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints the failure (plain or JSON) and hands the error back.
fn report_failure(out: &mut impl Write, json: bool, e: ToolError) -> Result<(), ToolError> {
    if json {
        let value = json!({
            "ok": false,
            "position": e.position(),
            "file": e.file().map(|f| f.display().to_string()),
            "fault": e.to_string(),
        });
        writeln!(out, "{value}")?;
    } else {
        writeln!(out, "verification FAILED: {e}")?;
    }
    out.flush()?;
    Err(e)
}

/// Runs `verify`.
///
/// Besides the chain walk it checks the store's table files (see
/// [`Store::open`] and [`LogReader::verify`]): every file the MANIFEST lists as live is in the view,
/// every `log` file lies inside the walked positions, and every other
/// live table file reads back whole with matching block checksums, filter
/// and meta blocks included (see [`files::verify_checksums`]). Any damage
/// fails with exit code 1, naming the file and the first position
/// affected.
pub fn run(args: &VerifyArgs, quiet: bool) -> Result<(), ToolError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let store = match Store::open(&args.store) {
        Ok(store) => store,
        Err(e) if e.exit_code() == EXIT_VERIFY_FAILED => {
            return report_failure(&mut out, args.json, e)
        }
        Err(e) => return Err(e),
    };
    let log = store.reader();
    let threads = args.threads.unwrap_or_else(default_workers).max(1);
    let progress = Progress::new(quiet, "verify", log.stored_end()?);
    let started = Instant::now();
    let walked = walk(log, threads, &progress).and_then(|summary| {
        files::verify_checksums(log.db())?;
        Ok(summary)
    });
    progress.finish();
    let elapsed = started.elapsed().as_secs_f64();
    let summary = match walked {
        Ok(s) => s,
        Err(e) if e.exit_code() == EXIT_VERIFY_FAILED => {
            return report_failure(&mut out, args.json, e)
        }
        Err(e) => return Err(e),
    };
    let indexes = crate::indexes::check(&store)?;
    let projections = if args.projections {
        Some(check_projections(&store, &summary, quiet)?)
    } else {
        None
    };
    let rate = summary.records as f64 / elapsed.max(f64::MIN_POSITIVE);
    let hash = hash_str(&summary.head.last_hash);
    let projections_ok = projections.as_ref().is_none_or(ProjectionCheck::matches);
    if args.json {
        let value = json!({
            "ok": projections_ok,
            "records": summary.records,
            "bytes": summary.bytes,
            "first_recorded_at": summary.first_recorded_at,
            "last_recorded_at": summary.last_recorded_at,
            "first_recorded_at_rfc3339": summary.first_recorded_at.map(format_micros),
            "last_recorded_at_rfc3339": summary.last_recorded_at.map(format_micros),
            "next_position": summary.head.next_position,
            "last_hash": hash,
            "format_versions": summary.format_versions,
            "seconds": elapsed,
            "records_per_second": rate,
            "projections": projections.as_ref().map(|p| json!({
                "match": p.matches(),
                "rebuilt_digest": hex(&p.rebuilt.0),
                "rebuilt_rows": p.rebuilt.1,
                "live_digest": hex(&p.live.0),
                "live_rows": p.live.1,
                "differences": p.differences.iter().map(|(t, k)| json!({"table": t.name(), "first_key": k})).collect::<Vec<_>>(),
            })),
        });
        writeln!(out, "{value}")?;
    } else {
        writeln!(
            out,
            "ok: {} records, {} bytes",
            summary.records, summary.bytes
        )?;
        writeln!(
            out,
            "checked: hash chain from genesis, contiguous positions 0..{}, record decoding and self-hashes, \
             format versions ({}), event payloads, table files against the MANIFEST, block checksums",
            summary.head.next_position,
            versions_text(&summary.format_versions)
        )?;
        match (summary.first_recorded_at, summary.last_recorded_at) {
            (Some(first), Some(last)) => writeln!(
                out,
                "time span: {} .. {} ({})",
                format_micros(first),
                format_micros(last),
                format_span(last.saturating_sub(first))
            )?,
            _ => writeln!(out, "time span: the log is empty")?,
        }
        writeln!(
            out,
            "head: next position {}, last hash {hash}",
            summary.head.next_position
        )?;
        writeln!(out, "final hash: {hash}")?;
        writeln!(
            out,
            "indexes: {} stream-index entries, {} stream versions, {} idempotency entries agree with the log",
            indexes.records, indexes.streams, indexes.commands
        )?;
        writeln!(
            out,
            "walked in {elapsed:.3} s ({rate:.0} records/s, {threads} threads)"
        )?;
        if let Some(p) = &projections {
            if p.matches() {
                writeln!(
                    out,
                    "projections: the rebuilt read models match the live ones (digest {}, {} rows)",
                    hex(&p.rebuilt.0),
                    p.rebuilt.1
                )?;
            } else {
                writeln!(
                    out,
                    "projections FAILED: rebuilt digest {} ({} rows) differs from live digest {} ({} rows)",
                    hex(&p.rebuilt.0),
                    p.rebuilt.1,
                    hex(&p.live.0),
                    p.live.1
                )?;
                for (t, k) in &p.differences {
                    writeln!(out, "  {}: first difference at key {k}", t.name())?;
                }
            }
        }
    }
    out.flush()?;
    if !projections_ok {
        return Err(ToolError::Mismatch(
            "the live read models differ from a rebuild from the log".into(),
        ));
    }
    Ok(())
}
