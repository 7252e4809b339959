//! The persisted form of the read models: one row per resource, in one
//! table (RocksDB column family) per resource kind.
//!
//! Rows are the unit both of persistence and of the digest. Every row key
//! starts with the service SID, so one service's rows are contiguous.

use serde::{Deserialize, Serialize};

use events::*;

pub use events::ConversationWebhookConfig;

/// A read-model table. Each is one RocksDB column family named
/// [`Table::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Bookkeeping: the last applied log position and the row format
    /// ([`META_APPLIED_KEY`], [`META_FORMAT_KEY`]), written once per batch.
    Meta,
    /// Services, keyed by service.
    Services,
    /// Conversations, keyed by service ‖ conversation.
    Conversations,
    /// Participants, keyed by service ‖ conversation ‖ participant.
    Participants,
    /// Messages, keyed by service ‖ conversation ‖ index (big endian).
    Messages,
    /// Users, keyed by service ‖ user.
    Users,
    /// Non-default user-conversation settings, keyed by service ‖ user ‖ conversation.
    UserConversations,
    /// Roles, keyed by service ‖ role.
    Roles,
    /// Address configurations, keyed by service ‖ configuration.
    AddressConfigurations,
    /// Delivery receipts, keyed by service ‖ conversation ‖ message ‖ participant.
    Receipts,
    /// Failed outbound attempts, keyed by service ‖ conversation ‖ message ‖ participant.
    DeliveryAttempts,
    /// Tombstones of deleted messages, keyed like [`Table::Messages`]: an
    /// index is never reused, and the conversation's message counters are
    /// derived from the highest index in either table at load.
    DeletedMessages,
    /// The latest edit of a message ([`MessageEditRow`]), keyed like
    /// [`Table::Messages`]: a cold table, so an edit is written without
    /// reading the posted row back.
    MessageEdits,
    /// Message SID → index (8 bytes, big endian), keyed by service ‖
    /// conversation ‖ message: a cold table, for lookups by SID.
    MessageSids,
    /// Conversation-scoped webhooks ([`ConversationWebhookRow`]), keyed by
    /// service ‖ conversation ‖ webhook.
    ConversationWebhooks,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 15] = [
        Table::Meta,
        Table::Services,
        Table::Conversations,
        Table::Participants,
        Table::Messages,
        Table::Users,
        Table::UserConversations,
        Table::Roles,
        Table::AddressConfigurations,
        Table::Receipts,
        Table::DeliveryAttempts,
        Table::DeletedMessages,
        Table::MessageEdits,
        Table::MessageSids,
        Table::ConversationWebhooks,
    ];

    /// The tables whose rows stay on disk (read through [`crate::ColdRows`]
    /// when needed), never held in memory: they grow with every stored
    /// message. `apply` only writes them, never reads them back, and
    /// [`crate::ReadModels::write_rows`] does not produce them.
    pub const COLD: [Table; 3] = [Table::Messages, Table::MessageEdits, Table::MessageSids];

    /// Every table's column-family name, in [`Table::ALL`] order.
    pub const NAMES: [&'static str; 15] = [
        "rm_meta",
        "rm_services",
        "rm_conversations",
        "rm_participants",
        "rm_messages",
        "rm_users",
        "rm_user_conversations",
        "rm_roles",
        "rm_address_configurations",
        "rm_receipts",
        "rm_delivery_attempts",
        "rm_deleted_messages",
        "rm_message_edits",
        "rm_message_sids",
        "rm_conversation_webhooks",
    ];

    /// The column-family name.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Whether the table is one of [`Table::COLD`].
    pub fn is_cold(self) -> bool {
        Self::COLD.contains(&self)
    }

    /// The table with this column-family name, if any.
    pub fn from_name(name: &str) -> Option<Table> {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Self::ALL[i])
    }
}

/// Where row writes go: a RocksDB `WriteBatch` in the engine, a sorted map
/// when rebuilding off to the side.
pub trait RowSink {
    /// Sets `key` in `table` to `value`.
    fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>);
    /// Removes `key` from `table` (absent keys are fine).
    fn delete(&mut self, table: Table, key: Vec<u8>);
    /// Removes every key of `table` in `from..to` (`to` exclusive), in
    /// order with the other writes: a put of a key in the range made
    /// before is removed, one made after stays.
    fn delete_range(&mut self, table: Table, from: Vec<u8>, to: Vec<u8>);
}

/// An in-memory, sorted [`RowSink`]: the persisted form of a whole state,
/// used for rebuilds and digests.
pub type RowMap = std::collections::BTreeMap<(Table, Vec<u8>), Vec<u8>>;

impl RowSink for RowMap {
    fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.insert((table, key), value);
    }
    fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.remove(&(table, key));
    }
    fn delete_range(&mut self, table: Table, from: Vec<u8>, to: Vec<u8>) {
        let doomed: Vec<_> = self
            .range((table, from)..(table, to))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.remove(&k);
        }
    }
}

