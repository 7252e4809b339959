//! Walking the `log` column family: in order on one thread
//! ([`SeqScan`]), or split into segments checked on every core
//! ([`par_scan`]).
//!
//! Both make every check engine-core's reader makes — 8-byte keys,
//! contiguous positions from the start (a missing record is a
//! [`FaultKind::Gap`]), decode and self-hash, key/header agreement and the
//! `prev_hash` links — and report the first fault by position, with the same
//! [`ChainFault`] engine-core would give.
//!
//! The parallel walk splits `0..head` into segments of
//! [`SEGMENT_RECORDS`]. Each worker thread takes the next segment, walks it
//! with its own RocksDB iterator (so block reads and decompression run in
//! parallel too) and checks everything inside it; the links between
//! segments are checked when results are merged in order. Workers stop
//! early once a fault is found before their segment.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use engine_core::log::files::{self, LiveFiles, ManifestFiles};
use engine_core::log::keys::{parse_position_key, position_key, CF_LOG};
use engine_core::{ChainFault, FaultKind, LogHead, ReadError};
use events::{Event, Hash, RecordHeader, TimestampMicros, GENESIS_HASH};
use rocksdb::{DBRawIteratorWithThreadMode, ReadOptions, DB};

use crate::check::{check_event, check_link, decode_checked, RecordView};
use crate::error::ToolError;
use crate::store::{Store, StoreArgs};
use crate::validate::is_valid_payload;

/// Records in one segment of a parallel walk: large enough that seeking a
/// fresh iterator is noise, small enough that two cores share the work
/// evenly and progress moves smoothly.
pub const SEGMENT_RECORDS: u64 = 32_768;
/// Records a worker checks between looks at the cancellation flag.
pub const CANCEL_CHECK_RECORDS: u64 = 4_096;
/// RocksDB readahead for sequential walks, in bytes.
pub const READAHEAD_BYTES: usize = 4 * 1024 * 1024;
/// Worker threads of a parallel walk when the core count is unknown.
pub const WORKERS_FALLBACK: usize = 2;

fn log_cf(db: &DB) -> Result<&rocksdb::ColumnFamily, ToolError> {
    db.cf_handle(CF_LOG)
        .ok_or_else(|| ToolError::Usage(format!("no {CF_LOG:?} column family: not a Colloquy log")))
}

/// The read options of every walk: block checksums verified, readahead,
/// and no block-cache fill (a walk reads every block once; the cache is
/// the host's).
pub fn read_options() -> ReadOptions {
    let mut opts = ReadOptions::default();
    // RocksDB's default, stated: a block that fails its checksum is an
    // error (classified as damage), never data.
    opts.set_verify_checksums(true);
    opts.set_readahead_size(READAHEAD_BYTES);
    // A walk reads every block once: keep the cache for the host.
    opts.fill_cache(false);
    opts
}

fn chain_fault(position: u64, kind: FaultKind) -> ReadError {
    ReadError::Fault(ChainFault { position, kind })
}

/// Opens the store as [`Store::open`] does and checks its table files
/// before anything is read, so that no subcommand prints a shorter history
/// of a damaged store:
///
/// - the MANIFEST is read before the open and again after it; every table
///   file live in both readings must be in the opened view (a RocksDB
///   secondary silently leaves out a file it cannot open, and falls back
///   to an earlier, shorter state of the store);
/// - every `log` table file of the view must lie below the last stored
///   position;
/// - an open that RocksDB refuses with a corruption report is damage too.
///
/// Errors: [`ToolError::Read`] with [`ReadError::Damaged`] (exit 1) naming
/// the file and, for the log, the first position affected; otherwise as
/// [`Store::open`], and [`ReadError::Io`] (exit 2) if the MANIFEST cannot
/// be read.
pub fn open_checked(args: &StoreArgs) -> Result<Store, ToolError> {
    let dir = args.dir();
    // Without a CURRENT file `Store::open` says what is wrong.
    let before = dir
        .join("CURRENT")
        .is_file()
        .then(|| ManifestFiles::read(dir));
    let store = match Store::open(args) {
        Ok(store) => store,
        // RocksDB's open refused the store: name the damaged table file if
        // its message points at one (damage found before RocksDB opened it,
        // a WAL or the head marker, is already named).
        Err(refused) => {
            let message = match &refused {
                ToolError::Io(message) | ToolError::Mismatch(message) => message.clone(),
                _ => return Err(refused),
            };
            let manifest = before.as_ref().and_then(|b| b.as_ref().ok());
            let lookup = |n: u64| manifest.and_then(|m| m.get(n).cloned());
            return Err(match files::damage_from_message(&message, &lookup, None) {
                // RocksDB did not say which file: find it with a secondary.
                Some(damage) if damage.file.is_none() => {
                    let located = tempfile::Builder::new()
                        .prefix("replay-tool-probe-")
                        .tempdir()
                        .ok()
                        .and_then(|scratch| {
                            files::locate_unopenable(dir, scratch.path(), &message)
                        });
                    ToolError::Read(located.unwrap_or(damage).into())
                }
                Some(damage) => ToolError::Read(damage.into()),
                None => refused,
            });
        }
    };
    let db = store.db();
    let before = match before {
        Some(before) => before?,
        None => ManifestFiles::read(dir)?,
    };
    let live = files::check_live_files(db, &before)?;
    live.check_walk(stored_end(db)?)?;
    Ok(store)
}

