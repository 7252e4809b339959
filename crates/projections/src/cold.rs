//! Cold rows: the read-model rows that stay on disk.
//!
//! Messages grow with all history, so their rows ([`Table::COLD`]) are
//! never held in memory: [`crate::ReadModels::apply`] writes them to its
//! [`RowSink`](crate::RowSink) and never reads them back, and queries read
//! them through a [`ColdRows`] source. The engine's source reads its
//! RocksDB (behind the block cache) under the read models' lock, so a
//! query sees exactly the rows of the state it holds; folds done off to
//! the side read the [`RowMap`] they wrote.
//!
//! Commands decided inside a write batch must also see the messages
//! posted earlier in that batch, which are not in the store yet: the read
//! models keep those few in memory until [`crate::ReadModels::finish_batch`]
//! (see `ReadModels::staged`).

use std::fmt::Debug;
use std::ops::Bound;

use crate::rows::{RowMap, Table};

/// Rows read from a table: (key, value) pairs in the order asked for.
pub type KeyValues = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads cold rows from where they are stored.
///
/// Contract: answers reflect every row written before the call by the
/// batches the caller's state has applied, and none written after (the
/// engine guarantees it by reading under the read models' lock, which the
/// writer holds from a batch's first `apply` until it is durable).
pub trait ColdRows: Send + Sync + Debug {
    /// The value of `key` in `table`, if present.
    ///
    /// Errors: the store could not be read ([`ColdError`]).
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, ColdError>;

    /// Up to `limit` rows of `table` whose keys lie in `from..to` (`to`
    /// exclusive; `None` runs to the end of the table), ascending by key,
    /// or descending from the end of the range when `reverse`.
    ///
    /// Errors: the store could not be read ([`ColdError`]).
    fn scan(
        &self,
        table: Table,
        from: &[u8],
        to: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<KeyValues, ColdError>;
}

/// A cold row could not be read or decoded.
#[derive(Debug, thiserror::Error)]
#[error("reading read-model table {table:?}: {source}")]
pub struct ColdError {
    /// The table.
    pub table: Table,
    /// What failed: the store's error, or the row's codec error.
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A source with no rows: the cold side of a state that has stored none.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoColdRows;

impl ColdRows for NoColdRows {
    fn get(&self, _: Table, _: &[u8]) -> Result<Option<Vec<u8>>, ColdError> {
        Ok(None)
    }
    fn scan(
        &self,
        _: Table,
        _: &[u8],
        _: Option<&[u8]>,
        _: bool,
        _: usize,
    ) -> Result<KeyValues, ColdError> {
        Ok(Vec::new())
    }
}

/// The rows a fold off to the side wrote, as the cold source of its state.
impl ColdRows for RowMap {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, ColdError> {
        Ok(self.get(&(table, key.to_vec())).cloned())
    }

    fn scan(
        &self,
        table: Table,
        from: &[u8],
        to: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<KeyValues, ColdError> {
        let lo = Bound::Included((table, from.to_vec()));
        let hi = match to {
            Some(to) => Bound::Excluded((table, to.to_vec())),
            // Past every key of `table`: the next table's empty key.
            None => match Table::ALL.get(table as usize + 1) {
                Some(next) => Bound::Excluded((*next, Vec::new())),
                None => Bound::Unbounded,
            },
        };
        let range = self.range((lo, hi));
        let pick = |((_, k), v): (&(Table, Vec<u8>), &Vec<u8>)| (k.clone(), v.clone());
        Ok(if reverse {
            range.rev().take(limit).map(pick).collect()
        } else {
            range.take(limit).map(pick).collect()
        })
    }
}
