//! The read-model store: the read models' rows live in the same RocksDB
//! as the log (one column family per table) and are written in the same
//! batch as the records they come from. Loading, catching up after a
//! rebuild, folding off to the side and digests.
//!
//! Per command the engine writes only the rows its events change; the
//! bookkeeping rows (applied position, row format) are written once per
//! batch ([`ReadModels::finish_batch`]). Rows written in another format
//! than [`READ_MODEL_FORMAT_VERSION`] are dropped at load and re-derived
//! from the log by the catch-up.

use std::ops::Range;
use std::sync::Arc;

use events::{Event, Record, RecordHeader};
use projections::{
    ColdError, ColdRows, ReadModels, RowMap, RowSink, Table, META_FORMAT_KEY,
    READ_MODEL_FORMAT_VERSION,
};
use rocksdb::{WriteBatch, DB};

use super::EngineError;
use crate::log::indexes;
use crate::log::keys::{CF_COMMANDS, COMMAND_KEY_BYTES};
use crate::log::scan::{check_event, walk_read_options, SeqScan};
use crate::log::{LogHead, ReadError};

/// Records folded per `WriteBatch` while catching the read models up with
/// the log (on open after a rebuild, or after an interrupted one). Bounds
/// the memory of one batch; each batch also records the applied position,
/// so an interrupted catch-up resumes where it stopped.
pub const CATCH_UP_BATCH_RECORDS: u64 = 16_384;

/// Records the catch-up's reader thread decodes per chunk it hands to the
/// folding thread: large enough that the channel costs nothing per record,
/// small enough that folding starts at once.
pub const CATCH_UP_CHUNK_RECORDS: usize = 512;

/// Decoded chunks the reader thread may run ahead of the fold: keeps both
/// cores busy while bounding the memory held in flight to a few thousand
/// events.
pub const CATCH_UP_CHUNKS_AHEAD: usize = 8;

/// Row batches the fold may run ahead of the catch-up's RocksDB writer:
/// one being written while the next fills, so memtable inserts overlap
/// the fold, with at most this many batches of
/// [`CATCH_UP_BATCH_RECORDS`] records' rows held in memory.
pub const CATCH_UP_BATCHES_AHEAD: usize = 2;

/// A [`RowSink`] that stages rows into a RocksDB `WriteBatch`.
pub(super) struct BatchSink<'a> {
    pub(super) db: &'a DB,
    pub(super) batch: &'a mut WriteBatch,
}

fn table_cf(db: &DB, table: Table) -> &rocksdb::ColumnFamily {
    match db.cf_handle(table.name()) {
        Some(cf) => cf,
        None => panic!(
            "read-model column family {} is created at open",
            table.name()
        ),
    }
}

impl RowSink for BatchSink<'_> {
    fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.batch.put_cf(table_cf(self.db, table), key, value);
    }
    fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.batch.delete_cf(table_cf(self.db, table), key);
    }
    fn delete_range(&mut self, table: Table, from: Vec<u8>, to: Vec<u8>) {
        self.batch
            .delete_range_cf(table_cf(self.db, table), from, to);
    }
}

/// The read models' cold rows ([`Table::COLD`]: messages) as stored in the
/// engine's RocksDB, read through its block cache.
///
/// Reads take no snapshot: the engine reads only under the read models'
/// lock, which the writer holds from a batch's first `apply` until the
/// batch is durable, so the rows seen are exactly those of the state held.
#[derive(Debug)]
pub struct DbRows {
    db: Arc<DB>,
}

impl DbRows {
    /// The cold rows of `db`, whose column families include the read
    /// models' ([`Table::NAMES`]).
    pub fn new(db: Arc<DB>) -> Self {
        DbRows { db }
    }
}

fn cold_error(table: Table, e: rocksdb::Error) -> ColdError {
    ColdError {
        table,
        source: Box::new(e),
    }
}

