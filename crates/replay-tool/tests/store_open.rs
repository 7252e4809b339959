//! How the tool opens a store: with the engine's recovery semantics, never
//! hanging on a damaged WAL, reporting a crash's torn tail instead of
//! refusing the store, and explaining a store whose creation was cut short.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command as Tool;
use events::command::*;
use replay_tool::store::{Store, StoreArgs};
use support::*;

/// How long one tool run may take before it counts as a hang.
const TOOL_DEADLINE: Duration = Duration::from_secs(60);

/// `replay-tool verify --data DIR [extra]`, killed at [`TOOL_DEADLINE`].
fn verify(path: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = Tool::cargo_bin("replay-tool").expect("the replay-tool binary");
    cmd.arg("verify")
        .args(extra)
        .arg("--data")
        .arg(path)
        .timeout(TOOL_DEADLINE);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("replay-tool verify {extra:?} did not finish: {e}"));
    assert!(
        out.status.code().is_some(),
        "replay-tool verify {extra:?} was killed: it hung past {TOOL_DEADLINE:?}"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The scenario store, plus one synced write that stays in the WAL (RocksDB
/// does not flush WAL-backed writes on close): the state a host leaves
/// when it is killed after acknowledging a write. Returns the fixture and
/// the newest WAL.
fn store_with_wal_contents() -> (Fixture, PathBuf) {
    let fixture = build();
    with_db(fixture.path(), |db| {
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        db.put_opt(b"in-the-wal", vec![7u8; 300], &options)
            .expect("a synced write");
    });
    let mut wals: Vec<PathBuf> = std::fs::read_dir(fixture.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect();
    wals.sort();
    let wal = wals.pop().expect("a WAL file with the write in it");
    (fixture, wal)
}

fn args(path: &Path, read_only: bool) -> StoreArgs {
    StoreArgs {
        data: Some(path.to_path_buf()),
        path: None,
        read_only,
        secondary_dir: None,
    }
}

#[test]
fn a_recyclable_record_type_in_the_wal_fails_the_tool_instead_of_hanging() {
    let (fixture, wal) = store_with_wal_contents();
    let len = std::fs::metadata(&wal).unwrap().len();
    // A header of type 6 (a recycled-log "first fragment"): RocksDB 11.8's
    // log reader spins on it forever.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&wal).unwrap();
        f.write_all(&[0, 0, 0, 0, 0, 0, 6]).unwrap();
    }
    for mode in [&[][..], &["--read-only"][..]] {
        let (code, _, stderr) = verify(fixture.path(), mode);
        assert_eq!(code, 1, "{mode:?}: damage exits 1: {stderr}");
        assert!(
            stderr.contains(&wal.display().to_string())
                && stderr.contains(&format!("byte offset {len}")),
            "{mode:?}: the error names the WAL and the offset: {stderr}"
        );
    }
}

#[test]
fn a_crashed_store_with_a_torn_tail_is_opened_and_its_tail_reported() {
    let (fixture, wal) = store_with_wal_contents();
    let len = std::fs::metadata(&wal).unwrap().len();
    // The last write was cut short by the crash.
    let file = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    file.set_len(len - 100).unwrap();
    drop(file);
    for read_only in [false, true] {
        let store = Store::open(&args(fixture.path(), read_only))
            .unwrap_or_else(|e| panic!("read_only {read_only}: the store is refused: {e}"));
        let check = store.storage_check();
        assert_eq!(check.torn_tails.len(), 1, "read_only {read_only}: {check}");
        let tail = &check.torn_tails[0];
        assert_eq!(tail.file, wal);
        assert_eq!(tail.offset + tail.bytes, len - 100);
        let line = check.to_string();
        assert!(
            line.contains("torn tail") && line.contains(&wal.display().to_string()),
            "{line}"
        );
    }
    for mode in [&[][..], &["--read-only"][..]] {
        let (code, stdout, stderr) = verify(fixture.path(), mode);
        assert_eq!(code, 0, "{mode:?}: {stdout}{stderr}");
    }
}

#[test]
fn a_store_whose_creation_was_interrupted_is_explained_and_completed_by_the_engine() {
    // What a kill during the very first open leaves: the store exists, but
    // only some of its column families were created.
    let dir = temp_dir();
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        rocksdb::DB::open_cf(&options, dir.path(), ["log"]).unwrap();
    }
    let (code, _, stderr) = verify(dir.path(), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("creation was interrupted") && stderr.contains("stream"),
        "the tool explains what happened and what is missing: {stderr}"
    );
    // The engine's next open completes the store, and the tool accepts it.
    drop(engine_core::Engine::open(dir.path(), options()).expect("the engine completes it"));
    let (code, stdout, stderr) = verify(dir.path(), &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[test]
fn a_store_interrupted_after_creating_the_reactors_family_is_explained_as_interrupted() {
    // The engine creates its column families in name order: `reactors`
    // comes before `stream`, so a kill in between leaves it without the
    // log's stream index. Still a Colloquy store whose creation stopped.
    let dir = temp_dir();
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        rocksdb::DB::open_cf(
            &options,
            dir.path(),
            ["log", engine_core::reactor::CF_REACTORS],
        )
        .unwrap();
    }
    let (code, _, stderr) = verify(dir.path(), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("creation was interrupted"),
        "the reactors' column family is the engine's own: {stderr}"
    );
}

/// Commands the host acknowledges before the crash image is taken.
const ACKNOWLEDGED_COMMANDS: u64 = 20;

/// Runs `ACKNOWLEDGED_COMMANDS` `CreateService` commands on `engine`,
/// each acknowledged as fsynced (`Durability::Sync`).
fn create_services(engine: &engine_core::Engine, first_key: u64) {
    for n in first_key..first_key + ACKNOWLEDGED_COMMANDS {
        engine
            .execute(
                CreateService::new(format!("service {n}"))
                    .keyed(CommandId::from_key(&n.to_be_bytes())),
            )
            .expect("acknowledged");
    }
}

/// What the store's files hold after the host is killed: a copy taken
/// while a host that acknowledged `ACKNOWLEDGED_COMMANDS` fsynced commands
/// still has it open (so nothing was flushed on close), with no write in
/// flight, written under `durability`. Returns it and the log's next
/// position when it was taken.
fn crash_image(durability: engine_core::Durability) -> (tempfile::TempDir, u64) {
    let live = temp_dir();
    let options = engine_core::LogOptions::default().durability(durability);
    let engine = engine_core::Engine::open(live.path(), options).expect("open the engine");
    create_services(&engine, 0);
    let acknowledged = engine.log().head().next_position;
    let image = temp_dir();
    for entry in std::fs::read_dir(live.path()).unwrap().flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), image.path().join(entry.file_name())).unwrap();
        }
    }
    drop(engine);
    (image, acknowledged)
}

