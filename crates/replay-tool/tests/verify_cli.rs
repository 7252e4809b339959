//! `replay-tool verify` end to end: exit codes and output.

use std::path::Path;
use std::process::{Command, Output};

use engine_core::log::keys::{position_key, CF_LOG};
use engine_core::{AppendRequest, Durability, EventLog, LogOptions, RawAppend, RawEvents};
use events::{CommandId, ConversationSid, Event, ServiceSid};

fn tool(args: &[&str], path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replay-tool"))
        .args(args)
        .arg(path)
        .output()
        .expect("run replay-tool")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn append(log: &EventLog<RawEvents>, n: u64) {
    let conversation = ConversationSid::derive(b"c");
    log.append_blocking(AppendRequest::new(
        CommandId::from_key(&n.to_be_bytes()),
        RawAppend {
            service_sid: ServiceSid::derive(b"s"),
            events: vec![Event::MessageAdded {
                conversation_sid: conversation,
                message_sid: events::MessageSid::derive(&n.to_be_bytes()),
                index: n,
                author: "bob".into(),
                participant_sid: None,
                body: Some(format!("message {n}")),
                media: Vec::new(),
                attributes: "{}".into(),
            }],
        },
    ))
    .unwrap();
}

fn write_log(path: &Path, n: u64) {
    let log = EventLog::<RawEvents>::open_default(
        path,
        LogOptions::default().durability(Durability::Buffered),
    )
    .unwrap();
    for i in 0..n {
        append(&log, i);
    }
}

fn with_db(path: &Path, f: impl FnOnce(&rocksdb::DB)) {
    let options = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&options, path).unwrap();
    let db = rocksdb::DB::open_cf(&options, path, names).unwrap();
    f(&db);
}

#[test]
fn a_sound_log_exits_0_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 12);
    for mode in [&["verify"][..], &["verify", "--read-only"][..]] {
        let output = tool(mode, dir.path());
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        let text = stdout(&output);
        assert!(text.contains("ok: 12 records"), "{text}");
        assert!(text.contains("next position 12"), "{text}");
    }
    let output = tool(&["verify", "--json"], dir.path());
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["ok"], true);
    assert_eq!(value["records"], 12);
}

#[test]
fn a_flipped_byte_exits_1_naming_the_position() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 12);
    with_db(dir.path(), |db| {
        let cf = db.cf_handle(CF_LOG).unwrap();
        let mut value = db.get_cf(cf, position_key(7)).unwrap().unwrap();
        let middle = value.len() / 2;
        value[middle] ^= 0x01;
        db.put_cf(cf, position_key(7), value).unwrap();
    });
    let output = tool(&["verify"], dir.path());
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains("FAILED"), "{text}");
    assert!(text.contains("position 7"), "{text}");

    let output = tool(&["verify", "--json", "--read-only"], dir.path());
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["ok"], false);
    assert_eq!(value["position"], 7);
}

#[test]
fn a_deleted_record_exits_1_naming_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 12);
    with_db(dir.path(), |db| {
        let cf = db.cf_handle(CF_LOG).unwrap();
        db.delete_cf(cf, position_key(3)).unwrap();
    });
    let output = tool(&["verify"], dir.path());
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains("position 3"), "{text}");
    assert!(text.contains("missing"), "{text}");
}

#[test]
fn it_verifies_while_a_host_has_the_log_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::<RawEvents>::open_default(dir.path(), LogOptions::default()).unwrap();
    for i in 0..5 {
        append(&log, i);
    }
    let output = tool(&["verify"], dir.path());
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(stdout(&output).contains("ok: 5 records"));
    drop(log);
}

#[test]
fn usage_and_io_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-store");
    let output = tool(&["verify"], &missing);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(!String::from_utf8_lossy(&output.stderr).is_empty());
    assert!(!missing.exists(), "verify must not create a store");

    let output = tool(&["verify", "--no-such-flag"], dir.path());
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let output = tool(&["frobnicate"], dir.path());
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}
