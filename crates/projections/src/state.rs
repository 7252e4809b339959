//! The read models in memory, and how each event changes them.
//!
//! [`ReadModels`], [`Service`] and [`Conversation`] keep their indexes
//! private: readers use the accessor methods here and the queries in
//! [`crate::query`], so an index can change shape without touching them.
//! Only [`ReadModels::apply`] and [`ReadModels::load`] change the state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use events::record::{decode, encode};
use events::*;

use crate::cold::{ColdError, ColdRows, NoColdRows};
use crate::rows::*;

/// One conversation with everything inside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// The conversation itself.
    pub(crate) row: ConversationRow,
    /// Participants by SID.
    pub(crate) participants: BTreeMap<ParticipantSid, ParticipantRow>,
    /// Chat participants by identity.
    pub(crate) by_identity: HashMap<String, ParticipantSid>,
    /// How many participants are non-chat (messaging bindings).
    pub(crate) non_chat_count: usize,
    /// Latest receipt per (message, participant).
    pub(crate) receipts: BTreeMap<(MessageSid, ParticipantSid), ReceiptRow>,
    /// Failed outbound attempts per (message, participant).
    pub(crate) delivery_attempts: BTreeMap<(MessageSid, ParticipantSid), DeliveryAttemptsRow>,
    /// Conversation-scoped webhooks by SID.
    pub(crate) webhooks: BTreeMap<WebhookSid, ConversationWebhookRow>,
    /// Deleted messages by index, with the conversation's last activity
    /// when each was deleted: each has a [`DeletedMessageRow`] tombstone.
    /// The messages themselves are cold rows ([`Table::COLD`]): indexes
    /// `0..next_message_index` not in this map are the live messages.
    pub(crate) deleted: BTreeMap<u64, TimestampMicros>,
    /// Index the next message gets: one past the highest ever used
    /// (derived at load from the highest message or tombstone).
    pub(crate) next_message_index: u64,
    /// Time of the last message (or creation), µs: orders user lists
    /// (derived at load from the message or tombstone with the highest
    /// index).
    pub(crate) last_activity: TimestampMicros,
}

impl Conversation {
    /// A conversation that has just been created with default fields and
    /// nothing in it (used to decide what happens inside a conversation
    /// created by the same command).
    pub fn empty(sid: ConversationSid, service: ServiceSid) -> Self {
        Conversation::new(ConversationRow {
            chat_service_sid: service,
            sid,
            friendly_name: None,
            unique_name: None,
            attributes: "{}".to_string(),
            state: ConversationState::Active,
            timers: Timers::default(),
            messaging_service_sid: None,
            date_created: 0,
            date_updated: 0,
        })
    }

    fn new(row: ConversationRow) -> Self {
        Conversation {
            last_activity: row.date_created,
            next_message_index: 0,
            deleted: BTreeMap::new(),
            row,
            participants: BTreeMap::new(),
            by_identity: HashMap::new(),
            non_chat_count: 0,
            receipts: BTreeMap::new(),
            delivery_attempts: BTreeMap::new(),
            webhooks: BTreeMap::new(),
        }
    }

    /// Live messages after the read horizon `horizon` (the index of the
    /// last message read): the exact unread count, deletes included. A
    /// participant without a horizon has no count (Twilio's null
    /// `unread_messages_count`), so callers map over the horizon's
    /// `Option`. From memory alone: indexes are given in order from 0, so
    /// the live messages after `h` are the indexes in
    /// `h + 1..next_message_index` without a tombstone.
    pub fn unread_after(&self, horizon: u64) -> u64 {
        let from = horizon.saturating_add(1);
        if from >= self.next_message_index {
            return 0;
        }
        let deleted = self.deleted.range(from..).count() as u64;
        self.next_message_index - from - deleted
    }

    /// The conversation row: SID, names, state, timers.
    pub fn row(&self) -> &ConversationRow {
        &self.row
    }

    /// Its conversation-scoped webhooks, by SID.
    pub fn webhooks(&self) -> &BTreeMap<WebhookSid, ConversationWebhookRow> {
        &self.webhooks
    }

    /// The index the next message gets: one past the highest ever given
    /// (deleted or not), 0 before the first message.
    pub fn next_message_index(&self) -> u64 {
        self.next_message_index
    }

    /// The highest index ever given to a message (deleted or not).
    pub fn last_message_index(&self) -> Option<u64> {
        self.next_message_index.checked_sub(1)
    }

    /// Time of the last message posted (deleted or not), or of the
    /// conversation's creation before the first, µs.
    pub fn last_activity(&self) -> TimestampMicros {
        self.last_activity
    }

    /// Sets the per-message counters from the highest index among the
    /// live messages (`live`: the cold row with the highest index, and its
    /// post time) and the tombstones, as `apply` left them.
    fn derive_counters(&mut self, live: Option<(u64, TimestampMicros)>) {
        let deleted = self.deleted.last_key_value().map(|(i, at)| (*i, *at));
        match live.max(deleted) {
            Some((index, at)) => {
                self.next_message_index = index + 1;
                self.last_activity = at;
            }
            None => {
                self.next_message_index = 0;
                self.last_activity = self.row.date_created;
            }
        }
    }

    /// The participant with this SID, if it is in the conversation.
    pub fn participant(&self, sid: &ParticipantSid) -> Option<&ParticipantRow> {
        self.participants.get(sid)
    }

    /// Every participant, ordered by SID. For a page of them, see
    /// [`ReadModels::participants`].
    pub fn participants(&self) -> impl DoubleEndedIterator<Item = &ParticipantRow> + '_ {
        self.participants.values()
    }

    /// How many participants the conversation has, chat and non-chat.
    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    /// The chat participant whose identity is `identity`, if any.
    pub fn participant_by_identity(&self, identity: &str) -> Option<&ParticipantRow> {
        self.by_identity
            .get(identity)
            .and_then(|p| self.participants.get(p))
    }

    /// The identities of the chat participants, in no particular order.
    pub fn chat_identities(&self) -> impl Iterator<Item = &str> + '_ {
        self.by_identity.keys().map(String::as_str)
    }

    /// How many participants are non-chat (messaging bindings).
    pub fn non_chat_count(&self) -> usize {
        self.non_chat_count
    }

    /// How many live messages the conversation holds (from memory: the
    /// indexes given minus the tombstones). The messages themselves are
    /// read with [`ReadModels::message_in`], [`ReadModels::message_at`]
    /// and [`ReadModels::scan_messages`].
    pub fn message_count(&self) -> usize {
        (self.next_message_index - self.deleted.len() as u64) as usize
    }

    /// Whether `index` was given to a message that is now deleted.
    pub fn is_deleted(&self, index: u64) -> bool {
        self.deleted.contains_key(&index)
    }

    /// The key prefix of this conversation's rows in the message tables:
    /// service ‖ conversation.
    fn message_prefix(&self) -> Vec<u8> {
        sid_key(&self.row.chat_service_sid, &[self.row.sid.as_bytes()])
    }

    /// The latest receipt of `message` for each participant that has one,
    /// ordered by participant SID. For a page of them, see
    /// [`ReadModels::receipts`].
    pub fn receipts(&self, message: &MessageSid) -> impl Iterator<Item = &ReceiptRow> + '_ {
        self.receipts_after(message, None)
    }

    /// [`Conversation::receipts`] after the participant `after`.
    pub(crate) fn receipts_after(
        &self,
        message: &MessageSid,
        after: Option<ParticipantSid>,
    ) -> impl Iterator<Item = &ReceiptRow> + '_ {
        let lo = after.map_or(Bound::Included((*message, ParticipantSid([0; 16]))), |p| {
            Bound::Excluded((*message, p))
        });
        let hi = Bound::Included((*message, ParticipantSid([0xff; 16])));
        self.receipts.range((lo, hi)).map(|(_, r)| r)
    }

    /// The latest receipt of `message` for `participant`, if any.
    pub fn receipt(
        &self,
        message: &MessageSid,
        participant: &ParticipantSid,
    ) -> Option<&ReceiptRow> {
        self.receipts.get(&(*message, *participant))
    }

    /// The failed outbound attempts of `message` to `participant`, if any
    /// failed.
    pub fn delivery_attempts(
        &self,
        message: &MessageSid,
        participant: &ParticipantSid,
    ) -> Option<&DeliveryAttemptsRow> {
        self.delivery_attempts.get(&(*message, *participant))
    }
}