/// The exclusive end of the key range of every key starting with
/// `prefix`: the prefix with its last byte below 0xff incremented (and the
/// bytes after it dropped), or `None` if every byte is 0xff (the range
/// then runs to the end of the table).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Builds a row key from SID bytes and big-endian integers.
pub(crate) fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// The key of the Meta row holding the last applied position (8 bytes,
/// big endian).
pub const META_APPLIED_KEY: &[u8] = b"applied_position";

/// The key of the Meta row holding the row format the rows were written
/// in ([`READ_MODEL_FORMAT_VERSION`], 4 bytes, big endian).
pub const META_FORMAT_KEY: &[u8] = b"row_format";

/// The layout of the read-model rows. A store whose rows carry another
/// version (or none: stores written before the version was recorded) has
/// its rows re-derived from the log at open, the log being the source of
/// truth. Version 2: the conversation row no longer carries the
/// per-message counters (derived at load from the highest message or
/// tombstone), deleted messages leave a [`DeletedMessageRow`]. Version 3:
/// messages are cold rows (edits in [`Table::MessageEdits`], SIDs in
/// [`Table::MessageSids`]), and a tombstone carries the conversation's
/// last activity when the message was deleted. Version 4: the service row
/// carries its post-event webhook configuration ([`ServiceRow::webhooks`]),
/// and conversation-scoped webhooks are rows of
/// [`Table::ConversationWebhooks`]. Version 5: a conversation webhook row
/// holds a [`ConversationWebhookConfig`] (a URL webhook or a Studio one),
/// and the address configuration row the typed autocreation
/// ([`AutoCreation`] with `kind`, method, filters, flow). Version 6: a
/// conversation webhook row has a `date_updated`
/// ([`ConversationWebhookRow::date_updated`]).
pub const READ_MODEL_FORMAT_VERSION: u32 = 6;

/// A service (Twilio `service` plus its `configuration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRow {
    /// `IS…`.
    pub sid: ServiceSid,
    /// Display name.
    pub friendly_name: String,
    /// Creation time, µs.
    pub date_created: TimestampMicros,
    /// Last update time, µs.
    pub date_updated: TimestampMicros,
    /// Role given to a conversation's creator.
    pub default_conversation_creator_role_sid: Option<RoleSid>,
    /// Role given to other participants.
    pub default_conversation_role_sid: Option<RoleSid>,
    /// Service role given to new users.
    pub default_chat_service_role_sid: Option<RoleSid>,
    /// Its post-event webhook configuration (Twilio's Service Webhook
    /// configuration), signing secret included.
    pub webhooks: ServiceWebhooks,
}

/// A conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationRow {
    /// `IS…`.
    pub chat_service_sid: ServiceSid,
    /// `CH…`.
    pub sid: ConversationSid,
    /// Display name.
    pub friendly_name: Option<String>,
    /// Service-unique name.
    pub unique_name: Option<String>,
    /// JSON attributes.
    pub attributes: String,
    /// State.
    pub state: ConversationState,
    /// Timers.
    pub timers: Timers,
    /// Messaging Service.
    pub messaging_service_sid: Option<String>,
    /// Creation time, µs.
    pub date_created: TimestampMicros,
    /// Last update time, µs.
    pub date_updated: TimestampMicros,
}

/// The tombstone of a deleted message: its index is never given again,
/// and the conversation's last activity is the post time of the message
/// with the highest index, deleted or not. The tombstone is written
/// without reading the message back, so it carries the conversation's
/// last activity at the deletion: for the message with the highest index
/// (the only tombstone that can ever set the counters at load, since
/// later messages get higher indexes) that is its post time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedMessageRow {
    /// `IS…`.
    pub chat_service_sid: ServiceSid,
    /// `CH…`.
    pub conversation_sid: ConversationSid,
    /// The deleted message's index.
    pub index: u64,
    /// The conversation's last activity when the message was deleted, µs.
    pub last_activity: TimestampMicros,
}

/// The latest edit of a message: what [`Table::MessageEdits`] holds. A
/// message read from the store is its [`MessageRow`] as posted with this
/// applied ([`MessageEditRow::apply_to`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEditRow {
    /// Body after the edit.
    pub body: Option<String>,
    /// JSON attributes after the edit.
    pub attributes: String,
    /// Edit time, µs.
    pub date_updated: TimestampMicros,
}

impl MessageEditRow {
    /// Applies the edit to the message as posted.
    pub fn apply_to(self, m: &mut MessageRow) {
        m.body = self.body;
        m.attributes = self.attributes;
        m.date_updated = self.date_updated;
    }
}

