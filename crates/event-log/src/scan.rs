//! Walking the `log` column family with every check of the chain: in order
//! on one thread ([`SeqScan`]), or split into segments checked on every
//! core ([`par_scan`]). The parallel walk is [`super::EventLog::verify`]'s
//! and [`super::LogReader::verify`]'s; [`super::RecordIter`] is the
//! in-order walk handing out owned records.
//!
//! Both walks make every check of the chain — 8-byte keys, contiguous
//! positions from the start (a missing record is a [`FaultKind::Gap`]),
//! decode and self-hash, key/header agreement and the `prev_hash` links —
//! and report the first fault by position as a [`ChainFault`]. Records are
//! decoded by [`events::fast::decode_record`]: in place when canonical, by
//! the authoritative [`events::Record::decode`] otherwise, with its
//! verdict; payloads are checked by [`events::fast::RecordView::check_event`]
//! the same way.
//!
//! The parallel walk splits the range into segments of
//! [`ScanOptions::segment_records`]. Each worker thread takes the next
//! segment, walks it with its own RocksDB iterator (so block reads and
//! decompression run in parallel too) and checks everything inside it; the
//! links between segments are checked when results are merged in order.
//! Workers stop early once a fault is found before their segment.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use events::fast::{decode_record, RecordView};
use events::{CodecError, Event, Hash, RecordHeader, TimestampMicros, GENESIS_HASH};
use rocksdb::{DBRawIteratorWithThreadMode, ReadOptions, DB};

use super::error::{ChainFault, FaultKind, HexHash, ReadError};
use super::files;
use super::keys::{parse_position_key, position_key, CF_LOG};
use super::read::{cf, LogHead, VerifyReport};

/// Records in one segment of a parallel walk: large enough that seeking a
/// fresh iterator is noise, small enough that two cores share the work
/// evenly and progress moves smoothly.
pub const SEGMENT_RECORDS: u64 = 32_768;
/// Records a worker checks between looks at the cancellation flag: often
/// enough that a fault stops the other workers within milliseconds, rarely
/// enough that the atomic load is noise.
pub const CANCEL_CHECK_RECORDS: u64 = 4_096;
/// RocksDB readahead for walks, in bytes: a walk reads every block in key
/// order, and 4 MiB keeps the disk streaming without holding much memory
/// per worker.
pub const READAHEAD_BYTES: usize = 4 * 1024 * 1024;
/// Worker threads of a parallel walk when the core count is unknown: the
/// smallest machine the engine is measured on has two cores.
pub const WORKERS_FALLBACK: usize = 2;

fn fault(position: u64, kind: FaultKind) -> ChainFault {
    ChainFault { position, kind }
}

/// The read options of every walk: block checksums verified, readahead,
/// and no block-cache fill (a walk reads every block once; the cache is
/// the host's).
pub fn walk_read_options() -> ReadOptions {
    let mut opts = ReadOptions::default();
    // RocksDB's default, stated: a block that fails its checksum is an
    // error (classified as damage), never data.
    opts.set_verify_checksums(true);
    opts.set_readahead_size(READAHEAD_BYTES);
    opts.fill_cache(false);
    opts
}

/// Decodes the value stored under `position` and checks its self-hash and
/// that its header names `position` (in place when the record is
/// canonical; [`events::Record::decode`]'s verdict in every case).
///
/// Errors: [`FaultKind::HashMismatch`], [`FaultKind::Decode`] with the
/// decoder's error, or [`FaultKind::KeyHeaderMismatch`], at `position`.
pub fn decode_checked(position: u64, value: &[u8]) -> Result<RecordView<'_>, ChainFault> {
    let view = decode_record(value).map_err(|e| {
        let kind = match e {
            CodecError::HashMismatch => FaultKind::HashMismatch,
            other => FaultKind::Decode(other),
        };
        fault(position, kind)
    })?;
    if view.header.position != position {
        return Err(fault(
            position,
            FaultKind::KeyHeaderMismatch {
                header_position: view.header.position,
            },
        ));
    }
    Ok(view)
}

