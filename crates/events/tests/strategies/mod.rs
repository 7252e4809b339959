//! Proptest strategies for every type the events crate encodes, shared by
//! the integration tests (`mod strategies;`).
//!
//! Coverage is enforced twice:
//! - at compile time, [`event_variant_name`] and [`command_variant_name`]
//!   match every variant without a wildcard, so adding a variant breaks the
//!   build of the tests until someone looks here;
//! - at run time, `roundtrip.rs` samples [`arb_event`] / [`arb_command`] and
//!   compares the variant names seen with the list serde itself derives
//!   ([`serde_variants`]), so a variant without a strategy arm fails a test.
//!
//! Value strategies lean towards the edges the codec cares about: varint
//! boundaries for integers, empty / non-ASCII / control-character strings,
//! all-zero and all-one SIDs, empty and non-empty vectors.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use events::command::*;
use events::command::{
    Command, CommandEnvelope, CommandId, ConversationRef, ConversationSpec, ParticipantSpec,
};
use events::limits::IDENTITY_CHARS_MAX;
use events::model::*;
use events::record::RecordHeader;
use events::sid::*;
use events::Event;
use proptest::prelude::*;
use proptest::strategy::Union;
use serde::de::{DeserializeOwned, Deserializer, Visitor};
use serde::Serialize;

// ---------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------

/// bincode's varint switches width at 251, 2^16 and 2^32: probe both sides.
pub const U64_EDGES: &[u64] = &[
    0,
    1,
    250,
    251,
    252,
    255,
    256,
    u16::MAX as u64,
    u16::MAX as u64 + 1,
    u32::MAX as u64,
    u32::MAX as u64 + 1,
    u64::MAX - 1,
    u64::MAX,
];

/// Any u64, with extra weight on varint boundaries and small values.
pub fn arb_u64() -> impl Strategy<Value = u64> + Clone {
    prop_oneof![
        3 => any::<u64>(),
        2 => proptest::sample::select(U64_EDGES),
        2 => 0u64..1_000,
    ]
}

/// Any u32, with extra weight on varint boundaries.
pub fn arb_u32() -> impl Strategy<Value = u32> + Clone {
    prop_oneof![
        3 => any::<u32>(),
        1 => proptest::sample::select(&[0u32, 250, 251, 65_535, 65_536, u32::MAX][..]),
    ]
}

/// Strings: arbitrary unicode (control characters, astral planes, …),
/// plain identifiers, empty, JSON-looking text and the occasional long one.
pub fn arb_text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        3 => any::<String>(),
        2 => proptest::collection::vec(any::<char>(), 0..48)
            .prop_map(|chars| chars.into_iter().collect::<String>()),
        2 => "[a-zA-Z0-9 _.:+@-]{0,32}",
        1 => Just(String::new()),
        1 => Just("Café ☕ — 日本語 🎉 \u{0} \u{7f} \u{feff}".to_string()),
        1 => r#"\{"[a-z]{1,8}":[0-9]{1,6}\}"#,
        1 => "[a-z]{256,1200}",
    ]
}

/// An optional string.
pub fn arb_opt_text() -> impl Strategy<Value = Option<String>> + Clone {
    proptest::option::of(arb_text())
}

/// 16 raw bytes, including the all-zero and all-one edges.
pub fn arb_bytes16() -> impl Strategy<Value = [u8; 16]> + Clone {
    prop_oneof![
        6 => any::<[u8; 16]>(),
        1 => Just([0u8; 16]),
        1 => Just([0xffu8; 16]),
    ]
}

/// A 32-byte hash.
pub fn arb_hash() -> impl Strategy<Value = [u8; 32]> + Clone {
    prop_oneof![
        6 => any::<[u8; 32]>(),
        1 => Just(events::GENESIS_HASH),
    ]
}

macro_rules! sid_strategies {
    ($($fn_name:ident => $ty:ident),* $(,)?) => {
        $(
            #[doc = concat!("Any `", stringify!($ty), "`.")]
            pub fn $fn_name() -> impl Strategy<Value = $ty> + Clone {
                arb_bytes16().prop_map($ty)
            }
        )*
    };
}

sid_strategies! {
    arb_service_sid => ServiceSid,
    arb_conversation_sid => ConversationSid,
    arb_participant_sid => ParticipantSid,
    arb_message_sid => MessageSid,
    arb_media_sid => MediaSid,
    arb_user_sid => UserSid,
    arb_role_sid => RoleSid,
    arb_address_configuration_sid => AddressConfigurationSid,
    arb_webhook_sid => WebhookSid,
    arb_flow_sid => FlowSid,
    arb_receipt_sid => ReceiptSid,
}

/// Any command id.
pub fn arb_command_id() -> impl Strategy<Value = CommandId> + Clone {
    arb_bytes16().prop_map(CommandId)
}

// ---------------------------------------------------------------------------
// Model value types
// ---------------------------------------------------------------------------

/// Every `ConversationState`; checked against serde's list in `roundtrip.rs`.
pub const ALL_CONVERSATION_STATES: [ConversationState; 4] = [
    ConversationState::Initializing,
    ConversationState::Active,
    ConversationState::Inactive,
    ConversationState::Closed,
];

/// Every `NotificationLevel`.
pub const ALL_NOTIFICATION_LEVELS: [NotificationLevel; 2] =
    [NotificationLevel::Default, NotificationLevel::Muted];

/// Every `RoleType`.
pub const ALL_ROLE_TYPES: [RoleType; 2] = [RoleType::Service, RoleType::Conversation];

/// Every `Permission`.
pub const ALL_PERMISSIONS: [Permission; 21] = [
    Permission::CreateConversation,
    Permission::JoinConversation,
    Permission::EditAnyUserInfo,
    Permission::EditOwnUserInfo,
    Permission::AddParticipant,
    Permission::RemoveParticipant,
    Permission::SendMessage,
    Permission::SendMediaMessage,
    Permission::LeaveConversation,
    Permission::EditConversationName,
    Permission::EditConversationAttributes,
    Permission::DeleteConversation,
    Permission::EditAnyMessage,
    Permission::EditOwnMessage,
    Permission::EditAnyMessageAttributes,
    Permission::EditOwnMessageAttributes,
    Permission::DeleteAnyMessage,
    Permission::DeleteOwnMessage,
    Permission::EditAnyParticipantAttributes,
    Permission::EditOwnParticipantAttributes,
    Permission::EditNotificationLevel,
];

