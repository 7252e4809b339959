//! Reading and verifying a stored log through any RocksDB handle: the
//! writable [`super::EventLog`]'s, or a read-only or secondary
//! [`super::LogReader`]'s.

use std::collections::BTreeMap;
use std::ops::Range;

use events::{ConversationSid, Hash, Record, ServiceSid, TimestampMicros, GENESIS_HASH};
use rocksdb::{ColumnFamily, DBIteratorWithThreadMode, Direction, IteratorMode, ReadOptions, DB};

use super::error::{ChainFault, FaultKind, ReadError};
use super::files;
use super::keys::{
    self, parse_position_key, parse_stream_index_key, parse_stream_version_value, position_key,
    stream_id, stream_index_key, CF_LOG, CF_STREAM, CF_STREAMS, STREAM_ID_BYTES,
};
use super::scan::{self, NoAccumulator, ScanOptions, SeqScan};

/// Where the log ends: the next position to write and the hash it links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHead {
    /// The position the next record gets (= the number of records).
    pub next_position: u64,
    /// The last record's hash ([`GENESIS_HASH`] for an empty log).
    pub last_hash: Hash,
}

impl LogHead {
    /// The head of an empty log.
    pub const EMPTY: LogHead = LogHead {
        next_position: 0,
        last_hash: GENESIS_HASH,
    };
}

/// What [`super::EventLog::verify`] found on a healthy log (or a walk of
/// part of it, [`super::scan::par_scan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records walked (= the head's next position for a whole log).
    pub records: u64,
    /// Sum of the stored record values, in bytes (keys not counted).
    pub bytes: u64,
    /// The first record's `recorded_at`, if any.
    pub first_recorded_at: Option<TimestampMicros>,
    /// The last record's `recorded_at`, if any.
    pub last_recorded_at: Option<TimestampMicros>,
    /// The head: next position and final hash.
    pub head: LogHead,
    /// Records walked per format version.
    pub format_versions: BTreeMap<u16, u64>,
}

/// Looks a column family up; the log checks they all exist when it opens a
/// store, so a missing one is a broken internal invariant.
pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> &'a ColumnFamily {
    match db.cf_handle(name) {
        Some(cf) => cf,
        None => panic!("column family {name:?} was checked at open"),
    }
}

fn fault(position: u64, kind: FaultKind) -> ReadError {
    ReadError::Fault(ChainFault { position, kind })
}

/// Decodes the value stored under `position`, checking the self-hash and
/// that the header names the same position ([`scan::decode_checked`]),
/// into an owned record.
pub(crate) fn decode_at(position: u64, value: &[u8]) -> Result<Record, ReadError> {
    Ok(scan::decode_checked(position, value)?.to_record())
}

/// Records in position order over a range, checked as they are read: key
/// format, contiguous positions (a missing record inside the stored range
/// is a [`FaultKind::Gap`]), decode and self-hash, key/header agreement,
/// and `prev_hash` links between consecutive records (and to
/// [`GENESIS_HASH`] when the range starts at 0). After the first error the
/// iterator ends.
pub struct RecordIter<'a> {
    scan: SeqScan<'a>,
}

impl<'a> RecordIter<'a> {
    /// Reads the records at `range` from the log column family of `db`,
    /// checking positions and the hash chain as it goes (see the type's
    /// contract). `db` must be a store this crate opened or created.
    pub fn new(db: &'a DB, range: Range<u64>) -> Self {
        RecordIter {
            scan: SeqScan::new(db, range, ReadOptions::default()),
        }
    }

    /// The next record and its stored size in bytes.
    pub(crate) fn next_sized(&mut self) -> Option<Result<(Record, usize), ReadError>> {
        self.scan
            .next_record()
            .map(|item| item.map(|s| (s.view.to_record(), s.len)))
    }
}

impl Iterator for RecordIter<'_> {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_sized().map(|r| r.map(|(record, _)| record))
    }
}

/// One stream's records in position order, via the `stream` index. Each
/// record is decoded and checked (self-hash, key/header agreement, and that
/// it belongs to the stream). After the first error the iterator ends.
pub struct StreamIter<'a> {
    db: &'a DB,
    index: DBIteratorWithThreadMode<'a, DB>,
    stream: [u8; STREAM_ID_BYTES],
    service: ServiceSid,
    conversation: Option<ConversationSid>,
    done: bool,
}

impl<'a> StreamIter<'a> {
    pub(crate) fn new(
        db: &'a DB,
        service: ServiceSid,
        conversation: Option<ConversationSid>,
        from_position: u64,
    ) -> Self {
        let stream = stream_id(&service, conversation.as_ref());
        let start = stream_index_key(&stream, from_position);
        let index = db.iterator_cf(
            cf(db, CF_STREAM),
            IteratorMode::From(&start, Direction::Forward),
        );
        StreamIter {
            db,
            index,
            stream,
            service,
            conversation,
            done: false,
        }
    }

