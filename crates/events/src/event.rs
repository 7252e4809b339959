//! Events: immutable facts appended to the log.
//!
//! Every event names the resources it touches by SID, so it can be folded
//! without looking anything up. `Updated` events carry the full new values of
//! the mutable fields, so a reader of one event knows the whole resulting
//! state of those fields. The record envelope (see [`crate::record`]) adds the
//! position, time, service, command id, actor and hash chain.
//!
//! The bincode encoding of [`Event`] is the record payload, so the
//! compatibility rule of [`crate::record`] governs every change to it or to
//! a type it holds. In short: a new variant goes at the end (bincode encodes
//! the variant index, so a reorder changes what stored records mean) and
//! comes with a golden set that holds it; changing an existing variant
//! needs a new format version with its own decode path. The golden-file
//! test (`tests/golden.rs`) catches both mistakes. A kind whose fields had
//! to change is succeeded by a new variant at the end (`…V2`), the old one
//! staying readable forever; [`Event::current_shape`] turns an old kind
//! into its successor, so folds match the current kinds only.

use serde::{Deserialize, Serialize};

use crate::model::*;
use crate::sid::*;

/// Every fact the engine records. Format versions 1 and 2 encode it alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A service was created. Its SID is the record's service.
    ServiceCreated {
        /// Display name.
        friendly_name: String,
    },
    /// A service was renamed.
    ServiceUpdated {
        /// New display name.
        friendly_name: String,
    },
    /// A service was deleted.
    ServiceDeleted,
    /// A role was created.
    RoleCreated {
        /// The role.
        role_sid: RoleSid,
        /// Display name.
        friendly_name: String,
        /// Service or conversation role.
        role_type: RoleType,
        /// Permissions.
        permissions: Vec<Permission>,
    },
    /// A role's permissions were replaced.
    RoleUpdated {
        /// The role.
        role_sid: RoleSid,
        /// New permissions.
        permissions: Vec<Permission>,
    },
    /// A role was deleted.
    RoleDeleted {
        /// The role.
        role_sid: RoleSid,
    },
    /// A conversation was created.
    ConversationCreated {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// Display name.
        friendly_name: Option<String>,
        /// Unique name.
        unique_name: Option<String>,
        /// JSON attributes (`{}` when none were given).
        attributes: String,
        /// Initial state.
        state: ConversationState,
        /// Timers.
        timers: Timers,
        /// Messaging Service.
        messaging_service_sid: Option<String>,
    },
    /// A conversation's mutable fields changed (full new values).
    ConversationUpdated {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// Display name.
        friendly_name: Option<String>,
        /// Unique name.
        unique_name: Option<String>,
        /// JSON attributes.
        attributes: String,
        /// State.
        state: ConversationState,
        /// Timers.
        timers: Timers,
    },
    /// A conversation was deleted, with its participants and messages.
    ConversationRemoved {
        /// The conversation.
        conversation_sid: ConversationSid,
    },
    /// A participant joined.
    ParticipantAdded {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// The participant.
        participant_sid: ParticipantSid,
        /// Chat identity or messaging binding.
        kind: ParticipantKind,
        /// The chat user, for chat participants.
        user_sid: Option<UserSid>,
        /// JSON attributes.
        attributes: String,
        /// Conversation role.
        role_sid: Option<RoleSid>,
    },
    /// A participant's attributes or role changed (full new values).
    ParticipantUpdated {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// The participant.
        participant_sid: ParticipantSid,
        /// JSON attributes.
        attributes: String,
        /// Conversation role.
        role_sid: Option<RoleSid>,
    },
    /// A participant's read horizon moved.
    ReadHorizonUpdated {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// The participant.
        participant_sid: ParticipantSid,
        /// Last read message index (`None`: nothing read).
        last_read_message_index: Option<u64>,
        /// When it was read.
        last_read_timestamp: TimestampMicros,
    },
    /// A participant left or was removed.
    ParticipantRemoved {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// The participant.
        participant_sid: ParticipantSid,
    },
    /// A message was posted.
    MessageAdded {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// The message.
        message_sid: MessageSid,
        /// Its per-conversation index: strictly increasing, never reused.
        index: u64,
        /// Author identity or address.
        author: String,
        /// The authoring participant, if the author is one.
        participant_sid: Option<ParticipantSid>,
        /// Text body.
        body: Option<String>,
        /// Media descriptors.
        media: Vec<Media>,
        /// JSON attributes.
        attributes: String,
    },
    /// A message was edited (full new values).
    MessageUpdated {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// The message.
        message_sid: MessageSid,
        /// Its index.
        index: u64,
        /// Text body.
        body: Option<String>,
        /// JSON attributes.
        attributes: String,
    },
    /// A message was deleted.
    MessageRemoved {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// The message.
        message_sid: MessageSid,
        /// Its index (never reused).
        index: u64,
    },
    /// A user was created.
    UserCreated {
        /// The user.
        user_sid: UserSid,
        /// Unique identity.
        identity: String,
        /// Display name.
        friendly_name: Option<String>,
        /// JSON attributes.
        attributes: String,
        /// Service role.
        role_sid: Option<RoleSid>,
    },
    /// A user changed (full new values).
    UserUpdated {
        /// The user.
        user_sid: UserSid,
        /// Display name.
        friendly_name: Option<String>,
        /// JSON attributes.
        attributes: String,
        /// Service role.
        role_sid: Option<RoleSid>,
    },
    /// A user was deleted.
    UserDeleted {
        /// The user.
        user_sid: UserSid,
    },
    /// A user's notification level in a conversation changed.
    UserConversationUpdated {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// The user.
        user_sid: UserSid,
        /// The new level.
        notification_level: NotificationLevel,
    },
    /// An address configuration was created, as the first builds wrote it
    /// (their autocreation had no type); [`Event::AddressConfigurationCreatedV2`] now.
    AddressConfigurationCreated {
        /// The configuration.
        address_configuration_sid: AddressConfigurationSid,
        /// Channel type.
        address_type: AddressType,
        /// The address.
        address: String,
        /// Display name.
        friendly_name: Option<String>,
        /// Autocreation settings, in the first builds' shape.
        auto_creation: AutoCreationV1,
    },
    /// An address configuration changed (full new values), as the first
    /// builds wrote it; [`Event::AddressConfigurationUpdatedV2`] now.
    AddressConfigurationUpdated {
        /// The configuration.
        address_configuration_sid: AddressConfigurationSid,
        /// Display name.
        friendly_name: Option<String>,
        /// Autocreation settings, in the first builds' shape.
        auto_creation: AutoCreationV1,
    },
    /// An address configuration was deleted.
    AddressConfigurationDeleted {
        /// The configuration.
        address_configuration_sid: AddressConfigurationSid,
    },
    /// A channel reported a delivery status.
    DeliveryReceiptRecorded {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// The receipt.
        receipt_sid: ReceiptSid,
        /// The message.
        message_sid: MessageSid,
        /// The recipient participant.
        participant_sid: ParticipantSid,
        /// The status.
        status: DeliveryStatus,
        /// Channel error code.
        error_code: Option<u32>,
        /// The channel's message id.
        channel_message_sid: Option<String>,
    },
    /// The service's default roles changed (Twilio's service Configuration).
    ServiceConfigurationUpdated {
        /// Role given to the creator of a conversation.
        default_conversation_creator_role_sid: Option<RoleSid>,
        /// Role given to other conversation participants.
        default_conversation_role_sid: Option<RoleSid>,
        /// Service role given to new users.
        default_chat_service_role_sid: Option<RoleSid>,
    },
    /// An outbound send of a message to a non-chat participant failed; the
    /// engine retries it with backoff (the outbox lives in the log).
    DeliveryAttemptFailed {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// The message.
        message_sid: MessageSid,
        /// The recipient participant.
        participant_sid: ParticipantSid,
        /// Which attempt failed, from 1.
        attempt: u32,
        /// What the channel adapter said.
        error: String,
    },
    /// The service's post-event webhook configuration was replaced (full
    /// new value; its signing secret is in the log, see
    /// [`ServiceWebhooks`]).
    ServiceWebhooksUpdated {
        /// The new configuration.
        webhooks: ServiceWebhooks,
    },
    /// A conversation-scoped webhook was added.
    ConversationWebhookCreated {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// The webhook.
        webhook_sid: WebhookSid,
        /// Its target and configuration.
        webhook: ConversationWebhook,
    },
    /// A conversation-scoped webhook was deleted.
    ConversationWebhookRemoved {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// The webhook.
        webhook_sid: WebhookSid,
    },
    /// A conversation-scoped webhook with `Target=studio` was added: the
    /// conversation is handed to a Studio flow (removed, like the others,
    /// by [`Event::ConversationWebhookRemoved`]).
    ConversationStudioWebhookCreated {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// The webhook.
        webhook_sid: WebhookSid,
        /// Its flow and replay point.
        studio: StudioWebhook,
    },
    /// An address configuration was created.
    AddressConfigurationCreatedV2 {
        /// The configuration.
        address_configuration_sid: AddressConfigurationSid,
        /// Channel type.
        address_type: AddressType,
        /// The address.
        address: String,
        /// Display name.
        friendly_name: Option<String>,
        /// Autocreation settings.
        auto_creation: AutoCreation,
    },
    /// An address configuration changed (full new values).
    AddressConfigurationUpdatedV2 {
        /// The configuration.
        address_configuration_sid: AddressConfigurationSid,
        /// Display name.
        friendly_name: Option<String>,
        /// Autocreation settings.
        auto_creation: AutoCreation,
    },
    /// A conversation-scoped webhook's configuration was replaced (its
    /// target stays: a URL webhook or trigger stays one, a Studio webhook
    /// stays one).
    ConversationWebhookUpdated {
        /// The conversation.
        conversation_sid: ConversationSid,
        /// The webhook.
        webhook_sid: WebhookSid,
        /// Its whole new configuration.
        webhook: ConversationWebhookConfig,
    },
}