/// Checks that a record links to `expected` (its predecessor's hash).
///
/// Errors: [`FaultKind::BrokenLink`] at the record's position.
pub fn check_link(view: &RecordView<'_>, expected: &Hash) -> Result<(), ChainFault> {
    if &view.prev_hash != expected {
        return Err(fault(
            view.header.position,
            FaultKind::BrokenLink {
                expected: HexHash(*expected),
                found: HexHash(view.prev_hash),
            },
        ));
    }
    Ok(())
}

/// Decodes the record's event.
///
/// Errors: [`FaultKind::Event`] at the record's position, with the
/// decoder's error.
pub fn check_event(view: &RecordView<'_>) -> Result<Event, ChainFault> {
    view.event()
        .map_err(|e| fault(view.header.position, FaultKind::Event(e)))
}

/// Checks that the record's payload decodes as its event, without building
/// the event when the payload is canonical.
///
/// Errors: as [`check_event`].
fn check_event_valid(view: &RecordView<'_>) -> Result<(), ChainFault> {
    view.check_event()
        .map_err(|e| fault(view.header.position, FaultKind::Event(e)))
}

/// The position after the last stored 8-byte key (0 for an empty log),
/// without decoding anything: the extent of a walk. Malformed trailing
/// keys are passed over (the walk reports them, at their position).
///
/// Errors: [`ReadError::Damaged`] if RocksDB reports corruption (naming the
/// file), [`ReadError::Storage`].
pub fn stored_end(db: &DB) -> Result<u64, ReadError> {
    let mut it = db.raw_iterator_cf(cf(db, CF_LOG));
    it.seek_to_last();
    while it.valid() {
        if let Some(p) = it.key().and_then(parse_position_key) {
            return Ok(p.saturating_add(1));
        }
        it.prev();
    }
    it.status().map_err(|e| files::classify(db, e, None))?;
    Ok(0)
}

/// One record as a walk hands it out.
pub struct Scanned<'a> {
    /// The record, borrowed from the iterator where it can be.
    pub view: RecordView<'a>,
    /// Its stored size, in bytes.
    pub len: usize,
}

/// An in-order, chain-checked walk over a range of positions on the calling
/// thread.
///
/// [`SeqScan::next_record`] hands out each record borrowed from the
/// iterator, after the checks of the module docs; events are not decoded
/// (call [`check_event`] on what you keep). After the first error the walk
/// ends.
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
    /// A walk over `range` of the `log` column family of `db` (a store this
    /// crate opened) with `options`; links are checked from the first
    /// record read (and to [`GENESIS_HASH`] when the range starts at 0).
    pub fn new(db: &'a DB, range: Range<u64>, options: ReadOptions) -> Self {
        let mut it = db.raw_iterator_cf_opt(cf(db, CF_LOG), options);
        it.seek(position_key(range.start));
        SeqScan {
            db,
            it,
            next_expected: range.start,
            end: range.end,
            prev_hash: (range.start == 0).then_some(GENESIS_HASH),
            started: false,
            done: range.start >= range.end,
        }
    }

    /// The next record, `None` at the end of the range or the log.
    ///
    /// Errors (then the walk ends): [`ReadError::Fault`] naming the first
    /// bad position ([`FaultKind::MalformedKey`], [`FaultKind::Gap`], or
    /// as [`decode_checked`] and [`check_link`]); [`ReadError::Damaged`] if
    /// RocksDB reports corruption; [`ReadError::Storage`].
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
        return Err(fault(next_expected, FaultKind::MalformedKey { len: key.len() }).into());
    };
    if position >= end {
        return Ok(None);
    }
    if position != next_expected {
        return Err(fault(
            next_expected,
            FaultKind::Gap {
                next_found: position,
            },
        )
        .into());
    }
    let view = decode_checked(position, value)?;
    if let Some(expected) = prev_hash {
        check_link(&view, expected)?;
    }
    Ok(Some((view, value.len())))
}