/// Checks that a walk that ended at `next_position` (the position after
/// its last record) covered every `log` table file of the view.
///
/// Errors: [`ReadError::Damaged`] naming a file the walk never reached;
/// [`ReadError::Storage`] if RocksDB cannot list the files.
pub fn check_walk_covered_files(db: &DB, next_position: u64) -> Result<(), ToolError> {
    LiveFiles::of(db)?.check_walk(next_position)?;
    Ok(())
}

/// The position after the last stored 8-byte key (0 for an empty log),
/// without decoding anything: the extent of a walk.
pub fn stored_end(db: &DB) -> Result<u64, ToolError> {
    let mut it = db.raw_iterator_cf(log_cf(db)?);
    it.seek_to_last();
    while it.valid() {
        if let Some(p) = it.key().and_then(parse_position_key) {
            return Ok(p.saturating_add(1));
        }
        it.prev();
    }
    it.status()
        .map_err(|e| ToolError::Read(files::classify(db, e, None)))?;
    Ok(0)
}

/// The head as stored: the last record (decoded and self-hash checked).
pub fn head(db: &DB) -> Result<LogHead, ToolError> {
    let end = stored_end(db)?;
    if end == 0 {
        return Ok(LogHead::EMPTY);
    }
    let position = end - 1;
    let cf = log_cf(db)?;
    let value = db
        .get_pinned_cf(cf, position_key(position))
        .map_err(|e| ToolError::Read(files::classify(db, e, Some(position))))?
        .ok_or_else(|| ToolError::Read(chain_fault(position, FaultKind::DanglingIndex)))?;
    let view = decode_checked(position, &value).map_err(|f| ToolError::Read(f.into()))?;
    Ok(LogHead {
        next_position: end,
        last_hash: view.hash,
    })
}

/// One record as a walk hands it out.
pub struct Scanned<'a> {
    /// The record.
    pub view: RecordView<'a>,
    /// Its stored size, in bytes.
    pub len: usize,
}

/// An in-order, chain-checked walk over `range` on the calling thread.
///
/// `next` hands out each record borrowed from the iterator; events are not
/// decoded (call [`check_event`] on what you keep). After the first error
/// the walk ends.
pub struct SeqScan<'a> {
    db: &'a DB,
    it: DBRawIteratorWithThreadMode<'a, DB>,
    next_expected: u64,
    end: u64,
    prev_hash: Option<Hash>,
    started: bool,
    done: bool,
}

impl<'a> SeqScan<'a> {
    /// A walk over `range`; links are checked from the first record read
    /// (and to [`GENESIS_HASH`] when the range starts at 0).
    pub fn new(db: &'a DB, range: Range<u64>) -> Result<Self, ToolError> {
        let mut it = db.raw_iterator_cf_opt(log_cf(db)?, read_options());
        it.seek(position_key(range.start));
        Ok(SeqScan {
            db,
            it,
            next_expected: range.start,
            end: range.end,
            prev_hash: (range.start == 0).then_some(GENESIS_HASH),
            started: false,
            done: range.start >= range.end,
        })
    }

