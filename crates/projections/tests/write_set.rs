//! The rows each event writes: a posted message writes its own row and its
//! SID's and nothing else (the conversation row used to be rewritten per
//! message, and the applied position per event), messages are cold rows
//! written without reading them back, and what is no longer written is
//! derived again when the rows are loaded.

mod support;

use std::sync::Arc;

use events::*;
use projections::{NoColdRows, ReadModels, RowMap, RowSink, Table};

const SERVICE: ServiceSid = ServiceSid([1; 16]);
const CONVERSATION: ConversationSid = ConversationSid([2; 16]);

/// A sink that keeps every write in order, puts and deletes alike.
#[derive(Default)]
struct Recorded(Vec<(Table, &'static str)>);

impl RowSink for Recorded {
    fn put(&mut self, table: Table, _: Vec<u8>, _: Vec<u8>) {
        self.0.push((table, "put"));
    }
    fn delete(&mut self, table: Table, _: Vec<u8>) {
        self.0.push((table, "delete"));
    }
    fn delete_range(&mut self, table: Table, _: Vec<u8>, _: Vec<u8>) {
        self.0.push((table, "delete_range"));
    }
}

fn edited(index: u64, body: &str) -> Event {
    Event::MessageUpdated {
        conversation_sid: CONVERSATION,
        message_sid: MessageSid([index as u8 + 10; 16]),
        index,
        body: Some(body.into()),
        attributes: "{\"edited\":true}".into(),
    }
}

/// The rows of `rows` outside the cold tables.
fn resident(rows: &RowMap) -> RowMap {
    rows.iter()
        .filter(|((t, _), _)| !t.is_cold())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn posted(index: u64) -> Event {
    Event::MessageAdded {
        conversation_sid: CONVERSATION,
        message_sid: MessageSid([index as u8 + 10; 16]),
        index,
        author: "alice".into(),
        participant_sid: None,
        body: Some(format!("message {index}")),
        media: Vec::new(),
        attributes: "{}".into(),
    }
}

fn removed(index: u64) -> Event {
    Event::MessageRemoved {
        conversation_sid: CONVERSATION,
        message_sid: MessageSid([index as u8 + 10; 16]),
        index,
    }
}

/// A service with one conversation, and its rows.
fn conversation() -> (ReadModels, RowMap) {
    let mut rm = ReadModels::new();
    let mut rows = RowMap::new();
    support::apply_next(
        &mut rm,
        &mut rows,
        SERVICE,
        Event::ServiceCreated {
            friendly_name: "s".into(),
        },
    );
    support::apply_next(
        &mut rm,
        &mut rows,
        SERVICE,
        support::conversation_created(CONVERSATION),
    );
    (rm, rows)
}

fn header(rm: &ReadModels, event: &Event) -> RecordHeader {
    let position = rm.applied_position().map_or(0, |p| p + 1);
    RecordHeader {
        position,
        recorded_at: 1_000 + position,
        service_sid: SERVICE,
        conversation_sid: event.conversation_sid(),
        command_id: CommandId::from_key(&position.to_le_bytes()),
        actor: None,
    }
}

#[test]
fn a_posted_message_writes_its_own_row_and_nothing_else() {
    let (mut rm, _) = conversation();
    for index in 0..3 {
        let event = posted(index);
        let mut sink = Recorded::default();
        rm.apply(&header(&rm, &event), &event, &mut sink);
        assert_eq!(
            sink.0,
            [(Table::Messages, "put"), (Table::MessageSids, "put")],
            "message {index}"
        );
    }
}

#[test]
fn bookkeeping_rows_are_written_once_per_batch() {
    let (mut rm, _) = conversation();
    let mut sink = Recorded::default();
    for index in 0..4 {
        let event = posted(index);
        rm.apply(&header(&rm, &event), &event, &mut sink);
    }
    rm.finish_batch(&mut sink);
    let meta = sink.0.iter().filter(|(t, _)| *t == Table::Meta).count();
    assert_eq!(meta, 2, "the applied position and the row format, once");
}

#[test]
fn message_counters_are_derived_at_load_with_the_last_message_deleted() {
    let (mut rm, mut rows) = conversation();
    for index in 0..3 {
        support::apply_next(&mut rm, &mut rows, SERVICE, posted(index));
    }
    support::apply_next(&mut rm, &mut rows, SERVICE, removed(2));
    support::apply_next(&mut rm, &mut rows, SERVICE, removed(0));
    let conv = rm
        .service(&SERVICE)
        .and_then(|s| s.conversation_by_sid(&CONVERSATION))
        .unwrap();
    assert_eq!(conv.next_message_index(), 3);
    assert_eq!(conv.message_count(), 1);
    let posted_last = conv.last_activity();

    // The rows written along the way are the rows of the whole state,
    // but for the cold ones, which are not in memory.
    let mut whole = RowMap::new();
    rm.write_rows(&mut whole);
    assert_eq!(whole, resident(&rows));

    let cold = Arc::new(rows.clone());
    let flat = rows.into_iter().map(|((t, k), v)| (t, k, v));
    let loaded = ReadModels::load(flat, cold).unwrap();
    assert_eq!(loaded, rm);
    let conv = loaded
        .service(&SERVICE)
        .and_then(|s| s.conversation_by_sid(&CONVERSATION))
        .unwrap();
    // Index 2 was deleted: its tombstone keeps it from being given again
    // and keeps the time it was posted as the last activity.
    assert_eq!(conv.next_message_index(), 3);
    assert_eq!(conv.last_activity(), posted_last);
    assert_eq!(conv.unread_after(0), 1);
    assert_eq!(conv.unread_after(1), 0);
    assert_eq!(conv.unread_after(2), 0);
    // The one live message is read from the cold rows; the deleted ones
    // are gone.
    let live = loaded.message_at(conv, 1).unwrap().expect("message 1");
    assert_eq!(live.body.as_deref(), Some("message 1"));
    assert_eq!(loaded.message_at(conv, 0).unwrap(), None);
    assert_eq!(loaded.message_at(conv, 2).unwrap(), None);
    let by_sid = loaded.message_in(conv, &live.sid).unwrap();
    assert_eq!(by_sid, Some(live));
}

#[test]
fn an_edit_is_written_without_reading_the_message_back() {
    let (mut rm, mut rows) = conversation();
    support::apply_next(&mut rm, &mut rows, SERVICE, posted(0));
    rm.finish_batch(&mut rows);
    // Nothing can be read back: the state has no cold source.
    let event = edited(0, "changed");
    let mut sink = Recorded::default();
    rm.apply(&header(&rm, &event), &event, &mut sink);
    assert_eq!(sink.0, [(Table::MessageEdits, "put")]);
    // Later in the same batch, the edit is seen over the stored message.
    rm.apply(&header(&rm, &event), &event, &mut rows);
    rm.set_cold(Arc::new(rows.clone()));
    let conv = rm
        .service(&SERVICE)
        .and_then(|s| s.conversation_by_sid(&CONVERSATION))
        .unwrap();
    let m = rm.message_at(conv, 0).unwrap().expect("message 0");
    assert_eq!(m.body.as_deref(), Some("changed"));
    assert_eq!(m.attributes, "{\"edited\":true}");
}

#[test]
fn messages_posted_in_the_batch_under_way_are_read_from_memory_until_it_is_finished() {
    let (mut rm, mut rows) = conversation();
    for event in [posted(0), edited(0, "edited in the batch")] {
        rm.apply(&header(&rm, &event), &event, &mut rows);
    }
    let conv = |rm: &ReadModels| {
        rm.service(&SERVICE)
            .and_then(|s| s.conversation_by_sid(&CONVERSATION))
            .cloned()
            .unwrap()
    };
    // No cold source: only what the batch staged can answer.
    let staged = rm.message_at(&conv(&rm), 0).unwrap().expect("staged");
    assert_eq!(staged.body.as_deref(), Some("edited in the batch"));
    rm.finish_batch(&mut rows);
    assert_eq!(
        rm.message_at(&conv(&rm), 0).unwrap(),
        None,
        "no longer staged"
    );
    rm.set_cold(Arc::new(rows));
    let stored = rm.message_at(&conv(&rm), 0).unwrap().expect("stored");
    assert_eq!(stored, staged);
}

#[test]
fn deleting_a_conversation_deletes_its_cold_rows_by_range() {
    let (mut rm, mut rows) = conversation();
    for index in 0..3 {
        support::apply_next(&mut rm, &mut rows, SERVICE, posted(index));
    }
    support::apply_next(&mut rm, &mut rows, SERVICE, edited(1, "x"));
    assert!(rows.keys().any(|(t, _)| t.is_cold()));
    support::apply_next(
        &mut rm,
        &mut rows,
        SERVICE,
        Event::ConversationRemoved {
            conversation_sid: CONVERSATION,
        },
    );
    let left: Vec<_> = rows.keys().filter(|(t, _)| t.is_cold()).collect();
    assert!(left.is_empty(), "cold rows left: {left:?}");
}

#[test]
fn a_conversation_without_messages_loads_with_its_creation_as_last_activity() {
    let (rm, rows) = conversation();
    let loaded = ReadModels::load(
        rows.into_iter().map(|((t, k), v)| (t, k, v)),
        Arc::new(NoColdRows),
    )
    .unwrap();
    assert_eq!(loaded, rm);
    let conv = loaded
        .service(&SERVICE)
        .and_then(|s| s.conversation_by_sid(&CONVERSATION))
        .unwrap();
    assert_eq!(conv.next_message_index(), 0);
    assert_eq!(conv.last_activity(), conv.row().date_created);
}
