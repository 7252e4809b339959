//! `export`: one conversation's records as JSON lines, with everything a
//! third party needs to recompute their chain hashes.
//!
//! Lines, in position order:
//! - `{"kind":"record", position, prev_hash, hash, format_version,
//!   header_hex, payload_hex, recorded_at, service_sid, conversation_sid,
//!   command_id, actor, type, event}` for each of the conversation's
//!   records (`actor`: the acting chat identity, `null` for the trusted
//!   host and for version-1 records, which did not record it);
//! - with `--chain`, `{"kind":"link", position, prev_hash, hash,
//!   format_version, header_hex, payload_hex}` for every other record from
//!   the first exported one on, so the chain can be followed to the end;
//! - last, `{"kind":"head", next_position, last_hash}`: the hash of the
//!   last record walked — the final hash `verify` prints when the export
//!   runs to the end of the log.
//!
//! For every record and link line,
//! `hash = blake3(prev_hash ‖ u16_le(format_version) ‖ header ‖ payload)`
//! (all hex-decoded; `header` is the header in the record's own format
//! version, so version 2's covers the actor), and with `--chain` each
//! line's `prev_hash` is the previous line's `hash`.

use std::io::Write;

use clap::Args;
use engine_core::log::scan::{check_event, CANCEL_CHECK_RECORDS};
use engine_core::LogReader;
use events::fast::RecordView;
use events::{ConversationSid, ServiceSid};
use serde_json::{json, Value};

use crate::error::ToolError;
use crate::filter::{distinct, name_uses, parse_service, ConversationArg};
use crate::progress::Progress;
use crate::render::{event_fields, hash_str, hex};
use crate::store::{Store, StoreArgs};
use crate::timefmt::format_micros;

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The conversation: a CH… SID or a unique_name (which must have
    /// belonged to one conversation only; otherwise pass the SID).
    #[arg(long, value_name = "SID|UNIQUE_NAME")]
    conversation: String,
    /// The service (IS…), to tell apart unique names used in several.
    #[arg(long, value_name = "SID")]
    service: Option<String>,
    /// Also emit a "link" line (hashes and hashed bytes, which reveal those
    /// records' contents) for every other record from the first exported
    /// one to the end, so the chain can be recomputed up to the final hash.
    #[arg(long)]
    chain: bool,
    /// Stop after this position (inclusive), e.g. the last position a
    /// `verify` covered, so the head line matches its final hash.
    #[arg(long, value_name = "POSITION")]
    to_position: Option<u64>,
}

fn chain_fields(view: &RecordView<'_>) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("position".into(), json!(view.header.position));
    m.insert("prev_hash".into(), json!(hash_str(&view.prev_hash)));
    m.insert("hash".into(), json!(hash_str(&view.hash)));
    m.insert("format_version".into(), json!(view.format_version));
    m.insert("header_hex".into(), json!(hex(&view.header_bytes)));
    m.insert("payload_hex".into(), json!(hex(&view.payload)));
    m
}

fn resolve(
    log: &LogReader,
    arg: &str,
    service: Option<ServiceSid>,
    quiet: bool,
) -> Result<ConversationSid, ToolError> {
    match ConversationArg::parse(arg) {
        ConversationArg::Sid(sid) => Ok(sid),
        ConversationArg::Name(name) => {
            let found = distinct(&name_uses(log, &name, service, u64::MAX, quiet)?);
            match found.as_slice() {
                [] => Err(ToolError::Usage(format!(
                    "no conversation ever had the unique name {name:?}"
                ))),
                [(_, c)] => Ok(*c),
                many => Err(ToolError::Usage(format!(
                    "the unique name {name:?} belonged to {} conversations ({}); export one by SID",
                    many.len(),
                    many.iter()
                        .map(|(s, c)| format!("{c} in {s}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            }
        }
    }
}

/// Runs `export`.
pub fn run(args: &ExportArgs, quiet: bool) -> Result<(), ToolError> {
    let store = Store::open(&args.store)?;
    let log = store.reader();
    let service = args.service.as_deref().map(parse_service).transpose()?;
    let sid = resolve(log, &args.conversation, service, quiet)?;
    let end = args.to_position.map_or(u64::MAX, |p| p.saturating_add(1));
    let progress = Progress::new(quiet, "export", log.stored_end()?.min(end));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut scan = log.scan(0..end);
    let mut exported = 0u64;
    let mut walked = 0u64;
    let mut last: Option<(u64, events::Hash)> = None;
    while let Some(item) = scan.next_record() {
        let s = item?;
        walked += 1;
        if walked % CANCEL_CHECK_RECORDS == 0 {
            progress.set(walked);
        }
        let view = &s.view;
        let h = &view.header;
        last = Some((h.position, view.hash));
        let ours =
            h.conversation_sid == Some(sid) && service.is_none_or(|svc| svc == h.service_sid);
        if ours {
            let event = check_event(view)?;
            let mut m = serde_json::Map::new();
            m.insert("kind".into(), json!("record"));
            m.extend(chain_fields(view));
            m.insert("recorded_at".into(), json!(format_micros(h.recorded_at)));
            m.insert("service_sid".into(), json!(h.service_sid.to_string()));
            m.insert("conversation_sid".into(), json!(sid.to_string()));
            m.insert("command_id".into(), json!(h.command_id.to_string()));
            m.insert("actor".into(), json!(h.actor));
            m.insert("type".into(), json!(event.type_name()));
            m.insert("event".into(), event_fields(&event));
            writeln!(out, "{}", Value::Object(m))?;
            exported += 1;
        } else if args.chain && exported > 0 {
            let mut m = serde_json::Map::new();
            m.insert("kind".into(), json!("link"));
            m.extend(chain_fields(view));
            writeln!(out, "{}", Value::Object(m))?;
        }
    }
    progress.finish();
    if exported == 0 {
        return Err(ToolError::Usage(format!(
            "conversation {sid} has no records{}",
            args.to_position
                .map_or(String::new(), |p| format!(" up to position {p}"))
        )));
    }
    let (next_position, last_hash) = last.map_or((0, events::GENESIS_HASH), |(p, h)| (p + 1, h));
    writeln!(
        out,
        "{}",
        json!({
            "kind": "head",
            "next_position": next_position,
            "last_hash": hash_str(&last_hash),
        })
    )?;
    out.flush()?;
    Ok(())
}