    /// The next record, `None` at the end of the range or the log.
    pub fn next_record(&mut self) -> Option<Result<Scanned<'_>, ReadError>> {
        if self.done {
            return None;
        }
        if self.started {
            self.it.next();
        }
        self.started = true;
        match check_entry(
            self.db,
            &self.it,
            self.next_expected,
            self.end,
            &self.prev_hash,
        ) {
            Ok(Some((view, len))) => {
                self.prev_hash = Some(view.hash);
                self.next_expected = view.header.position + 1;
                Some(Ok(Scanned { view, len }))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Checks the entry under the iterator: the next sound record and its
/// stored size, or `None` at the end of the range or the log.
fn check_entry<'i>(
    db: &DB,
    it: &'i DBRawIteratorWithThreadMode<'_, DB>,
    next_expected: u64,
    end: u64,
    prev_hash: &Option<Hash>,
) -> Result<Option<(RecordView<'i>, usize)>, ReadError> {
    if !it.valid() {
        it.status()
            .map_err(|e| files::classify(db, e, Some(next_expected)))?;
        return Ok(None);
    }
    let (Some(key), Some(value)) = (it.key(), it.value()) else {
        return Ok(None);
    };
    let Some(position) = parse_position_key(key) else {
        return Err(chain_fault(
            next_expected,
            FaultKind::MalformedKey { len: key.len() },
        ));
    };
    if position >= end {
        return Ok(None);
    }
    if position != next_expected {
        return Err(chain_fault(
            next_expected,
            FaultKind::Gap {
                next_found: position,
            },
        ));
    }
    let view = decode_checked(position, value)?;
    if let Some(expected) = prev_hash {
        check_link(&view, expected)?;
    }
    Ok(Some((view, value.len())))
}

/// What one walk saw, in the shape of engine-core's `VerifyReport`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanSummary {
    /// Records walked.
    pub records: u64,
    /// Sum of the stored values, in bytes.
    pub bytes: u64,
    /// The first record's `recorded_at`.
    pub first_recorded_at: Option<TimestampMicros>,
    /// The last record's `recorded_at`.
    pub last_recorded_at: Option<TimestampMicros>,
    /// The position after the last record walked.
    pub next_position: u64,
    /// The last record's hash ([`GENESIS_HASH`] if none).
    pub last_hash: Hash,
    /// Records per format version.
    pub format_versions: BTreeMap<u16, u64>,
}

/// Per-segment state of a parallel walk, merged in position order.
pub trait Accumulator: Send {
    /// Whether [`Accumulator::record`] needs the decoded event. When not,
    /// payloads are only checked to decode (a faster check, same verdict).
    const NEEDS_EVENT: bool;
    /// Sees one sound record and, if [`Accumulator::NEEDS_EVENT`], its
    /// event.
    fn record(&mut self, header: &RecordHeader, len: usize, event: Option<&Event>);
    /// Folds the next segment's state (which follows this one) into this.
    fn merge(&mut self, later: Self);
}

/// An accumulator that keeps nothing: plain verification.
#[derive(Debug, Default)]
pub struct NoAccumulator;

impl Accumulator for NoAccumulator {
    const NEEDS_EVENT: bool = false;
    fn record(&mut self, _: &RecordHeader, _: usize, _: Option<&Event>) {}
    fn merge(&mut self, _: Self) {}
}

/// One segment's outcome.
struct SegmentResult<A> {
    /// The first record's `prev_hash`, if it decoded (not yet checked).
    first_prev: Option<Hash>,
    /// The last sound record's hash.
    last_hash: Option<Hash>,
    /// Sound records.
    records: u64,
    bytes: u64,
    first_recorded_at: Option<TimestampMicros>,
    last_recorded_at: Option<TimestampMicros>,
    format_versions: BTreeMap<u16, u64>,
    /// The first fault, if any.
    fault: Option<ReadError>,
    /// Whether the log ended inside this segment.
    ended: bool,
    acc: A,
}

struct Segments {
    start: u64,
    end: u64,
    count: u64,
    size: u64,
}

impl Segments {
    fn new(range: &Range<u64>, stored_end: u64, size: u64) -> Segments {
        let span = stored_end.max(range.start).min(range.end) - range.start;
        let size = size.max(1);
        Segments {
            start: range.start,
            end: range.end,
            count: span.div_ceil(size).max(1),
            size,
        }
    }

