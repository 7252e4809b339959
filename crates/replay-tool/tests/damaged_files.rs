//! A store with a damaged table file is never vouched for: every
//! subcommand exits 1 and names the file and the log positions it holds,
//! in secondary and in read-only mode, instead of reading a shorter log.

mod support;

use std::time::Duration;

use engine_core::Engine;
use events::{Keyed, PostMessage};
use support::sst::{self, LogTable};
use support::*;

/// Messages posted in the store's second session.
const SECOND_SESSION_MESSAGES: u64 = 40;

/// How long one run of the tool may take on these small stores before the
/// test fails instead of waiting (a hang is a failure, never a stall).
const TOOL_DEADLINE: Duration = Duration::from_secs(60);

/// [`run`] with [`TOOL_DEADLINE`]: a run that does not finish in time is
/// killed and fails the test.
fn run_bounded(mut cmd: assert_cmd::Command) -> (i32, String, String) {
    cmd.timeout(TOOL_DEADLINE);
    run(cmd)
}

/// The two ways the tool attaches to a store.
const MODES: [&[&str]; 2] = [&[], &["--read-only"]];

/// The scenario store, then a second session of posts, so that the log is
/// in two table files (closing the engine flushes each session).
fn two_table_store() -> (Fixture, Vec<LogTable>) {
    let mut f = build();
    let engine = Engine::open(f.path(), options()).expect("reopen the engine");
    for i in 0..SECOND_SESSION_MESSAGES {
        let post = PostMessage::new(f.service, f.conversation)
            .author("alice")
            .body(format!("more {i}"));
        engine
            .execute(post.keyed(format!("second session {i}")))
            .expect("command accepted");
    }
    f.records = engine.log().head().next_position;
    drop(engine);
    let tables = sst::log_tables(f.path());
    assert_eq!(
        tables.len(),
        2,
        "one log table file per session: {tables:?}"
    );
    assert_eq!(tables[1].last + 1, f.records);
    (f, tables)
}

/// Runs `args` in `mode` and checks that it failed with exit code 1,
/// naming the file and the positions from `first` to the file's last.
fn assert_damage_reported(f: &Fixture, args: &[&str], mode: &[&str], table: &LogTable, first: u64) {
    let all: Vec<&str> = args.iter().chain(mode).copied().collect();
    let (code, out, err) = run_bounded(f.tool(&all));
    let text = format!("{out}{err}");
    assert_eq!(code, 1, "{all:?}: {text}");
    assert!(
        !out.contains("ok:"),
        "{all:?} vouched for a damaged store: {text}"
    );
    assert!(
        text.contains(&table.name()),
        "{all:?} names no file: {text}"
    );
    let range = format!("positions {first}..={}", table.last);
    assert!(text.contains(&range), "{all:?} names no {range}: {text}");
}

#[test]
fn a_damaged_index_block_exits_1_naming_the_file_and_the_positions() {
    // Damage to the first file used to read as an empty log: "ok: 0 records".
    for mode in MODES {
        let (f, tables) = two_table_store();
        sst::damage_index(&tables[0].path);
        assert_damage_reported(&f, &["verify"], mode, &tables[0], 0);
    }
}

#[test]
fn two_log_files_one_damaged_is_never_a_shorter_intact_chain() {
    type Damage = fn(&std::path::Path);
    for damage in [sst::damage_index as Damage, sst::damage_footer] {
        for mode in MODES {
            let (f, tables) = two_table_store();
            damage(&tables[1].path);
            assert_damage_reported(&f, &["verify"], mode, &tables[1], tables[1].first);
        }
    }
}

#[test]
fn a_deleted_log_file_exits_1_naming_it() {
    for mode in MODES {
        let (f, tables) = two_table_store();
        std::fs::remove_file(&tables[1].path).unwrap();
        assert_damage_reported(&f, &["verify"], mode, &tables[1], tables[1].first);
    }
}

#[test]
fn a_damaged_data_block_exits_1_not_2_with_a_position() {
    for mode in MODES {
        let (f, tables) = two_table_store();
        sst::damage_first_data_block(&tables[1].path);
        assert_damage_reported(&f, &["verify"], mode, &tables[1], tables[1].first);

        let args: Vec<&str> = ["verify", "--json"].iter().chain(mode).copied().collect();
        let (code, out, err) = run_bounded(f.tool(&args));
        assert_eq!(code, 1, "{out}{err}");
        let value: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
        assert_eq!(value["ok"], false, "{value}");
        assert_eq!(value["position"], tables[1].first, "{value}");
        let file = value["file"].as_str().expect("the file is named");
        assert!(file.ends_with(&tables[1].name()), "{value}");
    }
}