/// Every `AddressType`.
pub const ALL_ADDRESS_TYPES: [AddressType; 8] = [
    AddressType::Sms,
    AddressType::Whatsapp,
    AddressType::Messenger,
    AddressType::Gbm,
    AddressType::Email,
    AddressType::Rcs,
    AddressType::Apple,
    AddressType::Chat,
];

/// Every `DeliveryStatus`.
pub const ALL_DELIVERY_STATUSES: [DeliveryStatus; 5] = [
    DeliveryStatus::Sent,
    DeliveryStatus::Delivered,
    DeliveryStatus::Read,
    DeliveryStatus::Failed,
    DeliveryStatus::Undelivered,
];

/// Every `HorizonMode`.
pub const ALL_HORIZON_MODES: [HorizonMode; 2] = [HorizonMode::Set, HorizonMode::Advance];

/// Any conversation state.
pub fn arb_conversation_state() -> impl Strategy<Value = ConversationState> + Clone {
    proptest::sample::select(&ALL_CONVERSATION_STATES[..])
}

/// Any notification level.
pub fn arb_notification_level() -> impl Strategy<Value = NotificationLevel> + Clone {
    proptest::sample::select(&ALL_NOTIFICATION_LEVELS[..])
}

/// Any role type.
pub fn arb_role_type() -> impl Strategy<Value = RoleType> + Clone {
    proptest::sample::select(&ALL_ROLE_TYPES[..])
}

/// Any permission.
pub fn arb_permission() -> impl Strategy<Value = Permission> + Clone {
    proptest::sample::select(&ALL_PERMISSIONS[..])
}

/// A permission list: empty, short, or with repeats (the codec keeps order).
pub fn arb_permissions() -> impl Strategy<Value = Vec<Permission>> + Clone {
    proptest::collection::vec(arb_permission(), 0..30)
}

/// Any address type.
pub fn arb_address_type() -> impl Strategy<Value = AddressType> + Clone {
    proptest::sample::select(&ALL_ADDRESS_TYPES[..])
}

/// Any delivery status.
pub fn arb_delivery_status() -> impl Strategy<Value = DeliveryStatus> + Clone {
    proptest::sample::select(&ALL_DELIVERY_STATUSES[..])
}

/// Any horizon mode.
pub fn arb_horizon_mode() -> impl Strategy<Value = HorizonMode> + Clone {
    proptest::sample::select(&ALL_HORIZON_MODES[..])
}

/// Any timers.
pub fn arb_timers() -> impl Strategy<Value = Timers> + Clone {
    (
        proptest::option::of(arb_u64()),
        proptest::option::of(arb_u64()),
    )
        .prop_map(|(inactive_micros, closed_micros)| Timers {
            inactive_micros,
            closed_micros,
        })
}

/// Any messaging binding.
pub fn arb_messaging_binding() -> impl Strategy<Value = MessagingBinding> + Clone {
    (arb_text(), arb_text(), arb_opt_text()).prop_map(
        |(address, proxy_address, projected_address)| MessagingBinding {
            address,
            proxy_address,
            projected_address,
        },
    )
}

/// Either kind of participant.
pub fn arb_participant_kind() -> impl Strategy<Value = ParticipantKind> + Clone {
    prop_oneof![
        (arb_text(), arb_opt_text()).prop_map(|(identity, projected_address)| {
            ParticipantKind::Chat {
                identity,
                projected_address,
            }
        }),
        arb_messaging_binding().prop_map(ParticipantKind::Messaging),
    ]
}

/// Any media descriptor.
pub fn arb_media() -> impl Strategy<Value = Media> + Clone {
    (arb_media_sid(), arb_text(), arb_opt_text(), arb_u64()).prop_map(
        |(sid, content_type, filename, size)| Media {
            sid,
            content_type,
            filename,
            size,
        },
    )
}

/// A media list, up to one past the per-message limit (the codec does not
/// enforce limits; the engine does).
pub fn arb_media_list() -> impl Strategy<Value = Vec<Media>> + Clone {
    proptest::collection::vec(arb_media(), 0..=events::limits::MEDIA_PER_MESSAGE_MAX + 1)
}

/// Any autocreation settings in the first builds' shape.
pub fn arb_auto_creation_v1() -> impl Strategy<Value = AutoCreationV1> + Clone {
    (
        any::<bool>(),
        proptest::option::of(arb_service_sid()),
        arb_opt_text(),
    )
        .prop_map(
            |(enabled, conversation_service_sid, webhook_url)| AutoCreationV1 {
                enabled,
                conversation_service_sid,
                webhook_url,
            },
        )
}

/// Any autocreation settings.
pub fn arb_auto_creation() -> impl Strategy<Value = AutoCreation> + Clone {
    (
        (
            any::<bool>(),
            proptest::option::of(arb_service_sid()),
            proptest::sample::select(vec![
                AutoCreationType::Default,
                AutoCreationType::Webhook,
                AutoCreationType::Studio,
            ]),
            arb_opt_text(),
        ),
        (
            any::<bool>(),
            proptest::sample::subsequence(
                WebhookFilter::ALL.to_vec(),
                0..=WebhookFilter::ALL.len(),
            ),
            proptest::option::of(arb_flow_sid()),
            proptest::option::of(arb_u32()),
        ),
    )
        .prop_map(
            |(
                (enabled, conversation_service_sid, kind, webhook_url),
                (get, webhook_filters, studio_flow_sid, studio_retry_count),
            )| AutoCreation {
                enabled,
                conversation_service_sid,
                kind,
                webhook_url,
                webhook_method: webhook_method(get),
                webhook_filters,
                studio_flow_sid,
                studio_retry_count,
            },
        )
}

// ---------------------------------------------------------------------------
// Command side
// ---------------------------------------------------------------------------

