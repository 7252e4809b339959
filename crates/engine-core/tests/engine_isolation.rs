//! Service isolation: a SID of one service used through another is
//! `NotFound`, for every kind (conversation, participant, message, user,
//! role, address configuration), for commands (which then write nothing)
//! and for queries (whose answer through the owning service is the
//! control). Both services hold look-alike data: the same identity, the
//! same binding, the same address configuration address.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;

use common::Harness;
use engine_core::CommandError;
use events::*;
use projections::{Order, PageRequest, QueryError, ReadModels};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

/// What one service holds, by SID.
#[derive(Debug, Clone)]
struct Res {
    svc: ServiceSid,
    conv: ConversationSid,
    unique_name: String,
    chat_part: ParticipantSid,
    bind_part: ParticipantSid,
    message: MessageSid,
    /// Alice's user (Alice is in both services).
    user: UserSid,
    service_role: RoleSid,
    conv_role: RoleSid,
    roles: Vec<RoleSid>,
    config: AddressConfigurationSid,
    config_address: String,
    /// An identity and a binding address only this service has.
    only_identity: String,
    only_address: String,
    only_proxy: String,
}

fn set_up(h: &mut Harness, i: usize) -> Res {
    let svc = h.ok(CreateService::new(format!("service {i}")));
    let conv_role = h.ok(CreateRole::new(
        svc,
        "custom",
        RoleType::Conversation,
        [Permission::SendMessage],
    ));
    let unique_name = format!("room-{i}");
    let (only_identity, only_address, only_proxy) = (
        format!("only-{i}"),
        format!("+1555000{i}"),
        format!("+1999000{i}"),
    );
    let spec = ConversationSpec::default().unique_name(&unique_name);
    let created = h.ok(CreateConversationWithParticipants::new(svc, spec)
        .participant(ParticipantSpec::chat("alice"))
        .participant(ParticipantSpec::chat(&only_identity))
        .participant(ParticipantSpec::binding("+15550000000", "+19990000000"))
        .participant(ParticipantSpec::binding(&only_address, &only_proxy)));
    let conv = created.conversation_sid;
    let parts = created.participant_sids;
    let hello = PostMessage::new(svc, conv).author("alice").body("hello");
    let message = h.ok(hello).message_sid;
    let mut config = None;
    for address in ["+19990000000".to_string(), only_proxy.clone()] {
        config = Some(h.ok(CreateAddressConfiguration::new(
            svc,
            AddressType::Sms,
            address,
        )));
    }
    let (user, roles, service_role) = h.engine().read(|rm| {
        let user = rm.user_by_identity(&svc, "alice").unwrap().sid;
        let service = rm.get_service(&svc).unwrap();
        let roles: Vec<RoleSid> = service.roles().map(|r| r.sid).collect();
        let service_role = service.row().default_chat_service_role_sid.unwrap();
        (user, roles, service_role)
    });
    Res {
        svc,
        conv,
        unique_name,
        chat_part: parts[0],
        bind_part: parts[3],
        message,
        user,
        service_role,
        conv_role,
        roles,
        config: config.unwrap(),
        config_address: only_proxy.clone(),
        only_identity,
        only_address,
        only_proxy,
    }
}

fn sid(c: ConversationSid) -> ConversationRef {
    ConversationRef::Sid(c)
}