/// Per-segment state of a parallel walk, merged in position order.
pub trait Accumulator: Send {
    /// Whether [`Accumulator::record`] needs the decoded event. When not,
    /// payloads are only checked to decode (a faster check, same verdict).
    const NEEDS_EVENT: bool;
    /// Sees one sound record, its stored size in bytes and, if
    /// [`Accumulator::NEEDS_EVENT`], its event.
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

/// How a parallel walk is split: worker threads and segment size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// Worker threads (at least one is used).
    pub workers: usize,
    /// Records per segment (at least one is used).
    pub segment_records: u64,
}

impl Default for ScanOptions {
    /// One worker per core ([`default_workers`]), segments of
    /// [`SEGMENT_RECORDS`].
    fn default() -> Self {
        ScanOptions {
            workers: default_workers(),
            segment_records: SEGMENT_RECORDS,
        }
    }
}

impl ScanOptions {
    /// These options with `workers` worker threads.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// These options with segments of `segment_records` (tests use tiny
    /// ones to put faults on every kind of boundary).
    pub fn segment_records(mut self, segment_records: u64) -> Self {
        self.segment_records = segment_records;
        self
    }
}

/// The number of worker threads for a parallel walk: one per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(WORKERS_FALLBACK)
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

impl<A> SegmentResult<A> {
    fn new(acc: A) -> Self {
        SegmentResult {
            first_prev: None,
            last_hash: None,
            records: 0,
            bytes: 0,
            first_recorded_at: None,
            last_recorded_at: None,
            format_versions: BTreeMap::new(),
            fault: None,
            ended: false,
            acc,
        }
    }
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
    acc: A,
    cancel: &dyn Fn() -> bool,
) -> SegmentResult<A> {
    let mut out = SegmentResult::new(acc);
    let mut next_expected = range.start;
    let mut it = db.raw_iterator_cf_opt(cf(db, CF_LOG), walk_read_options());
    it.seek(position_key(range.start));
    loop {
        if !it.valid() {
            match it.status() {
                Err(e) => out.fault = Some(files::classify(db, e, Some(next_expected))),
                Ok(()) => out.ended = true,
            }
            break;
        }
        let (Some(key), Some(value)) = (it.key(), it.value()) else {
            out.ended = true;
            break;
        };
        let Some(position) = parse_position_key(key) else {
            out.fault =
                Some(fault(next_expected, FaultKind::MalformedKey { len: key.len() }).into());
            break;
        };
        if position != next_expected {
            // Past the segment's end is the next segment's business,
            // unless records of this one are missing.
            if next_expected < range.end {
                out.fault = Some(
                    fault(
                        next_expected,
                        FaultKind::Gap {
                            next_found: position,
                        },
                    )
                    .into(),
                );
            }
            break;
        }
        if position >= range.end {
            break;
        }
        if let Err(f) = check_record(&mut out, position, value) {
            out.fault = Some(f.into());
            break;
        }
        next_expected = position + 1;
        if out.records % CANCEL_CHECK_RECORDS == 0 && cancel() {
            break;
        }
        it.next();
    }
    out
}

/// Checks one stored record of a segment (all but the link to the
/// segment's predecessor) and counts it.
fn check_record<A: Accumulator>(
    out: &mut SegmentResult<A>,
    position: u64,
    value: &[u8],
) -> Result<(), ChainFault> {
    let view = decode_checked(position, value)?;
    match &out.last_hash {
        None => out.first_prev = Some(view.prev_hash),
        Some(expected) => check_link(&view, expected)?,
    }
    if A::NEEDS_EVENT {
        let event = check_event(&view)?;
        out.acc.record(&view.header, value.len(), Some(&event));
    } else {
        check_event_valid(&view)?;
        out.acc.record(&view.header, value.len(), None);
    }
    *out.format_versions.entry(view.format_version).or_default() += 1;
    out.records += 1;
    out.bytes += value.len() as u64;
    out.first_recorded_at.get_or_insert(view.header.recorded_at);
    out.last_recorded_at = Some(view.header.recorded_at);
    out.last_hash = Some(view.hash);
    Ok(())
}