/// Either way of addressing a conversation.
pub fn arb_conversation_ref() -> impl Strategy<Value = ConversationRef> + Clone {
    prop_oneof![
        arb_conversation_sid().prop_map(ConversationRef::Sid),
        arb_text().prop_map(ConversationRef::UniqueName),
    ]
}

/// Any conversation spec.
pub fn arb_conversation_spec() -> impl Strategy<Value = ConversationSpec> + Clone {
    (
        arb_opt_text(),
        arb_opt_text(),
        arb_opt_text(),
        proptest::option::of(arb_conversation_state()),
        arb_timers(),
        arb_opt_text(),
    )
        .prop_map(
            |(friendly_name, unique_name, attributes, state, timers, messaging_service_sid)| {
                ConversationSpec {
                    friendly_name,
                    unique_name,
                    attributes,
                    state,
                    timers,
                    messaging_service_sid,
                }
            },
        )
}

/// Any participant spec.
pub fn arb_participant_spec() -> impl Strategy<Value = ParticipantSpec> + Clone {
    (
        arb_participant_kind(),
        arb_opt_text(),
        proptest::option::of(arb_role_sid()),
    )
        .prop_map(|(kind, attributes, role_sid)| ParticipantSpec {
            kind,
            attributes,
            role_sid,
        })
}

/// The variant name of a command, as serde (and JSON) spells it. The match
/// has no wildcard: a new variant does not compile until it is listed here,
/// which is the reminder to give it a strategy arm in [`arb_command`].
pub fn command_variant_name(command: &Command) -> &'static str {
    match command {
        Command::CreateService(CreateService { .. }) => "create_service",
        Command::UpdateService(UpdateService { .. }) => "update_service",
        Command::DeleteService(DeleteService { .. }) => "delete_service",
        Command::CreateConversation(CreateConversation { .. }) => "create_conversation",
        Command::UpdateConversation(UpdateConversation { .. }) => "update_conversation",
        Command::DeleteConversation(DeleteConversation { .. }) => "delete_conversation",
        Command::CreateConversationWithParticipants(CreateConversationWithParticipants {
            ..
        }) => "create_conversation_with_participants",
        Command::AddParticipant(AddParticipant { .. }) => "add_participant",
        Command::UpdateParticipant(UpdateParticipant { .. }) => "update_participant",
        Command::RemoveParticipant(RemoveParticipant { .. }) => "remove_participant",
        Command::PostMessage(PostMessage { .. }) => "post_message",
        Command::EditMessage(EditMessage { .. }) => "edit_message",
        Command::DeleteMessage(DeleteMessage { .. }) => "delete_message",
        Command::UpdateReadHorizon(UpdateReadHorizon { .. }) => "update_read_horizon",
        Command::CreateUser(CreateUser { .. }) => "create_user",
        Command::UpdateUser(UpdateUser { .. }) => "update_user",
        Command::DeleteUser(DeleteUser { .. }) => "delete_user",
        Command::UpdateUserConversation(UpdateUserConversation { .. }) => {
            "update_user_conversation"
        }
        Command::CreateRole(CreateRole { .. }) => "create_role",
        Command::UpdateRole(UpdateRole { .. }) => "update_role",
        Command::DeleteRole(DeleteRole { .. }) => "delete_role",
        Command::CreateAddressConfiguration(CreateAddressConfiguration { .. }) => {
            "create_address_configuration"
        }
        Command::UpdateAddressConfiguration(UpdateAddressConfiguration { .. }) => {
            "update_address_configuration"
        }
        Command::DeleteAddressConfiguration(DeleteAddressConfiguration { .. }) => {
            "delete_address_configuration"
        }
        Command::RecordDeliveryReceipt(RecordDeliveryReceipt { .. }) => "record_delivery_receipt",
        Command::UpdateServiceConfiguration(UpdateServiceConfiguration { .. }) => {
            "update_service_configuration"
        }
        Command::ReceiveInbound(ReceiveInbound { .. }) => "receive_inbound",
        Command::RecordDeliveryAttemptFailed(RecordDeliveryAttemptFailed { .. }) => {
            "record_delivery_attempt_failed"
        }
        Command::UpdateServiceWebhooks(UpdateServiceWebhooks { .. }) => "update_service_webhooks",
        Command::CreateConversationWebhook(CreateConversationWebhook { .. }) => {
            "create_conversation_webhook"
        }
        Command::DeleteConversationWebhook(DeleteConversationWebhook { .. }) => {
            "delete_conversation_webhook"
        }
        Command::CreateConversationStudioWebhook(CreateConversationStudioWebhook { .. }) => {
            "create_conversation_studio_webhook"
        }
        Command::UpdateConversationWebhook(UpdateConversationWebhook { .. }) => {
            "update_conversation_webhook"
        }
    }
}

