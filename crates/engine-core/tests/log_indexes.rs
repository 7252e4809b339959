//! The log's index column families (stream index, stream versions,
//! idempotency entries) checked against the log, and re-derived from it.

mod common;
mod log_support;

use std::path::Path;

use common::*;
use engine_core::log::indexes::{
    check_indexes, rebuild_indexes, IndexError, IndexFaultKind, IndexReport, IndexView,
};
use engine_core::log::keys::{
    command_key, command_value, parse_command_value, stream_id, stream_index_key,
    stream_version_value, CommandEntry, CF_COMMANDS, CF_STREAM, CF_STREAMS, FINGERPRINT_UNKNOWN,
};
use engine_core::{CommandError, Engine};
use events::*;

/// What a store built by [`store`] holds.
struct Store {
    dir: tempfile::TempDir,
    service: ServiceSid,
    conversation: ConversationSid,
    /// The id and outcome of a message post.
    posted: (CommandId, engine_core::CommandOutcome),
    /// The last record's position (the conversation's last message).
    last_position: u64,
}

/// An engine store with two services, a conversation and a few messages,
/// closed.
fn store() -> Store {
    let mut h = Harness::new();
    let service = h.ok(CreateService::new("indexed"));
    h.ok(CreateService::new("other"));
    let conversation = h.ok(CreateConversation::new(service));
    let post = |body: &str| {
        PostMessage::new(service, conversation)
            .author("alice")
            .body(body)
    };
    h.ok(post("one"));
    let id = h.fresh_id();
    let posted = h
        .engine()
        .execute(post("two").keyed(id).into_command())
        .unwrap();
    h.ok(post("three"));
    let last_position = h.head().next_position - 1;
    let Harness { dir, .. } = h;
    Store {
        dir,
        service,
        conversation,
        posted: (id, posted),
        last_position,
    }
}

/// Opens the closed store directly, for surgery.
fn rocks(path: &Path) -> rocksdb::DB {
    let options = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&options, path).unwrap();
    rocksdb::DB::open_cf(&options, path, names).unwrap()
}

fn fault(result: Result<IndexReport, IndexError>) -> (String, Option<u64>, IndexFaultKind) {
    match result {
        Err(IndexError::Fault(f)) => {
            let shown = f.to_string();
            assert!(shown.contains(f.column_family), "{shown}");
            (f.column_family.to_string(), f.position, f.kind)
        }
        other => panic!("expected an index fault, got {other:?}"),
    }
}

