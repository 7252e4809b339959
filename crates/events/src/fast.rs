//! The fast path of record decoding: records parsed in place, payloads
//! checked against the event grammar without building an event.
//!
//! [`Record::decode`] and [`Record::event`] are the authoritative decoder:
//! their verdict and their [`CodecError`] are final. A verify walk needs only
//! the verdict, and the general decoder allocates every string and walks
//! each 16-byte SID one element at a time. So:
//!
//! - [`parse`] reads a record of a version in [`FAST_FORMAT_VERSIONS`] in
//!   canonical bincode without copying (a [`RecordView`] borrows the header
//!   bytes and the payload), and [`RecordView::computed_hash`] hashes the
//!   stored header bytes, which, being canonical, are exactly what the
//!   writer hashed;
//! - [`decode_record`] is the one entry point: the fast path when it
//!   applies and the hash matches, [`Record::decode`] otherwise;
//! - [`is_valid_payload`] walks the bincode grammar of version 1's `Event`
//!   in place (the compatibility rule in [`crate::record`] freezes that
//!   grammar; version 2 changed only the header), and
//!   [`RecordView::check_event`] falls back to the real decoder when it says
//!   no.
//!
//! Both fast checks are stricter than the decoder — shortest-form varints
//! and 0/1 tags only — so the fast path only ever accepts what the
//! authoritative path accepts, with equal fields, and every rejection comes
//! from the authoritative path with its own error. The unit tests below,
//! `tests/fast_differential.rs` and the `fast_vs_decoder` fuzz target check
//! both directions.
//!
//! The variant counts of the encoded enums ([`EVENT_VARIANTS`] and the
//! others) live here, tested against the enums themselves.

use std::borrow::Cow;

use crate::command::CommandId;
use crate::event::Event;
use crate::limits::{IDENTITY_CHARS_MAX, RECORD_BYTES_MAX};
use crate::model::{
    AddressType, AutoCreation, AutoCreationV1, ConversationState, ConversationWebhook,
    ConversationWebhookConfig, DeliveryStatus, Media, MessagingBinding, NotificationLevel,
    ParticipantKind, Permission, RoleType, ServiceWebhooks, StudioWebhook, Timers, WebhookFilter,
    WebhookMethod, WebhookTarget,
};
use crate::record::{
    chain_hash_of_bytes, decode_event, encode_header, CodecError, Hash, Record, RecordHeader,
};
use crate::sid::{
    AddressConfigurationSid, ConversationSid, FlowSid, MediaSid, MessageSid, ParticipantSid,
    ReceiptSid, RoleSid, ServiceSid, UserSid, WebhookSid,
};

/// The format versions the fast path parses in place: every version the
/// writer has ever written, so a verify walk never falls back record by
/// record. Version 2's header is version 1's plus the actor.
pub const FAST_FORMAT_VERSIONS: [u16; 2] = [1, 2];
/// Length of a SID or command id in the encoding, in bytes.
const ID_BYTES: usize = 16;
/// Length of a chain hash, in bytes.
const HASH_BYTES: usize = 32;
/// bincode's varint tag for a following little-endian u16 (smaller values
/// are the byte itself).
const VARINT_U16_TAG: u8 = 251;
/// bincode's varint tag for a following little-endian u32.
const VARINT_U32_TAG: u8 = 252;
/// bincode's varint tag for a following little-endian u64.
const VARINT_U64_TAG: u8 = 253;

/// Variants of [`Event`]: the length of [`EVENT_TYPE_NAMES`], which
/// [`event_variant_index`] (an exhaustive match) indexes.
pub const EVENT_VARIANTS: usize = 33;
/// Variants of [`crate::Permission`].
pub const PERMISSION_VARIANTS: u64 = 21;
/// Variants of [`crate::RoleType`].
pub const ROLE_TYPE_VARIANTS: u64 = 2;
/// Variants of [`crate::ConversationState`].
pub const CONVERSATION_STATE_VARIANTS: u64 = 4;
/// Variants of [`crate::ParticipantKind`].
pub const PARTICIPANT_KIND_VARIANTS: u64 = 2;
/// Variants of [`crate::NotificationLevel`].
pub const NOTIFICATION_LEVEL_VARIANTS: u64 = 2;
/// Variants of [`crate::AddressType`].
pub const ADDRESS_TYPE_VARIANTS: u64 = 8;
/// Variants of [`crate::DeliveryStatus`].
pub const DELIVERY_STATUS_VARIANTS: u64 = 5;
/// Variants of [`crate::WebhookMethod`].
pub const WEBHOOK_METHOD_VARIANTS: u64 = 2;
/// Variants of [`crate::WebhookTarget`].
pub const WEBHOOK_TARGET_VARIANTS: u64 = 2;
/// Variants of [`crate::AutoCreationType`].
pub const AUTO_CREATION_TYPE_VARIANTS: u64 = 3;
/// Variants of [`crate::WebhookFilter`].
pub const WEBHOOK_FILTER_VARIANTS: u64 = crate::WebhookFilter::ALL.len() as u64;

/// Every event type name ([`Event::type_name`]), in declaration order.
pub const EVENT_TYPE_NAMES: [&str; EVENT_VARIANTS] = [
    "service_created",
    "service_updated",
    "service_deleted",
    "role_created",
    "role_updated",
    "role_deleted",
    "conversation_created",
    "conversation_updated",
    "conversation_removed",
    "participant_added",
    "participant_updated",
    "read_horizon_updated",
    "participant_removed",
    "message_added",
    "message_updated",
    "message_removed",
    "user_created",
    "user_updated",
    "user_deleted",
    "user_conversation_updated",
    "address_configuration_created",
    "address_configuration_updated",
    "address_configuration_deleted",
    "delivery_receipt_recorded",
    "service_configuration_updated",
    "delivery_attempt_failed",
    "service_webhooks_updated",
    "conversation_webhook_created",
    "conversation_webhook_removed",
    "conversation_studio_webhook_created",
    "address_configuration_created_v2",
    "address_configuration_updated_v2",
    "conversation_webhook_updated",
];