/// Any command: one arm per variant.
pub fn arb_command() -> BoxedStrategy<Command> {
    let arms: Vec<BoxedStrategy<Command>> = vec![
        arb_text()
            .prop_map(|friendly_name| Command::CreateService(CreateService { friendly_name }))
            .boxed(),
        (arb_service_sid(), arb_text())
            .prop_map(|(service, friendly_name)| {
                Command::UpdateService(UpdateService {
                    service,
                    friendly_name,
                })
            })
            .boxed(),
        arb_service_sid()
            .prop_map(|service| Command::DeleteService(DeleteService { service }))
            .boxed(),
        (arb_service_sid(), arb_conversation_spec())
            .prop_map(|(service, spec)| {
                Command::CreateConversation(CreateConversation { service, spec })
            })
            .boxed(),
        (
            arb_service_sid(),
            arb_conversation_ref(),
            arb_opt_text(),
            arb_opt_text(),
            arb_opt_text(),
            proptest::option::of(arb_conversation_state()),
            proptest::option::of(arb_timers()),
        )
            .prop_map(
                |(service, conversation, friendly_name, unique_name, attributes, state, timers)| {
                    Command::UpdateConversation(UpdateConversation {
                        service,
                        conversation,
                        friendly_name,
                        unique_name,
                        attributes,
                        state,
                        timers,
                    })
                },
            )
            .boxed(),
        (arb_service_sid(), arb_conversation_ref())
            .prop_map(|(service, conversation)| {
                Command::DeleteConversation(DeleteConversation {
                    service,
                    conversation,
                })
            })
            .boxed(),
        (
            arb_service_sid(),
            arb_conversation_spec(),
            proptest::collection::vec(
                arb_participant_spec(),
                0..=events::limits::CONVERSATION_WITH_PARTICIPANTS_MAX + 1,
            ),
        )
            .prop_map(|(service, spec, participants)| {
                Command::CreateConversationWithParticipants(CreateConversationWithParticipants {
                    service,
                    spec,
                    participants,
                })
            })
            .boxed(),
        (
            arb_service_sid(),
            arb_conversation_ref(),
            arb_participant_spec(),
        )
            .prop_map(|(service, conversation, participant)| {
                Command::AddParticipant(AddParticipant {
                    service,
                    conversation,
                    participant,
                })
            })
            .boxed(),
        (
            arb_service_sid(),
            arb_conversation_ref(),
            arb_participant_sid(),
            arb_opt_text(),
            proptest::option::of(arb_role_sid()),
            proptest::option::of(arb_u64()),
            proptest::option::of(arb_u64()),
        )
            .prop_map(
                |(
                    service,
                    conversation,
                    participant,
                    attributes,
                    role_sid,
                    last_read_message_index,
                    last_read_timestamp,
                )| {
                    Command::UpdateParticipant(UpdateParticipant {
                        service,
                        conversation,
                        participant,
                        attributes,
                        role_sid,
                        last_read_message_index,
                        last_read_timestamp,
                    })
                },
            )
            .boxed(),
        (
            arb_service_sid(),
            arb_conversation_ref(),
            arb_participant_sid(),
        )
            .prop_map(|(service, conversation, participant)| {
                Command::RemoveParticipant(RemoveParticipant {
                    service,
                    conversation,
                    participant,
                })
            })
            .boxed(),
        (
            arb_service_sid(),
            arb_conversation_ref(),
            arb_opt_text(),
            arb_opt_text(),
            arb_media_list(),
            arb_opt_text(),
        )
            .prop_map(|(service, conversation, author, body, media, attributes)| {
                Command::PostMessage(PostMessage {
                    service,
                    conversation,
                    author,
                    body,
                    media,
                    attributes,
                })
            })
            .boxed(),
        (
            arb_service_sid(),
            arb_conversation_ref(),
            arb_message_sid(),
            arb_opt_text(),
            arb_opt_text(),
        )
            .prop_map(|(service, conversation, message, body, attributes)| {
                Command::EditMessage(EditMessage {
                    service,
                    conversation,
                    message,
                    body,
                    attributes,
                })
            })
            .boxed(),
        (arb_service_sid(), arb_conversation_ref(), arb_message_sid())
            .prop_map(|(service, conversation, message)| {
                Command::DeleteMessage(DeleteMessage {
                    service,
                    conversation,
                    message,
                })
            })
            .boxed(),
        (
            arb_service_sid(),
            arb_conversation_ref(),
            arb_participant_sid(),
            proptest::option::of(arb_u64()),
            arb_horizon_mode(),
        )
            .prop_map(
                |(service, conversation, participant, last_read_message_index, mode)| {
                    Command::UpdateReadHorizon(UpdateReadHorizon {
                        service,
                        conversation,
                        participant,
                        last_read_message_index,
                        mode,
                    })
                },
            )
            .boxed(),
        (
            arb_service_sid(),
            arb_text(),
            arb_opt_text(),
            arb_opt_text(),
            proptest::option::of(arb_role_sid()),
        )
            .prop_map(|(service, identity, friendly_name, attributes, role_sid)| {
                Command::CreateUser(CreateUser {
                    service,
                    identity,
                    friendly_name,
                    attributes,
                    role_sid,
                })
            })
            .boxed(),
        (
            arb_service_sid(),
            arb_user_sid(),
            arb_opt_text(),
            arb_opt_text(),
            proptest::option::of(arb_role_sid()),
        )
            .prop_map(|(service, user, friendly_name, attributes, role_sid)| {
                Command::UpdateUser(UpdateUser {
                    service,
                    user,
                    friendly_name,
                    attributes,
                    role_sid,
                })
            })
            .boxed(),
        (arb_service_sid(), arb_user_sid())
            .prop_map(|(service, user)| Command::DeleteUser(DeleteUser { service, user }))
            .boxed(),
        (
            arb_service_sid(),
            arb_user_sid(),
            arb_conversation_ref(),
            arb_notification_level(),
        )
            .prop_map(|(service, user, conversation, notification_level)| {
                Command::UpdateUserConversation(UpdateUserConversation {
                    service,
                    user,
                    conversation,
                    notification_level,
                })
            })
            .boxed(),
        (
            arb_service_sid(),
            arb_text(),
            arb_role_type(),
            arb_permissions(),
        )
            .prop_map(|(service, friendly_name, role_type, permissions)| {
                Command::CreateRole(CreateRole {
                    service,
                    friendly_name,
                    role_type,
                    permissions,
                })
            })
            .boxed(),
        (arb_service_sid(), arb_role_sid(), arb_permissions())
            .prop_map(|(service, role, permissions)| {
                Command::UpdateRole(UpdateRole {
                    service,
                    role,
                    permissions,
                })
            })
            .boxed(),
        (arb_service_sid(), arb_role_sid())
            .prop_map(|(service, role)| Command::DeleteRole(DeleteRole { service, role }))
            .boxed(),
        (
            arb_service_sid(),
            arb_address_type(),
            arb_text(),
            arb_opt_text(),
            arb_auto_creation(),
        )
            .prop_map(
                |(service, address_type, address, friendly_name, auto_creation)| {
                    Command::CreateAddressConfiguration(CreateAddressConfiguration {
                        service,
                        address_type,
                        address,
                        friendly_name,
                        auto_creation,
                    })
                },
            )
            .boxed(),
        (
            arb_service_sid(),
            arb_address_configuration_sid(),
            arb_opt_text(),
            proptest::option::of(arb_auto_creation()),
        )
            .prop_map(
                |(service, address_configuration, friendly_name, auto_creation)| {
                    Command::UpdateAddressConfiguration(UpdateAddressConfiguration {
                        service,
                        address_configuration,
                        friendly_name,
                        auto_creation,
                    })
                },
            )
            .boxed(),
        (arb_service_sid(), arb_address_configuration_sid())
            .prop_map(|(service, address_configuration)| {
                Command::DeleteAddressConfiguration(DeleteAddressConfiguration {
                    service,
                    address_configuration,
                })
            })
            .boxed(),
        (
            arb_service_sid(),
            arb_conversation_ref(),
            arb_message_sid(),
            arb_participant_sid(),
            arb_delivery_status(),
            proptest::option::of(arb_u32()),
            arb_opt_text(),
        )
            .prop_map(
                |(
                    service,
                    conversation,
                    message,
                    participant,
                    status,
                    error_code,
                    channel_message_sid,
                )| {
                    Command::RecordDeliveryReceipt(RecordDeliveryReceipt {
                        service,
                        conversation,
                        message,
                        participant,
                        status,
                        error_code,
                        channel_message_sid,
                    })
                },
            )
            .boxed(),
        (
            arb_service_sid(),
            proptest::option::of(arb_role_sid()),
            proptest::option::of(arb_role_sid()),
            proptest::option::of(arb_role_sid()),
        )
            .prop_map(
                |(
                    service,
                    default_conversation_creator_role_sid,
                    default_conversation_role_sid,
                    default_chat_service_role_sid,
                )| {
                    Command::UpdateServiceConfiguration(UpdateServiceConfiguration {
                        service,
                        default_conversation_creator_role_sid,
                        default_conversation_role_sid,
                        default_chat_service_role_sid,
                    })
                },
            )
            .boxed(),
        (
            arb_service_sid(),
            arb_address_type(),
            arb_text(),
            arb_text(),
            arb_opt_text(),
            arb_media_list(),
        )
            .prop_map(|(service, channel, from, to, body, media)| {
                Command::ReceiveInbound(ReceiveInbound {
                    service,
                    channel,
                    from,
                    to,
                    body,
                    media,
                })
            })
            .boxed(),
        (
            arb_service_sid(),
            arb_conversation_sid(),
            arb_message_sid(),
            arb_participant_sid(),
            arb_u32(),
            arb_text(),
        )
            .prop_map(
                |(service, conversation, message, participant, attempt, error)| {
                    Command::RecordDeliveryAttemptFailed(RecordDeliveryAttemptFailed {
                        service,
                        conversation,
                        message,
                        participant,
                        attempt,
                        error,
                    })
                },
            )
            .boxed(),
        (
            arb_service_sid(),
            arb_opt_text(),
            any::<bool>(),
            proptest::collection::vec(arb_text(), 0..4),
            arb_opt_text(),
        )
            .prop_map(
                |(service, post_webhook_url, get, filters, signing_secret)| {
                    Command::UpdateServiceWebhooks(UpdateServiceWebhooks {
                        service,
                        post_webhook_url,
                        method: webhook_method(get),
                        filters,
                        signing_secret,
                    })
                },
            )
            .boxed(),
        (
            arb_service_sid(),
            arb_conversation_sid(),
            any::<bool>(),
            arb_text(),
            any::<bool>(),
            proptest::collection::vec(arb_text(), 0..4),
            proptest::collection::vec(arb_text(), 0..4),
        )
            .prop_map(
                |(service, conversation, trigger, url, get, filters, triggers)| {
                    Command::CreateConversationWebhook(CreateConversationWebhook {
                        service,
                        conversation: conversation.into(),
                        target: webhook_target(trigger),
                        url,
                        method: webhook_method(get),
                        filters,
                        triggers,
                    })
                },
            )
            .boxed(),
        (arb_service_sid(), arb_conversation_sid(), arb_webhook_sid())
            .prop_map(|(service, conversation, webhook)| {
                Command::DeleteConversationWebhook(DeleteConversationWebhook {
                    service,
                    conversation: conversation.into(),
                    webhook,
                })
            })
            .boxed(),
        (
            arb_service_sid(),
            arb_conversation_sid(),
            arb_flow_sid(),
            proptest::option::of(arb_u64()),
        )
            .prop_map(|(service, conversation, flow_sid, replay_after)| {
                Command::CreateConversationStudioWebhook(CreateConversationStudioWebhook {
                    service,
                    conversation: conversation.into(),
                    flow_sid,
                    replay_after,
                })
            })
            .boxed(),
        (
            (arb_service_sid(), arb_conversation_sid(), arb_webhook_sid()),
            proptest::option::of(arb_text()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(proptest::collection::vec(arb_text(), 0..4)),
            proptest::option::of(proptest::collection::vec(arb_text(), 0..4)),
            proptest::option::of(arb_flow_sid()),
        )
            .prop_map(
                |((service, conversation, webhook), url, get, filters, triggers, flow_sid)| {
                    Command::UpdateConversationWebhook(UpdateConversationWebhook {
                        service,
                        conversation: conversation.into(),
                        webhook,
                        url,
                        method: get.map(webhook_method),
                        filters,
                        triggers,
                        flow_sid,
                    })
                },
            )
            .boxed(),
    ];
    Union::new(arms).boxed()
}

/// `Trigger` for `true`, `Webhook` for `false`.
fn webhook_target(trigger: bool) -> WebhookTarget {
    if trigger {
        WebhookTarget::Trigger
    } else {
        WebhookTarget::Webhook
    }
}

/// `GET` for `true`, `POST` for `false`.
fn webhook_method(get: bool) -> WebhookMethod {
    if get {
        WebhookMethod::Get
    } else {
        WebhookMethod::Post
    }
}

/// Any command envelope.
pub fn arb_command_envelope() -> impl Strategy<Value = CommandEnvelope> {
    (
        arb_command_id(),
        arb_opt_text(),
        proptest::option::of(arb_u64()),
        arb_command(),
    )
        .prop_map(
            |(command_id, acting_identity, expected_version, command)| CommandEnvelope {
                command_id,
                acting_identity,
                expected_version,
                command,
            },
        )
}

// ---------------------------------------------------------------------------
// Event side
// ---------------------------------------------------------------------------

/// The variant name of an event, as serde (and JSON) spells it. No wildcard:
/// a new variant does not compile until it is listed here, which is the
/// reminder to give it a strategy arm in [`arb_event`] and a golden record.
pub fn event_variant_name(event: &Event) -> &'static str {
    match event {
        Event::ServiceCreated { .. } => "service_created",
        Event::ServiceUpdated { .. } => "service_updated",
        Event::ServiceDeleted => "service_deleted",
        Event::RoleCreated { .. } => "role_created",
        Event::RoleUpdated { .. } => "role_updated",
        Event::RoleDeleted { .. } => "role_deleted",
        Event::ConversationCreated { .. } => "conversation_created",
        Event::ConversationUpdated { .. } => "conversation_updated",
        Event::ConversationRemoved { .. } => "conversation_removed",
        Event::ParticipantAdded { .. } => "participant_added",
        Event::ParticipantUpdated { .. } => "participant_updated",
        Event::ReadHorizonUpdated { .. } => "read_horizon_updated",
        Event::ParticipantRemoved { .. } => "participant_removed",
        Event::MessageAdded { .. } => "message_added",
        Event::MessageUpdated { .. } => "message_updated",
        Event::MessageRemoved { .. } => "message_removed",
        Event::UserCreated { .. } => "user_created",
        Event::UserUpdated { .. } => "user_updated",
        Event::UserDeleted { .. } => "user_deleted",
        Event::UserConversationUpdated { .. } => "user_conversation_updated",
        Event::AddressConfigurationCreated { .. } => "address_configuration_created",
        Event::AddressConfigurationUpdated { .. } => "address_configuration_updated",
        Event::AddressConfigurationDeleted { .. } => "address_configuration_deleted",
        Event::DeliveryReceiptRecorded { .. } => "delivery_receipt_recorded",
        Event::ServiceConfigurationUpdated { .. } => "service_configuration_updated",
        Event::DeliveryAttemptFailed { .. } => "delivery_attempt_failed",
        Event::ServiceWebhooksUpdated { .. } => "service_webhooks_updated",
        Event::ConversationWebhookCreated { .. } => "conversation_webhook_created",
        Event::ConversationWebhookRemoved { .. } => "conversation_webhook_removed",
        Event::ConversationStudioWebhookCreated { .. } => "conversation_studio_webhook_created",
        Event::AddressConfigurationCreatedV2 { .. } => "address_configuration_created_v2",
        Event::AddressConfigurationUpdatedV2 { .. } => "address_configuration_updated_v2",
        Event::ConversationWebhookUpdated { .. } => "conversation_webhook_updated",
    }
}

