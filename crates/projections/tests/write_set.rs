//! The rows each event writes: a posted message writes its own row and
//! nothing else (the conversation row used to be rewritten per message,
//! and the applied position per event), and what is no longer written is
//! derived again when the rows are loaded.

mod support;

use events::*;
use projections::{ReadModels, RowMap, RowSink, Table};

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
        assert_eq!(sink.0, [(Table::Messages, "put")], "message {index}");
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

    // The rows written along the way are the rows of the whole state.
    let mut whole = RowMap::new();
    rm.write_rows(&mut whole);
    assert_eq!(whole, rows);

    let flat = rows.into_iter().map(|((t, k), v)| (t, k, v));
    let loaded = ReadModels::load(flat).unwrap();
    assert_eq!(loaded, rm);
    let conv = loaded
        .service(&SERVICE)
        .and_then(|s| s.conversation_by_sid(&CONVERSATION))
        .unwrap();
    // Index 2 was deleted: its tombstone keeps it from being given again
    // and keeps the time it was posted as the last activity.
    assert_eq!(conv.next_message_index(), 3);
    assert_eq!(conv.last_activity(), posted_last);
    assert_eq!(conv.unread_after(None), 1);
}

#[test]
fn a_conversation_without_messages_loads_with_its_creation_as_last_activity() {
    let (rm, rows) = conversation();
    let loaded = ReadModels::load(rows.into_iter().map(|((t, k), v)| (t, k, v))).unwrap();
    assert_eq!(loaded, rm);
    let conv = loaded
        .service(&SERVICE)
        .and_then(|s| s.conversation_by_sid(&CONVERSATION))
        .unwrap();
    assert_eq!(conv.next_message_index(), 0);
    assert_eq!(conv.last_activity(), conv.row().date_created);
}