    /// Segment `k`; the last one is open-ended up to the range's end, so a
    /// walk sees everything stored (malformed trailing keys included).
    fn get(&self, k: u64) -> Range<u64> {
        let start = self.start + k * self.size;
        let end = if k + 1 == self.count {
            self.end
        } else {
            start + self.size
        };
        start..end
    }
}

fn scan_segment<A: Accumulator>(
    db: &DB,
    range: Range<u64>,
    mut acc: A,
    cancel: &dyn Fn() -> bool,
) -> SegmentResult<A> {
    let mut first_prev = None;
    let mut records = 0u64;
    let mut bytes = 0u64;
    let mut first_recorded_at = None;
    let mut last_recorded_at = None;
    let mut format_versions = BTreeMap::new();
    let mut fault = None;
    let mut ended = false;
    let mut prev: Option<Hash> = None;
    let mut next_expected = range.start;
    match db.cf_handle(CF_LOG) {
        None => ended = true,
        Some(cf) => {
            let mut it = db.raw_iterator_cf_opt(cf, read_options());
            it.seek(position_key(range.start));
            loop {
                if !it.valid() {
                    match it.status() {
                        Err(e) => fault = Some(files::classify(db, e, Some(next_expected))),
                        Ok(()) => ended = true,
                    }
                    break;
                }
                let (Some(key), Some(value)) = (it.key(), it.value()) else {
                    ended = true;
                    break;
                };
                let Some(position) = parse_position_key(key) else {
                    fault = Some(chain_fault(
                        next_expected,
                        FaultKind::MalformedKey { len: key.len() },
                    ));
                    break;
                };
                if position != next_expected {
                    // Past the segment's end is the next segment's business,
                    // unless records of this one are missing.
                    if next_expected < range.end {
                        fault = Some(chain_fault(
                            next_expected,
                            FaultKind::Gap {
                                next_found: position,
                            },
                        ));
                    }
                    break;
                }
                if position >= range.end {
                    break;
                }
                let view = match decode_checked(position, value) {
                    Ok(v) => v,
                    Err(f) => {
                        fault = Some(f.into());
                        break;
                    }
                };
                match &prev {
                    None => first_prev = Some(view.prev_hash),
                    Some(expected) => {
                        if let Err(f) = check_link(&view, expected) {
                            fault = Some(f.into());
                            break;
                        }
                    }
                }
                if A::NEEDS_EVENT {
                    match check_event(&view) {
                        Ok(event) => acc.record(&view.header, value.len(), Some(&event)),
                        Err(f) => {
                            fault = Some(f.into());
                            break;
                        }
                    }
                } else {
                    let conversation = view.header.conversation_sid.map(|c| c.0);
                    let valid =
                        is_valid_payload(view.format_version, &view.payload, conversation.as_ref());
                    if !valid {
                        // The real decoder's verdict (and error) is final.
                        if let Err(f) = check_event(&view) {
                            fault = Some(f.into());
                            break;
                        }
                    }
                    acc.record(&view.header, value.len(), None);
                }
                *format_versions.entry(view.format_version).or_insert(0u64) += 1;
                records += 1;
                bytes += value.len() as u64;
                first_recorded_at.get_or_insert(view.header.recorded_at);
                last_recorded_at = Some(view.header.recorded_at);
                prev = Some(view.hash);
                next_expected = position + 1;
                if records % CANCEL_CHECK_RECORDS == 0 && cancel() {
                    break;
                }
                it.next();
            }
        }
    }
    SegmentResult {
        first_prev,
        last_hash: prev,
        records,
        bytes,
        first_recorded_at,
        last_recorded_at,
        format_versions,
        fault,
        ended,
        acc,
    }
}

/// Walks `range` (clamped to what is stored) on `workers` threads, checking
/// everything engine-core's `verify` checks, including that every event
/// decodes; feeds each sound record to a per-segment accumulator made by
/// `new_acc` and merges them in position order. `progress(records)` is
/// called on the calling thread as segments finish.
///
/// Returns the summary and the merged accumulator, or the first fault by
/// position (or a storage error).
pub fn par_scan<A, F>(
    db: &DB,
    range: Range<u64>,
    workers: usize,
    new_acc: F,
    progress: &mut dyn FnMut(u64),
) -> Result<(ScanSummary, A), ToolError>
where
    A: Accumulator,
    F: Fn() -> A + Sync,
{
    par_scan_segmented(db, range, workers, SEGMENT_RECORDS, new_acc, progress)
}

/// [`par_scan`] with segments of `segment_records` (tests use tiny ones
/// to put faults on every kind of boundary).
pub fn par_scan_segmented<A, F>(
    db: &DB,
    range: Range<u64>,
    workers: usize,
    segment_records: u64,
    new_acc: F,
    progress: &mut dyn FnMut(u64),
) -> Result<(ScanSummary, A), ToolError>
where
    A: Accumulator,
    F: Fn() -> A + Sync,
{
    log_cf(db)?;
    let segments = Segments::new(&range, stored_end(db)?, segment_records);
    let next = AtomicU64::new(0);
    let fault_at = AtomicU64::new(u64::MAX);
    let workers = workers.max(1);
    let (tx, rx) = mpsc::channel::<(u64, SegmentResult<A>)>();

    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, fault_at, segments, new_acc) = (&next, &fault_at, &segments, &new_acc);
            scope.spawn(move || loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= segments.count || k > fault_at.load(Ordering::SeqCst) {
                    break;
                }
                let cancel = || k > fault_at.load(Ordering::SeqCst);
                let result = scan_segment(db, segments.get(k), new_acc(), &cancel);
                if result.fault.is_some() || result.ended {
                    fault_at.fetch_min(k, Ordering::SeqCst);
                }
                if tx.send((k, result)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let merged = merge(&range, &segments, rx, &fault_at, new_acc(), progress);
        // Whatever happened, the workers have nothing left to do.
        fault_at.store(0, Ordering::SeqCst);
        merged
    })
}