impl ColdRows for DbRows {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, ColdError> {
        let cf = table_cf(&self.db, table);
        let value = self
            .db
            .get_pinned_cf(cf, key)
            .map_err(|e| cold_error(table, e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        table: Table,
        from: &[u8],
        to: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<projections::cold::KeyValues, ColdError> {
        let cf = table_cf(&self.db, table);
        let mut opts = rocksdb::ReadOptions::default();
        opts.set_iterate_lower_bound(from.to_vec());
        if let Some(to) = to {
            opts.set_iterate_upper_bound(to.to_vec());
        }
        let mode = if reverse {
            rocksdb::IteratorMode::End
        } else {
            rocksdb::IteratorMode::Start
        };
        let mut out = Vec::new();
        for kv in self.db.iterator_cf_opt(cf, opts, mode).take(limit) {
            let (k, v) = kv.map_err(|e| cold_error(table, e))?;
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }
}

/// Re-derives the log's indexes of a store written before idempotency was
/// scoped: its idempotency entries are keyed by the command id alone
/// (16 bytes, not [`COMMAND_KEY_BYTES`]), so the writer would never find
/// them and a retry of an earlier command would be applied again. Their
/// fingerprints were never stored, so the re-derived entries carry
/// [`crate::log::keys::FINGERPRINT_UNKNOWN`] (any command under such a key
/// is answered as the original, as before). One look at the first entry
/// per open; a store in the current layout is left alone.
///
/// Errors: reading the entry, or [`crate::log::indexes::rebuild_indexes`].
pub(super) fn upgrade_idempotency_index(db: &DB) -> Result<(), EngineError> {
    let Some(cf) = db.cf_handle(CF_COMMANDS) else {
        return Ok(());
    };
    let first = db
        .iterator_cf(cf, rocksdb::IteratorMode::Start)
        .next()
        .transpose()?;
    if let Some((key, _)) = first {
        if key.len() != COMMAND_KEY_BYTES {
            let report = indexes::rebuild_indexes(db)?;
            tracing::warn!(
                commands = report.commands,
                "re-derived the idempotency index of a store written before scoped idempotency"
            );
        }
    }
    Ok(())
}

/// Loads the persisted read models: the rows of every resident table, with
/// the cold ones ([`Table::COLD`], messages) left in `db` and read through
/// [`DbRows`].
///
/// Rows in another format than [`READ_MODEL_FORMAT_VERSION`] (or in none:
/// written by a build before the format was recorded) are deleted first,
/// with a warning, and an empty state is returned: the catch-up then
/// re-derives every row from the log, the source of truth.
///
/// Errors: RocksDB read or delete failures, rows that do not decode.
pub fn load_read_models(db: &Arc<DB>) -> Result<ReadModels, EngineError> {
    let cold = Arc::new(DbRows::new(db.clone()));
    if let Some(found) = stale_row_format(db)? {
        tracing::warn!(
            found = ?found,
            current = READ_MODEL_FORMAT_VERSION,
            "read-model rows are in another format: dropping them to re-derive them from the log"
        );
        delete_read_model_rows(db)?;
        let mut rm = ReadModels::new();
        rm.set_cold(cold);
        return Ok(rm);
    }
    let mut rows = Vec::new();
    for table in Table::ALL.into_iter().filter(|t| !t.is_cold()) {
        for kv in db.iterator_cf(table_cf(db, table), rocksdb::IteratorMode::Start) {
            let (k, v) = kv?;
            rows.push((table, k.into_vec(), v.into_vec()));
        }
    }
    Ok(ReadModels::load(rows, cold)?)
}

/// The format the stored rows were written in if it is not the current one
/// (`Some(None)`: rows without a recorded format); `None` when the rows
/// are current or there are none.
fn stale_row_format(db: &DB) -> Result<Option<Option<u32>>, EngineError> {
    let stored = db.get_pinned_cf(table_cf(db, Table::Meta), META_FORMAT_KEY)?;
    let found = match stored {
        Some(v) => match <[u8; 4]>::try_from(&*v) {
            Ok(bytes) => Some(u32::from_be_bytes(bytes)),
            // Unreadable bookkeeping: re-derive, as for an unknown format.
            Err(_) => return Ok(Some(None)),
        },
        None => None,
    };
    if found == Some(READ_MODEL_FORMAT_VERSION) {
        return Ok(None);
    }
    for table in Table::ALL {
        let mut rows = db.iterator_cf(table_cf(db, table), rocksdb::IteratorMode::Start);
        if rows.next().transpose()?.is_some() {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Deletes every read-model row, one range delete per table, in one write.
fn delete_read_model_rows(db: &DB) -> Result<(), EngineError> {
    let mut batch = WriteBatch::default();
    for table in Table::ALL {
        let cf = table_cf(db, table);
        let first = db.iterator_cf(cf, rocksdb::IteratorMode::Start).next();
        let last = db.iterator_cf(cf, rocksdb::IteratorMode::End).next();
        if let (Some(first), Some(last)) = (first.transpose()?, last.transpose()?) {
            // The end of a range is exclusive: just past the last key.
            let mut end = last.0.into_vec();
            end.push(0);
            batch.delete_range_cf(cf, first.0.into_vec(), end);
        }
    }
    db.write(batch)?;
    Ok(())
}

/// Folds the log from the read models' applied position to `head` into
/// `rm`, writing the rows in batches of [`CATCH_UP_BATCH_RECORDS`].
/// `progress(done, total)` is called after each batch.
///
/// Three threads: a reader walks the log in order with every check of the
/// chain (decoding and hashing each record once) and hands the decoded
/// events over in chunks of [`CATCH_UP_CHUNK_RECORDS`]; the calling thread
/// folds them in order into row batches ([`SortedRows`]); a writer sorts
/// each batch by (table, key), so the memtable inserts of a batch run in
/// key order, and writes the batches in order. Each batch carries the
/// applied position of its last record, so a catch-up stopped at any point
/// resumes from what was written.
///
/// Errors: the first chain fault or undecodable event, RocksDB read or
/// write failures, [`EngineError::ReadModelsAhead`].
pub(super) fn catch_up(
    db: &DB,
    rm: &mut ReadModels,
    head: &LogHead,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), EngineError> {
    let from = rm.applied_position().map_or(0, |p| p + 1);
    if from > head.next_position {
        return Err(EngineError::ReadModelsAhead {
            applied: from - 1,
            next_position: head.next_position,
        });
    }
    let total = head.next_position - from;
    let range = from..head.next_position;
    let (tx, rx) = crossbeam_channel::bounded(CATCH_UP_CHUNKS_AHEAD);
    let (batch_tx, batch_rx) = crossbeam_channel::bounded(CATCH_UP_BATCHES_AHEAD);
    std::thread::scope(|scope| {
        scope.spawn(move || read_chunks(db, range, &tx));
        let writer = scope.spawn(move || write_batches(db, batch_rx));
        // The fold owns both channel ends it uses: on an error or a panic
        // they are dropped, which stops the reader at its next send and
        // lets the writer finish what it was given.
        let folded = fold_chunks(rm, rx, batch_tx, total, progress);
        let written = match writer.join() {
            Ok(written) => written,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        // A write failure stops the fold (its next send fails), so the
        // writer's error comes first.
        written.and(folded)
    })
}

/// The catch-up's writer: writes the row batches in order.
fn write_batches(db: &DB, rx: crossbeam_channel::Receiver<SortedRows>) -> Result<(), EngineError> {
    for rows in rx {
        db.write(rows.into_write_batch(db))?;
    }
    Ok(())
}

/// A [`RowSink`] that keeps the row writes of one catch-up batch in the
/// order they were made, to be written sorted by (table, key). Keys and
/// values are copied into one buffer, so the rows the fold made are freed
/// on its own thread and the writer frees one buffer per batch.
#[derive(Default)]
struct SortedRows {
    /// Every key and value, back to back.
    bytes: Vec<u8>,
    /// The writes in the order of the fold.
    ops: Vec<RowOp>,
}

/// One write of a [`SortedRows`]: its key at `start..start + key_len` of
/// the buffer, then what follows it there.
struct RowOp {
    table: Table,
    start: usize,
    key_len: usize,
    kind: OpKind,
}

/// What a [`RowOp`] does with its key.
enum OpKind {
    /// Sets it to the value of this many bytes after the key.
    Put(usize),
    /// Deletes it.
    Delete,
    /// Deletes every key from it up to the end key of this many bytes
    /// after it (exclusive).
    DeleteRange(usize),
}

impl RowSink for SortedRows {
    fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.push(table, &key, OpKind::Put(value.len()), &value);
    }
    fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.push(table, &key, OpKind::Delete, &[]);
    }
    fn delete_range(&mut self, table: Table, from: Vec<u8>, to: Vec<u8>) {
        self.push(table, &from, OpKind::DeleteRange(to.len()), &to);
    }
}

impl SortedRows {
    fn push(&mut self, table: Table, key: &[u8], kind: OpKind, after: &[u8]) {
        self.ops.push(RowOp {
            table,
            start: self.bytes.len(),
            key_len: key.len(),
            kind,
        });
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(after);
    }

    /// The writes as one `WriteBatch`, sorted by (table, key). The sort is
    /// stable, so writes of one key keep their order and the batch leaves
    /// the rows exactly as the writes in fold order would. A batch with a
    /// range delete (a conversation or service deleted: rare) keeps the
    /// fold order instead, since sorting would move the range delete
    /// across writes of the keys inside it.
    fn into_write_batch(mut self, db: &DB) -> WriteBatch {
        let bytes = &self.bytes;
        let key = |op: &RowOp| &bytes[op.start..op.start + op.key_len];
        if !self
            .ops
            .iter()
            .any(|op| matches!(op.kind, OpKind::DeleteRange(_)))
        {
            self.ops
                .sort_by(|a, b| (a.table, key(a)).cmp(&(b.table, key(b))));
        }
        // Keys, values and a few bytes of framing per write.
        let framing = self.ops.len() * WRITE_BATCH_FRAMING_BYTES;
        let mut batch = WriteBatch::with_capacity_bytes(bytes.len() + framing);
        for op in &self.ops {
            let cf = table_cf(db, op.table);
            let after = op.start + op.key_len;
            match op.kind {
                OpKind::Put(n) => batch.put_cf(cf, key(op), &bytes[after..after + n]),
                OpKind::Delete => batch.delete_cf(cf, key(op)),
                OpKind::DeleteRange(n) => {
                    batch.delete_range_cf(cf, key(op), &bytes[after..after + n])
                }
            }
        }
        batch
    }
}

/// RocksDB's framing of one write in a `WriteBatch`, at most: a tag, the
/// column family id and two length varints.
const WRITE_BATCH_FRAMING_BYTES: usize = 16;

/// A run of decoded records, in position order, or the walk's fault.
type Chunk = Result<Vec<(RecordHeader, Event)>, ReadError>;

/// The catch-up's reader: walks `range` with every check of the chain and
/// sends its records decoded, in chunks, then the fault if one stops it.
fn read_chunks(db: &DB, range: Range<u64>, tx: &crossbeam_channel::Sender<Chunk>) {
    let mut scan = SeqScan::new(db, range, walk_read_options());
    let mut chunk = Vec::with_capacity(CATCH_UP_CHUNK_RECORDS);
    while let Some(scanned) = scan.next_record() {
        let decoded = scanned.and_then(|s| {
            let event = check_event(&s.view)?;
            Ok((s.view.header.clone(), event))
        });
        match decoded {
            Ok(record) => chunk.push(record),
            Err(e) => {
                let _ = tx.send(Ok(std::mem::take(&mut chunk)));
                let _ = tx.send(Err(e));
                return;
            }
        }
        if chunk.len() == CATCH_UP_CHUNK_RECORDS {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CATCH_UP_CHUNK_RECORDS));
            if tx.send(Ok(full)).is_err() {
                return;
            }
        }
    }
    let _ = tx.send(Ok(chunk));
}

/// The catch-up's fold: applies the chunks in order and hands the rows to
/// the writer every [`CATCH_UP_BATCH_RECORDS`] records, with the
/// bookkeeping rows; `progress(records folded, total)` after each. Stops
/// early (without error) if the writer stopped: its error is the one
/// reported.
fn fold_chunks(
    rm: &mut ReadModels,
    rx: crossbeam_channel::Receiver<Chunk>,
    tx: crossbeam_channel::Sender<SortedRows>,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), EngineError> {
    let mut done = 0;
    let mut in_batch = 0;
    let mut rows = SortedRows::default();
    for chunk in rx {
        for (header, event) in chunk? {
            rm.apply(&header, &event, &mut rows);
            in_batch += 1;
            if in_batch == CATCH_UP_BATCH_RECORDS {
                rm.finish_batch(&mut rows);
                if tx.send(std::mem::take(&mut rows)).is_err() {
                    return Ok(());
                }
                done += in_batch;
                in_batch = 0;
                progress(done, total);
            }
        }
    }
    rm.finish_batch(&mut rows);
    if tx.send(rows).is_ok() {
        progress(done + in_batch, total);
    }
    Ok(())
}

fn decode_fault(record: &Record, source: events::CodecError) -> crate::log::ChainFault {
    crate::log::ChainFault {
        position: record.header.position,
        kind: crate::log::FaultKind::Decode(source),
    }
}

/// The digest of every read-model row stored in `db`, read from one
/// snapshot in (table, key) order, and the row count.
///
/// Errors: RocksDB read failures.
pub fn read_models_digest(db: &DB) -> Result<([u8; 32], u64), EngineError> {
    let snapshot = db.snapshot();
    let mut d = projections::Digester::new();
    for table in Table::ALL {
        let mut opts = rocksdb::ReadOptions::default();
        opts.set_snapshot(&snapshot);
        for kv in db.iterator_cf_opt(table_cf(db, table), opts, rocksdb::IteratorMode::Start) {
            let (k, v) = kv?;
            d.row(table, &k, &v);
        }
    }
    Ok(d.finish())
}

/// Folds the records `iter` yields into fresh read models, off to the side
/// (nothing is written to a store), e.g. to compare a rebuild's digest with
/// the live one. The rows the fold writes are kept in memory as the
/// state's cold source, so its messages can be read and digested.
///
/// Errors: the first read or decode fault.
pub fn fold_records(
    iter: impl Iterator<Item = Result<Record, ReadError>>,
    progress: &mut dyn FnMut(u64),
) -> Result<ReadModels, EngineError> {
    let mut rm = ReadModels::new();
    let mut sink = RowMap::new();
    let mut done = 0u64;
    for record in iter {
        let record = record?;
        let event = record
            .event()
            .map_err(|source| ReadError::Fault(decode_fault(&record, source)))?;
        rm.apply(&record.header, &event, &mut sink);
        done += 1;
        if done % CATCH_UP_BATCH_RECORDS == 0 {
            rm.finish_batch(&mut sink);
            progress(done);
        }
    }
    rm.finish_batch(&mut sink);
    progress(done);
    rm.set_cold(Arc::new(sink));
    Ok(rm)
}

/// The digest a state's persisted form has (see [`read_models_digest`]):
/// its resident rows and every cold row of its cold source. Equal states
/// give equal digests.
///
/// Errors: the cold source cannot be read.
pub fn state_digest(rm: &ReadModels) -> Result<([u8; 32], u64), EngineError> {
    let mut rows = RowMap::new();
    rm.write_rows(&mut rows);
    rm.copy_cold_rows(&mut rows)
        .map_err(|e| EngineError::Load(e.into()))?;
    Ok(projections::digest_rows(&rows))
}
