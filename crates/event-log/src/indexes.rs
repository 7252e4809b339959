//! The log's index column families checked against the log, and
//! re-derived from it.
//!
//! The writer keeps three indexes beside the records (layout in
//! [`super::keys`]): the stream index ([`CF_STREAM`]: one entry per record,
//! under its stream), the stream versions ([`CF_STREAMS`]: each stream's
//! record count) and the idempotency entries ([`CF_COMMANDS`]: one per
//! applied command, under its scope and id). All three follow from the
//! records alone, except the fingerprints, which are hashes of the commands
//! and the commands are not in the log.
//!
//! [`check_indexes`] reads the log and the three column families from one
//! view ([`IndexView`]) and reports the first entry that is missing, extra
//! or wrong, as an [`IndexFault`] naming the column family, the key and the
//! position. [`rebuild_indexes`] writes what the check would expect, in one
//! `WriteBatch`; an idempotency entry it has to write gets the fingerprint
//! [`FINGERPRINT_UNKNOWN`] (a later command under that key in that scope
//! is then answered as a duplicate, whatever it is).
//!
//! Runs of records: a command's records are contiguous and share its
//! command id and service. The log is cut into runs where the command id or
//! the service changes, or where a record is a `ServiceCreated` (always the
//! first record of the account-level command that created it). Each run is
//! one command; its scope is [`events::idempotency_scope_of_first_record`]
//! of its first record. Two runs with the same scope and command id mean a
//! command was applied twice: a fault.
//!
//! Two cases the records alone cannot cut. A `CreateService` followed at
//! once by a command in the new service under the same command id (legal:
//! they are in different scopes) reads as one run: a stored entry of that
//! service's scope starting inside such an account-scope run marks the cut;
//! without one (the entry was lost), the two commands are re-derived as
//! one, under the account scope. And a command applied twice in a row
//! (possible only after its entry was lost) reads as one run: the check
//! reports the stored entry's count as wrong.
//!
//! Both functions hold, per record, its position in its stream's list
//! (8 bytes) and, per command, its key and entry (about 50 bytes), in
//! memory.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fmt;

use events::{hex, idempotency_scope_of_first_record, CommandId, ServiceSid};
use rocksdb::{IteratorMode, ReadOptions, WriteBatch, DB};

use super::error::{hash_hex, ChainFault, FaultKind, ReadError};
use super::keys::{
    command_key, command_value, parse_command_value, parse_position_key, stream_id,
    stream_index_key, stream_version_value, CommandEntry, CF_COMMANDS, CF_LOG, CF_STREAM,
    CF_STREAMS, COMMAND_KEY_BYTES, FINGERPRINT_UNKNOWN, STREAM_ID_BYTES,
};
use super::read::decode_at;

/// What is wrong with one index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexFaultKind {
    /// The log has a record (or command) this entry should index, and the
    /// column family has no entry for it.
    Missing,
    /// The column family has an entry the log does not account for.
    Unexpected,
    /// The entry exists but its value disagrees with the log.
    WrongValue {
        /// What the log says it should be.
        expected: String,
        /// What is stored.
        found: String,
    },
    /// The log holds two runs of records for one command id in one scope:
    /// the command was applied twice.
    AppliedTwice {
        /// Where the first run starts.
        first_position: u64,
    },
}

impl fmt::Display for IndexFaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexFaultKind::Missing => f.write_str("entry missing"),
            IndexFaultKind::Unexpected => f.write_str("entry the log does not account for"),
            IndexFaultKind::WrongValue { expected, found } => {
                write!(f, "value is {found}, the log says {expected}")
            }
            IndexFaultKind::AppliedTwice { first_position } => write!(
                f,
                "the command was applied twice (its first run starts at position {first_position})"
            ),
        }
    }
}

/// An index entry that disagrees with the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "index fault in column family {column_family}, key {key}{}: {kind}; \
     `replay-tool rebuild` (Engine::rebuild) re-derives the index from the log",
    position_note(.position)
)]
pub struct IndexFault {
    /// The column family: [`CF_STREAM`], [`CF_STREAMS`] or [`CF_COMMANDS`].
    pub column_family: &'static str,
    /// The entry's key, in hex.
    pub key: String,
    /// The log position concerned, when there is one: the record a stream
    /// entry indexes, the last record of a stream whose version is wrong,
    /// or the first record of a command.
    pub position: Option<u64>,
    /// What is wrong.
    pub kind: IndexFaultKind,
}

