//! `stats`: what the log holds — counts by event type and by service,
//! sizes, conversations and participants, events per second.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use clap::Args;
use engine_core::log::scan::{Accumulator, ScanOptions};
use events::{Event, RecordHeader, ServiceSid};
use serde_json::json;

use crate::error::ToolError;
use crate::progress::Progress;
use crate::render::{cell, hash_str, table, type_index, EVENT_TYPES};
use crate::store::{disk_bytes, Store, StoreArgs};
use crate::timefmt::{format_micros, format_span};

/// Microseconds per second, for rates.
const MICROS_PER_SECOND: f64 = 1_000_000.0;

/// Arguments of `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

/// Per-service counts.
#[derive(Debug, Clone, Default)]
pub struct ServiceStats {
    /// Records of the service.
    pub records: u64,
    /// Their stored bytes.
    pub bytes: u64,
    /// The latest name and the position that set it.
    pub name: Option<(u64, String)>,
    /// Whether the service was deleted.
    pub deleted: bool,
    /// Conversations created.
    pub conversations_created: u64,
    /// Conversations removed.
    pub conversations_removed: u64,
    /// Participants added.
    pub participants_added: u64,
    /// Participants removed.
    pub participants_removed: u64,
    /// Messages posted.
    pub messages_added: u64,
    /// Message edits.
    pub messages_updated: u64,
    /// Messages deleted.
    pub messages_removed: u64,
}

impl ServiceStats {
    fn merge(&mut self, o: ServiceStats) {
        self.records += o.records;
        self.bytes += o.bytes;
        if o.name.is_some() {
            self.name = o.name;
        }
        self.deleted |= o.deleted;
        self.conversations_created += o.conversations_created;
        self.conversations_removed += o.conversations_removed;
        self.participants_added += o.participants_added;
        self.participants_removed += o.participants_removed;
        self.messages_added += o.messages_added;
        self.messages_updated += o.messages_updated;
        self.messages_removed += o.messages_removed;
    }

    /// Conversations that exist at the end of the log.
    pub fn conversations_live(&self) -> u64 {
        if self.deleted {
            return 0;
        }
        self.conversations_created
            .saturating_sub(self.conversations_removed)
    }

    /// Participants that exist at the end of the log (participants of
    /// removed conversations included until they are removed themselves).
    pub fn participants_live(&self) -> u64 {
        if self.deleted {
            return 0;
        }
        self.participants_added
            .saturating_sub(self.participants_removed)
    }
}

/// Counts folded from the log.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Records per event type, indexed like [`EVENT_TYPES`].
    pub by_type: [u64; EVENT_TYPES.len()],
    /// Counts per service.
    pub by_service: BTreeMap<ServiceSid, ServiceStats>,
}

// By hand: `Default` is derived for arrays of at most 32 elements only.
impl Default for Stats {
    fn default() -> Self {
        Stats {
            by_type: [0; EVENT_TYPES.len()],
            by_service: BTreeMap::new(),
        }
    }
}

impl Accumulator for Stats {
    const NEEDS_EVENT: bool = true;
    fn record(&mut self, h: &RecordHeader, len: usize, event: Option<&Event>) {
        let Some(event) = event else {
            return;
        };
        self.by_type[type_index(event)] += 1;
        let s = self.by_service.entry(h.service_sid).or_default();
        s.records += 1;
        s.bytes += len as u64;
        match event {
            Event::ServiceCreated { friendly_name } | Event::ServiceUpdated { friendly_name } => {
                s.name = Some((h.position, friendly_name.clone()))
            }
            Event::ServiceDeleted => s.deleted = true,
            Event::ConversationCreated { .. } => s.conversations_created += 1,
            Event::ConversationRemoved { .. } => s.conversations_removed += 1,
            Event::ParticipantAdded { .. } => s.participants_added += 1,
            Event::ParticipantRemoved { .. } => s.participants_removed += 1,
            Event::MessageAdded { .. } => s.messages_added += 1,
            Event::MessageUpdated { .. } => s.messages_updated += 1,
            Event::MessageRemoved { .. } => s.messages_removed += 1,
            _ => {}
        }
    }

    fn merge(&mut self, later: Self) {
        for (a, b) in self.by_type.iter_mut().zip(later.by_type) {
            *a += b;
        }
        for (sid, s) in later.by_service {
            self.by_service.entry(sid).or_default().merge(s);
        }
    }
}

fn rate(records: u64, span_micros: u64) -> Option<f64> {
    (span_micros > 0).then(|| records as f64 * MICROS_PER_SECOND / span_micros as f64)
}