/// The declaration index of an event's variant: a compile error here means
/// a variant was added and [`EVENT_TYPE_NAMES`] needs its name.
pub fn event_variant_index(event: &Event) -> usize {
    use Event::*;
    match event {
        ServiceCreated { .. } => 0,
        ServiceUpdated { .. } => 1,
        ServiceDeleted => 2,
        RoleCreated { .. } => 3,
        RoleUpdated { .. } => 4,
        RoleDeleted { .. } => 5,
        ConversationCreated { .. } => 6,
        ConversationUpdated { .. } => 7,
        ConversationRemoved { .. } => 8,
        ParticipantAdded { .. } => 9,
        ParticipantUpdated { .. } => 10,
        ReadHorizonUpdated { .. } => 11,
        ParticipantRemoved { .. } => 12,
        MessageAdded { .. } => 13,
        MessageUpdated { .. } => 14,
        MessageRemoved { .. } => 15,
        UserCreated { .. } => 16,
        UserUpdated { .. } => 17,
        UserDeleted { .. } => 18,
        UserConversationUpdated { .. } => 19,
        AddressConfigurationCreated { .. } => 20,
        AddressConfigurationUpdated { .. } => 21,
        AddressConfigurationDeleted { .. } => 22,
        DeliveryReceiptRecorded { .. } => 23,
        ServiceConfigurationUpdated { .. } => 24,
        DeliveryAttemptFailed { .. } => 25,
        ServiceWebhooksUpdated { .. } => 26,
        ConversationWebhookCreated { .. } => 27,
        ConversationWebhookRemoved { .. } => 28,
        ConversationStudioWebhookCreated { .. } => 29,
        AddressConfigurationCreatedV2 { .. } => 30,
        AddressConfigurationUpdatedV2 { .. } => 31,
        ConversationWebhookUpdated { .. } => 32,
    }
}

/// A decoded record, borrowing from the stored bytes where it can.
#[derive(Debug, Clone)]
pub struct RecordView<'a> {
    /// The format version.
    pub format_version: u16,
    /// The header.
    pub header: RecordHeader,
    /// The header in its version's encoding: the bytes the chain hash
    /// covers.
    pub header_bytes: Cow<'a, [u8]>,
    /// The previous record's hash.
    pub prev_hash: Hash,
    /// This record's hash, as stored.
    pub hash: Hash,
    /// The bincode encoding of the event.
    pub payload: Cow<'a, [u8]>,
}

impl RecordView<'_> {
    /// Decodes the payload as an event of the header's conversation, as
    /// [`Record::event`] does (same errors).
    pub fn event(&self) -> Result<Event, CodecError> {
        decode_event(
            self.format_version,
            self.header.conversation_sid,
            &self.payload,
        )
    }

    /// Whether [`RecordView::event`] succeeds, without building the event
    /// when the payload is canonical ([`is_valid_payload`]); otherwise the
    /// decoder's verdict and error.
    pub fn check_event(&self) -> Result<(), CodecError> {
        let conversation = self.header.conversation_sid.map(|c| c.0);
        if is_valid_payload(self.format_version, &self.payload, conversation.as_ref()) {
            return Ok(());
        }
        self.event().map(drop)
    }

    /// The chain hash of the record's contents, over its header bytes:
    /// equal to [`RecordView::hash`] for a sound record.
    pub fn computed_hash(&self) -> Hash {
        chain_hash_of_bytes(
            self.format_version,
            &self.header_bytes,
            &self.prev_hash,
            &self.payload,
        )
    }

    /// The owned record.
    pub fn to_record(&self) -> Record {
        Record {
            format_version: self.format_version,
            header: self.header.clone(),
            prev_hash: self.prev_hash,
            hash: self.hash,
            payload: self.payload.to_vec(),
        }
    }
}

/// A cursor over stored bytes that only accepts canonical bincode (standard
/// config): shortest-form varints, 0/1 option tags.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// A grammar step: `None` means "not canonical" (ask the real decoder).
type Step = Option<()>;

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], at: usize) -> Self {
        Cursor { bytes, at }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    /// A bincode varint u64 in its shortest form.
    fn varint(&mut self) -> Option<u64> {
        let tag = self.byte()?;
        match tag {
            0..VARINT_U16_TAG => Some(u64::from(tag)),
            VARINT_U16_TAG => {
                let v = u64::from(u16::from_le_bytes(self.array()?));
                (v >= u64::from(VARINT_U16_TAG)).then_some(v)
            }
            VARINT_U32_TAG => {
                let v = u64::from(u32::from_le_bytes(self.array()?));
                (v > u64::from(u16::MAX)).then_some(v)
            }
            VARINT_U64_TAG => {
                let v = u64::from_le_bytes(self.array()?);
                (v > u64::from(u32::MAX)).then_some(v)
            }
            _ => None,
        }
    }

    /// An option tag: `Some(false)` for none, `Some(true)` for some.
    fn tag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    /// A length-prefixed UTF-8 string.
    fn str(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.varint()?).ok()?;
        std::str::from_utf8(self.take(len)?).ok()
    }
}

/// Parses a record of a version in [`FAST_FORMAT_VERSIONS`] in canonical
/// encoding without copying (only a version-2 actor is copied out).
/// `None` means "not the common case": the caller must use the
/// authoritative decoder ([`decode_record`] does). The hash is not checked
/// here ([`RecordView::computed_hash`]).
pub fn parse(bytes: &[u8]) -> Option<RecordView<'_>> {
    if bytes.len() < 2 || bytes.len() > RECORD_BYTES_MAX {
        return None;
    }
    let format_version = u16::from_le_bytes([bytes[0], bytes[1]]);
    if !FAST_FORMAT_VERSIONS.contains(&format_version) {
        return None;
    }
    let mut c = Cursor::new(bytes, 2);
    let position = c.varint()?;
    let recorded_at = c.varint()?;
    let service_sid = ServiceSid(c.array::<ID_BYTES>()?);
    let conversation_sid = match c.tag()? {
        false => None,
        true => Some(ConversationSid(c.array::<ID_BYTES>()?)),
    };
    let command_id = CommandId(c.array::<ID_BYTES>()?);
    let actor = if format_version >= 2 && c.tag()? {
        let actor = c.str()?;
        // Over the limit is an error only the decoder may name.
        if actor.len() > IDENTITY_CHARS_MAX && actor.chars().count() > IDENTITY_CHARS_MAX {
            return None;
        }
        Some(actor.to_owned())
    } else {
        None
    };
    let header_end = c.at;
    let prev_hash = c.array::<HASH_BYTES>()?;
    let hash = c.array::<HASH_BYTES>()?;
    let len = usize::try_from(c.varint()?).ok()?;
    let payload = c.take(len)?;
    if c.at != bytes.len() {
        return None;
    }
    Some(RecordView {
        format_version,
        header: RecordHeader {
            position,
            recorded_at,
            service_sid,
            conversation_sid,
            command_id,
            actor,
        },
        header_bytes: Cow::Borrowed(&bytes[2..header_end]),
        prev_hash,
        hash,
        payload: Cow::Borrowed(payload),
    })
}

