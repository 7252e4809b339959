//! The attack campaign against the auditor: `replay-tool verify`, as a
//! secondary instance (the default) and with `--read-only`, judges crashed,
//! torn and bit-flipped stores. The harness is engine-core's
//! `attack_support` (see there for the trials, the outcomes and the
//! environment that scales them; docs/RELIABILITY.md for the figures).
//!
//! Every test fails if the auditor called a damaged store, or one missing
//! acknowledged records, valid, or if it hung or panicked.

#[path = "../../engine-core/tests/attack_support/mod.rs"]
mod attack_support;
mod support;

use std::path::PathBuf;

use attack_support::{Attack, Campaign, Checker};

fn campaign() -> Campaign {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_replay-tool"));
    Campaign {
        checkers: vec![
            Checker::Verify {
                binary: binary.clone(),
                read_only: false,
            },
            Checker::Verify {
                binary,
                read_only: true,
            },
        ],
        temp_dir: support::temp_dir,
        command: "cargo test -p replay-tool --test attacks",
    }
}

/// The child entry point: the attack tests re-execute this binary with
/// `COLLOQUY_ATTACK_ROLE` set to write a store in a process they can kill.
/// Without that variable it does nothing.
#[test]
fn attack_child() {
    attack_support::child_main();
}

#[test]
fn the_auditor_reports_every_acknowledged_record_after_a_sigkill() {
    campaign().run(Attack::Sigkill);
}

#[test]
fn the_auditor_is_not_fooled_by_garbage_after_the_wal_end() {
    campaign().run(Attack::TailGarbage);
}

#[test]
fn the_auditor_is_not_fooled_by_zeros_after_the_wal_end() {
    campaign().run(Attack::TailZeros);
}

#[test]
fn the_auditor_is_not_fooled_by_a_torn_record_header() {
    campaign().run(Attack::TailTornHeader);
}

#[test]
fn the_auditor_is_not_fooled_by_a_wal_truncated_inside_unacknowledged_records() {
    campaign().run(Attack::TruncateUnacked);
}

#[test]
fn the_auditor_never_vouches_for_a_wal_truncated_inside_acknowledged_records() {
    campaign().run(Attack::TruncateAcked);
}

#[test]
fn the_auditor_never_vouches_for_a_store_whose_wal_was_deleted() {
    campaign().run(Attack::DeleteWal);
}

#[test]
fn the_auditor_never_vouches_for_a_flipped_bit_in_the_wal() {
    campaign().run(Attack::FlipWal);
}

#[test]
fn the_auditor_never_vouches_for_a_flipped_bit_in_the_manifest() {
    campaign().run(Attack::FlipManifest);
}

#[test]
fn the_auditor_never_vouches_for_a_flipped_bit_in_a_table_file() {
    campaign().run(Attack::FlipSst);
}