/// Any event: one arm per variant.
pub fn arb_event() -> BoxedStrategy<Event> {
    let arms: Vec<BoxedStrategy<Event>> = vec![
        arb_text()
            .prop_map(|friendly_name| Event::ServiceCreated { friendly_name })
            .boxed(),
        arb_text()
            .prop_map(|friendly_name| Event::ServiceUpdated { friendly_name })
            .boxed(),
        Just(Event::ServiceDeleted).boxed(),
        (
            arb_role_sid(),
            arb_text(),
            arb_role_type(),
            arb_permissions(),
        )
            .prop_map(
                |(role_sid, friendly_name, role_type, permissions)| Event::RoleCreated {
                    role_sid,
                    friendly_name,
                    role_type,
                    permissions,
                },
            )
            .boxed(),
        (arb_role_sid(), arb_permissions())
            .prop_map(|(role_sid, permissions)| Event::RoleUpdated {
                role_sid,
                permissions,
            })
            .boxed(),
        arb_role_sid()
            .prop_map(|role_sid| Event::RoleDeleted { role_sid })
            .boxed(),
        (
            arb_conversation_sid(),
            arb_opt_text(),
            arb_opt_text(),
            arb_text(),
            arb_conversation_state(),
            arb_timers(),
            arb_opt_text(),
        )
            .prop_map(
                |(
                    conversation_sid,
                    friendly_name,
                    unique_name,
                    attributes,
                    state,
                    timers,
                    messaging_service_sid,
                )| Event::ConversationCreated {
                    conversation_sid,
                    friendly_name,
                    unique_name,
                    attributes,
                    state,
                    timers,
                    messaging_service_sid,
                },
            )
            .boxed(),
        (
            arb_conversation_sid(),
            arb_opt_text(),
            arb_opt_text(),
            arb_text(),
            arb_conversation_state(),
            arb_timers(),
        )
            .prop_map(
                |(conversation_sid, friendly_name, unique_name, attributes, state, timers)| {
                    Event::ConversationUpdated {
                        conversation_sid,
                        friendly_name,
                        unique_name,
                        attributes,
                        state,
                        timers,
                    }
                },
            )
            .boxed(),
        arb_conversation_sid()
            .prop_map(|conversation_sid| Event::ConversationRemoved { conversation_sid })
            .boxed(),
        (
            arb_conversation_sid(),
            arb_participant_sid(),
            arb_participant_kind(),
            proptest::option::of(arb_user_sid()),
            arb_text(),
            proptest::option::of(arb_role_sid()),
        )
            .prop_map(
                |(conversation_sid, participant_sid, kind, user_sid, attributes, role_sid)| {
                    Event::ParticipantAdded {
                        conversation_sid,
                        participant_sid,
                        kind,
                        user_sid,
                        attributes,
                        role_sid,
                    }
                },
            )
            .boxed(),
        (
            arb_conversation_sid(),
            arb_participant_sid(),
            arb_text(),
            proptest::option::of(arb_role_sid()),
        )
            .prop_map(
                |(conversation_sid, participant_sid, attributes, role_sid)| {
                    Event::ParticipantUpdated {
                        conversation_sid,
                        participant_sid,
                        attributes,
                        role_sid,
                    }
                },
            )
            .boxed(),
        (
            arb_conversation_sid(),
            arb_participant_sid(),
            proptest::option::of(arb_u64()),
            arb_u64(),
        )
            .prop_map(
                |(
                    conversation_sid,
                    participant_sid,
                    last_read_message_index,
                    last_read_timestamp,
                )| Event::ReadHorizonUpdated {
                    conversation_sid,
                    participant_sid,
                    last_read_message_index,
                    last_read_timestamp,
                },
            )
            .boxed(),
        (arb_conversation_sid(), arb_participant_sid())
            .prop_map(
                |(conversation_sid, participant_sid)| Event::ParticipantRemoved {
                    conversation_sid,
                    participant_sid,
                },
            )
            .boxed(),
        (
            arb_conversation_sid(),
            arb_message_sid(),
            arb_u64(),
            arb_text(),
            proptest::option::of(arb_participant_sid()),
            arb_opt_text(),
            arb_media_list(),
            arb_text(),
        )
            .prop_map(
                |(
                    conversation_sid,
                    message_sid,
                    index,
                    author,
                    participant_sid,
                    body,
                    media,
                    attributes,
                )| Event::MessageAdded {
                    conversation_sid,
                    message_sid,
                    index,
                    author,
                    participant_sid,
                    body,
                    media,
                    attributes,
                },
            )
            .boxed(),
        (
            arb_conversation_sid(),
            arb_message_sid(),
            arb_u64(),
            arb_opt_text(),
            arb_text(),
        )
            .prop_map(|(conversation_sid, message_sid, index, body, attributes)| {
                Event::MessageUpdated {
                    conversation_sid,
                    message_sid,
                    index,
                    body,
                    attributes,
                }
            })
            .boxed(),
        (arb_conversation_sid(), arb_message_sid(), arb_u64())
            .prop_map(
                |(conversation_sid, message_sid, index)| Event::MessageRemoved {
                    conversation_sid,
                    message_sid,
                    index,
                },
            )
            .boxed(),
        (
            arb_user_sid(),
            arb_text(),
            arb_opt_text(),
            arb_text(),
            proptest::option::of(arb_role_sid()),
        )
            .prop_map(
                |(user_sid, identity, friendly_name, attributes, role_sid)| Event::UserCreated {
                    user_sid,
                    identity,
                    friendly_name,
                    attributes,
                    role_sid,
                },
            )
            .boxed(),
        (
            arb_user_sid(),
            arb_opt_text(),
            arb_text(),
            proptest::option::of(arb_role_sid()),
        )
            .prop_map(
                |(user_sid, friendly_name, attributes, role_sid)| Event::UserUpdated {
                    user_sid,
                    friendly_name,
                    attributes,
                    role_sid,
                },
            )
            .boxed(),
        arb_user_sid()
            .prop_map(|user_sid| Event::UserDeleted { user_sid })
            .boxed(),
        (
            arb_conversation_sid(),
            arb_user_sid(),
            arb_notification_level(),
        )
            .prop_map(|(conversation_sid, user_sid, notification_level)| {
                Event::UserConversationUpdated {
                    conversation_sid,
                    user_sid,
                    notification_level,
                }
            })
            .boxed(),
        (
            arb_address_configuration_sid(),
            arb_address_type(),
            arb_text(),
            arb_opt_text(),
            arb_auto_creation_v1(),
        )
            .prop_map(
                |(
                    address_configuration_sid,
                    address_type,
                    address,
                    friendly_name,
                    auto_creation,
                )| {
                    Event::AddressConfigurationCreated {
                        address_configuration_sid,
                        address_type,
                        address,
                        friendly_name,
                        auto_creation,
                    }
                },
            )
            .boxed(),
        (
            arb_address_configuration_sid(),
            arb_opt_text(),
            arb_auto_creation_v1(),
        )
            .prop_map(
                |(address_configuration_sid, friendly_name, auto_creation)| {
                    Event::AddressConfigurationUpdated {
                        address_configuration_sid,
                        friendly_name,
                        auto_creation,
                    }
                },
            )
            .boxed(),
        arb_address_configuration_sid()
            .prop_map(
                |address_configuration_sid| Event::AddressConfigurationDeleted {
                    address_configuration_sid,
                },
            )
            .boxed(),
        (
            arb_conversation_sid(),
            arb_receipt_sid(),
            arb_message_sid(),
            arb_participant_sid(),
            arb_delivery_status(),
            proptest::option::of(arb_u32()),
            arb_opt_text(),
        )
            .prop_map(
                |(
                    conversation_sid,
                    receipt_sid,
                    message_sid,
                    participant_sid,
                    status,
                    error_code,
                    channel_message_sid,
                )| Event::DeliveryReceiptRecorded {
                    conversation_sid,
                    receipt_sid,
                    message_sid,
                    participant_sid,
                    status,
                    error_code,
                    channel_message_sid,
                },
            )
            .boxed(),
        (
            proptest::option::of(arb_role_sid()),
            proptest::option::of(arb_role_sid()),
            proptest::option::of(arb_role_sid()),
        )
            .prop_map(
                |(
                    default_conversation_creator_role_sid,
                    default_conversation_role_sid,
                    default_chat_service_role_sid,
                )| Event::ServiceConfigurationUpdated {
                    default_conversation_creator_role_sid,
                    default_conversation_role_sid,
                    default_chat_service_role_sid,
                },
            )
            .boxed(),
        (
            arb_conversation_sid(),
            arb_message_sid(),
            arb_participant_sid(),
            arb_u32(),
            arb_text(),
        )
            .prop_map(
                |(conversation_sid, message_sid, participant_sid, attempt, error)| {
                    Event::DeliveryAttemptFailed {
                        conversation_sid,
                        message_sid,
                        participant_sid,
                        attempt,
                        error,
                    }
                },
            )
            .boxed(),
        (
            arb_opt_text(),
            any::<bool>(),
            proptest::sample::subsequence(
                WebhookFilter::ALL.to_vec(),
                0..=WebhookFilter::ALL.len(),
            ),
            arb_opt_text(),
        )
            .prop_map(|(post_webhook_url, get, filters, signing_secret)| {
                Event::ServiceWebhooksUpdated {
                    webhooks: ServiceWebhooks {
                        post_webhook_url,
                        method: webhook_method(get),
                        filters,
                        signing_secret,
                    },
                }
            })
            .boxed(),
        (
            arb_conversation_sid(),
            arb_webhook_sid(),
            arb_conversation_webhook(),
        )
            .prop_map(|(conversation_sid, webhook_sid, webhook)| {
                Event::ConversationWebhookCreated {
                    conversation_sid,
                    webhook_sid,
                    webhook,
                }
            })
            .boxed(),
        (arb_conversation_sid(), arb_webhook_sid())
            .prop_map(
                |(conversation_sid, webhook_sid)| Event::ConversationWebhookRemoved {
                    conversation_sid,
                    webhook_sid,
                },
            )
            .boxed(),
        (
            arb_conversation_sid(),
            arb_webhook_sid(),
            arb_flow_sid(),
            proptest::option::of(arb_u64()),
        )
            .prop_map(|(conversation_sid, webhook_sid, flow_sid, replay_after)| {
                Event::ConversationStudioWebhookCreated {
                    conversation_sid,
                    webhook_sid,
                    studio: StudioWebhook {
                        flow_sid,
                        replay_after,
                    },
                }
            })
            .boxed(),
        (
            arb_address_configuration_sid(),
            arb_address_type(),
            arb_text(),
            arb_opt_text(),
            arb_auto_creation(),
        )
            .prop_map(
                |(
                    address_configuration_sid,
                    address_type,
                    address,
                    friendly_name,
                    auto_creation,
                )| {
                    Event::AddressConfigurationCreatedV2 {
                        address_configuration_sid,
                        address_type,
                        address,
                        friendly_name,
                        auto_creation,
                    }
                },
            )
            .boxed(),
        (
            arb_address_configuration_sid(),
            arb_opt_text(),
            arb_auto_creation(),
        )
            .prop_map(
                |(address_configuration_sid, friendly_name, auto_creation)| {
                    Event::AddressConfigurationUpdatedV2 {
                        address_configuration_sid,
                        friendly_name,
                        auto_creation,
                    }
                },
            )
            .boxed(),
        (
            arb_conversation_sid(),
            arb_webhook_sid(),
            prop_oneof![
                arb_conversation_webhook().prop_map(ConversationWebhookConfig::Url),
                (arb_flow_sid(), proptest::option::of(arb_u64())).prop_map(
                    |(flow_sid, replay_after)| ConversationWebhookConfig::Studio(StudioWebhook {
                        flow_sid,
                        replay_after,
                    })
                ),
            ],
        )
            .prop_map(|(conversation_sid, webhook_sid, webhook)| {
                Event::ConversationWebhookUpdated {
                    conversation_sid,
                    webhook_sid,
                    webhook,
                }
            })
            .boxed(),
    ];
    Union::new(arms).boxed()
}

