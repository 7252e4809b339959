//! Helpers shared by the projections tests.

use events::*;
use projections::{ReadModels, RowMap};

/// Folds `event` into `rm` as the next record of `service`, as the engine
/// does (the record's time is its position plus a fixed offset), writing
/// the changed rows to `rows` (each event its own batch).
pub fn apply_next(rm: &mut ReadModels, rows: &mut RowMap, service: ServiceSid, event: Event) {
    let position = rm.applied_position().map_or(0, |p| p + 1);
    let header = RecordHeader {
        position,
        recorded_at: 1_000 + position,
        service_sid: service,
        conversation_sid: event.conversation_sid(),
        command_id: CommandId::from_key(&position.to_le_bytes()),
        actor: None,
    };
    rm.apply(&header, &event, rows);
    rm.finish_batch(rows);
}

/// The creation of an active conversation `sid` with default fields.
pub fn conversation_created(sid: ConversationSid) -> Event {
    Event::ConversationCreated {
        conversation_sid: sid,
        friendly_name: None,
        unique_name: None,
        attributes: "{}".into(),
        state: ConversationState::Active,
        timers: Timers::default(),
        messaging_service_sid: None,
    }
}