fn delete_newest_wal(store: &Path) {
    let mut wals: Vec<PathBuf> = std::fs::read_dir(store)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    wals.sort();
    std::fs::remove_file(wals.pop().expect("a WAL file")).unwrap();
}

#[test]
fn verify_warns_of_buffered_writes_a_power_loss_dropped() {
    let (image, acknowledged) = crash_image(engine_core::Durability::Buffered);
    delete_newest_wal(image.path());
    for mode in [&[][..], &["--read-only"][..]] {
        let (code, stdout, stderr) = verify(image.path(), mode);
        assert_eq!(
            code, 0,
            "{mode:?}: Durability::Buffered allows the loss: {stdout}{stderr}"
        );
        assert!(
            stderr.contains("warning") && stderr.contains(&format!("positions 0..{acknowledged}")),
            "{mode:?}: the loss is reported: {stderr}"
        );
    }
}

#[test]
fn verify_fails_when_the_newest_wal_of_a_crashed_store_is_deleted() {
    let (image, acknowledged) = crash_image(engine_core::Durability::Sync);
    let (code, stdout, stderr) = verify(image.path(), &[]);
    assert_eq!(code, 0, "the crash image itself is sound: {stdout}{stderr}");
    delete_newest_wal(image.path());
    for mode in [&[][..], &["--read-only"][..]] {
        let (code, stdout, stderr) = verify(image.path(), mode);
        assert_eq!(
            code, 1,
            "{mode:?}: a log that lost acknowledged records exits 1: {stdout}{stderr}"
        );
        assert!(
            stderr.contains(engine_core::log::HEAD_MARKER_FILE)
                && stderr.contains(&format!("missing, positions 0..{acknowledged}")),
            "{mode:?}: the error names the marker and the missing positions: {stderr}"
        );
    }
}

#[test]
fn verify_of_a_live_host_that_keeps_appending_raises_no_false_alarm() {
    let live = temp_dir();
    let engine = engine_core::Engine::open(live.path(), engine_core::LogOptions::default())
        .expect("open the engine");
    create_services(&engine, 0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let appender = scope.spawn(|| {
            let mut next = ACKNOWLEDGED_COMMANDS;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                create_services(&engine, next);
                next += ACKNOWLEDGED_COMMANDS;
            }
        });
        let runs: Vec<_> = (0..3).map(|_| verify(live.path(), &[])).collect();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        appender.join().expect("the appender");
        for (code, stdout, stderr) in runs {
            assert_eq!(
                code, 0,
                "a running host is not a damaged store: {stdout}{stderr}"
            );
        }
    });
}