/// Any URL webhook or trigger configuration.
fn arb_conversation_webhook() -> impl Strategy<Value = ConversationWebhook> {
    (
        any::<bool>(),
        arb_text(),
        any::<bool>(),
        proptest::sample::subsequence(WebhookFilter::ALL.to_vec(), 0..=WebhookFilter::ALL.len()),
        proptest::collection::vec(arb_text(), 0..4),
    )
        .prop_map(
            |(trigger, url, get, filters, triggers)| ConversationWebhook {
                target: webhook_target(trigger),
                url,
                method: webhook_method(get),
                filters,
                triggers,
            },
        )
}

// ---------------------------------------------------------------------------
// Record side
// ---------------------------------------------------------------------------

/// Any record header (its conversation is unrelated to any event).
pub fn arb_record_header() -> impl Strategy<Value = RecordHeader> + Clone {
    (
        arb_u64(),
        arb_u64(),
        arb_service_sid(),
        proptest::option::of(arb_conversation_sid()),
        arb_command_id(),
        arb_actor(),
    )
        .prop_map(
            |(position, recorded_at, service_sid, conversation_sid, command_id, actor)| {
                RecordHeader {
                    position,
                    recorded_at,
                    service_sid,
                    conversation_sid,
                    command_id,
                    actor,
                }
            },
        )
}