/// Everything in one service.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// The service row.
    pub(crate) row: ServiceRow,
    /// Conversations by SID.
    pub(crate) conversations: HashMap<ConversationSid, Conversation>,
    /// Conversation `unique_name` → SID.
    pub(crate) by_unique_name: HashMap<String, ConversationSid>,
    /// Conversations ordered by creation time.
    pub(crate) by_created: BTreeSet<(TimestampMicros, ConversationSid)>,
    /// The participant-binding index: (proxy_address, address) → participant.
    pub(crate) bindings: HashMap<(String, String), (ConversationSid, ParticipantSid)>,
    /// Chat identity → its participants (Twilio ParticipantConversations).
    pub(crate) identity_participants: HashMap<String, BTreeSet<(ConversationSid, ParticipantSid)>>,
    /// Binding address → its participants (Twilio ParticipantConversations).
    pub(crate) address_participants: HashMap<String, BTreeSet<(ConversationSid, ParticipantSid)>>,
    /// Users by SID.
    pub(crate) users: BTreeMap<UserSid, UserRow>,
    /// User identity → SID.
    pub(crate) user_by_identity: HashMap<String, UserSid>,
    /// Non-default notification levels per (user, conversation).
    pub(crate) notification_levels: HashMap<(UserSid, ConversationSid), NotificationLevel>,
    /// Roles by SID.
    pub(crate) roles: BTreeMap<RoleSid, RoleRow>,
    /// Address configurations by SID.
    pub(crate) address_configurations: BTreeMap<AddressConfigurationSid, AddressConfigurationRow>,
    /// Address → configuration SID.
    pub(crate) address_configuration_by_address: HashMap<String, AddressConfigurationSid>,
}

impl Service {
    fn new(row: ServiceRow) -> Self {
        Service {
            row,
            conversations: HashMap::new(),
            by_unique_name: HashMap::new(),
            by_created: BTreeSet::new(),
            bindings: HashMap::new(),
            identity_participants: HashMap::new(),
            address_participants: HashMap::new(),
            users: BTreeMap::new(),
            user_by_identity: HashMap::new(),
            notification_levels: HashMap::new(),
            roles: BTreeMap::new(),
            address_configurations: BTreeMap::new(),
            address_configuration_by_address: HashMap::new(),
        }
    }

    /// Resolves a conversation reference within this service.
    pub fn resolve(&self, r: &ConversationRef) -> Option<&Conversation> {
        let sid = match r {
            ConversationRef::Sid(sid) => *sid,
            ConversationRef::UniqueName(name) => *self.by_unique_name.get(name)?,
        };
        self.conversations.get(&sid)
    }

    /// The service row: SID, name, default roles, webhooks.
    pub fn row(&self) -> &ServiceRow {
        &self.row
    }

    /// Its post-event webhook configuration (the default, no URL and no
    /// filters, until one is set).
    pub fn webhooks(&self) -> &ServiceWebhooks {
        &self.row.webhooks
    }

    /// The conversation with this SID, if it is in this service.
    pub fn conversation_by_sid(&self, sid: &ConversationSid) -> Option<&Conversation> {
        self.conversations.get(sid)
    }

    /// The SID of the conversation whose `unique_name` is `name`, if any.
    pub fn conversation_sid_by_unique_name(&self, name: &str) -> Option<ConversationSid> {
        self.by_unique_name.get(name).copied()
    }

    /// Every conversation, in no particular order. For a page in creation
    /// order, see [`ReadModels::list_conversations`].
    pub fn conversations(&self) -> impl Iterator<Item = &Conversation> + '_ {
        self.conversations.values()
    }

    /// The binding index as stored: the last participant indexed for
    /// (`proxy_address`, `address`), whose conversation may since have
    /// closed. [`ReadModels::participant_by_binding`] is the routing
    /// answer, which skips a closed holder.
    pub fn binding_holder(
        &self,
        proxy_address: &str,
        address: &str,
    ) -> Option<(ConversationSid, ParticipantSid)> {
        self.bindings
            .get(&(proxy_address.to_string(), address.to_string()))
            .copied()
    }

    /// The (conversation, participant) pairs of the chat identity
    /// `identity`, ordered by conversation SID then participant SID.
    pub fn identity_participants(
        &self,
        identity: &str,
    ) -> impl Iterator<Item = (ConversationSid, ParticipantSid)> + '_ {
        self.identity_participants
            .get(identity)
            .into_iter()
            .flatten()
            .copied()
    }

    /// The (conversation, participant) pairs bound to `address`, ordered
    /// by conversation SID then participant SID.
    pub fn address_participants(
        &self,
        address: &str,
    ) -> impl Iterator<Item = (ConversationSid, ParticipantSid)> + '_ {
        self.address_participants
            .get(address)
            .into_iter()
            .flatten()
            .copied()
    }

    /// The user with this SID, if it exists.
    pub fn user(&self, sid: &UserSid) -> Option<&UserRow> {
        self.users.get(sid)
    }

    /// The user whose identity is `identity`, if one exists.
    pub fn user_by_identity(&self, identity: &str) -> Option<&UserRow> {
        self.user_by_identity
            .get(identity)
            .and_then(|u| self.users.get(u))
    }

    /// Every user, ordered by SID.
    pub fn users(&self) -> impl DoubleEndedIterator<Item = &UserRow> + '_ {
        self.users.values()
    }

    /// The notification level of `user` in `conversation`
    /// ([`NotificationLevel::Default`] unless set).
    pub fn notification_level(
        &self,
        user: &UserSid,
        conversation: &ConversationSid,
    ) -> NotificationLevel {
        self.notification_levels
            .get(&(*user, *conversation))
            .copied()
            .unwrap_or_default()
    }

    /// The role with this SID, if it exists.
    pub fn role(&self, sid: &RoleSid) -> Option<&RoleRow> {
        self.roles.get(sid)
    }

    /// Every role, ordered by SID.
    pub fn roles(&self) -> impl DoubleEndedIterator<Item = &RoleRow> + '_ {
        self.roles.values()
    }

    /// The address configuration with this SID, if it exists.
    pub fn address_configuration(
        &self,
        sid: &AddressConfigurationSid,
    ) -> Option<&AddressConfigurationRow> {
        self.address_configurations.get(sid)
    }

    /// The address configuration of `address`, if one exists.
    pub fn address_configuration_by_address(
        &self,
        address: &str,
    ) -> Option<&AddressConfigurationRow> {
        self.address_configuration_by_address
            .get(address)
            .and_then(|sid| self.address_configurations.get(sid))
    }

    /// Every address configuration, ordered by SID.
    pub fn address_configurations(
        &self,
    ) -> impl DoubleEndedIterator<Item = &AddressConfigurationRow> + '_ {
        self.address_configurations.values()
    }

    fn index_participant(&mut self, p: &ParticipantRow) {
        let entry = (p.conversation_sid, p.sid);
        match &p.kind {
            ParticipantKind::Chat { identity, .. } => {
                self.identity_participants
                    .entry(identity.clone())
                    .or_default()
                    .insert(entry);
            }
            ParticipantKind::Messaging(b) => {
                // A binding belongs to at most one open conversation; a
                // closed one may still hold it. Whatever the order rows
                // are loaded in, the open holder wins.
                let key = (b.proxy_address.clone(), b.address.clone());
                let held_open = self
                    .bindings
                    .get(&key)
                    .is_some_and(|(c, _)| *c != p.conversation_sid && self.is_open(c));
                if !held_open || self.is_open(&p.conversation_sid) {
                    self.bindings.insert(key, entry);
                }
                self.address_participants
                    .entry(b.address.clone())
                    .or_default()
                    .insert(entry);
            }
        }
    }

    /// Adds a participant to its conversation and to the service's
    /// indexes. Returns false (and changes nothing) if the conversation
    /// does not exist.
    fn insert_participant(&mut self, row: ParticipantRow) -> bool {
        let Some(conv) = self.conversations.get_mut(&row.conversation_sid) else {
            return false;
        };
        match &row.kind {
            ParticipantKind::Chat { identity, .. } => {
                conv.by_identity.insert(identity.clone(), row.sid);
            }
            ParticipantKind::Messaging(_) => conv.non_chat_count += 1,
        }
        conv.participants.insert(row.sid, row.clone());
        self.index_participant(&row);
        true
    }

    /// The conversation exists and is not closed.
    fn is_open(&self, c: &ConversationSid) -> bool {
        self.conversations
            .get(c)
            .is_some_and(|c| c.row.state != ConversationState::Closed)
    }

    fn unindex_participant(&mut self, p: &ParticipantRow) {
        let entry = (p.conversation_sid, p.sid);
        let (map, name) = match &p.kind {
            ParticipantKind::Chat { identity, .. } => (&mut self.identity_participants, identity),
            ParticipantKind::Messaging(b) => {
                let k = (b.proxy_address.clone(), b.address.clone());
                if self.bindings.get(&k) == Some(&entry) {
                    self.bindings.remove(&k);
                }
                (&mut self.address_participants, &b.address)
            }
        };
        if let Some(set) = map.get_mut(name) {
            set.remove(&entry);
            if set.is_empty() {
                map.remove(name);
            }
        }
    }
}

