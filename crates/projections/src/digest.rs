//! A digest over the persisted form of all read models.
//!
//! Two states are equal exactly when their rows are equal, so the digest of
//! the live column families and the digest of a rebuild from the log must
//! match. The digest hashes rows in (table, key) order, with lengths, so no
//! two different row sets can be framed the same way.

use crate::rows::{RowMap, Table};

/// A running digest; feed rows in ascending (table, key) order.
#[derive(Debug, Clone, Default)]
pub struct Digester {
    hasher: blake3::Hasher,
    rows: u64,
}

impl Digester {
    /// An empty digest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one row. Callers feed rows in ascending (table, key) order.
    pub fn row(&mut self, table: Table, key: &[u8], value: &[u8]) {
        self.hasher.update(&[table as u8]);
        self.hasher.update(&(key.len() as u64).to_le_bytes());
        self.hasher.update(key);
        self.hasher.update(&(value.len() as u64).to_le_bytes());
        self.hasher.update(value);
        self.rows += 1;
    }

    /// The digest and the number of rows hashed.
    pub fn finish(&self) -> ([u8; 32], u64) {
        (*self.hasher.finalize().as_bytes(), self.rows)
    }
}

/// The digest of an in-memory row map.
pub fn digest_rows(rows: &RowMap) -> ([u8; 32], u64) {
    let mut d = Digester::new();
    for ((table, k), v) in rows {
        d.row(*table, k, v);
    }
    d.finish()
}
