//! `dump`: events as JSON lines, or a readable table, filtered. Both say
//! who acted: the JSON field `actor` (`null` for the trusted host and for
//! version-1 records, which did not record it) and the table's ACTOR
//! column (`-` for those).

use std::io::Write;

use clap::{Args, ValueEnum};
use engine_core::log::scan::{check_event, CANCEL_CHECK_RECORDS};

use crate::error::ToolError;
use crate::filter::{Filter, FilterArgs};
use crate::progress::Progress;
use crate::render::{actor_cell, record_json_line, summary, table};
use crate::store::{Store, StoreArgs};
use crate::timefmt::format_micros;

/// Output formats of `dump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DumpFormat {
    /// One JSON object per line.
    Json,
    /// A readable table.
    Table,
}

/// Arguments of `dump`.
#[derive(Debug, Args)]
pub struct DumpArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    filter: FilterArgs,
    /// Output format: JSON lines (one object per record: position,
    /// recorded_at, service_sid, conversation_sid, command_id, actor, type,
    /// event) or a table.
    #[arg(long, value_enum, default_value = "json")]
    format: DumpFormat,
    /// Stop after this many matching records.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
}

/// Runs `dump`.
pub fn run(args: &DumpArgs, quiet: bool) -> Result<(), ToolError> {
    let store = Store::open(&args.store)?;
    let log = store.reader();
    let mut filter = Filter::new(&args.filter, log, quiet)?;
    // A participant filter learns who is who from the start of the log.
    let walk_from = if filter.needs_every_event() {
        0
    } else {
        filter.range.start
    };
    let end = filter.range.end;
    let total = log.stored_end()?.min(end).saturating_sub(walk_from);
    let progress = Progress::new(quiet, "dump", total);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut rows = Vec::new();
    let mut matched = 0u64;
    let mut walked = 0u64;
    let mut scan = log.scan(walk_from..end);
    while let Some(item) = scan.next_record() {
        let s = item?;
        walked += 1;
        if walked % CANCEL_CHECK_RECORDS == 0 {
            progress.set(walked);
        }
        let h = &s.view.header;
        if !filter.needs_every_event() && !filter.header_may_match(h) {
            continue;
        }
        let event = check_event(&s.view)?;
        if !filter.matches(h, &event) || h.position < filter.range.start {
            continue;
        }
        match args.format {
            DumpFormat::Json => {
                writeln!(out, "{}", record_json_line(h, &event))?;
            }
            DumpFormat::Table => rows.push(vec![
                h.position.to_string(),
                format_micros(h.recorded_at),
                event.type_name().to_string(),
                h.conversation_sid
                    .map_or_else(|| "-".to_string(), |c| c.to_string()),
                actor_cell(&h.actor),
                summary(&event),
            ]),
        }
        matched += 1;
        if args.limit.is_some_and(|l| matched >= l) {
            break;
        }
    }
    progress.finish();
    if args.format == DumpFormat::Table {
        let header = [
            "POSITION",
            "RECORDED_AT",
            "TYPE",
            "CONVERSATION",
            "ACTOR",
            "SUMMARY",
        ];
        out.write_all(table(&header, &rows).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}