/// All read models of all services, folded from the log.
///
/// Invariant: after `apply` of the record at position `p` and
/// [`ReadModels::finish_batch`], the rows emitted to the sink since the
/// start, outside the cold tables, equal [`ReadModels::write_rows`] of
/// this state (the digest test checks it), and `applied_position ==
/// Some(p)`. Per event only the rows the event changes are written: a
/// posted message writes its own row and its SID's and nothing else; the
/// conversation's message counters are not persisted but derived at
/// [`ReadModels::load`] from the highest message or tombstone.
///
/// What is resident: everything but the cold tables ([`Table::COLD`]:
/// messages, their edits and SIDs), which `apply` writes and never reads
/// back; reads of them go to the [`ColdRows`] source set with
/// [`ReadModels::set_cold`] (none by default), plus the messages posted
/// since the last [`ReadModels::finish_batch`], kept in memory so that
/// commands decided later in the same write batch see them.
///
/// Equality compares the resident state (services and applied position),
/// not the cold source: the rows, cold ones included, are compared by
/// digest ([`crate::digest_rows`]).
#[derive(Debug, Clone)]
pub struct ReadModels {
    /// Services by SID.
    pub(crate) services: BTreeMap<ServiceSid, Service>,
    /// The last log position folded in.
    pub(crate) applied_position: Option<u64>,
    /// Where the cold rows are read from.
    pub(crate) cold: Arc<dyn ColdRows>,
    /// Messages posted since the last `finish_batch` (their rows may not
    /// be in the cold source yet), by SID, with later edits in the same
    /// batch applied and removals dropped.
    pub(crate) staged: HashMap<MessageSid, MessageRow>,
    /// Edits since the last `finish_batch` of messages posted before it,
    /// by (conversation, index): their rows may not be in the cold source
    /// yet either.
    pub(crate) staged_edits: HashMap<(ConversationSid, u64), MessageEditRow>,
}

impl Default for ReadModels {
    fn default() -> Self {
        ReadModels {
            services: BTreeMap::new(),
            applied_position: None,
            cold: Arc::new(NoColdRows),
            staged: HashMap::new(),
            staged_edits: HashMap::new(),
        }
    }
}

impl PartialEq for ReadModels {
    fn eq(&self, other: &Self) -> bool {
        self.services == other.services && self.applied_position == other.applied_position
    }
}

/// Persisted read models could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A row could not be decoded.
    #[error("read-model row in {table:?} could not be decoded: {source}")]
    Decode {
        /// The table.
        table: Table,
        /// The codec error.
        source: CodecError,
    },
    /// A cold row needed to derive a conversation's counters could not be
    /// read or decoded.
    #[error(transparent)]
    Cold(#[from] ColdError),
}

/// Decodes a cold row of `table`, as a [`ColdError`] if it does not decode.
fn decode_cold<T: serde::de::DeserializeOwned>(table: Table, bytes: &[u8]) -> Result<T, ColdError> {
    decode(bytes).map_err(|e| ColdError {
        table,
        source: Box::new(e),
    })
}

fn sid_key(service: &ServiceSid, rest: &[&[u8]]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = vec![service.as_bytes()];
    parts.extend_from_slice(rest);
    key(&parts)
}

/// Adds a conversation-scoped webhook's row (nothing for a conversation
/// that does not exist).
fn add_conversation_webhook(
    svc: &mut Service,
    sink: &mut dyn RowSink,
    at: TimestampMicros,
    (conversation_sid, webhook_sid): (ConversationSid, WebhookSid),
    webhook: ConversationWebhookConfig,
) {
    let svc_sid = svc.row.sid;
    let Some(conv) = svc.conversations.get_mut(&conversation_sid) else {
        return;
    };
    let row = ConversationWebhookRow {
        chat_service_sid: svc_sid,
        conversation_sid,
        sid: webhook_sid,
        webhook,
        date_created: at,
        date_updated: at,
    };
    put_row(
        sink,
        Table::ConversationWebhooks,
        webhook_key(&svc_sid, &conversation_sid, &webhook_sid),
        &row,
    );
    conv.webhooks.insert(webhook_sid, row);
}

fn put_row<T: serde::Serialize>(sink: &mut dyn RowSink, table: Table, k: Vec<u8>, row: &T) {
    // Rows are built from events that were themselves encoded within
    // RECORD_BYTES_MAX, plus fixed-size fields; failure is a bug.
    let bytes = encode(row).expect("read-model rows always encode");
    sink.put(table, k, bytes);
}

fn conversation_key(c: &ConversationRow) -> Vec<u8> {
    sid_key(&c.chat_service_sid, &[c.sid.as_bytes()])
}
fn participant_key(p: &ParticipantRow) -> Vec<u8> {
    sid_key(
        &p.chat_service_sid,
        &[p.conversation_sid.as_bytes(), p.sid.as_bytes()],
    )
}
fn message_key(m: &MessageRow) -> Vec<u8> {
    sid_key(
        &m.chat_service_sid,
        &[m.conversation_sid.as_bytes(), &m.index.to_be_bytes()],
    )
}
fn message_sid_key(service: &ServiceSid, conv: &ConversationSid, message: &MessageSid) -> Vec<u8> {
    sid_key(service, &[conv.as_bytes(), message.as_bytes()])
}
/// Deletes every row of the cold tables under `prefix` (a service, or a
/// service ‖ conversation): they are not in memory to be listed.
fn delete_cold_rows(prefix: &[u8], sink: &mut dyn RowSink) {
    for table in Table::COLD {
        match prefix_end(prefix) {
            Some(end) => sink.delete_range(table, prefix.to_vec(), end),
            // An all-0xff SID: no key of these tables is longer than a
            // service, a conversation and a message SID past it.
            None => sink.delete_range(
                table,
                prefix.to_vec(),
                [prefix, &[0xff_u8; 49][..]].concat(),
            ),
        }
    }
}
fn pair_key(
    service: &ServiceSid,
    conv: &ConversationSid,
    message: &MessageSid,
    participant: &ParticipantSid,
) -> Vec<u8> {
    sid_key(
        service,
        &[conv.as_bytes(), message.as_bytes(), participant.as_bytes()],
    )
}