fn merge<A: Accumulator>(
    range: &Range<u64>,
    segments: &Segments,
    rx: mpsc::Receiver<(u64, SegmentResult<A>)>,
    fault_at: &AtomicU64,
    mut acc: A,
    progress: &mut dyn FnMut(u64),
) -> Result<(ScanSummary, A), ToolError> {
    let mut summary = ScanSummary {
        next_position: range.start,
        last_hash: GENESIS_HASH,
        ..ScanSummary::default()
    };
    let mut expected_prev: Option<Hash> = (range.start == 0).then_some(GENESIS_HASH);
    let mut pending: BTreeMap<u64, SegmentResult<A>> = BTreeMap::new();
    let mut k = 0u64;
    let mut done = 0u64;
    while k < segments.count {
        let result = match pending.remove(&k) {
            Some(r) => r,
            None => match rx.recv() {
                Ok((j, r)) => {
                    done += r.records;
                    progress(done);
                    pending.insert(j, r);
                    continue;
                }
                // Every segment up to the first fault is always reported.
                Err(_) => {
                    return Err(ToolError::Io(format!(
                        "internal error: segment {k} of the walk was never reported"
                    )))
                }
            },
        };
        let start = segments.get(k).start;
        if result.records > 0 {
            if let (Some(expected), Some(first_prev)) = (&expected_prev, &result.first_prev) {
                if expected != first_prev {
                    fault_at.fetch_min(k, Ordering::SeqCst);
                    return Err(ToolError::Read(chain_fault(
                        start,
                        FaultKind::BrokenLink {
                            expected: engine_core::log::HexHash(*expected),
                            found: engine_core::log::HexHash(*first_prev),
                        },
                    )));
                }
            }
        } else if let (Some(ReadError::Fault(f)), Some(expected), Some(first_prev)) =
            (&result.fault, &expected_prev, &result.first_prev)
        {
            // The first record decoded but failed later (its event): the
            // link is checked first, as engine-core does.
            if f.position == start && expected != first_prev {
                return Err(ToolError::Read(chain_fault(
                    start,
                    FaultKind::BrokenLink {
                        expected: engine_core::log::HexHash(*expected),
                        found: engine_core::log::HexHash(*first_prev),
                    },
                )));
            }
        }
        summary.records += result.records;
        summary.bytes += result.bytes;
        if summary.first_recorded_at.is_none() {
            summary.first_recorded_at = result.first_recorded_at;
        }
        if result.last_recorded_at.is_some() {
            summary.last_recorded_at = result.last_recorded_at;
        }
        for (v, n) in &result.format_versions {
            *summary.format_versions.entry(*v).or_default() += n;
        }
        if let Some(h) = result.last_hash {
            summary.last_hash = h;
            summary.next_position = start + result.records;
            expected_prev = Some(h);
        }
        acc.merge(result.acc);
        if let Some(e) = result.fault {
            return Err(ToolError::Read(e));
        }
        if result.ended {
            break;
        }
        k += 1;
    }
    Ok((summary, acc))
}

/// The number of worker threads for a parallel walk: one per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(WORKERS_FALLBACK)
}