/// How a fault's position reads in its message.
fn position_note(position: &Option<u64>) -> String {
    match position {
        Some(p) => format!(" (position {p})"),
        None => String::new(),
    }
}

/// Why [`check_indexes`] or [`rebuild_indexes`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// An index entry disagrees with the log.
    #[error(transparent)]
    Fault(#[from] IndexFault),
    /// The log itself could not be read: a damaged record (named by
    /// position), or a storage error.
    #[error(transparent)]
    Log(#[from] ReadError),
    /// One of the log's column families is missing: not a Colloquy log.
    #[error("column family {0:?} is missing: not a Colloquy log")]
    MissingColumnFamily(&'static str),
}

impl From<rocksdb::Error> for IndexError {
    fn from(e: rocksdb::Error) -> Self {
        IndexError::Log(ReadError::Storage(e))
    }
}

/// What [`check_indexes`] checked, or [`rebuild_indexes`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexReport {
    /// Records in the log (= stream-index entries).
    pub records: u64,
    /// Streams (= stream-version entries).
    pub streams: u64,
    /// Commands (= idempotency entries).
    pub commands: u64,
    /// Entries written or deleted by [`rebuild_indexes`] (0 for a check).
    pub repaired: u64,
    /// Idempotency entries [`rebuild_indexes`] wrote with
    /// [`FINGERPRINT_UNKNOWN`] (0 for a check).
    pub unknown_fingerprints: u64,
}

/// What the log says the indexes should hold.
struct Expected {
    records: u64,
    /// Per stream, its records' positions in order.
    streams: BTreeMap<[u8; STREAM_ID_BYTES], Vec<u64>>,
    /// Per command key, its run.
    commands: BTreeMap<[u8; COMMAND_KEY_BYTES], (u64, u32)>,
}

/// The run of records being read.
struct Run {
    key: [u8; COMMAND_KEY_BYTES],
    /// Whether it was written by an account-level command.
    account_scope: bool,
    command_id: CommandId,
    service: ServiceSid,
    first: u64,
    count: u32,
}

fn handle<'a>(db: &'a DB, name: &'static str) -> Result<&'a rocksdb::ColumnFamily, IndexError> {
    db.cf_handle(name)
        .ok_or(IndexError::MissingColumnFamily(name))
}

/// How [`check_indexes`] gets one consistent view of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexView {
    /// Read from one RocksDB snapshot: for a handle that may be written
    /// meanwhile (the engine's own, or a read-only instance).
    Snapshot,
    /// Read the handle as it is: for a handle whose view cannot change
    /// during the call, such as a secondary instance that is not caught up
    /// meanwhile (RocksDB's secondary mode has no snapshots).
    Fixed,
}

/// The view every read of one check goes through.
type View<'a> = Option<rocksdb::Snapshot<'a>>;

fn read_options(view: &View<'_>) -> ReadOptions {
    let mut options = ReadOptions::default();
    if let Some(snapshot) = view {
        options.set_snapshot(snapshot);
    }
    options
}

fn open_view(db: &DB, view: IndexView) -> View<'_> {
    match view {
        IndexView::Snapshot => Some(db.snapshot()),
        IndexView::Fixed => None,
    }
}

/// The first positions of the well-formed stored idempotency entries, with
/// their keys: where a stored entry may cut an account-scope run.
fn stored_cuts(
    db: &DB,
    view: &View<'_>,
) -> Result<BTreeMap<u64, [u8; COMMAND_KEY_BYTES]>, IndexError> {
    let mut cuts = BTreeMap::new();
    let commands = handle(db, CF_COMMANDS)?;
    for item in db.iterator_cf_opt(commands, read_options(view), IteratorMode::Start) {
        let (key, value) = item.map_err(ReadError::Storage)?;
        if let (Ok(key), Some(entry)) = (
            <[u8; COMMAND_KEY_BYTES]>::try_from(key.as_ref()),
            parse_command_value(&value),
        ) {
            cuts.insert(entry.first_position, key);
        }
    }
    Ok(cuts)
}