impl ReadModels {
    /// An empty state (no service, nothing applied).
    pub fn new() -> Self {
        Self::default()
    }

    /// The service, if it exists.
    pub fn service(&self, sid: &ServiceSid) -> Option<&Service> {
        self.services.get(sid)
    }

    /// Every service, ordered by SID. For a page of them, see
    /// [`ReadModels::list_services`].
    pub fn services(&self) -> impl DoubleEndedIterator<Item = &Service> + '_ {
        self.services.values()
    }

    /// The position of the last record folded in; `None` before the first.
    pub fn applied_position(&self) -> Option<u64> {
        self.applied_position
    }

    /// Sets where the cold rows ([`Table::COLD`]) are read from: the store
    /// `apply`'s rows were written to. The engine points it at its RocksDB;
    /// a fold off to the side at the [`RowMap`] it wrote.
    pub fn set_cold(&mut self, cold: Arc<dyn ColdRows>) {
        self.cold = cold;
    }

    /// The message with SID `sid` in `conv`, if it is live.
    ///
    /// Errors: the cold source could not be read, or a row does not
    /// decode ([`ColdError`]).
    pub fn message_in(
        &self,
        conv: &Conversation,
        sid: &MessageSid,
    ) -> Result<Option<MessageRow>, ColdError> {
        if let Some(m) = self.staged.get(sid) {
            let here = m.chat_service_sid == conv.row.chat_service_sid
                && m.conversation_sid == conv.row.sid;
            return Ok(here.then(|| m.clone()));
        }
        let mut key = conv.message_prefix();
        key.extend_from_slice(sid.as_bytes());
        let Some(index) = self.cold.get(Table::MessageSids, &key)? else {
            return Ok(None);
        };
        let index: [u8; 8] = index.as_slice().try_into().map_err(|_| ColdError {
            table: Table::MessageSids,
            source: "a message index is not 8 bytes".into(),
        })?;
        self.message_at(conv, u64::from_be_bytes(index))
    }

    /// The live message at `index` in `conv`, if any (a deleted message's
    /// index has none).
    ///
    /// Errors: as [`ReadModels::message_in`].
    pub fn message_at(
        &self,
        conv: &Conversation,
        index: u64,
    ) -> Result<Option<MessageRow>, ColdError> {
        if index >= conv.next_message_index || conv.deleted.contains_key(&index) {
            return Ok(None);
        }
        let here = |m: &&MessageRow| {
            m.index == index
                && m.chat_service_sid == conv.row.chat_service_sid
                && m.conversation_sid == conv.row.sid
        };
        if let Some(m) = self.staged.values().find(here) {
            return Ok(Some(m.clone()));
        }
        let mut key = conv.message_prefix();
        key.extend_from_slice(&index.to_be_bytes());
        let Some(row) = self.cold.get(Table::Messages, &key)? else {
            return Ok(None);
        };
        let mut m: MessageRow = decode_cold(Table::Messages, &row)?;
        if let Some(edit) = self.staged_edits.get(&(conv.row.sid, index)) {
            edit.clone().apply_to(&mut m);
        } else if let Some(edit) = self.cold.get(Table::MessageEdits, &key)? {
            decode_cold::<MessageEditRow>(Table::MessageEdits, &edit)?.apply_to(&mut m);
        }
        Ok(Some(m))
    }

    /// Up to `limit` live messages of `conv` whose indexes lie in
    /// `indexes`, ascending by index (descending when `reverse`), each with
    /// its latest edit applied. Reads the cold source (one range scan of
    /// the messages and one of their edits per call), plus the messages
    /// posted in the write batch under way.
    ///
    /// Errors: as [`ReadModels::message_in`].
    pub fn scan_messages(
        &self,
        conv: &Conversation,
        indexes: impl std::ops::RangeBounds<u64>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<MessageRow>, ColdError> {
        let lo = match indexes.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => match i.checked_add(1) {
                Some(i) => i,
                None => return Ok(Vec::new()),
            },
            Bound::Unbounded => 0,
        };
        // Exclusive; no message has an index at or past the next one.
        let hi = match indexes.end_bound() {
            Bound::Included(i) => i.saturating_add(1),
            Bound::Excluded(i) => *i,
            Bound::Unbounded => u64::MAX,
        }
        .min(conv.next_message_index);
        if lo >= hi || limit == 0 {
            return Ok(Vec::new());
        }
        let prefix = conv.message_prefix();
        let index_key = |i: u64| {
            let mut k = prefix.clone();
            k.extend_from_slice(&i.to_be_bytes());
            k
        };
        // Rows deleted earlier in a batch under way are still stored:
        // skip them, reading on until `limit` live ones are found.
        let mut rows: BTreeMap<u64, MessageRow> = BTreeMap::new();
        let (mut from_cur, mut to_cur) = (index_key(lo), index_key(hi));
        loop {
            let chunk =
                self.cold
                    .scan(Table::Messages, &from_cur, Some(&to_cur), reverse, limit)?;
            let full = chunk.len() == limit;
            let Some((last, _)) = chunk.last() else { break };
            let last = last.clone();
            for (_, v) in chunk {
                let m: MessageRow = decode_cold(Table::Messages, &v)?;
                if !conv.deleted.contains_key(&m.index) {
                    rows.insert(m.index, m);
                }
            }
            if !full || rows.len() >= limit {
                break;
            }
            if reverse {
                to_cur = last;
            } else {
                from_cur = last;
                from_cur.push(0);
            }
        }
        for m in self.staged.values() {
            let here = m.chat_service_sid == conv.row.chat_service_sid
                && m.conversation_sid == conv.row.sid;
            if here && (lo..hi).contains(&m.index) {
                rows.insert(m.index, m.clone());
            }
        }
        let mut out: Vec<MessageRow> = if reverse {
            rows.into_values().rev().take(limit).collect()
        } else {
            rows.into_values().take(limit).collect()
        };
        if let (Some(first), Some(last)) = (out.first(), out.last()) {
            let (a, b) = (first.index.min(last.index), first.index.max(last.index));
            let (from, to) = (index_key(a), index_key(b.saturating_add(1)));
            // At most one edit row per index in the range.
            let most = usize::try_from(b - a + 1).unwrap_or(usize::MAX);
            let edits = self
                .cold
                .scan(Table::MessageEdits, &from, Some(&to), false, most)?;
            let mut edits: BTreeMap<Vec<u8>, Vec<u8>> = edits.into_iter().collect();
            for m in &mut out {
                if self.staged.contains_key(&m.sid) {
                    continue; // staged rows carry their edits already
                }
                if let Some(e) = self.staged_edits.get(&(conv.row.sid, m.index)) {
                    e.clone().apply_to(m);
                } else if let Some(e) = edits.remove(&index_key(m.index)) {
                    decode_cold::<MessageEditRow>(Table::MessageEdits, &e)?.apply_to(m);
                }
            }
        }
        Ok(out)
    }

    /// Folds one record's event into the state and writes the changed rows
    /// to `sink`. The bookkeeping rows (applied position, row format) are
    /// not written per event: call [`ReadModels::finish_batch`] once after
    /// the last `apply` of a write batch, into the same batch.
    ///
    /// Events are facts the engine decided against this state, so `apply`
    /// never fails; an event naming a resource that does not exist (only
    /// possible in a hand-made log) changes nothing but the applied
    /// position. Panics if `header.position` does not follow the last
    /// applied position: folding out of order would silently corrupt every
    /// read model.
    pub fn apply(&mut self, header: &RecordHeader, event: &Event, sink: &mut dyn RowSink) {
        let expected = self.applied_position.map_or(0, |p| p + 1);
        assert_eq!(
            header.position, expected,
            "read models fold the log in order, without gaps"
        );
        self.apply_event(header, event, sink);
        self.applied_position = Some(header.position);
    }

    /// Writes the bookkeeping rows to `sink`: the last applied position
    /// and the row format ([`READ_MODEL_FORMAT_VERSION`]); nothing before
    /// the first `apply`. Call once per write batch, after its last
    /// `apply`, so the rows written since the start equal
    /// [`ReadModels::write_rows`] of this state.
    ///
    /// It also drops the messages staged in memory for the batch: once the
    /// batch is written, the cold source serves them. The caller must not
    /// read the state between this and the batch's write (the engine holds
    /// the write lock until the batch is durable).
    pub fn finish_batch(&mut self, sink: &mut dyn RowSink) {
        self.staged.clear();
        self.staged_edits.clear();
        self.write_meta_rows(sink);
    }

    /// The bookkeeping rows of [`ReadModels::finish_batch`].
    fn write_meta_rows(&self, sink: &mut dyn RowSink) {
        if let Some(p) = self.applied_position {
            sink.put(
                Table::Meta,
                META_APPLIED_KEY.to_vec(),
                p.to_be_bytes().to_vec(),
            );
            sink.put(
                Table::Meta,
                META_FORMAT_KEY.to_vec(),
                READ_MODEL_FORMAT_VERSION.to_be_bytes().to_vec(),
            );
        }
    }

    fn apply_event(&mut self, h: &RecordHeader, event: &Event, sink: &mut dyn RowSink) {
        let at = h.recorded_at;
        let svc_sid = h.service_sid;
        if let Event::ServiceCreated { friendly_name } = event {
            let row = ServiceRow {
                sid: svc_sid,
                friendly_name: friendly_name.clone(),
                date_created: at,
                date_updated: at,
                default_conversation_creator_role_sid: None,
                default_conversation_role_sid: None,
                default_chat_service_role_sid: None,
                webhooks: ServiceWebhooks::default(),
            };
            put_row(sink, Table::Services, sid_key(&svc_sid, &[]), &row);
            self.services.insert(svc_sid, Service::new(row));
            return;
        }
        if let Event::ServiceDeleted = event {
            if let Some(svc) = self.services.remove(&svc_sid) {
                let mut rows = RowMap::new();
                write_service_rows(&svc, &mut rows);
                for (table, k) in rows.into_keys() {
                    sink.delete(table, k);
                }
                delete_cold_rows(&sid_key(&svc_sid, &[]), sink);
                self.staged.retain(|_, m| m.chat_service_sid != svc_sid);
                self.staged_edits
                    .retain(|(c, _), _| !svc.conversations.contains_key(c));
            }
            return;
        }
        let Some(svc) = self.services.get_mut(&svc_sid) else {
            return;
        };
        let current = event.current_shape();
        match current.as_ref() {
            Event::ServiceCreated { .. } | Event::ServiceDeleted => unreachable!("handled above"),
            Event::AddressConfigurationCreated { .. }
            | Event::AddressConfigurationUpdated { .. } => {
                unreachable!("current_shape makes them their V2 successors")
            }
            Event::ServiceUpdated { friendly_name } => {
                svc.row.friendly_name = friendly_name.clone();
                svc.row.date_updated = at;
                put_row(sink, Table::Services, sid_key(&svc_sid, &[]), &svc.row);
            }
            Event::ServiceConfigurationUpdated {
                default_conversation_creator_role_sid,
                default_conversation_role_sid,
                default_chat_service_role_sid,
            } => {
                svc.row.default_conversation_creator_role_sid =
                    *default_conversation_creator_role_sid;
                svc.row.default_conversation_role_sid = *default_conversation_role_sid;
                svc.row.default_chat_service_role_sid = *default_chat_service_role_sid;
                svc.row.date_updated = at;
                put_row(sink, Table::Services, sid_key(&svc_sid, &[]), &svc.row);
            }
            Event::ServiceWebhooksUpdated { webhooks } => {
                svc.row.webhooks = webhooks.clone();
                svc.row.date_updated = at;
                put_row(sink, Table::Services, sid_key(&svc_sid, &[]), &svc.row);
            }
            Event::RoleCreated {
                role_sid,
                friendly_name,
                role_type,
                permissions,
            } => {
                let row = RoleRow {
                    chat_service_sid: svc_sid,
                    sid: *role_sid,
                    friendly_name: friendly_name.clone(),
                    role_type: *role_type,
                    permissions: permissions.clone(),
                    date_created: at,
                    date_updated: at,
                };
                put_row(
                    sink,
                    Table::Roles,
                    sid_key(&svc_sid, &[role_sid.as_bytes()]),
                    &row,
                );
                svc.roles.insert(*role_sid, row);
            }
            Event::RoleUpdated {
                role_sid,
                permissions,
            } => {
                if let Some(row) = svc.roles.get_mut(role_sid) {
                    row.permissions = permissions.clone();
                    row.date_updated = at;
                    put_row(
                        sink,
                        Table::Roles,
                        sid_key(&svc_sid, &[role_sid.as_bytes()]),
                        row,
                    );
                }
            }
            Event::RoleDeleted { role_sid } => {
                svc.roles.remove(role_sid);
                sink.delete(Table::Roles, sid_key(&svc_sid, &[role_sid.as_bytes()]));
            }
            Event::ConversationCreated {
                conversation_sid,
                friendly_name,
                unique_name,
                attributes,
                state,
                timers,
                messaging_service_sid,
            } => {
                let row = ConversationRow {
                    chat_service_sid: svc_sid,
                    sid: *conversation_sid,
                    friendly_name: friendly_name.clone(),
                    unique_name: unique_name.clone(),
                    attributes: attributes.clone(),
                    state: *state,
                    timers: *timers,
                    messaging_service_sid: messaging_service_sid.clone(),
                    date_created: at,
                    date_updated: at,
                };
                put_row(sink, Table::Conversations, conversation_key(&row), &row);
                if let Some(u) = unique_name {
                    svc.by_unique_name.insert(u.clone(), *conversation_sid);
                }
                svc.by_created.insert((at, *conversation_sid));
                svc.conversations
                    .insert(*conversation_sid, Conversation::new(row));
            }
            Event::ConversationUpdated {
                conversation_sid,
                friendly_name,
                unique_name,
                attributes,
                state,
                timers,
            } => {
                let Some(conv) = svc.conversations.get_mut(conversation_sid) else {
                    return;
                };
                if conv.row.unique_name != *unique_name {
                    if let Some(old) = &conv.row.unique_name {
                        svc.by_unique_name.remove(old);
                    }
                    if let Some(new) = unique_name {
                        svc.by_unique_name.insert(new.clone(), *conversation_sid);
                    }
                }
                let row = &mut conv.row;
                row.friendly_name = friendly_name.clone();
                row.unique_name = unique_name.clone();
                row.attributes = attributes.clone();
                row.state = *state;
                row.timers = *timers;
                row.date_updated = at;
                put_row(sink, Table::Conversations, conversation_key(row), row);
            }
            Event::ConversationRemoved { conversation_sid } => {
                let Some(conv) = svc.conversations.remove(conversation_sid) else {
                    return;
                };
                if let Some(u) = &conv.row.unique_name {
                    svc.by_unique_name.remove(u);
                }
                svc.by_created
                    .remove(&(conv.row.date_created, *conversation_sid));
                for p in conv.participants.values() {
                    svc.unindex_participant(p);
                }
                let levels: Vec<_> = svc
                    .notification_levels
                    .keys()
                    .filter(|(_, c)| c == conversation_sid)
                    .copied()
                    .collect();
                for k in levels {
                    svc.notification_levels.remove(&k);
                    sink.delete(
                        Table::UserConversations,
                        sid_key(&svc_sid, &[k.0.as_bytes(), k.1.as_bytes()]),
                    );
                }
                let mut rows = RowMap::new();
                write_conversation_rows(&conv, &mut rows);
                for (table, k) in rows.into_keys() {
                    sink.delete(table, k);
                }
                delete_cold_rows(&conv.message_prefix(), sink);
                self.staged
                    .retain(|_, m| m.conversation_sid != *conversation_sid);
                self.staged_edits.retain(|(c, _), _| c != conversation_sid);
            }
            Event::ParticipantAdded {
                conversation_sid,
                participant_sid,
                kind,
                user_sid,
                attributes,
                role_sid,
            } => {
                let row = ParticipantRow {
                    chat_service_sid: svc_sid,
                    conversation_sid: *conversation_sid,
                    sid: *participant_sid,
                    kind: kind.clone(),
                    user_sid: *user_sid,
                    attributes: attributes.clone(),
                    role_sid: *role_sid,
                    date_created: at,
                    date_updated: at,
                    last_read_message_index: None,
                    last_read_timestamp: None,
                };
                if svc.insert_participant(row.clone()) {
                    put_row(sink, Table::Participants, participant_key(&row), &row);
                }
            }
            Event::ParticipantUpdated {
                conversation_sid,
                participant_sid,
                attributes,
                role_sid,
            } => {
                let Some(p) = svc
                    .conversations
                    .get_mut(conversation_sid)
                    .and_then(|c| c.participants.get_mut(participant_sid))
                else {
                    return;
                };
                p.attributes = attributes.clone();
                p.role_sid = *role_sid;
                p.date_updated = at;
                put_row(sink, Table::Participants, participant_key(p), p);
            }
            Event::ReadHorizonUpdated {
                conversation_sid,
                participant_sid,
                last_read_message_index,
                last_read_timestamp,
            } => {
                let Some(p) = svc
                    .conversations
                    .get_mut(conversation_sid)
                    .and_then(|c| c.participants.get_mut(participant_sid))
                else {
                    return;
                };
                p.last_read_message_index = *last_read_message_index;
                p.last_read_timestamp = Some(*last_read_timestamp);
                p.date_updated = at;
                put_row(sink, Table::Participants, participant_key(p), p);
            }
            Event::ParticipantRemoved {
                conversation_sid,
                participant_sid,
            } => {
                let Some(conv) = svc.conversations.get_mut(conversation_sid) else {
                    return;
                };
                let Some(p) = conv.participants.remove(participant_sid) else {
                    return;
                };
                match &p.kind {
                    ParticipantKind::Chat { identity, .. } => {
                        conv.by_identity.remove(identity);
                    }
                    ParticipantKind::Messaging(_) => conv.non_chat_count -= 1,
                }
                sink.delete(Table::Participants, participant_key(&p));
                svc.unindex_participant(&p);
            }
            Event::MessageAdded {
                conversation_sid,
                message_sid,
                index,
                author,
                participant_sid,
                body,
                media,
                attributes,
            } => {
                let Some(conv) = svc.conversations.get_mut(conversation_sid) else {
                    return;
                };
                // Indexes are given in order from 0 (the unread counts
                // rely on it); another index is only possible in a
                // hand-made log, and changes nothing.
                if *index != conv.next_message_index {
                    return;
                }
                let row = MessageRow {
                    chat_service_sid: svc_sid,
                    conversation_sid: *conversation_sid,
                    sid: *message_sid,
                    index: *index,
                    author: author.clone(),
                    participant_sid: *participant_sid,
                    body: body.clone(),
                    media: media.clone(),
                    attributes: attributes.clone(),
                    date_created: at,
                    date_updated: at,
                };
                let key = message_key(&row);
                put_row(sink, Table::Messages, key, &row);
                sink.put(
                    Table::MessageSids,
                    message_sid_key(&svc_sid, conversation_sid, message_sid),
                    index.to_be_bytes().to_vec(),
                );
                self.staged.insert(*message_sid, row);
                // Derivable at load from the highest message or tombstone:
                // the conversation row is not rewritten per message.
                conv.next_message_index = index + 1;
                conv.last_activity = at;
            }
            Event::MessageUpdated {
                conversation_sid,
                message_sid,
                index,
                body,
                attributes,
            } => {
                // Written without reading the message back: the edit is a
                // row of its own, applied when the message is read.
                let Some(conv) = svc.conversations.get(conversation_sid) else {
                    return;
                };
                if *index >= conv.next_message_index || conv.deleted.contains_key(index) {
                    return;
                }
                let edit = MessageEditRow {
                    body: body.clone(),
                    attributes: attributes.clone(),
                    date_updated: at,
                };
                let key = sid_key(
                    &svc_sid,
                    &[conversation_sid.as_bytes(), &index.to_be_bytes()],
                );
                put_row(sink, Table::MessageEdits, key, &edit);
                match self.staged.get_mut(message_sid) {
                    Some(m) => edit.apply_to(m),
                    None => {
                        self.staged_edits.insert((*conversation_sid, *index), edit);
                    }
                }
            }
            Event::MessageRemoved {
                conversation_sid,
                message_sid,
                index,
            } => {
                let Some(conv) = svc.conversations.get_mut(conversation_sid) else {
                    return;
                };
                if *index >= conv.next_message_index || conv.deleted.contains_key(index) {
                    return;
                }
                // Written without reading the message back (see
                // `DeletedMessageRow` on the time it keeps).
                let key = sid_key(
                    &svc_sid,
                    &[conversation_sid.as_bytes(), &index.to_be_bytes()],
                );
                sink.delete(Table::Messages, key.clone());
                sink.delete(Table::MessageEdits, key.clone());
                sink.delete(
                    Table::MessageSids,
                    message_sid_key(&svc_sid, conversation_sid, message_sid),
                );
                let tombstone = DeletedMessageRow {
                    chat_service_sid: svc_sid,
                    conversation_sid: *conversation_sid,
                    index: *index,
                    last_activity: conv.last_activity,
                };
                put_row(sink, Table::DeletedMessages, key, &tombstone);
                conv.deleted.insert(*index, conv.last_activity);
                self.staged.remove(message_sid);
                self.staged_edits.remove(&(*conversation_sid, *index));
                let pairs: Vec<_> = conv
                    .receipts
                    .keys()
                    .chain(conv.delivery_attempts.keys())
                    .filter(|(m, _)| m == message_sid)
                    .copied()
                    .collect();
                for pair in pairs {
                    let k = pair_key(&svc_sid, conversation_sid, &pair.0, &pair.1);
                    if conv.receipts.remove(&pair).is_some() {
                        sink.delete(Table::Receipts, k.clone());
                    }
                    if conv.delivery_attempts.remove(&pair).is_some() {
                        sink.delete(Table::DeliveryAttempts, k);
                    }
                }
            }
            Event::UserCreated {
                user_sid,
                identity,
                friendly_name,
                attributes,
                role_sid,
            } => {
                let row = UserRow {
                    chat_service_sid: svc_sid,
                    sid: *user_sid,
                    identity: identity.clone(),
                    friendly_name: friendly_name.clone(),
                    attributes: attributes.clone(),
                    role_sid: *role_sid,
                    date_created: at,
                    date_updated: at,
                };
                put_row(
                    sink,
                    Table::Users,
                    sid_key(&svc_sid, &[user_sid.as_bytes()]),
                    &row,
                );
                svc.user_by_identity.insert(identity.clone(), *user_sid);
                svc.users.insert(*user_sid, row);
            }
            Event::UserUpdated {
                user_sid,
                friendly_name,
                attributes,
                role_sid,
            } => {
                let Some(u) = svc.users.get_mut(user_sid) else {
                    return;
                };
                u.friendly_name = friendly_name.clone();
                u.attributes = attributes.clone();
                u.role_sid = *role_sid;
                u.date_updated = at;
                put_row(
                    sink,
                    Table::Users,
                    sid_key(&svc_sid, &[user_sid.as_bytes()]),
                    u,
                );
            }
            Event::UserDeleted { user_sid } => {
                let Some(u) = svc.users.remove(user_sid) else {
                    return;
                };
                svc.user_by_identity.remove(&u.identity);
                sink.delete(Table::Users, sid_key(&svc_sid, &[user_sid.as_bytes()]));
                let levels: Vec<_> = svc
                    .notification_levels
                    .keys()
                    .filter(|(usr, _)| usr == user_sid)
                    .copied()
                    .collect();
                for k in levels {
                    svc.notification_levels.remove(&k);
                    sink.delete(
                        Table::UserConversations,
                        sid_key(&svc_sid, &[k.0.as_bytes(), k.1.as_bytes()]),
                    );
                }
            }
            Event::UserConversationUpdated {
                conversation_sid,
                user_sid,
                notification_level,
            } => {
                let k = (*user_sid, *conversation_sid);
                let rk = sid_key(
                    &svc_sid,
                    &[user_sid.as_bytes(), conversation_sid.as_bytes()],
                );
                if *notification_level == NotificationLevel::Default {
                    svc.notification_levels.remove(&k);
                    sink.delete(Table::UserConversations, rk);
                } else {
                    svc.notification_levels.insert(k, *notification_level);
                    let row = UserConversationRow {
                        chat_service_sid: svc_sid,
                        user_sid: *user_sid,
                        conversation_sid: *conversation_sid,
                        notification_level: *notification_level,
                    };
                    put_row(sink, Table::UserConversations, rk, &row);
                }
            }
            Event::AddressConfigurationCreatedV2 {
                address_configuration_sid,
                address_type,
                address,
                friendly_name,
                auto_creation,
            } => {
                let row = AddressConfigurationRow {
                    chat_service_sid: svc_sid,
                    sid: *address_configuration_sid,
                    address_type: *address_type,
                    address: address.clone(),
                    friendly_name: friendly_name.clone(),
                    auto_creation: auto_creation.clone(),
                    date_created: at,
                    date_updated: at,
                };
                put_row(
                    sink,
                    Table::AddressConfigurations,
                    sid_key(&svc_sid, &[address_configuration_sid.as_bytes()]),
                    &row,
                );
                svc.address_configuration_by_address
                    .insert(address.clone(), *address_configuration_sid);
                svc.address_configurations
                    .insert(*address_configuration_sid, row);
            }
            Event::AddressConfigurationUpdatedV2 {
                address_configuration_sid,
                friendly_name,
                auto_creation,
            } => {
                let Some(row) = svc
                    .address_configurations
                    .get_mut(address_configuration_sid)
                else {
                    return;
                };
                row.friendly_name = friendly_name.clone();
                row.auto_creation = auto_creation.clone();
                row.date_updated = at;
                put_row(
                    sink,
                    Table::AddressConfigurations,
                    sid_key(&svc_sid, &[address_configuration_sid.as_bytes()]),
                    row,
                );
            }
            Event::AddressConfigurationDeleted {
                address_configuration_sid,
            } => {
                if let Some(row) = svc.address_configurations.remove(address_configuration_sid) {
                    svc.address_configuration_by_address.remove(&row.address);
                }
                sink.delete(
                    Table::AddressConfigurations,
                    sid_key(&svc_sid, &[address_configuration_sid.as_bytes()]),
                );
            }
            Event::DeliveryReceiptRecorded {
                conversation_sid,
                receipt_sid,
                message_sid,
                participant_sid,
                status,
                error_code,
                channel_message_sid,
            } => {
                let Some(conv) = svc.conversations.get_mut(conversation_sid) else {
                    return;
                };
                let pair = (*message_sid, *participant_sid);
                let row = match conv.receipts.get(&pair) {
                    Some(old) => ReceiptRow {
                        status: *status,
                        error_code: *error_code,
                        channel_message_sid: channel_message_sid
                            .clone()
                            .or_else(|| old.channel_message_sid.clone()),
                        date_updated: at,
                        ..old.clone()
                    },
                    None => ReceiptRow {
                        chat_service_sid: svc_sid,
                        conversation_sid: *conversation_sid,
                        sid: *receipt_sid,
                        message_sid: *message_sid,
                        participant_sid: *participant_sid,
                        status: *status,
                        error_code: *error_code,
                        channel_message_sid: channel_message_sid.clone(),
                        date_created: at,
                        date_updated: at,
                    },
                };
                put_row(
                    sink,
                    Table::Receipts,
                    pair_key(&svc_sid, conversation_sid, message_sid, participant_sid),
                    &row,
                );
                conv.receipts.insert(pair, row);
            }
            Event::ConversationWebhookCreated {
                conversation_sid,
                webhook_sid,
                webhook,
            } => add_conversation_webhook(
                svc,
                sink,
                at,
                (*conversation_sid, *webhook_sid),
                ConversationWebhookConfig::Url(webhook.clone()),
            ),
            Event::ConversationStudioWebhookCreated {
                conversation_sid,
                webhook_sid,
                studio,
            } => add_conversation_webhook(
                svc,
                sink,
                at,
                (*conversation_sid, *webhook_sid),
                ConversationWebhookConfig::Studio(studio.clone()),
            ),
            Event::ConversationWebhookUpdated {
                conversation_sid,
                webhook_sid,
                webhook,
            } => {
                let Some(row) = svc
                    .conversations
                    .get_mut(conversation_sid)
                    .and_then(|conv| conv.webhooks.get_mut(webhook_sid))
                else {
                    return;
                };
                row.webhook = webhook.clone();
                row.date_updated = at;
                put_row(
                    sink,
                    Table::ConversationWebhooks,
                    webhook_key(&svc_sid, conversation_sid, webhook_sid),
                    row,
                );
            }
            Event::ConversationWebhookRemoved {
                conversation_sid,
                webhook_sid,
            } => {
                let Some(conv) = svc.conversations.get_mut(conversation_sid) else {
                    return;
                };
                if conv.webhooks.remove(webhook_sid).is_some() {
                    sink.delete(
                        Table::ConversationWebhooks,
                        webhook_key(&svc_sid, conversation_sid, webhook_sid),
                    );
                }
            }
            Event::DeliveryAttemptFailed {
                conversation_sid,
                message_sid,
                participant_sid,
                attempt,
                error,
            } => {
                let Some(conv) = svc.conversations.get_mut(conversation_sid) else {
                    return;
                };
                let row = DeliveryAttemptsRow {
                    chat_service_sid: svc_sid,
                    conversation_sid: *conversation_sid,
                    message_sid: *message_sid,
                    participant_sid: *participant_sid,
                    failed_attempts: *attempt,
                    last_error: error.clone(),
                    last_failed_at: at,
                };
                put_row(
                    sink,
                    Table::DeliveryAttempts,
                    pair_key(&svc_sid, conversation_sid, message_sid, participant_sid),
                    &row,
                );
                conv.delivery_attempts
                    .insert((*message_sid, *participant_sid), row);
            }
        }
    }

    /// Copies every row of the cold tables ([`Table::COLD`]) from the cold
    /// source to `sink`, all of them at once: with
    /// [`ReadModels::write_rows`], the whole persisted form (for digests of
    /// states folded off to the side).
    ///
    /// Errors: the cold source cannot be read.
    pub fn copy_cold_rows(&self, sink: &mut dyn RowSink) -> Result<(), ColdError> {
        for table in Table::COLD {
            for (k, v) in self.cold.scan(table, &[], None, false, usize::MAX)? {
                sink.put(table, k, v);
            }
        }
        Ok(())
    }

    /// Writes every resident row of the state to `sink`: the persisted
    /// form, but for the cold tables ([`Table::COLD`]), which are not in
    /// memory (they are where `apply` wrote them). Equal states write
    /// equal rows.
    pub fn write_rows(&self, sink: &mut dyn RowSink) {
        self.write_meta_rows(sink);
        for svc in self.services.values() {
            write_service_rows(svc, sink);
        }
    }

    /// Rebuilds the state from persisted rows (as written by `apply` or
    /// [`ReadModels::write_rows`]), in any order, with `cold` as the
    /// source of the cold rows ([`Table::COLD`]; rows of those tables in
    /// `rows` are skipped: they stay where they are).
    ///
    /// Errors: a row does not decode, or `cold` cannot be read (one
    /// reverse seek per conversation, for its highest message). Rows whose
    /// parent (service or conversation) is missing are ignored, as `apply`
    /// would never have written them.
    pub fn load(
        rows: impl IntoIterator<Item = (Table, Vec<u8>, Vec<u8>)>,
        cold: Arc<dyn ColdRows>,
    ) -> Result<Self, LoadError> {
        let mut by_table: BTreeMap<Table, Vec<Vec<u8>>> = BTreeMap::new();
        let mut me = ReadModels::new();
        for (table, k, v) in rows {
            if table.is_cold() {
                continue;
            }
            if table == Table::Meta {
                if k == META_APPLIED_KEY {
                    let bytes: [u8; 8] =
                        v.as_slice().try_into().map_err(|_| LoadError::Decode {
                            table,
                            source: CodecError::Malformed("applied position is not 8 bytes".into()),
                        })?;
                    me.applied_position = Some(u64::from_be_bytes(bytes));
                }
                continue;
            }
            by_table.entry(table).or_default().push(v);
        }
        fn rows_of<T: serde::de::DeserializeOwned>(
            by_table: &mut BTreeMap<Table, Vec<Vec<u8>>>,
            table: Table,
        ) -> Result<Vec<T>, LoadError> {
            by_table
                .remove(&table)
                .unwrap_or_default()
                .iter()
                .map(|v| decode(v).map_err(|source| LoadError::Decode { table, source }))
                .collect()
        }
        for row in rows_of::<ServiceRow>(&mut by_table, Table::Services)? {
            me.services.insert(row.sid, Service::new(row));
        }
        for row in rows_of::<RoleRow>(&mut by_table, Table::Roles)? {
            if let Some(s) = me.services.get_mut(&row.chat_service_sid) {
                s.roles.insert(row.sid, row);
            }
        }
        for row in rows_of::<UserRow>(&mut by_table, Table::Users)? {
            if let Some(s) = me.services.get_mut(&row.chat_service_sid) {
                s.user_by_identity.insert(row.identity.clone(), row.sid);
                s.users.insert(row.sid, row);
            }
        }
        for row in rows_of::<AddressConfigurationRow>(&mut by_table, Table::AddressConfigurations)?
        {
            if let Some(s) = me.services.get_mut(&row.chat_service_sid) {
                s.address_configuration_by_address
                    .insert(row.address.clone(), row.sid);
                s.address_configurations.insert(row.sid, row);
            }
        }
        for row in rows_of::<ConversationRow>(&mut by_table, Table::Conversations)? {
            if let Some(s) = me.services.get_mut(&row.chat_service_sid) {
                if let Some(u) = &row.unique_name {
                    s.by_unique_name.insert(u.clone(), row.sid);
                }
                s.by_created.insert((row.date_created, row.sid));
                s.conversations.insert(row.sid, Conversation::new(row));
            }
        }
        for row in rows_of::<ParticipantRow>(&mut by_table, Table::Participants)? {
            if let Some(s) = me.services.get_mut(&row.chat_service_sid) {
                s.insert_participant(row);
            }
        }
        for row in rows_of::<DeletedMessageRow>(&mut by_table, Table::DeletedMessages)? {
            if let Some(c) = me
                .services
                .get_mut(&row.chat_service_sid)
                .and_then(|s| s.conversations.get_mut(&row.conversation_sid))
            {
                c.deleted.insert(row.index, row.last_activity);
            }
        }
        for svc in me.services.values_mut() {
            for c in svc.conversations.values_mut() {
                // The live message with the highest index: the last cold
                // row under the conversation's prefix.
                let prefix = c.message_prefix();
                let end = prefix_end(&prefix);
                let last = cold.scan(Table::Messages, &prefix, end.as_deref(), true, 1)?;
                let live = match last.first() {
                    Some((_, v)) => {
                        let m: MessageRow = decode_cold(Table::Messages, v)?;
                        Some((m.index, m.date_created))
                    }
                    None => None,
                };
                c.derive_counters(live);
            }
        }
        me.cold = cold;
        for row in rows_of::<ReceiptRow>(&mut by_table, Table::Receipts)? {
            if let Some(c) = me
                .services
                .get_mut(&row.chat_service_sid)
                .and_then(|s| s.conversations.get_mut(&row.conversation_sid))
            {
                c.receipts
                    .insert((row.message_sid, row.participant_sid), row);
            }
        }
        for row in rows_of::<ConversationWebhookRow>(&mut by_table, Table::ConversationWebhooks)? {
            if let Some(c) = me
                .services
                .get_mut(&row.chat_service_sid)
                .and_then(|s| s.conversations.get_mut(&row.conversation_sid))
            {
                c.webhooks.insert(row.sid, row);
            }
        }
        for row in rows_of::<DeliveryAttemptsRow>(&mut by_table, Table::DeliveryAttempts)? {
            if let Some(c) = me
                .services
                .get_mut(&row.chat_service_sid)
                .and_then(|s| s.conversations.get_mut(&row.conversation_sid))
            {
                c.delivery_attempts
                    .insert((row.message_sid, row.participant_sid), row);
            }
        }
        for row in rows_of::<UserConversationRow>(&mut by_table, Table::UserConversations)? {
            if let Some(s) = me.services.get_mut(&row.chat_service_sid) {
                s.notification_levels
                    .insert((row.user_sid, row.conversation_sid), row.notification_level);
            }
        }
        Ok(me)
    }
}

