//! The attack campaign against the engine: crashes, torn and damaged
//! write-ahead logs, bit flips in every kind of RocksDB file, and a full
//! disk, each judged by reopening the store in a child process (see
//! `attack_support` for the trials, the outcomes and the environment that
//! scales them; docs/RELIABILITY.md for the fault model and the figures).
//!
//! Every test fails if an acknowledged record was lost silently, an open or
//! an append hung, or anything panicked; a crash, or a tail torn past the
//! last acknowledged write, must reopen with every acknowledged record.

mod attack_support;
mod common;

use attack_support::{Attack, Campaign, Checker};

fn campaign() -> Campaign {
    Campaign {
        checkers: vec![Checker::Engine],
        temp_dir: common::temp_dir,
        command: "cargo test -p engine-core --test attacks",
    }
}

/// The child entry point: the attack tests re-execute this binary with
/// `COLLOQUY_ATTACK_ROLE` set to write, damage-prepare or reopen a store
/// in a process they can kill. Without that variable it does nothing.
#[test]
fn attack_child() {
    attack_support::child_main();
}

#[test]
fn a_sigkill_during_synced_appends_loses_no_acknowledged_record() {
    campaign().run(Attack::Sigkill);
}

#[test]
fn garbage_after_the_wal_end_reopens_intact() {
    campaign().run(Attack::TailGarbage);
}

#[test]
fn zeros_after_the_wal_end_reopen_intact() {
    campaign().run(Attack::TailZeros);
}

#[test]
fn a_torn_record_header_after_the_wal_end_reopens_intact() {
    campaign().run(Attack::TailTornHeader);
}

#[test]
fn a_wal_truncated_inside_unacknowledged_records_reopens_intact() {
    campaign().run(Attack::TruncateUnacked);
}

#[test]
fn a_wal_truncated_inside_acknowledged_records_is_never_silent() {
    campaign().run(Attack::TruncateAcked);
}

#[test]
fn a_deleted_wal_is_never_silent() {
    campaign().run(Attack::DeleteWal);
}

#[test]
fn a_flipped_bit_in_the_wal_is_never_silent() {
    campaign().run(Attack::FlipWal);
}

#[test]
fn a_flipped_bit_in_the_manifest_is_never_silent() {
    campaign().run(Attack::FlipManifest);
}

#[test]
fn a_flipped_bit_in_a_table_file_is_never_silent() {
    campaign().run(Attack::FlipSst);
}

#[test]
fn a_full_disk_under_wal_appends_fails_appends_within_a_deadline() {
    campaign().run(Attack::DiskFullWal);
}

#[test]
fn a_full_disk_during_a_flush_fails_appends_within_a_deadline() {
    campaign().run(Attack::DiskFullFlush);
}

/// The harness counts a flipped bit in a WAL or MANIFEST block's unused
/// trailer as harmless, and every other byte as covered by a checksum.
#[test]
fn only_a_log_blocks_trailer_is_outside_every_record() {
    use attack_support::{log_byte_is_covered, LOG_BLOCK_BYTES, LOG_HEADER_BYTES};
    let block = LOG_BLOCK_BYTES as usize;
    let header = LOG_HEADER_BYTES as usize;
    let trailer = header - 1;
    // Block 0: one record filling all but a trailer too short for a header.
    // Block 1: one 10-byte record, then the file ends.
    let mut bytes = vec![0u8; block + header + 10];
    let first_len = (block - trailer - header) as u16;
    bytes[4..6].copy_from_slice(&first_len.to_le_bytes());
    bytes[block + 4..block + 6].copy_from_slice(&10u16.to_le_bytes());
    let covered = |offset: usize| log_byte_is_covered(&bytes, offset as u64);
    for offset in [0, 3, header, block - trailer - 1] {
        assert!(covered(offset), "byte {offset} is inside the first record");
    }
    for offset in block - trailer..block {
        assert!(!covered(offset), "byte {offset} is the trailer");
    }
    for offset in [block, block + header + 9] {
        assert!(covered(offset), "byte {offset} is inside the second record");
    }
}

#[test]
fn only_zeros_and_torn_records_count_as_what_a_crash_leaves() {
    use attack_support::{is_crash_tail, LOG_BLOCK_BYTES};
    let header = |crc: u32, len: u16, kind: u8| {
        let mut h = crc.to_le_bytes().to_vec();
        h.extend_from_slice(&len.to_le_bytes());
        h.push(kind);
        h
    };
    assert!(is_crash_tail(100, &[0; 4096]), "zeros");
    assert!(is_crash_tail(100, &[0xab, 0xcd, 0xef]), "a torn header");
    assert!(
        is_crash_tail(100, &header(0x1234_5678, 100, 1)),
        "a full record's header whose payload never made it"
    );
    assert!(
        !is_crash_tail(100, &[0, 0, 0, 0, 0, 0, 6]),
        "the issue's recyclable-type repro"
    );
    assert!(
        !is_crash_tail(100, &header(0x1234_5678, 0, 1)),
        "a complete record, whose checksum cannot match"
    );
    assert!(
        !is_crash_tail(100, &header(7, 50, 9)),
        "a type never written"
    );
    // Fewer than a header's bytes left in the block: they are the trailer,
    // and the header that follows is what counts.
    let near_end = LOG_BLOCK_BYTES - 3;
    let mut tail = vec![0xff; 3];
    tail.extend(header(1, 0, 6));
    assert!(!is_crash_tail(near_end, &tail));
    assert!(is_crash_tail(near_end, &[0xff; 3]));
}

#[test]
fn a_length_flipped_past_the_end_of_the_file_reads_as_a_torn_tail() {
    use attack_support::{flip_reads_as_torn_tail, LOG_HEADER_BYTES};
    let header = LOG_HEADER_BYTES as usize;
    // Two records of 10 payload bytes, the file ending with the second.
    let mut bytes = vec![0u8; 2 * (header + 10)];
    bytes[4..6].copy_from_slice(&10u16.to_le_bytes());
    bytes[header + 10 + 4..header + 10 + 6].copy_from_slice(&10u16.to_le_bytes());
    let last_len = (header + 10 + 4) as u64;
    assert!(
        flip_reads_as_torn_tail(&bytes, last_len, 5),
        "the last record's length grown past the end"
    );
    assert!(
        !flip_reads_as_torn_tail(&bytes, 4, 0),
        "the first record's length one larger breaks the framing inside the file"
    );
    assert!(
        !flip_reads_as_torn_tail(&bytes, (header + 10) as u64, 3),
        "a checksum byte is covered"
    );
    assert!(
        !flip_reads_as_torn_tail(&bytes, (header + 10 + header + 2) as u64, 3),
        "a payload byte is covered"
    );
}