/// Walks the log (positions dense from 0, every record decoding) and
/// derives the indexes.
fn derive(db: &DB, view: &View<'_>) -> Result<Expected, IndexError> {
    let mut expected = Expected {
        records: 0,
        streams: BTreeMap::new(),
        commands: BTreeMap::new(),
    };
    let cuts = stored_cuts(db, view)?;
    let mut run: Option<Run> = None;
    let log = handle(db, CF_LOG)?;
    for item in db.iterator_cf_opt(log, read_options(view), IteratorMode::Start) {
        let (key, value) = item.map_err(ReadError::Storage)?;
        let position = expected.records;
        match parse_position_key(&key) {
            None => {
                return Err(ReadError::Fault(ChainFault {
                    position,
                    kind: FaultKind::MalformedKey { len: key.len() },
                })
                .into())
            }
            Some(found) if found != position => {
                return Err(ReadError::Fault(ChainFault {
                    position,
                    kind: FaultKind::Gap { next_found: found },
                })
                .into())
            }
            Some(_) => {}
        }
        let record = decode_at(position, &value)?;
        let event = record.event().map_err(|source| {
            ReadError::Fault(ChainFault {
                position,
                kind: FaultKind::Event(source),
            })
        })?;
        let header = &record.header;
        let stream = stream_id(&header.service_sid, header.conversation_sid.as_ref());
        expected.streams.entry(stream).or_default().push(position);
        let own_key = command_key(Some(&header.service_sid), &header.command_id);
        let continues = run.as_ref().is_some_and(|r| {
            r.command_id == header.command_id
                && r.service == header.service_sid
                && !matches!(event, events::Event::ServiceCreated { .. })
                && !(r.account_scope && cuts.get(&position) == Some(&own_key))
        });
        match run.as_mut() {
            Some(r) if continues => r.count += 1,
            _ => {
                if let Some(done) = run.take() {
                    close_run(&mut expected, done)?;
                }
                let scope = idempotency_scope_of_first_record(&header.service_sid, &event);
                run = Some(Run {
                    key: command_key(scope.as_ref(), &header.command_id),
                    account_scope: scope.is_none(),
                    command_id: header.command_id,
                    service: header.service_sid,
                    first: position,
                    count: 1,
                });
            }
        }
        expected.records += 1;
    }
    if let Some(done) = run.take() {
        close_run(&mut expected, done)?;
    }
    Ok(expected)
}

fn close_run(expected: &mut Expected, run: Run) -> Result<(), IndexError> {
    match expected.commands.entry(run.key) {
        Entry::Vacant(slot) => {
            slot.insert((run.first, run.count));
            Ok(())
        }
        Entry::Occupied(earlier) => Err(IndexFault {
            column_family: CF_COMMANDS,
            key: hex::encode(&run.key),
            position: Some(run.first),
            kind: IndexFaultKind::AppliedTwice {
                first_position: earlier.get().0,
            },
        }
        .into()),
    }
}

/// One difference between a column family and what the log implies.
struct Difference {
    key: Vec<u8>,
    /// The value to store (`None`: delete the entry).
    want: Option<Vec<u8>>,
    fault: IndexFault,
}

/// Walks one column family in key order beside the expected entries (in
/// the same order) and calls `on` for every difference; `on` returns
/// `false` to stop. `agrees(stored, expected)` decides whether a stored
/// value is acceptable; `position` names the position an entry concerns.
#[allow(clippy::too_many_arguments)]
fn compare(
    db: &DB,
    view: &View<'_>,
    name: &'static str,
    expected: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>, Option<u64>)>,
    agrees: &dyn Fn(&[u8], &[u8]) -> bool,
    show: &dyn Fn(&[u8]) -> String,
    stored_position: &dyn Fn(&[u8]) -> Option<u64>,
    on: &mut dyn FnMut(Difference) -> bool,
) -> Result<(), IndexError> {
    let cf = handle(db, name)?;
    let mut stored = db.iterator_cf_opt(cf, read_options(view), IteratorMode::Start);
    let mut have = stored.next().transpose().map_err(ReadError::Storage)?;
    let mut want = expected.next();
    loop {
        let difference = match (&have, &want) {
            (None, None) => return Ok(()),
            (Some((k, v)), Some((wk, wv, position))) if k.as_ref() == wk.as_slice() => {
                let difference = (!agrees(v, wv)).then(|| Difference {
                    key: wk.clone(),
                    want: Some(wv.clone()),
                    fault: IndexFault {
                        column_family: name,
                        key: hex::encode(wk),
                        position: *position,
                        kind: IndexFaultKind::WrongValue {
                            expected: show(wv),
                            found: show(v),
                        },
                    },
                });
                have = stored.next().transpose().map_err(ReadError::Storage)?;
                want = expected.next();
                difference
            }
            (Some((k, _)), Some((wk, _, _))) if k.as_ref() < wk.as_slice() => {
                let difference = unexpected(name, k, stored_position);
                have = stored.next().transpose().map_err(ReadError::Storage)?;
                Some(difference)
            }
            (Some((k, _)), None) => {
                let difference = unexpected(name, k, stored_position);
                have = stored.next().transpose().map_err(ReadError::Storage)?;
                Some(difference)
            }
            (_, Some((wk, wv, position))) => {
                let difference = Difference {
                    key: wk.clone(),
                    want: Some(wv.clone()),
                    fault: IndexFault {
                        column_family: name,
                        key: hex::encode(wk),
                        position: *position,
                        kind: IndexFaultKind::Missing,
                    },
                };
                want = expected.next();
                Some(difference)
            }
        };
        if let Some(difference) = difference {
            if !on(difference) {
                return Ok(());
            }
        }
    }
}

