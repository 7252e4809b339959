//! Service isolation: a SID of one service used through another is
//! `NotFound`, for every kind (conversation, participant, message, user,
//! role, address configuration), for commands (which then write nothing)
//! and for queries (whose answer through the owning service is the
//! control). Both services hold look-alike data: the same identity, the
//! same binding, the same address configuration address.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;

use common::{binding, chat, spec, Harness};
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
    let svc = h.service(&format!("service {i}"));
    let conv_role = h
        .ok(Command::CreateRole(CreateRole {
            service: svc,
            friendly_name: "custom".into(),
            role_type: RoleType::Conversation,
            permissions: vec![Permission::SendMessage],
        }))
        .events()
        .find_map(|e| match e {
            Event::RoleCreated { role_sid, .. } => Some(*role_sid),
            _ => None,
        })
        .unwrap();
    let unique_name = format!("room-{i}");
    let (only_identity, only_address, only_proxy) = (
        format!("only-{i}"),
        format!("+1555000{i}"),
        format!("+1999000{i}"),
    );
    let created = h.ok(Command::CreateConversationWithParticipants(
        CreateConversationWithParticipants {
            service: svc,
            spec: ConversationSpec {
                unique_name: Some(unique_name.clone()),
                ..Default::default()
            },
            participants: vec![
                spec(chat("alice")),
                spec(chat(&only_identity)),
                spec(binding("+15550000000", "+19990000000")),
                spec(binding(&only_address, &only_proxy)),
            ],
        },
    ));
    let conv = created.conversation_sid().unwrap();
    let parts = created.participant_sids();
    let (message, _) = h.post(svc, conv, "alice", "hello");
    let mut config = None;
    for address in ["+19990000000".to_string(), only_proxy.clone()] {
        let out = h.ok(Command::CreateAddressConfiguration(
            CreateAddressConfiguration {
                service: svc,
                address_type: AddressType::Sms,
                address,
                friendly_name: None,
                auto_creation: AutoCreation::default(),
            },
        ));
        config = out.events().find_map(|e| match e {
            Event::AddressConfigurationCreated {
                address_configuration_sid,
                ..
            } => Some(*address_configuration_sid),
            _ => None,
        });
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
    let body = Some(format!("probe {x}"));
    let any_role = o.roles[x % o.roles.len()];
    let fresh = format!("fresh-{x}");
    let slot = |k: usize| (x % 3 == k).then_some(any_role);
    vec![
        // A conversation of another service.
        (
            Command::UpdateConversation(UpdateConversation {
                service: s,
                conversation: sid(o.conv),
                friendly_name: Some("x".into()),
                unique_name: None,
                attributes: None,
                state: None,
                timers: None,
            }),
            "conversation",
        ),
        (
            Command::DeleteConversation(DeleteConversation {
                service: s,
                conversation: sid(o.conv),
            }),
            "conversation",
        ),
        (
            Command::AddParticipant(AddParticipant {
                service: s,
                conversation: sid(o.conv),
                participant: spec(chat(&fresh)),
            }),
            "conversation",
        ),
        (
            Command::RemoveParticipant(RemoveParticipant {
                service: s,
                conversation: sid(o.conv),
                participant: o.chat_part,
            }),
            "conversation",
        ),
        (
            Command::UpdateParticipant(UpdateParticipant {
                service: s,
                conversation: sid(o.conv),
                participant: o.chat_part,
                attributes: Some("{}".into()),
                role_sid: None,
                last_read_message_index: None,
                last_read_timestamp: None,
            }),
            "conversation",
        ),
        (
            Command::PostMessage(PostMessage {
                service: s,
                conversation: sid(o.conv),
                author: None,
                body: body.clone(),
                media: Vec::new(),
                attributes: None,
            }),
            "conversation",
        ),
        (
            Command::PostMessage(PostMessage {
                service: s,
                conversation: ConversationRef::UniqueName(o.unique_name.clone()),
                author: None,
                body: body.clone(),
                media: Vec::new(),
                attributes: None,
            }),
            "conversation",
        ),
        (
            Command::EditMessage(EditMessage {
                service: s,
                conversation: sid(o.conv),
                message: o.message,
                body: body.clone(),
                attributes: None,
            }),
            "conversation",
        ),
        (
            Command::DeleteMessage(DeleteMessage {
                service: s,
                conversation: sid(o.conv),
                message: o.message,
            }),
            "conversation",
        ),
        (
            Command::UpdateReadHorizon(UpdateReadHorizon {
                service: s,
                conversation: sid(o.conv),
                participant: o.chat_part,
                last_read_message_index: Some(x as u64),
                mode: HorizonMode::Set,
            }),
            "conversation",
        ),
        (
            Command::UpdateUserConversation(UpdateUserConversation {
                service: s,
                user: t.user,
                conversation: sid(o.conv),
                notification_level: NotificationLevel::Muted,
            }),
            "conversation",
        ),
        (
            Command::RecordDeliveryReceipt(RecordDeliveryReceipt {
                service: s,
                conversation: sid(o.conv),
                message: o.message,
                participant: o.bind_part,
                status: DeliveryStatus::Delivered,
                error_code: None,
                channel_message_sid: None,
            }),
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
            Command::RemoveParticipant(RemoveParticipant {
                service: s,
                conversation: sid(t.conv),
                participant: o.chat_part,
            }),
            "participant",
        ),
        (
            Command::UpdateParticipant(UpdateParticipant {
                service: s,
                conversation: sid(t.conv),
                participant: o.chat_part,
                attributes: Some("{}".into()),
                role_sid: None,
                last_read_message_index: None,
                last_read_timestamp: None,
            }),
            "participant",
        ),
        (
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
            Command::RecordDeliveryReceipt(RecordDeliveryReceipt {
                service: s,
                conversation: sid(t.conv),
                message: t.message,
                participant: o.bind_part,
                status: DeliveryStatus::Read,
                error_code: None,
                channel_message_sid: None,
            }),
            "participant",
        ),
        // A message of another service.
        (
            Command::EditMessage(EditMessage {
                service: s,
                conversation: sid(t.conv),
                message: o.message,
                body: body.clone(),
                attributes: None,
            }),
            "message",
        ),
        (
            Command::DeleteMessage(DeleteMessage {
                service: s,
                conversation: sid(t.conv),
                message: o.message,
            }),
            "message",
        ),
        (
            Command::RecordDeliveryReceipt(RecordDeliveryReceipt {
                service: s,
                conversation: sid(t.conv),
                message: o.message,
                participant: t.bind_part,
                status: DeliveryStatus::Sent,
                error_code: None,
                channel_message_sid: None,
            }),
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
        (
            Command::UpdateUser(UpdateUser {
                service: s,
                user: o.user,
                friendly_name: Some("x".into()),
                attributes: None,
                role_sid: None,
            }),
            "user",
        ),
        (
            Command::DeleteUser(DeleteUser {
                service: s,
                user: o.user,
            }),
            "user",
        ),
        (
            Command::UpdateUserConversation(UpdateUserConversation {
                service: s,
                user: o.user,
                conversation: sid(t.conv),
                notification_level: NotificationLevel::Muted,
            }),
            "user",
        ),
        // A role of another service.
        (
            Command::UpdateRole(UpdateRole {
                service: s,
                role: any_role,
                permissions: Vec::new(),
            }),
            "role",
        ),
        (
            Command::DeleteRole(DeleteRole {
                service: s,
                role: any_role,
            }),
            "role",
        ),
        (
            Command::CreateUser(CreateUser {
                service: s,
                identity: fresh.clone(),
                friendly_name: None,
                attributes: None,
                role_sid: Some(o.service_role),
            }),
            "role",
        ),
        (
            Command::UpdateUser(UpdateUser {
                service: s,
                user: t.user,
                friendly_name: None,
                attributes: None,
                role_sid: Some(o.service_role),
            }),
            "role",
        ),
        (
            Command::AddParticipant(AddParticipant {
                service: s,
                conversation: sid(t.conv),
                participant: ParticipantSpec {
                    kind: chat(&fresh),
                    attributes: None,
                    role_sid: Some(o.conv_role),
                },
            }),
            "role",
        ),
        (
            Command::UpdateParticipant(UpdateParticipant {
                service: s,
                conversation: sid(t.conv),
                participant: t.chat_part,
                attributes: None,
                role_sid: Some(o.conv_role),
                last_read_message_index: None,
                last_read_timestamp: None,
            }),
            "role",
        ),
        (
            Command::UpdateServiceConfiguration(UpdateServiceConfiguration {
                service: s,
                default_conversation_creator_role_sid: slot(0),
                default_conversation_role_sid: slot(1),
                default_chat_service_role_sid: slot(2),
            }),
            "role",
        ),
        (
            Command::CreateConversationWithParticipants(CreateConversationWithParticipants {
                service: s,
                spec: ConversationSpec::default(),
                participants: vec![ParticipantSpec {
                    kind: chat(&fresh),
                    attributes: None,
                    role_sid: Some(o.conv_role),
                }],
            }),
            "role",
        ),
        // An address configuration of another service.
        (
            Command::UpdateAddressConfiguration(UpdateAddressConfiguration {
                service: s,
                address_configuration: o.config,
                friendly_name: Some("x".into()),
                auto_creation: None,
            }),
            "address configuration",
        ),
        (
            Command::DeleteAddressConfiguration(DeleteAddressConfiguration {
                service: s,
                address_configuration: o.config,
            }),
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
                        h.post(o.svc, o.conv, "alice", &format!("activity {x}"));
                    } else {
                        // May already be there: either answer is fine.
                        let _ = h.exec(common::add_participant(
                            o.svc,
                            o.conv,
                            chat(&format!("member-{x}")),
                        ));
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