/// Decodes stored record bytes and checks the record's own hash: the same
/// verdict, fields and error as [`Record::decode`], through [`parse`] when
/// the record is canonical (no copy) and through [`Record::decode`]
/// otherwise.
///
/// Errors: exactly [`Record::decode`]'s.
pub fn decode_record(bytes: &[u8]) -> Result<RecordView<'_>, CodecError> {
    if let Some(view) = parse(bytes) {
        if view.computed_hash() == view.hash {
            return Ok(view);
        }
    }
    let record = Record::decode(bytes)?;
    // The record decoded, so its header encodes in its version (it was
    // hashed that way).
    let header_bytes = encode_header(record.format_version, &record.header)?;
    Ok(RecordView {
        format_version: record.format_version,
        header: record.header,
        header_bytes: Cow::Owned(header_bytes),
        prev_hash: record.prev_hash,
        hash: record.hash,
        payload: Cow::Owned(record.payload),
    })
}

/// Length of a SID in the encoding, in bytes.
const SID_BYTES: usize = ID_BYTES;

/// The grammar of version 1's `Event`, on the canonical cursor.
impl Cursor<'_> {
    fn u64(&mut self) -> Step {
        self.varint().map(drop)
    }

    fn u32(&mut self) -> Step {
        (self.varint()? <= u64::from(u32::MAX)).then_some(())
    }

    fn unit_enum(&mut self, variants: u64) -> Step {
        (self.varint()? < variants).then_some(())
    }

    fn sid(&mut self) -> Step {
        self.take(SID_BYTES).map(drop)
    }

    fn string(&mut self) -> Step {
        self.str().map(drop)
    }

    fn opt(&mut self, f: impl FnOnce(&mut Self) -> Step) -> Step {
        if self.tag()? {
            f(self)
        } else {
            Some(())
        }
    }

    fn opt_string(&mut self) -> Step {
        self.opt(Self::string)
    }

    fn opt_sid(&mut self) -> Step {
        self.opt(Self::sid)
    }

    fn opt_u64(&mut self) -> Step {
        self.opt(Self::u64)
    }

    fn seq(&mut self, mut f: impl FnMut(&mut Self) -> Step) -> Step {
        let n = self.varint()?;
        // Every element takes at least one byte.
        if n > (self.bytes.len() - self.at) as u64 {
            return None;
        }
        for _ in 0..n {
            f(self)?;
        }
        Some(())
    }

    fn timers(&mut self) -> Step {
        self.opt_u64()?;
        self.opt_u64()
    }

    fn binding(&mut self) -> Step {
        self.string()?;
        self.string()?;
        self.opt_string()
    }

    fn participant_kind(&mut self) -> Step {
        let variant = self.varint()?;
        if variant >= PARTICIPANT_KIND_VARIANTS {
            return None;
        }
        match variant {
            0 => {
                self.string()?;
                self.opt_string()
            }
            1 => self.binding(),
            _ => None,
        }
    }

    fn media(&mut self) -> Step {
        self.sid()?;
        self.string()?;
        self.opt_string()?;
        self.u64()
    }

    fn auto_creation(&mut self) -> Step {
        self.tag()?;
        self.opt_sid()?;
        self.opt_string()
    }

    /// `AutoCreation { enabled, conversation_service_sid, kind,
    /// webhook_url, webhook_method, webhook_filters, studio_flow_sid,
    /// studio_retry_count }`.
    /// A [`ConversationWebhook`]: { target, url, method, filters,
    /// triggers }.
    fn conversation_webhook(&mut self) -> Step {
        self.unit_enum(WEBHOOK_TARGET_VARIANTS)?;
        self.string()?;
        self.unit_enum(WEBHOOK_METHOD_VARIANTS)?;
        self.seq(|c| c.unit_enum(WEBHOOK_FILTER_VARIANTS))?;
        self.seq(Self::string)
    }

    /// A [`StudioWebhook`]: { flow_sid, replay_after }.
    fn studio_webhook(&mut self) -> Step {
        self.sid()?;
        self.opt(Self::u64)
    }

    fn auto_creation_v2(&mut self) -> Step {
        self.tag()?;
        self.opt_sid()?;
        self.unit_enum(AUTO_CREATION_TYPE_VARIANTS)?;
        self.opt_string()?;
        self.unit_enum(WEBHOOK_METHOD_VARIANTS)?;
        self.seq(|c| c.unit_enum(WEBHOOK_FILTER_VARIANTS))?;
        self.opt_sid()?;
        self.opt(Self::u32)
    }

    fn event(&mut self) -> Step {
        let variant = self.varint()?;
        if variant >= EVENT_VARIANTS as u64 {
            return None;
        }
        match variant {
            // ServiceCreated, ServiceUpdated { friendly_name }
            0 | 1 => self.string(),
            // ServiceDeleted
            2 => Some(()),
            // RoleCreated { role_sid, friendly_name, role_type, permissions }
            3 => {
                self.sid()?;
                self.string()?;
                self.unit_enum(ROLE_TYPE_VARIANTS)?;
                self.seq(|p| p.unit_enum(PERMISSION_VARIANTS))
            }
            // RoleUpdated { role_sid, permissions }
            4 => {
                self.sid()?;
                self.seq(|p| p.unit_enum(PERMISSION_VARIANTS))
            }
            // RoleDeleted { role_sid }
            5 => self.sid(),
            // ConversationCreated { conversation_sid, friendly_name,
            // unique_name, attributes, state, timers, messaging_service_sid }
            6 => {
                self.sid()?;
                self.opt_string()?;
                self.opt_string()?;
                self.string()?;
                self.unit_enum(CONVERSATION_STATE_VARIANTS)?;
                self.timers()?;
                self.opt_string()
            }
            // ConversationUpdated { conversation_sid, friendly_name,
            // unique_name, attributes, state, timers }
            7 => {
                self.sid()?;
                self.opt_string()?;
                self.opt_string()?;
                self.string()?;
                self.unit_enum(CONVERSATION_STATE_VARIANTS)?;
                self.timers()
            }
            // ConversationRemoved { conversation_sid }
            8 => self.sid(),
            // ParticipantAdded { conversation_sid, participant_sid, kind,
            // user_sid, attributes, role_sid }
            9 => {
                self.sid()?;
                self.sid()?;
                self.participant_kind()?;
                self.opt_sid()?;
                self.string()?;
                self.opt_sid()
            }
            // ParticipantUpdated { conversation_sid, participant_sid,
            // attributes, role_sid }
            10 => {
                self.sid()?;
                self.sid()?;
                self.string()?;
                self.opt_sid()
            }
            // ReadHorizonUpdated { conversation_sid, participant_sid,
            // last_read_message_index, last_read_timestamp }
            11 => {
                self.sid()?;
                self.sid()?;
                self.opt_u64()?;
                self.u64()
            }
            // ParticipantRemoved { conversation_sid, participant_sid }
            12 => {
                self.sid()?;
                self.sid()
            }
            // MessageAdded { conversation_sid, message_sid, index, author,
            // participant_sid, body, media, attributes }
            13 => {
                self.sid()?;
                self.sid()?;
                self.u64()?;
                self.string()?;
                self.opt_sid()?;
                self.opt_string()?;
                self.seq(Self::media)?;
                self.string()
            }
            // MessageUpdated { conversation_sid, message_sid, index, body,
            // attributes }
            14 => {
                self.sid()?;
                self.sid()?;
                self.u64()?;
                self.opt_string()?;
                self.string()
            }
            // MessageRemoved { conversation_sid, message_sid, index }
            15 => {
                self.sid()?;
                self.sid()?;
                self.u64()
            }
            // UserCreated { user_sid, identity, friendly_name, attributes,
            // role_sid }
            16 => {
                self.sid()?;
                self.string()?;
                self.opt_string()?;
                self.string()?;
                self.opt_sid()
            }
            // UserUpdated { user_sid, friendly_name, attributes, role_sid }
            17 => {
                self.sid()?;
                self.opt_string()?;
                self.string()?;
                self.opt_sid()
            }
            // UserDeleted { user_sid }
            18 => self.sid(),
            // UserConversationUpdated { conversation_sid, user_sid,
            // notification_level }
            19 => {
                self.sid()?;
                self.sid()?;
                self.unit_enum(NOTIFICATION_LEVEL_VARIANTS)
            }
            // AddressConfigurationCreated { sid, address_type, address,
            // friendly_name, auto_creation }
            20 => {
                self.sid()?;
                self.unit_enum(ADDRESS_TYPE_VARIANTS)?;
                self.string()?;
                self.opt_string()?;
                self.auto_creation()
            }
            // AddressConfigurationUpdated { sid, friendly_name, auto_creation }
            21 => {
                self.sid()?;
                self.opt_string()?;
                self.auto_creation()
            }
            // AddressConfigurationDeleted { sid }
            22 => self.sid(),
            // DeliveryReceiptRecorded { conversation_sid, receipt_sid,
            // message_sid, participant_sid, status, error_code,
            // channel_message_sid }
            23 => {
                self.sid()?;
                self.sid()?;
                self.sid()?;
                self.sid()?;
                self.unit_enum(DELIVERY_STATUS_VARIANTS)?;
                self.opt(Self::u32)?;
                self.opt_string()
            }
            // ServiceConfigurationUpdated { three optional role SIDs }
            24 => {
                self.opt_sid()?;
                self.opt_sid()?;
                self.opt_sid()
            }
            // DeliveryAttemptFailed { conversation_sid, message_sid,
            // participant_sid, attempt, error }
            25 => {
                self.sid()?;
                self.sid()?;
                self.sid()?;
                self.u32()?;
                self.string()
            }
            // ServiceWebhooksUpdated { webhooks: { post_webhook_url,
            // method, filters, signing_secret } }
            26 => {
                self.opt_string()?;
                self.unit_enum(WEBHOOK_METHOD_VARIANTS)?;
                self.seq(|c| c.unit_enum(WEBHOOK_FILTER_VARIANTS))?;
                self.opt_string()
            }
            // ConversationWebhookCreated { conversation_sid, webhook_sid,
            // webhook: { target, url, method, filters, triggers } }
            27 => {
                self.sid()?;
                self.sid()?;
                self.conversation_webhook()
            }
            // ConversationWebhookRemoved { conversation_sid, webhook_sid }
            28 => {
                self.sid()?;
                self.sid()
            }
            // ConversationStudioWebhookCreated { conversation_sid,
            // webhook_sid, studio: { flow_sid, replay_after } }
            29 => {
                self.sid()?;
                self.sid()?;
                self.studio_webhook()
            }
            // AddressConfigurationCreatedV2 { sid, address_type, address,
            // friendly_name, auto_creation }
            30 => {
                self.sid()?;
                self.unit_enum(ADDRESS_TYPE_VARIANTS)?;
                self.string()?;
                self.opt_string()?;
                self.auto_creation_v2()
            }
            // AddressConfigurationUpdatedV2 { sid, friendly_name,
            // auto_creation }
            31 => {
                self.sid()?;
                self.opt_string()?;
                self.auto_creation_v2()
            }
            // ConversationWebhookUpdated { conversation_sid, webhook_sid,
            // webhook: Url({ target, url, method, filters, triggers }) |
            // Studio({ flow_sid, replay_after }) }
            32 => {
                self.sid()?;
                self.sid()?;
                match self.varint()? {
                    0 => self.conversation_webhook(),
                    1 => self.studio_webhook(),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// Whether `payload`, stored in a record of `format_version`, is in
/// canonical form the encoding of an `Event` whose conversation is
/// `conversation` (see [`is_valid_event_v1`]). Versions 1 and 2 share the
/// payload grammar; any other version gives `false` (ask the real decoder,
/// whose verdict is final). `true` guarantees that `Record::event` succeeds.
pub fn is_valid_payload(
    format_version: u16,
    payload: &[u8],
    conversation: Option<&[u8; SID_BYTES]>,
) -> bool {
    match format_version {
        1 | 2 => is_valid_event_v1(payload, conversation),
        _ => false,
    }
}

/// Whether `payload` is, in canonical form, the version-1 encoding of an
/// `Event` whose conversation is `conversation` (`Some(sid bytes)` for
/// conversation events). `true` guarantees that `Record::event` succeeds;
/// `false` says nothing (ask the real decoder).
pub fn is_valid_event_v1(payload: &[u8], conversation: Option<&[u8; SID_BYTES]>) -> bool {
    let mut p = Cursor::new(payload, 0);
    if p.event().is_none() || p.at != payload.len() {
        return false;
    }
    // The conversation SID, when the event has one, is its first field
    // after the variant index (a one-byte varint: fewer than 251 variants).
    // Those variants: ConversationCreated ..= MessageRemoved (6..=15),
    // UserConversationUpdated (19), DeliveryReceiptRecorded (23),
    // DeliveryAttemptFailed (25), ConversationWebhookCreated,
    // ConversationWebhookRemoved and ConversationStudioWebhookCreated
    // (27 ..= 29), ConversationWebhookUpdated (32).
    let has_conversation = matches!(
        payload.first(),
        Some(6..=15) | Some(19) | Some(23) | Some(25) | Some(27..=29) | Some(32)
    );
    match (has_conversation, conversation) {
        (true, Some(c)) => payload.get(1..1 + SID_BYTES) == Some(c.as_slice()),
        (false, None) => true,
        _ => false,
    }
}

/// The fast path and the authoritative decoder disagreed on some bytes: a
/// bug in this module (the fuzz target and the differential tests report
/// it). The text names what differed; fix the fast path, which must only
/// ever accept what [`Record::decode`] accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the fast record path and the authoritative decoder disagree: {0}")]
pub struct Disagreement(pub String);

/// The differential property on stored record bytes, as the fuzz target
/// and the tests run it: if [`parse`] accepts `bytes` with a matching hash,
/// [`Record::decode`] accepts them with equal fields; [`decode_record`]
/// gives exactly [`Record::decode`]'s verdict; and for a record that
/// decodes, [`RecordView::check_event`] gives [`Record::event`]'s verdict
/// (see [`check_payload_agreement`]).
///
/// Errors: a [`Disagreement`] naming what differed.
pub fn check_agreement(bytes: &[u8]) -> Result<(), Disagreement> {
    let authoritative = Record::decode(bytes);
    if let Some(view) = parse(bytes) {
        if view.computed_hash() == view.hash {
            match &authoritative {
                Ok(record) if *record == view.to_record() => {}
                Ok(record) => {
                    return Err(Disagreement(format!(
                        "fields differ: fast {:?}, decoder {record:?}",
                        view.to_record()
                    )))
                }
                Err(e) => {
                    return Err(Disagreement(format!(
                        "the fast path accepts what the decoder rejects ({e})"
                    )))
                }
            }
        }
    }
    let fast = decode_record(bytes).map(|view| view.to_record());
    if fast != authoritative {
        return Err(Disagreement(format!(
            "decode_record gives {fast:?}, Record::decode {authoritative:?}"
        )));
    }
    match authoritative {
        Ok(record) => check_payload_agreement(
            record.format_version,
            record.header.conversation_sid,
            &record.payload,
        ),
        Err(_) => Ok(()),
    }
}

/// The differential property on a payload stored in a record of
/// `format_version` whose header names `conversation`: if
/// [`is_valid_payload`] accepts it, [`decode_event`] does too; and
/// [`RecordView::check_event`] gives [`decode_event`]'s verdict and error.
///
/// Errors: a [`Disagreement`] naming what differed.
pub fn check_payload_agreement(
    format_version: u16,
    conversation: Option<ConversationSid>,
    payload: &[u8],
) -> Result<(), Disagreement> {
    let authoritative = decode_event(format_version, conversation, payload);
    let sid = conversation.map(|c| c.0);
    if is_valid_payload(format_version, payload, sid.as_ref()) {
        if let Err(e) = &authoritative {
            return Err(Disagreement(format!(
                "the grammar accepts a v{format_version} payload the decoder rejects ({e})"
            )));
        }
    }
    let view = RecordView {
        format_version,
        header: RecordHeader {
            position: 0,
            recorded_at: 0,
            service_sid: ServiceSid([0; ID_BYTES]),
            conversation_sid: conversation,
            command_id: CommandId([0; ID_BYTES]),
            actor: None,
        },
        header_bytes: Cow::Borrowed(&[]),
        prev_hash: [0; HASH_BYTES],
        hash: [0; HASH_BYTES],
        payload: Cow::Borrowed(payload),
    };
    let fast = view.check_event();
    let expected = authoritative.map(drop);
    if fast != expected {
        return Err(Disagreement(format!(
            "check_event gives {fast:?}, the decoder {expected:?}"
        )));
    }
    Ok(())
}

/// One event of every variant, optional fields both set and not, in
/// declaration order (a variant may appear more than once): the seed of the
/// fast path's tests, the differential test and the fuzz corpus.
pub fn sample_events() -> Vec<Event> {
    let c = ConversationSid::derive(b"c");
    let p = ParticipantSid::derive(b"p");
    let m = MessageSid::derive(b"m");
    let u = UserSid::derive(b"u");
    let r = RoleSid::derive(b"r");
    let a = AddressConfigurationSid::derive(b"a");
    let long = "é".repeat(200);
    vec![
        Event::ServiceCreated {
            friendly_name: "svc".into(),
        },
        Event::ServiceUpdated {
            friendly_name: long.clone(),
        },
        Event::ServiceDeleted,
        Event::RoleCreated {
            role_sid: r,
            friendly_name: "admin".into(),
            role_type: RoleType::Conversation,
            permissions: vec![Permission::SendMessage, Permission::EditNotificationLevel],
        },
        Event::RoleUpdated {
            role_sid: r,
            permissions: vec![],
        },
        Event::RoleDeleted { role_sid: r },
        Event::ConversationCreated {
            conversation_sid: c,
            friendly_name: Some("f".into()),
            unique_name: None,
            attributes: "{}".into(),
            state: ConversationState::Closed,
            timers: Timers {
                inactive_micros: Some(1 << 40),
                closed_micros: None,
            },
            messaging_service_sid: Some("MG1".into()),
        },
        Event::ConversationUpdated {
            conversation_sid: c,
            friendly_name: None,
            unique_name: Some(long.clone()),
            attributes: "{\"a\":1}".into(),
            state: ConversationState::Inactive,
            timers: Timers::default(),
        },
        Event::ConversationRemoved {
            conversation_sid: c,
        },
        Event::ParticipantAdded {
            conversation_sid: c,
            participant_sid: p,
            kind: ParticipantKind::Chat {
                identity: "alice".into(),
                projected_address: Some("+1".into()),
            },
            user_sid: Some(u),
            attributes: "{}".into(),
            role_sid: None,
        },
        Event::ParticipantAdded {
            conversation_sid: c,
            participant_sid: p,
            kind: ParticipantKind::Messaging(MessagingBinding {
                address: "+15551230000".into(),
                proxy_address: "+15559870000".into(),
                projected_address: None,
            }),
            user_sid: None,
            attributes: "{}".into(),
            role_sid: Some(r),
        },
        Event::ParticipantUpdated {
            conversation_sid: c,
            participant_sid: p,
            attributes: "{}".into(),
            role_sid: Some(r),
        },
        Event::ReadHorizonUpdated {
            conversation_sid: c,
            participant_sid: p,
            last_read_message_index: Some(300),
            last_read_timestamp: u64::MAX,
        },
        Event::ReadHorizonUpdated {
            conversation_sid: c,
            participant_sid: p,
            last_read_message_index: None,
            last_read_timestamp: 70_000,
        },
        Event::ParticipantRemoved {
            conversation_sid: c,
            participant_sid: p,
        },
        Event::MessageAdded {
            conversation_sid: c,
            message_sid: m,
            index: 251,
            author: "alice".into(),
            participant_sid: Some(p),
            body: Some(long.clone()),
            media: vec![Media {
                sid: MediaSid::derive(b"me"),
                content_type: "image/png".into(),
                filename: Some("a.png".into()),
                size: 1 << 33,
            }],
            attributes: "{}".into(),
        },
        Event::MessageUpdated {
            conversation_sid: c,
            message_sid: m,
            index: 0,
            body: None,
            attributes: "{}".into(),
        },
        Event::MessageRemoved {
            conversation_sid: c,
            message_sid: m,
            index: 65_536,
        },
        Event::UserCreated {
            user_sid: u,
            identity: "alice".into(),
            friendly_name: None,
            attributes: "{}".into(),
            role_sid: Some(r),
        },
        Event::UserUpdated {
            user_sid: u,
            friendly_name: Some("A".into()),
            attributes: "{}".into(),
            role_sid: None,
        },
        Event::UserDeleted { user_sid: u },
        Event::UserConversationUpdated {
            conversation_sid: c,
            user_sid: u,
            notification_level: NotificationLevel::Muted,
        },
        Event::AddressConfigurationCreated {
            address_configuration_sid: a,
            address_type: AddressType::Chat,
            address: "+1555".into(),
            friendly_name: None,
            auto_creation: AutoCreationV1 {
                enabled: true,
                conversation_service_sid: Some(ServiceSid::derive(b"s")),
                webhook_url: Some("https://example.com".into()),
            },
        },
        Event::AddressConfigurationUpdated {
            address_configuration_sid: a,
            friendly_name: Some("x".into()),
            auto_creation: AutoCreationV1::default(),
        },
        Event::AddressConfigurationDeleted {
            address_configuration_sid: a,
        },
        Event::DeliveryReceiptRecorded {
            conversation_sid: c,
            receipt_sid: ReceiptSid::derive(b"d"),
            message_sid: m,
            participant_sid: p,
            status: DeliveryStatus::Undelivered,
            error_code: Some(30_007),
            channel_message_sid: Some("SM1".into()),
        },
        Event::ServiceConfigurationUpdated {
            default_conversation_creator_role_sid: Some(r),
            default_conversation_role_sid: None,
            default_chat_service_role_sid: Some(r),
        },
        Event::DeliveryAttemptFailed {
            conversation_sid: c,
            message_sid: m,
            participant_sid: p,
            attempt: u32::MAX,
            error: "timeout".into(),
        },
        Event::ServiceWebhooksUpdated {
            webhooks: ServiceWebhooks {
                post_webhook_url: Some("https://example.com/hook".into()),
                method: WebhookMethod::Get,
                filters: WebhookFilter::ALL.to_vec(),
                signing_secret: Some("s3cret".into()),
            },
        },
        Event::ConversationWebhookCreated {
            conversation_sid: c,
            webhook_sid: WebhookSid::derive(b"w"),
            webhook: ConversationWebhook {
                target: WebhookTarget::Trigger,
                url: "http://127.0.0.1/t".into(),
                method: WebhookMethod::Post,
                filters: Vec::new(),
                triggers: vec!["support".into(), "ünï".into()],
            },
        },
        Event::ConversationWebhookCreated {
            conversation_sid: c,
            webhook_sid: WebhookSid::derive(b"x"),
            webhook: ConversationWebhook {
                target: WebhookTarget::Webhook,
                url: "https://example.com/w".into(),
                method: WebhookMethod::Get,
                filters: vec![WebhookFilter::OnMessageAdded],
                triggers: Vec::new(),
            },
        },
        Event::ConversationWebhookRemoved {
            conversation_sid: c,
            webhook_sid: WebhookSid::derive(b"w"),
        },
        Event::ConversationStudioWebhookCreated {
            conversation_sid: c,
            webhook_sid: WebhookSid::derive(b"s"),
            studio: StudioWebhook {
                flow_sid: FlowSid::derive(b"f"),
                replay_after: Some(1 << 40),
            },
        },
        Event::ConversationStudioWebhookCreated {
            conversation_sid: c,
            webhook_sid: WebhookSid::derive(b"t"),
            studio: StudioWebhook {
                flow_sid: FlowSid::derive(b"g"),
                replay_after: None,
            },
        },
        Event::AddressConfigurationCreatedV2 {
            address_configuration_sid: a,
            address_type: AddressType::Sms,
            address: "+1555".into(),
            friendly_name: Some("n".into()),
            auto_creation: AutoCreation {
                conversation_service_sid: Some(ServiceSid::derive(b"s")),
                webhook_method: WebhookMethod::Get,
                ..AutoCreation::webhook("https://example.com/a", WebhookFilter::ALL)
            },
        },
        Event::AddressConfigurationUpdatedV2 {
            address_configuration_sid: a,
            friendly_name: None,
            auto_creation: AutoCreation {
                studio_retry_count: Some(3),
                ..AutoCreation::studio(FlowSid::derive(b"f"))
            },
        },
        Event::AddressConfigurationUpdatedV2 {
            address_configuration_sid: a,
            friendly_name: None,
            auto_creation: AutoCreation::default(),
        },
        Event::ConversationWebhookUpdated {
            conversation_sid: c,
            webhook_sid: WebhookSid::derive(b"x"),
            webhook: ConversationWebhookConfig::Url(ConversationWebhook {
                target: WebhookTarget::Webhook,
                url: "https://example.com/v".into(),
                method: WebhookMethod::Post,
                filters: WebhookFilter::ALL.to_vec(),
                triggers: Vec::new(),
            }),
        },
        Event::ConversationWebhookUpdated {
            conversation_sid: c,
            webhook_sid: WebhookSid::derive(b"s"),
            webhook: ConversationWebhookConfig::Studio(StudioWebhook {
                flow_sid: FlowSid::derive(b"h"),
                replay_after: Some(7),
            }),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{chain_hash, decode, encode};
    use crate::*;

    /// Actors of every shape: the host, ASCII, unicode, and the longest
    /// (the identity limit in 4-byte characters, whose length takes a
    /// 3-byte varint).
    fn actors() -> [Option<String>; 4] {
        [
            None,
            Some("alice".into()),
            Some("Zoë 👩‍💻".into()),
            Some("🐇".repeat(IDENTITY_CHARS_MAX)),
        ]
    }

    /// A record in the current version, with `actor`.
    fn sample_with(
        position: u64,
        conversation: bool,
        body_len: usize,
        actor: Option<String>,
    ) -> Record {
        let conversation_sid = ConversationSid::derive(b"c");
        let event = if conversation {
            Event::MessageAdded {
                conversation_sid,
                message_sid: MessageSid::derive(&position.to_be_bytes()),
                index: position,
                author: "alice".into(),
                participant_sid: None,
                body: Some("x".repeat(body_len)),
                media: Vec::new(),
                attributes: "{}".into(),
            }
        } else {
            Event::ServiceUpdated {
                friendly_name: "y".repeat(body_len),
            }
        };
        let header = RecordHeader {
            position,
            recorded_at: 1_700_000_000_000_000u64.wrapping_add(position),
            service_sid: ServiceSid::derive(b"s"),
            conversation_sid: conversation.then_some(conversation_sid),
            command_id: CommandId::from_key(&position.to_be_bytes()),
            actor,
        };
        Record::seal(header, &event, [7u8; 32]).unwrap()
    }

    fn sample(position: u64, conversation: bool, body_len: usize) -> Record {
        sample_with(position, conversation, body_len, Some("alice".into()))
    }

    /// `record` as the version-1 writer stored it (no actor).
    fn as_v1(record: &Record) -> Record {
        let header = RecordHeader {
            actor: None,
            ..record.header.clone()
        };
        let hash = chain_hash(1, &header, &record.prev_hash, &record.payload).unwrap();
        Record {
            format_version: 1,
            header,
            hash,
            ..record.clone()
        }
    }

    #[test]
    fn the_fast_path_reads_what_the_codec_writes() {
        let positions = [0u64, 1, 250, 251, 65_535, 65_536, 1 << 32, u64::MAX - 1];
        for &p in &positions {
            for conversation in [false, true] {
                for body_len in [0usize, 10, 250, 251, 70_000] {
                    for actor in actors() {
                        let current = sample_with(p, conversation, body_len, actor);
                        for record in [as_v1(&current), current] {
                            let bytes = record.encode().unwrap();
                            let view = parse(&bytes).expect("canonical record");
                            assert_eq!(view.to_record(), record);
                            assert_eq!(view.computed_hash(), record.hash);
                            assert_eq!(
                                view.header_bytes.as_ref(),
                                encode_header(record.format_version, &record.header)
                                    .unwrap()
                                    .as_slice()
                            );
                            let checked = decode_record(&bytes).unwrap();
                            assert_eq!(checked.to_record(), record);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_v2_record_with_an_actor_takes_the_fast_path() {
        for actor in actors() {
            let record = sample_with(3, true, 12, actor.clone());
            assert_eq!(record.format_version, 2);
            let bytes = record.encode().unwrap();
            let view = parse(&bytes).expect("version 2 is parsed in place");
            assert_eq!(view.header.actor, actor);
            assert!(matches!(view.header_bytes, Cow::Borrowed(_)));
            assert!(matches!(view.payload, Cow::Borrowed(_)));
            assert_eq!(view.computed_hash(), record.hash);
        }
    }

    #[test]
    fn an_actor_over_the_limit_falls_back_to_the_decoders_error() {
        let mut record = sample_with(4, false, 3, None);
        record.header.actor = Some("a".repeat(IDENTITY_CHARS_MAX + 1));
        record.hash = chain_hash(2, &record.header, &record.prev_hash, &record.payload).unwrap();
        // `Record::encode` refuses it, so build the bytes by hand.
        let mut bytes = 2u16.to_le_bytes().to_vec();
        bytes.extend_from_slice(&encode(&record.header).unwrap());
        bytes.extend_from_slice(&record.prev_hash);
        bytes.extend_from_slice(&record.hash);
        bytes.extend_from_slice(&encode(&record.payload).unwrap());
        assert!(parse(&bytes).is_none());
        let err = decode_record(&bytes).unwrap_err();
        assert_eq!(
            err,
            CodecError::ActorTooLong {
                chars: IDENTITY_CHARS_MAX + 1
            }
        );
        assert_eq!(Record::decode(&bytes).unwrap_err(), err);
    }

    /// Every single-byte change either fails both paths alike or (if the
    /// fast path accepts it) is also accepted by the authoritative decoder.
    #[test]
    fn the_fast_path_never_accepts_what_the_codec_rejects() {
        for actor in actors() {
            let current = sample_with(300, true, 40, actor);
            for record in [as_v1(&current), current] {
                let bytes = record.encode().unwrap();
                for i in 0..bytes.len() {
                    for flip in [0x01u8, 0x80, 0xff] {
                        let mut damaged = bytes.clone();
                        damaged[i] ^= flip;
                        let fast = decode_record(&damaged).map(|v| v.to_record());
                        let slow = Record::decode(&damaged);
                        assert_eq!(fast, slow, "byte {i} ^ {flip:#x}");
                    }
                }
                for cut in 0..bytes.len() {
                    let fast = decode_record(&bytes[..cut]).map(|v| v.to_record());
                    let slow = Record::decode(&bytes[..cut]);
                    assert_eq!(fast, slow, "truncated to {cut}");
                }
            }
        }
    }

    #[test]
    fn a_record_with_another_hash_is_the_decoders_hash_mismatch() {
        let record = sample(5, true, 8);
        let mut bytes = record.encode().unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let view = parse(&bytes).expect("still canonical");
        assert_ne!(view.computed_hash(), view.hash);
        assert_eq!(decode_record(&bytes).unwrap_err(), CodecError::HashMismatch);
    }

    #[test]
    fn check_event_gives_the_decoders_verdict() {
        let record = sample(5, true, 8);
        let bytes = record.encode().unwrap();
        let view = decode_record(&bytes).unwrap();
        assert_eq!(view.check_event(), Ok(()));
        assert_eq!(view.event().unwrap(), record.event().unwrap());
        // Another conversation in the header: the decoder's error.
        let mut other = view.clone();
        other.header.conversation_sid = Some(ConversationSid::derive(b"other"));
        assert_eq!(
            other.check_event().unwrap_err(),
            other.to_record().event().unwrap_err()
        );
    }

    fn conv_bytes(e: &Event) -> Option<[u8; 16]> {
        e.conversation_sid().map(|c| c.0)
    }

    /// What the real decoder says, with the conversation check
    /// `Record::event` adds.
    fn decoder_accepts(bytes: &[u8], conversation: Option<&[u8; 16]>) -> bool {
        match decode::<Event>(bytes) {
            Ok(e) => conv_bytes(&e).as_ref() == conversation,
            Err(_) => false,
        }
    }

    #[test]
    fn every_variant_is_accepted() {
        let samples = sample_events();
        let mut seen = std::collections::BTreeSet::new();
        for e in &samples {
            seen.insert(event_variant_index(e));
            let bytes = encode(e).unwrap();
            let c = conv_bytes(e);
            assert!(is_valid_event_v1(&bytes, c.as_ref()), "{e:?}");
            assert!(decoder_accepts(&bytes, c.as_ref()));
            // The wrong conversation is refused.
            let other = [9u8; 16];
            assert!(!is_valid_event_v1(&bytes, Some(&other)));
        }
        assert_eq!(seen.len(), EVENT_VARIANTS, "a sample of every variant");
    }

    #[test]
    fn both_versions_share_the_payload_grammar_and_others_fall_back() {
        for e in sample_events() {
            let bytes = encode(&e).unwrap();
            let c = conv_bytes(&e);
            for version in crate::FORMAT_VERSIONS_KNOWN {
                assert!(
                    is_valid_payload(*version, &bytes, c.as_ref()),
                    "v{version} {e:?}"
                );
            }
            assert!(!is_valid_payload(0, &bytes, c.as_ref()));
            assert!(!is_valid_payload(3, &bytes, c.as_ref()));
        }
    }

    /// Accepting implies the decoder accepts, on every damaged encoding.
    #[test]
    fn never_accepts_what_the_decoder_rejects() {
        for e in sample_events() {
            let bytes = encode(&e).unwrap();
            let c = conv_bytes(&e);
            let check = |b: &[u8], what: &str| {
                if is_valid_event_v1(b, c.as_ref()) {
                    assert!(decoder_accepts(b, c.as_ref()), "{what} of {e:?}");
                }
            };
            for i in 0..bytes.len() {
                for flip in [0x01u8, 0x02, 0x10, 0x80, 0xff] {
                    let mut d = bytes.clone();
                    d[i] ^= flip;
                    check(&d, &format!("byte {i} ^ {flip:#x}"));
                }
                check(&bytes[..i], &format!("truncated to {i}"));
                let mut longer = bytes.clone();
                longer.insert(i, 0);
                check(&longer, &format!("zero inserted at {i}"));
            }
        }
    }

    /// The index is the variant's position in the bincode encoding (its
    /// first byte: fewer than 251 variants), and the name is
    /// [`Event::type_name`].
    #[test]
    fn variant_indexes_and_names_match_the_enum() {
        for e in sample_events() {
            let i = event_variant_index(&e);
            assert_eq!(usize::from(encode(&e).unwrap()[0]), i, "{e:?}");
            assert_eq!(EVENT_TYPE_NAMES[i], e.type_name());
        }
        let mut names = EVENT_TYPE_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EVENT_VARIANTS);
        // No variant past the count: the decoder refuses the next index.
        let past = encode(&(EVENT_VARIANTS as u32)).unwrap();
        assert!(decode::<Event>(&past).is_err());
    }

    /// Every unit enum's count: its last variant decodes, the next does
    /// not.
    #[test]
    fn unit_enum_variant_counts_match_the_enums() {
        fn count_is<T: serde::de::DeserializeOwned>(variants: u64) -> bool {
            let last = encode(&(variants - 1)).unwrap();
            let past = encode(&variants).unwrap();
            decode::<T>(&last).is_ok() && decode::<T>(&past).is_err()
        }
        assert!(count_is::<Permission>(PERMISSION_VARIANTS));
        assert!(count_is::<RoleType>(ROLE_TYPE_VARIANTS));
        assert!(count_is::<ConversationState>(CONVERSATION_STATE_VARIANTS));
        assert!(count_is::<NotificationLevel>(NOTIFICATION_LEVEL_VARIANTS));
        assert!(count_is::<AddressType>(ADDRESS_TYPE_VARIANTS));
        assert!(count_is::<DeliveryStatus>(DELIVERY_STATUS_VARIANTS));
        assert!(count_is::<AutoCreationType>(AUTO_CREATION_TYPE_VARIANTS));
        // A data-carrying enum: the next variant index is refused.
        let past = encode(&PARTICIPANT_KIND_VARIANTS).unwrap();
        assert!(decode::<ParticipantKind>(&past).is_err());
        let mut last = encode(&(PARTICIPANT_KIND_VARIANTS - 1)).unwrap();
        last.extend(
            encode(&MessagingBinding {
                address: "a".into(),
                proxy_address: "b".into(),
                projected_address: None,
            })
            .unwrap(),
        );
        assert!(decode::<ParticipantKind>(&last).is_ok());
    }
}