fn unexpected(
    name: &'static str,
    key: &[u8],
    stored_position: &dyn Fn(&[u8]) -> Option<u64>,
) -> Difference {
    Difference {
        key: key.to_vec(),
        want: None,
        fault: IndexFault {
            column_family: name,
            key: hex::encode(key),
            position: stored_position(key),
            kind: IndexFaultKind::Unexpected,
        },
    }
}

fn show_version(value: &[u8]) -> String {
    match super::keys::parse_stream_version_value(value) {
        Some(version) => format!("version {version}"),
        None => format!("a malformed {}-byte value", value.len()),
    }
}

fn show_command(value: &[u8]) -> String {
    match parse_command_value(value) {
        Some(entry) => format!(
            "positions {}..{} (fingerprint {})",
            entry.first_position,
            entry.first_position + u64::from(entry.count),
            if entry.fingerprint == FINGERPRINT_UNKNOWN {
                "unknown".to_string()
            } else {
                hash_hex(&entry.fingerprint)
            }
        ),
        None => format!("a malformed {}-byte value", value.len()),
    }
}

/// A stored commands value agrees with the log if it parses and names the
/// command's run; its fingerprint cannot be checked against the log.
fn command_agrees(stored: &[u8], expected: &[u8]) -> bool {
    match (parse_command_value(stored), parse_command_value(expected)) {
        (Some(s), Some(e)) => s.first_position == e.first_position && s.count == e.count,
        _ => false,
    }
}