    fn step(&mut self) -> Option<Result<Record, ReadError>> {
        let (key, _) = match self.index.next()? {
            Ok(kv) => kv,
            Err(e) => return Some(Err(files::classify(self.db, e, None))),
        };
        if !key.starts_with(&self.stream) {
            return None;
        }
        let Some((_, position)) = parse_stream_index_key(&key) else {
            return Some(Err(ReadError::Corrupt {
                column_family: CF_STREAM,
                detail: format!("a stream index key is {} bytes, not 40", key.len()),
            }));
        };
        let value = match self
            .db
            .get_pinned_cf(cf(self.db, CF_LOG), position_key(position))
        {
            Ok(Some(v)) => v,
            Ok(None) => return Some(Err(fault(position, FaultKind::DanglingIndex))),
            Err(e) => return Some(Err(files::classify(self.db, e, Some(position)))),
        };
        let record = match decode_at(position, &value) {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        if record.header.service_sid != self.service
            || record.header.conversation_sid != self.conversation
        {
            return Some(Err(fault(position, FaultKind::IndexMismatch)));
        }
        Some(Ok(record))
    }
}

impl Iterator for StreamIter<'_> {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.step();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// The position after the last stored key (0 for an empty log), without
/// decoding the record.
///
/// Errors: [`ReadError::Corrupt`] if the last key is not a position,
/// [`ReadError::Damaged`] if RocksDB reports corruption (naming the file),
/// [`ReadError::Storage`].
pub(crate) fn stored_next_position(db: &DB) -> Result<u64, ReadError> {
    let mut iter = db.iterator_cf(cf(db, CF_LOG), IteratorMode::End);
    let Some(item) = iter.next() else {
        return Ok(0);
    };
    let (key, _) = item.map_err(|e| files::classify(db, e, None))?;
    parse_position_key(&key)
        .and_then(|position| position.checked_add(1))
        .ok_or_else(|| ReadError::Corrupt {
            column_family: CF_LOG,
            detail: format!(
                "the last log key is not a position below the largest ({} bytes)",
                key.len()
            ),
        })
}

/// The head and the last record's `recorded_at`, from the last stored
/// record (decoded and self-hash checked).
pub(crate) fn read_head(db: &DB) -> Result<(LogHead, Option<TimestampMicros>), ReadError> {
    let mut iter = db.iterator_cf(cf(db, CF_LOG), IteratorMode::End);
    let Some(item) = iter.next() else {
        return Ok((LogHead::EMPTY, None));
    };
    let (key, value) = item.map_err(|e| files::classify(db, e, None))?;
    let Some(position) = parse_position_key(&key) else {
        return Err(ReadError::Corrupt {
            column_family: CF_LOG,
            detail: format!("the last log key is {} bytes, not 8", key.len()),
        });
    };
    let record = decode_at(position, &value)?;
    let Some(next_position) = position.checked_add(1) else {
        return Err(ReadError::Corrupt {
            column_family: CF_LOG,
            detail: "the last record claims the largest possible position".into(),
        });
    };
    let head = LogHead {
        next_position,
        last_hash: record.hash,
    };
    Ok((head, Some(record.header.recorded_at)))
}

/// Reads the head, then verifies the last `window` records: contiguous
/// positions up to the head, decode and self-hash, key/header agreement,
/// `prev_hash` links (and [`GENESIS_HASH`] at position 0).
pub(crate) fn verify_tail(
    db: &DB,
    window: u64,
) -> Result<(LogHead, Option<TimestampMicros>), ReadError> {
    let (head, last_recorded_at) = read_head(db)?;
    let start = head.next_position.saturating_sub(window);
    let mut iter = RecordIter::new(db, start..head.next_position);
    let mut seen = 0u64;
    let mut last_hash = None;
    while let Some(item) = iter.next_sized() {
        let (record, _) = item?;
        last_hash = Some(record.hash);
        seen += 1;
    }
    assert_eq!(
        seen,
        head.next_position - start,
        "the record iterator reports gaps as faults"
    );
    if let Some(hash) = last_hash {
        assert_eq!(hash, head.last_hash, "the window ends at the head record");
    }
    Ok((head, last_recorded_at))
}

/// Walks the whole chain from position 0 in parallel ([`scan::par_scan`]
/// with `options`, reporting progress), every event included; then checks
/// that the walk covered every `log` table file of the view, and that the
/// view holds every table file that `before` (read before the view was
/// opened) and the MANIFEST now both list as live (see [`files`]).
pub(crate) fn verify_all(
    db: &DB,
    before: &files::ManifestFiles,
    options: &ScanOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, ReadError> {
    // The view's files are listed before the walk's iterators are made, so
    // every record in them is older than what the walk sees.
    let live = files::check_live_files(db, before)?;
    let (report, NoAccumulator) =
        scan::par_scan(db, 0..u64::MAX, options, || NoAccumulator, progress)?;
    live.check_walk(report.head.next_position)?;
    Ok(report)
}

/// The stored version (record count) of one stream; 0 if it has none.
pub(crate) fn stream_version(
    db: &DB,
    service: &ServiceSid,
    conversation: Option<&ConversationSid>,
) -> Result<u64, ReadError> {
    let key = stream_id(service, conversation);
    match db
        .get_pinned_cf(cf(db, CF_STREAMS), key)
        .map_err(|e| files::classify(db, e, None))?
    {
        None => Ok(0),
        Some(v) => parse_stream_version_value(&v).ok_or_else(|| ReadError::Corrupt {
            column_family: keys::CF_STREAMS,
            detail: format!("a stream version is {} bytes, not 8", v.len()),
        }),
    }
}
