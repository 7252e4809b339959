//! `at`: one conversation as it was at a position or a time, rebuilt from
//! the log with the projections' own fold.
//!
//! The walk folds, in order, the records that can touch the conversation —
//! its own records and the service-level records (a deleted service takes
//! its conversations with it) — into fresh [`ReadModels`], up to and
//! including the chosen position (or the last record at or before the
//! chosen time). Records of other conversations cannot change this one, so
//! they are checked (chain, self-hash) but not folded; the fold numbers the
//! records it sees consecutively, which is all `ReadModels::apply` asks.
//!
//! The walk also notes who acted (each record's `actor`: a chat identity,
//! or none for the trusted host and for version-1 records, which did not
//! record it): who created the conversation, added each participant,
//! posted and edited each message, and deleted messages and removed
//! participants by then. JSON shows it as `actor` (and `edited_by`, a list
//! in edit order), `null` for none; tables as ADDED_BY / POSTED_BY columns
//! (`-` for none) and "by …" notes ("by the host" for none).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use clap::{ArgGroup, Args, ValueEnum};
use engine_core::log::scan::{check_event, CANCEL_CHECK_RECORDS};
use engine_core::LogReader;
use events::{
    ConversationSid, Event, ParticipantKind, ParticipantSid, RecordHeader, ServiceSid,
    TimestampMicros,
};
use projections::{Conversation, ParticipantRow, ReadModels, RowMap, RowSink, Table};
use serde_json::{json, Value};

use crate::error::ToolError;
use crate::filter::{name_uses, parse_service, ConversationArg, NameUse};
use crate::progress::Progress;
use crate::render::{actor_cell, cell, kind_text, table};
use crate::store::{Store, StoreArgs};
use crate::timefmt::{format_micros, parse_rfc3339};

/// Output formats of `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AtFormat {
    /// One JSON object.
    Json,
    /// Readable tables.
    Table,
}

/// Arguments of `at`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("point").required(true).args(["position", "time"])))]
pub struct AtArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The conversation: a CH… SID, or the unique_name it had at that point.
    #[arg(long, value_name = "SID|UNIQUE_NAME")]
    conversation: String,
    /// The service (IS…), to tell apart unique names used in several.
    #[arg(long, value_name = "SID")]
    service: Option<String>,
    /// The state just after the record at this position.
    #[arg(long, value_name = "POSITION")]
    position: Option<u64>,
    /// The state after every record at or before this RFC 3339 time.
    #[arg(long, value_name = "RFC3339")]
    time: Option<String>,
    /// Also list who had read message N by then (read horizon ≥ N) and who
    /// had not.
    #[arg(long, value_name = "N")]
    read_by: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    format: AtFormat,
}

/// Where the fold stops.
#[derive(Debug, Clone, Copy)]
enum Point {
    Position(u64),
    Time(TimestampMicros),
}

/// Keeps the cold rows (messages) of one conversation, the only rows the
/// view reads that are not in the read models' memory; drops the rest.
struct ConversationRows {
    conversation: ConversationSid,
    rows: RowMap,
}

impl ConversationRows {
    /// Cold keys are service ‖ conversation ‖ …: whether `key` is under
    /// the conversation.
    fn keeps(&self, table: Table, key: &[u8]) -> bool {
        table.is_cold() && key.get(16..32) == Some(self.conversation.as_bytes().as_slice())
    }
}

impl RowSink for ConversationRows {
    fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        if self.keeps(table, &key) {
            self.rows.put(table, key, value);
        }
    }
    fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.rows.delete(table, key);
    }
    fn delete_range(&mut self, table: Table, from: Vec<u8>, to: Vec<u8>) {
        self.rows.delete_range(table, from, to);
    }
}

/// Who acted: a record's `actor` (`None`: the trusted host, or a
/// version-1 record).
type Actor = Option<String>;

/// A participant removed by the time asked about.
#[derive(Debug)]
struct Removed {
    sid: ParticipantSid,
    /// Identity or address, as added.
    who: String,
    position: u64,
    actor: Actor,
}