fn write_service_rows(svc: &Service, sink: &mut dyn RowSink) {
    let s = &svc.row.sid;
    put_row(sink, Table::Services, sid_key(s, &[]), &svc.row);
    for r in svc.roles.values() {
        put_row(sink, Table::Roles, sid_key(s, &[r.sid.as_bytes()]), r);
    }
    for u in svc.users.values() {
        put_row(sink, Table::Users, sid_key(s, &[u.sid.as_bytes()]), u);
    }
    for ((u, c), level) in &svc.notification_levels {
        let row = UserConversationRow {
            chat_service_sid: *s,
            user_sid: *u,
            conversation_sid: *c,
            notification_level: *level,
        };
        put_row(
            sink,
            Table::UserConversations,
            sid_key(s, &[u.as_bytes(), c.as_bytes()]),
            &row,
        );
    }
    for a in svc.address_configurations.values() {
        put_row(
            sink,
            Table::AddressConfigurations,
            sid_key(s, &[a.sid.as_bytes()]),
            a,
        );
    }
    for conv in svc.conversations.values() {
        write_conversation_rows(conv, sink);
    }
}

fn write_conversation_rows(conv: &Conversation, sink: &mut dyn RowSink) {
    let s = &conv.row.chat_service_sid;
    let c = &conv.row.sid;
    put_row(
        sink,
        Table::Conversations,
        conversation_key(&conv.row),
        &conv.row,
    );
    for p in conv.participants.values() {
        put_row(sink, Table::Participants, participant_key(p), p);
    }
    for (index, at) in &conv.deleted {
        let tombstone = DeletedMessageRow {
            chat_service_sid: *s,
            conversation_sid: *c,
            index: *index,
            last_activity: *at,
        };
        put_row(
            sink,
            Table::DeletedMessages,
            sid_key(s, &[c.as_bytes(), &index.to_be_bytes()]),
            &tombstone,
        );
    }
    for ((m, p), r) in &conv.receipts {
        put_row(sink, Table::Receipts, pair_key(s, c, m, p), r);
    }
    for ((m, p), r) in &conv.delivery_attempts {
        put_row(sink, Table::DeliveryAttempts, pair_key(s, c, m, p), r);
    }
    for (w, r) in &conv.webhooks {
        put_row(sink, Table::ConversationWebhooks, webhook_key(s, c, w), r);
    }
}

/// The key of a conversation-scoped webhook's row.
fn webhook_key(service: &ServiceSid, conv: &ConversationSid, webhook: &WebhookSid) -> Vec<u8> {
    sid_key(service, &[conv.as_bytes(), webhook.as_bytes()])
}
