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

use events::Record;
use projections::{ReadModels, RowSink, Table, META_FORMAT_KEY, READ_MODEL_FORMAT_VERSION};
use rocksdb::{WriteBatch, DB};

use super::EngineError;
use crate::log::indexes;
use crate::log::keys::{CF_COMMANDS, COMMAND_KEY_BYTES};
use crate::log::{LogHead, ReadError, RecordIter};

/// Records folded per `WriteBatch` while catching the read models up with
/// the log (on open after a rebuild, or after an interrupted one). Bounds
/// the memory of one batch; each batch also records the applied position,
/// so an interrupted catch-up resumes where it stopped.
pub const CATCH_UP_BATCH_RECORDS: u64 = 4_096;

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

/// Loads the persisted read models (rows of every read-model table).
///
/// Rows in another format than [`READ_MODEL_FORMAT_VERSION`] (or in none:
/// written by a build before the format was recorded) are deleted first,
/// with a warning, and an empty state is returned: the catch-up then
/// re-derives every row from the log, the source of truth.
///
/// Errors: RocksDB read or delete failures, rows that do not decode.
pub fn load_read_models(db: &DB) -> Result<ReadModels, EngineError> {
    if let Some(found) = stale_row_format(db)? {
        tracing::warn!(
            found = ?found,
            current = READ_MODEL_FORMAT_VERSION,
            "read-model rows are in another format: dropping them to re-derive them from the log"
        );
        delete_read_model_rows(db)?;
        return Ok(ReadModels::new());
    }
    let mut rows = Vec::new();
    for table in Table::ALL {
        for kv in db.iterator_cf(table_cf(db, table), rocksdb::IteratorMode::Start) {
            let (k, v) = kv?;
            rows.push((table, k.into_vec(), v.into_vec()));
        }
    }
    Ok(ReadModels::load(rows)?)
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
    let mut done = 0;
    let mut batch = WriteBatch::default();
    for record in RecordIter::new(db, from..head.next_position) {
        let record = record?;
        let event = record
            .event()
            .map_err(|source| ReadError::Fault(decode_fault(&record, source)))?;
        rm.apply(
            &record.header,
            &event,
            &mut BatchSink {
                db,
                batch: &mut batch,
            },
        );
        done += 1;
        if done % CATCH_UP_BATCH_RECORDS == 0 {
            rm.finish_batch(&mut BatchSink {
                db,
                batch: &mut batch,
            });
            db.write(std::mem::take(&mut batch))?;
            progress(done, total);
        }
    }
    rm.finish_batch(&mut BatchSink {
        db,
        batch: &mut batch,
    });
    db.write(batch)?;
    progress(done, total);
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
/// (nothing is written), e.g. to compare a rebuild's digest with the live one.
///
/// Errors: the first read or decode fault.
pub fn fold_records(
    iter: impl Iterator<Item = Result<Record, ReadError>>,
    progress: &mut dyn FnMut(u64),
) -> Result<ReadModels, EngineError> {
    let mut rm = ReadModels::new();
    let mut sink = NullSink;
    let mut done = 0u64;
    for record in iter {
        let record = record?;
        let event = record
            .event()
            .map_err(|source| ReadError::Fault(decode_fault(&record, source)))?;
        rm.apply(&record.header, &event, &mut sink);
        done += 1;
        if done % CATCH_UP_BATCH_RECORDS == 0 {
            progress(done);
        }
    }
    progress(done);
    Ok(rm)
}

/// The digest a state's persisted form would have (see
/// [`read_models_digest`]): equal states give equal digests.
pub fn state_digest(rm: &ReadModels) -> ([u8; 32], u64) {
    let mut rows = projections::RowMap::new();
    rm.write_rows(&mut rows);
    projections::digest_rows(&rows)
}

/// A sink that drops rows: folding only the in-memory state.
struct NullSink;

impl RowSink for NullSink {
    fn put(&mut self, _: Table, _: Vec<u8>, _: Vec<u8>) {}
    fn delete(&mut self, _: Table, _: Vec<u8>) {}
}