/// Checks that `damage` is reported as `want` says, that a rebuild repairs
/// it, and returns the repaired store.
fn damaged_then_rebuilt(
    damage: impl FnOnce(&rocksdb::DB, &Store),
    want: impl FnOnce(&Store) -> (&'static str, Option<u64>, IndexFaultKind),
) -> Store {
    let store = store();
    let db = rocks(store.dir.path());
    let healthy = check_indexes(&db, IndexView::Snapshot)
        .expect("a fresh store's indexes agree with its log");
    damage(&db, &store);
    let (column_family, position, kind) = fault(check_indexes(&db, IndexView::Snapshot));
    let (want_column_family, want_position, want_kind) = want(&store);
    assert_eq!(column_family, want_column_family);
    assert_eq!(position, want_position);
    assert_eq!(kind, want_kind);
    let report = rebuild_indexes(&db).unwrap();
    assert_eq!(report.repaired, 1, "{report:?}");
    assert_eq!(check_indexes(&db, IndexView::Snapshot).unwrap(), healthy);
    store
}

#[test]
fn a_missing_stream_index_entry_is_reported_and_rebuilt() {
    damaged_then_rebuilt(
        |db, store| {
            let first = &store.posted.1.records[0].0;
            let stream = stream_id(&first.service_sid, first.conversation_sid.as_ref());
            db.delete_cf(
                db.cf_handle(CF_STREAM).unwrap(),
                stream_index_key(&stream, first.position),
            )
            .unwrap();
        },
        |store| {
            (
                CF_STREAM,
                Some(store.posted.1.first_position),
                IndexFaultKind::Missing,
            )
        },
    );
}

#[test]
fn a_wrong_stream_version_is_reported_and_rebuilt() {
    let version = std::cell::Cell::new(0);
    let store = damaged_then_rebuilt(
        |db, store| {
            let cf = db.cf_handle(CF_STREAMS).unwrap();
            let stream = stream_id(&store.service, Some(&store.conversation));
            let stored = db.get_cf(cf, stream).unwrap().unwrap();
            version.set(u64::from_be_bytes(stored.try_into().unwrap()));
            db.put_cf(cf, stream, stream_version_value(version.get() - 1))
                .unwrap();
        },
        |store| {
            (
                CF_STREAMS,
                Some(store.last_position),
                IndexFaultKind::WrongValue {
                    expected: format!("version {}", version.get()),
                    found: format!("version {}", version.get() - 1),
                },
            )
        },
    );
    let engine = open(store.dir.path());
    let repaired = engine
        .log()
        .stream_version(store.service, Some(store.conversation))
        .unwrap();
    assert_eq!(repaired, version.get());
}

#[test]
fn a_lost_idempotency_entry_is_reported_and_rebuilt_with_an_unknown_fingerprint() {
    let store = damaged_then_rebuilt(
        |db, store| {
            db.delete_cf(
                db.cf_handle(CF_COMMANDS).unwrap(),
                command_key(Some(&store.service), &store.posted.0),
            )
            .unwrap();
        },
        |store| {
            (
                CF_COMMANDS,
                Some(store.posted.1.first_position),
                IndexFaultKind::Missing,
            )
        },
    );
    let db = rocks(store.dir.path());
    let entry = db
        .get_cf(
            db.cf_handle(CF_COMMANDS).unwrap(),
            command_key(Some(&store.service), &store.posted.0),
        )
        .unwrap()
        .map(|v| parse_command_value(&v).unwrap())
        .unwrap();
    assert_eq!(entry.first_position, store.posted.1.first_position);
    assert_eq!(entry.fingerprint, FINGERPRINT_UNKNOWN);
    drop(db);
    // An unknown fingerprint answers any command under the key as the
    // original, as before fingerprints existed.
    let engine = open(store.dir.path());
    let (id, first) = &store.posted;
    let retry = engine
        .execute(
            PostMessage::new(store.service, store.conversation)
                .author("alice")
                .body("changed")
                .keyed(*id)
                .into_command(),
        )
        .unwrap();
    assert!(retry.deduplicated);
    assert_eq!(retry.records, first.records);
}

#[test]
fn an_idempotency_entry_the_log_does_not_account_for_is_reported_and_removed() {
    let store = damaged_then_rebuilt(
        |db, store| {
            let entry = CommandEntry {
                first_position: 0,
                count: 1,
                fingerprint: [3; 32],
            };
            db.put_cf(
                db.cf_handle(CF_COMMANDS).unwrap(),
                command_key(Some(&store.service), &CommandId::from_key(b"never used")),
                command_value(&entry),
            )
            .unwrap();
        },
        |_| (CF_COMMANDS, None, IndexFaultKind::Unexpected),
    );
    // The intact entries kept their fingerprints: a reused key is still
    // refused after the rebuild.
    let engine = Engine::open(store.dir.path(), options()).unwrap();
    let (id, first) = &store.posted;
    let err = engine
        .execute(
            PostMessage::new(store.service, store.conversation)
                .author("alice")
                .body("changed")
                .keyed(*id)
                .into_command(),
        )
        .unwrap_err();
    assert_eq!(
        err,
        CommandError::IdempotencyKeyReused {
            command_id: *id,
            scope: Some(store.service),
            first_position: first.first_position,
        }
    );
}

#[test]
fn engine_rebuild_re_derives_every_index_entry() {
    let store = store();
    let healthy = {
        let db = rocks(store.dir.path());
        let healthy = check_indexes(&db, IndexView::Snapshot).unwrap();
        for name in [CF_STREAM, CF_STREAMS, CF_COMMANDS] {
            let cf = db.cf_handle(name).unwrap();
            let keys: Vec<_> = db
                .iterator_cf(cf, rocksdb::IteratorMode::Start)
                .map(|kv| kv.unwrap().0)
                .collect();
            assert!(!keys.is_empty(), "{name} has entries");
            for key in keys {
                db.delete_cf(cf, key).unwrap();
            }
        }
        let (column_family, position, kind) = fault(check_indexes(&db, IndexView::Snapshot));
        assert_eq!(
            (column_family.as_str(), position, kind),
            (CF_STREAM, Some(0), IndexFaultKind::Missing)
        );
        healthy
    };
    let engine = Engine::rebuild(store.dir.path(), options(), &mut |_, _| {}).unwrap();
    assert_eq!(
        check_indexes(engine.log().db(), IndexView::Snapshot).unwrap(),
        healthy
    );
    assert_eq!(healthy.records, engine.log().head().next_position);
}

#[test]
fn a_command_applied_twice_is_reported_and_not_rebuilt_over() {
    use log_support::{command_id, message, open_raw, raw};
    let dir = temp_dir();
    let (s, c) = (log_support::service(1), log_support::conversation(1));
    let key = command_id(1, 0);
    {
        let log = open_raw(dir.path(), engine_core::Durability::Buffered);
        log.append_blocking(engine_core::AppendRequest::new(
            key,
            raw(s, vec![message(c, 0)]),
        ))
        .unwrap();
        log.append_blocking(engine_core::AppendRequest::new(
            command_id(1, 1),
            raw(s, vec![message(c, 1)]),
        ))
        .unwrap();
    }
    // The entry is lost, so the writer takes the key for new.
    {
        let db = rocks(dir.path());
        db.delete_cf(
            db.cf_handle(CF_COMMANDS).unwrap(),
            command_key(Some(&s), &key),
        )
        .unwrap();
    }
    let second = {
        let log = open_raw(dir.path(), engine_core::Durability::Buffered);
        let outcome = log
            .append_blocking(engine_core::AppendRequest::new(
                key,
                raw(s, vec![message(c, 2)]),
            ))
            .unwrap();
        match outcome {
            engine_core::AppendOutcome::Appended { first_position, .. } => first_position,
            other => panic!("appended anew, not {other:?}"),
        }
    };
    let db = rocks(dir.path());
    let want = (
        CF_COMMANDS.to_string(),
        Some(second),
        IndexFaultKind::AppliedTwice { first_position: 0 },
    );
    assert_eq!(fault(check_indexes(&db, IndexView::Snapshot)), want);
    // The log itself is at odds with one command per key: nothing to
    // re-derive, and nothing is written.
    let before = check_indexes(&db, IndexView::Snapshot).unwrap_err();
    assert_eq!(fault(rebuild_indexes(&db)), want);
    assert_eq!(check_indexes(&db, IndexView::Snapshot).unwrap_err(), before);
}

#[test]
fn a_store_from_before_scoped_idempotency_still_deduplicates_its_commands() {
    let store = store();
    // Rewrite the idempotency entries as they were stored before: keyed by
    // the command id alone, first position ‖ count.
    {
        let db = rocks(store.dir.path());
        let cf = db.cf_handle(CF_COMMANDS).unwrap();
        let entries: Vec<_> = db
            .iterator_cf(cf, rocksdb::IteratorMode::Start)
            .map(|kv| kv.unwrap())
            .collect();
        for (key, value) in entries {
            let entry = parse_command_value(&value).unwrap();
            let mut old = entry.first_position.to_be_bytes().to_vec();
            old.extend_from_slice(&entry.count.to_be_bytes());
            db.delete_cf(cf, &key).unwrap();
            db.put_cf(cf, &key[key.len() - 16..], old).unwrap();
        }
        assert!(check_indexes(&db, IndexView::Snapshot).is_err());
    }
    let engine = open(store.dir.path());
    let (id, first) = &store.posted;
    let retry = engine
        .execute(
            PostMessage::new(store.service, store.conversation)
                .author("alice")
                .body("two")
                .keyed(*id)
                .into_command(),
        )
        .unwrap();
    assert!(retry.deduplicated, "an earlier command was applied again");
    assert_eq!(retry.records, first.records);
    check_indexes(engine.log().db(), IndexView::Snapshot).unwrap();
}