/// Compares the three column families with `expected`, calling `on` per
/// difference (with the column family's name) until it returns `false`.
fn compare_all(
    db: &DB,
    view: &View<'_>,
    expected: &Expected,
    on: &mut dyn FnMut(&'static str, Difference) -> bool,
) -> Result<bool, IndexError> {
    let mut go_on = true;
    let mut stream_entries = expected.streams.iter().flat_map(|(stream, positions)| {
        positions
            .iter()
            .map(move |p| (stream_index_key(stream, *p).to_vec(), Vec::new(), Some(*p)))
    });
    compare(
        db,
        view,
        CF_STREAM,
        &mut stream_entries,
        &|stored, _| stored.is_empty(),
        &|value| format!("{} bytes", value.len()),
        &|key| super::keys::parse_stream_index_key(key).map(|(_, p)| p),
        &mut |d| {
            go_on = on(CF_STREAM, d);
            go_on
        },
    )?;
    if !go_on {
        return Ok(false);
    }
    let mut versions = expected.streams.iter().map(|(stream, positions)| {
        (
            stream.to_vec(),
            stream_version_value(positions.len() as u64).to_vec(),
            positions.last().copied(),
        )
    });
    compare(
        db,
        view,
        CF_STREAMS,
        &mut versions,
        &|stored, want| stored == want,
        &show_version,
        &|_| None,
        &mut |d| {
            go_on = on(CF_STREAMS, d);
            go_on
        },
    )?;
    if !go_on {
        return Ok(false);
    }
    let mut commands = expected.commands.iter().map(|(key, (first, count))| {
        let entry = CommandEntry {
            first_position: *first,
            count: *count,
            fingerprint: FINGERPRINT_UNKNOWN,
        };
        (key.to_vec(), command_value(&entry).to_vec(), Some(*first))
    });
    compare(
        db,
        view,
        CF_COMMANDS,
        &mut commands,
        &command_agrees,
        &show_command,
        &|_| None,
        &mut |d| {
            go_on = on(CF_COMMANDS, d);
            go_on
        },
    )?;
    Ok(go_on)
}

/// Checks the stream index, the stream versions and the idempotency
/// entries against the log, all read from one `view`: every record has
/// its stream-index entry and there is no other entry; each stream's
/// version is its record count and no other stream has one; every command
/// (run of records, see the module docs) has its entry in its scope,
/// pointing at its records, and there is no other entry. Fingerprints are
/// not checked (the log cannot tell them), only that the value is well
/// formed.
///
/// The log is read as far as it goes: the chain itself (hashes, links) is
/// [`super::EventLog::verify`]'s job, but a record that does not decode or
/// a gap stops the check.
///
/// Errors: [`IndexError::Fault`] for the first entry (in column family
/// order stream, streams, commands, then key order) that disagrees, naming
/// the column family, the key and the position; [`IndexError::Log`] for a
/// damaged record or a storage error; [`IndexError::MissingColumnFamily`].
pub fn check_indexes(db: &DB, view: IndexView) -> Result<IndexReport, IndexError> {
    let view = open_view(db, view);
    let expected = derive(db, &view)?;
    let mut first = None;
    compare_all(db, &view, &expected, &mut |_, d| {
        first = Some(d.fault);
        false
    })?;
    if let Some(fault) = first {
        return Err(fault.into());
    }
    Ok(IndexReport {
        records: expected.records,
        streams: expected.streams.len() as u64,
        commands: expected.commands.len() as u64,
        repaired: 0,
        unknown_fingerprints: 0,
    })
}

/// Re-derives the stream index, the stream versions and the idempotency
/// entries from the log and writes every difference (missing, extra or
/// wrong entries) in one `WriteBatch`, so the three column families then
/// pass [`check_indexes`]. Needs the store alone (no writer running).
///
/// Fingerprints cannot be recomputed from the log (it does not hold the
/// commands): an existing entry that parses and points at its command's
/// records keeps its fingerprint; any other entry is written with
/// [`FINGERPRINT_UNKNOWN`], which answers any later command with that key
/// in that scope as a duplicate of the original (it cannot tell a reuse).
///
/// Errors: [`IndexError::Log`] for a damaged record (nothing is written:
/// repair or restore the log first) or a storage error;
/// [`IndexError::Fault`] with [`IndexFaultKind::AppliedTwice`] when the
/// log itself holds one command twice (nothing is written);
/// [`IndexError::MissingColumnFamily`].
pub fn rebuild_indexes(db: &DB) -> Result<IndexReport, IndexError> {
    let view = open_view(db, IndexView::Snapshot);
    let expected = derive(db, &view)?;
    let mut differences = Vec::new();
    compare_all(db, &view, &expected, &mut |name, d| {
        differences.push((name, d));
        true
    })?;
    let mut batch = WriteBatch::default();
    let mut report = IndexReport {
        records: expected.records,
        streams: expected.streams.len() as u64,
        commands: expected.commands.len() as u64,
        repaired: differences.len() as u64,
        unknown_fingerprints: 0,
    };
    for (name, difference) in differences {
        let cf = handle(db, name)?;
        match difference.want {
            Some(value) => {
                if name == CF_COMMANDS {
                    report.unknown_fingerprints += 1;
                }
                batch.put_cf(cf, &difference.key, value);
            }
            None => batch.delete_cf(cf, &difference.key),
        }
    }
    drop(view);
    db.write(batch)?;
    Ok(report)
}

/// The idempotency entry of `command_id` in `scope` (`None`: the account
/// scope), if that command was applied.
///
/// Errors: [`ReadError::Storage`]; [`ReadError::Corrupt`] for a malformed
/// stored value.
pub fn command_entry(
    db: &DB,
    scope: Option<&ServiceSid>,
    command_id: &CommandId,
) -> Result<Option<CommandEntry>, ReadError> {
    let cf = db.cf_handle(CF_COMMANDS).ok_or(ReadError::Corrupt {
        column_family: CF_COMMANDS,
        detail: "the column family is missing".to_string(),
    })?;
    match db.get_pinned_cf(cf, command_key(scope, command_id))? {
        None => Ok(None),
        Some(value) => parse_command_value(&value)
            .map(Some)
            .ok_or_else(|| ReadError::Corrupt {
                column_family: CF_COMMANDS,
                detail: format!(
                    "the entry of command {command_id} is {} bytes, not {}",
                    value.len(),
                    super::keys::COMMAND_VALUE_BYTES
                ),
            }),
    }
}