/// A record header's actor: the trusted host (`None`) or an identity of at
/// most [`IDENTITY_CHARS_MAX`] characters, with extra weight on the limit
/// itself in multi-byte characters (the longest encoding) and on lengths
/// around the varint width change at 251 bytes.
pub fn arb_actor() -> impl Strategy<Value = Option<String>> + Clone {
    prop_oneof![
        2 => Just(None),
        3 => arb_text()
            .prop_map(|t| Some(t.chars().take(IDENTITY_CHARS_MAX).collect::<String>())),
        1 => Just(Some("🐇".repeat(IDENTITY_CHARS_MAX))),
        1 => (249usize..=252).prop_map(|n| Some("a".repeat(n))),
    ]
}

/// A header in format version 1: no actor.
pub fn arb_record_header_v1() -> impl Strategy<Value = RecordHeader> + Clone {
    arb_record_header().prop_map(|header| RecordHeader {
        actor: None,
        ..header
    })
}

/// A header and an event that [`events::Record::seal`] accepts together:
/// the header's conversation is the event's.
pub fn arb_sealable() -> impl Strategy<Value = (RecordHeader, Event)> {
    (arb_record_header(), arb_event()).prop_map(|(mut header, event)| {
        header.conversation_sid = event.conversation_sid();
        (header, event)
    })
}

// ---------------------------------------------------------------------------
// Introspection
// ---------------------------------------------------------------------------

/// The variant names serde derives for enum `T`, in declaration order, as
/// its `Deserialize` impl passes them to `deserialize_enum`. Independent of
/// any hand-written list, so it catches variants the tests forgot.
pub fn serde_variants<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut Option<&'static [&'static str]>);

    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("probe: not an enum"))
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            variants: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = Some(variants);
            Err(serde::de::Error::custom("probe: variants captured"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map struct identifier ignored_any
        }
    }

    let mut captured = None;
    let _ = T::deserialize(Probe(&mut captured));
    captured.expect("the type deserializes as an enum")
}

/// The externally tagged variant name of any serde enum value, read from its
/// JSON form (`"name"` or `{"name": …}`).
pub fn json_variant_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value).expect("serializes to JSON") {
        serde_json::Value::String(name) => name,
        serde_json::Value::Object(map) if map.len() == 1 => {
            map.keys().next().expect("one key").clone()
        }
        other => panic!("not an externally tagged enum value: {other}"),
    }
}
