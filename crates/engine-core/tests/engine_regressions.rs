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

/// `UpdateServiceConfiguration` documents `None` fields as left
/// unchanged, but its event carried them as `None` and the read model
/// cleared the service's other default roles: setting one default role
/// (as the REST Configuration resource does with one parameter) unset
/// the other two.
#[test]
fn update_service_configuration_leaves_unnamed_default_roles_unchanged() {
    let mut h = Harness::new();
    let service = h.ok(CreateService::new("configuration"));
    let defaults = |h: &Harness| {
        h.engine().read(|rm| {
            let row = rm.get_service(&service).unwrap().row().clone();
            (
                row.default_conversation_creator_role_sid,
                row.default_conversation_role_sid,
                row.default_chat_service_role_sid,
            )
        })
    };
    let (creator, conversation, chat_service) = defaults(&h);
    assert!(creator.is_some() && conversation.is_some() && chat_service.is_some());
    let role = h.ok(CreateRole::new(
        service,
        "moderator",
        RoleType::Conversation,
        vec![Permission::SendMessage],
    ));
    h.ok(UpdateServiceConfiguration::new(service).default_conversation_role_sid(role));
    assert_eq!(defaults(&h), (creator, Some(role), chat_service));
    h.reopen();
    assert_eq!(
        defaults(&h),
        (creator, Some(role), chat_service),
        "after reopening"
    );
}
