//! Regressions found by the engine's model-based tests, one test each,
//! named after what broke.

mod common;

use common::Harness;
use events::*;

/// `participant_by_binding` answered with a participant of a closed
/// conversation (its doc says `None` when no open conversation holds the
/// binding), and the answer then depended on history: after another
/// conversation took the binding and let it go, the live engine said
/// `None` but a reopened one named the closed conversation again.
#[test]
fn participant_by_binding_ignores_closed_conversations() {
    let mut h = Harness::new();
    let service = h.ok(CreateService::new("bindings"));
    let (address, proxy) = ("+15550001", "+15559001");
    let first = h.ok(CreateConversation::new(service));
    let binding = ParticipantSpec::binding(address, proxy);
    let first_participant = h.ok(AddParticipant::new(service, first, binding.clone()));
    let lookup = |h: &Harness| {
        h.engine()
            .read(|rm| rm.participant_by_binding(&service, proxy, address))
            .unwrap()
    };
    assert_eq!(lookup(&h), Some((first, first_participant)));

    h.ok(UpdateConversation::new(service, first).state(ConversationState::Closed));
    assert_eq!(lookup(&h), None, "a closed conversation holds no binding");
    h.reopen();
    assert_eq!(lookup(&h), None, "after reopening");

    // Another conversation takes the binding, then lets it go.
    let second = h.ok(CreateConversation::new(service));
    let second_participant = h.ok(AddParticipant::new(service, second, binding));
    assert_eq!(lookup(&h), Some((second, second_participant)));
    h.ok(RemoveParticipant::new(service, second, second_participant));
    assert_eq!(lookup(&h), None);
    h.reopen();
    assert_eq!(lookup(&h), None, "after reopening, as before it");
}
