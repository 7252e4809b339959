//! A store whose read-model rows were written in another layout (by an
//! earlier build, which recorded no row format, or by another build) is
//! opened by re-deriving its rows from the log: the rows equal a fold of
//! the log and every query answers as before. Before the format was
//! recorded, an old conversation row failed to decode and the open failed.

mod common;

use std::path::Path;

use engine_core::PostedMessage;
use events::*;
use projections::{PageRequest, Table, META_FORMAT_KEY, READ_MODEL_FORMAT_VERSION};

/// Answers that must survive the re-derivation.
#[derive(Debug, PartialEq)]
struct Answers {
    messages: Vec<u64>,
    next_message_index: u64,
    unread: Vec<Option<u64>>,
    digest: ([u8; 32], u64),
}

fn answers(engine: &engine_core::Engine, service: ServiceSid, conv: ConversationSid) -> Answers {
    let (messages, next_message_index, unread) = engine.read(|rm| {
        let by_sid = ConversationRef::Sid(conv);
        let messages = rm
            .messages(
                &service,
                &by_sid,
                projections::Order::Asc,
                &PageRequest::default(),
            )
            .unwrap()
            .items
            .iter()
            .map(|m| m.index)
            .collect();
        let next = rm
            .get_conversation(&service, &by_sid)
            .unwrap()
            .next_message_index();
        let unread = rm
            .user_conversations(&service, "bob", &PageRequest::default())
            .unwrap()
            .items
            .iter()
            .map(|u| u.unread_messages_count)
            .collect();
        (messages, next, unread)
    });
    Answers {
        messages,
        next_message_index,
        unread,
        digest: engine.live_digest().unwrap(),
    }
}

/// A store with messages, one of them (the last) deleted.
fn store(path: &Path) -> (ServiceSid, ConversationSid, Answers) {
    let engine = common::open(path);
    let service = engine
        .execute(CommandEnvelope::new(
            "service",
            CreateService::new("format"),
        ))
        .unwrap();
    let conv = engine
        .execute(CommandEnvelope::new(
            "conv",
            CreateConversation::new(service),
        ))
        .unwrap();
    let [_, bob] = ["alice", "bob"].map(|who| {
        engine
            .execute(CommandEnvelope::new(
                format!("join {who}"),
                AddParticipant::new(service, conv, ParticipantSpec::chat(who)),
            ))
            .unwrap()
    });
    let mut last = None;
    for n in 0..3 {
        let posted: PostedMessage = engine
            .execute(CommandEnvelope::new(
                format!("post {n}"),
                PostMessage::new(service, conv).author("alice").body("hi"),
            ))
            .unwrap();
        last = Some(posted.message_sid);
    }
    engine
        .execute(CommandEnvelope::new(
            "delete the last",
            DeleteMessage::new(service, conv, last.unwrap()),
        ))
        .unwrap();
    engine
        .execute(CommandEnvelope::new(
            "bob read 0",
            UpdateReadHorizon::advance(service, conv, bob, 0),
        ))
        .unwrap();
    let before = answers(&engine, service, conv);
    assert_eq!(before.messages, [0, 1]);
    assert_eq!(before.next_message_index, 3);
    assert_eq!(before.unread, [Some(1)]);
    (service, conv, before)
}

fn raw(path: &Path) -> rocksdb::DB {
    let options = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&options, path).unwrap();
    rocksdb::DB::open_cf(&options, path, names).unwrap()
}

#[test]
fn rows_without_a_recorded_format_are_re_derived_from_the_log() {
    let dir = common::temp_dir();
    let (service, conv, before) = store(dir.path());
    {
        let db = raw(dir.path());
        let meta = db.cf_handle(Table::Meta.name()).unwrap();
        db.delete_cf(meta, META_FORMAT_KEY).unwrap();
        // A conversation row in a layout this build cannot decode.
        let rows = db.cf_handle(Table::Conversations.name()).unwrap();
        let (key, _) = db
            .iterator_cf(rows, rocksdb::IteratorMode::Start)
            .next()
            .unwrap()
            .unwrap();
        db.put_cf(rows, key, b"an older layout").unwrap();
    }
    let engine = common::open(dir.path());
    assert_eq!(answers(&engine, service, conv), before);
}

#[test]
fn rows_of_another_format_version_are_re_derived_from_the_log() {
    let dir = common::temp_dir();
    let (service, conv, before) = store(dir.path());
    {
        let db = raw(dir.path());
        let meta = db.cf_handle(Table::Meta.name()).unwrap();
        db.put_cf(
            meta,
            META_FORMAT_KEY,
            (READ_MODEL_FORMAT_VERSION + 1).to_be_bytes(),
        )
        .unwrap();
        // A stray row the re-derivation must not keep.
        let messages = db.cf_handle(Table::Messages.name()).unwrap();
        db.put_cf(messages, [0xff; 40], b"stray").unwrap();
    }
    let engine = common::open(dir.path());
    assert_eq!(answers(&engine, service, conv), before);
}

#[test]
fn rows_in_the_current_format_are_loaded_as_they_are() {
    let dir = common::temp_dir();
    let (service, conv, before) = store(dir.path());
    {
        let db = raw(dir.path());
        // A row the log does not explain (load skips unknown Meta keys):
        // kept, so the rows were loaded, not re-derived.
        let meta = db.cf_handle(Table::Meta.name()).unwrap();
        db.put_cf(meta, b"stray", b"stray").unwrap();
    }
    let engine = common::open(dir.path());
    assert_ne!(engine.live_digest().unwrap(), before.digest);
    let mut after = answers(&engine, service, conv);
    after.digest = before.digest;
    assert_eq!(after, before);
}