#[test]
fn dump_stats_at_and_export_are_not_silently_short() {
    let (f, tables) = two_table_store();
    sst::damage_index(&tables[1].path);
    let conversation = f.conversation.to_string();
    let last = (f.records - 1).to_string();
    let commands: [&[&str]; 4] = [
        &["dump"],
        &["stats"],
        &["at", "--conversation", &conversation, "--position", &last],
        &["export", "--conversation", &conversation],
    ];
    for args in commands {
        for mode in MODES {
            assert_damage_reported(&f, args, mode, &tables[1], tables[1].first);
        }
    }
}

#[test]
fn a_damaged_bloom_filter_block_is_not_reported_valid() {
    // RocksDB reads a filter block neither when it opens a file nor when
    // it iterates, and ignores one that fails its checksum.
    for column_family in ["commands", "streams"] {
        for mode in MODES {
            let (f, _) = two_table_store();
            let files = sst::table_files(f.path(), column_family);
            let file = files.first().expect("a table file");
            sst::damage_filter(file);
            let args: Vec<&str> = ["verify"].iter().chain(mode).copied().collect();
            let (code, out, err) = run_bounded(f.tool(&args));
            assert_eq!(code, 1, "{column_family} {mode:?}: {out}{err}");
            let name = file.file_name().unwrap().to_string_lossy();
            assert!(out.contains(&*name), "{column_family} {mode:?}: {out}{err}");
            assert!(
                out.contains(column_family),
                "{column_family} {mode:?}: {out}{err}"
            );
        }
    }
}

/// Single-bit flips tried, one per copy of the store: a few dozen fit the
/// CI budget (about 0.1 s each).
const FLIP_TRIALS: u64 = 48;
/// Environment variable that overrides [`FLIP_TRIALS`], to run thousands:
/// `COLLOQUY_FLIP_TRIALS=2000 cargo test -p replay-tool --test damaged_files single_bit`.
const FLIP_TRIALS_ENV: &str = "COLLOQUY_FLIP_TRIALS";
/// Seed of the flips' offsets (fixed, so a failure reproduces).
const FLIP_SEED: u64 = 0x005e_ed0f_b175;

/// SplitMix64: a tiny deterministic generator for spreading the flips.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn single_bit_flips_in_table_files_are_never_reported_valid() {
    let (f, _) = two_table_store();
    let mut tables: Vec<String> = std::fs::read_dir(f.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sst"))
        .collect();
    tables.sort();
    let mut state = FLIP_SEED;
    let mut outcomes = std::collections::BTreeMap::<i32, u64>::new();
    let trials = match std::env::var(FLIP_TRIALS_ENV) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|e| panic!("{FLIP_TRIALS_ENV}={text:?} is not a count: {e}")),
        Err(_) => FLIP_TRIALS,
    };
    for trial in 0..trials {
        let copy = temp_dir();
        for entry in std::fs::read_dir(f.path()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
        }
        let name = &tables[usize::try_from(trial).unwrap() % tables.len()];
        let file = copy.path().join(name);
        let mut bytes = std::fs::read(&file).unwrap();
        let len = u64::try_from(bytes.len()).unwrap();
        let at = usize::try_from(next_random(&mut state) % len).unwrap();
        bytes[at] ^= 1 << (next_random(&mut state) % 8);
        std::fs::write(&file, bytes).unwrap();
        for mode in MODES {
            let mut cmd = assert_cmd::Command::cargo_bin("replay-tool").unwrap();
            cmd.arg("verify").args(mode).arg("--data").arg(copy.path());
            let (code, out, err) = run_bounded(cmd);
            assert_eq!(
                code, 1,
                "trial {trial}: bit flipped at byte {at} of {name} ({mode:?}): {out}{err}"
            );
            assert!(
                out.contains(name.as_str()),
                "trial {trial}: the flipped file {name} is not named: {out}{err}"
            );
            *outcomes.entry(code).or_default() += 1;
        }
    }
    println!("{trials} single-bit flips in table files, verify exit codes: {outcomes:?}");
}