/// Walks `range` of the `log` column family of `db` (a store this crate
/// opened), clamped to what is stored, on [`ScanOptions::workers`] threads,
/// checking everything of the module docs and that every event decodes;
/// feeds each sound record to a per-segment accumulator made by `new_acc`
/// and merges them in position order. `progress(records)` is called on the
/// calling thread as segments finish.
///
/// Returns what was walked (its `head` is the position after the last
/// record walked and that record's hash, [`LogHead::EMPTY`]'s for none)
/// and the merged accumulator.
///
/// Errors: the first fault by position, as [`SeqScan::next_record`]
/// gives it, and [`FaultKind::Event`] for an event that does not decode;
/// [`ReadError::Damaged`] if RocksDB reports corruption;
/// [`ReadError::Storage`].
pub fn par_scan<A, F>(
    db: &DB,
    range: Range<u64>,
    options: &ScanOptions,
    new_acc: F,
    progress: &mut dyn FnMut(u64),
) -> Result<(VerifyReport, A), ReadError>
where
    A: Accumulator,
    F: Fn() -> A + Sync,
{
    let segments = Segments::new(&range, stored_end(db)?, options.segment_records);
    let next = AtomicU64::new(0);
    let fault_at = AtomicU64::new(u64::MAX);
    let workers = options.workers.max(1);
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

fn broken_link(position: u64, expected: &Hash, found: &Hash) -> ReadError {
    fault(
        position,
        FaultKind::BrokenLink {
            expected: HexHash(*expected),
            found: HexHash(*found),
        },
    )
    .into()
}

fn merge<A: Accumulator>(
    range: &Range<u64>,
    segments: &Segments,
    rx: mpsc::Receiver<(u64, SegmentResult<A>)>,
    fault_at: &AtomicU64,
    mut acc: A,
    progress: &mut dyn FnMut(u64),
) -> Result<(VerifyReport, A), ReadError> {
    let mut report = VerifyReport {
        records: 0,
        bytes: 0,
        first_recorded_at: None,
        last_recorded_at: None,
        head: LogHead {
            next_position: range.start,
            last_hash: GENESIS_HASH,
        },
        format_versions: BTreeMap::new(),
    };
    let mut expected_prev: Option<Hash> = (range.start == 0).then_some(GENESIS_HASH);
    let mut pending: BTreeMap<u64, SegmentResult<A>> = BTreeMap::new();
    let mut k = 0u64;
    let mut done = 0u64;
    while k < segments.count {
        let Some(result) = pending.remove(&k) else {
            // Every segment up to the first fault or the end of the log is
            // reported: workers stop only past it, and the channel stays
            // open until every worker is done.
            let (j, r) = rx
                .recv()
                .expect("every worker reports each segment it takes before it exits");
            done += r.records;
            progress(done);
            pending.insert(j, r);
            continue;
        };
        let start = segments.get(k).start;
        if let (Some(expected), Some(first_prev)) = (&expected_prev, &result.first_prev) {
            // The first record decoded: its link is checked before anything
            // later in it (its event included), as the in-order walk does.
            let first_failed =
                matches!(&result.fault, Some(ReadError::Fault(f)) if f.position == start);
            if (result.records > 0 || first_failed) && expected != first_prev {
                fault_at.fetch_min(k, Ordering::SeqCst);
                return Err(broken_link(start, expected, first_prev));
            }
        }
        report.records += result.records;
        report.bytes += result.bytes;
        if report.first_recorded_at.is_none() {
            report.first_recorded_at = result.first_recorded_at;
        }
        if result.last_recorded_at.is_some() {
            report.last_recorded_at = result.last_recorded_at;
        }
        for (v, n) in &result.format_versions {
            *report.format_versions.entry(*v).or_default() += n;
        }
        if let Some(h) = result.last_hash {
            report.head = LogHead {
                next_position: start + result.records,
                last_hash: h,
            };
            expected_prev = Some(h);
        }
        acc.merge(result.acc);
        if let Some(e) = result.fault {
            return Err(e);
        }
        if result.ended {
            break;
        }
        k += 1;
    }
    Ok((report, acc))
}