/// Commands through `t` (the other service) naming `o`'s resources, each
/// with the kind its `NotFound` must name. `x` varies the details.
fn foreign_commands(o: &Res, t: &Res, x: usize) -> Vec<(Command, &'static str)> {
    let s = t.svc;
    let body = format!("probe {x}");
    let any_role = o.roles[x % o.roles.len()];
    let fresh = format!("fresh-{x}");
    let slot = |k: usize| (x % 3 == k).then_some(any_role);
    vec![
        // A conversation of another service.
        (
            UpdateConversation::new(s, o.conv).friendly_name("x").into(),
            "conversation",
        ),
        (DeleteConversation::new(s, o.conv).into(), "conversation"),
        (
            AddParticipant::new(s, o.conv, ParticipantSpec::chat(&fresh)).into(),
            "conversation",
        ),
        (
            RemoveParticipant::new(s, o.conv, o.chat_part).into(),
            "conversation",
        ),
        (
            UpdateParticipant::new(s, o.conv, o.chat_part)
                .attributes("{}")
                .into(),
            "conversation",
        ),
        (
            PostMessage::new(s, o.conv).body(&body).into(),
            "conversation",
        ),
        (
            PostMessage::new(s, ConversationRef::UniqueName(o.unique_name.clone()))
                .body(&body)
                .into(),
            "conversation",
        ),
        (
            EditMessage::new(s, o.conv, o.message).body(&body).into(),
            "conversation",
        ),
        (
            DeleteMessage::new(s, o.conv, o.message).into(),
            "conversation",
        ),
        (
            UpdateReadHorizon::set(s, o.conv, o.chat_part, Some(x as u64)).into(),
            "conversation",
        ),
        (
            UpdateUserConversation::new(s, t.user, o.conv, NotificationLevel::Muted).into(),
            "conversation",
        ),
        (
            RecordDeliveryReceipt::new(
                s,
                o.conv,
                o.message,
                o.bind_part,
                DeliveryStatus::Delivered,
            )
            .into(),
            "conversation",
        ),
        (
            Command::RecordDeliveryAttemptFailed(RecordDeliveryAttemptFailed {
                service: s,
                conversation: o.conv,
                message: o.message,
                participant: o.bind_part,
                attempt: 1,
                error: "timeout".into(),
            }),
            "conversation",
        ),
        // A participant of another service, in this service's conversation.
        (
            RemoveParticipant::new(s, t.conv, o.chat_part).into(),
            "participant",
        ),
        (
            UpdateParticipant::new(s, t.conv, o.chat_part)
                .attributes("{}")
                .into(),
            "participant",
        ),
        (
            // Advancing to no index: a combination no constructor makes.
            Command::UpdateReadHorizon(UpdateReadHorizon {
                service: s,
                conversation: sid(t.conv),
                participant: o.chat_part,
                last_read_message_index: None,
                mode: HorizonMode::Advance,
            }),
            "participant",
        ),
        (
            RecordDeliveryReceipt::new(s, t.conv, t.message, o.bind_part, DeliveryStatus::Read)
                .into(),
            "participant",
        ),
        // A message of another service.
        (
            EditMessage::new(s, t.conv, o.message).body(&body).into(),
            "message",
        ),
        (DeleteMessage::new(s, t.conv, o.message).into(), "message"),
        (
            RecordDeliveryReceipt::new(s, t.conv, o.message, t.bind_part, DeliveryStatus::Sent)
                .into(),
            "message",
        ),
        (
            Command::RecordDeliveryAttemptFailed(RecordDeliveryAttemptFailed {
                service: s,
                conversation: t.conv,
                message: o.message,
                participant: t.bind_part,
                attempt: 2,
                error: "busy".into(),
            }),
            "message",
        ),
        // A user of another service.
        (UpdateUser::new(s, o.user).friendly_name("x").into(), "user"),
        (DeleteUser::new(s, o.user).into(), "user"),
        (
            UpdateUserConversation::new(s, o.user, t.conv, NotificationLevel::Muted).into(),
            "user",
        ),
        // A role of another service.
        (UpdateRole::new(s, any_role, []).into(), "role"),
        (DeleteRole::new(s, any_role).into(), "role"),
        (
            CreateUser::new(s, &fresh).role_sid(o.service_role).into(),
            "role",
        ),
        (
            UpdateUser::new(s, t.user).role_sid(o.service_role).into(),
            "role",
        ),
        (
            AddParticipant::new(
                s,
                t.conv,
                ParticipantSpec::chat(&fresh).role_sid(o.conv_role),
            )
            .into(),
            "role",
        ),
        (
            UpdateParticipant::new(s, t.conv, t.chat_part)
                .role_sid(o.conv_role)
                .into(),
            "role",
        ),
        (
            // Which default role names the foreign role varies with `x`.
            Command::UpdateServiceConfiguration(UpdateServiceConfiguration {
                service: s,
                default_conversation_creator_role_sid: slot(0),
                default_conversation_role_sid: slot(1),
                default_chat_service_role_sid: slot(2),
            }),
            "role",
        ),
        (
            CreateConversationWithParticipants::new(s, ConversationSpec::default())
                .participant(ParticipantSpec::chat(&fresh).role_sid(o.conv_role))
                .into(),
            "role",
        ),
        // An address configuration of another service.
        (
            UpdateAddressConfiguration::new(s, o.config)
                .friendly_name("x")
                .into(),
            "address configuration",
        ),
        (
            DeleteAddressConfiguration::new(s, o.config).into(),
            "address configuration",
        ),
    ]
}

fn is_not_found<T>(r: &Result<T, QueryError>, kind: &str) -> bool {
    matches!(r, Err(QueryError::NotFound { kind: k, .. }) if *k == kind)
}

/// Query `q` through `t` must not see `o`'s resource; through `o` (the
/// control) it must.
const QUERIES: usize = 16;