/// Runs `stats`.
pub fn run(args: &StatsArgs, quiet: bool) -> Result<(), ToolError> {
    let store = Store::open(&args.store)?;
    let log = store.reader();
    let progress = Progress::new(quiet, "stats", log.stored_end()?);
    let started = Instant::now();
    let (summary, stats) = log.par_scan(
        0..u64::MAX,
        &ScanOptions::default(),
        Stats::default,
        &mut |n| progress.set(n),
    )?;
    progress.finish();
    let elapsed = started.elapsed().as_secs_f64();
    let disk = disk_bytes(store.path());
    let span = match (summary.first_recorded_at, summary.last_recorded_at) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => 0,
    };
    let total = |f: fn(&ServiceStats) -> u64| stats.by_service.values().map(f).sum::<u64>();
    let conversations_created = total(|s| s.conversations_created);
    let conversations_live = total(ServiceStats::conversations_live);
    let participants_added = total(|s| s.participants_added);
    let participants_live = total(ServiceStats::participants_live);
    let messages_added = total(|s| s.messages_added);
    let events_per_second = rate(summary.records, span);

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        let by_type: BTreeMap<&str, u64> = EVENT_TYPES
            .iter()
            .zip(stats.by_type)
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| (*t, n))
            .collect();
        let by_service: Vec<_> = stats
            .by_service
            .iter()
            .map(|(sid, s)| {
                json!({
                    "service_sid": sid.to_string(),
                    "friendly_name": s.name.as_ref().map(|(_, n)| n),
                    "deleted": s.deleted,
                    "records": s.records,
                    "bytes": s.bytes,
                    "conversations_created": s.conversations_created,
                    "conversations_removed": s.conversations_removed,
                    "conversations_live": s.conversations_live(),
                    "participants_added": s.participants_added,
                    "participants_removed": s.participants_removed,
                    "participants_live": s.participants_live(),
                    "messages_added": s.messages_added,
                    "messages_updated": s.messages_updated,
                    "messages_removed": s.messages_removed,
                })
            })
            .collect();
        let value = json!({
            "records": summary.records,
            "value_bytes": summary.bytes,
            "disk_bytes": disk,
            "first_recorded_at": summary.first_recorded_at.map(format_micros),
            "last_recorded_at": summary.last_recorded_at.map(format_micros),
            "span_seconds": span as f64 / MICROS_PER_SECOND,
            "events_per_second": events_per_second,
            "next_position": summary.head.next_position,
            "last_hash": hash_str(&summary.head.last_hash),
            "conversations_created": conversations_created,
            "conversations_live": conversations_live,
            "participants_added": participants_added,
            "participants_live": participants_live,
            "messages_added": messages_added,
            "by_type": by_type,
            "by_service": by_service,
        });
        writeln!(out, "{value}")?;
        out.flush()?;
        return Ok(());
    }
    writeln!(
        out,
        "log: {} records, {} bytes of records, {} bytes on disk",
        summary.records, summary.bytes, disk
    )?;
    match (summary.first_recorded_at, summary.last_recorded_at) {
        (Some(a), Some(b)) => writeln!(
            out,
            "span: {} .. {} ({})",
            format_micros(a),
            format_micros(b),
            format_span(span)
        )?,
        _ => writeln!(out, "span: the log is empty")?,
    }
    match events_per_second {
        Some(r) => writeln!(out, "rate: {r:.1} events/s over the span")?,
        None => writeln!(out, "rate: - (no time span)")?,
    }
    writeln!(
        out,
        "conversations: {conversations_created} created, {conversations_live} live; \
         participants: {participants_added} added, {participants_live} live; \
         messages: {messages_added} posted"
    )?;
    writeln!(
        out,
        "head: next position {}, last hash {}",
        summary.head.next_position,
        hash_str(&summary.head.last_hash)
    )?;
    writeln!(out, "(walked and verified in {elapsed:.2} s)")?;
    writeln!(out)?;
    let rows: Vec<Vec<String>> = EVENT_TYPES
        .iter()
        .zip(stats.by_type)
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| {
            let pct = 100.0 * n as f64 / summary.records.max(1) as f64;
            vec![t.to_string(), n.to_string(), format!("{pct:.1}%")]
        })
        .collect();
    out.write_all(table(&["TYPE", "EVENTS", "SHARE"], &rows).as_bytes())?;
    writeln!(out)?;
    let rows: Vec<Vec<String>> = stats
        .by_service
        .iter()
        .map(|(sid, s)| {
            let mut name = s.name.as_ref().map_or("-".to_string(), |(_, n)| cell(n));
            if s.deleted {
                name.push_str(" (deleted)");
            }
            vec![
                sid.to_string(),
                name,
                s.records.to_string(),
                format!("{}/{}", s.conversations_live(), s.conversations_created),
                format!("{}/{}", s.participants_live(), s.participants_added),
                format!(
                    "{} (+{} edits, -{})",
                    s.messages_added, s.messages_updated, s.messages_removed
                ),
            ]
        })
        .collect();
    out.write_all(
        table(
            &[
                "SERVICE",
                "NAME",
                "EVENTS",
                "CONVERSATIONS live/created",
                "PARTICIPANTS live/added",
                "MESSAGES",
            ],
            &rows,
        )
        .as_bytes(),
    )?;
    out.flush()?;
    Ok(())
}