/// What the walk learnt besides the read models.
#[derive(Debug, Default)]
struct History {
    /// The last record folded (or walked past): position and time.
    as_of: Option<(u64, TimestampMicros)>,
    created_at: Option<u64>,
    /// Who created the conversation.
    created_by: Actor,
    removed_at: Option<u64>,
    /// The service the conversation was created in.
    service: Option<ServiceSid>,
    /// Who added each participant, and who they are.
    added: BTreeMap<ParticipantSid, (Actor, String)>,
    /// Participants removed, in log order.
    removed_participants: Vec<Removed>,
    /// Who posted each message, by index.
    posted_by: BTreeMap<u64, Actor>,
    /// Who made each edit, per message index, in order.
    edits: BTreeMap<u64, Vec<Actor>>,
    /// Removal position and actor per message index.
    removed_messages: BTreeMap<u64, (u64, Actor)>,
}

fn resolve(
    log: &LogReader,
    arg: &ConversationArg,
    service: Option<ServiceSid>,
    point: Point,
    quiet: bool,
) -> Result<ConversationSid, ToolError> {
    let name = match arg {
        ConversationArg::Sid(sid) => return Ok(*sid),
        ConversationArg::Name(name) => name,
    };
    let uses = name_uses(log, name, service, u64::MAX, quiet)?;
    let held = |u: &&NameUse| match point {
        Point::Position(p) => u.held_at_position(p),
        Point::Time(t) => u.held_at_time(t),
    };
    let holders: BTreeSet<(ServiceSid, ConversationSid)> = uses
        .iter()
        .filter(held)
        .map(|u| (u.service, u.conversation))
        .collect();
    match holders.len() {
        1 => Ok(holders.into_iter().next().map(|(_, c)| c).unwrap_or_default()),
        0 if uses.is_empty() => Err(ToolError::Usage(format!(
            "no conversation ever had the unique name {name:?}"
        ))),
        0 => Err(ToolError::Usage(format!(
            "no conversation had the unique name {name:?} at that point; it was held by: {}",
            uses.iter()
                .map(|u| format!(
                    "{} from position {}{}",
                    u.conversation,
                    u.from,
                    u.to.map_or(String::new(), |(p, _)| format!(" to {p}"))
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ))),
        _ => Err(ToolError::Usage(format!(
            "the unique name {name:?} was held in several services at that point ({}); pass --service",
            holders
                .iter()
                .map(|(s, c)| format!("{c} in {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn fold(
    log: &LogReader,
    conversation: ConversationSid,
    point: Point,
    quiet: bool,
) -> Result<(ReadModels, History), ToolError> {
    let stored = log.stored_end()?;
    let end = match point {
        Point::Position(p) => {
            if p >= stored {
                return Err(ToolError::Usage(format!(
                    "position {p} is past the end of the log (its last position is {})",
                    stored
                        .checked_sub(1)
                        .map_or("none: it is empty".into(), |l| l.to_string())
                )));
            }
            p + 1
        }
        Point::Time(_) => u64::MAX,
    };
    let progress = Progress::new(quiet, "fold", stored.min(end));
    let mut rm = ReadModels::new();
    let mut rows = ConversationRows {
        conversation,
        rows: RowMap::new(),
    };
    let mut history = History::default();
    let mut service: Option<ServiceSid> = None;
    let mut folded = 0u64;
    let mut walked = 0u64;
    let mut scan = log.scan(0..end);
    while let Some(item) = scan.next_record() {
        let s = item?;
        walked += 1;
        if walked % CANCEL_CHECK_RECORDS == 0 {
            progress.set(walked);
        }
        let h = &s.view.header;
        if let Point::Time(t) = point {
            // recorded_at never goes back, so the first later record ends it.
            if h.recorded_at > t {
                break;
            }
        }
        history.as_of = Some((h.position, h.recorded_at));
        let relevant = match h.conversation_sid {
            Some(c) => c == conversation,
            None => service.is_none_or(|s| s == h.service_sid),
        };
        if !relevant {
            continue;
        }
        let event = check_event(&s.view)?;
        match &event {
            Event::ConversationCreated { .. } => {
                history.created_at = Some(h.position);
                history.created_by = h.actor.clone();
                history.removed_at = None;
                service = Some(h.service_sid);
            }
            Event::ConversationRemoved { .. } => history.removed_at = Some(h.position),
            Event::ServiceDeleted if service == Some(h.service_sid) => {
                history.removed_at = Some(h.position)
            }
            Event::ParticipantAdded {
                participant_sid,
                kind,
                ..
            } => {
                history
                    .added
                    .insert(*participant_sid, (h.actor.clone(), kind_who(kind)));
            }
            Event::ParticipantRemoved {
                participant_sid, ..
            } => history.removed_participants.push(Removed {
                sid: *participant_sid,
                who: history
                    .added
                    .get(participant_sid)
                    .map_or_else(String::new, |(_, who)| who.clone()),
                position: h.position,
                actor: h.actor.clone(),
            }),
            Event::MessageAdded { index, .. } => {
                history.posted_by.insert(*index, h.actor.clone());
            }
            Event::MessageUpdated { index, .. } => history
                .edits
                .entry(*index)
                .or_default()
                .push(h.actor.clone()),
            Event::MessageRemoved { index, .. } => {
                history
                    .removed_messages
                    .insert(*index, (h.position, h.actor.clone()));
            }
            _ => {}
        }
        let header = RecordHeader {
            position: folded,
            ..h.clone()
        };
        rm.apply(&header, &event, &mut rows);
        folded += 1;
        if folded % CANCEL_CHECK_RECORDS == 0 {
            // Drops the messages staged for deciding within a batch.
            rm.finish_batch(&mut rows);
        }
    }
    rm.finish_batch(&mut rows);
    rm.set_cold(std::sync::Arc::new(rows.rows));
    progress.finish();
    history.service = service;
    Ok((rm, history))
}

fn find(rm: &ReadModels, sid: &ConversationSid) -> Option<(ServiceSid, Conversation)> {
    rm.services()
        .find_map(|svc| Some((svc.row().sid, svc.conversation_by_sid(sid)?.clone())))
}

/// Identity or address of a participant kind.
fn kind_who(kind: &ParticipantKind) -> String {
    match kind {
        ParticipantKind::Chat { identity, .. } => identity.clone(),
        ParticipantKind::Messaging(b) => b.address.clone(),
    }
}

/// Who acted, for table notes: the identity, or "the host".
fn by_whom(actor: &Actor) -> String {
    actor
        .as_deref()
        .map_or_else(|| "the host".to_string(), cell)
}

/// "by alice at POSITION" (or "by the host at POSITION"), for table notes.
fn by_at(actor: &Actor, position: u64) -> String {
    format!("by {} at {position}", by_whom(actor))
}

fn participant_json(p: &ParticipantRow, c: &Conversation, history: &History) -> Value {
    let (kind, identity, binding, projected) = match &p.kind {
        ParticipantKind::Chat {
            identity,
            projected_address,
        } => (
            "chat",
            Some(identity.clone()),
            None,
            projected_address.clone(),
        ),
        ParticipantKind::Messaging(b) => ("messaging", None, Some(b.clone()), None),
    };
    json!({
        "sid": p.sid.to_string(),
        "kind": kind,
        "identity": identity,
        "messaging_binding": binding.map(|b| json!({
            "address": b.address,
            "proxy_address": b.proxy_address,
            "projected_address": b.projected_address,
        })),
        "projected_address": projected,
        "user_sid": p.user_sid.map(|u| u.to_string()),
        "role_sid": p.role_sid.map(|r| r.to_string()),
        "attributes": p.attributes,
        "date_created": format_micros(p.date_created),
        "date_updated": format_micros(p.date_updated),
        "last_read_message_index": p.last_read_message_index,
        "last_read_timestamp": p.last_read_timestamp.map(format_micros),
        "unread_messages_count": p.last_read_message_index.map(|h| c.unread_after(h)),
        "actor": history.added.get(&p.sid).and_then(|(actor, _)| actor.clone()),
    })
}

fn who(p: &ParticipantRow) -> String {
    kind_who(&p.kind)
}

/// Runs `at`.
pub fn run(args: &AtArgs, quiet: bool) -> Result<(), ToolError> {
    let store = Store::open(&args.store)?;
    let log = store.reader();
    let service = args.service.as_deref().map(parse_service).transpose()?;
    let point = match (args.position, &args.time) {
        (Some(p), _) => Point::Position(p),
        (None, Some(t)) => {
            Point::Time(parse_rfc3339(t).map_err(|e| ToolError::Usage(format!("--time: {e}")))?)
        }
        (None, None) => return Err(ToolError::Usage("give --position or --time".into())),
    };
    let arg = ConversationArg::parse(&args.conversation);
    let sid = resolve(log, &arg, service, point, quiet)?;
    let (rm, history) = fold(log, sid, point, quiet)?;
    let Some((as_of_position, as_of_time)) = history.as_of else {
        return Err(ToolError::Usage(
            "nothing was recorded at or before that time".into(),
        ));
    };
    let Some((service_sid, conv)) = find(&rm, &sid) else {
        let why = match (history.created_at, history.removed_at) {
            (None, _) => "it had not been created yet".to_string(),
            (Some(_), Some(r)) => format!("it was removed at position {r}"),
            (Some(c), None) => match history.service {
                Some(s) if rm.service(&s).is_none() => format!(
                    "it was created at position {c} in service {s}, which does not exist then \
                     (no service_created record before it)"
                ),
                _ => format!("it was created at position {c} but is gone"),
            },
        };
        return Err(ToolError::Usage(format!(
            "conversation {sid} did not exist at position {as_of_position}: {why}"
        )));
    };
    if service.is_some_and(|s| s != service_sid) {
        return Err(ToolError::Usage(format!(
            "conversation {sid} belongs to service {service_sid}, not the one given"
        )));
    }
    let row = conv.row();
    let messages = rm
        .scan_messages(&conv, .., false, usize::MAX)
        .map_err(|e| ToolError::Io(e.to_string()))?;
    let deleted: Vec<(u64, &(u64, Actor))> = history
        .removed_messages
        .iter()
        .filter(|(i, _)| conv.is_deleted(**i))
        .map(|(i, removal)| (*i, removal))
        .collect();
    let posted_by = |index: u64| history.posted_by.get(&index).cloned().flatten();
    let edited_by = |index: u64| history.edits.get(&index).cloned().unwrap_or_default();
    let read_by = args.read_by.map(|n| {
        let (read, unread): (Vec<&ParticipantRow>, Vec<&ParticipantRow>) = conv
            .participants()
            .partition(|p| p.last_read_message_index.is_some_and(|h| h >= n));
        (n, read, unread)
    });

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        AtFormat::Json => {
            let messages: Vec<Value> = messages
                .iter()
                .map(|m| {
                    json!({
                        "index": m.index,
                        "sid": m.sid.to_string(),
                        "author": m.author,
                        "participant_sid": m.participant_sid.map(|p| p.to_string()),
                        "body": m.body,
                        "media": m.media,
                        "attributes": m.attributes,
                        "date_created": format_micros(m.date_created),
                        "date_updated": format_micros(m.date_updated),
                        "edits": edited_by(m.index).len(),
                        "actor": posted_by(m.index),
                        "edited_by": edited_by(m.index),
                    })
                })
                .collect();
            let value = json!({
                "as_of": {
                    "position": as_of_position,
                    "recorded_at": format_micros(as_of_time),
                    "requested_position": args.position,
                    "requested_time": args.time,
                },
                "conversation": {
                    "sid": row.sid.to_string(),
                    "chat_service_sid": service_sid.to_string(),
                    "unique_name": row.unique_name,
                    "friendly_name": row.friendly_name,
                    "attributes": row.attributes,
                    "state": row.state,
                    "timers": row.timers,
                    "messaging_service_sid": row.messaging_service_sid,
                    "date_created": format_micros(row.date_created),
                    "date_updated": format_micros(row.date_updated),
                    "last_message_index": conv.last_message_index(),
                    "created_at_position": history.created_at,
                    "actor": history.created_by,
                },
                "participants": conv.participants().map(|p| participant_json(p, &conv, &history)).collect::<Vec<_>>(),
                "removed_participants": history.removed_participants.iter().map(|r| json!({
                    "sid": r.sid.to_string(),
                    "who": r.who,
                    "position": r.position,
                    "actor": r.actor,
                })).collect::<Vec<_>>(),
                "messages": messages,
                "deleted_message_indexes": deleted.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
                "deleted_messages": deleted.iter().map(|(i, (position, actor))| json!({
                    "index": i,
                    "position": position,
                    "actor": actor,
                })).collect::<Vec<_>>(),
                "read_by": read_by.as_ref().map(|(n, read, unread)| json!({
                    "index": n,
                    "posted": conv.last_message_index().is_some_and(|l| l >= *n),
                    "read": read.iter().map(|p| json!({"sid": p.sid.to_string(), "who": who(p), "last_read_message_index": p.last_read_message_index})).collect::<Vec<_>>(),
                    "not_read": unread.iter().map(|p| json!({"sid": p.sid.to_string(), "who": who(p), "last_read_message_index": p.last_read_message_index})).collect::<Vec<_>>(),
                })),
            });
            writeln!(out, "{value}")?;
        }
        AtFormat::Table => {
            writeln!(
                out,
                "conversation {} in service {service_sid}, as of position {as_of_position} ({})",
                row.sid,
                format_micros(as_of_time)
            )?;
            writeln!(
                out,
                "  unique_name: {}  friendly_name: {}  state: {:?}",
                row.unique_name.as_deref().unwrap_or("-"),
                row.friendly_name.as_deref().unwrap_or("-"),
                row.state
            )?;
            writeln!(out, "  attributes: {}", cell(&row.attributes))?;
            writeln!(
                out,
                "  created: {} ({})  updated: {}",
                format_micros(row.date_created),
                by_at(&history.created_by, history.created_at.unwrap_or_default()),
                format_micros(row.date_updated)
            )?;
            writeln!(out)?;
            let rows: Vec<Vec<String>> = conv
                .participants()
                .map(|p| {
                    vec![
                        p.sid.to_string(),
                        kind_text(&p.kind),
                        p.last_read_message_index
                            .map_or("-".into(), |i| i.to_string()),
                        p.last_read_message_index
                            .map_or("-".into(), |h| conv.unread_after(h).to_string()),
                        actor_cell(&history.added.get(&p.sid).and_then(|(a, _)| a.clone())),
                        cell(&p.attributes),
                    ]
                })
                .collect();
            writeln!(out, "PARTICIPANTS ({})", rows.len())?;
            out.write_all(
                table(
                    &[
                        "SID",
                        "WHO",
                        "LAST_READ",
                        "UNREAD",
                        "ADDED_BY",
                        "ATTRIBUTES",
                    ],
                    &rows,
                )
                .as_bytes(),
            )?;
            if !history.removed_participants.is_empty() {
                let list: Vec<String> = history
                    .removed_participants
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} ({})",
                            r.sid,
                            cell(&r.who),
                            by_at(&r.actor, r.position)
                        )
                    })
                    .collect();
                writeln!(out, "removed by then: {}", list.join(", "))?;
            }
            writeln!(out)?;
            let rows: Vec<Vec<String>> = messages
                .iter()
                .map(|m| {
                    let edits = edited_by(m.index);
                    vec![
                        format!("#{}", m.index),
                        m.author.clone(),
                        cell(m.body.as_deref().unwrap_or("")),
                        match edits.last() {
                            None => String::new(),
                            Some(last) => {
                                format!("edited ×{} (last by {})", edits.len(), by_whom(last))
                            }
                        },
                        format_micros(m.date_created),
                        actor_cell(&posted_by(m.index)),
                    ]
                })
                .collect();
            writeln!(out, "MESSAGES ({})", rows.len())?;
            out.write_all(
                table(
                    &["INDEX", "AUTHOR", "BODY", "EDITS", "POSTED", "POSTED_BY"],
                    &rows,
                )
                .as_bytes(),
            )?;
            if !deleted.is_empty() {
                let list: Vec<String> = deleted
                    .iter()
                    .map(|(i, (position, actor))| format!("#{i} ({})", by_at(actor, *position)))
                    .collect();
                writeln!(out, "deleted by then: {}", list.join(", "))?;
            }
            if let Some((n, read, unread)) = &read_by {
                writeln!(out)?;
                let names = |ps: &[&ParticipantRow]| {
                    if ps.is_empty() {
                        "nobody".to_string()
                    } else {
                        ps.iter()
                            .map(|p| format!("{} ({})", who(p), p.sid))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                };
                writeln!(out, "message #{n} read by: {}", names(read))?;
                writeln!(out, "message #{n} not read by: {}", names(unread))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