impl Event {
    /// The event in the shape this build writes: an event kind the first
    /// builds wrote and a later one replaced
    /// ([`Event::AddressConfigurationCreated`],
    /// [`Event::AddressConfigurationUpdated`]) becomes its successor with
    /// the same meaning (an [`AutoCreationV1`] is an [`AutoCreation`] of
    /// type `default`); every other event is borrowed as it is. Readers
    /// that fold events match only the current kinds after this.
    pub fn current_shape(&self) -> std::borrow::Cow<'_, Event> {
        use std::borrow::Cow;
        match self {
            Event::AddressConfigurationCreated {
                address_configuration_sid,
                address_type,
                address,
                friendly_name,
                auto_creation,
            } => Cow::Owned(Event::AddressConfigurationCreatedV2 {
                address_configuration_sid: *address_configuration_sid,
                address_type: *address_type,
                address: address.clone(),
                friendly_name: friendly_name.clone(),
                auto_creation: auto_creation.clone().into(),
            }),
            Event::AddressConfigurationUpdated {
                address_configuration_sid,
                friendly_name,
                auto_creation,
            } => Cow::Owned(Event::AddressConfigurationUpdatedV2 {
                address_configuration_sid: *address_configuration_sid,
                friendly_name: friendly_name.clone(),
                auto_creation: auto_creation.clone().into(),
            }),
            other => Cow::Borrowed(other),
        }
    }

    /// The conversation this event belongs to, if any. The record envelope
    /// carries the same value (asserted when a record is built), so readers
    /// can filter by conversation without decoding the payload.
    pub fn conversation_sid(&self) -> Option<ConversationSid> {
        use Event::*;
        match self {
            ConversationCreated {
                conversation_sid, ..
            }
            | ConversationUpdated {
                conversation_sid, ..
            }
            | ConversationRemoved { conversation_sid }
            | ParticipantAdded {
                conversation_sid, ..
            }
            | ParticipantUpdated {
                conversation_sid, ..
            }
            | ReadHorizonUpdated {
                conversation_sid, ..
            }
            | ParticipantRemoved {
                conversation_sid, ..
            }
            | MessageAdded {
                conversation_sid, ..
            }
            | MessageUpdated {
                conversation_sid, ..
            }
            | MessageRemoved {
                conversation_sid, ..
            }
            | UserConversationUpdated {
                conversation_sid, ..
            }
            | DeliveryReceiptRecorded {
                conversation_sid, ..
            }
            | DeliveryAttemptFailed {
                conversation_sid, ..
            }
            | ConversationWebhookCreated {
                conversation_sid, ..
            }
            | ConversationWebhookRemoved {
                conversation_sid, ..
            }
            | ConversationStudioWebhookCreated {
                conversation_sid, ..
            }
            | ConversationWebhookUpdated {
                conversation_sid, ..
            } => Some(*conversation_sid),
            ServiceCreated { .. }
            | ServiceUpdated { .. }
            | ServiceDeleted
            | RoleCreated { .. }
            | RoleUpdated { .. }
            | RoleDeleted { .. }
            | UserCreated { .. }
            | UserUpdated { .. }
            | UserDeleted { .. }
            | AddressConfigurationCreated { .. }
            | AddressConfigurationUpdated { .. }
            | AddressConfigurationDeleted { .. }
            | AddressConfigurationCreatedV2 { .. }
            | AddressConfigurationUpdatedV2 { .. }
            | ServiceConfigurationUpdated { .. }
            | ServiceWebhooksUpdated { .. } => None,
        }
    }

    /// The event's type name as it appears in JSON (`message_added`, …).
    pub fn type_name(&self) -> &'static str {
        use Event::*;
        match self {
            ServiceCreated { .. } => "service_created",
            ServiceUpdated { .. } => "service_updated",
            ServiceDeleted => "service_deleted",
            RoleCreated { .. } => "role_created",
            RoleUpdated { .. } => "role_updated",
            RoleDeleted { .. } => "role_deleted",
            ConversationCreated { .. } => "conversation_created",
            ConversationUpdated { .. } => "conversation_updated",
            ConversationRemoved { .. } => "conversation_removed",
            ParticipantAdded { .. } => "participant_added",
            ParticipantUpdated { .. } => "participant_updated",
            ReadHorizonUpdated { .. } => "read_horizon_updated",
            ParticipantRemoved { .. } => "participant_removed",
            MessageAdded { .. } => "message_added",
            MessageUpdated { .. } => "message_updated",
            MessageRemoved { .. } => "message_removed",
            UserCreated { .. } => "user_created",
            UserUpdated { .. } => "user_updated",
            UserDeleted { .. } => "user_deleted",
            UserConversationUpdated { .. } => "user_conversation_updated",
            AddressConfigurationCreated { .. } => "address_configuration_created",
            AddressConfigurationUpdated { .. } => "address_configuration_updated",
            AddressConfigurationDeleted { .. } => "address_configuration_deleted",
            DeliveryReceiptRecorded { .. } => "delivery_receipt_recorded",
            ServiceConfigurationUpdated { .. } => "service_configuration_updated",
            DeliveryAttemptFailed { .. } => "delivery_attempt_failed",
            ServiceWebhooksUpdated { .. } => "service_webhooks_updated",
            ConversationWebhookCreated { .. } => "conversation_webhook_created",
            ConversationWebhookRemoved { .. } => "conversation_webhook_removed",
            ConversationStudioWebhookCreated { .. } => "conversation_studio_webhook_created",
            AddressConfigurationCreatedV2 { .. } => "address_configuration_created_v2",
            AddressConfigurationUpdatedV2 { .. } => "address_configuration_updated_v2",
            ConversationWebhookUpdated { .. } => "conversation_webhook_updated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first builds' address configurations read as autocreation of
    /// type `default` with what they stored (their URL was never called,
    /// so a log keeps its behaviour), every other event as it is.
    #[test]
    fn a_first_builds_address_configuration_reads_as_type_default() {
        let sid = AddressConfigurationSid::derive(b"a");
        let v1 = AutoCreationV1 {
            enabled: true,
            conversation_service_sid: Some(ServiceSid::derive(b"s")),
            webhook_url: Some("https://example.com/old".into()),
        };
        let want = AutoCreation {
            enabled: true,
            conversation_service_sid: Some(ServiceSid::derive(b"s")),
            kind: AutoCreationType::Default,
            webhook_url: Some("https://example.com/old".into()),
            webhook_method: WebhookMethod::Post,
            webhook_filters: Vec::new(),
            studio_flow_sid: None,
            studio_retry_count: None,
        };
        let created = Event::AddressConfigurationCreated {
            address_configuration_sid: sid,
            address_type: AddressType::Sms,
            address: "+1555".into(),
            friendly_name: Some("n".into()),
            auto_creation: v1.clone(),
        };
        assert_eq!(
            created.current_shape().into_owned(),
            Event::AddressConfigurationCreatedV2 {
                address_configuration_sid: sid,
                address_type: AddressType::Sms,
                address: "+1555".into(),
                friendly_name: Some("n".into()),
                auto_creation: want.clone(),
            }
        );
        let updated = Event::AddressConfigurationUpdated {
            address_configuration_sid: sid,
            friendly_name: None,
            auto_creation: v1,
        };
        assert_eq!(
            updated.current_shape().into_owned(),
            Event::AddressConfigurationUpdatedV2 {
                address_configuration_sid: sid,
                friendly_name: None,
                auto_creation: want,
            }
        );
        let other = Event::ServiceUpdated {
            friendly_name: "x".into(),
        };
        assert!(matches!(
            other.current_shape(),
            std::borrow::Cow::Borrowed(e) if *e == other
        ));
    }
}