/// A participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantRow {
    /// `IS…`.
    pub chat_service_sid: ServiceSid,
    /// `CH…`.
    pub conversation_sid: ConversationSid,
    /// `MB…`.
    pub sid: ParticipantSid,
    /// Chat identity or messaging binding.
    pub kind: ParticipantKind,
    /// The chat user.
    pub user_sid: Option<UserSid>,
    /// JSON attributes.
    pub attributes: String,
    /// Conversation role.
    pub role_sid: Option<RoleSid>,
    /// Join time, µs.
    pub date_created: TimestampMicros,
    /// Last update time, µs.
    pub date_updated: TimestampMicros,
    /// Read horizon.
    pub last_read_message_index: Option<u64>,
    /// When the horizon last moved, µs.
    pub last_read_timestamp: Option<TimestampMicros>,
}

/// A message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRow {
    /// `IS…`.
    pub chat_service_sid: ServiceSid,
    /// `CH…`.
    pub conversation_sid: ConversationSid,
    /// `IM…`.
    pub sid: MessageSid,
    /// Per-conversation index.
    pub index: u64,
    /// Author identity or address.
    pub author: String,
    /// Authoring participant.
    pub participant_sid: Option<ParticipantSid>,
    /// Body.
    pub body: Option<String>,
    /// Media.
    pub media: Vec<Media>,
    /// JSON attributes.
    pub attributes: String,
    /// Post time, µs.
    pub date_created: TimestampMicros,
    /// Last edit time, µs.
    pub date_updated: TimestampMicros,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    /// `IS…`.
    pub chat_service_sid: ServiceSid,
    /// `US…`.
    pub sid: UserSid,
    /// Service-unique identity.
    pub identity: String,
    /// Display name.
    pub friendly_name: Option<String>,
    /// JSON attributes.
    pub attributes: String,
    /// Service role.
    pub role_sid: Option<RoleSid>,
    /// Creation time, µs.
    pub date_created: TimestampMicros,
    /// Last update time, µs.
    pub date_updated: TimestampMicros,
}

/// A role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRow {
    /// `IS…`.
    pub chat_service_sid: ServiceSid,
    /// `RL…`.
    pub sid: RoleSid,
    /// Display name.
    pub friendly_name: String,
    /// Service or conversation role.
    pub role_type: RoleType,
    /// Permissions.
    pub permissions: Vec<Permission>,
    /// Creation time, µs.
    pub date_created: TimestampMicros,
    /// Last update time, µs.
    pub date_updated: TimestampMicros,
}

/// An address configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressConfigurationRow {
    /// `IS…`: the service it belongs to.
    pub chat_service_sid: ServiceSid,
    /// `IG…`.
    pub sid: AddressConfigurationSid,
    /// Channel type.
    pub address_type: AddressType,
    /// The address.
    pub address: String,
    /// Display name.
    pub friendly_name: Option<String>,
    /// Autocreation settings.
    pub auto_creation: AutoCreation,
    /// Creation time, µs.
    pub date_created: TimestampMicros,
    /// Last update time, µs.
    pub date_updated: TimestampMicros,
}

/// A conversation-scoped webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationWebhookRow {
    /// `IS…`.
    pub chat_service_sid: ServiceSid,
    /// `CH…`.
    pub conversation_sid: ConversationSid,
    /// `WH…`.
    pub sid: WebhookSid,
    /// Its target and configuration.
    pub webhook: ConversationWebhookConfig,
    /// Creation time, µs.
    pub date_created: TimestampMicros,
    /// Last update time ([`Event::ConversationWebhookUpdated`]), µs; the
    /// creation time until then.
    pub date_updated: TimestampMicros,
}

/// The latest delivery receipt of one message to one participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRow {
    /// `IS…`.
    pub chat_service_sid: ServiceSid,
    /// `CH…`.
    pub conversation_sid: ConversationSid,
    /// `DY…`: the first receipt's SID, kept across status updates.
    pub sid: ReceiptSid,
    /// `IM…`.
    pub message_sid: MessageSid,
    /// `MB…`.
    pub participant_sid: ParticipantSid,
    /// Latest status.
    pub status: DeliveryStatus,
    /// Channel error code.
    pub error_code: Option<u32>,
    /// The channel's message id.
    pub channel_message_sid: Option<String>,
    /// First report, µs.
    pub date_created: TimestampMicros,
    /// Latest report, µs.
    pub date_updated: TimestampMicros,
}

/// A user's non-default notification level in one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserConversationRow {
    /// `IS…`.
    pub chat_service_sid: ServiceSid,
    /// `US…`.
    pub user_sid: UserSid,
    /// `CH…`.
    pub conversation_sid: ConversationSid,
    /// The level.
    pub notification_level: NotificationLevel,
}

/// Failed outbound attempts of one message to one participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttemptsRow {
    /// `IS…`.
    pub chat_service_sid: ServiceSid,
    /// `CH…`.
    pub conversation_sid: ConversationSid,
    /// `IM…`.
    pub message_sid: MessageSid,
    /// `MB…`.
    pub participant_sid: ParticipantSid,
    /// Attempts that failed so far.
    pub failed_attempts: u32,
    /// The last adapter error.
    pub last_error: String,
    /// When the last attempt failed, µs.
    pub last_failed_at: TimestampMicros,
}
