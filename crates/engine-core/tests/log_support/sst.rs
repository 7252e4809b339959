//! Damaging a store's table (SST) files on purpose: finding the `log`
//! column family's files and the index block, footer and first data block
//! inside one. Shared with replay-tool's tests (included by path).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The name of the metaindex entry that points at a table's index block
/// (RocksDB's `kIndexBlockName`).
const INDEX_BLOCK_NAME: &[u8] = b"rocksdb.index";
/// The name of the metaindex entry that points at a table's Bloom filter
/// block (the `commands` and `streams` column families have one).
const FILTER_BLOCK_NAME: &[u8] = b"fullfilter.rocksdb.BuiltinBloomFilter";
/// Bytes from the end of a table file that fall inside its footer's zero
/// padding (format version 6 and later: the footer is 53 bytes, its last
/// 12 are the format version and the magic number, and the footer carries
/// its own checksum).
const FOOTER_PADDING_FROM_END_BYTES: u64 = 20;
/// A byte offset inside a table's first data block (which starts at 0 and
/// holds several records of a few hundred bytes each).
const FIRST_DATA_BLOCK_OFFSET_BYTES: u64 = 100;

/// One of the `log` column family's table files.
#[derive(Debug, Clone)]
pub struct LogTable {
    /// The file.
    pub path: PathBuf,
    /// The first position it holds.
    pub first: u64,
    /// The last position it holds.
    pub last: u64,
}

impl LogTable {
    /// The file's name (`000012.sst`).
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned()
    }
}

/// The `log` column family's table files, by first position (opens the
/// store read-only, which leaves its MANIFEST as it is; the files must be
/// intact).
pub fn log_tables(store: &Path) -> Vec<LogTable> {
    let options = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&options, store).expect("list column families");
    let db = rocksdb::DB::open_cf_for_read_only(&options, store, names, false)
        .expect("open the store read-only");
    let position = |key: Option<Vec<u8>>| {
        u64::from_be_bytes(
            key.expect("a key")
                .as_slice()
                .try_into()
                .expect("an 8-byte key"),
        )
    };
    let mut tables: Vec<LogTable> = db
        .live_files()
        .expect("live files")
        .into_iter()
        .filter(|f| f.column_family_name == "log")
        .map(|f| LogTable {
            path: store.join(f.name.trim_start_matches('/')),
            first: position(f.start_key),
            last: position(f.end_key),
        })
        .collect();
    tables.sort_by_key(|t| t.first);
    tables
}

fn read_varint(bytes: &[u8]) -> (u64, usize) {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (value, i + 1);
        }
    }
    panic!("not a varint");
}

/// The byte range of the block a table file's metaindex names `name` (the
/// entry's value is the block's handle: offset and size as varints).
fn meta_block(file: &Path, name: &[u8]) -> std::ops::Range<u64> {
    let bytes = std::fs::read(file).expect("read the table file");
    let at = bytes
        .windows(name.len())
        .rposition(|w| w == name)
        .expect("the metaindex names the block");
    let handle = &bytes[at + name.len()..];
    let (offset, n) = read_varint(handle);
    let (size, _) = read_varint(&handle[n..]);
    assert!(offset + size <= bytes.len() as u64, "a plausible handle");
    offset..offset + size
}

/// Flips every bit of the byte at `offset` of `file`.
pub fn flip_byte(file: &Path, offset: u64) {
    let mut bytes = std::fs::read(file).expect("read the table file");
    let at = usize::try_from(offset).expect("an offset");
    bytes[at] ^= 0xff;
    std::fs::write(file, bytes).expect("write the table file");
}

/// Damages the table's index block (one byte in its middle).
pub fn damage_index(file: &Path) {
    let index = meta_block(file, INDEX_BLOCK_NAME);
    flip_byte(file, index.start + (index.end - index.start) / 2);
}

/// Damages the table's Bloom filter block (one byte in its middle).
pub fn damage_filter(file: &Path) {
    let filter = meta_block(file, FILTER_BLOCK_NAME);
    flip_byte(file, filter.start + (filter.end - filter.start) / 2);
}

/// The table files of one column family (opens the store read-only).
pub fn table_files(store: &Path, column_family: &str) -> Vec<PathBuf> {
    let options = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&options, store).expect("list column families");
    let db = rocksdb::DB::open_cf_for_read_only(&options, store, names, false)
        .expect("open the store read-only");
    db.live_files()
        .expect("live files")
        .into_iter()
        .filter(|f| f.column_family_name == column_family)
        .map(|f| store.join(f.name.trim_start_matches('/')))
        .collect()
}

/// Damages the table's footer.
pub fn damage_footer(file: &Path) {
    let len = std::fs::metadata(file).expect("the table file").len();
    flip_byte(file, len - FOOTER_PADDING_FROM_END_BYTES);
}

/// Damages the table's first data block.
pub fn damage_first_data_block(file: &Path) {
    flip_byte(file, FIRST_DATA_BLOCK_OFFSET_BYTES);
}
