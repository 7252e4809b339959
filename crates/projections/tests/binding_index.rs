//! Regression: after a reload, the binding index pointed at a closed
//! conversation instead of the open one holding the same binding, depending
//! on the order participant rows were loaded in.

mod support;

use events::*;
use projections::{ReadModels, RowMap, Table};

fn apply(rm: &mut ReadModels, rows: &mut RowMap, event: Event) {
    support::apply_next(rm, rows, ServiceSid([1; 16]), event);
}

fn joined(conversation_sid: ConversationSid, participant: u8) -> Event {
    Event::ParticipantAdded {
        conversation_sid,
        participant_sid: ParticipantSid([participant; 16]),
        kind: ParticipantKind::Messaging(MessagingBinding {
            address: "+1555".into(),
            proxy_address: "+1999".into(),
            projected_address: None,
        }),
        user_sid: None,
        attributes: "{}".into(),
        role_sid: None,
    }
}

#[test]
fn binding_index_prefers_the_open_conversation_whatever_the_load_order() {
    let service = ServiceSid([1; 16]);
    // The closed conversation's SID sorts after the open one's, and the
    // reversed row order below tries the other order too.
    let closed = ConversationSid([9; 16]);
    let open = ConversationSid([2; 16]);
    let mut rm = ReadModels::new();
    let mut rows = RowMap::new();
    apply(
        &mut rm,
        &mut rows,
        Event::ServiceCreated {
            friendly_name: "s".into(),
        },
    );
    apply(&mut rm, &mut rows, support::conversation_created(closed));
    apply(&mut rm, &mut rows, joined(closed, 7));
    apply(
        &mut rm,
        &mut rows,
        Event::ConversationUpdated {
            conversation_sid: closed,
            friendly_name: None,
            unique_name: None,
            attributes: "{}".into(),
            state: ConversationState::Closed,
            timers: Timers::default(),
        },
    );
    apply(&mut rm, &mut rows, support::conversation_created(open));
    apply(&mut rm, &mut rows, joined(open, 3));
    let want = Some((open, ParticipantSid([3; 16])));
    assert_eq!(
        rm.participant_by_binding(&service, "+1999", "+1555")
            .unwrap(),
        want
    );

    let flat: Vec<(Table, Vec<u8>, Vec<u8>)> =
        rows.into_iter().map(|((t, k), v)| (t, k, v)).collect();
    for order in [flat.clone(), flat.into_iter().rev().collect()] {
        let loaded = ReadModels::load(order, std::sync::Arc::new(projections::NoColdRows)).unwrap();
        assert_eq!(
            loaded
                .participant_by_binding(&service, "+1999", "+1555")
                .unwrap(),
            want
        );
        assert_eq!(loaded, rm);
    }
}