fn foreign_query(
    rm: &ReadModels,
    q: usize,
    o: &Res,
    t: &Res,
    x: usize,
) -> Result<(), TestCaseError> {
    let page = PageRequest::default();
    match q % QUERIES {
        0 => {
            prop_assert!(is_not_found(
                &rm.get_conversation(&t.svc, &sid(o.conv)),
                "conversation"
            ));
            prop_assert!(rm.get_conversation(&o.svc, &sid(o.conv)).is_ok());
        }
        1 => {
            let by_name = ConversationRef::UniqueName(o.unique_name.clone());
            prop_assert!(is_not_found(
                &rm.get_conversation(&t.svc, &by_name),
                "conversation"
            ));
            prop_assert_eq!(
                rm.get_conversation(&o.svc, &by_name).unwrap().row().sid,
                o.conv
            );
        }
        2 => {
            prop_assert!(is_not_found(
                &rm.participants(&t.svc, &sid(o.conv), &page),
                "conversation"
            ));
            prop_assert!(!rm
                .participants(&o.svc, &sid(o.conv), &page)
                .unwrap()
                .items
                .is_empty());
        }
        3 => {
            let get = |s: &ServiceSid| rm.messages(s, &sid(o.conv), Order::Desc, &page);
            prop_assert!(is_not_found(&get(&t.svc), "conversation"));
            prop_assert!(!get(&o.svc).unwrap().items.is_empty());
        }
        4 => {
            prop_assert!(is_not_found(
                &rm.message(&t.svc, &sid(t.conv), &o.message),
                "message"
            ));
            prop_assert!(is_not_found(
                &rm.message(&t.svc, &sid(o.conv), &o.message),
                "conversation"
            ));
            prop_assert!(rm.message(&o.svc, &sid(o.conv), &o.message).is_ok());
        }
        5 => {
            prop_assert!(is_not_found(
                &rm.receipts(&t.svc, &sid(t.conv), &o.message, &page),
                "message"
            ));
            prop_assert!(rm.receipts(&o.svc, &sid(o.conv), &o.message, &page).is_ok());
        }
        6 => {
            prop_assert!(is_not_found(&rm.user(&t.svc, &o.user), "user"));
            prop_assert!(rm.user(&o.svc, &o.user).is_ok());
            // Nor does the other service's user list name it.
            let listed = |s: &ServiceSid| rm.list_users(s, &page).unwrap().items;
            prop_assert!(listed(&t.svc).iter().all(|u| u.sid != o.user));
            prop_assert!(listed(&o.svc).iter().any(|u| u.sid == o.user));
        }
        7 => {
            let role = o.roles[x % o.roles.len()];
            prop_assert!(is_not_found(&rm.role(&t.svc, &role), "role"));
            prop_assert!(rm.role(&o.svc, &role).is_ok());
            let listed = |s: &ServiceSid| rm.list_roles(s, &page).unwrap().items;
            prop_assert!(listed(&t.svc).iter().all(|r| r.sid != role));
            prop_assert!(listed(&o.svc).iter().any(|r| r.sid == role));
        }
        8 => {
            prop_assert!(is_not_found(
                &rm.address_configuration_by_address(&t.svc, &o.config_address),
                "address configuration"
            ));
            prop_assert_eq!(
                rm.address_configuration_by_address(&o.svc, &o.config_address)
                    .unwrap()
                    .sid,
                o.config
            );
            let listed = |s: &ServiceSid| rm.list_address_configurations(s, &page).unwrap().items;
            prop_assert!(listed(&t.svc).iter().all(|a| a.sid != o.config));
            prop_assert!(listed(&o.svc).iter().any(|a| a.sid == o.config));
        }
        9 => {
            prop_assert_eq!(
                rm.participant_by_binding(&t.svc, &o.only_proxy, &o.only_address)
                    .unwrap(),
                None
            );
            prop_assert_eq!(
                rm.participant_by_binding(&o.svc, &o.only_proxy, &o.only_address)
                    .unwrap(),
                Some((o.conv, o.bind_part))
            );
        }
        10 => {
            prop_assert!(rm
                .user_conversations(&t.svc, &o.only_identity, &page)
                .unwrap()
                .items
                .is_empty());
            let mine = rm
                .user_conversations(&o.svc, &o.only_identity, &page)
                .unwrap()
                .items;
            prop_assert!(mine.iter().any(|u| u.conversation_sid == o.conv));
        }
        11 => {
            prop_assert!(rm
                .participant_conversations_by_identity(&t.svc, &o.only_identity, &page)
                .unwrap()
                .items
                .is_empty());
            prop_assert!(!rm
                .participant_conversations_by_identity(&o.svc, &o.only_identity, &page)
                .unwrap()
                .items
                .is_empty());
        }
        12 => {
            prop_assert!(rm
                .participant_conversations_by_address(&t.svc, &o.only_address, &page)
                .unwrap()
                .items
                .is_empty());
            prop_assert!(!rm
                .participant_conversations_by_address(&o.svc, &o.only_address, &page)
                .unwrap()
                .items
                .is_empty());
        }
        13 => {
            prop_assert!(is_not_found(
                &rm.user_by_identity(&t.svc, &o.only_identity),
                "user"
            ));
            prop_assert!(rm.user_by_identity(&o.svc, &o.only_identity).is_ok());
        }
        14 => {
            // A participant SID is only ever listed by its own service.
            let listed = |s: &ServiceSid, c: ConversationSid| -> Vec<ParticipantSid> {
                rm.participants(s, &sid(c), &page)
                    .unwrap()
                    .items
                    .into_iter()
                    .map(|p| p.sid)
                    .collect()
            };
            prop_assert!(!listed(&t.svc, t.conv).contains(&o.chat_part));
            prop_assert!(listed(&o.svc, o.conv).contains(&o.chat_part));
        }
        _ => {
            // The identity both services share: each lists only its own.
            let convs = |s: &ServiceSid| -> Vec<ConversationSid> {
                rm.user_conversations(s, "alice", &page)
                    .unwrap()
                    .items
                    .into_iter()
                    .map(|u| u.conversation_sid)
                    .collect()
            };
            prop_assert!(!convs(&t.svc).contains(&o.conv));
            prop_assert!(convs(&o.svc).contains(&o.conv));
            prop_assert!(convs(&t.svc).contains(&t.conv));
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Probe {
    /// A command through the other service naming the owner's SID.
    Command {
        owner: usize,
        which: usize,
        x: usize,
    },
    /// A query through the other service, with its control.
    Query {
        owner: usize,
        which: usize,
        x: usize,
    },
    /// Ordinary activity in one service, so probes see a changing state.
    Activity { owner: usize, x: usize },
}

fn probe() -> impl Strategy<Value = Probe> {
    prop_oneof![
        4 => (0usize..2, 0usize..64, 0usize..64)
            .prop_map(|(owner, which, x)| Probe::Command { owner, which, x }),
        3 => (0usize..2, 0usize..64, 0usize..64)
            .prop_map(|(owner, which, x)| Probe::Query { owner, which, x }),
        1 => (0usize..2, 0usize..64).prop_map(|(owner, x)| Probe::Activity { owner, x }),
    ]
}

#[test]
fn sids_of_one_service_are_not_found_through_another() {
    let mut h = Harness::new();
    let res = [set_up(&mut h, 0), set_up(&mut h, 1)];
    let h = RefCell::new(h);
    let commands_tried = RefCell::new(BTreeSet::new());
    let queries_tried = RefCell::new(BTreeSet::new());
    let config = ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(probe(), 1..=8), |probes| {
        let mut h = h.borrow_mut();
        for p in probes {
            match p {
                Probe::Command { owner, which, x } => {
                    let (o, t) = (&res[owner], &res[1 - owner]);
                    let commands = foreign_commands(o, t, x);
                    let (command, kind) = commands[which % commands.len()].clone();
                    commands_tried.borrow_mut().insert(which % commands.len());
                    let head = h.head();
                    let shown = format!("{command:?}");
                    match h.exec(command) {
                        Err(CommandError::NotFound { kind: k, .. }) => {
                            prop_assert_eq!(k, kind, "{}", shown)
                        }
                        other => {
                            return Err(TestCaseError::fail(format!(
                                "{shown}: expected NotFound({kind}), got {other:?}"
                            )))
                        }
                    }
                    prop_assert_eq!(h.head(), head, "{} wrote something", shown);
                }
                Probe::Query { owner, which, x } => {
                    queries_tried.borrow_mut().insert(which % QUERIES);
                    h.engine()
                        .read(|rm| foreign_query(rm, which, &res[owner], &res[1 - owner], x))?;
                }
                Probe::Activity { owner, x } => {
                    let o = &res[owner];
                    if x % 2 == 0 {
                        let activity = format!("activity {x}");
                        h.ok(PostMessage::new(o.svc, o.conv)
                            .author("alice")
                            .body(activity));
                    } else {
                        // May already be there: either answer is fine.
                        let member = ParticipantSpec::chat(format!("member-{x}"));
                        let _ = h.exec(AddParticipant::new(o.svc, o.conv, member));
                    }
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // 256 cases of up to 8 probes try every command and query.
    let commands = foreign_commands(&res[0], &res[1], 0).len();
    assert_eq!(commands_tried.into_inner().len(), commands);
    assert_eq!(queries_tried.into_inner().len(), QUERIES);
}
